//! CalDAV / CardDAV: calendars, task lists and address books of the same user, from the
//! store's DAV server (Scalix, Radicale, any RFC 4791 / 6352 server), shown as folders beside
//! the IMAP mailboxes. Folder and item ids start with `dav:` followed by the resource path.
//!
//! Sync is a listing of ETags (`PROPFIND Depth: 1`) diffed against the record of what the
//! client holds — the same replay-safe scheme as mail; items are fetched with GET and written
//! with PUT (`If-None-Match: *` for new ones) and DELETE.

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
