//! # Switchboard SIP IM and presence frontend
//!
//! A `sip-frontend` plugin: the core owns the sockets and frames messages; this crate parses
//! them with [`switchboard_sip_proto`], keeps every piece of state in the host's `kv` and
//! answers through `sip-transport`. Nothing is kept in memory between calls, so an instance
//! may be fresh for every message.
//!
//! * **Transactions** ([`txn`]): malformed requests get `400` with the parser's precise
//!   reason, unknown methods `405` with `Allow`, `Max-Forwards: 0` on a MESSAGE (the only
//!   request we forward) `483`, unsupported `Require` `420`. Final responses are cached in kv by
//!   (branch, sent-by, method) for 32 s (RFC 3261 §17.2, timer J), so a retransmitted request
//!   is answered from the cache instead of being processed twice. Replies go to the source
//!   address or flow (RFC 3581: `received`/`rport` filled in).
//! * **Registrar** ([`registrar`], RFC 3261 §10): Digest through the core (`sip-auth`),
//!   several contacts per AOR, `Expires` / `expires` param, `423` below `min_expires`, `*` and
//!   `Expires: 0`, `Path` (RFC 3327), outbound (RFC 5626: `+sip.instance`/`reg-id`, the flow
//!   kept for later MESSAGE/NOTIFY).
//! * **MESSAGE** ([`im`], RFC 3428): forked to every contact of the recipient, `202 Accepted`
//!   once forwarded; offline recipients' messages queued and delivered on their next REGISTER,
//!   removed only when a `2xx` for the delivery arrives.
//! * **Presence** ([`presence`], RFC 3856/3863/3903/6665): PUBLISH with ETags, SUBSCRIBE
//!   dialogs with NOTIFY on subscribe, on every change and on termination.
//!
//! The kv layout and the exactly-once argument for offline messages are in `README.md`.

#![deny(missing_docs)]

pub mod auth;
pub mod im;
pub mod presence;
pub mod registrar;
pub mod store;
pub mod txn;
pub mod util;

use switchboard_sdk::sip::Origin;
use switchboard_sdk::SipFrontend;

/// The plugin.
#[derive(Debug)]
pub struct Sip;

impl SipFrontend for Sip {
    fn handle(message: Vec<u8>, origin: Origin) {
        txn::handle_at(&message, &origin, util::now_secs());
    }
}

switchboard_sdk::export_wasm!(sip_frontend: Sip);
switchboard_sdk::export_native!(sip_frontend: Sip);

/// Why a request failed: the SIP status and reason phrase it is answered with, or a host
/// error (answered `500`/`503`).
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// Answer with this status and reason phrase.
    #[error("{0} {1}")]
    Status(u16, String),
    /// Answer `code` (401/407) with this challenge in `WWW-Authenticate` (401) or
    /// `Proxy-Authenticate` (407).
    #[error("{code} challenge")]
    Challenge {
        /// 401 or 407.
        code: u16,
        /// The header value.
        challenge: String,
    },
    /// Answer `423 Interval Too Brief` with this `Min-Expires`.
    #[error("423 Interval Too Brief")]
    TooBrief(u32),
    /// A host call failed.
    #[error("host: {0}")]
    Host(#[from] switchboard_sdk::Error),
}

impl SipError {
    /// A status answer.
    pub fn status(code: u16, reason: impl Into<String>) -> SipError {
        SipError::Status(code, reason.into())
    }
}

/// Result of a handler step.
pub type Result<T> = std::result::Result<T, SipError>;
