//! The message model, the parser, the serializer and the builder.

use std::borrow::Cow;
use std::fmt;

use crate::error::At;
use crate::names;
use crate::params::{is_token, quoted_end};
use crate::uri::{parse_uri, Uri};
use crate::Error;

/// A SIP method. Known methods are variants; anything else that is a `token` is an
/// [`Method::Extension`]. Methods are case-sensitive (RFC 3261 §7.1): `invite` is an extension
/// method, not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261).
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// MESSAGE (RFC 3428).
    Message,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// PUBLISH (RFC 3903).
    Publish,
    /// INFO (RFC 6086).
    Info,
    /// PRACK (RFC 3262).
    Prack,
    /// UPDATE (RFC 3311).
    Update,
    /// REFER (RFC 3515).
    Refer,
    /// Any other token.
    Extension(Cow<'a, str>),
}

impl<'a> Method<'a> {
    /// Parse a method token. `None` if it is not a `token`.
    pub fn parse(s: &'a str) -> Option<Self> {
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "MESSAGE" => Method::Message,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "REFER" => Method::Refer,
            _ if is_token(s) => Method::Extension(Cow::Borrowed(s)),
            _ => return None,
        })
    }

    /// The method name.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Message => "MESSAGE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Refer => "REFER",
            Method::Extension(s) => s,
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> Method<'static> {
        match self {
            Method::Extension(s) => Method::Extension(Cow::Owned(s.into_owned())),
            Method::Invite => Method::Invite,
            Method::Ack => Method::Ack,
            Method::Bye => Method::Bye,
            Method::Cancel => Method::Cancel,
            Method::Options => Method::Options,
            Method::Register => Method::Register,
            Method::Message => Method::Message,
            Method::Subscribe => Method::Subscribe,
            Method::Notify => Method::Notify,
            Method::Publish => Method::Publish,
            Method::Info => Method::Info,
            Method::Prack => Method::Prack,
            Method::Update => Method::Update,
            Method::Refer => Method::Refer,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP/2.0`.
    Request {
        /// The method.
        method: Method<'a>,
        /// The Request-URI text (validated; parse it with [`Message::request_uri`]).
        uri: Cow<'a, str>,
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`.
    Response {
        /// The status code, 100–699.
        code: u16,
        /// The reason phrase. Non-UTF-8 bytes are replaced (it is advisory text).
        reason: Cow<'a, str>,
    },
}

/// One header value. A header line carrying a comma-separated list (Via, Contact, Route, …)
/// becomes one `Header` per element, in order.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    name: Cow<'a, str>,
    value: Cow<'a, str>,
    offset: Option<usize>,
}

impl<'a> Header<'a> {
    /// The name: the canonical spelling for known headers (compact forms expanded, e.g. `v` →
    /// `Via`, `MaX-fOrWaRdS` → `Max-Forwards`), as written for extension headers.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value, trimmed, line folding replaced by single spaces.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Byte offset of the header line in the parsed input (`None` for headers added by the
    /// builder).
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }

    /// Whether this header has the given name (case-insensitive, compact forms understood).
    pub fn is(&self, name: &str) -> bool {
        names::same(&self.name, name)
    }

    /// An owned copy.
    pub fn into_owned(self) -> Header<'static> {
        Header {
            name: Cow::Owned(self.name.into_owned()),
            value: Cow::Owned(self.value.into_owned()),
            offset: self.offset,
        }
    }

    fn reborrow(&self) -> Header<'_> {
        Header {
            name: Cow::Borrowed(&self.name),
            value: Cow::Borrowed(&self.value),
            offset: None,
        }
    }
}

/// Offsets are where a header came from, not what it is: equality ignores them.
impl PartialEq for Header<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value
    }
}
impl Eq for Header<'_> {}

/// A SIP request or response, borrowing from the buffer it was parsed from where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    start: StartLine<'a>,
    headers: Vec<Header<'a>>,
    body: Cow<'a, [u8]>,
}

fn is_wsp(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn trim_bytes(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if is_wsp(*first) {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if is_wsp(*last) {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// The line starting at `pos` without its line end, and where the next line starts.
/// Lines end in CRLF; a bare LF is tolerated.
fn read_line(input: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rel = input.get(pos..)?.iter().position(|&c| c == b'\n')?;
    let mut line = &input[pos..pos + rel];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    Some((line, pos + rel + 1))
}

fn has_ctl(s: &[u8]) -> bool {
    s.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f)
}

impl<'a> Message<'a> {
    /// Parse one message (already framed: a datagram, or what the stream framer delimited).
    ///
    /// Strict about what routing and matching depend on: the start line (single spaces,
    /// SIP/2.0, 3-digit status, valid Request-URI), header-line syntax, UTF-8 in the values of
    /// known headers, comma lists, Content-Length. Tolerant where real clients are sloppy:
    /// leading CRLFs, bare LF line ends, any case and compact forms of names, whitespace
    /// before the colon, line folding, and non-UTF-8 in the reason phrase and in extension
    /// headers' values (replaced with U+FFFD). Extra bytes after Content-Length are ignored
    /// (RFC 3261 §18.3); fewer are an error. Without Content-Length the body is the rest of
    /// the input.
    pub fn parse(input: &'a [u8]) -> Result<Self, Error> {
        let mut pos = 0;
        loop {
            if input[pos..].starts_with(b"\r\n") {
                pos += 2;
            } else if input[pos..].starts_with(b"\n") {
                pos += 1;
            } else {
                break;
            }
        }
        if pos >= input.len() {
            return Err(Error::Empty);
        }
        let (line, mut pos) = read_line(input, pos).ok_or(Error::UnterminatedHeaders)?;
        let start = parse_start_line(line)?;
        let mut headers = Vec::with_capacity(16);
        loop {
            let (line, next) = read_line(input, pos).ok_or(Error::UnterminatedHeaders)?;
            if line.is_empty() {
                pos = next;
                break;
            }
            if is_wsp(line[0]) {
                return Err(Error::BadHeaderLine {
                    at: At(Some(pos)),
                    reason: "continuation line without a header",
                });
            }
            let line_start = pos;
            let mut end = next;
            let mut folded = false;
            while let Some(&c) = input.get(end) {
                if !is_wsp(c) {
                    break;
                }
                match read_line(input, end) {
                    Some((_, n)) => {
                        end = n;
                        folded = true;
                    }
                    None => return Err(Error::UnterminatedHeaders),
                }
            }
            pos = end;
            parse_header(input, line_start, line, end, folded, &mut headers)?;
        }
        let rest = &input[pos..];
        let mut declared: Option<usize> = None;
        for h in headers.iter().filter(|h| h.name == "Content-Length") {
            let v = h.value.trim();
            let n = if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
                v.parse::<usize>().ok()
            } else {
                None
            };
            let Some(n) = n else {
                return Err(Error::bad_header(
                    "Content-Length",
                    h.offset,
                    "not a number",
                ));
            };
            if declared.is_some_and(|d| d != n) {
                return Err(Error::DuplicateHeader {
                    name: "Content-Length",
                    at: At(h.offset),
                });
            }
            declared = Some(n);
        }
        let body = match declared {
            Some(n) if n > rest.len() => {
                return Err(Error::ContentLengthMismatch {
                    declared: n,
                    actual: rest.len(),
                })
            }
            Some(n) => &rest[..n],
            None => rest,
        };
        Ok(Message {
            start,
            headers,
            body: Cow::Borrowed(body),
        })
    }

    /// The start line.
    pub fn start_line(&self) -> &StartLine<'a> {
        &self.start
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method (`None` for responses).
    pub fn method(&self) -> Option<&Method<'a>> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI, parsed (`None` for responses).
    pub fn request_uri(&self) -> Option<Uri<'_>> {
        match &self.start {
            // Validated when the message was parsed or built.
            StartLine::Request { uri, .. } => parse_uri(uri).ok(),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code (`None` for requests).
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase (`None` for requests).
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// All header values in order.
    pub fn headers(&self) -> &[Header<'a>] {
        &self.headers
    }

    /// The headers with this name (case-insensitive, compact forms understood), in order.
    pub fn headers_named<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = &'s Header<'a>> + use<'s, 'n, 'a> {
        let canon = names::canonical(name);
        self.headers.iter().filter(move |h| match canon {
            Some(c) => h.name == c,
            None => h.name.eq_ignore_ascii_case(name),
        })
    }

    /// The values of the headers with this name, in order.
    pub fn values<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = &'s str> + use<'s, 'n, 'a> {
        self.headers_named(name).map(|h| h.value())
    }

    /// The first value of the header with this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next().map(|h| h.value())
    }

    /// The body (exactly Content-Length bytes when the message had one).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// A copy that borrows nothing (to keep past the input buffer, e.g. in an offline store).
    pub fn into_owned(self) -> Message<'static> {
        Message {
            start: match self.start {
                StartLine::Request { method, uri } => StartLine::Request {
                    method: method.into_owned(),
                    uri: Cow::Owned(uri.into_owned()),
                },
                StartLine::Response { code, reason } => StartLine::Response {
                    code,
                    reason: Cow::Owned(reason.into_owned()),
                },
            },
            headers: self.headers.into_iter().map(Header::into_owned).collect(),
            body: Cow::Owned(self.body.into_owned()),
        }
    }

    // ---------------------------------------------------------------- serializer

    /// Serialize: the start line, every header as `Name: value` in order (one per line,
    /// canonical names), `Content-Length` equal to the body's length (written where the
    /// message has one, else after the other headers), an empty line, the body.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                out.extend_from_slice(code.to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        let mut wrote_length = false;
        for h in &self.headers {
            if h.name == "Content-Length" {
                if !wrote_length {
                    self.write_length(out);
                    wrote_length = true;
                }
                continue;
            }
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !wrote_length {
            self.write_length(out);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    fn write_length(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(self.body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// Serialize into a new buffer (see [`Message::write_to`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.headers.len() * 40 + self.body.len());
        self.write_to(&mut out);
        out
    }

    // ---------------------------------------------------------------- builder

    /// A new request with no headers. The URI must be a valid absolute URI.
    pub fn request(method: Method<'a>, uri: impl Into<Cow<'a, str>>) -> Result<Self, Error> {
        let uri = uri.into();
        if !is_token(method.as_str()) {
            return Err(Error::BadInput {
                what: "method",
                reason: "not a token",
            });
        }
        check_request_uri(&uri).map_err(|reason| Error::BadInput {
            what: "Request-URI",
            reason,
        })?;
        Ok(Message {
            start: StartLine::Request { method, uri },
            headers: Vec::new(),
            body: Cow::Borrowed(&[]),
        })
    }

    /// A new response with no headers. See also [`Message::response_to`].
    pub fn response(code: u16, reason: impl Into<Cow<'a, str>>) -> Result<Self, Error> {
        let reason = reason.into();
        if !(100..=699).contains(&code) {
            return Err(Error::BadInput {
                what: "status code",
                reason: "not in 100-699",
            });
        }
        if has_ctl(reason.as_bytes()) || reason.trim() != reason {
            return Err(Error::BadInput {
                what: "reason phrase",
                reason: "control characters or surrounding whitespace",
            });
        }
        Ok(Message {
            start: StartLine::Response { code, reason },
            headers: Vec::new(),
            body: Cow::Borrowed(&[]),
        })
    }

    /// A response to `req` per RFC 3261 §8.2.6: the Via headers (in order), From, To, Call-ID
    /// and CSeq copied (Timestamp too for 100), a To tag added unless the request's To has one
    /// or the code is 100, and `Content-Length: 0`.
    ///
    /// The To tag is derived from the request (a hash of Call-ID, From tag, top Via branch and
    /// CSeq), so a retransmitted request gets the same tag without the server keeping state.
    /// That suits responses that create no dialog (REGISTER, MESSAGE, PUBLISH, OPTIONS). A
    /// response that creates a dialog (2xx to SUBSCRIBE or INVITE) needs a tag with at least
    /// 32 random bits (RFC 3261 §19.3): use [`Message::response_to_with_tag`] for those.
    pub fn response_to<'r>(
        req: &'r Message<'_>,
        code: u16,
        reason: impl Into<Cow<'r, str>>,
    ) -> Result<Message<'r>, Error> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [
            req.header("Call-ID").unwrap_or(""),
            "\0",
            req.from().ok().and_then(|f| f.tag()).unwrap_or(""),
            "\0",
            req.top_via().ok().and_then(|v| v.branch()).unwrap_or(""),
            "\0",
            req.header("CSeq").unwrap_or(""),
        ] {
            for &b in part.as_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        let tag = format!("{h:016x}");
        Self::response_to_with_tag(req, code, reason, &tag)
    }

    /// Like [`Message::response_to`], with the given To tag (used only when one is needed).
    pub fn response_to_with_tag<'r>(
        req: &'r Message<'_>,
        code: u16,
        reason: impl Into<Cow<'r, str>>,
        tag: &str,
    ) -> Result<Message<'r>, Error> {
        if !req.is_request() {
            return Err(Error::NotARequest);
        }
        if !is_token(tag) {
            return Err(Error::BadInput {
                what: "To tag",
                reason: "not a token",
            });
        }
        let mut resp = Message::response(code, reason)?;
        for h in &req.headers {
            let copy = match h.name.as_ref() {
                "Via" | "From" | "Call-ID" | "CSeq" => true,
                "Timestamp" => code == 100,
                "To" => {
                    let to = crate::typed::NameAddr::parse(&h.value)
                        .map_err(|r| Error::bad_header("To", h.offset, r))?;
                    if code != 100 && to.tag().is_none() {
                        resp.headers.push(Header {
                            name: Cow::Borrowed("To"),
                            value: Cow::Owned(format!("{};tag={tag}", h.value)),
                            offset: None,
                        });
                        continue;
                    }
                    true
                }
                _ => false,
            };
            if copy {
                resp.headers.push(h.reborrow());
            }
        }
        resp.headers.push(Header {
            name: Cow::Borrowed("Content-Length"),
            value: Cow::Borrowed("0"),
            offset: None,
        });
        Ok(resp)
    }

    /// Append a header. The name must be a token (known names are normalised); the value must
    /// not contain control characters (no CR/LF injection). A list header's value is split on
    /// commas like the parser does, so the message re-parses to the same model.
    pub fn push_header(
        &mut self,
        name: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> Result<(), Error> {
        let at = self.headers.len();
        self.insert_header(at, name, value)
    }

    /// Insert a header at position `index` of [`Message::headers`] (clamped to the end).
    pub fn insert_header(
        &mut self,
        index: usize,
        name: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> Result<(), Error> {
        let new = make_headers(name.into(), value.into())?;
        let index = index.min(self.headers.len());
        self.headers.splice(index..index, new);
        Ok(())
    }

    /// Replace every header of this name by this value (placed where the first one was, else
    /// appended).
    pub fn set_header(
        &mut self,
        name: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> Result<(), Error> {
        let new = make_headers(name.into(), value.into())?;
        let Some(first) = new.first() else {
            return Ok(());
        };
        let name = first.name.clone();
        let index = self
            .headers
            .iter()
            .position(|h| h.name == name)
            .unwrap_or(self.headers.len());
        let before = self.headers[..index].len();
        self.headers.retain(|h| h.name != name);
        let index = before.min(self.headers.len());
        self.headers.splice(index..index, new);
        Ok(())
    }

    /// Remove every header of this name; returns how many were removed.
    pub fn remove_headers(&mut self, name: &str) -> usize {
        let before = self.headers.len();
        self.headers.retain(|h| !names::same(&h.name, name));
        before - self.headers.len()
    }

    /// Add a Via on top (before the first Via, or first of all when there is none).
    pub fn push_via(&mut self, value: impl Into<Cow<'a, str>>) -> Result<(), Error> {
        let index = self
            .headers
            .iter()
            .position(|h| h.name == "Via")
            .unwrap_or(0);
        self.insert_header(index, "Via", value)
    }

    /// Remove the top Via and return it.
    pub fn pop_via(&mut self) -> Option<Header<'a>> {
        let index = self.headers.iter().position(|h| h.name == "Via")?;
        Some(self.headers.remove(index))
    }

    /// Set the body, its Content-Type (when given) and a Content-Length that matches.
    pub fn set_body(
        &mut self,
        content_type: Option<&'a str>,
        body: impl Into<Cow<'a, [u8]>>,
    ) -> Result<(), Error> {
        let body = body.into();
        if let Some(ct) = content_type {
            self.set_header("Content-Type", ct)?;
        }
        self.set_header("Content-Length", body.len().to_string())?;
        self.body = body;
        Ok(())
    }
}

impl fmt::Display for Message<'_> {
    /// The serialized message, with a non-UTF-8 body shown lossily.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// Validate and normalise a header given to the builder.
fn make_headers<'a>(name: Cow<'a, str>, value: Cow<'a, str>) -> Result<Vec<Header<'a>>, Error> {
    if !is_token(&name) {
        return Err(Error::BadInput {
            what: "header name",
            reason: "not a token",
        });
    }
    let (name, list): (Cow<'a, str>, bool) = match names::known(&name) {
        Some((c, list)) => (Cow::Borrowed(c), list),
        None => (name, false),
    };
    if has_ctl(value.as_bytes()) {
        return Err(Error::BadInput {
            what: "header value",
            reason: "control characters",
        });
    }
    let wsp = |c| c == ' ' || c == '\t';
    let value = match value {
        Cow::Borrowed(v) => Cow::Borrowed(v.trim_matches(wsp)),
        // Most built values need no trimming: keep the allocation.
        Cow::Owned(v) if v.trim_matches(wsp).len() == v.len() => Cow::Owned(v),
        Cow::Owned(v) => Cow::Owned(v.trim_matches(wsp).to_owned()),
    };
    let mut new = Vec::new();
    push_values(&mut new, name, list, value, None)?;
    Ok(new)
}

fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, Error> {
    let bad = |reason| Error::BadStartLine { reason };
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        let sp = line.iter().position(|&c| c == b' ');
        let (version, rest) = match sp {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => return Err(bad("status line has no status code")),
        };
        check_version(version)?;
        let code_end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
        let code = &rest[..code_end];
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(bad("status code is not 3 digits"));
        }
        let code = u16::from(code[0] - b'0') * 100
            + u16::from(code[1] - b'0') * 10
            + u16::from(code[2] - b'0');
        if !(100..=699).contains(&code) {
            return Err(bad("status code is not in 100-699"));
        }
        let reason = rest.get(code_end + 1..).unwrap_or(&[]);
        if has_ctl(reason) {
            return Err(bad("control character in reason phrase"));
        }
        let reason = String::from_utf8_lossy(trim_bytes(reason));
        return Ok(StartLine::Response { code, reason });
    }
    let mut parts = line.split(|&c| c == b' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(
            "request line is not Method SP Request-URI SP SIP-Version",
        ));
    };
    if method.is_empty() || uri.is_empty() || version.is_empty() {
        return Err(bad(
            "request line is not Method SP Request-URI SP SIP-Version",
        ));
    }
    let method = std::str::from_utf8(method)
        .ok()
        .and_then(Method::parse)
        .ok_or(bad("method is not a token"))?;
    check_version(version)?;
    let uri = std::str::from_utf8(uri).map_err(|_| Error::BadRequestUri {
        reason: "not UTF-8",
    })?;
    check_request_uri(uri).map_err(|reason| Error::BadRequestUri { reason })?;
    Ok(StartLine::Request {
        method,
        uri: Cow::Borrowed(uri),
    })
}

/// A Request-URI: an absolute URI, not in `<>`, without URI headers (RFC 3261 §19.1.1).
fn check_request_uri(uri: &str) -> Result<(), &'static str> {
    if uri.starts_with('<') {
        return Err("Request-URI in angle brackets");
    }
    if let Uri::Sip(sip) = parse_uri(uri)? {
        if sip.headers.is_some() {
            return Err("headers are not allowed in a Request-URI");
        }
    }
    Ok(())
}

fn check_version(v: &[u8]) -> Result<(), Error> {
    if v.eq_ignore_ascii_case(b"SIP/2.0") {
        return Ok(());
    }
    let ok_shape = v.len() > 4
        && v[..4].eq_ignore_ascii_case(b"SIP/")
        && v[4..].iter().all(|&c| c.is_ascii_digit() || c == b'.');
    if ok_shape {
        Err(Error::UnsupportedVersion {
            version: String::from_utf8_lossy(v).into_owned(),
        })
    } else {
        Err(Error::BadStartLine {
            reason: "bad SIP version",
        })
    }
}

/// Parse one header (`first` is its first line; the header spans `input[start..end]`).
fn parse_header<'a>(
    input: &'a [u8],
    start: usize,
    first: &'a [u8],
    end: usize,
    folded: bool,
    headers: &mut Vec<Header<'a>>,
) -> Result<(), Error> {
    let at = Some(start);
    let colon = first
        .iter()
        .position(|&c| c == b':')
        .ok_or(Error::BadHeaderLine {
            at: At(at),
            reason: "no colon",
        })?;
    let raw_name = trim_bytes(&first[..colon]);
    // Token characters are ASCII, so this cannot fail once checked.
    let name = match std::str::from_utf8(raw_name) {
        Ok(n) if is_token(n) => n,
        _ => {
            return Err(Error::BadHeaderLine {
                at: At(at),
                reason: "bad header name",
            })
        }
    };
    let known = names::known(name);
    let canon = known.map(|(c, _)| c);
    let list = known.is_some_and(|(_, l)| l);
    let name: Cow<'a, str> = Cow::Borrowed(canon.unwrap_or(name));
    let raw_start = start + colon + 1;
    let raw_value: &'a [u8] = if folded {
        &input[raw_start..end]
    } else {
        &input[raw_start..start + first.len()]
    };
    let check_ctl = |s: &[u8]| {
        let ctl = s
            .iter()
            .any(|&c| (c < 0x20 && !matches!(c, b'\t' | b'\r' | b'\n')) || c == 0x7f);
        if ctl {
            Err(Error::bad_header(&name, at, "control character in value"))
        } else {
            Ok(())
        }
    };
    check_ctl(raw_value)?;
    let text: Cow<'a, str> = match std::str::from_utf8(raw_value) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) if canon.is_none() => String::from_utf8_lossy(raw_value),
        Err(_) => {
            return Err(Error::NonUtf8Header {
                name: name.into_owned(),
                at: At(at),
            })
        }
    };
    let value: Cow<'a, str> = if folded {
        let mut joined = String::with_capacity(text.len());
        for seg in text.split('\n') {
            let seg = seg.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
            if seg.contains('\r') {
                return Err(Error::bad_header(&name, at, "bare CR in value"));
            }
            if !seg.is_empty() {
                if !joined.is_empty() {
                    joined.push(' ');
                }
                joined.push_str(seg);
            }
        }
        Cow::Owned(joined)
    } else {
        if text.contains('\r') {
            return Err(Error::bad_header(&name, at, "bare CR in value"));
        }
        match text {
            Cow::Borrowed(t) => Cow::Borrowed(t.trim_matches(|c| c == ' ' || c == '\t')),
            Cow::Owned(t) => Cow::Owned(t.trim_matches(|c| c == ' ' || c == '\t').to_owned()),
        }
    };
    push_values(headers, name, list, value, at)
}

/// Push a header, split into one entry per element when its grammar is a list.
fn push_values<'a>(
    headers: &mut Vec<Header<'a>>,
    name: Cow<'a, str>,
    list: bool,
    value: Cow<'a, str>,
    at: Option<usize>,
) -> Result<(), Error> {
    if value.is_empty() || !list {
        headers.push(Header {
            name,
            value,
            offset: at,
        });
        return Ok(());
    }
    let b = value.as_bytes();
    let mut pieces: [(usize, usize); 8] = [(0, 0); 8];
    let mut spill: Vec<(usize, usize)> = Vec::new();
    let mut count = 0;
    let mut push = |a: usize, z: usize| {
        if count < pieces.len() {
            pieces[count] = (a, z);
        } else {
            spill.push((a, z));
        }
        count += 1;
    };
    let mut i = 0;
    let mut start = 0;
    let mut angle = false;
    while i < b.len() {
        match b[i] {
            b'"' => match quoted_end(&b[i..]) {
                Some(e) => i += e,
                None => return Err(Error::bad_header(&name, at, "unterminated quoted string")),
            },
            b'<' if !angle => angle = true,
            b'>' if angle => angle = false,
            b',' if !angle => {
                push(start, i);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if angle {
        return Err(Error::bad_header(&name, at, "unterminated <"));
    }
    push(start, b.len());
    let ranges = pieces[..count.min(pieces.len())].iter().chain(spill.iter());
    for &(a, z) in ranges {
        let (mut a, mut z) = (a, z);
        while a < z && is_wsp(b[a]) {
            a += 1;
        }
        while z > a && is_wsp(b[z - 1]) {
            z -= 1;
        }
        if a == z {
            return Err(Error::bad_header(&name, at, "empty element in list"));
        }
        let piece_value: Cow<'a, str> = match &value {
            Cow::Borrowed(v) => Cow::Borrowed(&v[a..z]),
            Cow::Owned(v) => Cow::Owned(v[a..z].to_owned()),
        };
        headers.push(Header {
            name: name.clone(),
            value: piece_value,
            offset: at,
        });
    }
    Ok(())
}
