//! Mail items ([MS-ASEMAIL]): the `ApplicationData` a phone lists and the changes it makes
//! (read, flag).

use switchboard_sdk::{ItemSummary, Principal, Result};
use switchboard_wbxml::{tags::airsyncbase as asb, tags::email as em, Element};

use super::body::{self, BodyPref};
use super::Content;
use crate::http::Version;
use crate::ids;
use crate::mime::Message;
use crate::time;
use crate::wire::Streams;

/// The `ApplicationData` of a message. `content` is `None` when only the summary is known
/// (a change of flags: the client already has the rest).
pub fn application_data(
    who: &Principal,
    item: &ItemSummary,
    content: Option<(&Content, &Message)>,
    pref: Option<BodyPref>,
    version: Version,
    streams: &mut Streams,
) -> Result<Element> {
    let mut d = Element::new(switchboard_wbxml::tags::airsync::ApplicationData);
    // A summary made from an id alone (Fetch) knows neither flags nor time.
    let known = item.timestamp_ms != super::UNKNOWN_TIME;
    let Some((content, msg)) = content else {
        d.push(Element::text_element(em::Read, flag(item.read)));
        d.push(flag_element(item.flagged));
        return Ok(d);
    };
    let h = |n: &str| msg.header(n).unwrap_or("").to_string();
    let to = h("to");
    d.push(Element::text_element(em::To, to.clone()));
    let cc = h("cc");
    if !cc.is_empty() {
        d.push(Element::text_element(em::Cc, cc));
    }
    let from = msg
        .header("from")
        .map(str::to_string)
        .unwrap_or_else(|| item.sender.clone());
    d.push(Element::text_element(em::From, from));
    let subject = msg
        .header("subject")
        .map(str::to_string)
        .unwrap_or_else(|| item.subject.clone());
    d.push(Element::text_element(em::Subject, subject.clone()));
    if let Some(r) = msg.header("reply-to") {
        d.push(Element::text_element(em::ReplyTo, r));
    }
    let received = if known {
        Some(item.timestamp_ms)
    } else {
        msg.header("date").and_then(time::parse_rfc5322)
    };
    if let Some(t) = received {
        d.push(Element::text_element(em::DateReceived, time::iso(t)));
    }
    d.push(Element::text_element(em::DisplayTo, display_names(&to)));
    d.push(Element::text_element(
        em::ThreadTopic,
        thread_topic(&subject),
    ));
    d.push(Element::text_element(em::Importance, importance(msg)));
    if known {
        d.push(Element::text_element(em::Read, flag(item.read)));
    }
    if !item.attachments.is_empty() {
        let mut atts = Element::new(asb::Attachments);
        for a in &item.attachments {
            atts.push(
                Element::new(asb::Attachment)
                    .with_text_child(asb::DisplayName, a.file_name.clone())
                    .with_text_child(
                        asb::FileReference,
                        ids::file_reference(&item.id, &a.part_id),
                    )
                    .with_text_child(asb::Method, "1")
                    .with_text_child(asb::EstimatedDataSize, a.size.to_string()),
            );
        }
        d.push(atts);
    }
    let pref = pref.unwrap_or_default();
    d.push(body::render(
        pref,
        who,
        &item.id,
        content,
        msg,
        version.has_common_status(),
        streams,
    ));
    let meeting = msg
        .calendar
        .as_deref()
        .and_then(|c| super::calendar::meeting_request(c, version));
    let class = match &meeting {
        Some((m, class)) => {
            d.push(m.clone());
            *class
        }
        None => "IPM.Note",
    };
    d.push(Element::text_element(em::MessageClass, class));
    d.push(Element::text_element(em::InternetCPID, "65001"));
    if known {
        d.push(flag_element(item.flagged));
    }
    d.push(Element::text_element(
        em::ContentClass,
        "urn:content-classes:message",
    ));
    d.push(Element::text_element(
        asb::NativeBodyType,
        if msg.html.is_some() { "2" } else { "1" },
    ));
    if version.has_common_status() {
        // Threads: one id per thread topic, an index that orders by time.
        let topic = thread_topic(&subject).to_lowercase();
        let mut id = Vec::with_capacity(16);
        for salt in 0u8..4 {
            let mut seed = topic.clone().into_bytes();
            seed.push(salt);
            id.extend_from_slice(&crate::provision::fnv(&seed).to_be_bytes());
        }
        d.push(Element::new(switchboard_wbxml::tags::email2::ConversationId).with_opaque(id));
        let t = u64::try_from(received.unwrap_or(0).max(0)).unwrap_or(0);
        let index = (t / 1000).to_be_bytes();
        d.push(
            Element::new(switchboard_wbxml::tags::email2::ConversationIndex)
                .with_opaque(index[3..8].to_vec()),
        );
    }
    Ok(d)
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// `<Flag><FlagStatus>2</FlagStatus><FlagType>…</FlagType></Flag>` or `<Flag/>`.
fn flag_element(flagged: bool) -> Element {
    if flagged {
        Element::new(em::Flag)
            .with_text_child(em::FlagStatus, "2")
            .with_text_child(em::FlagType, "Flag for follow up")
    } else {
        Element::new(em::Flag)
    }
}

/// Display names of an address list (`"A B" <a@x>, c@y` → `A B; c@y`).
fn display_names(list: &str) -> String {
    list.split(',')
        .map(|a| {
            let a = a.trim();
            match a.split_once('<') {
                Some((name, _)) if !name.trim().is_empty() => {
                    name.trim().trim_matches('"').to_string()
                }
                Some((_, addr)) => addr.trim_end_matches('>').to_string(),
                None => a.to_string(),
            }
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The subject without reply/forward prefixes.
fn thread_topic(subject: &str) -> String {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let cut = ["re:", "fw:", "fwd:", "aw:", "wg:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map(|p| p.len());
        match cut {
            Some(n) => s = s[n..].trim_start(),
            None => return s.to_string(),
        }
    }
}

/// 0 low, 1 normal, 2 high, from `Importance` or `X-Priority`.
fn importance(msg: &Message) -> &'static str {
    if let Some(i) = msg.header("importance") {
        return match i.trim().to_ascii_lowercase().as_str() {
            "high" => "2",
            "low" => "0",
            _ => "1",
        };
    }
    match msg
        .header("x-priority")
        .and_then(|p| p.trim().chars().next())
    {
        Some('1' | '2') => "2",
        Some('4' | '5') => "0",
        _ => "1",
    }
}

/// What a client's `Change` of a mail item asks for: read and flagged.
pub fn parse_change(data: &Element) -> (Option<bool>, Option<bool>) {
    let read = data
        .child_tag(em::Read)
        .and_then(|r| r.text())
        .map(|t| t.trim() == "1");
    let flagged = data.child_tag(em::Flag).map(|f| {
        // FlagStatus 2 = active; 1 = complete and 0/absent = cleared count as not flagged.
        f.child_text("FlagStatus").map(str::trim) == Some("2")
    });
    (read, flagged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_wbxml::element;

    #[test]
    fn helpers() {
        assert_eq!(
            display_names("\"Bob B\" <bob@x.com>, carol@y.com, <d@z>"),
            "Bob B; carol@y.com; d@z"
        );
        assert_eq!(thread_topic("Re: FW: AW: hello"), "hello");
        let m = crate::mime::parse(b"X-Priority: 1 (Highest)\r\n\r\n");
        assert_eq!(importance(&m), "2");
        let change = element!(switchboard_wbxml::tags::airsync::ApplicationData [
            element!(em::Read = "1"),
            element!(em::Flag [element!(em::FlagStatus = "2")]),
        ]);
        assert_eq!(parse_change(&change), (Some(true), Some(true)));
        let clear = element!(switchboard_wbxml::tags::airsync::ApplicationData[element!(em::Flag)]);
        assert_eq!(parse_change(&clear), (None, Some(false)));
    }
}
