//! The one error type of this crate.

use std::borrow::Cow;
use std::fmt;

/// Where in the input something was found: a byte offset into the parsed buffer, or nowhere
/// (for headers added by the builder). Displays as `" at byte N"` or as nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct At(pub Option<usize>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(offset) => write!(f, " at byte {offset}"),
            None => Ok(()),
        }
    }
}

/// What was malformed, and where.
///
/// The `Display` text is short, precise and free of CR/LF, so a server can use it as the
/// reason phrase of its `400` answer (see [`Error::status_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was empty (or only CRLFs).
    #[error("Empty message")]
    Empty,
    /// The request line or status line does not follow the grammar.
    #[error("Bad start line: {reason}")]
    BadStartLine {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The message is not SIP/2.0 (answer `505`).
    #[error("Unsupported SIP version \"{version}\"")]
    UnsupportedVersion {
        /// The version text found.
        version: String,
    },
    /// The Request-URI is not a valid URI.
    #[error("Bad Request-URI: {reason}")]
    BadRequestUri {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header line has no colon, a bad name, or a continuation line with nothing to continue.
    #[error("Bad header line{at}: {reason}")]
    BadHeaderLine {
        /// Byte offset of the line.
        at: At,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The value of a header this crate interprets is not UTF-8.
    #[error("{name} header{at} is not valid UTF-8")]
    NonUtf8Header {
        /// The header name (normalised).
        name: String,
        /// Byte offset of the header line.
        at: At,
    },
    /// The input ends before the empty line that ends the headers.
    #[error("Headers are not terminated by an empty line")]
    UnterminatedHeaders,
    /// A header value does not follow its grammar.
    #[error("Bad {name} header{at}: {reason}")]
    BadHeader {
        /// The header name (normalised).
        name: String,
        /// Byte offset of the header line.
        at: At,
        /// What is wrong with it.
        reason: Cow<'static, str>,
    },
    /// Content-Length says more bytes than the body has.
    #[error("Content-Length is {declared} but the body has {actual} bytes")]
    ContentLengthMismatch {
        /// The Content-Length value.
        declared: usize,
        /// The bytes available after the headers.
        actual: usize,
    },
    /// A mandatory header is missing.
    #[error("Missing {name} header")]
    MissingHeader {
        /// The header name.
        name: &'static str,
    },
    /// A header that may appear once appears more than once.
    #[error("More than one {name} header{at}")]
    DuplicateHeader {
        /// The header name.
        name: &'static str,
        /// Byte offset of the second occurrence.
        at: At,
    },
    /// The method in CSeq differs from the request method.
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMethodMismatch {
        /// The method in CSeq.
        cseq: String,
        /// The method of the request line.
        method: String,
    },
    /// A URI given on its own (not inside a message) is malformed.
    #[error("Bad URI: {reason}")]
    BadUri {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A builder was given something that cannot be serialised faithfully.
    #[error("Bad {what}: {reason}")]
    BadInput {
        /// Which argument.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A request was expected.
    #[error("Not a request")]
    NotARequest,
}

impl Error {
    /// The status code a server should answer with: `505` for an unsupported version, `400`
    /// otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::UnsupportedVersion { .. } => 505,
            _ => 400,
        }
    }

    pub(crate) fn bad_header(
        name: &str,
        at: Option<usize>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::BadHeader {
            name: name.to_owned(),
            at: At(at),
            reason: reason.into(),
        }
    }
}
