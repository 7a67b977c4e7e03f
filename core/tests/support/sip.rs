//! Reading SIP messages in tests as text: the start line, a header, the body.

/// The start line (`SIP/2.0 200 OK`, `NOTIFY sip:… SIP/2.0`).
pub fn status(msg: &str) -> &str {
    msg.lines().next().unwrap_or("")
}

/// The first value of header `name` (case-insensitive), trimmed.
pub fn header<'m>(msg: &'m str, name: &str) -> Option<&'m str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Everything after the blank line.
pub fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}
