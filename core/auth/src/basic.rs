//! HTTP Basic authentication (RFC 7617).

use std::fmt;

use base64::Engine;

/// Longest `Authorization` value accepted (a Basic header is rarely over 200 bytes).
pub const MAX_HEADER_LEN: usize = 4096;

/// A username and password from a Basic header.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// Everything before the first `:`.
    pub username: String,
    /// Everything after it.
    pub password: String,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Why a Basic header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BasicError {
    /// Another scheme (Bearer, Digest, NTLM…) or no scheme.
    #[error("Authorization header: expected the Basic scheme")]
    NotBasic,
    /// Over [`MAX_HEADER_LEN`].
    #[error("Authorization header: longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    /// The credentials are not base64.
    #[error("Authorization header: Basic credentials are not valid base64")]
    BadBase64,
    /// The decoded credentials are not UTF-8.
    #[error("Authorization header: Basic credentials are not valid UTF-8")]
    NotUtf8,
    /// No `:` between user and password.
    #[error("Authorization header: Basic credentials have no ':' between user and password")]
    NoColon,
    /// Empty user name.
    #[error("Authorization header: Basic credentials have an empty user name")]
    EmptyUser,
    /// Control characters in user or password.
    #[error("Authorization header: Basic credentials contain control characters")]
    ControlChars,
}

/// Parse an `Authorization` header value of the Basic scheme.
pub fn parse_basic(value: &str) -> Result<BasicCredentials, BasicError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(BasicError::TooLong);
    }
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(BasicError::NotBasic)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BasicError::NotBasic);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| BasicError::BadBase64)?;
    let text = String::from_utf8(decoded).map_err(|_| BasicError::NotUtf8)?;
    let (username, password) = text.split_once(':').ok_or(BasicError::NoColon)?;
    if username.is_empty() {
        return Err(BasicError::EmptyUser);
    }
    if text.chars().any(char::is_control) {
        return Err(BasicError::ControlChars);
    }
    Ok(BasicCredentials {
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// The `WWW-Authenticate` value asking for Basic credentials in `realm`.
pub fn basic_challenge(realm: &str) -> String {
    format!("Basic realm=\"{}\", charset=\"UTF-8\"", quote(realm))
}

/// Escape `"` and `\` for a quoted-string.
pub(crate) fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7617_example() {
        // RFC 7617 §2: "Aladdin" / "open sesame".
        let c = parse_basic("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("Aladdin", "open sesame")
        );
        assert!(!format!("{c:?}").contains("sesame"));
        // Scheme is case-insensitive; the password may contain ':'.
        let c = parse_basic("bAsIc dTpwOnc=").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:w"));
    }

    #[test]
    fn every_malformed_header_has_its_error() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(parse_basic(""), Err(BasicError::NotBasic));
        assert_eq!(parse_basic("Bearer abc"), Err(BasicError::NotBasic));
        assert_eq!(parse_basic("Basic"), Err(BasicError::NotBasic));
        assert_eq!(parse_basic("Basic !!!"), Err(BasicError::BadBase64));
        assert_eq!(parse_basic("Basic //79"), Err(BasicError::NotUtf8));
        assert_eq!(
            parse_basic(&format!("Basic {}", b64("nocolon"))),
            Err(BasicError::NoColon)
        );
        assert_eq!(
            parse_basic(&format!("Basic {}", b64(":pw"))),
            Err(BasicError::EmptyUser)
        );
        assert_eq!(
            parse_basic(&format!("Basic {}", b64("a:b\u{0}"))),
            Err(BasicError::ControlChars)
        );
        assert_eq!(
            parse_basic(&format!("Basic {}", "A".repeat(5000))),
            Err(BasicError::TooLong)
        );
    }

    #[test]
    fn challenge_quotes_the_realm() {
        assert_eq!(
            basic_challenge("a\"b"),
            "Basic realm=\"a\\\"b\", charset=\"UTF-8\""
        );
    }
}
