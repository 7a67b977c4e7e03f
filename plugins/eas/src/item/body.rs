//! `airsyncbase:Body` from a message and a `BodyPreference` ([MS-ASAIRS] 2.2.2.9, 2.2.2.12).

use switchboard_sdk::http::{BodyPart, ItemRef};
use switchboard_sdk::Principal;
use switchboard_wbxml::{tags::airsyncbase as asb, Element};

use super::Content;
use crate::mime::{self, Message};
use crate::wire::Streams;

/// Body types.
pub mod kind {
    /// Plain text.
    pub const PLAIN: u8 = 1;
    /// HTML.
    pub const HTML: u8 = 2;
    /// RTF (not offered).
    pub const RTF: u8 = 3;
    /// The whole MIME message.
    pub const MIME: u8 = 4;
}

/// One `BodyPreference`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPref {
    /// Body type wanted.
    pub kind: u8,
    /// Most bytes of body data to send.
    pub truncation: Option<u32>,
    /// Send nothing rather than a truncated body.
    pub all_or_none: bool,
    /// Characters of plain-text preview wanted (14.0+, at most 255).
    pub preview: Option<u32>,
}

impl Default for BodyPref {
    fn default() -> Self {
        BodyPref {
            kind: kind::PLAIN,
            truncation: None,
            all_or_none: false,
            preview: None,
        }
    }
}

/// The `BodyPreference` children of an `Options` (or ItemOperations/Search options) element.
pub fn parse_prefs(options: &Element) -> Vec<BodyPref> {
    options
        .children_tagged(asb::BodyPreference)
        .filter_map(|p| {
            let kind = p.child_text("Type")?.trim().parse().ok()?;
            Some(BodyPref {
                kind,
                truncation: p
                    .child_text("TruncationSize")
                    .and_then(|t| t.trim().parse().ok()),
                all_or_none: p.child_text("AllOrNone").is_some_and(|a| a.trim() == "1"),
                preview: p
                    .child_text("Preview")
                    .and_then(|t| t.trim().parse::<u32>().ok())
                    .map(|n| n.min(255)),
            })
        })
        .take(8)
        .collect()
}

/// The preference to honour: the first the server can produce (plain, HTML or MIME), plain
/// text when there is none. A `MIMESupport` of 2 (MIME for everything) or 1 (for S/MIME)
/// makes a MIME preference win.
pub fn choose(prefs: &[BodyPref]) -> BodyPref {
    prefs
        .iter()
        .copied()
        .find(|p| matches!(p.kind, kind::PLAIN | kind::HTML | kind::MIME))
        .unwrap_or_default()
}

/// The `Body` element for a message.
pub fn render(
    pref: BodyPref,
    who: &Principal,
    item_id: &str,
    content: &Content,
    msg: &Message,
    preview_ok: bool,
    streams: &mut Streams,
) -> Element {
    let mut body = Element::new(asb::Body).with_text_child(asb::Type, pref.kind.to_string());
    let (mut data, full_size, streamed) = match pref.kind {
        kind::MIME => {
            if content.complete() || pref.truncation.is_some() {
                let text: String = String::from_utf8_lossy(&content.bytes)
                    .chars()
                    .filter(|c| *c != '\0')
                    .collect();
                (text, content.total, false)
            } else {
                // Too big to hold: the core streams the raw message into the text.
                (String::new(), content.total, true)
            }
        }
        kind::HTML => {
            let h = msg.html_body();
            let n = h.len() as u64;
            (h, n, false)
        }
        _ => {
            let t = msg.plain();
            let n = t.len() as u64;
            (t, n, false)
        }
    };
    body.push(Element::text_element(
        asb::EstimatedDataSize,
        full_size.to_string(),
    ));
    let incomplete_source = !content.complete() && pref.kind != kind::MIME;
    let mut truncated = incomplete_source;
    if let Some(max) = pref.truncation {
        if streamed {
            truncated = true;
        } else if data.len() as u64 > u64::from(max) {
            truncated = true;
            if pref.all_or_none {
                data.clear();
            } else {
                mime::truncate(&mut data, max as usize);
            }
        }
    }
    if truncated {
        body.push(Element::text_element(asb::Truncated, "1"));
    }
    if streamed && !truncated {
        let marker = streams.placeholder(BodyPart::Item(ItemRef {
            who: who.clone(),
            item_id: item_id.to_string(),
            part_id: None,
        }));
        body.push(Element::text_element(asb::Data, marker));
    } else if !(truncated && pref.all_or_none) {
        body.push(Element::text_element(asb::Data, data));
    }
    if let (Some(n), true) = (pref.preview, preview_ok) {
        if n > 0 {
            let mut p: String = msg.plain().split_whitespace().collect::<Vec<_>>().join(" ");
            mime::truncate(&mut p, n as usize);
            body.push(Element::text_element(asb::Preview, p));
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_wbxml::element;

    fn content(s: &str) -> Content {
        Content {
            bytes: s.as_bytes().to_vec(),
            total: s.len() as u64,
        }
    }

    #[test]
    fn preferences_and_truncation() {
        let opts = element!(switchboard_wbxml::tags::airsync::Options [
            element!(asb::BodyPreference [element!(asb::Type = "3")]),
            element!(asb::BodyPreference [
                element!(asb::Type = "2"),
                element!(asb::TruncationSize = "10"),
                element!(asb::Preview = "999"),
            ]),
        ]);
        let prefs = parse_prefs(&opts);
        assert_eq!(prefs.len(), 2);
        let p = choose(&prefs);
        assert_eq!((p.kind, p.truncation, p.preview), (2, Some(10), Some(255)));
        assert_eq!(choose(&[]).kind, 1);

        let raw = "Subject: x\r\nContent-Type: text/html\r\n\r\n<p>Hello there, friend</p>";
        let msg = crate::mime::parse(raw.as_bytes());
        let who = Principal::parse("a@b.c").unwrap();
        let mut s = Streams::new();
        let b = render(p, &who, "1", &content(raw), &msg, true, &mut s);
        assert_eq!(b.child_text("Type"), Some("2"));
        assert_eq!(b.child_text("Truncated"), Some("1"));
        assert_eq!(b.child_text("Data"), Some("<p>Hello t"));
        assert_eq!(b.child_text("Preview"), Some("Hello there, friend"));
        let all = BodyPref {
            all_or_none: true,
            ..p
        };
        let b = render(all, &who, "1", &content(raw), &msg, false, &mut s);
        assert!(b.child("Data").is_none());
        assert!(b.child("Preview").is_none());
        let mime_pref = BodyPref {
            kind: kind::MIME,
            ..BodyPref::default()
        };
        let b = render(mime_pref, &who, "1", &content(raw), &msg, true, &mut s);
        assert_eq!(b.child_text("Data"), Some(raw));
        assert!(s.is_empty());
        // A message bigger than what was read: MIME is streamed by the core.
        let partial = Content {
            bytes: raw.as_bytes().to_vec(),
            total: 10_000_000,
        };
        let b = render(mime_pref, &who, "1", &partial, &msg, true, &mut s);
        assert!(!s.is_empty());
        assert_eq!(b.child_text("EstimatedDataSize"), Some("10000000"));
    }
}
