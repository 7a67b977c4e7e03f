//! The request URI's query value, in both forms of [MS-ASHTTP] 2.2.1.1.1:
//!
//! - plain text: `Cmd=Sync&User=alice&DeviceId=ABC123&DeviceType=iPhone` (+ command
//!   parameters such as `CollectionId`, `ItemId`, `SaveInSent=T`), with the protocol version
//!   and policy key in the `MS-ASProtocolVersion` and `X-MS-PolicyKey` headers;
//! - base64 (12.1 and later): one byte sequence carrying the protocol version, the command
//!   code, the locale, the device id, the policy key, the device type and tagged command
//!   parameters (2.2.1.1.1.1).
//!
//! Parsing is bounded (the query is at most [`MAX_QUERY`] bytes, every length field is checked
//! against what is left) and never panics; every problem is a [`QueryError`] that the caller
//! answers with HTTP 400.

use base64::Engine as _;
use thiserror::Error;

use super::command::Command;
use super::version::Version;

/// The longest query value accepted.
pub const MAX_QUERY: usize = 4096;
/// The longest device id or device type kept (longer ones are refused).
pub const MAX_DEVICE_FIELD: usize = 64;

/// Why a query value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// No query at all.
    #[error("the request has no query value")]
    Empty,
    /// Longer than [`MAX_QUERY`].
    #[error("the query value is longer than {MAX_QUERY} bytes")]
    TooLong,
    /// A required parameter is absent.
    #[error("the query lacks {0}")]
    Missing(&'static str),
    /// A parameter appears twice.
    #[error("the query names {0} twice")]
    Duplicate(String),
    /// `Cmd` (or the command code) names nothing this server knows.
    #[error("unknown command {0}")]
    UnknownCommand(String),
    /// The base64 form does not decode.
    #[error("the query is neither plain parameters nor valid base64")]
    BadBase64,
    /// The decoded byte sequence ends inside a field.
    #[error("the encoded query ends inside the {0} field")]
    Truncated(&'static str),
    /// A field holds a value of the wrong shape.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The protocol version is not one of `12.1,14.0,14.1,16.0,16.1`.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(String),
}

/// Which form the query used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryForm {
    /// `Cmd=…&…`.
    Plain,
    /// The base64-encoded byte sequence.
    Base64,
}

/// Command parameters ([MS-ASHTTP] 2.2.1.1.1.1.3 and 2.2.1.1.1.2.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandParams {
    /// `AttachmentName` (GetAttachment).
    pub attachment_name: Option<String>,
    /// `CollectionId` (SmartForward, SmartReply).
    pub collection_id: Option<String>,
    /// `ItemId` (SmartForward, SmartReply).
    pub item_id: Option<String>,
    /// `LongId` (SmartForward, SmartReply: an item found by Search).
    pub long_id: Option<String>,
    /// `Occurrence` (SmartForward, SmartReply on a recurring meeting).
    pub occurrence: Option<String>,
    /// `SaveInSent=T` / Options bit 0x01.
    pub save_in_sent: bool,
    /// `MS-ASAcceptMultiPart: T` / Options bit 0x02.
    pub accept_multipart: bool,
}

/// What the query (and the headers standing in for base64 fields) says about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EasQuery {
    /// The form it came in.
    pub form: QueryForm,
    /// The command.
    pub command: Command,
    /// The protocol version; `None` when the plain form came without the header (the caller
    /// decides: OPTIONS-less clients default to the newest common version).
    pub version: Option<Version>,
    /// The device id: as sent when it is plain ASCII, else the hex of its bytes (GUIDs).
    pub device_id: String,
    /// The device type (`iPhone`, `Android`, …).
    pub device_type: String,
    /// The `User` parameter, informational (the principal is what counts).
    pub user: Option<String>,
    /// The policy key; `None` when absent or 0.
    pub policy_key: Option<u32>,
    /// The locale (base64 form only), e.g. `0x0409`.
    pub locale: Option<u16>,
    /// Command parameters.
    pub params: CommandParams,
}

/// Parse a query value together with the request headers (header names compared
/// case-insensitively).
pub fn parse(query: &str, headers: &[(String, String)]) -> Result<EasQuery, QueryError> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    if query.len() > MAX_QUERY {
        return Err(QueryError::TooLong);
    }
    if query.is_empty() {
        return Err(QueryError::Empty);
    }
    let mut q = if is_plain(query) {
        let mut q = parse_plain(query)?;
        q.version = match header("MS-ASProtocolVersion") {
            Some(v) => Some(
                Version::from_header(v).ok_or_else(|| QueryError::UnsupportedVersion(v.into()))?,
            ),
            None => None,
        };
        q.policy_key = match header("X-MS-PolicyKey") {
            Some(k) => parse_policy_key(k)?,
            None => None,
        };
        q
    } else {
        parse_base64(query)?
    };
    if header("MS-ASAcceptMultiPart").is_some_and(|v| v.eq_ignore_ascii_case("T")) {
        q.params.accept_multipart = true;
    }
    Ok(q)
}

/// A policy key as text: a 32-bit unsigned integer; `0` means none.
pub fn parse_policy_key(s: &str) -> Result<Option<u32>, QueryError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let key: u32 = s.parse().map_err(|_| QueryError::Invalid("policy key"))?;
    Ok((key != 0).then_some(key))
}

/// The plain form always carries `Cmd=`; base64 never contains `&` and decodes to a byte
/// sequence whose second byte is a command code.
fn is_plain(query: &str) -> bool {
    query
        .split('&')
        .any(|p| p.split_once('=').is_some_and(|(k, _)| k == "Cmd"))
}

fn parse_plain(query: &str) -> Result<EasQuery, QueryError> {
    let mut cmd = None;
    let mut user = None;
    let mut device_id = None;
    let mut device_type = None;
    let mut params = CommandParams::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v).ok_or(QueryError::Invalid("percent-encoding"))?;
        let slot = match k {
            "Cmd" => &mut cmd,
            "User" => &mut user,
            "DeviceId" => &mut device_id,
            "DeviceType" => &mut device_type,
            "AttachmentName" => &mut params.attachment_name,
            "CollectionId" => &mut params.collection_id,
            "ItemId" => &mut params.item_id,
            "LongId" => &mut params.long_id,
            "Occurrence" => &mut params.occurrence,
            "SaveInSent" => {
                params.save_in_sent = match v.as_str() {
                    "T" | "t" => true,
                    "F" | "f" => false,
                    _ => return Err(QueryError::Invalid("SaveInSent")),
                };
                continue;
            }
            // Unknown parameters are ignored, as servers do for forward compatibility.
            _ => continue,
        };
        if slot.is_some() {
            return Err(QueryError::Duplicate(k.to_string()));
        }
        *slot = Some(v);
    }
    let cmd = cmd.ok_or(QueryError::Missing("Cmd"))?;
    let command = Command::from_name(&cmd).ok_or(QueryError::UnknownCommand(cmd))?;
    let device_id = device_id.ok_or(QueryError::Missing("DeviceId"))?;
    if !valid_device_id(device_id.as_bytes()) {
        return Err(QueryError::Invalid("DeviceId"));
    }
    let device_type = device_type.ok_or(QueryError::Missing("DeviceType"))?;
    if !valid_device_type(device_type.as_bytes()) {
        return Err(QueryError::Invalid("DeviceType"));
    }
    Ok(EasQuery {
        form: QueryForm::Plain,
        command,
        version: None,
        device_id,
        device_type,
        user,
        policy_key: None,
        locale: None,
        params,
    })
}

/// Base64 parameter tags ([MS-ASHTTP] 2.2.1.1.1.1.3).
mod tag {
    pub const ATTACHMENT_NAME: u8 = 0;
    pub const COLLECTION_ID: u8 = 1;
    pub const ITEM_ID: u8 = 3;
    pub const LONG_ID: u8 = 4;
    pub const OCCURRENCE: u8 = 6;
    pub const OPTIONS: u8 = 7;
    pub const USER: u8 = 8;
}

/// A cursor over the decoded bytes; every read names the field it is for.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn byte(&mut self, field: &'static str) -> Result<u8, QueryError> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or(QueryError::Truncated(field))?;
        self.rest = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], QueryError> {
        if self.rest.len() < n {
            return Err(QueryError::Truncated(field));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }
}

fn parse_base64(query: &str) -> Result<EasQuery, QueryError> {
    // Clients percent-encode `+`, `/` and `=`; some proxies turn `+` into a space.
    let text = percent_decode(query).ok_or(QueryError::BadBase64)?;
    let text = text.replace(' ', "+");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.as_bytes()))
        .map_err(|_| QueryError::BadBase64)?;
    let mut c = Cursor { rest: &bytes };

    let version_byte = c.byte("protocol version")?;
    let version = Version::from_byte(version_byte).ok_or_else(|| {
        QueryError::UnsupportedVersion(format!("{}.{}", version_byte / 10, version_byte % 10))
    })?;
    let code = c.byte("command code")?;
    let command =
        Command::from_code(code).ok_or_else(|| QueryError::UnknownCommand(format!("#{code}")))?;
    let locale = c.take(2, "locale")?;
    let locale = u16::from_le_bytes([locale[0], locale[1]]);

    let len = c.byte("device id length")?;
    let raw_id = c.take(usize::from(len), "device id")?;
    let device_id = if valid_device_id(raw_id) {
        String::from_utf8_lossy(raw_id).into_owned()
    } else if !raw_id.is_empty() && raw_id.len() * 2 <= MAX_DEVICE_FIELD {
        hex(raw_id)
    } else {
        return Err(QueryError::Invalid("device id"));
    };

    let policy_key = match c.byte("policy key length")? {
        0 => None,
        4 => {
            let k = c.take(4, "policy key")?;
            let k = u32::from_le_bytes([k[0], k[1], k[2], k[3]]);
            (k != 0).then_some(k)
        }
        _ => return Err(QueryError::Invalid("policy key length")),
    };

    let len = c.byte("device type length")?;
    let raw_type = c.take(usize::from(len), "device type")?;
    if !valid_device_type(raw_type) {
        return Err(QueryError::Invalid("device type"));
    }
    let device_type = String::from_utf8_lossy(raw_type).into_owned();

    let mut params = CommandParams::default();
    let mut user = None;
    while !c.rest.is_empty() {
        let t = c.byte("parameter tag")?;
        let len = c.byte("parameter length")?;
        let value = c.take(usize::from(len), "parameter value")?;
        let text = || {
            std::str::from_utf8(value)
                .map(str::to_string)
                .map_err(|_| QueryError::Invalid("parameter value"))
        };
        let slot = match t {
            tag::ATTACHMENT_NAME => &mut params.attachment_name,
            tag::COLLECTION_ID => &mut params.collection_id,
            tag::ITEM_ID => &mut params.item_id,
            tag::LONG_ID => &mut params.long_id,
            tag::OCCURRENCE => &mut params.occurrence,
            tag::USER => &mut user,
            tag::OPTIONS => {
                let [bits] = value else {
                    return Err(QueryError::Invalid("Options parameter"));
                };
                params.save_in_sent = bits & 0x01 != 0;
                params.accept_multipart = bits & 0x02 != 0;
                continue;
            }
            // Tags 2 and 5 were never defined; newer tags are ignored like unknown plain
            // parameters.
            _ => continue,
        };
        if slot.is_some() {
            return Err(QueryError::Duplicate(format!("parameter tag {t}")));
        }
        *slot = Some(text()?);
    }

    Ok(EasQuery {
        form: QueryForm::Base64,
        command,
        version: Some(version),
        device_id,
        device_type,
        user,
        policy_key,
        locale: Some(locale),
        params,
    })
}

/// Device ids go into storage keys and park groups: letters, digits, `-`, `_`, `.`.
fn valid_device_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_DEVICE_FIELD
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn valid_device_type(t: &[u8]) -> bool {
    !t.is_empty() && t.len() <= MAX_DEVICE_FIELD && t.iter().all(|b| b.is_ascii_graphic())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `%XX` and `+` decoding; `None` for an incomplete escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_val(*bytes.get(i + 1)?)?;
                let lo = hex_val(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn spec_example_base64_query() {
        // [MS-ASHTTP] 2.2.1.1.1.1: equivalent to
        // Cmd=Sync&User=…&DeviceId=v140Device&DeviceType=SmartPhone with version 14.0.
        let q = parse("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", &[]).unwrap();
        assert_eq!(q.form, QueryForm::Base64);
        assert_eq!(q.command, Command::Sync);
        assert_eq!(q.version, Some(Version::V14_0));
        assert_eq!(q.locale, Some(0x0409));
        assert_eq!(q.device_id, "v140Device");
        assert_eq!(q.device_type, "SmartPhone");
        assert_eq!(q.policy_key, None);
        assert_eq!(q.params, CommandParams::default());
    }

    #[test]
    fn spec_example_plain_query() {
        let q = parse(
            "Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone",
            &h(&[
                ("MS-ASProtocolVersion", "14.0"),
                ("X-MS-PolicyKey", "3942919513"),
            ]),
        )
        .unwrap();
        assert_eq!(q.form, QueryForm::Plain);
        assert_eq!(q.command, Command::Sync);
        assert_eq!(q.version, Some(Version::V14_0));
        assert_eq!(q.user.as_deref(), Some("rmjones"));
        assert_eq!(q.device_id, "v140Device");
        assert_eq!(q.policy_key, Some(3_942_919_513));
    }

    #[test]
    fn plain_command_parameters() {
        let q = parse(
            "Cmd=SmartReply&User=a%40b.c&DeviceId=X1&DeviceType=iPhone&CollectionId=5&ItemId=5%3A12&SaveInSent=T",
            &h(&[("ms-asprotocolversion", "16.1"), ("MS-ASAcceptMultiPart", "T")]),
        )
        .unwrap();
        assert_eq!(q.command, Command::SmartReply);
        assert_eq!(q.version, Some(Version::V16_1));
        assert_eq!(q.user.as_deref(), Some("a@b.c"));
        assert_eq!(q.params.collection_id.as_deref(), Some("5"));
        assert_eq!(q.params.item_id.as_deref(), Some("5:12"));
        assert!(q.params.save_in_sent);
        assert!(q.params.accept_multipart);
    }

    #[test]
    fn base64_with_policy_key_guid_device_and_parameters() {
        let mut b = vec![161, 3, 0x07, 0x04, 16];
        b.extend_from_slice(&[0xAB; 16]); // a binary GUID
        b.extend_from_slice(&[4, 0x78, 0x56, 0x34, 0x12]);
        b.push(6);
        b.extend_from_slice(b"iPhone");
        b.extend_from_slice(&[1, 2, b'1', b'7']);
        b.extend_from_slice(&[3, 4, b'1', b'7', b':', b'9']);
        b.extend_from_slice(&[7, 1, 0x03]);
        b.extend_from_slice(&[8, 5, b'a', b'l', b'i', b'c', b'e']);
        b.extend_from_slice(&[42, 1, b'x']); // unknown tag: ignored
        let q = parse(&b64(&b), &[]).unwrap();
        assert_eq!(q.version, Some(Version::V16_1));
        assert_eq!(q.command, Command::SmartReply);
        assert_eq!(q.locale, Some(0x0407));
        assert_eq!(q.device_id, "ab".repeat(16));
        assert_eq!(q.policy_key, Some(0x1234_5678));
        assert_eq!(q.device_type, "iPhone");
        assert_eq!(q.params.collection_id.as_deref(), Some("17"));
        assert_eq!(q.params.item_id.as_deref(), Some("17:9"));
        assert!(q.params.save_in_sent && q.params.accept_multipart);
        assert_eq!(q.user.as_deref(), Some("alice"));
    }

    #[test]
    fn base64_percent_encoded_and_space_mangled() {
        let mut b = vec![
            141, 9, 0x09, 0x04, 3, b'D', b'E', b'V', 0, 3, b'W', b'P', b'8',
        ];
        b.extend_from_slice(&[8, 3, 0xfb, 0xff, 0xfe]); // non-UTF-8 user: refused below
        let enc = b64(&b[..13]);
        let mangled = enc
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let q = parse(&mangled, &[]).unwrap();
        assert_eq!(q.command, Command::FolderSync);
        assert_eq!(q.version, Some(Version::V14_1));
        assert_eq!(
            parse(&b64(&b), &[]).unwrap_err(),
            QueryError::Invalid("parameter value")
        );
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let mut b = vec![141, 0, 0x09, 0x04, 3, b'D', b'E', b'V', 4, 1, 0, 0, 0, 3];
        b.extend_from_slice(b"WP8");
        b.extend_from_slice(&[1, 2, b'1', b'7']);
        assert!(parse(&b64(&b), &[]).is_ok());
        for n in 1..b.len() {
            let cut = &b[..n];
            let r = parse(&b64(cut), &[]);
            // Cutting exactly after the device type leaves a valid, parameterless query.
            if n == 17 {
                assert!(r.is_ok(), "{n}");
            } else {
                assert!(
                    matches!(r, Err(QueryError::Truncated(_) | QueryError::Invalid(_))),
                    "{n}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn bad_queries_are_refused_with_reasons() {
        let hd = h(&[("MS-ASProtocolVersion", "14.1")]);
        let cases: Vec<(&str, QueryError)> = vec![
            ("", QueryError::Empty),
            ("Cmd=Sync&DeviceType=x", QueryError::Missing("DeviceId")),
            ("Cmd=Sync&DeviceId=A", QueryError::Missing("DeviceType")),
            (
                "DeviceId=A&Cmd=Bogus&DeviceType=x",
                QueryError::UnknownCommand("Bogus".into()),
            ),
            (
                "Cmd=Sync&DeviceId=A/../B&DeviceType=x",
                QueryError::Invalid("DeviceId"),
            ),
            (
                "Cmd=Sync&Cmd=Ping&DeviceId=A&DeviceType=x",
                QueryError::Duplicate("Cmd".into()),
            ),
            (
                "Cmd=Sync&DeviceId=A&DeviceType=x&SaveInSent=Y",
                QueryError::Invalid("SaveInSent"),
            ),
            (
                "Cmd=Sync&DeviceId=A%2&DeviceType=x",
                QueryError::Invalid("percent-encoding"),
            ),
            ("!!!not base64!!!", QueryError::BadBase64),
        ];
        for (q, e) in cases {
            assert_eq!(parse(q, &hd).unwrap_err(), e, "{q}");
        }
        assert_eq!(
            parse(&"A".repeat(MAX_QUERY + 1), &hd).unwrap_err(),
            QueryError::TooLong
        );
        assert_eq!(
            parse(
                "Cmd=Sync&DeviceId=A&DeviceType=x",
                &h(&[("MS-ASProtocolVersion", "2.5")])
            )
            .unwrap_err(),
            QueryError::UnsupportedVersion("2.5".into())
        );
        assert_eq!(
            parse(
                "Cmd=Sync&DeviceId=A&DeviceType=x",
                &h(&[("MS-ASProtocolVersion", "14.1"), ("X-MS-PolicyKey", "-1")])
            )
            .unwrap_err(),
            QueryError::Invalid("policy key")
        );
        // Version 12.0 in the base64 form; command code 200; policy key length 3.
        assert_eq!(
            parse(&b64(&[120, 0, 9, 4, 1, b'A', 0, 1, b'x']), &[]).unwrap_err(),
            QueryError::UnsupportedVersion("12.0".into())
        );
        assert_eq!(
            parse(&b64(&[141, 200, 9, 4, 1, b'A', 0, 1, b'x']), &[]).unwrap_err(),
            QueryError::UnknownCommand("#200".into())
        );
        assert_eq!(
            parse(&b64(&[141, 0, 9, 4, 1, b'A', 3, 1, 2, 3, 1, b'x']), &[]).unwrap_err(),
            QueryError::Invalid("policy key length")
        );
        assert_eq!(
            parse(&b64(&[141, 0, 9, 4, 1, b'A', 0, 1, b'x', 7, 2, 1, 1]), &[]).unwrap_err(),
            QueryError::Invalid("Options parameter")
        );
    }

    #[test]
    fn policy_key_zero_means_none() {
        assert_eq!(parse_policy_key("0"), Ok(None));
        assert_eq!(parse_policy_key(" 17 "), Ok(Some(17)));
        assert!(parse_policy_key("4294967296").is_err());
    }
}
