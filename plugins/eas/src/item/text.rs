//! Escaping of TEXT values shared by iCalendar (RFC 5545 §3.3.11) and vCard 3.0
//! (RFC 2426 §4): one copy, so contacts, events and tasks agree.

/// Undo `\\`, `\n`/`\N`, `\,`, `\;` in one pass: chained replaces would read the `\n` in
/// an escaped backslash followed by `n` (`\\n`) as a newline.
pub(crate) fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(c @ (',' | ';' | '\\')) => out.push(c),
            // An unknown escape is kept as written; a trailing backslash too.
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Escape a TEXT value: backslash first, so the escapes added after are not doubled.
pub(crate) fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_is_single_pass() {
        // An escaped backslash followed by `n` is a backslash and an `n`, not a newline.
        assert_eq!(unescape(r"C:\\new"), r"C:\new");
        assert_eq!(unescape(r"a\nb\Nc\,d\;e\\f"), "a\nb\nc,d;e\\f");
        assert_eq!(unescape(r"x\qy\"), r"x\qy\");
    }

    #[test]
    fn escape_round_trips() {
        for s in [r"C:\new", "a\nb,c;d\\", r"\\n", ""] {
            assert_eq!(unescape(&escape(s)), s);
        }
        assert_eq!(escape("a\\n,;\n"), r"a\\n\,\;\n");
    }
}
