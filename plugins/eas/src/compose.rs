//! SendMail, SmartReply and SmartForward ([MS-ASCMD] 2.2.1.17–2.2.1.19).
//!
//! 12.1 posts the MIME message as the body (`SaveInSent`, `ItemId`, `CollectionId` in the
//! query); it is staged chunk by chunk, never held whole. 14.0 and later wrap it in a
//! ComposeMail document (`ClientId`, `SaveInSentItems`, `Source`, `ReplaceMime`, `Mime`).
//!
//! SmartReply and SmartForward add the original message, which the phone did not send: a
//! reply whose text is plain gets the original quoted below it; anything else (HTML replies,
//! all forwards) gets the original attached as `message/rfc822`, streamed from the connector
//! into the staged upload. A `ClientId` seen before answers Status 118 (already sent), so a
//! phone retrying after a lost answer does not send twice.

use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{host, Error as HostError, Principal, Result};
use switchboard_wbxml::{tags::composemail as cm, Element, Node};

use crate::http::{self as h, Command};
use crate::ids;
use crate::mime;
use crate::state;
use crate::status::common;
use crate::wire;
use crate::Ctx;

/// The largest message accepted (`max_message_bytes`, default 20 MiB). From 14.0 the message
/// arrives inside a WBXML document that is decoded whole, so a WebAssembly instance needs
/// about 2.5 times this much memory (`memory_mb`); 12.1 messages are staged in chunks.
fn max_message() -> usize {
    host::config::get("max_message_bytes")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(20 * 1024 * 1024)
}

/// What to send.
struct Outgoing {
    client_id: Option<String>,
    save: bool,
    replace_mime: bool,
    source: Option<String>,
    mime: Upload,
}

fn root(command: Command) -> switchboard_wbxml::Tag {
    match command {
        Command::SmartReply => cm::SmartReply,
        Command::SmartForward => cm::SmartForward,
        _ => cm::SendMail,
    }
}

fn failure(ctx: &Ctx, code: u8, http_status: u16) -> Response {
    if ctx.version.has_common_status() {
        wire::respond(
            &Element::new(root(ctx.query.command)).with_text_child(cm::Status, code.to_string()),
        )
    } else {
        h::empty(http_status)
    }
}

/// Handle SendMail, SmartReply or SmartForward.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Response> {
    let out = if ctx.version.has_common_status() {
        let doc = match wire::decode_body_limit(req, root(ctx.query.command), max_message()) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(failure(ctx, common::INVALID_CONTENT, 400)),
            Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
        };
        let mime_el = doc.child_tag(cm::Mime);
        let Some(mime_el) = mime_el else {
            return Ok(failure(ctx, common::INVALID_CONTENT, 400));
        };
        let upload = Upload::create()?;
        for n in &mime_el.children {
            match n {
                Node::Text(t) => upload.append(t.as_bytes())?,
                Node::Opaque(b) => upload.append(b)?,
                Node::Element(_) => {}
            }
        }
        let source = doc.child_tag(cm::Source).and_then(|s| {
            s.child_text("LongId")
                .or_else(|| s.child_text("ItemId"))
                .map(|x| x.trim().to_string())
        });
        Outgoing {
            client_id: wire::text(&doc, "ClientId").map(str::to_string),
            save: doc.child_tag(cm::SaveInSentItems).is_some(),
            replace_mime: doc.child_tag(cm::ReplaceMime).is_some(),
            source,
            mime: upload,
        }
    } else {
        // 12.1: the body is the message.
        let upload = Upload::create()?;
        upload.append(&req.body)?;
        let mut size = req.body.len();
        if !req.body_complete {
            loop {
                let chunk = host::request_body::read(256 * 1024)?;
                if chunk.is_empty() {
                    break;
                }
                size += chunk.len();
                if size > max_message() {
                    return Ok(h::empty(413));
                }
                upload.append(&chunk)?;
            }
        }
        let p = &ctx.query.params;
        Outgoing {
            client_id: None,
            save: p.save_in_sent,
            replace_mime: false,
            source: p.long_id.clone().or_else(|| p.item_id.clone()),
            mime: upload,
        }
    };
    if out.mime.size()? == 0 {
        return Ok(failure(ctx, common::INVALID_MIME, 400));
    }
    if let Some(id) = &out.client_id {
        if already_sent(ctx, id)? {
            return Ok(failure(ctx, 118, 200));
        }
    }
    let who = &ctx.dk.who;
    let message = match (&out.source, ctx.query.command, out.replace_mime) {
        (Some(src), Command::SmartReply | Command::SmartForward, false) => {
            let Some(item) = ids::item_id(who, src)? else {
                return Ok(failure(ctx, common::ITEM_NOT_FOUND, 404));
            };
            match combine(
                who,
                &out.mime,
                &item,
                ctx.query.command == Command::SmartForward,
            ) {
                Ok(u) => u,
                Err(HostError::NotFound(_)) => {
                    return Ok(failure(ctx, common::ITEM_NOT_FOUND, 404))
                }
                Err(e) => return Err(e),
            }
        }
        _ => out.mime,
    };
    match host::mailstore::send(who, &message, out.save) {
        Ok(()) => {
            if let Some(id) = &out.client_id {
                remember_sent(ctx, id)?;
            }
            Ok(h::empty(200))
        }
        Err(HostError::Quota(_)) => Ok(failure(ctx, common::MAILBOX_QUOTA_EXCEEDED, 507)),
        Err(HostError::Invalid(e)) => {
            host::log::info(&format!("eas: message refused: {e}"));
            Ok(failure(ctx, common::INVALID_MIME, 400))
        }
        Err(HostError::Unavailable(_)) => Ok(failure(ctx, common::SERVER_ERROR_RETRY_LATER, 503)),
        Err(e) => {
            host::log::warn(&format!("eas: sending failed: {e}"));
            Ok(failure(ctx, common::MAIL_SUBMISSION_FAILED, 500))
        }
    }
}

fn sent_key(ctx: &Ctx) -> String {
    format!("sent/{}/{}", ctx.dk.who.address(), ctx.dk.device_id)
}

fn already_sent(ctx: &Ctx, id: &str) -> Result<bool> {
    let ids: Vec<String> = state::load(&sent_key(ctx))?.unwrap_or_default();
    Ok(ids.iter().any(|x| x == id))
}

fn remember_sent(ctx: &Ctx, id: &str) -> Result<()> {
    let mut ids: Vec<String> = state::load(&sent_key(ctx))?.unwrap_or_default();
    ids.push(id.chars().take(128).collect());
    if ids.len() > 50 {
        ids.remove(0);
    }
    state::store(&sent_key(ctx), &ids)
}

/// The phone's message plus the original: quoted (plain-text reply) or attached.
fn combine(who: &Principal, reply: &Upload, item: &str, forward: bool) -> Result<Upload> {
    // The phone's message is small (no original); read it whole, bounded.
    let mut mine = Vec::new();
    for c in reply.chunks(256 * 1024) {
        mine.extend(c?);
        if mine.len() > max_message() {
            return Err(HostError::Quota("message too large".into()));
        }
    }
    let split = find_body(&mine);
    let (head, body) = mine.split_at(split.0);
    let body = &body[split.1..];
    let headers = mime::parse_headers(head);
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let ctype = header("content-type").unwrap_or_else(|| "text/plain".into());
    let cte = header("content-transfer-encoding").unwrap_or_default();
    let out = Upload::create()?;
    if !forward
        && ctype.starts_with("text/plain")
        && !cte.contains("base64")
        && !cte.contains("quoted")
    {
        // Quote the original's text below the reply.
        let original = crate::item::load(who, &crate::item::bare(item))?;
        let msg = mime::parse(&original.bytes);
        let mut quoted = String::from("\r\n\r\n-----Original Message-----\r\n");
        for (k, label) in [
            ("from", "From"),
            ("date", "Sent"),
            ("to", "To"),
            ("subject", "Subject"),
        ] {
            if let Some(v) = msg.header(k) {
                quoted.push_str(&format!("{label}: {v}\r\n"));
            }
        }
        quoted.push_str("\r\n");
        for line in msg.plain().lines() {
            quoted.push_str("> ");
            quoted.push_str(line);
            quoted.push_str("\r\n");
        }
        out.append(head)?;
        out.append(b"\r\n\r\n")?;
        out.append(body)?;
        out.append(quoted.as_bytes())?;
        return Ok(out);
    }
    // multipart/mixed: the phone's part first, then the original as message/rfc822.
    let boundary = format!(
        "sb-{:08x}",
        crate::provision::fnv(format!("{item}{}", crate::time::now_ms()).as_bytes())
    );
    // Header fields (with their continuation lines): Content-* go to the phone's part.
    let mut fields: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(head).split('\n') {
        let l = line.trim_end_matches('\r');
        match fields.last_mut() {
            Some(f) if l.starts_with([' ', '\t']) => {
                f.push_str("\r\n");
                f.push_str(l);
            }
            _ if !l.is_empty() => fields.push(l.to_string()),
            _ => {}
        }
    }
    let mut top = String::new();
    let mut part_head = String::new();
    for f in fields {
        let lower = f.to_ascii_lowercase();
        if lower.starts_with("content-") {
            part_head.push_str(&f);
            part_head.push_str("\r\n");
        } else if !lower.starts_with("mime-version") {
            top.push_str(&f);
            top.push_str("\r\n");
        }
    }
    if part_head.is_empty() {
        part_head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    out.append(top.as_bytes())?;
    out.append(
        format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n{part_head}\r\n"
        )
        .as_bytes(),
    )?;
    out.append(body)?;
    out.append(
        format!(
            "\r\n--{boundary}\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"original.eml\"\r\n\r\n"
        )
        .as_bytes(),
    )?;
    let mut offset = 0u64;
    loop {
        let chunk = host::mailstore::fetch(who, item, None, offset, 256 * 1024)?;
        if chunk.data.is_empty() {
            break;
        }
        offset += chunk.data.len() as u64;
        out.append(&chunk.data)?;
        if offset >= chunk.total {
            break;
        }
    }
    out.append(format!("\r\n--{boundary}--\r\n").as_bytes())?;
    Ok(out)
}

/// Where the header ends: (index of the blank line, length of the separator).
fn find_body(m: &[u8]) -> (usize, usize) {
    for i in 0..m.len() {
        if m[i..].starts_with(b"\r\n\r\n") {
            return (i, 4);
        }
        if m[i..].starts_with(b"\n\n") {
            return (i, 2);
        }
    }
    (m.len(), 0)
}

#[cfg(test)]
mod tests {
    use crate::testkit::{MemStore, Phone};
    use switchboard_wbxml::{decode, element, tags::composemail as cm};

    const ORIGINAL: &str = "From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: Lunch?\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\nShall we have lunch?\r\n";
    const REPLY: &str = "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: Re: Lunch?\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYes!\r\n";

    #[test]
    fn send_mail_14_1_once_per_client_id() {
        let phone = Phone::new("14.1");
        let doc = element!(cm::SendMail [
            element!(cm::ClientId = "c1"),
            element!(cm::SaveInSentItems),
            switchboard_wbxml::Element::new(cm::Mime).with_opaque(REPLY.as_bytes().to_vec()),
        ]);
        let r = phone.post("SendMail", "", &doc.to_wbxml().unwrap());
        assert_eq!(r.status, 200);
        assert!(r.body_bytes().is_empty());
        assert_eq!(phone.store(MemStore::sent), vec![REPLY.to_string()]);
        let r = phone.post("SendMail", "", &doc.to_wbxml().unwrap());
        assert_eq!(
            decode(&r.body_bytes()).unwrap().child_text("Status"),
            Some("118")
        );
        assert_eq!(phone.store(MemStore::sent).len(), 1);
        let empty = element!(cm::SendMail [element!(cm::ClientId = "c2"), element!(cm::Mime)]);
        let r = phone.post("SendMail", "", &empty.to_wbxml().unwrap());
        assert_eq!(
            decode(&r.body_bytes()).unwrap().child_text("Status"),
            Some("107")
        );
    }

    #[test]
    fn send_mail_12_1_raw_body() {
        let phone = Phone::new("12.1");
        let r = phone.post("SendMail", "&SaveInSent=T", REPLY.as_bytes());
        assert_eq!(r.status, 200);
        assert_eq!(phone.store(MemStore::sent), vec![REPLY.to_string()]);
    }

    #[test]
    fn smart_reply_quotes_and_smart_forward_attaches() {
        let phone = Phone::new("16.1");
        phone.store(|| MemStore::deliver("INBOX", "m1", "Lunch?", ORIGINAL, 1));
        let reply = element!(cm::SmartReply [
            element!(cm::ClientId = "r1"),
            element!(cm::Source [element!(cm::FolderId = "1"), element!(cm::ItemId = "m1")]),
            element!(cm::Mime = REPLY),
        ]);
        let r = phone.post("SmartReply", "", &reply.to_wbxml().unwrap());
        assert_eq!(r.status, 200, "{:?}", r);
        let sent = phone.store(MemStore::sent);
        assert!(sent[0].starts_with("From: alice@example.com"));
        assert!(sent[0].contains("Yes!\r\n"));
        assert!(sent[0].contains("> Shall we have lunch?"), "{}", sent[0]);
        let fwd = element!(cm::SmartForward [
            element!(cm::ClientId = "f1"),
            element!(cm::Source [element!(cm::ItemId = "m1")]),
            element!(cm::Mime = REPLY),
        ]);
        let r = phone.post("SmartForward", "", &fwd.to_wbxml().unwrap());
        assert_eq!(r.status, 200);
        let sent = phone.store(MemStore::sent);
        let f = &sent[1];
        assert!(f.contains("Content-Type: multipart/mixed"), "{f}");
        assert!(f.contains("Content-Type: message/rfc822"));
        assert!(f.contains(ORIGINAL));
        let parsed = crate::mime::parse(f.as_bytes());
        assert_eq!(parsed.header("subject"), Some("Re: Lunch?"));
        assert_eq!(parsed.text.as_deref(), Some("Yes!\r\n"));
        let missing = element!(cm::SmartForward [
            element!(cm::ClientId = "f2"),
            element!(cm::Source [element!(cm::ItemId = "gone")]),
            element!(cm::Mime = REPLY),
        ]);
        let r = phone.post("SmartForward", "", &missing.to_wbxml().unwrap());
        assert_eq!(
            decode(&r.body_bytes()).unwrap().child_text("Status"),
            Some("150")
        );
    }
}

#[cfg(test)]
mod tests_12_1 {
    use crate::testkit::{MemStore, Phone};

    #[test]
    fn smart_forward_12_1_uses_query_parameters() {
        let phone = Phone::new("12.1");
        phone.store(|| {
            MemStore::deliver(
                "INBOX",
                "m1",
                "Hi",
                "From: bob@example.com\r\nSubject: Hi\r\n\r\noriginal text\r\n",
                1,
            )
        });
        let mine = "From: alice@example.com\r\nTo: carol@example.com\r\nSubject: Fwd: Hi\r\n\r\nsee below\r\n";
        let r = phone.post(
            "SmartForward",
            "&CollectionId=1&ItemId=m1&SaveInSent=T",
            mine.as_bytes(),
        );
        assert_eq!(r.status, 200);
        let sent = phone.store(MemStore::sent);
        assert!(sent[0].contains("message/rfc822") && sent[0].contains("original text"));
        // An unknown source: 404 for 12.1 (no command body to carry a status).
        let r = phone.post("SmartReply", "&CollectionId=1&ItemId=gone", mine.as_bytes());
        assert_eq!(r.status, 404);
    }
}
