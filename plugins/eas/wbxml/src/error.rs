//! Encoder and decoder errors.

use thiserror::Error;

use crate::Tag;

/// Why a WBXML document was rejected. Every variant carries the byte offset (from the start
/// of the input) of the token or field at fault.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended where more was required.
    #[error("truncated input at byte {offset}: expected {expected}")]
    Truncated {
        /// Where the missing data should have started.
        offset: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// The input ended inside an element (its END is missing).
    #[error(
        "truncated input at byte {offset}: expected END of <{tag}> (open since byte {opened_at})"
    )]
    Unclosed {
        /// The end of the input.
        offset: usize,
        /// The innermost open element.
        tag: Tag,
        /// Where that element started.
        opened_at: usize,
    },
    /// The version byte is not 0x03 (WBXML 1.3).
    #[error("unsupported WBXML version 0x{found:02X} at byte {offset}: expected 0x03 (WBXML 1.3)")]
    UnsupportedVersion {
        /// Always 0.
        offset: usize,
        /// The version byte found.
        found: u8,
    },
    /// The public identifier is not 1 ("unknown", what ActiveSync uses).
    #[error("unsupported public identifier {found} at byte {offset}: expected 1 (unknown)")]
    UnsupportedPublicId {
        /// Where the identifier starts.
        offset: usize,
        /// The identifier found.
        found: u32,
    },
    /// The charset is not 106 (UTF-8).
    #[error("unsupported charset {found} at byte {offset}: expected 106 (UTF-8)")]
    UnsupportedCharset {
        /// Where the charset starts.
        offset: usize,
        /// The MIBenum found.
        found: u32,
    },
    /// A multi-byte integer does not fit in 32 bits.
    #[error("mb_u_int32 at byte {offset} does not fit in 32 bits")]
    IntegerOverflow {
        /// Where the integer starts.
        offset: usize,
    },
    /// A length field (string table, opaque data) claims more bytes than remain.
    #[error("{what} length {length} at byte {offset} exceeds the {remaining} bytes that follow")]
    LengthOutOfBounds {
        /// Where the length field starts.
        offset: usize,
        /// Which length.
        what: &'static str,
        /// The claimed length.
        length: u32,
        /// How many bytes actually follow the length field.
        remaining: usize,
    },
    /// SWITCH_PAGE to a code page [MS-ASWBXML] does not define.
    #[error("unknown code page {page} at byte {offset}")]
    UnknownPage {
        /// Where the page number is.
        offset: usize,
        /// The page number.
        page: u8,
    },
    /// A tag token the current code page does not define.
    #[error("unknown tag token 0x{token:02X} on code page {page} ({page_name}) at byte {offset}")]
    UnknownTag {
        /// Where the tag is.
        offset: usize,
        /// The current code page.
        page: u8,
        /// The code page's name.
        page_name: &'static str,
        /// The token without flags.
        token: u8,
    },
    /// A tag with the attribute bit set: ActiveSync uses no attributes.
    #[error("tag <{tag}> at byte {offset} has attributes, which ActiveSync does not use")]
    AttributesNotSupported {
        /// Where the tag is.
        offset: usize,
        /// The tag.
        tag: Tag,
    },
    /// A global token ActiveSync does not use (LITERAL*, EXT*, PI).
    #[error("unsupported token 0x{token:02X} ({name}) at byte {offset}")]
    UnsupportedToken {
        /// Where the token is.
        offset: usize,
        /// The token byte.
        token: u8,
        /// Its WBXML name.
        name: &'static str,
    },
    /// An inline or table string is not UTF-8.
    #[error("invalid UTF-8 in string at byte {offset}")]
    InvalidUtf8 {
        /// The offset of the first invalid byte.
        offset: usize,
    },
    /// An ENTITY that is not a Unicode scalar value (or is NUL).
    #[error("invalid character entity {value} at byte {offset}")]
    InvalidEntity {
        /// Where the ENTITY token is.
        offset: usize,
        /// The code point.
        value: u32,
    },
    /// A STR_T offset outside the string table or without a terminator inside it.
    #[error("string table reference {index} at byte {offset} is outside the {table_len}-byte string table")]
    BadStringReference {
        /// Where the STR_T token is.
        offset: usize,
        /// The offset into the string table.
        index: u32,
        /// The string table's length.
        table_len: usize,
    },
    /// END with no open element.
    #[error("END at byte {offset} does not close any element")]
    UnbalancedEnd {
        /// Where the END is.
        offset: usize,
    },
    /// Text or opaque data before the root element.
    #[error("content at byte {offset} before the root element")]
    ContentOutsideRoot {
        /// Where the content is.
        offset: usize,
    },
    /// Elements nested deeper than [`Limits::max_depth`](crate::Limits::max_depth).
    #[error("element at byte {offset} nests deeper than the limit of {limit}")]
    TooDeep {
        /// Where the element is.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// More elements than [`Limits::max_elements`](crate::Limits::max_elements).
    #[error("element at byte {offset} exceeds the limit of {limit} elements")]
    TooManyElements {
        /// Where the element is.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// Bytes after the root element's end.
    #[error("{count} bytes of trailing data at byte {offset} after the root element")]
    TrailingData {
        /// Where the trailing data starts.
        offset: usize,
        /// How many bytes follow.
        count: usize,
    },
}

impl DecodeError {
    /// The byte offset the error refers to.
    pub fn offset(&self) -> usize {
        match *self {
            DecodeError::Truncated { offset, .. }
            | DecodeError::Unclosed { offset, .. }
            | DecodeError::UnsupportedVersion { offset, .. }
            | DecodeError::UnsupportedPublicId { offset, .. }
            | DecodeError::UnsupportedCharset { offset, .. }
            | DecodeError::IntegerOverflow { offset }
            | DecodeError::LengthOutOfBounds { offset, .. }
            | DecodeError::UnknownPage { offset, .. }
            | DecodeError::UnknownTag { offset, .. }
            | DecodeError::AttributesNotSupported { offset, .. }
            | DecodeError::UnsupportedToken { offset, .. }
            | DecodeError::InvalidUtf8 { offset }
            | DecodeError::InvalidEntity { offset, .. }
            | DecodeError::BadStringReference { offset, .. }
            | DecodeError::UnbalancedEnd { offset }
            | DecodeError::ContentOutsideRoot { offset }
            | DecodeError::TooDeep { offset, .. }
            | DecodeError::TooManyElements { offset, .. }
            | DecodeError::TrailingData { offset, .. } => offset,
        }
    }
}

/// Why the encoder refused a call. The encoder never produces an invalid document: after an
/// error the output written so far is incomplete and should be discarded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Writing to the sink failed.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    /// `end` with no open element.
    #[error("end() with no open element")]
    UnbalancedEnd,
    /// `finish` with elements still open.
    #[error("finish() with {open} element(s) still open, innermost <{innermost}>")]
    Unclosed {
        /// How many elements are open.
        open: usize,
        /// The innermost one.
        innermost: Tag,
    },
    /// `finish` before any element was written.
    #[error("finish() without a root element")]
    NoRoot,
    /// A second top-level element.
    #[error("<{0}> would be a second root element")]
    SecondRoot(Tag),
    /// Text or opaque data outside any element.
    #[error("content outside the root element")]
    ContentOutsideRoot,
    /// Text containing NUL cannot be an inline string; send it as opaque data instead.
    #[error("text contains a NUL character, which an inline string cannot carry")]
    NulInText,
    /// Opaque data longer than a 32-bit length can describe.
    #[error("opaque data of {0} bytes is longer than WBXML can describe")]
    OpaqueTooLong(usize),
}
