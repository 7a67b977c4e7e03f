//! CalDAV / CardDAV: calendars, task lists and address books of the same user, from the
//! store's DAV server (Scalix, Radicale, any RFC 4791 / 6352 server), shown as folders beside
//! the IMAP mailboxes. Folder and item ids start with `dav:` followed by the resource path.
//!
//! Sync checks the collection's sync-token/CTag (`PROPFIND Depth: 0`), asks for the changes
//! with `REPORT sync-collection` (RFC 6578) and otherwise diffs an ETag listing
//! (`PROPFIND Depth: 1`) against the record of what the client holds — the same replay-safe
//! scheme as mail; items are fetched with GET and written with PUT (`If-None-Match: *` for
//! new ones) and DELETE.

pub mod http;
pub mod ical;
pub mod store;
pub mod xml;

/// Prefix of DAV folder and item ids.
pub const PREFIX: &str = "dav:";

/// The path of a DAV id, if it is one.
pub fn path_of(id: &str) -> Option<&str> {
    id.strip_prefix(PREFIX).filter(|p| p.starts_with('/'))
}

/// Percent-decoding (lossy for invalid UTF-8), for comparing paths.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Is `path` inside the user's `home` (both compared percent-decoded)? The service account
/// may read every user's collections, so every client-supplied DAV id is checked against
/// the principal's own home; `.`/`..` segments and control characters are refused.
pub fn within_home(path: &str, home: &str) -> bool {
    let p = percent_decode(path);
    let h = percent_decode(home);
    let h = if h.ends_with('/') { h } else { format!("{h}/") };
    p.starts_with(&h)
        && p.len() > h.len()
        && !p.split('/').any(|seg| seg == "." || seg == "..")
        && !p.chars().any(|c| c.is_control())
        && !path.contains(['?', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_in_the_users_home() {
        let home = "/alice@example.com/";
        assert!(within_home("/alice%40example.com/cal/", home));
        assert!(within_home("/alice@example.com/cal/e1.ics", home));
        assert!(!within_home("/bob%40example.com/cal/", home));
        assert!(!within_home(
            "/alice@example.com/../bob@example.com/cal/",
            home
        ));
        assert!(!within_home("/alice@example.com/%2e%2e/bob/", home));
        assert!(!within_home("/alice@example.com/", home));
        assert!(!within_home("/alice@example.com.evil/cal/", home));
        assert!(!within_home("/alice@example.com/cal/x?y", home));
        assert_eq!(path_of("dav:/x/"), Some("/x/"));
        assert_eq!(path_of("dav:x"), None);
        assert_eq!(percent_decode("%4"), "%4");
    }
}
