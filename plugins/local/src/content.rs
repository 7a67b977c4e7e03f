//! What an item's content says about it: subject, sender, time and attachments, read while
//! the content streams into the store. Mail up to [`SMALL_MAIL`] is parsed whole with
//! `mail-parser`; bigger mail goes through the streaming [`Scanner`] (headers still decoded
//! by `mail-parser`, one header block at a time). Calendar items, contacts and tasks are read
//! from their first [`TEXT_CAP`] bytes; their content is kept verbatim either way.
//!
//! Nothing here fails: content that does not parse is stored and listed with an empty subject.

use mail_parser::{Address, MessageParser, MessagePart, MimeHeaders};
use switchboard_sdk::{Attachment, ItemClass};

use crate::decode::{measure, Encoding};
use crate::mime_scan::{ScannedPart, Scanner};
use crate::records::PartRec;
use crate::vobject;

/// Largest message parsed whole in memory.
pub const SMALL_MAIL: u64 = 4 * 1024 * 1024;
/// Bytes of a calendar item, contact, task or note read for its summary.
pub const TEXT_CAP: usize = 1024 * 1024;

/// The summary fields content yields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Subject, title or name.
    pub subject: String,
    /// Sender (mail), organizer (events), e-mail address (contacts).
    pub sender: String,
    /// Date header (mail) or start (events), ms since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Attachments (mail).
    pub attachments: Vec<Attachment>,
    /// Where each attachment's body is.
    pub parts: Vec<PartRec>,
}

/// Reads content as it streams past.
#[derive(Debug)]
pub struct Analyzer {
    class: ItemClass,
    buf: Vec<u8>,
    cap: usize,
    scanner: Option<Box<Scanner>>,
}

impl Analyzer {
    /// An analyzer for content of `class` and `size` bytes.
    pub fn new(class: ItemClass, size: u64) -> Analyzer {
        let big_mail = class == ItemClass::Email && size > SMALL_MAIL;
        let cap = match class {
            ItemClass::Email if big_mail => 0,
            ItemClass::Email => SMALL_MAIL as usize,
            _ => TEXT_CAP,
        };
        Analyzer {
            class,
            buf: Vec::with_capacity((size as usize).min(cap)),
            cap,
            scanner: big_mail.then(|| Box::new(Scanner::new())),
        }
    }

    /// The next piece of content.
    pub fn feed(&mut self, data: &[u8]) {
        if let Some(s) = &mut self.scanner {
            s.feed(data);
        }
        let room = self.cap.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// The end of the content.
    pub fn finish(self) -> Parsed {
        match (self.class, self.scanner) {
            (ItemClass::Email, Some(s)) => large_mail(s.finish()),
            (ItemClass::Email, None) => mail(&self.buf),
            (ItemClass::Note, _) => note(&self.buf),
            (ItemClass::Calendar | ItemClass::Task, _) => {
                let v = vobject::calendar(&String::from_utf8_lossy(&self.buf));
                Parsed {
                    subject: v.summary,
                    sender: v.organizer,
                    timestamp_ms: v.start_ms,
                    ..Parsed::default()
                }
            }
            (ItemClass::Contact, _) => {
                let v = vobject::contact(&String::from_utf8_lossy(&self.buf));
                Parsed {
                    subject: v.name,
                    sender: v.email,
                    ..Parsed::default()
                }
            }
        }
    }
}

/// `Name <address>`, or just the address.
fn first_address(a: Option<&Address>) -> String {
    let Some(addr) = a.and_then(|a| a.first()) else {
        return String::new();
    };
    match (addr.name(), addr.address()) {
        (Some(n), Some(a)) if !n.is_empty() => format!("{n} <{a}>"),
        (_, Some(a)) => a.to_string(),
        (Some(n), None) => n.to_string(),
        (None, None) => String::new(),
    }
}

fn content_type(part: &MessagePart) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => "application/octet-stream".into(),
    }
}

fn encoding_of(e: mail_parser::Encoding) -> Encoding {
    match e {
        mail_parser::Encoding::Base64 => Encoding::Base64,
        mail_parser::Encoding::QuotedPrintable => Encoding::QuotedPrintable,
        mail_parser::Encoding::None => Encoding::Identity,
    }
}

/// A message held whole.
pub fn mail(raw: &[u8]) -> Parsed {
    let Some(msg) = MessageParser::new().parse(raw) else {
        return Parsed::default();
    };
    let mut out = Parsed {
        subject: msg.subject().unwrap_or_default().to_string(),
        sender: first_address(msg.from()),
        timestamp_ms: msg.date().map(|d| d.to_timestamp().saturating_mul(1000)),
        ..Parsed::default()
    };
    for part in msg.attachments() {
        let start = (part.offset_body as usize).min(raw.len());
        let end = (part.offset_end as usize).clamp(start, raw.len());
        let encoding = if part.is_message() {
            Encoding::Identity
        } else {
            encoding_of(part.encoding)
        };
        let (size, index) = measure(encoding, &raw[start..end], start as u64);
        out.attachments.push(Attachment {
            part_id: (out.attachments.len() + 1).to_string(),
            file_name: part.attachment_name().unwrap_or_default().to_string(),
            content_type: if part.is_message() {
                "message/rfc822".into()
            } else {
                content_type(part)
            },
            size,
        });
        out.parts.push(PartRec {
            body_start: start as u64,
            body_end: end as u64,
            encoding,
            size,
            index,
        });
    }
    out
}

/// The first bytes of a message body as text, for search (small messages only).
pub fn body_text(raw: &[u8]) -> String {
    MessageParser::new()
        .parse(raw)
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default()
}

/// A message too big to hold: the header block parsed, the parts from the scanner.
fn large_mail(scan: crate::mime_scan::Scan) -> Parsed {
    let mut out = Parsed::default();
    if let Some(msg) = MessageParser::new().parse_headers(&scan.top_header) {
        out.subject = msg.subject().unwrap_or_default().to_string();
        out.sender = first_address(msg.from());
        out.timestamp_ms = msg.date().map(|d| d.to_timestamp().saturating_mul(1000));
    }
    for part in scan.parts {
        let Some(head) = MessageParser::new().parse_headers(&part.header) else {
            continue;
        };
        let root = head.root_part();
        let ctype = content_type(root);
        let name = root.attachment_name().unwrap_or_default().to_string();
        let disposition_attachment = root
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        let text = ctype.starts_with("text/") || root.content_type().is_none();
        // Inline text without a file name is message body; everything else is an attachment.
        if !(disposition_attachment || !name.is_empty() || !text) {
            continue;
        }
        push_scanned(&mut out, part, name, ctype);
    }
    out
}

fn push_scanned(out: &mut Parsed, part: ScannedPart, file_name: String, content_type: String) {
    out.attachments.push(Attachment {
        part_id: (out.attachments.len() + 1).to_string(),
        file_name,
        content_type,
        size: part.decoded_size,
    });
    out.parts.push(PartRec {
        body_start: part.body_start,
        body_end: part.body_end,
        encoding: part.encoding,
        size: part.decoded_size,
        index: part.index,
    });
}

/// A note: its first non-empty line is its subject.
fn note(raw: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(raw);
    let subject = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    Parsed {
        subject: subject.chars().take(255).collect(),
        ..Parsed::default()
    }
}
