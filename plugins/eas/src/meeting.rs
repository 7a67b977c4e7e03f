//! MeetingResponse ([MS-ASCMD] 2.2.1.11): accept, tentatively accept or decline an
//! invitation in the mailbox.
//!
//! The invitation's iCalendar part is read from the message; on accept or tentative the
//! event is stored in the user's default calendar with the user's participation status (its
//! ServerId is the `CalendarId` of the answer). From 16.0 the client asks the server to tell
//! the organizer (`SendResponse`): an iTIP REPLY is sent; older clients send their own reply
//! mail, so none is sent for them.

use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{host, Error as HostError, FolderKind, Result};
use switchboard_wbxml::{tags::meetingresponse as mr, Element};

use crate::ids;
use crate::item::{self, calendar};
use crate::wire;
use crate::Ctx;

/// MeetingResponse status values ([MS-ASCMD] 2.2.3.177.10).
pub mod status {
    /// Success.
    pub const OK: u8 = 1;
    /// The meeting request is invalid.
    pub const INVALID: u8 = 2;
    /// An error on the mailbox.
    pub const MAILBOX_ERROR: u8 = 3;
    /// An error on the server.
    pub const SERVER_ERROR: u8 = 4;
}

/// Handle MeetingResponse.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Response> {
    let doc = match wire::decode_body(req, mr::MeetingResponse) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(wire::status_only(ctx.query.command, 103, 400)),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let mut out = Element::new(mr::MeetingResponse);
    for r in doc.children_tagged(mr::Request).take(50) {
        let request_id = wire::text(r, "RequestId").unwrap_or("").to_string();
        let response: u8 = wire::text(r, "UserResponse")
            .and_then(|u| u.parse().ok())
            .unwrap_or(0);
        let send = r.child_tag(mr::SendResponse).is_some() && ctx.version.is_16();
        let mut result =
            Element::new(mr::Result).with_text_child(mr::RequestId, request_id.clone());
        let (code, calendar_id) = if (1..=3).contains(&response) {
            match respond(ctx, &request_id, response, send) {
                Ok(x) => x,
                Err(e) => {
                    host::log::warn(&format!("eas: MeetingResponse: {e}"));
                    (status::SERVER_ERROR, None)
                }
            }
        } else {
            (status::INVALID, None)
        };
        result.push(Element::text_element(mr::Status, code.to_string()));
        if let Some(id) = calendar_id {
            result.push(Element::text_element(mr::CalendarId, id));
        }
        out.push(result);
    }
    Ok(wire::respond(&out))
}

fn respond(ctx: &Ctx, request_id: &str, response: u8, send: bool) -> Result<(u8, Option<String>)> {
    let who = &ctx.dk.who;
    let Some(item_id) = ids::item_id(who, request_id)? else {
        return Ok((status::INVALID, None));
    };
    let summary = item::bare(&item_id);
    let content = match item::load(who, &summary) {
        Ok(c) => c,
        Err(HostError::NotFound(_)) => return Ok((status::INVALID, None)),
        Err(e) => return Err(e),
    };
    let msg = crate::mime::parse(&content.bytes);
    // The item is either a mail carrying an invitation or (from the calendar) the event.
    let ical = msg
        .calendar
        .clone()
        .unwrap_or_else(|| String::from_utf8_lossy(&content.bytes).into_owned());
    let me = who.address();
    let Some((reply, stored, organizer)) = calendar::reply(&ical, &me, response) else {
        return Ok((status::INVALID, None));
    };
    let mut calendar_id = None;
    if response != 3 {
        let cal = host::mailstore::list_folders(who)?
            .into_iter()
            .find(|f| f.kind == FolderKind::Calendar);
        if let Some(cal) = cal {
            let upload = Upload::from_bytes(stored.as_bytes())?;
            match host::mailstore::create_item(who, &cal.id, &upload) {
                Ok(item) => calendar_id = Some(ids::server_id(who, &item.id)?),
                Err(e) => {
                    host::log::warn(&format!("eas: storing the accepted event: {e}"));
                    return Ok((status::MAILBOX_ERROR, None));
                }
            }
        }
    }
    if send {
        let verb = match response {
            1 => "Accepted",
            2 => "Tentative",
            _ => "Declined",
        };
        // Both come from the invitation (another party's bytes): never raw into a header.
        let subject =
            crate::mime::header_value(&format!("{verb}: {}", msg.header("subject").unwrap_or("")));
        let organizer = crate::mime::header_value(&organizer.replace(',', " "));
        let mime = format!(
            "From: {me}\r\nTo: {organizer}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/calendar; method=REPLY; charset=utf-8\r\n\r\n{reply}"
        );
        let upload = Upload::from_bytes(mime.as_bytes())?;
        if let Err(e) = host::mailstore::send(who, &upload, false) {
            host::log::warn(&format!("eas: sending the meeting reply: {e}"));
        }
    }
    Ok((status::OK, calendar_id))
}

#[cfg(test)]
mod tests {
    use crate::testkit::{MemStore, Phone};
    use switchboard_wbxml::{element, tags::meetingresponse as mr};

    fn invite_mail() -> String {
        format!(
            "From: bob@example.com\r\nTo: alice@example.com\r\nSubject: Planning\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nJoin us\r\n--x\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n{}\r\n--x--\r\n",
            crate::item::calendar::tests::INVITE
        )
    }

    #[test]
    fn accept_stores_the_event_and_16_1_replies() {
        let phone = Phone::new("16.1");
        phone.store(|| MemStore::deliver("INBOX", "inv", "Planning", &invite_mail(), 1));
        let doc = element!(mr::MeetingResponse [
            element!(mr::Request [
                element!(mr::UserResponse = "1"),
                element!(mr::CollectionId = "1"),
                element!(mr::RequestId = "inv"),
                element!(mr::SendResponse),
            ]),
            element!(mr::Request [element!(mr::UserResponse = "1"), element!(mr::RequestId = "nope")]),
        ]);
        let d = phone.cmd("MeetingResponse", &doc);
        let results: Vec<_> = d.children_named("Result").collect();
        assert_eq!(results[0].child_text("Status"), Some("1"));
        assert!(results[0].child_text("CalendarId").is_some());
        assert_eq!(results[1].child_text("Status"), Some("2"));
        let events = phone.store(|| MemStore::items("Calendar"));
        assert_eq!(events.len(), 1);
        assert!(String::from_utf8_lossy(&events[0].content).contains("PARTSTAT=ACCEPTED"));
        let sent = phone.store(MemStore::sent);
        assert_eq!(sent.len(), 1);
        assert!(
            sent[0].contains("METHOD:REPLY")
                && sent[0].starts_with("From: alice@example.com\r\nTo: bob@example.com")
        );
    }

    #[test]
    fn a_reply_cannot_carry_fields_injected_through_the_invitation_subject() {
        let phone = Phone::new("16.1");
        // "x\r\nBcc: eve@example.net" as an RFC 2047 encoded word.
        let mail = invite_mail().replace(
            "Subject: Planning",
            "Subject: =?utf-8?B?eA0KQmNjOiBldmVAZXhhbXBsZS5uZXQ=?=",
        );
        phone.store(|| MemStore::deliver("INBOX", "inv", "x", &mail, 1));
        let doc = element!(
            mr::MeetingResponse[element!(mr::Request [
                element!(mr::UserResponse = "1"),
                element!(mr::CollectionId = "1"),
                element!(mr::RequestId = "inv"),
                element!(mr::SendResponse),
            ])]
        );
        phone.cmd("MeetingResponse", &doc);
        let sent = phone.store(MemStore::sent);
        assert_eq!(sent.len(), 1);
        let head = sent[0].split("\r\n\r\n").next().unwrap();
        assert!(
            head.lines()
                .all(|l| !l.to_ascii_lowercase().starts_with("bcc:")),
            "{head}"
        );
        assert!(
            head.contains("Subject: Accepted: xBcc: eve@example.net"),
            "{head}"
        );
    }

    #[test]
    fn invitations_show_as_meeting_requests_and_events_sync() {
        let phone = Phone::new("14.1");
        phone.store(|| MemStore::deliver("INBOX", "inv", "Planning", &invite_mail(), 1));
        let doc = element!(switchboard_wbxml::tags::itemoperations::ItemOperations [
            element!(switchboard_wbxml::tags::itemoperations::Fetch [
                element!(switchboard_wbxml::tags::itemoperations::Store = "Mailbox"),
                element!(switchboard_wbxml::tags::airsync::ServerId = "inv"),
            ]),
        ]);
        let d = phone.cmd("ItemOperations", &doc);
        let props = d
            .child("Response")
            .and_then(|r| r.child("Fetch"))
            .and_then(|f| f.child("Properties"))
            .unwrap();
        assert_eq!(
            props.child_text("MessageClass"),
            Some("IPM.Schedule.Meeting.Request")
        );
        assert!(props.child("MeetingRequest").is_some());
        // Decline on 14.1: nothing stored, nothing sent (the phone sends its own reply).
        let doc = element!(
            mr::MeetingResponse[element!(mr::Request [
                element!(mr::UserResponse = "3"),
                element!(mr::RequestId = "inv"),
            ])]
        );
        let d = phone.cmd("MeetingResponse", &doc);
        assert_eq!(
            d.child("Result").and_then(|r| r.child_text("Status")),
            Some("1")
        );
        assert!(phone.store(|| MemStore::items("Calendar")).is_empty());
        assert!(phone.store(MemStore::sent).is_empty());
    }
}
