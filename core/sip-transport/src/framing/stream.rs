//! [`StreamFramer`]: resumable message framing for TCP and TLS.

use bytes::{Buf, Bytes, BytesMut};

use super::head::{content_length, find_header_end, HeaderEnd};
use super::{FrameError, Limits};

/// One unit read from a SIP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete message: header section and exactly `Content-Length` bytes of body, without
    /// any line breaks that preceded it.
    Message(Bytes),
    /// A double CRLF between messages: an RFC 5626 keep-alive "ping" (§3.5.1, §4.4.1). The
    /// server answers it with a single CRLF "pong".
    KeepAlivePing,
    /// A single CRLF between messages: an RFC 5626 keep-alive "pong", or a stray line break
    /// before a message (which RFC 3261 §7.5 says to ignore). Needs no answer.
    KeepAlivePong,
}

/// Where the framer is in the stream.
#[derive(Debug)]
enum State {
    /// Between messages: line breaks are keep-alives (or ignorable).
    Between,
    /// Inside a header section; nothing before `scanned` can complete its end.
    Header { scanned: usize },
    /// The header is complete; the message is `len` bytes long in total.
    Body { len: usize },
    /// An error occurred; the stream cannot be resynchronised.
    Failed(FrameError),
}

/// Splits a byte stream (TCP, TLS) into SIP messages and keep-alives.
///
/// Feed received bytes with [`push`](Self::push), then call [`next_frame`](Self::next_frame)
/// until it returns `Ok(None)`. Input may be split at any byte; the frames are the same
/// however it is split. Rules:
///
/// * Between messages, `CRLF CRLF` is a [`Frame::KeepAlivePing`] and a lone `CRLF` a
///   [`Frame::KeepAlivePong`] (RFC 5626 §3.5.1; RFC 3261 §7.5 says line breaks before a start
///   line are ignored, which is what a caller does with a pong). Since a `CRLF` may be the
///   first half of a ping, it is reported once the next byte shows which it is. Bare LFs
///   between messages are skipped silently.
/// * A header section ends at the first empty line (`CRLF CRLF`, or bare `LF LF` from sloppy
///   clients).
/// * Its `Content-Length` (or compact `l`) header is required and gives the body length;
///   repeated headers must agree.
/// * A header section longer than [`Limits::max_header_bytes`] fails as soon as the limit
///   is crossed; a message whose header plus announced body exceeds
///   [`Limits::max_message_bytes`] fails as soon as its header is complete, before any body is
///   buffered.
///
/// After an error every further call returns the same error: the caller answers if it can
/// (see [`buffered`](Self::buffered)) and closes the connection. Buffering is bounded by the
/// limits plus what one `push` adds, provided the caller drains frames after every push.
#[derive(Debug)]
pub struct StreamFramer {
    limits: Limits,
    buf: BytesMut,
    state: State,
}

impl StreamFramer {
    /// A framer applying `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buf: BytesMut::new(),
            state: State::Between,
        }
    }

    /// Appends received bytes. Ignored once the framer has failed.
    pub fn push(&mut self, data: &[u8]) {
        if !matches!(self.state, State::Failed(_)) {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes pushed but not yet returned in a frame. After an error these start with the
    /// offending message (as much of it as had arrived), so
    /// [`error_response`](super::error_response) can be built from them.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// The next complete frame, `Ok(None)` if more input is needed, or the error that ended
    /// the stream.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            match self.state {
                State::Failed(ref e) => return Err(e.clone()),
                State::Between => match (
                    self.buf.first(),
                    self.buf.get(1),
                    self.buf.get(2),
                    self.buf.get(3),
                ) {
                    (None, ..) => return Ok(None),
                    (Some(b'\n'), ..) => self.buf.advance(1),
                    (Some(b'\r'), Some(b'\n'), Some(b'\r'), Some(b'\n')) => {
                        self.buf.advance(4);
                        return Ok(Some(Frame::KeepAlivePing));
                    }
                    // Could still become a ping or stay a pong: wait for the deciding byte.
                    (Some(b'\r'), None, ..)
                    | (Some(b'\r'), Some(b'\n'), None, _)
                    | (Some(b'\r'), Some(b'\n'), Some(b'\r'), None) => return Ok(None),
                    (Some(b'\r'), Some(b'\n'), ..) => {
                        self.buf.advance(2);
                        return Ok(Some(Frame::KeepAlivePong));
                    }
                    _ => self.state = State::Header { scanned: 0 },
                },
                State::Header { scanned } => match find_header_end(&self.buf, scanned) {
                    // While the buffer is below the limit the end may still come in time;
                    // once it is not, the end would lie beyond the limit.
                    HeaderEnd::NotYet { resume } if self.buf.len() < self.limits.header_limit() => {
                        self.state = State::Header { scanned: resume };
                        return Ok(None);
                    }
                    HeaderEnd::NotYet { .. } => {
                        let limit = self.limits.header_limit();
                        return self.fail(FrameError::HeaderTooLarge { limit });
                    }
                    HeaderEnd::Found(header) => match self.message_len(header) {
                        Ok(len) => {
                            self.buf.reserve(len.saturating_sub(self.buf.len()));
                            self.state = State::Body { len };
                        }
                        Err(e) => return self.fail(e),
                    },
                },
                State::Body { len } => {
                    if self.buf.len() < len {
                        return Ok(None);
                    }
                    let message = self.buf.split_to(len).freeze();
                    self.state = State::Between;
                    return Ok(Some(Frame::Message(message)));
                }
            }
        }
    }

    /// The length of the message whose header section is the first `header` buffered bytes,
    /// checked against the limits.
    fn message_len(&self, header: usize) -> Result<usize, FrameError> {
        let limit = self.limits.header_limit();
        if header > limit {
            return Err(FrameError::HeaderTooLarge { limit });
        }
        let body = content_length(self.buf.get(..header).unwrap_or_default())?
            .ok_or(FrameError::MissingContentLength)?;
        let max = self.limits.max_message_bytes;
        usize::try_from(body)
            .ok()
            .and_then(|body| body.checked_add(header))
            .filter(|&len| len <= max)
            .ok_or(FrameError::MessageTooLarge {
                header,
                body,
                limit: max,
            })
    }

    fn fail(&mut self, error: FrameError) -> Result<Option<Frame>, FrameError> {
        self.state = State::Failed(error.clone());
        Err(error)
    }
}
