//! Sans-IO SIP message framing: where one message ends and the next begins, which limits
//! apply, what a keep-alive looks like, and just enough of a message head to answer errors.
//!
//! Nothing here performs IO or depends on tokio; everything is a pure function over bytes
//! (or, for [`StreamFramer`], a small state machine fed with bytes), so it can be unit-tested
//! with fragments and fuzzed directly.
//!
//! * Stream transports (TCP, TLS): [`StreamFramer`] finds message boundaries with the
//!   mandatory `Content-Length` header (RFC 3261 §18.3) and recognises RFC 5626 CRLF
//!   keep-alives.
//! * Datagram transports (UDP): [`classify_datagram`] checks one datagram.
//! * Errors: [`peek_head`] and [`error_response`] build the minimal response a transport
//!   sends when it refuses a message (`400`, `413`, `503`, `513`).

mod datagram;
mod head;
mod stream;

pub use datagram::{classify_datagram, Datagram};
pub use head::{error_response, peek_branch, peek_head, Branch, MessageHead};
pub use stream::{Frame, StreamFramer};

/// Size limits applied to every SIP message, on every transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (start line + header + body) accepted, in bytes. Default 65 535.
    pub max_message_bytes: usize,
    /// Largest header section (start line + header fields + the empty line) accepted, in
    /// bytes. Default 16 384. The effective header limit is the smaller of this and
    /// `max_message_bytes`.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 65_535,
            max_header_bytes: 16_384,
        }
    }
}

impl Limits {
    /// The header limit that actually applies: a header can never exceed the message limit.
    pub(crate) fn header_limit(&self) -> usize {
        self.max_header_bytes.min(self.max_message_bytes)
    }
}

/// Why a message (or a stream of messages) was refused by the framing layer.
///
/// On a stream transport every error is fatal for the connection: the message boundaries
/// are lost, so the caller answers if it can ([`FrameError::response_status`],
/// [`error_response`]) and closes. On UDP only the one datagram is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A message on TCP or TLS has no `Content-Length` header.
    #[error(
        "SIP message on a stream transport (TCP/TLS) has no Content-Length header \
         (required on stream transports, RFC 3261 §18.3)"
    )]
    MissingContentLength,
    /// The `Content-Length` value is not a decimal byte count (or is too large to be one).
    #[error(
        "SIP message has an invalid Content-Length value {value:?} (expected a decimal byte count)"
    )]
    InvalidContentLength {
        /// The offending value (lossily decoded, cut to 32 characters).
        value: String,
    },
    /// Two `Content-Length` headers disagree.
    #[error("SIP message has conflicting Content-Length headers: {first} and {second}")]
    ConflictingContentLength {
        /// The value of the first `Content-Length` header.
        first: u64,
        /// The first value that differs from it.
        second: u64,
    },
    /// The header section did not end (no empty line) within the header limit.
    #[error("SIP message header section exceeds the limit of {limit} bytes")]
    HeaderTooLarge {
        /// The header limit in bytes.
        limit: usize,
    },
    /// Header plus the body announced by `Content-Length` exceed the message limit. Raised
    /// as soon as the header has been read, before any of the body is buffered.
    #[error(
        "SIP message body of {body} bytes (after a {header}-byte header) exceeds the limit of \
         {limit} bytes for the whole message"
    )]
    MessageTooLarge {
        /// Size of the header section in bytes.
        header: usize,
        /// Body size announced by `Content-Length`.
        body: u64,
        /// The message limit in bytes.
        limit: usize,
    },
    /// A UDP datagram is larger than the message limit.
    #[error("SIP datagram of {size} bytes exceeds the limit of {limit} bytes")]
    DatagramTooLarge {
        /// Bytes received (the receive loop reads at most `limit + 1`).
        size: usize,
        /// The message limit in bytes.
        limit: usize,
    },
    /// A UDP datagram announces more body than it carries.
    #[error(
        "SIP datagram announces a Content-Length of {content_length} bytes but carries only \
         {available} bytes of body"
    )]
    TruncatedDatagram {
        /// The announced body length.
        content_length: u64,
        /// Body bytes actually present after the header.
        available: usize,
    },
    /// A UDP datagram has no empty line ending its header section.
    #[error("SIP datagram has no empty line ending its header section")]
    UnterminatedHeader,
}

impl FrameError {
    /// The status code and reason phrase a server answers this error with (when the
    /// offending message is a request it can answer): `513 Message Too Large` for size
    /// limits, `400 Bad Request` otherwise.
    pub fn response_status(&self) -> (u16, &'static str) {
        match self {
            Self::HeaderTooLarge { .. }
            | Self::MessageTooLarge { .. }
            | Self::DatagramTooLarge { .. } => (513, "Message Too Large"),
            Self::MissingContentLength
            | Self::InvalidContentLength { .. }
            | Self::ConflictingContentLength { .. }
            | Self::TruncatedDatagram { .. }
            | Self::UnterminatedHeader => (400, "Bad Request"),
        }
    }

    /// A short, stable, snake_case name for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingContentLength => "missing_content_length",
            Self::InvalidContentLength { .. } => "invalid_content_length",
            Self::ConflictingContentLength { .. } => "conflicting_content_length",
            Self::HeaderTooLarge { .. } => "header_too_large",
            Self::MessageTooLarge { .. } => "message_too_large",
            Self::DatagramTooLarge { .. } => "datagram_too_large",
            Self::TruncatedDatagram { .. } => "truncated_datagram",
            Self::UnterminatedHeader => "unterminated_header",
        }
    }
}
