//! Helpers for mail connectors: message handling every connector that sends mail needs the
//! same way.

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
