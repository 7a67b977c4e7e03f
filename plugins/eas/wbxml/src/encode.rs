//! The streaming encoder.

use std::io::Write;

use crate::{Element, EncodeError, Node, Tag};

/// The four header bytes of every ActiveSync document: WBXML 1.3, public id 1 (unknown),
/// charset 106 (UTF-8), empty string table.
pub const HEADER: [u8; 4] = [0x03, 0x01, 0x6A, 0x00];

pub(crate) const SWITCH_PAGE: u8 = 0x00;
pub(crate) const END: u8 = 0x01;
pub(crate) const ENTITY: u8 = 0x02;
pub(crate) const STR_I: u8 = 0x03;
pub(crate) const STR_T: u8 = 0x83;
pub(crate) const OPAQUE: u8 = 0xC3;
pub(crate) const CONTENT: u8 = 0x40;
pub(crate) const ATTRIBUTES: u8 = 0x80;

/// Writes a WBXML document incrementally to any [`Write`] (a `Vec<u8>`, a body buffer, …).
///
/// Call [`start`](Encoder::start), [`text`](Encoder::text), [`opaque`](Encoder::opaque) and
/// [`end`](Encoder::end) in document order, then [`finish`](Encoder::finish). The encoder
/// emits SWITCH_PAGE only when a start tag's page differs from the current page, and writes an
/// element with no content as a single token without the content bit (no END): a start tag is
/// held back until the next call shows whether content follows. Nothing else is buffered,
/// so large responses stream with constant memory.
///
/// ```
/// use switchboard_wbxml::{Encoder, tags::folderhierarchy as fh};
/// let mut enc = Encoder::new(Vec::new())?;
/// enc.start(fh::FolderSync)?;
/// enc.text_element(fh::SyncKey, "0")?;
/// enc.end()?;
/// let bytes = enc.finish()?;
/// assert_eq!(bytes, [0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, b'0', 0x00, 0x01, 0x01]);
/// # Ok::<(), switchboard_wbxml::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct Encoder<W: Write> {
    out: W,
    page: u8,
    /// A start tag not yet written: we do not know yet whether it has content.
    pending: Option<Tag>,
    open: Vec<Tag>,
    root_done: bool,
}

impl<W: Write> Encoder<W> {
    /// Writes the document header and returns an encoder positioned before the root element.
    pub fn new(mut out: W) -> Result<Self, EncodeError> {
        out.write_all(&HEADER)?;
        Ok(Encoder {
            out,
            page: 0,
            pending: None,
            open: Vec::new(),
            root_done: false,
        })
    }

    /// How many elements are open (started and not ended).
    pub fn depth(&self) -> usize {
        self.open.len() + usize::from(self.pending.is_some())
    }

    /// Writes the held-back start tag, with the content bit.
    fn flush_pending(&mut self) -> Result<(), EncodeError> {
        if let Some(tag) = self.pending.take() {
            self.write_tag(tag, true)?;
            self.open.push(tag);
        }
        Ok(())
    }

    fn write_tag(&mut self, tag: Tag, content: bool) -> Result<(), EncodeError> {
        if tag.page() != self.page {
            self.out.write_all(&[SWITCH_PAGE, tag.page()])?;
            self.page = tag.page();
        }
        let flag = if content { CONTENT } else { 0 };
        self.out.write_all(&[tag.token() | flag])?;
        Ok(())
    }

    /// Opens an element.
    pub fn start(&mut self, tag: Tag) -> Result<(), EncodeError> {
        if self.root_done {
            return Err(EncodeError::SecondRoot(tag));
        }
        self.flush_pending()?;
        self.pending = Some(tag);
        Ok(())
    }

    /// Closes the innermost open element.
    pub fn end(&mut self) -> Result<(), EncodeError> {
        if let Some(tag) = self.pending.take() {
            // No content arrived: a single token without the content bit.
            self.write_tag(tag, false)?;
        } else if self.open.pop().is_some() {
            self.out.write_all(&[END])?;
        } else {
            return Err(EncodeError::UnbalancedEnd);
        }
        if self.open.is_empty() {
            self.root_done = true;
        }
        Ok(())
    }

    /// Writes character data (an inline string) into the open element.
    pub fn text(&mut self, text: &str) -> Result<(), EncodeError> {
        if text.as_bytes().contains(&0) {
            return Err(EncodeError::NulInText);
        }
        if self.depth() == 0 {
            return Err(EncodeError::ContentOutsideRoot);
        }
        self.flush_pending()?;
        self.out.write_all(&[STR_I])?;
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(&[0])?;
        Ok(())
    }

    /// Writes binary data (OPAQUE) into the open element.
    pub fn opaque(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        let len = u32::try_from(data.len()).map_err(|_| EncodeError::OpaqueTooLong(data.len()))?;
        if self.depth() == 0 {
            return Err(EncodeError::ContentOutsideRoot);
        }
        self.flush_pending()?;
        self.out.write_all(&[OPAQUE])?;
        write_mb_u32(&mut self.out, len)?;
        self.out.write_all(data)?;
        Ok(())
    }

    /// Writes `<tag>text</tag>`.
    pub fn text_element(&mut self, tag: Tag, text: &str) -> Result<(), EncodeError> {
        self.start(tag)?;
        self.text(text)?;
        self.end()
    }

    /// Writes `<tag/>`.
    pub fn empty_element(&mut self, tag: Tag) -> Result<(), EncodeError> {
        self.start(tag)?;
        self.end()
    }

    /// Writes a whole subtree at the current position.
    pub fn element(&mut self, element: &Element) -> Result<(), EncodeError> {
        // Iterative, so a deep user-built tree cannot overflow the stack.
        let mut stack: Vec<std::slice::Iter<'_, Node>> = Vec::new();
        self.start(element.tag)?;
        stack.push(element.children.iter());
        while let Some(iter) = stack.last_mut() {
            match iter.next() {
                Some(Node::Element(e)) => {
                    self.start(e.tag)?;
                    stack.push(e.children.iter());
                }
                Some(Node::Text(s)) => self.text(s)?,
                Some(Node::Opaque(b)) => self.opaque(b)?,
                None => {
                    stack.pop();
                    self.end()?;
                }
            }
        }
        Ok(())
    }

    /// Checks the document is complete and returns the sink.
    pub fn finish(mut self) -> Result<W, EncodeError> {
        if let Some(&innermost) = self.pending.as_ref().or(self.open.last()) {
            return Err(EncodeError::Unclosed {
                open: self.depth(),
                innermost,
            });
        }
        if !self.root_done {
            return Err(EncodeError::NoRoot);
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes a WBXML multi-byte unsigned integer (7 bits per byte, most significant first).
pub(crate) fn write_mb_u32(out: &mut impl Write, value: u32) -> std::io::Result<()> {
    let mut buf = [0u8; 5];
    let mut i = buf.len();
    let mut v = value;
    loop {
        i -= 1;
        buf[i] = (v & 0x7F) as u8 | if i == buf.len() - 1 { 0 } else { 0x80 };
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    out.write_all(&buf[i..])
}

/// Encodes a tree as a complete WBXML document.
pub fn encode(root: &Element) -> Result<Vec<u8>, EncodeError> {
    let mut enc = Encoder::new(Vec::new())?;
    enc.element(root)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mb_u32_encoding() {
        let enc = |v| {
            let mut out = Vec::new();
            write_mb_u32(&mut out, v).unwrap();
            out
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(0x7F), [0x7F]);
        assert_eq!(enc(0x80), [0x81, 0x00]);
        // WAP-192 section 5.1 example: 0xA0 is encoded as 0x81 0x20.
        assert_eq!(enc(0xA0), [0x81, 0x20]);
        assert_eq!(enc(u32::MAX), [0x8F, 0xFF, 0xFF, 0xFF, 0x7F]);
    }
}
