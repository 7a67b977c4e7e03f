//! Streaming content-transfer decoders (base64, quoted-printable, identity) and ranged
//! decoding through a sparse index. Sans-IO: bytes in, bytes out.
//!
//! While a part is stored, [`Decoder::feed`] runs over its encoded body once and records an
//! [`IndexPoint`] every [`INDEX_STEP`] decoded bytes, at an encoded position where the decoder
//! holds no partial state (a base64 quantum boundary, a quoted-printable position outside an
//! `=XX` escape). A ranged fetch then restarts a fresh decoder at the nearest point before the
//! wanted decoded offset, so it decodes at most `INDEX_STEP` bytes it does not return.

use serde::{Deserialize, Serialize};

/// Decoded bytes between two index points.
pub const INDEX_STEP: u64 = 64 * 1024;

/// A content-transfer-encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// 7bit, 8bit, binary, or anything unknown: the bytes as they are.
    Identity,
    /// RFC 2045 base64; characters outside the alphabet are skipped.
    Base64,
    /// RFC 2045 quoted-printable (lenient: malformed escapes pass through).
    QuotedPrintable,
}

impl Encoding {
    /// The encoding named by a `Content-Transfer-Encoding` value.
    pub fn from_header(value: &str) -> Encoding {
        match value.trim().to_ascii_lowercase().as_str() {
            "base64" => Encoding::Base64,
            "quoted-printable" => Encoding::QuotedPrintable,
            _ => Encoding::Identity,
        }
    }
}

/// A restart point: decoding from encoded offset `encoded` with a fresh decoder yields the
/// decoded stream from offset `decoded` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPoint {
    /// Offset in the decoded content.
    pub decoded: u64,
    /// Absolute offset in the stored (encoded) item.
    pub encoded: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qp {
    Normal,
    Eq,
    EqCr,
    Eq1(u8),
}

/// A streaming decoder; feed it encoded bytes in pieces of any size.
#[derive(Debug, Clone)]
pub struct Decoder {
    enc: Encoding,
    acc: u32,
    sextets: u8,
    qp: Qp,
    decoded: u64,
    next_mark: u64,
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

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl Decoder {
    /// A fresh decoder for `enc`.
    pub fn new(enc: Encoding) -> Decoder {
        Decoder {
            enc,
            acc: 0,
            sextets: 0,
            qp: Qp::Normal,
            decoded: 0,
            next_mark: INDEX_STEP,
        }
    }

    /// Decoded bytes produced so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// No partial escape or quantum pending: a fresh decoder could take over here.
    pub fn is_clean(&self) -> bool {
        self.sextets == 0 && self.qp == Qp::Normal
    }

    /// Decode `input` (which starts at absolute encoded offset `pos`) into `out`; when `index`
    /// is given, record restart points into it.
    pub fn feed(
        &mut self,
        input: &[u8],
        pos: u64,
        out: &mut Vec<u8>,
        mut index: Option<&mut Vec<IndexPoint>>,
    ) {
        for (i, &c) in input.iter().enumerate() {
            if let Some(index) = index.as_deref_mut() {
                if self.decoded >= self.next_mark && self.is_clean() {
                    index.push(IndexPoint {
                        decoded: self.decoded,
                        encoded: pos + i as u64,
                    });
                    self.next_mark = self.decoded + INDEX_STEP;
                }
            }
            let before = out.len();
            self.step(c, out);
            self.decoded += (out.len() - before) as u64;
        }
    }

    /// End of input: flush a partial base64 quantum or a dangling escape.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let before = out.len();
        match self.enc {
            Encoding::Base64 => self.flush_b64(out),
            Encoding::QuotedPrintable => match self.qp {
                Qp::Eq => out.push(b'='),
                Qp::Eq1(h) => out.extend_from_slice(&[b'=', h]),
                Qp::EqCr | Qp::Normal => {}
            },
            Encoding::Identity => {}
        }
        self.qp = Qp::Normal;
        self.decoded += (out.len() - before) as u64;
    }

    fn flush_b64(&mut self, out: &mut Vec<u8>) {
        match self.sextets {
            2 => out.push((self.acc >> 4) as u8),
            3 => out.extend_from_slice(&[(self.acc >> 10) as u8, (self.acc >> 2) as u8]),
            _ => {}
        }
        self.acc = 0;
        self.sextets = 0;
    }

    fn step(&mut self, c: u8, out: &mut Vec<u8>) {
        match self.enc {
            Encoding::Identity => out.push(c),
            Encoding::Base64 => {
                if c == b'=' {
                    self.flush_b64(out);
                } else if let Some(v) = b64_value(c) {
                    self.acc = (self.acc << 6) | u32::from(v);
                    self.sextets += 1;
                    if self.sextets == 4 {
                        out.extend_from_slice(&[
                            (self.acc >> 16) as u8,
                            (self.acc >> 8) as u8,
                            self.acc as u8,
                        ]);
                        self.acc = 0;
                        self.sextets = 0;
                    }
                }
            }
            Encoding::QuotedPrintable => self.step_qp(c, out),
        }
    }

    fn step_qp(&mut self, c: u8, out: &mut Vec<u8>) {
        match self.qp {
            Qp::Normal => {
                if c == b'=' {
                    self.qp = Qp::Eq;
                } else {
                    out.push(c);
                }
            }
            Qp::Eq => match c {
                b'\r' => self.qp = Qp::EqCr,
                b'\n' => self.qp = Qp::Normal,
                _ if hex_value(c).is_some() => self.qp = Qp::Eq1(c),
                _ => {
                    out.push(b'=');
                    self.qp = Qp::Normal;
                    self.step_qp(c, out);
                }
            },
            Qp::EqCr => {
                self.qp = Qp::Normal;
                if c != b'\n' {
                    self.step_qp(c, out);
                }
            }
            Qp::Eq1(h) => {
                self.qp = Qp::Normal;
                match (hex_value(h), hex_value(c)) {
                    (Some(a), Some(b)) => out.push(a << 4 | b),
                    _ => {
                        out.extend_from_slice(&[b'=', h]);
                        self.step_qp(c, out);
                    }
                }
            }
        }
    }
}

/// Decoded size and restart index of `body`, the encoded bytes found at absolute offset `pos`.
/// Decodes in slices, so the working buffer stays small whatever the body size.
pub fn measure(enc: Encoding, body: &[u8], pos: u64) -> (u64, Vec<IndexPoint>) {
    let mut d = Decoder::new(enc);
    let mut index = Vec::new();
    let mut scratch = Vec::new();
    let mut at = pos;
    for piece in body.chunks(64 * 1024) {
        scratch.clear();
        d.feed(piece, at, &mut scratch, Some(&mut index));
        at += piece.len() as u64;
    }
    scratch.clear();
    d.finish(&mut scratch);
    (d.decoded(), index)
}

/// Where to start decoding for decoded offset `offset`: the last index point at or before it
/// (or the body start).
pub fn restart_point(index: &[IndexPoint], body_start: u64, offset: u64) -> IndexPoint {
    let i = index.partition_point(|p| p.decoded <= offset);
    match i {
        0 => IndexPoint {
            decoded: 0,
            encoded: body_start,
        },
        _ => index[i - 1],
    }
}

/// Collects decoded bytes `[offset, offset + max)` while encoded input is fed from a restart
/// point; see [`restart_point`].
#[derive(Debug)]
pub struct RangeDecoder {
    decoder: Decoder,
    base: u64,
    offset: u64,
    max: usize,
    out: Vec<u8>,
    scratch: Vec<u8>,
}

impl RangeDecoder {
    /// Decode from `start` (a restart point) for the decoded range `[offset, offset + max)`.
    pub fn new(enc: Encoding, start: IndexPoint, offset: u64, max: u32) -> RangeDecoder {
        RangeDecoder {
            decoder: Decoder::new(enc),
            base: start.decoded,
            offset,
            max: max as usize,
            out: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Feed encoded bytes (absolute offset `pos`); true once the range is complete.
    pub fn feed(&mut self, input: &[u8], pos: u64) -> bool {
        self.scratch.clear();
        let before = self.base + self.decoder.decoded();
        self.decoder.feed(input, pos, &mut self.scratch, None);
        self.take(before);
        self.done()
    }

    /// The end of the part was reached.
    pub fn finish(&mut self) {
        self.scratch.clear();
        let before = self.base + self.decoder.decoded();
        self.decoder.finish(&mut self.scratch);
        self.take(before);
    }

    fn take(&mut self, produced_from: u64) {
        // `scratch` holds decoded bytes [produced_from, produced_from + len).
        let skip = self.offset.saturating_sub(produced_from);
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        if skip < self.scratch.len() {
            let room = self.max - self.out.len();
            let end = self.scratch.len().min(skip.saturating_add(room));
            self.out.extend_from_slice(&self.scratch[skip..end]);
        }
    }

    /// The range is complete.
    pub fn done(&self) -> bool {
        self.out.len() >= self.max
    }

    /// The decoded bytes collected.
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(enc: Encoding, data: &[u8]) -> Vec<u8> {
        let mut d = Decoder::new(enc);
        let mut out = Vec::new();
        d.feed(data, 0, &mut out, None);
        d.finish(&mut out);
        out
    }

    fn b64(data: &[u8]) -> Vec<u8> {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        for (n, c) in data.chunks(3).enumerate() {
            let v = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            out.push(A[(v >> 18) as usize & 63]);
            out.push(A[(v >> 12) as usize & 63]);
            out.push(if c.len() > 1 {
                A[(v >> 6) as usize & 63]
            } else {
                b'='
            });
            out.push(if c.len() > 2 {
                A[v as usize & 63]
            } else {
                b'='
            });
            if n % 19 == 18 {
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    #[test]
    fn base64_with_line_breaks_and_padding() {
        assert_eq!(decode_all(Encoding::Base64, b"aGVs\r\nbG8=\r\n"), b"hello");
        assert_eq!(decode_all(Encoding::Base64, b"aGk="), b"hi");
        assert_eq!(decode_all(Encoding::Base64, b"aA=="), b"h");
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(decode_all(Encoding::Base64, &b64(&data)), data);
    }

    #[test]
    fn quoted_printable_soft_breaks_and_bad_escapes() {
        assert_eq!(
            decode_all(
                Encoding::QuotedPrintable,
                b"caf=C3=A9 =\r\nlong=\nline=ZZ end="
            ),
            "café longline=ZZ end=".as_bytes()
        );
    }

    #[test]
    fn decoding_is_the_same_whatever_the_split() {
        let enc = b"caf=C3=A9=\r\n x=4=\r\n1";
        let whole = decode_all(Encoding::QuotedPrintable, enc);
        for cut in 0..enc.len() {
            let mut d = Decoder::new(Encoding::QuotedPrintable);
            let mut out = Vec::new();
            d.feed(&enc[..cut], 0, &mut out, None);
            d.feed(&enc[cut..], cut as u64, &mut out, None);
            d.finish(&mut out);
            assert_eq!(out, whole, "cut at {cut}");
        }
    }

    #[test]
    fn ranged_decoding_through_the_index_matches_full_decoding() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 253) as u8).collect();
        for (enc, encoded) in [
            (Encoding::Base64, b64(&data)),
            (Encoding::Identity, data.clone()),
        ] {
            let pos = 1000u64; // the body starts at this absolute offset
            let (size, index) = measure(enc, &encoded, pos);
            assert_eq!(size, data.len() as u64);
            assert!(index.len() >= 4, "{enc:?}: {} points", index.len());
            for (offset, max) in [
                (0u64, 10u32),
                (65_535, 3),
                (200_001, 70_000),
                (299_990, 100),
            ] {
                let start = restart_point(&index, pos, offset);
                assert!(offset - start.decoded < INDEX_STEP + 3);
                let mut r = RangeDecoder::new(enc, start, offset, max);
                let from = (start.encoded - pos) as usize;
                let mut at = start.encoded;
                for piece in encoded[from..].chunks(4096) {
                    if r.feed(piece, at) {
                        break;
                    }
                    at += piece.len() as u64;
                }
                r.finish();
                let end = (offset as usize + max as usize).min(data.len());
                assert_eq!(
                    r.into_bytes(),
                    &data[offset as usize..end],
                    "{enc:?} {offset}"
                );
            }
        }
    }
}
