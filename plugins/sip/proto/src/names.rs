//! Header names: canonical spellings, compact forms (RFC 3261 §7.3.3 and extensions) and which
//! headers are comma-separated lists.

/// A header this crate knows: canonical name, compact form, and whether its grammar is a
/// comma-separated list (so one line may carry several values).
struct Known {
    name: &'static str,
    compact: Option<u8>,
    list: bool,
}

const fn k(name: &'static str, compact: Option<u8>, list: bool) -> Known {
    Known {
        name,
        compact,
        list,
    }
}

static KNOWN: &[Known] = &[
    k("Via", Some(b'v'), true),
    k("From", Some(b'f'), false),
    k("To", Some(b't'), false),
    k("Call-ID", Some(b'i'), false),
    k("CSeq", None, false),
    k("Max-Forwards", None, false),
    k("Contact", Some(b'm'), true),
    k("Content-Length", Some(b'l'), false),
    k("Content-Type", Some(b'c'), false),
    k("Content-Encoding", Some(b'e'), true),
    k("Expires", None, false),
    k("Route", None, true),
    k("Record-Route", None, true),
    k("Path", None, true),
    k("Supported", Some(b'k'), true),
    k("Require", None, true),
    k("Proxy-Require", None, true),
    k("Unsupported", None, true),
    k("Allow", None, true),
    k("Accept", None, true),
    k("Accept-Encoding", None, true),
    k("Accept-Language", None, true),
    k("Event", Some(b'o'), false),
    k("Allow-Events", Some(b'u'), true),
    k("Subscription-State", None, false),
    k("SIP-ETag", None, false),
    k("SIP-If-Match", None, false),
    k("Min-Expires", None, false),
    k("Authorization", None, false),
    k("Proxy-Authorization", None, false),
    k("WWW-Authenticate", None, false),
    k("Proxy-Authenticate", None, false),
    k("Authentication-Info", None, false),
    k("Subject", Some(b's'), false),
    k("Refer-To", Some(b'r'), false),
    k("Referred-By", Some(b'b'), false),
    k("Session-Expires", Some(b'x'), false),
    k("Identity", Some(b'y'), false),
    k("Accept-Contact", Some(b'a'), true),
    k("Reject-Contact", Some(b'j'), true),
    k("Request-Disposition", Some(b'd'), true),
    k("Alert-Info", None, true),
    k("Call-Info", None, true),
    k("Error-Info", None, true),
    k("Content-Disposition", None, false),
    k("Content-Language", None, true),
    k("Date", None, false),
    k("In-Reply-To", None, true),
    k("MIME-Version", None, false),
    k("Organization", None, false),
    k("Priority", None, false),
    k("Reply-To", None, false),
    k("Retry-After", None, false),
    k("Server", None, false),
    k("Timestamp", None, false),
    k("User-Agent", None, false),
    k("Warning", None, true),
    k("Min-SE", None, false),
    k("Flow-Timer", None, false),
    k("Reason", None, true),
];

fn lookup(name: &str) -> Option<&'static Known> {
    let b = name.as_bytes();
    if b.len() == 1 {
        let c = b[0].to_ascii_lowercase();
        return KNOWN.iter().find(|k| k.compact == Some(c));
    }
    KNOWN
        .iter()
        .find(|k| k.name.len() == b.len() && k.name.eq_ignore_ascii_case(name))
}

/// The canonical spelling of a known header name (compact forms expanded), or `None` for an
/// extension header.
pub fn canonical(name: &str) -> Option<&'static str> {
    lookup(name).map(|k| k.name)
}

/// The canonical name and whether it is a list header, in one lookup.
pub(crate) fn known(name: &str) -> Option<(&'static str, bool)> {
    lookup(name).map(|k| (k.name, k.list))
}

/// Whether the header's grammar is a comma-separated list (so values are split on commas).
pub fn is_list(canonical_name: &str) -> bool {
    lookup(canonical_name).is_some_and(|k| k.list)
}

/// Whether two header names denote the same header (compact forms and case folded).
pub fn same(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    match (canonical(a), canonical(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}
