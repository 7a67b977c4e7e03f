//! A streaming MIME structure scanner for messages too big to parse whole. Sans-IO: feed it
//! the message in pieces of any size ([`Scanner::feed`]), then [`Scanner::finish`].
//!
//! It finds the top-level header, every leaf part's header and body offsets (following
//! nested `multipart/*` boundaries; a `message/rfc822` part is one leaf), and runs each leaf
//! body through a [`Decoder`] on the fly to learn its decoded size and a sparse restart index.
//! Memory is bounded whatever the input: lines are kept only up to [`LINE_CAP`] bytes (a
//! longer line cannot be a boundary, so it streams straight to the decoder), headers up to
//! [`HEADER_CAP`], at most [`MAX_PARTS`] parts and [`MAX_DEPTH`] nested multiparts.

use mail_parser::{MessageParser, MimeHeaders};

use crate::decode::{Decoder, Encoding, IndexPoint};

/// Longest line kept for boundary detection.
pub const LINE_CAP: usize = 1024;
/// Most header bytes kept per part.
pub const HEADER_CAP: usize = 128 * 1024;
/// Most leaf parts recorded.
pub const MAX_PARTS: usize = 1000;
/// Deepest multipart nesting followed.
pub const MAX_DEPTH: usize = 32;

/// A leaf part found by the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedPart {
    /// The part's header (up to [`HEADER_CAP`] bytes), blank line included.
    pub header: Vec<u8>,
    /// Absolute offset of the first body byte.
    pub body_start: u64,
    /// Absolute offset just past the body (the line break before a boundary excluded).
    pub body_end: u64,
    /// Its content-transfer-encoding.
    pub encoding: Encoding,
    /// Decoded body size.
    pub decoded_size: u64,
    /// Restart points for ranged decoding.
    pub index: Vec<IndexPoint>,
}

/// What the scanner found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The message header (up to [`HEADER_CAP`] bytes).
    pub top_header: Vec<u8>,
    /// The leaf parts in order; a single-part message has one, with the top header.
    pub parts: Vec<ScannedPart>,
}

/// Content type facts the scanner needs from a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartType {
    /// `multipart/*` with this boundary.
    pub boundary: Option<Vec<u8>>,
    /// Content-Transfer-Encoding.
    pub encoding: Encoding,
}

/// Read the content type, boundary and transfer encoding of a header block.
pub fn part_type(header: &[u8]) -> PartType {
    let parsed = MessageParser::new().parse_headers(header);
    let mut boundary = None;
    let mut encoding = Encoding::Identity;
    if let Some(m) = parsed {
        if let Some(ct) = m.content_type() {
            if ct.ctype().eq_ignore_ascii_case("multipart") {
                boundary = ct
                    .attribute("boundary")
                    .filter(|b| !b.is_empty())
                    .map(|b| b.as_bytes().to_vec());
            }
        }
        if let Some(cte) = m.header_raw("Content-Transfer-Encoding") {
            encoding = Encoding::from_header(cte);
        }
    }
    PartType { boundary, encoding }
}

#[derive(Debug)]
struct Leaf {
    header: Vec<u8>,
    body_start: u64,
    encoding: Encoding,
    decoder: Decoder,
    index: Vec<IndexPoint>,
    recorded: bool,
}

#[derive(Debug)]
enum Mode {
    /// Reading a header; `top` for the message's own.
    Header { buf: Vec<u8>, top: bool },
    /// Inside a leaf body.
    Body(Box<Leaf>),
    /// Preamble or epilogue of a multipart: ignored until a boundary.
    Skip,
}

/// The streaming scanner; see the module docs.
#[derive(Debug)]
pub struct Scanner {
    pos: u64,
    line: Vec<u8>,
    line_start: u64,
    overflow: bool,
    mode: Mode,
    boundaries: Vec<Vec<u8>>,
    held: Vec<u8>,
    scratch: Vec<u8>,
    scan: Scan,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

fn strip_eol(line: &[u8]) -> (&[u8], &[u8]) {
    let content_len = if line.ends_with(b"\r\n") {
        line.len() - 2
    } else if line.ends_with(b"\n") {
        line.len() - 1
    } else {
        line.len()
    };
    line.split_at(content_len)
}

impl Scanner {
    /// A scanner at the start of a message.
    pub fn new() -> Scanner {
        Scanner {
            pos: 0,
            line: Vec::new(),
            line_start: 0,
            overflow: false,
            mode: Mode::Header {
                buf: Vec::new(),
                top: true,
            },
            boundaries: Vec::new(),
            held: Vec::new(),
            scratch: Vec::new(),
            scan: Scan::default(),
        }
    }

    /// The next piece of the message.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let (seg, complete) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..=i], true),
                None => (data, false),
            };
            self.segment(seg, complete);
            data = &data[seg.len()..];
        }
    }

    /// End of the message: what was found.
    pub fn finish(mut self) -> Scan {
        if !self.line.is_empty() && !self.overflow {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line);
        }
        match std::mem::replace(&mut self.mode, Mode::Skip) {
            Mode::Header { buf, top } => {
                if top {
                    self.scan.top_header = buf;
                }
            }
            Mode::Body(leaf) => {
                let held = std::mem::take(&mut self.held);
                let mut leaf = leaf;
                self.feed_leaf(&mut leaf, &held, self.pos - held.len() as u64);
                self.close_leaf(*leaf, self.pos);
            }
            Mode::Skip => {}
        }
        self.scan
    }

    fn segment(&mut self, seg: &[u8], complete: bool) {
        let start = self.pos;
        if self.line.is_empty() && !self.overflow {
            self.line_start = start;
        }
        self.pos += seg.len() as u64;
        if let Mode::Header { buf, .. } = &mut self.mode {
            let room = HEADER_CAP.saturating_sub(buf.len());
            buf.extend_from_slice(&seg[..seg.len().min(room)]);
        }
        if !self.overflow {
            if self.line.len() + seg.len() <= LINE_CAP {
                self.line.extend_from_slice(seg);
                if complete {
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line);
                }
            } else {
                // Too long to be a boundary or a blank line: body bytes, stream them.
                self.overflow = true;
                let line = std::mem::take(&mut self.line);
                let line_start = self.line_start;
                self.body_bytes(&line, line_start);
                if complete {
                    self.body_line(seg, start);
                } else {
                    self.body_bytes(seg, start);
                }
            }
        } else if complete {
            self.body_line(seg, start);
        } else {
            self.body_bytes(seg, start);
        }
        if complete {
            self.overflow = false;
            self.line.clear();
        }
    }

    /// Part of an over-long line, no line break in it.
    fn body_bytes(&mut self, bytes: &[u8], at: u64) {
        if let Mode::Body(mut leaf) = std::mem::replace(&mut self.mode, Mode::Skip) {
            let held = std::mem::take(&mut self.held);
            self.feed_leaf(&mut leaf, &held, at - held.len() as u64);
            self.feed_leaf(&mut leaf, bytes, at);
            self.mode = Mode::Body(leaf);
        }
    }

    /// A complete body line (not a boundary): its content goes to the decoder, its line
    /// break is held back until the next line shows it is not the one before a boundary.
    fn body_line(&mut self, line: &[u8], at: u64) {
        if let Mode::Body(mut leaf) = std::mem::replace(&mut self.mode, Mode::Skip) {
            let (content, eol) = strip_eol(line);
            let held = std::mem::take(&mut self.held);
            self.feed_leaf(&mut leaf, &held, at - held.len() as u64);
            self.feed_leaf(&mut leaf, content, at);
            self.held = eol.to_vec();
            self.mode = Mode::Body(leaf);
        }
    }

    fn line_done(&mut self, line: &[u8]) {
        let at = self.line_start;
        if let Mode::Header { .. } = self.mode {
            let (content, _) = strip_eol(line);
            if content.is_empty() {
                self.header_done(at + line.len() as u64);
            }
            return;
        }
        match self.boundary(line) {
            Some((level, close)) => {
                if let Mode::Body(leaf) = std::mem::replace(&mut self.mode, Mode::Skip) {
                    let end = at - self.held.len() as u64;
                    self.held.clear();
                    self.close_leaf(*leaf, end);
                }
                self.boundaries.truncate(level + 1);
                if close {
                    self.boundaries.pop();
                    self.mode = Mode::Skip;
                } else {
                    self.mode = Mode::Header {
                        buf: Vec::new(),
                        top: false,
                    };
                }
            }
            None => self.body_line(line, at),
        }
    }

    /// Which open multipart a line delimits, and whether it closes it.
    fn boundary(&self, line: &[u8]) -> Option<(usize, bool)> {
        let (content, _) = strip_eol(line);
        let mut end = content.len();
        while end > 0 && matches!(content[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        let rest = content[..end].strip_prefix(b"--")?;
        self.boundaries
            .iter()
            .enumerate()
            .rev()
            .find_map(|(level, b)| {
                let tail = rest.strip_prefix(b.as_slice())?;
                match tail {
                    b"" => Some((level, false)),
                    b"--" => Some((level, true)),
                    _ => None,
                }
            })
    }

    fn header_done(&mut self, body_start: u64) {
        let Mode::Header { buf, top } = std::mem::replace(&mut self.mode, Mode::Skip) else {
            return;
        };
        let kind = part_type(&buf);
        if top {
            self.scan.top_header = buf.clone();
        }
        match kind.boundary {
            Some(b) if self.boundaries.len() < MAX_DEPTH => {
                self.boundaries.push(b);
                self.mode = Mode::Skip;
            }
            _ => {
                let recorded = self.scan.parts.len() < MAX_PARTS;
                self.mode = Mode::Body(Box::new(Leaf {
                    header: if recorded { buf } else { Vec::new() },
                    body_start,
                    encoding: kind.encoding,
                    decoder: Decoder::new(kind.encoding),
                    index: Vec::new(),
                    recorded,
                }));
            }
        }
    }

    fn feed_leaf(&mut self, leaf: &mut Leaf, bytes: &[u8], at: u64) {
        if !leaf.recorded || bytes.is_empty() {
            return;
        }
        self.scratch.clear();
        leaf.decoder
            .feed(bytes, at, &mut self.scratch, Some(&mut leaf.index));
    }

    fn close_leaf(&mut self, mut leaf: Leaf, body_end: u64) {
        if !leaf.recorded {
            return;
        }
        self.scratch.clear();
        leaf.decoder.finish(&mut self.scratch);
        self.scan.parts.push(ScannedPart {
            header: leaf.header,
            body_start: leaf.body_start,
            body_end: body_end.max(leaf.body_start),
            encoding: leaf.encoding,
            decoded_size: leaf.decoder.decoded(),
            index: leaf.index,
        });
    }
}

/// Scan a whole message held in memory (tests and small inputs).
pub fn scan(message: &[u8]) -> Scan {
    let mut s = Scanner::new();
    s.feed(message);
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: &[u8] = b"From: a@example.com\r\n\
Subject: hi\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain\r\n\
\r\n\
plain body\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>html</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/octet-stream; name=\"a.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGVs\r\n\
bG8=\r\n\
--outer--\r\n\
epilogue\r\n";

    fn body<'a>(msg: &'a [u8], p: &ScannedPart) -> &'a [u8] {
        &msg[p.body_start as usize..p.body_end as usize]
    }

    #[test]
    fn finds_nested_parts_with_exact_body_offsets() {
        let s = scan(NESTED);
        assert!(s.top_header.starts_with(b"From: a@example.com"));
        assert_eq!(s.parts.len(), 3);
        assert_eq!(body(NESTED, &s.parts[0]), b"plain body");
        assert_eq!(body(NESTED, &s.parts[1]), b"<p>html</p>");
        assert_eq!(body(NESTED, &s.parts[2]), b"aGVs\r\nbG8=");
        assert_eq!(s.parts[2].encoding, Encoding::Base64);
        assert_eq!(s.parts[2].decoded_size, 5);
        assert_eq!(s.parts[0].decoded_size, 10);
        assert!(s.parts[2]
            .header
            .starts_with(b"Content-Type: application/octet-stream"));
    }

    #[test]
    fn the_result_does_not_depend_on_how_the_input_is_split() {
        let whole = scan(NESTED);
        for step in 1..40 {
            let mut s = Scanner::new();
            for piece in NESTED.chunks(step) {
                s.feed(piece);
            }
            assert_eq!(s.finish(), whole, "pieces of {step}");
        }
    }

    #[test]
    fn single_part_and_garbage_never_fail() {
        let s = scan(b"Subject: x\n\nbody\n");
        assert_eq!(s.parts.len(), 1);
        assert_eq!(body(b"Subject: x\n\nbody\n", &s.parts[0]), b"body\n");
        let s = scan(b"\x00\xff garbage without header end");
        assert!(s.parts.is_empty());
        let s = scan(b"");
        assert!(s.parts.is_empty() && s.top_header.is_empty());
        // An unterminated multipart: the last part runs to the end.
        let msg = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nabc";
        let s = scan(msg);
        assert_eq!(s.parts.len(), 1);
        assert_eq!(body(msg, &s.parts[0]), b"abc");
    }

    #[test]
    fn long_lines_stream_without_being_kept() {
        let mut msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n".to_vec();
        let start = msg.len();
        msg.extend(std::iter::repeat_n(b'x', 100_000));
        msg.extend_from_slice(b"\r\nshort\r\n--b--\r\n");
        let mut s = Scanner::new();
        for piece in msg.chunks(7000) {
            s.feed(piece);
            assert!(s.line.len() <= LINE_CAP);
        }
        let scan = s.finish();
        assert_eq!(scan.parts.len(), 1);
        assert_eq!(scan.parts[0].body_start as usize, start);
        assert_eq!(scan.parts[0].decoded_size, 100_000 + 2 + 5);
    }
}
