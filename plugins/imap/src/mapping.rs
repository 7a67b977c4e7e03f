//! From IMAP to the SDK's shapes, sans-IO: folder kinds (SPECIAL-USE and well-known names),
//! folder and item ids, display names (modified UTF-7), summaries from ENVELOPE and
//! BODYSTRUCTURE (RFC 2047 words, INTERNALDATE), attachments by MIME part number.

use std::borrow::Cow;

use base64::Engine;
use imap_proto::types::{AttributeValue, BodyStructure, ContentEncoding};
use switchboard_sdk::{Attachment, FolderKind};

/// The two flags the SDK knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// `\Seen`
    pub seen: bool,
    /// `\Flagged`
    pub flagged: bool,
}

impl Flags {
    /// From an IMAP flag list.
    pub fn from_imap(flags: &[Cow<'_, str>]) -> Flags {
        let has = |f: &str| flags.iter().any(|x| x.eq_ignore_ascii_case(f));
        Flags {
            seen: has("\\Seen"),
            flagged: has("\\Flagged"),
        }
    }

    /// As one byte (bit 0 seen, bit 1 flagged), for the known-set record.
    pub fn bits(self) -> u8 {
        u8::from(self.seen) | (u8::from(self.flagged) << 1)
    }

    /// From [`Flags::bits`].
    pub fn from_bits(b: u8) -> Flags {
        Flags {
            seen: b & 1 != 0,
            flagged: b & 2 != 0,
        }
    }
}

/// What a FETCH of (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE) told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageMeta {
    /// UID.
    pub uid: u32,
    /// Seen / flagged.
    pub flags: Flags,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE in ms since the epoch (0 when absent or unparsable).
    pub timestamp_ms: i64,
    /// Decoded subject.
    pub subject: String,
    /// `Name <addr>` of the first From.
    pub sender: String,
    /// Attachments by part number.
    pub attachments: Vec<Attachment>,
}

/// Build [`MessageMeta`] from one FETCH response; `None` without a UID.
pub fn meta_from_fetch(attrs: &[AttributeValue<'_>]) -> Option<MessageMeta> {
    let mut m = MessageMeta::default();
    let mut uid = None;
    for a in attrs {
        match a {
            AttributeValue::Uid(u) => uid = Some(*u),
            AttributeValue::Flags(f) => m.flags = Flags::from_imap(f),
            AttributeValue::Rfc822Size(s) => m.size = u64::from(*s),
            AttributeValue::InternalDate(d) => m.timestamp_ms = internal_date_ms(d).unwrap_or(0),
            AttributeValue::Envelope(e) => {
                m.subject = e.subject.as_deref().map(decode_words).unwrap_or_default();
                if let Some(a) = e.from.as_ref().and_then(|f| f.first()) {
                    let mailbox = a.mailbox.as_deref().map(String::from_utf8_lossy);
                    let host = a.host.as_deref().map(String::from_utf8_lossy);
                    let addr = match (mailbox, host) {
                        (Some(mb), Some(h)) => format!("{mb}@{h}"),
                        (Some(mb), None) => mb.into_owned(),
                        _ => String::new(),
                    };
                    m.sender = match a.name.as_deref().map(decode_words) {
                        Some(n) if !n.is_empty() => format!("{n} <{addr}>"),
                        _ => addr,
                    };
                }
            }
            AttributeValue::BodyStructure(b) => {
                let mut out = Vec::new();
                attachments(b, "", true, &mut out);
                m.attachments = out;
            }
            _ => {}
        }
    }
    m.uid = uid?;
    Some(m)
}

fn param<'a>(params: &'a Option<Vec<(Cow<'a, str>, Cow<'a, str>)>>, key: &str) -> Option<&'a str> {
    params
        .as_ref()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_ref())
}

fn section(prefix: &str, n: usize) -> String {
    if prefix.is_empty() {
        n.to_string()
    } else {
        format!("{prefix}.{n}")
    }
}

/// Collect attachments: parts with `Content-Disposition: attachment`, or with a file name
/// that are not text bodies, and attached messages. `prefix` is the part number of `b`
/// (empty for the top level); `top` tells a single-part message body from a part.
pub fn attachments(b: &BodyStructure<'_>, prefix: &str, top: bool, out: &mut Vec<Attachment>) {
    let (common, other) = match b {
        BodyStructure::Multipart { bodies, .. } => {
            for (i, child) in bodies.iter().enumerate() {
                attachments(child, &section(prefix, i + 1), false, out);
            }
            return;
        }
        BodyStructure::Basic { common, other, .. } | BodyStructure::Text { common, other, .. } => {
            (common, other)
        }
        BodyStructure::Message { common, other, .. } => (common, other),
    };
    let part = if top && prefix.is_empty() {
        "1".to_string()
    } else {
        prefix.to_string()
    };
    let disposition = common.disposition.as_ref();
    let is_attachment = disposition.is_some_and(|d| d.ty.eq_ignore_ascii_case("attachment"));
    let file_name = disposition
        .and_then(|d| param(&d.params, "filename"))
        .or_else(|| param(&common.ty.params, "name"))
        .map(|n| decode_words(n.as_bytes()));
    let is_text = common.ty.ty.eq_ignore_ascii_case("text");
    let is_message = matches!(b, BodyStructure::Message { .. });
    let include = if top {
        is_attachment
    } else {
        is_attachment || is_message || (file_name.is_some() && !is_text)
    };
    if !include {
        return;
    }
    let content_type = format!(
        "{}/{}",
        common.ty.ty.to_ascii_lowercase(),
        common.ty.subtype.to_ascii_lowercase()
    );
    let octets = u64::from(other.octets);
    let size = match other.transfer_encoding {
        ContentEncoding::Base64 => octets / 4 * 3,
        _ => octets,
    };
    out.push(Attachment {
        part_id: part,
        file_name: file_name.unwrap_or_else(|| {
            if is_message {
                "message.eml".into()
            } else {
                "attachment".into()
            }
        }),
        content_type,
        size,
    });
}

/// Transfer encoding and encoded size of the part at `section` (`2`, `1.3`; `1` of a
/// single-part message is its body).
pub fn find_part(b: &BodyStructure<'_>, section: &str) -> Option<(crate::decode::Encoding, u64)> {
    let path: Vec<usize> = section
        .split('.')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let mut node = b;
    for (i, &n) in path.iter().enumerate() {
        node = match node {
            BodyStructure::Multipart { bodies, .. } => bodies.get(n.checked_sub(1)?)?,
            BodyStructure::Message { body, .. } if i > 0 => match body.as_ref() {
                BodyStructure::Multipart { bodies, .. } => bodies.get(n.checked_sub(1)?)?,
                single if n == 1 => single,
                _ => return None,
            },
            single if i == 0 && n == 1 => single,
            _ => return None,
        };
    }
    let other = match node {
        BodyStructure::Basic { other, .. }
        | BodyStructure::Text { other, .. }
        | BodyStructure::Message { other, .. } => other,
        BodyStructure::Multipart { .. } => return None,
    };
    let enc = match other.transfer_encoding {
        ContentEncoding::Base64 => crate::decode::Encoding::Base64,
        ContentEncoding::QuotedPrintable => crate::decode::Encoding::QuotedPrintable,
        _ => crate::decode::Encoding::Identity,
    };
    Some((enc, u64::from(other.octets)))
}

/// Decode RFC 2047 encoded words (`=?utf-8?B?…?=`, `=?iso-8859-1?Q?…?=`); text outside them
/// is kept, whitespace between adjacent encoded words dropped. Unknown charsets decode as
/// UTF-8 with replacement characters; malformed words stay as they are.
pub fn decode_words(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut rest: &str = &text;
    let mut pending_ws = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some(start) = rest.find("=?") {
            let (before, from) = rest.split_at(start);
            if let Some((decoded, used)) = encoded_word(from) {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(&pending_ws);
                    out.push_str(before);
                }
                pending_ws.clear();
                out.push_str(&decoded);
                rest = &from[used..];
                last_was_word = true;
                // Hold whitespace until we know whether another word follows.
                let ws_len = rest.len() - rest.trim_start().len();
                pending_ws.push_str(&rest[..ws_len]);
                rest = &rest[ws_len..];
                continue;
            }
            out.push_str(&pending_ws);
            pending_ws.clear();
            out.push_str(before);
            out.push_str("=?");
            rest = &from[2..];
            last_was_word = false;
        } else {
            out.push_str(&pending_ws);
            pending_ws.clear();
            out.push_str(rest);
            break;
        }
    }
    out
}

/// One encoded word at the start of `s`: (decoded text, bytes used).
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let body = s.strip_prefix("=?")?;
    let (charset, rest) = body.split_once('?')?;
    let (enc, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let data = &rest[..end];
    if data.contains(' ') || charset.is_empty() {
        return None;
    }
    let used = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    let bytes = match enc {
        "B" | "b" => base64::engine::general_purpose::STANDARD
            .decode(data.trim_end_matches('='))
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(data.trim_end_matches('='))
            })
            .ok()?,
        "Q" | "q" => {
            let mut out = Vec::new();
            let b = data.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => out.push(b' '),
                    b'=' if i + 2 < b.len() => {
                        let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    b'=' => return None,
                    c => out.push(c),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    let charset = charset.split('*').next().unwrap_or("").to_ascii_lowercase();
    let text = match charset.as_str() {
        "iso-8859-1" | "latin1" | "iso8859-1" | "windows-1252" | "cp1252" | "us-ascii" => {
            bytes.iter().map(|&b| b as char).collect()
        }
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    };
    Some((text, used))
}

/// INTERNALDATE (`30-Nov-2026 18:32:00 +0000`, day may be space-padded) in ms since the epoch.
pub fn internal_date_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(' ')?;
    let mut d = date.split('-');
    let day: i64 = d.next()?.trim().parse().ok()?;
    let month = match d.next()?.to_ascii_lowercase().as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    let year: i64 = d.next()?.parse().ok()?;
    let (time, zone) = rest.trim().split_once(' ')?;
    let mut t = time.split(':');
    let (h, mi, sec): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let z: i64 = zone.get(1..5)?.parse().ok()?;
    let offset = sign * ((z / 100) * 3600 + (z % 100) * 60);
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + mi * 60 + sec - offset) * 1000)
}

/// Decode a modified UTF-7 mailbox name (RFC 3501 §5.1.3); malformed names come back as is.
pub fn mutf7_decode(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(dash) = after.find('-') else {
            return name.to_string();
        };
        let enc = &after[..dash];
        if enc.is_empty() {
            out.push('&');
        } else {
            let b64 = enc.replace(',', "/");
            let Ok(bytes) = base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64) else {
                return name.to_string();
            };
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            out.push_str(&String::from_utf16_lossy(&units));
        }
        rest = &after[dash + 1..];
    }
    out.push_str(rest);
    out
}

/// Encode a folder name as modified UTF-7 (RFC 3501 §5.1.3).
pub fn mutf7_encode(name: &str) -> String {
    fn flush(run: &mut Vec<u16>, out: &mut String) {
        if run.is_empty() {
            return;
        }
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        out.push('&');
        out.push_str(&b64.replace('/', ","));
        out.push('-');
        run.clear();
    }
    let mut out = String::new();
    let mut run: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The kind of a mailbox: SPECIAL-USE attributes first, then well-known names (INBOX always;
/// others only at the top level). `taken` holds kinds already given to another folder.
pub fn folder_kind(name: &str, top_level: bool, attributes: &[String]) -> FolderKind {
    if name.eq_ignore_ascii_case("INBOX") {
        return FolderKind::Inbox;
    }
    for a in attributes {
        match a.as_str() {
            "\\sent" => return FolderKind::Sent,
            "\\drafts" => return FolderKind::Drafts,
            "\\trash" => return FolderKind::Deleted,
            "\\junk" => return FolderKind::Junk,
            _ => {}
        }
    }
    if !top_level {
        return FolderKind::UserMail;
    }
    match name.to_ascii_lowercase().as_str() {
        "sent" | "sent items" | "sent messages" | "sent mail" => FolderKind::Sent,
        "drafts" | "draft" => FolderKind::Drafts,
        "trash" | "deleted items" | "deleted messages" | "deleted" => FolderKind::Deleted,
        "junk" | "spam" | "junk e-mail" | "junk email" => FolderKind::Junk,
        "outbox" => FolderKind::Outbox,
        _ => FolderKind::UserMail,
    }
}

/// An item id: `{uidvalidity}.{uid}.{folder id}`.
pub fn item_id(uid_validity: u32, uid: u32, folder: &str) -> String {
    format!("{uid_validity}.{uid}.{folder}")
}

/// Split an item id; `None` when malformed.
pub fn parse_item_id(id: &str) -> Option<(u32, u32, &str)> {
    let mut p = id.splitn(3, '.');
    let uv = p.next()?.parse().ok()?;
    let uid = p.next()?.parse().ok()?;
    let folder = p.next()?;
    (!folder.is_empty() && uid > 0).then_some((uv, uid, folder))
}

/// A MIME part number (`2`, `1.3`) is digits separated by dots.
pub fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() < 64
        && part
            .split('.')
            .all(|n| !n.is_empty() && n.len() < 6 && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words() {
        assert_eq!(decode_words(b"plain"), "plain");
        assert_eq!(decode_words(b"=?utf-8?B?R3LDvMOfZQ==?="), "Grüße");
        assert_eq!(
            decode_words(b"=?ISO-8859-1?Q?Caf=E9_au_lait?= today"),
            "Café au lait today"
        );
        assert_eq!(decode_words(b"=?utf-8?q?a?= =?utf-8?q?b?="), "ab");
        assert_eq!(decode_words(b"x =?utf-8?q?a?= y"), "x a y");
        assert_eq!(decode_words(b"=?bogus"), "=?bogus");
        assert_eq!(decode_words(b"=?utf-8?Q?bad=Z?="), "=?utf-8?Q?bad=Z?=");
    }

    #[test]
    fn internal_dates() {
        assert_eq!(internal_date_ms("01-Jan-1970 00:00:00 +0000"), Some(0));
        assert_eq!(
            internal_date_ms("30-Nov-2026 18:32:00 +0100"),
            internal_date_ms("30-Nov-2026 17:32:00 +0000")
        );
        assert_eq!(
            internal_date_ms(" 2-Feb-2000 00:00:00 +0000"),
            Some(949_449_600_000)
        );
        assert_eq!(internal_date_ms("nonsense"), None);
        assert_eq!(internal_date_ms("32-Jan-2000 00:00:00 +0000"), None);
    }

    #[test]
    fn modified_utf7() {
        assert_eq!(mutf7_decode("INBOX"), "INBOX");
        assert_eq!(mutf7_decode("Entw&APw-rfe"), "Entwürfe");
        assert_eq!(mutf7_decode("A&-B"), "A&B");
        assert_eq!(mutf7_decode("&ZeVnLIqe-"), "日本語");
        assert_eq!(mutf7_decode("broken&abc"), "broken&abc");
        for name in ["INBOX", "Entwürfe", "A&B", "日本語 notes", "x/y", "😀"] {
            assert_eq!(mutf7_decode(&mutf7_encode(name)), name);
        }
        assert_eq!(mutf7_encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(mutf7_encode("A&B"), "A&-B");
    }

    #[test]
    fn kinds() {
        assert_eq!(folder_kind("inbox", true, &[]), FolderKind::Inbox);
        assert_eq!(
            folder_kind("Gesendet", true, &["\\sent".into()]),
            FolderKind::Sent
        );
        assert_eq!(folder_kind("Sent Items", true, &[]), FolderKind::Sent);
        assert_eq!(folder_kind("Deleted Items", true, &[]), FolderKind::Deleted);
        assert_eq!(folder_kind("Work/Sent", false, &[]), FolderKind::UserMail);
        assert_eq!(folder_kind("Projects", true, &[]), FolderKind::UserMail);
    }

    #[test]
    fn ids() {
        let id = item_id(7, 42, "INBOX.Sub.x");
        assert_eq!(parse_item_id(&id), Some((7, 42, "INBOX.Sub.x")));
        assert_eq!(parse_item_id("7.0.INBOX"), None);
        assert_eq!(parse_item_id("x.1.INBOX"), None);
        assert_eq!(parse_item_id("7.1."), None);
        assert!(valid_part("2.1"));
        assert!(!valid_part("2..1"));
        assert!(!valid_part("HEADER"));
        assert!(!valid_part(""));
    }

    #[test]
    fn summaries_from_real_fetch_responses() {
        let raw = b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Flagged) RFC822.SIZE 812 INTERNALDATE \"30-Nov-2026 10:00:00 +0000\" ENVELOPE (\"Mon, 30 Nov 2026 10:00:00 +0000\" \"=?utf-8?B?R3LDvMOfZQ==?=\" ((\"Bob B\" NIL \"bob\" \"example.com\")) NIL NIL NIL NIL NIL NIL NIL) BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 26 1 NIL NIL NIL NIL)(\"application\" \"octet-stream\" (\"name\" \"a.bin\") NIL NIL \"base64\" 16 NIL (\"attachment\" (\"filename\" \"a.bin\")) NIL NIL) \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL))\r\n";
        let (_, resp) = imap_proto::parser::parse_response(raw).unwrap();
        let imap_proto::Response::Fetch(_, attrs) = resp else {
            panic!("not a fetch")
        };
        let m = meta_from_fetch(&attrs).unwrap();
        assert_eq!(m.uid, 2);
        assert_eq!(
            m.flags,
            Flags {
                seen: true,
                flagged: true
            }
        );
        assert_eq!(m.size, 812);
        assert_eq!(m.subject, "Grüße");
        assert_eq!(m.sender, "Bob B <bob@example.com>");
        assert_eq!(
            m.timestamp_ms,
            internal_date_ms("30-Nov-2026 10:00:00 +0000").unwrap()
        );
        assert_eq!(
            m.attachments,
            [Attachment {
                part_id: "2".into(),
                file_name: "a.bin".into(),
                content_type: "application/octet-stream".into(),
                size: 12
            }]
        );
        let single = b"* 1 FETCH (UID 1 BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL))\r\n";
        let (_, resp) = imap_proto::parser::parse_response(single).unwrap();
        let imap_proto::Response::Fetch(_, attrs) = resp else {
            panic!("not a fetch")
        };
        assert!(meta_from_fetch(&attrs).unwrap().attachments.is_empty());
        let Some(AttributeValue::BodyStructure(bs)) = attrs.last() else {
            panic!()
        };
        assert_eq!(
            find_part(bs, "1"),
            Some((crate::decode::Encoding::Identity, 6))
        );
        assert_eq!(find_part(bs, "2"), None);
        let (_, resp) = imap_proto::parser::parse_response(raw).unwrap();
        let imap_proto::Response::Fetch(_, attrs) = resp else {
            panic!()
        };
        let Some(AttributeValue::BodyStructure(bs)) = attrs.last() else {
            panic!()
        };
        assert_eq!(
            find_part(bs, "2"),
            Some((crate::decode::Encoding::Base64, 16))
        );
        assert_eq!(find_part(bs, "3"), None);
        assert_eq!(find_part(bs, "0"), None);
        assert_eq!(find_part(bs, "1.1"), None);
    }
}
