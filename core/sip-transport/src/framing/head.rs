//! Header-section scanning shared by the framers, plus [`peek_head`] and [`error_response`].

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::iter::Peekable;
use std::sync::OnceLock;

use super::FrameError;

/// Outcome of a search for the end of a header section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderEnd {
    /// The header section ends just before this index (the empty line is included).
    Found(usize),
    /// Not found yet; a later search over a longer buffer may resume at `resume`.
    NotYet {
        /// Index from which to search again once more bytes arrived.
        resume: usize,
    },
}

/// Finds the empty line ending a header section: a line feed followed by either another line
/// feed or CRLF. That accepts the correct `CRLF CRLF` as well as the bare `LF LF` (and mixes)
/// that sloppy clients send. The search starts at `from`, so a caller feeding a growing buffer
/// scans every byte only a bounded number of times.
pub(crate) fn find_header_end(buf: &[u8], from: usize) -> HeaderEnd {
    let mut at = from;
    loop {
        let Some(lf) = buf
            .get(at..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map(|off| at + off)
        else {
            return HeaderEnd::NotYet { resume: buf.len() };
        };
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return HeaderEnd::Found(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return HeaderEnd::Found(lf + 3),
            (None, _) | (Some(b'\r'), None) => return HeaderEnd::NotYet { resume: lf },
            _ => at = lf + 1,
        }
    }
}

/// Skips the line breaks (CRLF or bare LF) that may precede a message (RFC 3261 §7.5).
pub(crate) fn strip_leading_newlines(mut data: &[u8]) -> &[u8] {
    loop {
        data = match data {
            [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] => rest,
            _ => return data,
        }
    }
}

/// Complete lines (terminated by LF) of a buffer, without their CR LF. A trailing line without
/// its LF is not yielded: in a truncated header it could be cut in the middle of a value.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let pos = self.rest.iter().position(|&b| b == b'\n')?;
        let (line, rest) = self.rest.split_at(pos);
        self.rest = rest.get(1..).unwrap_or_default();
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// One header field, folded continuation lines joined with a single space.
struct Field<'a> {
    name: &'a [u8],
    value: Cow<'a, [u8]>,
}

/// The header fields after the start line, up to the empty line ending the header section.
/// Lines without a colon are skipped (they are the message parser's business, not ours).
struct Fields<'a> {
    lines: Peekable<Lines<'a>>,
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_wsp(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_wsp(*last) {
            break;
        }
        s = rest;
    }
    s
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        loop {
            let line = self.lines.next()?;
            let Some(&first) = line.first() else {
                // The empty line: end of the header section.
                self.lines = Lines { rest: &[] }.peekable();
                return None;
            };
            if is_wsp(first) {
                // A continuation without a field to continue.
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = line.split_at(colon);
            let mut value = Cow::Borrowed(trim(value.get(1..).unwrap_or_default()));
            while let Some(next) = self.lines.peek() {
                if !next.first().is_some_and(|&b| is_wsp(b)) {
                    break;
                }
                let more = trim(next);
                if !more.is_empty() {
                    let v = value.to_mut();
                    if !v.is_empty() {
                        v.push(b' ');
                    }
                    v.extend_from_slice(more);
                }
                self.lines.next();
            }
            return Some(Field {
                name: trim(name),
                value,
            });
        }
    }
}

/// Splits a header section (or a prefix of one) into its start line and header fields.
fn start_and_fields(head: &[u8]) -> Option<(&[u8], Fields<'_>)> {
    let mut lines = Lines { rest: head };
    let start = lines.next()?;
    Some((
        start,
        Fields {
            lines: lines.peekable(),
        },
    ))
}

/// Whether a header name is `long` (case-insensitive) or its compact form.
fn name_is(name: &[u8], long: &[u8], compact: Option<u8>) -> bool {
    name.eq_ignore_ascii_case(long)
        || compact.is_some_and(|c| matches!(name, [n] if n.eq_ignore_ascii_case(&c)))
}

/// The `Content-Length` (or compact `l`) of a complete header section: `None` if absent,
/// an error if a value is not a decimal number or two values differ.
pub(crate) fn content_length(head: &[u8]) -> Result<Option<u64>, FrameError> {
    let Some((_, fields)) = start_and_fields(head) else {
        return Ok(None);
    };
    let mut found: Option<u64> = None;
    for field in fields {
        if !name_is(field.name, b"content-length", Some(b'l')) {
            continue;
        }
        let n = parse_decimal(&field.value).ok_or_else(|| FrameError::InvalidContentLength {
            value: String::from_utf8_lossy(&field.value)
                .chars()
                .take(32)
                .collect(),
        })?;
        match found {
            Some(first) if first != n => {
                return Err(FrameError::ConflictingContentLength { first, second: n })
            }
            _ => found = Some(n),
        }
    }
    Ok(found)
}

/// `1*DIGIT` as a u64; `None` for anything else, including values that overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// The first line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartLine<'a> {
    Request { method: &'a str },
    Response { status: u16 },
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Parses `Method SP Request-URI SP SIP/2.0` or `SIP/2.0 SP Status-Code SP Reason-Phrase`.
fn parse_start_line(line: &[u8]) -> Option<StartLine<'_>> {
    const VERSION: &[u8] = b"SIP/2.0";
    let status_line = line
        .get(..VERSION.len() + 1)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/2.0 "));
    if status_line {
        let rest = line.get(VERSION.len() + 1..)?;
        let (code, after) = rest.split_at(rest.len().min(3));
        if code.len() != 3
            || !code.iter().all(u8::is_ascii_digit)
            || !(after.is_empty() || after.starts_with(b" "))
        {
            return None;
        }
        let status = u16::try_from(parse_decimal(code)?)
            .ok()
            .filter(|s| (100..=699).contains(s))?;
        return Some(StartLine::Response { status });
    }
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts
        .next()
        .filter(|m| !m.is_empty() && m.iter().all(|&b| is_token_char(b)))?;
    let uri = parts.next().filter(|u| !u.is_empty())?;
    let version = parts.next()?;
    if !version.eq_ignore_ascii_case(VERSION)
        || uri
            .iter()
            .any(|&b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return None;
    }
    // Token characters are ASCII, so this cannot fail.
    let method = std::str::from_utf8(method).ok()?;
    Some(StartLine::Request { method })
}

/// The header fields transport-level responses copy (RFC 3261 §8.2.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copied {
    Via,
    From,
    To,
    CallId,
    CSeq,
}

impl Copied {
    const ALL: [Copied; 5] = [
        Copied::Via,
        Copied::From,
        Copied::To,
        Copied::CallId,
        Copied::CSeq,
    ];

    fn of(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| {
            let (long, compact) = c.names();
            name_is(name, long.as_bytes(), compact)
        })
    }

    fn names(self) -> (&'static str, Option<u8>) {
        match self {
            Copied::Via => ("Via", Some(b'v')),
            Copied::From => ("From", Some(b'f')),
            Copied::To => ("To", Some(b't')),
            Copied::CallId => ("Call-ID", Some(b'i')),
            Copied::CSeq => ("CSeq", None),
        }
    }
}

/// A message head as far as the transport needs it, borrowing from the message.
struct RawHead<'a> {
    start: StartLine<'a>,
    /// The copied fields in the order they appear.
    fields: Vec<(Copied, Cow<'a, [u8]>)>,
}

impl RawHead<'_> {
    fn values(&self, which: Copied) -> impl Iterator<Item = &[u8]> {
        self.fields
            .iter()
            .filter(move |(c, _)| *c == which)
            .map(|(_, v)| v.as_ref())
    }
}

/// Parses the start line and the copied header fields of a message, a header section, or a
/// prefix of one (only complete lines are used).
fn raw_head(data: &[u8]) -> Option<RawHead<'_>> {
    let data = strip_leading_newlines(data);
    let head = match find_header_end(data, 0) {
        HeaderEnd::Found(end) => data.get(..end)?,
        HeaderEnd::NotYet { .. } => data,
    };
    let (start, fields) = start_and_fields(head)?;
    let start = parse_start_line(start)?;
    let fields = fields
        .filter_map(|f| Copied::of(f.name).map(|c| (c, f.value)))
        .collect();
    Some(RawHead { start, fields })
}

/// What the transport knows about a message without parsing it fully. Built by [`peek_head`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageHead {
    /// The method, for a request (`Some("INVITE")`); `None` for a response.
    pub method: Option<String>,
    /// The status code, for a response (`Some(200)`); `None` for a request.
    pub status: Option<u16>,
    /// Values of every `Via` (`v`) header line, in order (a line may hold several
    /// comma-separated values; it is kept as sent).
    pub via: Vec<String>,
    /// Values of the `From` (`f`) header lines.
    pub from: Vec<String>,
    /// Values of the `To` (`t`) header lines.
    pub to: Vec<String>,
    /// Values of the `Call-ID` (`i`) header lines.
    pub call_id: Vec<String>,
    /// Values of the `CSeq` header lines (e.g. `"1 INVITE"`).
    pub cseq: Vec<String>,
}

impl MessageHead {
    /// Whether the message is a request (as opposed to a response).
    pub fn is_request(&self) -> bool {
        self.method.is_some()
    }

    /// The `branch` parameter of the topmost Via (the first value of the first Via line): what
    /// names a transaction (RFC 3261 §17.1.3). `None` without a Via or a branch.
    pub fn top_branch(&self) -> Option<&str> {
        branch_of(self.via.first()?)
    }
}

/// The `branch` parameter of the first value of a Via header line.
fn branch_of(via_line: &str) -> Option<&str> {
    let top = via_line.split(',').next()?;
    top.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("branch")
            .then(|| value.trim())
            .filter(|v| !v.is_empty())
    })
}

/// What names a message's transaction, read by [`peek_branch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch<'a> {
    /// The method, for a request; `None` for a response.
    pub method: Option<&'a str>,
    /// The `branch` parameter of the topmost Via (as [`MessageHead::top_branch`]).
    pub branch: Cow<'a, str>,
}

/// The method (of a request) and the top Via branch of a message: what
/// `peek_head(message)` and [`MessageHead::top_branch`] give, without copying every header
/// value the way [`peek_head`] does. For the per-datagram work of a UDP transaction layer
/// (which request a response answers). `None` when the start line is neither a request nor a
/// status line, or the top Via has no branch.
pub fn peek_branch(message: &[u8]) -> Option<Branch<'_>> {
    let data = strip_leading_newlines(message);
    let head = match find_header_end(data, 0) {
        HeaderEnd::Found(end) => data.get(..end)?,
        HeaderEnd::NotYet { .. } => data,
    };
    let (start, mut fields) = start_and_fields(head)?;
    let method = match parse_start_line(start)? {
        StartLine::Request { method } => Some(method),
        StartLine::Response { .. } => None,
    };
    let via = fields.find(|f| Copied::of(f.name) == Some(Copied::Via))?;
    let branch = match via.value {
        Cow::Borrowed(v) => match String::from_utf8_lossy(v) {
            Cow::Borrowed(v) => Cow::Borrowed(branch_of(v)?),
            Cow::Owned(v) => Cow::Owned(branch_of(&v)?.to_owned()),
        },
        Cow::Owned(v) => Cow::Owned(branch_of(&String::from_utf8_lossy(&v))?.to_owned()),
    };
    Some(Branch { method, branch })
}

/// Reads the start line and the `Via`, `From`, `To`, `Call-ID` and `CSeq` header fields
/// (long or compact names, case-insensitive, folded lines joined) of a message. Works on a
/// whole message, a header section, or a truncated prefix of one (incomplete trailing lines
/// are ignored). Returns `None` when the start line is neither a SIP/2.0 request line nor a
/// status line. Header values are decoded as UTF-8, lossily.
pub fn peek_head(message: &[u8]) -> Option<MessageHead> {
    let raw = raw_head(message)?;
    let collect = |which| {
        raw.values(which)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    };
    let (method, status) = match raw.start {
        StartLine::Request { method } => (Some(method.to_owned()), None),
        StartLine::Response { status } => (None, Some(status)),
    };
    Some(MessageHead {
        method,
        status,
        via: collect(Copied::Via),
        from: collect(Copied::From),
        to: collect(Copied::To),
        call_id: collect(Copied::CallId),
        cseq: collect(Copied::CSeq),
    })
}

/// Whether a `To`/`From` value carries a `tag` parameter (outside the `<...>` URI).
fn has_tag(value: &[u8]) -> bool {
    let params = match value.iter().rposition(|&b| b == b'>') {
        Some(close) => value.get(close + 1..).unwrap_or_default(),
        None => value,
    };
    params.split(|&b| b == b';').skip(1).any(|param| {
        let name = param.split(|&b| b == b'=').next().unwrap_or_default();
        trim(name).eq_ignore_ascii_case(b"tag")
    })
}

/// A To tag for a response, derived from the request's dialog and transaction identifiers
/// with a per-process random key: unpredictable from outside, yet the same for a
/// retransmitted request, so a stateless error response stays consistent.
fn to_tag(head: &RawHead<'_>) -> String {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    let mut hasher = KEY.get_or_init(RandomState::new).build_hasher();
    for which in [Copied::CallId, Copied::From, Copied::CSeq] {
        for v in head.values(which) {
            v.hash(&mut hasher);
        }
    }
    format!("{:016x}", hasher.finish())
}

/// Builds a minimal RFC 3261 response to `request`: status line, every `Via`, `From`, `To`,
/// `Call-ID` and `CSeq` value copied in order (under their long names), a `tag` added to `To`
/// when the request had none (RFC 3261 §8.2.6.2; not for `100`), and `Content-Length: 0`.
///
/// `request` may be a whole message, its header section, or a truncated prefix (as left in a
/// framer after an error): only complete header lines are used.
///
/// Returns `None` — send nothing — when `request` is not a parseable SIP request (garbage or
/// a response), when it is an `ACK` (never answered), when it lacks one of the five header
/// fields a response must copy, or when `code` is not in 100..=699. Control characters in
/// `reason` are replaced by spaces.
pub fn error_response(request: &[u8], code: u16, reason: &str) -> Option<Vec<u8>> {
    if !(100..=699).contains(&code) {
        return None;
    }
    let head = raw_head(request)?;
    let StartLine::Request { method } = head.start else {
        return None;
    };
    if method == "ACK"
        || Copied::ALL
            .into_iter()
            .any(|c| head.values(c).next().is_none())
    {
        return None;
    }
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let tag = (code > 100).then(|| to_tag(&head));
    let mut out =
        Vec::with_capacity(256 + head.fields.iter().map(|(_, v)| v.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("SIP/2.0 {code} {reason}\r\n").as_bytes());
    for which in Copied::ALL {
        for value in head.values(which) {
            out.extend_from_slice(which.names().0.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            if let (Copied::To, Some(tag)) = (which, &tag) {
                if !has_tag(value) {
                    out.extend_from_slice(b";tag=");
                    out.extend_from_slice(tag.as_bytes());
                }
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(out)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn peek_branch_agrees_with_peek_head() {
        let cases: &[&[u8]] = &[
            b"MESSAGE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bKa;rport\r\nVia: SIP/2.0/UDP o;branch=z9hG4bKb\r\n\r\nbody",
            b"SIP/2.0 200 OK\r\nFrom: <sip:a@x>\r\nv: SIP/2.0/UDP h;rport;BRANCH = z9hG4bKc , SIP/2.0/UDP o;branch=z9hG4bKd\r\n\r\n",
            b"\r\nACK sip:bob@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9hG4bKfolded\r\n\r\n",
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK\xff\xfe\r\n\r\n",
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;received=1.2.3.4\r\n\r\n",
            b"SIP/2.0 200 OK\r\nTo: <sip:b@x>\r\n\r\n",
            b"garbage\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKtrunc",
        ];
        for raw in cases {
            let head = peek_head(raw);
            let expected = head
                .as_ref()
                .and_then(|h| h.top_branch().map(|b| (h.method.clone(), b.to_string())));
            let got =
                peek_branch(raw).map(|b| (b.method.map(str::to_string), b.branch.into_owned()));
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(raw));
        }
        let b = peek_branch(cases[0]).unwrap();
        assert_eq!((b.method, b.branch.as_ref()), (Some("MESSAGE"), "z9hG4bKa"));
        assert!(
            matches!(b.branch, Cow::Borrowed(_)),
            "no copy for a plain Via"
        );
    }

    #[test]
    fn header_end_variants() {
        assert_eq!(find_header_end(b"A\r\n\r\nbody", 0), HeaderEnd::Found(5));
        assert_eq!(find_header_end(b"A\n\nbody", 0), HeaderEnd::Found(3));
        assert_eq!(find_header_end(b"A\r\n\nbody", 0), HeaderEnd::Found(4));
        assert_eq!(find_header_end(b"A\n\r\nbody", 0), HeaderEnd::Found(4));
        assert_eq!(
            find_header_end(b"A\r\n\r", 0),
            HeaderEnd::NotYet { resume: 2 }
        );
        assert_eq!(
            find_header_end(b"A\r\nB", 0),
            HeaderEnd::NotYet { resume: 4 }
        );
        assert_eq!(
            find_header_end(b"A\r\nB\r\n", 0),
            HeaderEnd::NotYet { resume: 5 }
        );
    }

    #[test]
    fn decimal() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"0042"), Some(42));
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"4 2"), None);
        assert_eq!(parse_decimal(b"-1"), None);
        assert_eq!(parse_decimal(b"99999999999999999999999"), None);
    }

    #[test]
    fn start_lines() {
        assert_eq!(
            parse_start_line(b"INVITE sip:a@b SIP/2.0"),
            Some(StartLine::Request { method: "INVITE" })
        );
        assert_eq!(
            parse_start_line(b"SIP/2.0 200 OK"),
            Some(StartLine::Response { status: 200 })
        );
        assert_eq!(
            parse_start_line(b"SIP/2.0 200"),
            Some(StartLine::Response { status: 200 })
        );
        assert_eq!(parse_start_line(b"SIP/2.0 2000 OK"), None);
        assert_eq!(parse_start_line(b"SIP/2.0 099 Nope"), None);
        assert_eq!(parse_start_line(b"GET / HTTP/1.1"), None);
        assert_eq!(parse_start_line(b"INVITE  sip:a@b SIP/2.0"), None);
        assert_eq!(parse_start_line(b"INV ITE sip:a@b SIP/2.0"), None);
        assert_eq!(parse_start_line(b""), None);
    }

    #[test]
    fn tags() {
        assert!(has_tag(b"<sip:bob@example.com>;tag=abc"));
        assert!(has_tag(b"Bob <sip:bob@example.com> ; TAG = abc"));
        assert!(has_tag(b"sip:bob@example.com;tag=abc"));
        assert!(!has_tag(b"<sip:bob@example.com;tag=inside>"));
        assert!(!has_tag(b"\"Bob;tag=x\" <sip:bob@example.com>"));
        assert!(!has_tag(b"<sip:bob@example.com>;tagx=1"));
    }
}
