//! The kv layout. Every value is JSON except the response cache (raw bytes behind an expiry
//! line). Keys use lower-case AORs (`user@domain`).
//!
//! | key | value |
//! |---|---|
//! | `reg/{aor}` | [`Bindings`]: the AOR's contacts |
//! | `known/{aor}` | `1`: the AOR registered here at least once (may receive offline messages) |
//! | `txn/{branch}|{sent-by}|{method}` | `{expires}\n` + the final response sent, or `={code} {reason}` (see [`crate::txn::remember_status`]) |
//! | `txn/~exp/{expires:010}/{branch}|{sent-by}|{method}` | empty: the response cache's expiry index |
//! | `qseq/{aor}` | next queue sequence number |
//! | `q/{aor}/{seq:016}` | [`Queued`]: an offline message |
//! | `pend/{call-id}` | `{q key}`: a delivery of a queued message awaiting its 2xx |
//! | `pub/{aor}/{etag}` | [`Publication`]: a PUBLISHed PIDF document |
//! | `sub/{aor}/{id}` | [`Subscription`]: a watcher's presence subscription |
//! | `dlg/{call-id}/{to-tag}` | `sub/…` key of that subscription dialog |

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use switchboard_sdk::host::kv;

use crate::util::Target;
use crate::Result;

/// How often a read-modify-write retries after losing a race.
pub const RETRIES: usize = 8;

/// Read a JSON value; a value that does not decode counts as absent (and is logged).
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<(T, Vec<u8>)>> {
    let Some(raw) = kv::get(key)? else {
        return Ok(None);
    };
    match serde_json::from_slice(&raw) {
        Ok(v) => Ok(Some((v, raw))),
        Err(e) => {
            switchboard_sdk::host::log::warn(&format!("sip: kv {key} undecodable: {e}"));
            Ok(None)
        }
    }
}

/// Encode a value as JSON.
pub fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// One registered contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact URI.
    pub uri: String,
    /// `+sip.instance` (RFC 5626).
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
    /// Unix seconds when the binding lapses.
    pub expires_at: u64,
    /// Where the REGISTER came from: MESSAGE/NOTIFY go back there (the flow when open).
    pub target: Target,
    /// The Path of the REGISTER (RFC 3327): Route headers of requests to this contact.
    pub path: Vec<String>,
    /// Call-ID of the REGISTER that made the binding.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
}

impl Binding {
    /// Same binding per RFC 5626 §6 (instance and reg-id) or RFC 3261 §10.3 (URI).
    pub fn same_as(&self, other: &Binding) -> bool {
        match (&self.instance, self.reg_id, &other.instance, other.reg_id) {
            (Some(a), Some(ra), Some(b), Some(rb)) => a == b && ra == rb,
            _ => uri_eq(&self.uri, &other.uri),
        }
    }
}

/// URI equality per RFC 3261 §19.1.4, falling back to text comparison.
pub fn uri_eq(a: &str, b: &str) -> bool {
    use switchboard_sip_proto::SipUri;
    match (SipUri::parse(a), SipUri::parse(b)) {
        (Ok(x), Ok(y)) => x.equivalent(&y),
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// An AOR's contacts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bindings {
    /// The contacts.
    pub contacts: Vec<Binding>,
}

impl Bindings {
    /// The contacts that have not lapsed at `now`.
    pub fn live(&self, now: u64) -> Vec<Binding> {
        self.contacts
            .iter()
            .filter(|b| b.expires_at > now)
            .cloned()
            .collect()
    }
}

/// The AOR's live contacts.
pub fn live_bindings(aor: &str, now: u64) -> Result<Vec<Binding>> {
    Ok(get_json::<Bindings>(&format!("reg/{aor}"))?
        .map(|(b, _)| b.live(now))
        .unwrap_or_default())
}

/// A message waiting for an offline user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// Sequence number within the AOR's queue.
    pub seq: u64,
    /// The sender's From value (with its tag).
    pub from: String,
    /// The original To value.
    pub to: String,
    /// Content-Type.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// Unix seconds when it was accepted (sent as `Date`-like `X-Switchboard-Queued`).
    pub queued_at: u64,
    /// Call-ID used for every delivery attempt, so a recipient can spot a repeat (RFC 3428
    /// §7: same Call-ID and CSeq).
    pub call_id: String,
}

/// A PUBLISHed document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    /// Unix seconds when it lapses.
    pub expires_at: u64,
    /// The PIDF document.
    pub pidf: String,
    /// When it was (re)published, for ordering.
    pub at: u64,
}

/// A watcher's subscription (one dialog).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// The watcher, `user@domain`.
    pub watcher: String,
    /// The dialog's Call-ID.
    pub call_id: String,
    /// The watcher's From value (their tag included): the To of our NOTIFYs.
    pub watcher_from: String,
    /// Our tag (the To tag of the 200).
    pub our_tag: String,
    /// The watcher's Contact URI: the Request-URI of our NOTIFYs.
    pub remote_uri: String,
    /// Route set (Record-Route of the SUBSCRIBE, in order).
    pub route: Vec<String>,
    /// Where NOTIFYs go.
    pub target: Target,
    /// Our next CSeq.
    pub cseq: u32,
    /// Unix seconds when it lapses.
    pub expires_at: u64,
}
