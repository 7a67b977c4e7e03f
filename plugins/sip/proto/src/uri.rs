//! URIs: SIP/SIPS (RFC 3261 §19.1) parsed into parts, `tel:` (RFC 3966) kept whole, any other
//! absolute URI accepted by its scheme. Parsing borrows from the input; percent-escapes are
//! validated but only decoded when comparing ([`SipUri::equivalent`]) or canonicalising
//! ([`SipUri::aor`]).

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::params::Params;
use crate::Error;

/// A URI as found in a Request-URI or a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// `tel:`; the text after the scheme.
    Tel(&'a str),
    /// Any other absolute URI (`scheme:rest`), checked only for the scheme and the absence of
    /// whitespace and angle brackets.
    Other {
        /// The scheme, as written.
        scheme: &'a str,
        /// Everything after the colon.
        rest: &'a str,
    },
}

impl<'a> Uri<'a> {
    /// Parse an absolute URI.
    pub fn parse(s: &'a str) -> Result<Self, Error> {
        parse_uri(s).map_err(|reason| Error::BadUri { reason })
    }

    /// The SIP/SIPS URI, if it is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(n) => write!(f, "tel:{n}"),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

/// The host part of a SIP URI or a Via sent-by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A host name, as written (compare case-insensitively).
    Name(&'a str),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    Ipv6(Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Parse a host: a name, a dotted IPv4 address or a bracketed IPv6 reference.
    pub fn parse(s: &'a str) -> Result<Self, &'static str> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or("unterminated IPv6 reference")?;
            return inner
                .parse::<Ipv6Addr>()
                .map(Host::Ipv6)
                .map_err(|_| "bad IPv6 address");
        }
        if s.is_empty() {
            return Err("empty host");
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return s
                .parse::<Ipv4Addr>()
                .map(Host::Ipv4)
                .map_err(|_| "bad IPv4 address");
        }
        // hostname = *( domainlabel "." ) toplabel [ "." ]; underscores tolerated (seen in
        // the wild), a trailing dot allowed.
        let name = s.strip_suffix('.').unwrap_or(s);
        for label in name.split('.') {
            let b = label.as_bytes();
            if b.is_empty() {
                return Err("empty label in host name");
            }
            if !b
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            {
                return Err("bad character in host name");
            }
            if b[0] == b'-' || b[b.len() - 1] == b'-' {
                return Err("host name label starts or ends with '-'");
            }
        }
        Ok(Host::Name(s))
    }

    /// Case-insensitive host equality (names) or address equality.
    pub fn eq_host(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a
                .trim_end_matches('.')
                .eq_ignore_ascii_case(b.trim_end_matches('.')),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ipv4(a) => a.fmt(f),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A `sip:` or `sips:` URI, borrowed from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// `true` for `sips:`.
    pub secure: bool,
    /// The user part, still percent-escaped (may contain `;` — RFC 4475 §3.1.1.9).
    pub user: Option<&'a str>,
    /// The password, still percent-escaped (deprecated, rare).
    pub password: Option<&'a str>,
    /// The host.
    pub host: Host<'a>,
    /// The port, if written.
    pub port: Option<u16>,
    /// The uri-parameters (`transport`, `lr`, `maddr`, `ob`, …).
    pub params: Params<'a>,
    /// The headers after `?`, still escaped (`name=value&…`).
    pub headers: Option<&'a str>,
}

impl<'a> SipUri<'a> {
    /// Parse a `sip:`/`sips:` URI.
    pub fn parse(s: &'a str) -> Result<Self, Error> {
        match parse_uri(s).map_err(|reason| Error::BadUri { reason })? {
            Uri::Sip(u) => Ok(u),
            _ => Err(Error::BadUri {
                reason: "not a sip: or sips: URI",
            }),
        }
    }

    /// The `transport` parameter.
    pub fn transport(&self) -> Option<&'a str> {
        self.params.value("transport")
    }

    /// Whether the `lr` (loose routing) parameter is present.
    pub fn lr(&self) -> bool {
        self.params.contains("lr")
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.value("maddr")
    }

    /// Whether the `ob` (RFC 5626 outbound) parameter is present.
    pub fn ob(&self) -> bool {
        self.params.contains("ob")
    }

    /// The user part with percent-escapes decoded (bytes: `%00` is legal — RFC 4475 §3.1.1.4).
    pub fn user_decoded(&self) -> Option<Cow<'a, [u8]>> {
        self.user.map(percent_decode)
    }

    /// URI equality per RFC 3261 §19.1.4: scheme, user and password (case-sensitive, after
    /// decoding escapes), host (case-insensitive), port (an absent port differs from an
    /// explicit 5060); the `user`, `ttl`, `method`, `maddr` and `transport` parameters must
    /// match when either URI has them, other parameters only when both have them; URI headers
    /// must all match.
    pub fn equivalent(&self, other: &SipUri<'_>) -> bool {
        if self.secure != other.secure
            || self.port != other.port
            || !self.host.eq_host(&other.host)
            || self.user.map(percent_decode) != other.user.map(percent_decode)
            || self.password.map(percent_decode) != other.password.map(percent_decode)
        {
            return false;
        }
        const MUST_MATCH: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];
        for (name, value) in self.params.iter() {
            match other.params.get(name) {
                Some(v) if !param_value_eq(value, v) => return false,
                Some(_) => {}
                None if MUST_MATCH.iter().any(|m| m.eq_ignore_ascii_case(name)) => return false,
                None => {}
            }
        }
        for (name, _) in other.params.iter() {
            if MUST_MATCH.iter().any(|m| m.eq_ignore_ascii_case(name))
                && !self.params.contains(name)
            {
                return false;
            }
        }
        let mut mine = uri_headers(self.headers);
        let mut theirs = uri_headers(other.headers);
        mine.sort();
        theirs.sort();
        mine == theirs
    }

    /// The canonical address-of-record for registrar bindings (RFC 3261 §10.3): scheme, user
    /// (escapes normalised), lower-cased host and port; parameters and headers dropped.
    /// Two URIs with the same user@host under §19.1.4 give the same string.
    pub fn aor(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push_str(if self.secure { "sips:" } else { "sip:" });
        if let Some(user) = self.user {
            for &b in percent_decode(user).iter() {
                if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out.push('@');
        }
        match self.host {
            Host::Name(n) => out.push_str(&n.trim_end_matches('.').to_ascii_lowercase()),
            h => out.push_str(&h.to_string()),
        }
        if let Some(port) = self.port {
            out.push_str(&format!(":{port}"));
        }
        out
    }
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = self.user {
            f.write_str(user)?;
            if let Some(pw) = self.password {
                write!(f, ":{pw}")?;
            }
            f.write_str("@")?;
        }
        self.host.fmt(f)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if !self.params.as_str().is_empty() {
            write!(f, ";{}", self.params.as_str())?;
        }
        if let Some(h) = self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

fn param_value_eq(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => percent_decode(a).eq_ignore_ascii_case(&percent_decode(b)),
        _ => false,
    }
}

/// A URI header as compared: decoded, name lower-cased.
type HeaderPair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

fn uri_headers(h: Option<&str>) -> Vec<HeaderPair<'_>> {
    let Some(h) = h else { return Vec::new() };
    h.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let k = match percent_decode(k) {
                Cow::Borrowed(b) => Cow::Owned(b.to_ascii_lowercase()),
                Cow::Owned(o) => Cow::Owned(o.to_ascii_lowercase()),
            };
            (k, percent_decode(v))
        })
        .collect()
}

/// Decode `%XX` escapes. Borrows when there are none; invalid escapes are kept as written
/// (parsing already rejected them in URIs).
pub fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

const MARK: &[u8] = b"-_.!~*'()";

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || MARK.contains(&c)
}

/// Every byte is `unreserved`, a valid `%XX`, or in `extra`.
fn check_chars(s: &str, extra: &[u8], what: &'static str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if i + 2 >= b.len() {
                return Err("truncated %-escape");
            }
            if hex(b[i + 1]).is_none() || hex(b[i + 2]).is_none() {
                return Err("bad %-escape");
            }
            i += 3;
            continue;
        }
        if !unreserved(c) && !extra.contains(&c) {
            return Err(what);
        }
        i += 1;
    }
    Ok(())
}

pub(crate) fn is_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

pub(crate) fn parse_uri(s: &str) -> Result<Uri<'_>, &'static str> {
    let (scheme, rest) = s.split_once(':').ok_or("no scheme")?;
    if !is_scheme(scheme) {
        return Err("bad scheme");
    }
    if rest.is_empty() {
        return Err("nothing after the scheme");
    }
    if rest
        .bytes()
        .any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || matches!(c, b'<' | b'>' | b'"'))
    {
        return Err("whitespace, control character, quote or angle bracket in URI");
    }
    if scheme.eq_ignore_ascii_case("sip") {
        parse_sip(rest, false).map(Uri::Sip)
    } else if scheme.eq_ignore_ascii_case("sips") {
        parse_sip(rest, true).map(Uri::Sip)
    } else if scheme.eq_ignore_ascii_case("tel") {
        Ok(Uri::Tel(rest))
    } else {
        Ok(Uri::Other { scheme, rest })
    }
}

fn parse_sip(s: &str, secure: bool) -> Result<SipUri<'_>, &'static str> {
    let (userinfo, hostpart) = match s.find('@') {
        Some(i) => (Some(&s[..i]), &s[i + 1..]),
        None => (None, s),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(ui) => {
            let (u, p) = match ui.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (ui, None),
            };
            if u.is_empty() {
                return Err("empty user part");
            }
            check_chars(u, b"&=+$,;?/", "bad character in user part")?;
            if let Some(p) = p {
                check_chars(p, b"&=+$,", "bad character in password")?;
            }
            (Some(u), p)
        }
    };
    let (hostport, headers) = match hostpart.split_once('?') {
        Some((a, h)) => (a, Some(h)),
        None => (hostpart, None),
    };
    let (hostport, params) = match hostport.split_once(';') {
        Some((a, p)) => (a, p),
        None => (hostport, ""),
    };
    let (host, port) = split_hostport(hostport)?;
    let params = Params::parse_uri_params(params)?;
    if let Some(h) = headers {
        for kv in h.split('&') {
            let (k, v) = kv.split_once('=').ok_or("URI header without '='")?;
            if k.is_empty() {
                return Err("empty URI header name");
            }
            check_chars(k, b"[]/?:+$", "bad character in URI header")?;
            check_chars(v, b"[]/?:+$", "bad character in URI header")?;
        }
    }
    Ok(SipUri {
        secure,
        user,
        password,
        host,
        port,
        params,
        headers,
    })
}

/// Split `host[:port]` (IPv6 in brackets).
pub(crate) fn split_hostport(s: &str) -> Result<(Host<'_>, Option<u16>), &'static str> {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(i) => {
                let after = &s[i + 1..];
                let port = if after.is_empty() {
                    None
                } else {
                    Some(after.strip_prefix(':').ok_or("junk after IPv6 reference")?)
                };
                (&s[..=i], port)
            }
            None => return Err("unterminated IPv6 reference"),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host = Host::parse(host)?;
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err("bad port");
            }
            Some(p.parse::<u16>().map_err(|_| "bad port")?)
        }
    };
    Ok((host, port))
}

pub(crate) fn check_param_chars(s: &str) -> Result<(), &'static str> {
    check_chars(s, b"[]/:&+$", "bad character in URI parameter")
}
