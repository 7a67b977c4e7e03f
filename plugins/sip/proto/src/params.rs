//! `;name[=value]` parameter lists, validated once and then read without allocating.

use crate::uri::check_param_chars;

/// A validated parameter list (the text after the first `;`), borrowed from the message.
///
/// Names compare case-insensitively. Quoted values are returned without their quotes (escapes
/// inside are left as written). Whitespace around `;` and `=` (allowed in headers) is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a>(&'a str);

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

/// A non-empty run of token characters.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Index of the closing quote of a quoted string starting at `s[0] == '"'`.
pub(crate) fn quoted_end(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

impl<'a> Params<'a> {
    /// An empty list.
    pub const EMPTY: Params<'static> = Params("");

    /// The raw text (without the leading `;`).
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// Validate URI parameters (no whitespace, no quotes).
    pub(crate) fn parse_uri_params(s: &'a str) -> Result<Self, &'static str> {
        if s.is_empty() {
            return Ok(Params(s));
        }
        for p in s.split(';') {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if name.is_empty() {
                return Err("empty URI parameter");
            }
            check_param_chars(name)?;
            if let Some(v) = value {
                check_param_chars(v)?;
            }
        }
        Ok(Params(s))
    }

    /// Validate header parameters: `token [= (token / host / quoted-string)]`, LWS allowed.
    pub(crate) fn parse_header_params(s: &'a str) -> Result<Self, &'static str> {
        if s.trim().is_empty() {
            return Ok(Params(""));
        }
        for (raw_name, raw_value) in Split(s.as_bytes(), s, 0) {
            let name = raw_name.trim();
            if name.is_empty() {
                return Err("empty parameter");
            }
            if !is_token(name) {
                return Err("bad parameter name");
            }
            if let Some(v) = raw_value {
                let v = v.trim();
                if v.is_empty() {
                    return Err("empty parameter value");
                }
                if v.starts_with('"') {
                    match quoted_end(v.as_bytes()) {
                        Some(end) if end == v.len() - 1 => {}
                        Some(_) => return Err("junk after quoted parameter value"),
                        None => return Err("unterminated quoted string"),
                    }
                } else if !v
                    .bytes()
                    .all(|c| is_token_char(c) || matches!(c, b'[' | b']' | b':'))
                {
                    return Err("bad parameter value");
                }
            }
        }
        Ok(Params(s))
    }

    /// Iterate over `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        let s = self.0;
        let empty = s.trim().is_empty();
        Split(s.as_bytes(), s, if empty { s.len() + 1 } else { 0 }).map(|(n, v)| {
            let v = v.map(|v| {
                let v = v.trim();
                if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                    &v[1..v.len() - 1]
                } else {
                    v
                }
            });
            (n.trim(), v)
        })
    }

    /// `Some(value)` if the parameter is present (`Some(None)` for a flag).
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of a parameter, if present with a value.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).flatten()
    }

    /// Whether the parameter is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Splits `a;b=c;d` on `;` outside quotes, yielding `(name, value)`.
struct Split<'a>(&'a [u8], &'a str, usize);

impl<'a> Iterator for Split<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        let (b, s) = (self.0, self.1);
        if self.2 > b.len() {
            return None;
        }
        let start = self.2;
        let mut i = start;
        let mut eq = None;
        while i < b.len() && b[i] != b';' {
            match b[i] {
                b'"' => match quoted_end(&b[i..]) {
                    Some(e) => i += e + 1,
                    None => i = b.len(),
                },
                b'=' if eq.is_none() => {
                    eq = Some(i);
                    i += 1;
                }
                _ => i += 1,
            }
        }
        let end = i.min(b.len());
        self.2 = end + 1;
        Some(match eq {
            Some(e) => (&s[start..e], Some(&s[e + 1..end])),
            None => (&s[start..end], None),
        })
    }
}
