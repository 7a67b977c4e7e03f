//! [`classify_datagram`]: checks for one UDP datagram.

use super::head::{content_length, find_header_end, strip_leading_newlines, HeaderEnd};
use super::{FrameError, Limits};

/// What a UDP datagram holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// One SIP message: header and body, without leading line breaks and without any bytes
    /// beyond `Content-Length`.
    Message(&'a [u8]),
    /// A keep-alive: `CRLF` or `CRLF CRLF` (more generally: nothing but line breaks), or an
    /// empty datagram. Needs no answer.
    KeepAlive,
}

/// Classifies one UDP datagram.
///
/// * Larger than [`Limits::max_message_bytes`] → [`FrameError::DatagramTooLarge`].
/// * Only line breaks, or empty → [`Datagram::KeepAlive`].
/// * Otherwise the header section must end with an empty line
///   ([`FrameError::UnterminatedHeader`]) within [`Limits::max_header_bytes`]
///   ([`FrameError::HeaderTooLarge`]). `Content-Length` is optional on UDP
///   (RFC 3261 §18.3): without it the body runs to the end of the datagram; with it, bytes
///   beyond it are discarded, and a datagram shorter than it announces is refused
///   ([`FrameError::TruncatedDatagram`]). Invalid or conflicting values are refused as on
///   streams.
pub fn classify_datagram(data: &[u8], limits: Limits) -> Result<Datagram<'_>, FrameError> {
    if data.len() > limits.max_message_bytes {
        return Err(FrameError::DatagramTooLarge {
            size: data.len(),
            limit: limits.max_message_bytes,
        });
    }
    let message = strip_leading_newlines(data);
    if message.is_empty() {
        return Ok(Datagram::KeepAlive);
    }
    let HeaderEnd::Found(end) = find_header_end(message, 0) else {
        return Err(if message.len() > limits.header_limit() {
            FrameError::HeaderTooLarge {
                limit: limits.header_limit(),
            }
        } else {
            FrameError::UnterminatedHeader
        });
    };
    if end > limits.header_limit() {
        return Err(FrameError::HeaderTooLarge {
            limit: limits.header_limit(),
        });
    }
    let (head, body) = message.split_at(end);
    match content_length(head)? {
        None => Ok(Datagram::Message(message)),
        Some(n) => match usize::try_from(n).ok().filter(|&n| n <= body.len()) {
            Some(n) => Ok(Datagram::Message(message.get(..end + n).unwrap_or(message))),
            None => Err(FrameError::TruncatedDatagram {
                content_length: n,
                available: body.len(),
            }),
        },
    }
}
