//! Response framing and the few textual bits of IMAP we read without `imap-proto` (sans-IO,
//! unit-tested): a *frame* is one complete server response — its lines plus any literals
//! (`{n}` / `~{n}`) — which is what the parser and our own scanners work on.

/// One complete server response: the raw bytes, and where the literals' contents are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// The whole response, CRLFs and literals included.
    pub data: Vec<u8>,
    /// Byte ranges of literal contents within `data`.
    pub literals: Vec<std::ops::Range<usize>>,
}

impl Frame {
    /// The response with literal contents left out: what textual scans look at.
    pub fn text(&self) -> String {
        let mut out = Vec::with_capacity(self.data.len().min(4096));
        let mut at = 0;
        for lit in &self.literals {
            out.extend_from_slice(&self.data[at..lit.start]);
            at = lit.end;
        }
        out.extend_from_slice(&self.data[at.min(self.data.len())..]);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Untagged (`* …`)?
    pub fn is_untagged(&self) -> bool {
        self.data.starts_with(b"* ")
    }

    /// A continuation request (`+ …`)?
    pub fn is_continuation(&self) -> bool {
        self.data.starts_with(b"+")
    }
}

/// The size of the literal a line announces at its end (`{12}`, `{12+}`, `~{12}`), if any.
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Status of a tagged completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// OK
    Ok,
    /// NO
    No,
    /// BAD
    Bad,
}

/// A tagged completion line: `A7 OK [CODE …] text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// OK, NO or BAD.
    pub status: Status,
    /// The response code's text without brackets (`APPENDUID 38505 3955`), if any.
    pub code: Option<String>,
    /// Human-readable rest.
    pub text: String,
}

/// Parse `frame` as the completion of `tag`; `None` when it is something else.
pub fn parse_done(frame: &Frame, tag: &str) -> Option<Done> {
    let text = frame.text();
    let rest = text.strip_prefix(tag)?.strip_prefix(' ')?;
    let (status, rest) = rest.split_once(' ').unwrap_or((rest.trim_end(), ""));
    let status = match status.trim_end().to_ascii_uppercase().as_str() {
        "OK" => Status::Ok,
        "NO" => Status::No,
        "BAD" => Status::Bad,
        _ => return None,
    };
    let rest = rest.trim_end();
    let (code, text) = match rest.strip_prefix('[') {
        Some(r) => match r.split_once(']') {
            Some((code, t)) => (Some(code.to_string()), t.trim_start().to_string()),
            None => (None, rest.to_string()),
        },
        None => (None, rest.to_string()),
    };
    Some(Done { status, code, text })
}

/// The first number after `key` (a response code like `UIDVALIDITY ` or a fetch item like
/// `RFC822.SIZE `) in any of `frames`' text, case-insensitively.
pub fn number_after(text: &str, key: &str) -> Option<u64> {
    let upper = text.to_ascii_uppercase();
    let at = upper.find(&key.to_ascii_uppercase())? + key.len();
    let digits: String = upper[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `* N EXISTS` → N.
pub fn exists(text: &str) -> Option<u32> {
    let rest = text.strip_prefix("* ")?;
    let (n, word) = rest.trim_end().split_once(' ')?;
    word.eq_ignore_ascii_case("EXISTS")
        .then(|| n.parse().ok())
        .flatten()
}

/// Whether an untagged response reports a change in the selected mailbox: new mail
/// (`* N EXISTS`), a removal (`* N EXPUNGE`, `* VANISHED …`) or changed flags (`* N FETCH`).
/// `* N RECENT` alone comes with an EXISTS and is not counted twice.
pub fn is_change(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("* ") else {
        return false;
    };
    let mut words = rest.split_ascii_whitespace();
    let first = words.next().unwrap_or("");
    if first.eq_ignore_ascii_case("VANISHED") {
        return true;
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let word = words.next().unwrap_or("");
    ["EXISTS", "EXPUNGE", "FETCH"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

/// Capabilities from `* CAPABILITY …` or a `CAPABILITY …` response code, upper-cased.
pub fn capabilities(text: &str) -> Option<Vec<String>> {
    let upper = text.to_ascii_uppercase();
    let at = upper.find("CAPABILITY ")? + "CAPABILITY ".len();
    let rest = &upper[at..];
    let end = rest.find([']', '\r', '\n']).unwrap_or(rest.len());
    Some(rest[..end].split_whitespace().map(str::to_string).collect())
}

/// UIDs of a `* SEARCH 1 4 9 (MODSEQ 12)` response.
pub fn search(text: &str) -> Option<Vec<u32>> {
    let upper = text.to_ascii_uppercase();
    let rest = upper.strip_prefix("* SEARCH")?;
    Some(
        rest.split_whitespace()
            .take_while(|t| !t.starts_with('('))
            .filter_map(|t| t.parse().ok())
            .collect(),
    )
}

/// A UID set in IMAP syntax (`1:4,7,9:10`) parsed into UIDs; `*` is not allowed here.
pub fn parse_uid_set(set: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                let (lo, hi) = (a.min(b), a.max(b));
                if hi - lo > 1_000_000 {
                    return None;
                }
                out.extend(lo..=hi);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// Format UIDs (any order) as a compact IMAP set: `1:4,7`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// An IMAP quoted string for ASCII text; `None` when the text needs a literal (CR, LF, NUL
/// or non-ASCII).
pub fn quoted(s: &str) -> Option<String> {
    if s.bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == 0 || !b.is_ascii())
    {
        return None;
    }
    Some(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// The content of a body-section fetch (`BODY[…]<o> {n}` literal, `""` or `NIL`) and the
/// total size announced by `size_key` (`RFC822.SIZE ` or `BINARY.SIZE[2] `) in one FETCH
/// frame. `None` when the frame carries no section data.
pub fn section_chunk(frame: &Frame, size_key: &str) -> Option<(Vec<u8>, Option<u64>)> {
    let text = frame.text();
    let upper = text.to_ascii_uppercase();
    if !upper.starts_with("* ") || !upper.contains(" FETCH ") {
        return None;
    }
    let total = number_after(&text, size_key);
    if let Some(lit) = frame.literals.first() {
        return Some((frame.data[lit.clone()].to_vec(), total));
    }
    // No literal: an empty quoted string or NIL after the section.
    let at = upper.find("BODY[").or_else(|| upper.find("BINARY["))?;
    let after = &upper[at..];
    let close = after.find(']')?;
    let rest =
        after[close + 1..].trim_start_matches(|c: char| c == '<' || c.is_ascii_digit() || c == '>');
    let rest = rest.trim_start();
    (rest.starts_with("\"\"") || rest.starts_with("NIL")).then_some((Vec::new(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(parts: &[&[u8]]) -> Frame {
        // parts alternate text, literal, text…
        let mut f = Frame::default();
        for (i, p) in parts.iter().enumerate() {
            let start = f.data.len();
            f.data.extend_from_slice(p);
            if i % 2 == 1 {
                f.literals.push(start..f.data.len());
            }
        }
        f
    }

    #[test]
    fn changes_in_the_selected_mailbox() {
        for yes in [
            "* 23 EXISTS\r\n",
            "* 4 expunge\r\n",
            "* 7 FETCH (FLAGS (\\Seen) MODSEQ (12))\r\n",
            "* VANISHED (EARLIER) 300:310\r\n",
            "* VANISHED 41\r\n",
        ] {
            assert!(is_change(yes), "{yes}");
        }
        for no in [
            "* 3 RECENT\r\n",
            "* OK Still here\r\n",
            "* BYE shutting down\r\n",
            "* STATUS INBOX (MESSAGES 3)\r\n",
            "+ idling\r\n",
            "S1 OK IDLE terminated\r\n",
            "* EXISTS\r\n",
            "*  \r\n",
        ] {
            assert!(!is_change(no), "{no}");
        }
    }

    #[test]
    fn literal_markers() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
        assert_eq!(literal_len(b"* 1 FETCH (BINARY[1] ~{3}\r\n"), Some(3));
        assert_eq!(literal_len(b"A1 APPEND x {3+}\r\n"), Some(3));
        assert_eq!(literal_len(b"* OK {x}\r\n"), None);
        assert_eq!(literal_len(b"* OK done\r\n"), None);
        assert_eq!(literal_len(b"* OK {}\r\n"), None);
    }

    #[test]
    fn tagged_completions() {
        let f = frame(&[b"A3 OK [APPENDUID 38505 3955] APPEND completed\r\n"]);
        let d = parse_done(&f, "A3").unwrap();
        assert_eq!(d.status, Status::Ok);
        assert_eq!(d.code.as_deref(), Some("APPENDUID 38505 3955"));
        assert_eq!(d.text, "APPEND completed");
        let f = frame(&[b"A4 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"]);
        assert_eq!(parse_done(&f, "A4").unwrap().status, Status::No);
        assert!(parse_done(&f, "A40").is_none());
        assert!(parse_done(&frame(&[b"* OK hi\r\n"]), "A4").is_none());
        assert_eq!(
            parse_done(&frame(&[b"A5 bad\r\n"]), "A5").unwrap().status,
            Status::Bad
        );
    }

    #[test]
    fn scans() {
        assert_eq!(
            number_after("* OK [UIDVALIDITY 1796063520] UIDs valid", "UIDVALIDITY "),
            Some(1796063520)
        );
        assert_eq!(
            number_after("* OK [HIGHESTMODSEQ 2] x", "HIGHESTMODSEQ "),
            Some(2)
        );
        assert_eq!(number_after("* OK x", "HIGHESTMODSEQ "), None);
        assert_eq!(exists("* 23 EXISTS\r\n"), Some(23));
        assert_eq!(exists("* 23 RECENT\r\n"), None);
        assert_eq!(
            capabilities("* CAPABILITY IMAP4rev1 MOVE auth=PLAIN\r\n").unwrap(),
            ["IMAP4REV1", "MOVE", "AUTH=PLAIN"]
        );
        assert_eq!(
            capabilities("A1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in").unwrap(),
            ["IMAP4REV1", "IDLE"]
        );
        assert_eq!(search("* SEARCH 2 3 9\r\n").unwrap(), [2, 3, 9]);
        assert_eq!(search("* SEARCH 2 (MODSEQ 7)\r\n").unwrap(), [2]);
        assert_eq!(search("* SEARCH\r\n").unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn uid_sets_round_trip() {
        assert_eq!(uid_set(&[7, 1, 2, 3, 4, 9, 10]), "1:4,7,9:10");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(parse_uid_set("1:4,7,10:9").unwrap(), [1, 2, 3, 4, 7, 9, 10]);
        assert!(parse_uid_set("1:*").is_none());
        assert!(parse_uid_set("1:4000000000").is_none());
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("a\"b\\c").unwrap(), "\"a\\\"b\\\\c\"");
        assert!(quoted("x\r\ny").is_none());
        assert!(quoted("größe").is_none());
    }

    #[test]
    fn section_chunks() {
        let f = frame(&[
            b"* 3 FETCH (UID 5 RFC822.SIZE 120 BODY[]<10> {4}\r\n",
            b"abcd",
            b")\r\n",
        ]);
        assert_eq!(
            f.text(),
            "* 3 FETCH (UID 5 RFC822.SIZE 120 BODY[]<10> {4}\r\n)\r\n"
        );
        assert_eq!(
            section_chunk(&f, "RFC822.SIZE "),
            Some((b"abcd".to_vec(), Some(120)))
        );
        let f = frame(&[b"* 3 FETCH (UID 5 BINARY.SIZE[2] 10 BINARY[2]<20> \"\")\r\n"]);
        assert_eq!(
            section_chunk(&f, "BINARY.SIZE[2] "),
            Some((Vec::new(), Some(10)))
        );
        let f = frame(&[b"* 3 FETCH (UID 5 FLAGS (\\Seen))\r\n"]);
        assert_eq!(section_chunk(&f, "RFC822.SIZE "), None);
        assert_eq!(
            section_chunk(&frame(&[b"* OK hi\r\n"]), "RFC822.SIZE "),
            None
        );
    }
}
