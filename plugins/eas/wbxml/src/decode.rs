//! The bounded decoder.
//!
//! Decoding is over a complete body in memory: EAS request bodies arrive whole (or are
//! gathered by the core), and the plugin buffers them up to its configured request-size limit
//! before calling [`decode`]. No resumable/incremental decoder is provided. Work and memory are
//! bounded by the input length and [`Limits`]: no length field is trusted before it is checked
//! against the bytes that remain, nesting is tracked on an explicit stack (no recursion), and
//! the element count is capped.

use crate::encode::{ATTRIBUTES, CONTENT, END, ENTITY, OPAQUE, STR_I, STR_T, SWITCH_PAGE};
use crate::{page, DecodeError, Element, Node, Tag};

/// The hard ceiling on [`Limits::max_depth`].
pub const MAX_DEPTH_CAP: usize = 256;

/// Bounds on what [`decode_with`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest allowed nesting; the root is depth 1. Default 64 (real EAS documents stay
    /// under 12). Values above [`MAX_DEPTH_CAP`] count as the cap: the tree's derived
    /// `Drop`, `Clone`, `PartialEq` and `Display` recurse, so depth must stay stack-safe.
    pub max_depth: usize,
    /// Most elements in one document. Default 100 000.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_elements: 100_000,
        }
    }
}

/// Decodes a complete WBXML document with the default [`Limits`].
pub fn decode(input: &[u8]) -> Result<Element, DecodeError> {
    decode_with(input, &Limits::default())
}

/// Decodes a complete WBXML document.
///
/// Accepts WBXML 1.3, public identifier 1, charset UTF-8 and any well-formed string table
/// (referenced with STR_T). Tokens: SWITCH_PAGE, END, STR_I, STR_T, ENTITY, OPAQUE and tags
/// of the [MS-ASWBXML] code pages. Rejects everything else with a [`DecodeError`] that names
/// the byte offset: attributes, LITERAL/EXT/PI tokens, unknown pages and tags, bad UTF-8,
/// unbalanced END, content outside the root, trailing bytes, and documents over the limits.
///
/// Leniency, for real clients: SWITCH_PAGE is accepted anywhere before the root closes (the
/// WAP-192 grammar only places it before a start tag), a redundant SWITCH_PAGE is fine, and
/// character data split over several STR_I/STR_T/ENTITY tokens becomes one text node.
pub fn decode_with(input: &[u8], limits: &Limits) -> Result<Element, DecodeError> {
    Decoder {
        input,
        pos: 0,
        string_table: &[],
        string_table_start: 0,
    }
    .run(limits)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    string_table: &'a [u8],
    string_table_start: usize,
}

/// An element being built, with where it started (for error messages).
struct Open {
    element: Element,
    at: usize,
}

impl<'a> Decoder<'a> {
    fn byte(&mut self, expected: &'static str) -> Result<u8, DecodeError> {
        let b = *self.input.get(self.pos).ok_or(DecodeError::Truncated {
            offset: self.pos,
            expected,
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn mb_u32(&mut self, expected: &'static str) -> Result<u32, DecodeError> {
        let start = self.pos;
        let mut value: u32 = 0;
        for _ in 0..5 {
            let b = self.byte(expected)?;
            if value > (u32::MAX >> 7) {
                return Err(DecodeError::IntegerOverflow { offset: start });
            }
            value = (value << 7) | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::IntegerOverflow { offset: start })
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// A NUL-terminated UTF-8 string starting at the current position.
    fn termstr(&mut self) -> Result<String, DecodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::Truncated {
                offset: self.input.len(),
                expected: "string terminator",
            })?;
        let s = std::str::from_utf8(&rest[..len]).map_err(|e| DecodeError::InvalidUtf8 {
            offset: start + e.valid_up_to(),
        })?;
        self.pos = start + len + 1;
        Ok(s.to_owned())
    }

    fn header(&mut self) -> Result<(), DecodeError> {
        let version = self.byte("version byte")?;
        if version != 0x03 {
            return Err(DecodeError::UnsupportedVersion {
                offset: 0,
                found: version,
            });
        }
        let at = self.pos;
        let public_id = self.mb_u32("public identifier")?;
        if public_id != 1 {
            return Err(DecodeError::UnsupportedPublicId {
                offset: at,
                found: public_id,
            });
        }
        let at = self.pos;
        let charset = self.mb_u32("charset")?;
        if charset != 0x6A {
            return Err(DecodeError::UnsupportedCharset {
                offset: at,
                found: charset,
            });
        }
        let at = self.pos;
        let len = self.mb_u32("string table length")?;
        let remaining = self.remaining();
        let table_len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= remaining)
            .ok_or(DecodeError::LengthOutOfBounds {
                offset: at,
                what: "string table",
                length: len,
                remaining,
            })?;
        self.string_table_start = self.pos;
        self.string_table = &self.input[self.pos..self.pos + table_len];
        self.pos += table_len;
        Ok(())
    }

    fn string_table_ref(&mut self, token_at: usize) -> Result<String, DecodeError> {
        let index = self.mb_u32("string table offset")?;
        let bad = DecodeError::BadStringReference {
            offset: token_at,
            index,
            table_len: self.string_table.len(),
        };
        let start = usize::try_from(index)
            .ok()
            .filter(|&i| i < self.string_table.len())
            .ok_or(bad.clone())?;
        let rest = &self.string_table[start..];
        let len = rest.iter().position(|&b| b == 0).ok_or(bad)?;
        let s = std::str::from_utf8(&rest[..len]).map_err(|e| DecodeError::InvalidUtf8 {
            offset: self.string_table_start + start + e.valid_up_to(),
        })?;
        Ok(s.to_owned())
    }

    fn run(mut self, limits: &Limits) -> Result<Element, DecodeError> {
        self.header()?;
        let mut page_no: u8 = 0;
        let mut stack: Vec<Open> = Vec::new();
        let mut elements = 0usize;

        loop {
            let at = self.pos;
            let Some(&token) = self.input.get(at) else {
                return Err(match stack.last() {
                    Some(open) => DecodeError::Unclosed {
                        offset: at,
                        tag: open.element.tag,
                        opened_at: open.at,
                    },
                    None => DecodeError::Truncated {
                        offset: at,
                        expected: "root element",
                    },
                });
            };
            self.pos += 1;
            match token {
                SWITCH_PAGE => {
                    let page_at = self.pos;
                    let p = self.byte("code page number")?;
                    if page(p).is_none() {
                        return Err(DecodeError::UnknownPage {
                            offset: page_at,
                            page: p,
                        });
                    }
                    page_no = p;
                }
                END => {
                    let Some(done) = stack.pop() else {
                        return Err(DecodeError::UnbalancedEnd { offset: at });
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.element.children.push(Node::Element(done.element)),
                        None => return self.finish(done.element),
                    }
                }
                STR_I | STR_T | ENTITY => {
                    let text = match token {
                        STR_I => self.termstr()?,
                        STR_T => self.string_table_ref(at)?,
                        _ => {
                            let value = self.mb_u32("entity code point")?;
                            match char::from_u32(value).filter(|&c| c != '\0') {
                                Some(c) => c.to_string(),
                                None => {
                                    return Err(DecodeError::InvalidEntity { offset: at, value })
                                }
                            }
                        }
                    };
                    let Some(open) = stack.last_mut() else {
                        return Err(DecodeError::ContentOutsideRoot { offset: at });
                    };
                    // Adjacent character data is one text node, as in XML.
                    match open.element.children.last_mut() {
                        Some(Node::Text(prev)) => prev.push_str(&text),
                        _ => open.element.children.push(Node::Text(text)),
                    }
                }
                OPAQUE => {
                    let len_at = self.pos;
                    let len = self.mb_u32("opaque length")?;
                    let remaining = self.remaining();
                    let n = usize::try_from(len)
                        .ok()
                        .filter(|&n| n <= remaining)
                        .ok_or(DecodeError::LengthOutOfBounds {
                            offset: len_at,
                            what: "opaque",
                            length: len,
                            remaining,
                        })?;
                    let Some(open) = stack.last_mut() else {
                        return Err(DecodeError::ContentOutsideRoot { offset: at });
                    };
                    let data = self.input[self.pos..self.pos + n].to_vec();
                    self.pos += n;
                    open.element.children.push(Node::Opaque(data));
                }
                0x04 | 0x40..=0x44 | 0x80..=0x82 | 0x84 | 0xC0..=0xC2 | 0xC4 => {
                    return Err(DecodeError::UnsupportedToken {
                        offset: at,
                        token,
                        name: global_token_name(token),
                    });
                }
                _ => {
                    let id = token & 0x3F;
                    let code_page = page(page_no).ok_or(DecodeError::UnknownPage {
                        offset: at,
                        page: page_no,
                    })?;
                    let tag = Tag::from_token(page_no, id).ok_or(DecodeError::UnknownTag {
                        offset: at,
                        page: page_no,
                        page_name: code_page.name(),
                        token: id,
                    })?;
                    if token & ATTRIBUTES != 0 {
                        return Err(DecodeError::AttributesNotSupported { offset: at, tag });
                    }
                    elements += 1;
                    if elements > limits.max_elements {
                        return Err(DecodeError::TooManyElements {
                            offset: at,
                            limit: limits.max_elements,
                        });
                    }
                    let max_depth = limits.max_depth.min(MAX_DEPTH_CAP);
                    if stack.len() >= max_depth {
                        return Err(DecodeError::TooDeep {
                            offset: at,
                            limit: max_depth,
                        });
                    }
                    let element = Element::new(tag);
                    if token & CONTENT != 0 {
                        stack.push(Open { element, at });
                    } else {
                        match stack.last_mut() {
                            Some(parent) => parent.element.children.push(Node::Element(element)),
                            None => return self.finish(element),
                        }
                    }
                }
            }
        }
    }

    /// The root is complete: anything after it is an error.
    fn finish(self, root: Element) -> Result<Element, DecodeError> {
        let count = self.remaining();
        if count > 0 {
            return Err(DecodeError::TrailingData {
                offset: self.pos,
                count,
            });
        }
        Ok(root)
    }
}

fn global_token_name(token: u8) -> &'static str {
    match token {
        0x04 => "LITERAL",
        0x40 => "EXT_I_0",
        0x41 => "EXT_I_1",
        0x42 => "EXT_I_2",
        0x43 => "PI",
        0x44 => "LITERAL_C",
        0x80 => "EXT_T_0",
        0x81 => "EXT_T_1",
        0x82 => "EXT_T_2",
        0x84 => "LITERAL_A",
        0xC0 => "EXT_0",
        0xC1 => "EXT_1",
        0xC2 => "EXT_2",
        0xC4 => "LITERAL_AC",
        _ => "?",
    }
}
