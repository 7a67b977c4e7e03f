//! Authentication for Switchboard: runs before any frontend sees a request.
//!
//! * [`basic`] — HTTP Basic (RFC 7617) header parsing and challenges.
//! * [`digest`] — Digest (RFC 7616 for HTTP, RFC 3261 §22 / RFC 2617 for SIP): parsing,
//!   stateless nonces with expiry (`stale=true`), nonce-count replay protection, verification.
//! * [`throttle`] — failed-login throttling per login and per source address, bounded memory.
//! * [`Authenticator`] — the credential chain: asks each [`CredentialSource`] in turn, throttles,
//!   and reports every failure to an [`AuditSink`].
//!
//! The parsers and the nonce logic are pure (time is passed in), so they are unit-tested on the
//! RFCs' own examples and fuzzed.

#![deny(missing_docs)]

pub mod basic;
mod chain;
pub mod digest;
pub mod throttle;

pub use chain::{
    AuditSink, AuthEvent, AuthFailure, AuthFailureKind, AuthOutcome, Authenticator,
    CredentialSource, Ha1Lookup, Identity, Mechanism, SourceError, SourceVerdict,
};
pub use digest::{DigestAlgorithm, NonceManager, NonceStatus};
