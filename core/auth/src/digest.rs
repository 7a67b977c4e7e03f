//! Digest authentication: RFC 7616 (HTTP), RFC 3261 §22 and RFC 2617 (SIP), with qop=auth and
//! legacy no-qop (RFC 2069) responses, algorithms MD5, SHA-256 and their `-sess` variants.
//!
//! Nonces are stateless: a timestamp and random bytes, authenticated with an HMAC under a
//! server secret, so any node holding the secret can check them and expiry needs no table.
//! Replays within a nonce's lifetime are caught by [`NonceCounter`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::basic::quote;

/// Longest `Authorization` value accepted.
pub const MAX_HEADER_LEN: usize = 8192;

/// Hash algorithm of a Digest exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `MD5` (the default when the parameter is absent).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl DigestAlgorithm {
    /// Parse the `algorithm` parameter (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Md5, Self::Md5Sess, Self::Sha256, Self::Sha256Sess]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
    }

    /// The name as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }

    fn hash(self, data: &str) -> String {
        match self {
            Self::Md5 | Self::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
            Self::Sha256 | Self::Sha256Sess => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

/// A parsed Digest `Authorization` / `Proxy-Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestResponse {
    /// `username`
    pub username: String,
    /// `realm`
    pub realm: String,
    /// `nonce`
    pub nonce: String,
    /// `uri` (the digest-uri; the caller checks it against the request)
    pub uri: String,
    /// `response` (hex)
    pub response: String,
    /// `algorithm` (MD5 when absent)
    pub algorithm: DigestAlgorithm,
    /// `cnonce` (required with qop)
    pub cnonce: Option<String>,
    /// `nc` (required with qop)
    pub nc: Option<u32>,
    /// `qop` (only `auth` is supported)
    pub qop: Option<String>,
    /// `opaque`
    pub opaque: Option<String>,
}

/// Why a Digest header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not the Digest scheme.
    #[error("Digest response: expected the Digest scheme")]
    NotDigest,
    /// Over [`MAX_HEADER_LEN`].
    #[error("Digest response: longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    /// Not a list of `name=value` parameters.
    #[error("Digest response: {0}")]
    Syntax(String),
    /// A parameter given twice.
    #[error("Digest response: parameter \"{0}\" given more than once")]
    Duplicate(String),
    /// A required parameter is missing.
    #[error("Digest response: missing \"{0}\" parameter")]
    Missing(&'static str),
    /// An algorithm we do not implement.
    #[error("Digest response: unsupported algorithm \"{0}\"")]
    UnsupportedAlgorithm(String),
    /// A qop other than `auth`.
    #[error("Digest response: unsupported qop \"{0}\" (only \"auth\")")]
    UnsupportedQop(String),
    /// `nc` is not 8 hex digits.
    #[error("Digest response: nc \"{0}\" is not 8 hexadecimal digits")]
    BadNonceCount(String),
}

/// Parse a Digest header value.
pub fn parse_authorization(value: &str) -> Result<DigestResponse, DigestError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(DigestError::TooLong);
    }
    let value = value.trim_start();
    let scheme_end = value
        .find(|c: char| c.is_ascii_whitespace())
        .ok_or(DigestError::NotDigest)?;
    if !value[..scheme_end].eq_ignore_ascii_case("digest") {
        return Err(DigestError::NotDigest);
    }
    let params = parse_params(&value[scheme_end..])?;
    let get = |name: &'static str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let algorithm = match get("algorithm") {
        None => DigestAlgorithm::Md5,
        Some(a) => DigestAlgorithm::from_name(&a).ok_or(DigestError::UnsupportedAlgorithm(a))?,
    };
    let qop = get("qop");
    if let Some(q) = &qop {
        if !q.eq_ignore_ascii_case("auth") {
            return Err(DigestError::UnsupportedQop(q.clone()));
        }
    }
    let nc = match get("nc") {
        None => None,
        Some(raw) => {
            if raw.len() != 8 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(DigestError::BadNonceCount(raw));
            }
            Some(u32::from_str_radix(&raw, 16).map_err(|_| DigestError::BadNonceCount(raw))?)
        }
    };
    let cnonce = get("cnonce");
    if qop.is_some() {
        if cnonce.is_none() {
            return Err(DigestError::Missing("cnonce"));
        }
        if nc.is_none() {
            return Err(DigestError::Missing("nc"));
        }
    }
    Ok(DigestResponse {
        username: get("username").ok_or(DigestError::Missing("username"))?,
        realm: get("realm").ok_or(DigestError::Missing("realm"))?,
        nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
        uri: get("uri").ok_or(DigestError::Missing("uri"))?,
        response: get("response").ok_or(DigestError::Missing("response"))?,
        algorithm,
        cnonce,
        nc,
        qop,
        opaque: get("opaque"),
    })
}

/// `name=value` pairs separated by commas; values are tokens or quoted-strings with
/// backslash escapes. Names are lower-cased; duplicates are errors.
fn parse_params(input: &str) -> Result<Vec<(String, String)>, DigestError> {
    let syntax = |m: &str| DigestError::Syntax(m.to_string());
    let b = input.as_bytes();
    let mut i = 0;
    let mut out: Vec<(String, String)> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        while i < b.len() && b[i] == b',' {
            i += 1;
            skip_ws(&mut i);
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if start == i {
            return Err(syntax(&format!("unexpected character at byte {i}")));
        }
        let name = input[start..i].to_ascii_lowercase();
        skip_ws(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return Err(syntax(&format!("parameter \"{name}\" has no value")));
        }
        i += 1;
        skip_ws(&mut i);
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = Vec::new();
            loop {
                match b.get(i) {
                    None => {
                        return Err(syntax(&format!("unterminated quoted value of \"{name}\"")))
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let escaped = *b.get(i + 1).ok_or_else(|| syntax("dangling backslash"))?;
                        v.push(escaped);
                        i += 2;
                    }
                    Some(&c) => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            String::from_utf8(v)
                .map_err(|_| syntax(&format!("value of \"{name}\" is not UTF-8")))?
        } else {
            let s = i;
            while i < b.len() && is_tchar(b[i]) {
                i += 1;
            }
            if s == i {
                return Err(syntax(&format!("parameter \"{name}\" has an empty value")));
            }
            input[s..i].to_string()
        };
        if out.iter().any(|(k, _)| *k == name) {
            return Err(DigestError::Duplicate(name));
        }
        out.push((name, value));
        skip_ws(&mut i);
        if i < b.len() && b[i] != b',' {
            return Err(syntax(&format!("expected ',' at byte {i}")));
        }
    }
    Ok(out)
}

fn is_tchar(c: u8) -> bool {
    // RFC 7230 tchar, plus the characters SIP URIs and base64 nonces use unquoted.
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:@?[]".contains(&c)
}

/// `H(username ":" realm ":" password)` in lowercase hex.
pub fn ha1(algorithm: DigestAlgorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&format!("{username}:{realm}:{password}"))
}

/// The response the client should have sent, given the stored HA1 (of the base algorithm).
pub fn expected_response(ha1_hex: &str, method: &str, resp: &DigestResponse) -> String {
    let alg = resp.algorithm;
    let cnonce = resp.cnonce.as_deref().unwrap_or("");
    let ha1 = if alg.is_sess() {
        alg.hash(&format!("{ha1_hex}:{}:{cnonce}", resp.nonce))
    } else {
        ha1_hex.to_string()
    };
    let ha2 = alg.hash(&format!("{method}:{}", resp.uri));
    match (&resp.qop, resp.nc) {
        (Some(qop), Some(nc)) => alg.hash(&format!(
            "{ha1}:{}:{nc:08x}:{cnonce}:{qop}:{ha2}",
            resp.nonce
        )),
        _ => alg.hash(&format!("{ha1}:{}:{ha2}", resp.nonce)),
    }
}

/// Constant-time check of the client's response against the stored HA1.
pub fn verify(ha1_hex: &str, method: &str, resp: &DigestResponse) -> bool {
    let expected = expected_response(ha1_hex, method, resp);
    let given = resp.response.to_ascii_lowercase();
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` value.
pub fn challenge(
    realm: &str,
    nonce: &str,
    algorithm: DigestAlgorithm,
    stale: bool,
    opaque: Option<&str>,
) -> String {
    let mut s = format!(
        "Digest realm=\"{}\", nonce=\"{}\", algorithm={}, qop=\"auth\"",
        quote(realm),
        quote(nonce),
        algorithm.as_str()
    );
    if let Some(o) = opaque {
        s.push_str(&format!(", opaque=\"{}\"", quote(o)));
    }
    if stale {
        s.push_str(", stale=true");
    }
    s
}

/// What a nonce check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Ours and fresh.
    Valid,
    /// Ours but older than the TTL: answer with `stale=true`.
    Stale,
    /// Forged, malformed, or from the future.
    Invalid,
}

const NONCE_RAW: usize = 8 + 8 + 16;
/// Clock skew tolerated for nonces from other nodes.
const FUTURE_SKEW: Duration = Duration::from_secs(60);

/// Issues and checks stateless nonces.
pub struct NonceManager {
    secret: [u8; 32],
    ttl: Duration,
}

impl std::fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceManager")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    /// Nonces are authenticated with `secret` and fresh for `ttl`.
    pub fn new(secret: [u8; 32], ttl: Duration) -> Self {
        Self { secret, ttl }
    }

    /// How long a nonce is fresh.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, data: &[u8]) -> [u8; 16] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!());
        mac.update(data);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A new nonce stamped with `now`.
    pub fn issue(&self, now: SystemTime) -> String {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut raw = [0u8; NONCE_RAW];
        raw[..8].copy_from_slice(&secs.to_be_bytes());
        rand::Rng::fill(&mut rand::thread_rng(), &mut raw[8..16]);
        let mac = self.mac(&raw[..16]);
        raw[16..].copy_from_slice(&mac);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Check a nonce a client sent back.
    pub fn check(&self, nonce: &str, now: SystemTime) -> NonceStatus {
        let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(nonce) else {
            return NonceStatus::Invalid;
        };
        if raw.len() != NONCE_RAW {
            return NonceStatus::Invalid;
        }
        let mac = self.mac(&raw[..16]);
        if !bool::from(mac.ct_eq(&raw[16..])) {
            return NonceStatus::Invalid;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let issued = UNIX_EPOCH + Duration::from_secs(u64::from_be_bytes(ts));
        if issued > now + FUTURE_SKEW {
            return NonceStatus::Invalid;
        }
        match now.duration_since(issued) {
            Ok(age) if age > self.ttl => NonceStatus::Stale,
            _ => NonceStatus::Valid,
        }
    }
}

/// Remembers the highest `nc` seen per nonce, so a captured request cannot be replayed.
/// Bounded: two generations of at most `capacity / 2` entries each; when the current one
/// fills up, the older one is dropped (its nonces are long expired by then in practice, and a
/// dropped nonce only loses replay tracking until it expires).
#[derive(Debug)]
pub struct NonceCounter {
    capacity: usize,
    gens: Mutex<(HashMap<String, u32>, HashMap<String, u32>)>,
}

impl NonceCounter {
    /// Track at most `capacity` nonces.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(2),
            gens: Mutex::new((HashMap::new(), HashMap::new())),
        }
    }

    /// Accept `nc` for `nonce` only if it is higher than every earlier one.
    pub fn accept(&self, nonce: &str, nc: u32) -> bool {
        let mut g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        let (current, previous) = &mut *g;
        let last = current.get(nonce).or_else(|| previous.get(nonce)).copied();
        if last.is_some_and(|l| nc <= l) {
            return false;
        }
        if current.len() >= self.capacity / 2 && !current.contains_key(nonce) {
            *previous = std::mem::take(current);
        }
        current.insert(nonce.to_string(), nc);
        true
    }

    /// Entries tracked now.
    pub fn len(&self) -> usize {
        let g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        g.0.len() + g.1.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        let h = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let r = parse_authorization(h).unwrap();
        assert_eq!(r.nc, Some(1));
        assert_eq!(
            r.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        let ha1 = ha1(
            DigestAlgorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(
            expected_response(&ha1, "GET", &r),
            "6629fae49393a05397450978507c4ef1"
        );
        assert!(verify(&ha1, "GET", &r));
        assert!(!verify(&ha1, "POST", &r));
    }

    fn rfc7616(algorithm: &str, response: &str) -> DigestResponse {
        parse_authorization(&format!(
            r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm={algorithm}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="{response}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
        ))
        .unwrap()
    }

    #[test]
    fn rfc7616_examples() {
        let md5 = rfc7616("MD5", "8ca523f5e9506fed4657c9700eebdbec");
        let ha1_md5 = ha1(
            DigestAlgorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert!(verify(&ha1_md5, "GET", &md5));
        let sha = rfc7616(
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        );
        let ha1_sha = ha1(
            DigestAlgorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert!(verify(&ha1_sha, "GET", &sha));
    }

    #[test]
    fn malformed_headers() {
        use DigestError::*;
        let ok = r#"Digest username="a", realm="r", nonce="n", uri="u", response="x""#;
        assert!(parse_authorization(ok).is_ok());
        assert_eq!(parse_authorization("Basic abc"), Err(NotDigest));
        assert_eq!(parse_authorization(""), Err(NotDigest));
        assert_eq!(
            parse_authorization(&ok.replace("uri=\"u\", ", "")),
            Err(Missing("uri"))
        );
        assert_eq!(
            parse_authorization(&format!("{ok}, realm=\"s\"")),
            Err(Duplicate("realm".into()))
        );
        assert!(matches!(
            parse_authorization(r#"Digest username="a"#),
            Err(Syntax(_))
        ));
        assert!(matches!(
            parse_authorization("Digest username"),
            Err(Syntax(_))
        ));
        assert!(matches!(
            parse_authorization("Digest username=\"a\" realm=\"b\""),
            Err(Syntax(_))
        ));
        assert_eq!(
            parse_authorization(&format!("{ok}, algorithm=SHA-512-256")),
            Err(UnsupportedAlgorithm("SHA-512-256".into()))
        );
        assert_eq!(
            parse_authorization(&format!("{ok}, qop=auth-int, nc=00000001, cnonce=\"c\"")),
            Err(UnsupportedQop("auth-int".into()))
        );
        assert_eq!(
            parse_authorization(&format!("{ok}, qop=auth, nc=zz, cnonce=\"c\"")),
            Err(BadNonceCount("zz".into()))
        );
        assert_eq!(
            parse_authorization(&format!("{ok}, qop=auth, nc=00000001")),
            Err(Missing("cnonce"))
        );
        assert_eq!(
            parse_authorization(&format!("Digest {}", "a".repeat(9000))),
            Err(TooLong)
        );
    }

    #[test]
    fn quoted_strings_escape_and_fold() {
        let r = parse_authorization("Digest username=\"a\\\"b\",\r\n realm=\"r\" , nonce=n, uri=\"sip:x@y\", response=\"0\"").unwrap();
        assert_eq!(r.username, "a\"b");
        assert_eq!(r.nonce, "n");
        assert_eq!(r.uri, "sip:x@y");
    }

    #[test]
    fn nonces_expire_and_cannot_be_forged() {
        let m = NonceManager::new([1; 32], Duration::from_secs(300));
        let now = SystemTime::now();
        let n = m.issue(now);
        assert_eq!(m.check(&n, now), NonceStatus::Valid);
        assert_eq!(
            m.check(&n, now + Duration::from_secs(301)),
            NonceStatus::Stale
        );
        assert_eq!(
            m.check(&m.issue(now + Duration::from_secs(3600)), now),
            NonceStatus::Invalid
        );
        let other = NonceManager::new([2; 32], Duration::from_secs(300));
        assert_eq!(other.check(&n, now), NonceStatus::Invalid);
        assert_eq!(m.check(&n[..20], now), NonceStatus::Invalid);
        assert_eq!(m.check("!!!", now), NonceStatus::Invalid);
        let mut tampered = n.into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            m.check(std::str::from_utf8(&tampered).unwrap(), now),
            NonceStatus::Invalid
        );
    }

    #[test]
    fn nonce_counts_must_increase_and_memory_is_bounded() {
        let c = NonceCounter::new(100);
        assert!(c.accept("n1", 1));
        assert!(!c.accept("n1", 1));
        assert!(c.accept("n1", 2));
        assert!(!c.accept("n1", 1));
        for i in 0..10_000 {
            c.accept(&format!("x{i}"), 1);
        }
        assert!(c.len() <= 100);
    }

    #[test]
    fn challenge_format() {
        assert_eq!(
            challenge("example.com", "abc", DigestAlgorithm::Md5, true, None),
            "Digest realm=\"example.com\", nonce=\"abc\", algorithm=MD5, qop=\"auth\", stale=true"
        );
    }
}
