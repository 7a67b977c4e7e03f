//! Helpers for mail connectors: message handling every connector that sends mail needs the
//! same way, and the event keys frontends and connectors agree on.

use crate::Principal;

/// The event key published when anything in one of `who`'s folders changes
/// (`mailbox:{user@domain}/{folder}`, the address lowercased): a parked ActiveSync Ping
/// watching the folder wakes.
///
/// ```
/// use switchboard_sdk::{mail::folder_event, Principal};
/// let who = Principal { user: "Alice".into(), domain: "Example.com".into() };
/// assert_eq!(folder_event(&who, "INBOX"), "mailbox:alice@example.com/INBOX");
/// ```
pub fn folder_event(who: &Principal, folder: &str) -> String {
    format!("mailbox:{}/{folder}", who.address().to_lowercase())
}

/// The event key published when `who`'s folder hierarchy changes (`mailbox:{user@domain}`).
pub fn hierarchy_event(who: &Principal) -> String {
    format!("mailbox:{}", who.address().to_lowercase())
}

/// The header block `headers` without its `Bcc` fields, continuation lines included: what a
/// connector transmits and files in Sent Items after taking the Bcc recipients as envelope
/// recipients (RFC 5322 §3.6.3 leaves removal to the sender; recipients must not see them).
///
/// ```
/// let h = b"From: a@x\r\nBcc: b@x,\r\n c@x\r\nTo: d@x\r\n\r\n";
/// assert_eq!(
///     switchboard_sdk::mail::without_bcc(h),
///     b"From: a@x\r\nTo: d@x\r\n\r\n"
/// );
/// ```
pub fn without_bcc(headers: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(headers.len());
    let mut skipping = false;
    for line in headers.split_inclusive(|&b| b == b'\n') {
        let continuation = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !continuation {
            skipping = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::without_bcc;

    #[test]
    fn removes_every_bcc_field_with_its_continuations_only() {
        let h = b"BCC: x@y\r\nTo: a@x\r\nbcc: z@y\r\n\tw@y\r\nSubject: Bcc: not a field\r\n\r\n";
        assert_eq!(
            without_bcc(h),
            b"To: a@x\r\nSubject: Bcc: not a field\r\n\r\n"
        );
        assert_eq!(without_bcc(b""), b"");
        assert_eq!(without_bcc(b"To: a@x\n\n"), b"To: a@x\n\n");
    }
}
