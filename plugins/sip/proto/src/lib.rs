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
//! # Example
//!
//! ```
//! use switchboard_sip_proto::{Message, Method};
//!
//! let wire = b"MESSAGE sip:bob@example.com SIP/2.0\r\n\
//! v: SIP/2.0/TLS pc.example.com;branch=z9hG4bK776sgdkse;rport\r\n\
//! Max-Forwards: 70\r\n\
//! f: \"Alice\" <sip:alice@example.com>;tag=49583\r\n\
//! t: <sip:bob@example.com>\r\n\
//! i: asd88asd77a@pc.example.com\r\n\
//! CSeq: 1 MESSAGE\r\n\
//! c: text/plain\r\n\
//! l: 5\r\n\r\nhello";
//! let req = Message::parse(wire)?;
//! req.validate_request()?; // else answer 400 with the error as reason phrase
//! assert_eq!(req.method(), Some(&Method::Message));
//! assert_eq!(req.from()?.display.as_deref(), Some("Alice"));
//! assert_eq!(req.to()?.uri.as_sip().unwrap().aor(), "sip:bob@example.com");
//! assert_eq!(req.top_via()?.rport(), Some(None));
//! assert_eq!(req.body(), b"hello");
//!
//! let ok = Message::response_to(&req, 200, "OK")?;
//! let bytes = ok.to_bytes(); // Via, From, To (+tag), Call-ID, CSeq, Content-Length: 0
//! assert!(bytes.starts_with(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS pc.example.com"));
//! # Ok::<(), switchboard_sip_proto::Error>(())
//! ```
//!
//! Digest credentials (Authorization, Proxy-Authorization) are exposed raw
//! ([`Message::authorization`]): the core's `switchboard-auth` parses and verifies them, and
//! it is not a dependency here because it pulls in tokio, which the WASM plugin cannot use.
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
pub use typed::{
    credentials_param, CSeq, Contact, Event, MediaType, NameAddr, SubscriptionState, Via,
};
pub use uri::{percent_decode, Host, SipUri, Uri};
