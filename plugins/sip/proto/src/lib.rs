//! Switchboard's SIP message model: a sans-IO parser and serializer for SIP (RFC 3261)
//! messages, for the SIP IM/presence frontend (registrar, MESSAGE, PUBLISH/SUBSCRIBE/NOTIFY).
//!
//! The core's `switchboard-sip-transport` finds message boundaries; this crate parses one
//! framed message into a [`Message`] that borrows from the input buffer (header values are
//! `Cow<str>`: borrowed unless the header was folded over several lines or held invalid UTF-8).
//!
//! * [`Message::parse`] — start line, headers in order (names normalised: compact forms
//!   expanded, case folded to the canonical spelling; comma lists split into one [`Header`] per
//!   element), body bytes (Content-Length checked).
//! * Typed accessors on [`Message`] — [`Message::top_via`], [`Message::from`], [`Message::to`],
//!   [`Message::cseq`], [`Message::contacts`], [`Message::event`], … — parsed on demand.
//! * [`Message::validate_request`] — the mandatory headers, with an error fit for a `400`
//!   reason phrase.
//! * [`Uri`] / [`SipUri`] — URI parsing and RFC 3261 §19.1.4 comparison, [`SipUri::aor`].
//! * Builder and serializer — [`Message::request`], [`Message::response_to`],
//!   [`Message::push_header`], [`Message::push_via`], [`Message::set_body`],
//!   [`Message::to_bytes`]; output re-parses to the same model.
//! * [`pidf`] — minimal PIDF (RFC 3863) parsing and building.
//!
//! # Strictness
//!
//! Rejected: a malformed start line (including more than one space between request-line
//! elements and `<>` around the Request-URI), versions other than SIP/2.0
//! ([`Error::UnsupportedVersion`], answer 505), status codes outside 100–699, header lines
//! without a colon or with a bad name, control characters in values, non-UTF-8 values of known
//! headers, empty elements in comma lists, unbalanced quotes or `<` in lists, a bad or negative
//! Content-Length, a body shorter than Content-Length.
//!
//! Tolerated: CRLFs before the start line, bare LF line ends, whitespace before the colon,
//! line folding, leading zeros in numbers, no space between display name and `<`, extra bytes
//! after the Content-Length body (ignored, RFC 3261 §18.3), non-UTF-8 bytes in the reason
//! phrase and in extension headers' values (replaced by U+FFFD: we never interpret them).
//! Header grammar beyond the line syntax is checked only when a typed accessor is called.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod message;
pub mod names;
mod params;
pub mod pidf;
mod typed;
mod uri;

pub use error::{At, Error};
pub use message::{Header, Message, Method, StartLine};
pub use params::Params;
pub use typed::{CSeq, Contact, Event, MediaType, NameAddr, SubscriptionState, Via};
pub use uri::{percent_decode, Host, SipUri, Uri};
