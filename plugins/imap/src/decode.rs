//! Decoding MIME parts by ranges for servers without the BINARY extension (sans-IO).
//!
//! Base64 parts are almost always written in lines of one fixed length; then decoded byte
//! `o` sits at a computable place in the encoded text, and a range can be fetched directly
//! (the layout is checked against every fetched slice). Otherwise — irregular lines,
//! quoted-printable — the part is decoded as a stream from its start, discarding what comes
//! before the range: slower, still in bounded memory.

/// A part's transfer encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 7bit, 8bit, binary or unknown: the bytes as they are.
    Identity,
    /// base64
    Base64,
    /// quoted-printable
    QuotedPrintable,
}

fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Incremental base64 decoder: ignores line breaks and other non-alphabet bytes, stops at
/// padding.
#[derive(Debug, Default, Clone)]
pub struct Base64Stream {
    acc: u32,
    bits: u8,
    done: bool,
}

impl Base64Stream {
    /// Decode a chunk.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &c in input {
            if self.done {
                return;
            }
            if c == b'=' {
                self.done = true;
                return;
            }
            let Some(v) = b64_value(c) else { continue };
            self.acc = (self.acc << 6) | u32::from(v);
            self.bits += 6;
            if self.bits >= 8 {
                self.bits -= 8;
                out.push((self.acc >> self.bits) as u8);
                self.acc &= (1 << self.bits) - 1;
            }
        }
    }
}

/// Incremental quoted-printable decoder (soft line breaks, `=XX`), tolerant of chunk
/// boundaries anywhere.
#[derive(Debug, Default, Clone)]
pub struct QpStream {
    pending: Vec<u8>,
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

impl QpStream {
    /// Decode a chunk.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(input);
        let mut i = 0;
        while i < buf.len() {
            if buf[i] != b'=' {
                out.push(buf[i]);
                i += 1;
                continue;
            }
            let rest = &buf[i + 1..];
            if rest.len() < 2 {
                // "=\r" or "=X" or "=" at the end: wait for more (a lone "=\n" is complete).
                if rest.first() == Some(&b'\n') {
                    i += 2;
                    continue;
                }
                self.pending = buf[i..].to_vec();
                return;
            }
            match (rest[0], rest[1]) {
                (b'\r', b'\n') => i += 3,
                (b'\n', _) => i += 2,
                (a, b) => match (hex(a), hex(b)) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'=');
                        i += 1;
                    }
                },
            }
        }
    }

    /// Flush what is left at the end of the part.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.pending);
    }
}

/// The layout of a base64 part written in lines of `line` characters (CRLF after each but the
/// last), `octets` bytes long in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Characters per line.
    pub line: u64,
    /// Encoded size.
    pub octets: u64,
}

impl Layout {
    /// From the part's first bytes: the length of its first line; `None` if it has no line
    /// break there (a single line: then `line` = `octets`) or an odd length.
    pub fn detect(head: &[u8], octets: u64) -> Option<Layout> {
        let line = match head.windows(2).position(|w| w == b"\r\n") {
            Some(p) => p as u64,
            None if head.len() as u64 >= octets => octets,
            None => return None,
        };
        (line > 0 && line % 4 == 0).then_some(Layout { line, octets })
    }

    /// Byte offset of base64 character `c`.
    pub fn byte_of(&self, c: u64) -> u64 {
        (c / self.line) * (self.line + 2) + c % self.line
    }

    /// Base64 characters in the part (line breaks excluded; a trailing CRLF tolerated).
    pub fn chars(&self) -> u64 {
        let full = self.octets / (self.line + 2);
        let rest = self.octets % (self.line + 2);
        full * self.line + rest.min(self.line)
    }

    /// Decoded size given the number of `=` at the end.
    pub fn decoded_len(&self, padding: u64) -> u64 {
        (self.chars() / 4 * 3).saturating_sub(padding)
    }

    /// The encoded byte range holding decoded bytes `offset .. offset+max`, and how many
    /// decoded bytes to skip at its start.
    pub fn range(&self, offset: u64, max: u64) -> (u64, u64, u64) {
        let groups = self.chars() / 4;
        let g0 = (offset / 3).min(groups);
        let g1 = (offset + max).div_ceil(3).min(groups);
        let c0 = g0 * 4;
        let c1 = (g1 * 4).max(c0);
        let start = self.byte_of(c0).min(self.octets);
        let end = if c1 == c0 {
            start
        } else {
            self.byte_of(c1 - 1) + 1
        };
        (start, end - start, offset - g0 * 3)
    }

    /// Does `raw`, fetched from byte `start`, have line breaks exactly where this layout puts
    /// them?
    pub fn fits(&self, start: u64, raw: &[u8]) -> bool {
        let period = self.line + 2;
        raw.iter().enumerate().all(|(i, &b)| {
            let col = (start + i as u64) % period;
            match col {
                c if c == self.line => b == b'\r',
                c if c == self.line + 1 => b == b'\n',
                _ => b64_value(b).is_some() || b == b'=',
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn wrapped(data: &[u8], line: usize) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        let mut out = Vec::new();
        for (i, chunk) in b64.as_bytes().chunks(line).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn base64_stream_any_split() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 256) as u8).collect();
        let enc = wrapped(&data, 76);
        for split in [1, 3, 77, 500] {
            let mut d = Base64Stream::default();
            let mut out = Vec::new();
            for c in enc.chunks(split) {
                d.push(c, &mut out);
            }
            assert_eq!(out, data, "split {split}");
        }
    }

    #[test]
    fn qp_stream_any_split() {
        let enc = b"Caf=C3=A9 au lait =\r\nsoft break=3D=\nend=";
        let want = "Café au lait soft break=end=".as_bytes();
        for split in 1..enc.len() {
            let mut d = QpStream::default();
            let mut out = Vec::new();
            for c in enc.chunks(split) {
                d.push(c, &mut out);
            }
            d.finish(&mut out);
            assert_eq!(out, want, "split {split}");
        }
    }

    #[test]
    fn ranges_map_into_the_encoded_text() {
        for len in [0usize, 1, 2, 3, 57, 58, 1000, 4097] {
            let data: Vec<u8> = (0..len as u32).map(|i| (i * 7 % 251) as u8).collect();
            let enc = wrapped(&data, 76);
            let layout = Layout::detect(&enc[..enc.len().min(200)], enc.len() as u64);
            let Some(layout) = layout else {
                assert!(len == 0, "no layout for {len}");
                continue;
            };
            let padding = enc.iter().rev().take_while(|&&b| b == b'=').count() as u64;
            assert_eq!(layout.decoded_len(padding), len as u64, "len {len}");
            for (o, m) in [
                (0u64, 10u64),
                (5, 100),
                (len as u64 / 2, 3000),
                (len as u64, 5),
            ] {
                let (start, n, skip) = layout.range(o, m);
                let raw = &enc[start as usize..(start + n) as usize];
                assert!(layout.fits(start, raw));
                let mut out = Vec::new();
                Base64Stream::default().push(raw, &mut out);
                let got: Vec<u8> = out
                    .into_iter()
                    .skip(skip as usize)
                    .take(m as usize)
                    .collect();
                let lo = (o as usize).min(len);
                let hi = (o + m).min(len as u64) as usize;
                assert_eq!(got, data[lo..hi], "len {len} range {o}+{m}");
            }
        }
        // Lines of another length than the layout says are noticed.
        let layout = Layout {
            line: 76,
            octets: 1000,
        };
        assert!(!layout.fits(0, &[b'A'; 80]));
    }
}
