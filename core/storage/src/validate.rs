//! Input validation shared by the repositories. Everything here is pure and never panics.

use crate::StorageError;

/// Longest DNS name (RFC 1035 §2.3.4, without the trailing dot).
const MAX_DOMAIN_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;
/// Longest local part of an address (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_LEN: usize = 64;

/// A validated, lowercased user address split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address {
    /// `local@domain`, lowercased.
    pub full: String,
    /// The part before the `@`.
    pub local: String,
    /// The part after the `@`.
    pub domain: String,
}

/// Shortens a value for inclusion in an error message.
pub(crate) fn shorten(value: &str) -> String {
    const MAX: usize = 100;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

/// Lowercases and validates a DNS domain name: ASCII letters, digits, hyphens and dots, labels of
/// 1–63 characters that neither start nor end with a hyphen, at most 253 characters in total.
pub(crate) fn domain_name(name: &str) -> Result<String, StorageError> {
    let err = |reason: &str| StorageError::InvalidDomain {
        name: shorten(name),
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(err("it is empty"));
    }
    if name.len() > MAX_DOMAIN_LEN {
        return Err(err("it is longer than 253 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        let reason = if c.is_ascii() {
            format!("it contains {c:?}; only letters, digits, hyphens and dots are allowed")
        } else {
            format!(
                "it contains {c:?}; internationalised names must be given in their ASCII \
                 (\"xn--\") form"
            )
        };
        return Err(err(&reason));
    }
    if name.ends_with('.') {
        return Err(err("it must not end with a dot"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(err(
                "it contains an empty label (a leading dot or two dots in a row)",
            ));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(err(&format!(
                "label {label:?} is longer than 63 characters"
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(err(&format!(
                "label {label:?} starts or ends with a hyphen"
            )));
        }
    }
    Ok(name.to_ascii_lowercase())
}

/// Lowercases and validates a user address `local@domain`.
///
/// The local part may contain ASCII letters, digits and `.`, `_`, `-`, `+` (a set that is valid
/// both in e-mail addresses and in SIP user parts), 1–64 characters, not starting or ending with
/// a dot and without two dots in a row. The domain part must be a valid domain name.
pub(crate) fn address(address: &str) -> Result<Address, StorageError> {
    let err = |reason: String| StorageError::InvalidAddress {
        address: shorten(address),
        reason,
    };
    let mut parts = address.split('@');
    let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => (local, domain),
        (_, None, _) => return Err(err("it has no \"@\"".to_owned())),
        _ => return Err(err("it has more than one \"@\"".to_owned())),
    };
    if local.is_empty() {
        return Err(err("the part before \"@\" is empty".to_owned()));
    }
    if local.len() > MAX_LOCAL_LEN {
        return Err(err(
            "the part before \"@\" is longer than 64 characters".to_owned()
        ));
    }
    if let Some(c) = local
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+')))
    {
        return Err(err(format!(
            "the part before \"@\" contains {c:?}; only letters, digits and . _ - + are allowed"
        )));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(err(
            "the part before \"@\" starts or ends with a dot or has two dots in a row".to_owned(),
        ));
    }
    let domain = match domain_name(domain) {
        Ok(d) => d,
        Err(StorageError::InvalidDomain { reason, .. }) => {
            return Err(err(format!("the domain part is invalid: {reason}")))
        }
        Err(other) => return Err(other),
    };
    let local = local.to_ascii_lowercase();
    Ok(Address {
        full: format!("{local}@{domain}"),
        local,
        domain,
    })
}

/// Checks a free-text identifier: not empty (unless allowed), at most `max_bytes` bytes, no
/// control characters (which also excludes NUL, which PostgreSQL cannot store in text).
pub(crate) fn text(
    field: &'static str,
    value: &str,
    max_bytes: usize,
    allow_empty: bool,
) -> Result<(), StorageError> {
    let err = |reason: String| StorageError::InvalidInput {
        field,
        value: shorten(value),
        reason,
    };
    if value.is_empty() && !allow_empty {
        return Err(err("it must not be empty".to_owned()));
    }
    if value.len() > max_bytes {
        return Err(err(format!("it is longer than {max_bytes} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(err("it contains control characters".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(
            domain_name("Example.COM").ok().as_deref(),
            Some("example.com")
        );
        assert_eq!(domain_name("localhost").ok().as_deref(), Some("localhost"));
        assert_eq!(
            domain_name("a-b.x1.org").ok().as_deref(),
            Some("a-b.x1.org")
        );
        for bad in [
            "",
            ".",
            "a..b",
            ".a",
            "a.",
            "-a.org",
            "a-.org",
            "a_b.org",
            "bücher.de",
            "a b",
            "a@b",
        ] {
            assert!(domain_name(bad).is_err(), "{bad:?} accepted");
        }
        let long_label = format!("{}.org", "a".repeat(64));
        assert!(domain_name(&long_label).is_err());
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62),
        ]
        .join(".");
        assert_eq!(long.len(), 254);
        assert!(domain_name(&long).is_err());
        assert!(domain_name(&long[1..]).is_ok());
    }

    #[test]
    fn addresses() {
        let a = address("Bob.Smith+x@Example.com").expect("valid");
        assert_eq!(a.full, "bob.smith+x@example.com");
        assert_eq!(a.local, "bob.smith+x");
        assert_eq!(a.domain, "example.com");
        for bad in [
            "",
            "bob",
            "@example.com",
            "bob@",
            "bob@@example.com",
            "a@b@c.org",
            ".bob@x.org",
            "bob.@x.org",
            "b..ob@x.org",
            "bo b@x.org",
            "bob\"@x.org",
            "bob@x..org",
            "bøb@x.org",
        ] {
            assert!(address(bad).is_err(), "{bad:?} accepted");
        }
        assert!(address(&format!("{}@x.org", "a".repeat(65))).is_err());
        assert!(address(&format!("{}@x.org", "a".repeat(64))).is_ok());
    }

    #[test]
    fn texts() {
        assert!(text("f", "ok", 10, false).is_ok());
        assert!(text("f", "", 10, true).is_ok());
        assert!(text("f", "", 10, false).is_err());
        assert!(text("f", "12345678901", 10, false).is_err());
        assert!(text("f", "a\0b", 10, false).is_err());
        assert!(text("f", "a\nb", 10, false).is_err());
    }

    #[test]
    fn shortening() {
        assert_eq!(shorten("abc"), "abc");
        let s = shorten(&"é".repeat(300));
        assert_eq!(s.chars().count(), 101);
    }
}
