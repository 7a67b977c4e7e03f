//! Just enough MIME (RFC 5322 / 2045–2047) to present a message to a phone: header fields
//! (unfolded, RFC 2047 words decoded), the text/plain and text/html bodies (transfer
//! encodings and common charsets undone), whether it has attachments. Pure, bounded (depth
//! and part count) and total: malformed input yields less, never a panic.

use base64::Engine as _;

/// The most nested multiparts followed.
const MAX_DEPTH: usize = 8;
/// The most parts looked at.
const MAX_PARTS: usize = 64;

/// What a message shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Top-level header fields, names lower-cased, values unfolded and decoded.
    pub headers: Vec<(String, String)>,
    /// The first text/plain body, decoded.
    pub text: Option<String>,
    /// The first text/html body, decoded.
    pub html: Option<String>,
    /// The first text/calendar part (an invitation), decoded.
    pub calendar: Option<String>,
}

impl Message {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The plain-text body, or the HTML body with tags stripped.
    pub fn plain(&self) -> String {
        match (&self.text, &self.html) {
            (Some(t), _) => t.clone(),
            (None, Some(h)) => strip_html(h),
            (None, None) => String::new(),
        }
    }

    /// The HTML body, or the plain text escaped into HTML.
    pub fn html_body(&self) -> String {
        match (&self.html, &self.text) {
            (Some(h), _) => h.clone(),
            (None, Some(t)) => format!(
                "<html><body><pre>{}</pre></body></html>",
                t.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            ),
            (None, None) => String::new(),
        }
    }
}

/// Parse a message (possibly only its first bytes).
/// `v` as a header field body of a message we write: control characters (CR/LF above all, so
/// a decoded Subject cannot inject fields) dropped, non-ASCII RFC 2047-encoded.
pub fn header_value(v: &str) -> String {
    let v: String = v.chars().filter(|c| !c.is_control()).collect();
    if v.is_ascii() {
        v
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v.as_bytes())
        )
    }
}

pub fn parse(raw: &[u8]) -> Message {
    let (head, body) = split_head(raw);
    let headers = parse_headers(head);
    let mut msg = Message {
        headers: headers.clone(),
        ..Message::default()
    };
    let mut budget = MAX_PARTS;
    walk(&headers, body, 0, &mut budget, &mut msg);
    msg
}

/// Split at the first empty line (CRLF or LF).
fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' {
            let rest = &raw[i + 1..];
            if rest.starts_with(b"\r\n") {
                return (&raw[..i], &rest[2..]);
            }
            if rest.starts_with(b"\n") {
                return (&raw[..i], &rest[1..]);
            }
        }
        i += 1;
    }
    (raw, &[])
}

/// Header fields, unfolded; names lower-cased; values with RFC 2047 words decoded.
pub fn parse_headers(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        if out.len() > 200 {
            break;
        }
    }
    for h in &mut out {
        h.1 = decode_words(&h.1);
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A parameter of a structured header (`boundary`, `charset`, `name`…).
pub fn param(value: &str, name: &str) -> Option<String> {
    for part in value.split(';').skip(1) {
        let (k, v) = part.split_once('=')?;
        if k.trim().eq_ignore_ascii_case(name) {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

fn walk(
    headers: &[(String, String)],
    body: &[u8],
    depth: usize,
    budget: &mut usize,
    msg: &mut Message,
) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    let ctype = header(headers, "content-type").unwrap_or("text/plain");
    let mime = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let disposition = header(headers, "content-disposition").unwrap_or("");
    let attachment = disposition.to_ascii_lowercase().starts_with("attachment");
    if mime.starts_with("multipart/") {
        if depth >= MAX_DEPTH {
            return;
        }
        let Some(boundary) = param(ctype, "boundary") else {
            return;
        };
        for part in split_parts(body, &boundary) {
            let (h, b) = split_head(part);
            walk(&parse_headers(h), b, depth + 1, budget, msg);
        }
        return;
    }
    if !mime.starts_with("text/") || (attachment && mime != "text/calendar") {
        return;
    }
    let decoded = decode_transfer(header(headers, "content-transfer-encoding"), body);
    let text = decode_charset(param(ctype, "charset").as_deref(), &decoded);
    match mime.as_str() {
        "text/plain" if msg.text.is_none() => msg.text = Some(text),
        "text/html" if msg.html.is_none() => msg.html = Some(text),
        "text/calendar" if msg.calendar.is_none() => msg.calendar = Some(text),
        _ => {}
    }
}

/// The parts between `--boundary` lines.
fn split_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    let mut line_start = true;
    while i + d.len() <= body.len() {
        if line_start && body[i..].starts_with(d) {
            let after = i + d.len();
            let closing = body[after..].starts_with(b"--");
            starts.push((i, after, closing));
            if closing {
                break;
            }
        }
        line_start = body[i] == b'\n';
        i += 1;
    }
    let mut parts = Vec::new();
    for w in 0..starts.len() {
        let (_, after, closing) = starts[w];
        if closing {
            break;
        }
        // Skip the rest of the delimiter line.
        let mut s = after;
        while s < body.len() && body[s] != b'\n' {
            s += 1;
        }
        s = (s + 1).min(body.len());
        let end = starts.get(w + 1).map_or(body.len(), |n| n.0);
        let mut e = end;
        // The CRLF before the next delimiter belongs to it.
        if e > s && body[e - 1] == b'\n' {
            e -= 1;
            if e > s && body[e - 1] == b'\r' {
                e -= 1;
            }
        }
        if s <= e {
            parts.push(&body[s..e]);
        }
        if parts.len() >= MAX_PARTS {
            break;
        }
    }
    parts
}

/// Undo base64 / quoted-printable.
pub fn decode_transfer(cte: Option<&str>, body: &[u8]) -> Vec<u8> {
    match cte.map(|c| c.trim().to_ascii_lowercase()).as_deref() {
        Some("base64") => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&clean)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&clean))
                .unwrap_or_else(|_| body.to_vec())
        }
        Some("quoted-printable") => decode_qp(body, false),
        _ => body.to_vec(),
    }
}

fn hexval(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Quoted-printable (RFC 2045 6.7); `q` is the RFC 2047 "Q" variant (`_` is a space).
fn decode_qp(s: &[u8], q: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'=' => {
                // Soft line break.
                if s[i + 1..].starts_with(b"\r\n") {
                    i += 3;
                    continue;
                }
                if s[i + 1..].starts_with(b"\n") {
                    i += 2;
                    continue;
                }
                match (
                    s.get(i + 1).and_then(|b| hexval(*b)),
                    s.get(i + 2).and_then(|b| hexval(*b)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'_' if q => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Bytes in a charset to a string: every WHATWG encoding label (UTF-8, ISO-8859-x,
/// Windows-125x, KOI8, Shift_JIS, GB18030, Big5, EUC-KR…); unknown labels and no label as
/// UTF-8, malformed sequences replaced.
pub fn decode_charset(charset: Option<&str>, bytes: &[u8]) -> String {
    let enc = charset
        .and_then(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let (text, _, _) = enc.decode(bytes);
    text.into_owned()
}

/// Decode RFC 2047 encoded words (`=?utf-8?B?…?=`, `=?iso-8859-1?Q?…?=`); whitespace between
/// adjacent encoded words is dropped.
pub fn decode_words(s: &str) -> String {
    if !s.contains("=?") {
        return s.to_string();
    }
    let mut out = String::new();
    let mut rest = s;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, from) = rest.split_at(start);
        let decoded = word(from);
        match decoded {
            Some((text, used)) => {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &from[used..];
                last_was_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &from[2..];
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: its text and how many bytes it took.
fn word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (enc, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let payload = &rest[..end];
    let bytes = match enc {
        "B" | "b" => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(payload))
            .ok()?,
        "Q" | "q" => decode_qp(payload.as_bytes(), true),
        _ => return None,
    };
    let used = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    let charset = charset.split('*').next().unwrap_or(charset);
    Some((decode_charset(Some(charset), &bytes), used.min(s.len())))
}

/// Tags removed, entities for `&amp; &lt; &gt; &nbsp; &quot;` resolved, blank runs folded.
pub fn strip_html(h: &str) -> String {
    let mut out = String::with_capacity(h.len() / 2);
    let mut in_tag = false;
    let mut skip: Option<&str> = None;
    let lower = h.to_ascii_lowercase();
    let mut i = 0;
    let bytes = h.as_bytes();
    while i < bytes.len() {
        if let Some(end) = skip {
            // Byte-wise: inside <style>/<script> `i` walks through multi-byte characters.
            if lower.as_bytes()[i..].starts_with(end.as_bytes()) {
                skip = None;
                in_tag = false;
                i += end.len();
            } else {
                i += 1;
            }
            continue;
        }
        let c = bytes[i];
        if c == b'<' {
            if lower[i..].starts_with("<style") {
                skip = Some("</style>");
            } else if lower[i..].starts_with("<script") {
                skip = Some("</script>");
            } else if lower[i..].starts_with("<br")
                || lower[i..].starts_with("<p")
                || lower[i..].starts_with("</p")
                || lower[i..].starts_with("<div")
            {
                out.push('\n');
            }
            in_tag = true;
            i += 1;
            continue;
        }
        if c == b'>' && in_tag {
            in_tag = false;
            i += 1;
            continue;
        }
        if !in_tag {
            let ch_len = h[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&h[i..i + ch_len]);
            i += ch_len;
        } else {
            i += 1;
        }
    }
    let out = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let mut folded = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let l = line.trim_end();
        if l.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        folded.push_str(l);
        folded.push('\n');
    }
    folded.trim().to_string()
}

/// Truncate to at most `max` bytes on a char boundary; `true` when something was cut.
pub fn truncate(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut cut = max;
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = "From: =?utf-8?B?SsO8cmdlbg==?= <j@example.com>\r\nTo: alice@example.com,\r\n bob@example.com\r\nSubject: =?iso-8859-1?Q?Gr=FC=DFe?= =?utf-8?Q?_aus_K=C3=B6ln?=\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHallo J=C3=BCrgen,=\r\n wie geht's?\r\n--inner\r\nContent-Type: text/html; charset=\"iso-8859-1\"\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+SGFsbG8gSvxyZ2VuPC9wPg==\r\n--inner--\r\n--outer\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--outer--\r\n";

    #[test]
    fn multipart_message() {
        let m = parse(MULTI.as_bytes());
        assert_eq!(m.header("from"), Some("Jürgen <j@example.com>"));
        assert_eq!(m.header("to"), Some("alice@example.com, bob@example.com"));
        assert_eq!(m.header("subject"), Some("Grüße aus Köln"));
        assert_eq!(m.text.as_deref(), Some("Hallo Jürgen, wie geht's?"));
        assert_eq!(m.html.as_deref(), Some("<p>Hallo Jürgen</p>"));
        assert_eq!(strip_html(m.html.as_deref().unwrap()), "Hallo Jürgen");
        assert_eq!(decode_charset(Some("koi8-r"), &[0xf0, 0xd2, 0xc9]), "При");
        assert_eq!(decode_charset(Some("windows-1250"), &[0x9a]), "š");
        assert_eq!(decode_charset(Some("x-unknown"), "ü".as_bytes()), "ü");
    }

    #[test]
    fn plain_and_html_only() {
        let m = parse(b"Subject: hi\n\nbody line\n");
        assert_eq!(m.plain(), "body line\n");
        assert!(m.html_body().contains("<pre>body line"));
        let m =
            parse(b"Content-Type: text/html\r\n\r\n<style>x{}</style><b>bold</b> &amp; <br>more");
        assert_eq!(m.plain(), "bold &\nmore");
    }

    #[test]
    fn malformed_input_never_panics() {
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"Content-Type: multipart/mixed\r\n\r\nno boundary".to_vec(),
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x".to_vec(),
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x--".to_vec(),
            b"Subject: =?utf-8?B?###?= =?x?Q?=?=\r\n\r\n=".to_vec(),
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=\r".to_vec(),
            vec![0xff; 100],
        ];
        for c in cases {
            let _ = parse(&c);
        }
        for n in 0..MULTI.len() {
            let _ = parse(&MULTI.as_bytes()[..n]);
        }
        let _ = strip_html("<style>é{}ü</style>ö<b title='ä'>x</b>€");
        assert_eq!(strip_html("<style>é</style>ö"), "ö");
        let mut s = "aéb".to_string();
        assert!(truncate(&mut s, 2));
        assert_eq!(s, "a");
    }
}
