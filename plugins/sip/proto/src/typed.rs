//! Typed views of the headers a registrar, an IM server and a presence server need. Each is
//! parsed on demand from the header's value and borrows from it.

use std::borrow::Cow;

use crate::error::At;
use crate::message::{Header, Message, Method};
use crate::params::{is_token, is_token_char, quoted_end, Params};
use crate::uri::{parse_uri, split_hostport, Host, Uri};
use crate::Error;

/// `name-addr` / `addr-spec` with header parameters: From, To, Contact, Route, Record-Route,
/// Path, Reply-To, Refer-To.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name: unquoted and unescaped (`"J Rosenberg \\\""` → `J Rosenberg \"`).
    pub display: Option<Cow<'a, str>>,
    /// The URI.
    pub uri: Uri<'a>,
    /// The header parameters (`tag`, `expires`, `q`, …).
    pub params: Params<'a>,
}

fn unescape_quoted(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The value of parameter `name` in credentials (`Authorization`, `Proxy-Authorization`) of
/// `scheme` (RFC 3261 §25.1: `scheme LWS param *(COMMA param)`, each value a token or a
/// quoted-string): unquoted and unescaped. Commas inside quoted values do not split
/// parameters. `None` for another scheme, a missing parameter or an unterminated quote.
pub fn credentials_param<'a>(value: &'a str, scheme: &str, name: &str) -> Option<Cow<'a, str>> {
    let value = value.trim_start();
    let rest = value
        .get(..scheme.len())
        .filter(|s| s.eq_ignore_ascii_case(scheme))
        .and_then(|_| value.get(scheme.len()..))
        .filter(|r| r.starts_with([' ', '\t']))?;
    let b = rest.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i <= b.len() {
        if i == b.len() || b[i] == b',' {
            if let Some((n, v)) = rest[start..i].split_once('=') {
                if n.trim().eq_ignore_ascii_case(name) {
                    let v = v.trim();
                    return Some(match v.strip_prefix('"') {
                        Some(q) => unescape_quoted(q.strip_suffix('"')?),
                        None => Cow::Borrowed(v),
                    });
                }
            }
            start = i + 1;
        } else if b[i] == b'"' {
            i += quoted_end(&b[i..])?;
        }
        i += 1;
    }
    None
}

impl<'a> NameAddr<'a> {
    /// Parse `[display-name] <URI> *(;param)` or `URI *(;param)`. Tolerates a missing space
    /// before `<` (RFC 4475 §3.1.1.6).
    pub fn parse(s: &'a str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.starts_with('"') {
            let end = quoted_end(s.as_bytes()).ok_or("unterminated quoted string")?;
            let display = unescape_quoted(&s[1..end]);
            let rest = s[end + 1..].trim_start();
            if !rest.starts_with('<') {
                return Err("quoted display name without <URI>");
            }
            let (uri, params) = Self::angle(rest)?;
            return Ok(NameAddr {
                display: Some(display),
                uri,
                params,
            });
        }
        if let Some(lt) = s.find('<') {
            let disp = s[..lt].trim();
            if !disp
                .bytes()
                .all(|c| is_token_char(c) || c == b' ' || c == b'\t' || c >= 0x80)
            {
                return Err("bad display name");
            }
            let (uri, params) = Self::angle(&s[lt..])?;
            return Ok(NameAddr {
                display: (!disp.is_empty()).then_some(Cow::Borrowed(disp)),
                uri,
                params,
            });
        }
        let (uri, params) = match s.split_once(';') {
            Some((u, p)) => (u.trim_end(), Params::parse_header_params(p)?),
            None => (s, Params::EMPTY),
        };
        if uri.contains('?') || uri.contains(',') {
            return Err("URI with '?' or ',' must be in <>");
        }
        Ok(NameAddr {
            display: None,
            uri: parse_uri(uri)?,
            params,
        })
    }

    fn angle(t: &'a str) -> Result<(Uri<'a>, Params<'a>), &'static str> {
        let gt = t.find('>').ok_or("unterminated <")?;
        // No whitespace inside the brackets (RFC 4475 §3.1.2.14 rejects `< sip:… >`).
        let inner = &t[1..gt];
        if inner.starts_with([' ', '\t']) || inner.ends_with([' ', '\t']) {
            return Err("whitespace inside <>");
        }
        let uri = parse_uri(inner)?;
        let after = t[gt + 1..].trim_start();
        let params = if after.is_empty() {
            Params::EMPTY
        } else {
            let p = after.strip_prefix(';').ok_or("junk after >")?;
            Params::parse_header_params(p)?
        };
        Ok((uri, params))
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }

    /// The `expires` parameter of a Contact (values above 2³²−1 saturate).
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(delta_seconds)
    }

    /// The `q` parameter of a Contact (0.0–1.0).
    pub fn q(&self) -> Option<f32> {
        let q: f32 = self.params.value("q")?.parse().ok()?;
        (0.0..=1.0).contains(&q).then_some(q)
    }

    /// The `+sip.instance` parameter (RFC 5626), without its quotes, e.g.
    /// `<urn:uuid:00000000-0000-1000-8000-000A95A0E128>`.
    pub fn sip_instance(&self) -> Option<&'a str> {
        self.params.value("+sip.instance")
    }

    /// The `reg-id` parameter (RFC 5626).
    pub fn reg_id(&self) -> Option<u32> {
        self.params.value("reg-id")?.parse().ok()
    }
}

/// A Contact value: `*` (REGISTER removing all bindings) or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *`.
    Star,
    /// `Contact: name-addr / addr-spec`.
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// The address (`None` for `*`).
    pub fn addr(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Star => None,
            Contact::Addr(a) => Some(a),
        }
    }
}

/// A Via value: `SIP/2.0/UDP host:port;branch=…;received=…;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// The protocol name (`SIP`).
    pub protocol: &'a str,
    /// The protocol version (`2.0`).
    pub version: &'a str,
    /// The transport (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, … — as written).
    pub transport: &'a str,
    /// The sent-by host.
    pub host: Host<'a>,
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// The parameters.
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parse a Via value (whitespace around `/` and `:` tolerated, as the grammar allows).
    pub fn parse(s: &'a str) -> Result<Self, &'static str> {
        let (protocol, rest) = s.split_once('/').ok_or("no protocol")?;
        let (version, rest) = rest.split_once('/').ok_or("no protocol version")?;
        let (protocol, version) = (protocol.trim(), version.trim());
        if !is_token(protocol) || !is_token(version) {
            return Err("bad sent-protocol");
        }
        let rest = rest.trim_start();
        let t_end = rest.find([' ', '\t']).ok_or("no sent-by")?;
        let transport = &rest[..t_end];
        if !is_token(transport) {
            return Err("bad transport");
        }
        let rest = rest[t_end..].trim_start();
        let (sent_by, params) = match rest.split_once(';') {
            Some((a, p)) => (a.trim_end(), Params::parse_header_params(p)?),
            None => (rest.trim_end(), Params::EMPTY),
        };
        let (host, port) = if sent_by.starts_with('[') {
            split_hostport(sent_by)?
        } else {
            match sent_by.split_once(':') {
                Some((h, p)) => {
                    let (h, p) = (h.trim_end(), p.trim_start());
                    if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
                        return Err("bad port");
                    }
                    (Host::parse(h)?, Some(p.parse().map_err(|_| "bad port")?))
                }
                None => (Host::parse(sent_by)?, None),
            }
        };
        let via = Via {
            protocol,
            version,
            transport,
            host,
            port,
            params,
        };
        if let Some(b) = via.params.get("branch") {
            if !b.is_some_and(is_token) {
                return Err("bad branch");
            }
        }
        if let Some(Some(p)) = via.params.get("rport") {
            if p.parse::<u16>().is_err() {
                return Err("bad rport");
            }
        }
        Ok(via)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch")
    }

    /// Whether the branch has the RFC 3261 magic cookie (`z9hG4bK`) and something after it.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > 7 && b.starts_with("z9hG4bK"))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.params.value("received")
    }

    /// The `rport` parameter: `None` if absent, `Some(None)` if present without a value (a
    /// request asking for it, RFC 3581), `Some(Some(port))` when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.value("maddr")
    }
}

/// CSeq: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number (less than 2³¹, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// The method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parse `1*DIGIT LWS Method`.
    pub fn parse(s: &'a str) -> Result<Self, &'static str> {
        let s = s.trim();
        let end = s.find([' ', '\t']).ok_or("no method")?;
        let num = &s[..end];
        if !num.bytes().all(|c| c.is_ascii_digit()) {
            return Err("sequence number is not a number");
        }
        let seq: u32 = num
            .parse()
            .ok()
            .filter(|n| *n < 1 << 31)
            .ok_or("sequence number is not below 2**31")?;
        let method = Method::parse(s[end..].trim()).ok_or("method is not a token")?;
        Ok(CSeq { seq, method })
    }
}

/// A media type (Content-Type, Accept): `type/subtype;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// The type (`application`).
    pub ty: &'a str,
    /// The subtype (`pidf+xml`).
    pub subtype: &'a str,
    /// The parameters (`charset`, …).
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parse `type / subtype *(; param)`.
    pub fn parse(s: &'a str) -> Result<Self, &'static str> {
        let (main, params) = match s.split_once(';') {
            Some((m, p)) => (m, Params::parse_header_params(p)?),
            None => (s, Params::EMPTY),
        };
        let (ty, subtype) = main.split_once('/').ok_or("no '/' in media type")?;
        let (ty, subtype) = (ty.trim(), subtype.trim());
        if !is_token(ty) || !is_token(subtype) {
            return Err("bad media type");
        }
        Ok(MediaType {
            ty,
            subtype,
            params,
        })
    }

    /// Case-insensitive match on type and subtype.
    pub fn is(&self, ty: &str, subtype: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// Event (RFC 6665): the package and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event package (`presence`, `reg`, `message-summary`, …; templates included).
    pub package: &'a str,
    /// The parameters.
    pub params: Params<'a>,
}

impl<'a> Event<'a> {
    /// Parse `event-type *(; param)`.
    pub fn parse(s: &'a str) -> Result<Self, &'static str> {
        let (package, params) = match s.split_once(';') {
            Some((p, rest)) => (p.trim(), Params::parse_header_params(rest)?),
            None => (s.trim(), Params::EMPTY),
        };
        if !is_token(package) {
            return Err("bad event package");
        }
        Ok(Event { package, params })
    }

    /// The `id` parameter.
    pub fn id(&self) -> Option<&'a str> {
        self.params.value("id")
    }
}

/// Subscription-State (RFC 6665 §8.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState<'a> {
    /// `active`, `pending`, `terminated` or an extension.
    pub state: &'a str,
    /// The parameters.
    pub params: Params<'a>,
}

impl<'a> SubscriptionState<'a> {
    /// Parse `substate-value *(; param)`.
    pub fn parse(s: &'a str) -> Result<Self, &'static str> {
        let ev = Event::parse(s).map_err(|_| "bad subscription state")?;
        Ok(SubscriptionState {
            state: ev.package,
            params: ev.params,
        })
    }

    /// The `expires` parameter.
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(delta_seconds)
    }

    /// The `reason` parameter.
    pub fn reason(&self) -> Option<&'a str> {
        self.params.value("reason")
    }

    /// The `retry-after` parameter.
    pub fn retry_after(&self) -> Option<u32> {
        self.params.value("retry-after").and_then(delta_seconds)
    }
}

/// `delta-seconds`, saturating at 2³²−1 as RFC 3261 §20.19 asks.
fn delta_seconds(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u32>().unwrap_or(u32::MAX))
}

fn bad(h: &Header<'_>, reason: &'static str) -> Error {
    Error::bad_header(h.name(), h.offset(), reason)
}

impl<'a> Message<'a> {
    /// The one header of this name: missing and duplicated are errors.
    fn single(&self, name: &'static str) -> Result<&Header<'a>, Error> {
        let mut it = self.headers_named(name);
        let first = it.next().ok_or(Error::MissingHeader { name })?;
        if let Some(second) = it.next() {
            return Err(Error::DuplicateHeader {
                name,
                at: At(second.offset()),
            });
        }
        Ok(first)
    }

    fn optional(&self, name: &'static str) -> Result<Option<&Header<'a>>, Error> {
        match self.single(name) {
            Ok(h) => Ok(Some(h)),
            Err(Error::MissingHeader { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every Via, top first.
    pub fn via(&self) -> impl Iterator<Item = Result<Via<'_>, Error>> {
        self.headers_named("Via")
            .map(|h| Via::parse(h.value()).map_err(|r| bad(h, r)))
    }

    /// The top Via.
    pub fn top_via(&self) -> Result<Via<'_>, Error> {
        self.via()
            .next()
            .unwrap_or(Err(Error::MissingHeader { name: "Via" }))
    }

    /// From.
    pub fn from(&self) -> Result<NameAddr<'_>, Error> {
        let h = self.single("From")?;
        NameAddr::parse(h.value()).map_err(|r| bad(h, r))
    }

    /// To.
    pub fn to(&self) -> Result<NameAddr<'_>, Error> {
        let h = self.single("To")?;
        NameAddr::parse(h.value()).map_err(|r| bad(h, r))
    }

    /// Call-ID (`word ["@" word]`: non-empty, no whitespace).
    pub fn call_id(&self) -> Result<&str, Error> {
        let h = self.single("Call-ID")?;
        let v = h.value();
        if v.is_empty() || v.chars().any(char::is_whitespace) || v.matches('@').count() > 1 {
            return Err(bad(h, "not word[@word]"));
        }
        Ok(v)
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq<'_>, Error> {
        let h = self.single("CSeq")?;
        CSeq::parse(h.value()).map_err(|r| bad(h, r))
    }

    /// Max-Forwards, 0–255 (RFC 3261 §20.22; leading zeros tolerated: `0068` is 68).
    pub fn max_forwards(&self) -> Result<Option<u32>, Error> {
        let Some(h) = self.optional("Max-Forwards")? else {
            return Ok(None);
        };
        let v = h.value();
        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad(h, "not a number"));
        }
        match v.parse::<u32>() {
            Ok(n) if n <= 255 => Ok(Some(n)),
            _ => Err(bad(h, "not in 0-255")),
        }
    }

    /// Every Contact value, in order.
    pub fn contacts(&self) -> Result<Vec<Contact<'_>>, Error> {
        self.headers_named("Contact")
            .map(|h| {
                if h.value() == "*" {
                    Ok(Contact::Star)
                } else {
                    NameAddr::parse(h.value())
                        .map(Contact::Addr)
                        .map_err(|r| bad(h, r))
                }
            })
            .collect()
    }

    /// Expires (saturating at 2³²−1).
    pub fn expires(&self) -> Result<Option<u32>, Error> {
        self.delta("Expires")
    }

    /// Min-Expires.
    pub fn min_expires(&self) -> Result<Option<u32>, Error> {
        self.delta("Min-Expires")
    }

    fn delta(&self, name: &'static str) -> Result<Option<u32>, Error> {
        match self.optional(name)? {
            None => Ok(None),
            Some(h) => delta_seconds(h.value())
                .map(Some)
                .ok_or_else(|| bad(h, "not delta-seconds")),
        }
    }

    /// Content-Type.
    pub fn content_type(&self) -> Result<Option<MediaType<'_>>, Error> {
        match self.optional("Content-Type")? {
            None => Ok(None),
            Some(h) => MediaType::parse(h.value()).map(Some).map_err(|r| bad(h, r)),
        }
    }

    /// Content-Length (validated by the parser; the serializer writes the body's length).
    pub fn content_length(&self) -> Option<usize> {
        self.header("Content-Length")?.parse().ok()
    }

    /// Event.
    pub fn event(&self) -> Result<Option<Event<'_>>, Error> {
        match self.optional("Event")? {
            None => Ok(None),
            Some(h) => Event::parse(h.value()).map(Some).map_err(|r| bad(h, r)),
        }
    }

    /// Subscription-State.
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState<'_>>, Error> {
        match self.optional("Subscription-State")? {
            None => Ok(None),
            Some(h) => SubscriptionState::parse(h.value())
                .map(Some)
                .map_err(|r| bad(h, r)),
        }
    }

    fn token_header(&self, name: &'static str) -> Result<Option<&str>, Error> {
        match self.optional(name)? {
            None => Ok(None),
            Some(h) if is_token(h.value()) => Ok(Some(h.value())),
            Some(h) => Err(bad(h, "not a token")),
        }
    }

    /// SIP-ETag (RFC 3903).
    pub fn sip_etag(&self) -> Result<Option<&str>, Error> {
        self.token_header("SIP-ETag")
    }

    /// SIP-If-Match (RFC 3903).
    pub fn sip_if_match(&self) -> Result<Option<&str>, Error> {
        self.token_header("SIP-If-Match")
    }

    fn name_addrs(&self, name: &'static str) -> Result<Vec<NameAddr<'_>>, Error> {
        self.headers_named(name)
            .map(|h| NameAddr::parse(h.value()).map_err(|r| bad(h, r)))
            .collect()
    }

    /// Route values, in order.
    pub fn route(&self) -> Result<Vec<NameAddr<'_>>, Error> {
        self.name_addrs("Route")
    }

    /// Record-Route values, in order.
    pub fn record_route(&self) -> Result<Vec<NameAddr<'_>>, Error> {
        self.name_addrs("Record-Route")
    }

    /// Path values (RFC 3327), in order.
    pub fn path(&self) -> Result<Vec<NameAddr<'_>>, Error> {
        self.name_addrs("Path")
    }

    fn tokens(&self, name: &'static str) -> Result<Vec<&str>, Error> {
        self.headers_named(name)
            .map(|h| {
                if is_token(h.value()) {
                    Ok(h.value())
                } else {
                    Err(bad(h, "not a token"))
                }
            })
            .collect()
    }

    /// Supported option tags.
    pub fn supported(&self) -> Result<Vec<&str>, Error> {
        self.tokens("Supported")
    }

    /// Require option tags.
    pub fn require(&self) -> Result<Vec<&str>, Error> {
        self.tokens("Require")
    }

    /// Allow: the methods listed.
    pub fn allow(&self) -> Result<Vec<Method<'_>>, Error> {
        self.headers_named("Allow")
            .map(|h| Method::parse(h.value()).ok_or_else(|| bad(h, "not a method")))
            .collect()
    }

    /// Accept: the media ranges listed.
    pub fn accept(&self) -> Result<Vec<MediaType<'_>>, Error> {
        self.headers_named("Accept")
            .map(|h| MediaType::parse(h.value()).map_err(|r| bad(h, r)))
            .collect()
    }

    /// Authorization values, raw. Parse them with `switchboard_auth::digest::parse_authorization`
    /// (the core's Digest parser) rather than here.
    pub fn authorization(&self) -> impl Iterator<Item = &str> {
        self.values("Authorization")
    }

    /// Proxy-Authorization values, raw (see [`Message::authorization`]).
    pub fn proxy_authorization(&self) -> impl Iterator<Item = &str> {
        self.values("Proxy-Authorization")
    }

    /// WWW-Authenticate values, raw.
    pub fn www_authenticate(&self) -> impl Iterator<Item = &str> {
        self.values("WWW-Authenticate")
    }

    /// Proxy-Authenticate values, raw.
    pub fn proxy_authenticate(&self) -> impl Iterator<Item = &str> {
        self.values("Proxy-Authenticate")
    }

    /// Check what every request must have (RFC 3261 §8.1.1, §8.2.2): Via, From, To, Call-ID,
    /// CSeq and Max-Forwards, each present (From, To, Call-ID, CSeq, Max-Forwards exactly
    /// once) and well-formed, and the CSeq method equal to the request method. The error says
    /// which, in a form fit for a `400` reason phrase.
    pub fn validate_request(&self) -> Result<(), Error> {
        let Some(method) = self.method() else {
            return Err(Error::NotARequest);
        };
        for name in ["Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards"] {
            if self.headers_named(name).next().is_none() {
                return Err(Error::MissingHeader { name });
            }
        }
        self.validate_common()?;
        self.max_forwards()?;
        let cseq = self.cseq()?;
        if cseq.method != *method {
            return Err(Error::CSeqMethodMismatch {
                cseq: cseq.method.as_str().to_owned(),
                method: method.as_str().to_owned(),
            });
        }
        Ok(())
    }

    /// Check what every response must have: Via, From, To, Call-ID and CSeq, well-formed.
    pub fn validate_response(&self) -> Result<(), Error> {
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if self.headers_named(name).next().is_none() {
                return Err(Error::MissingHeader { name });
            }
        }
        self.validate_common()
    }

    fn validate_common(&self) -> Result<(), Error> {
        for v in self.via() {
            v?;
        }
        self.from()?;
        self.to()?;
        self.call_id()?;
        self.cseq()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_params_respect_quotes() {
        let h = r#"Digest username="bob", realm="biloxi.com", nonce="dcd98b", uri="sip:bob@biloxi.com", response="245f23", algorithm=MD5"#;
        assert_eq!(
            credentials_param(h, "Digest", "realm").as_deref(),
            Some("biloxi.com")
        );
        assert_eq!(
            credentials_param(h, "digest", "URI").as_deref(),
            Some("sip:bob@biloxi.com")
        );
        assert_eq!(
            credentials_param(h, "Digest", "algorithm").as_deref(),
            Some("MD5")
        );
        assert_eq!(credentials_param(h, "Digest", "opaque"), None);
        assert_eq!(credentials_param("Basic abc", "Digest", "realm"), None);
        assert_eq!(credentials_param("Digestive x=1", "Digest", "x"), None);
        // A comma and an escaped quote inside quoted values.
        let h = r#"Digest uri="sip:bob@biloxi.com;x=a,b", username="a \"b\", c", nonce="n""#;
        assert_eq!(
            credentials_param(h, "Digest", "uri").as_deref(),
            Some("sip:bob@biloxi.com;x=a,b")
        );
        assert_eq!(
            credentials_param(h, "Digest", "username").as_deref(),
            Some(r#"a "b", c"#)
        );
        assert_eq!(
            credentials_param(h, "Digest", "nonce").as_deref(),
            Some("n")
        );
        assert_eq!(
            credentials_param(r#"Digest uri="open"#, "Digest", "uri"),
            None
        );
    }
}
