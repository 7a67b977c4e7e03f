//! The kv layout. Every value is JSON except the registrations (postcard, see
//! [`Bindings::encode`]) and the response cache (raw bytes behind an expiry line). Keys use
//! lower-case AORs (`user@domain`).
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
    get_decoded(key, |raw| {
        serde_json::from_slice(raw).map_err(|e| e.to_string())
    })
}

/// Read a value and decode it with `decode`, with its raw bytes; a value that does not
/// decode counts as absent (and is logged).
fn get_decoded<T>(
    key: &str,
    decode: impl FnOnce(&[u8]) -> std::result::Result<T, String>,
) -> Result<Option<(T, Vec<u8>)>> {
    let Some(raw) = kv::get(key)? else {
        return Ok(None);
    };
    match decode(&raw) {
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

/// First byte of a postcard-encoded [`Bindings`] value (JSON objects start with `{`).
const BINDINGS_POSTCARD: u8 = 1;

impl Bindings {
    /// The stored form: a version byte, then postcard. Registrations are decoded twice per
    /// MESSAGE (the sender's and the recipient's), and inside the sandbox postcard decodes them
    /// several times faster than JSON did.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![BINDINGS_POSTCARD];
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Read a stored value: postcard, or the JSON that earlier versions wrote (those
    /// registrations stay valid across an upgrade).
    pub fn decode(raw: &[u8]) -> std::result::Result<Bindings, String> {
        match raw.split_first() {
            Some((&BINDINGS_POSTCARD, rest)) => {
                postcard::from_bytes(rest).map_err(|e| e.to_string())
            }
            Some((b'{', _)) => serde_json::from_slice(raw).map_err(|e| e.to_string()),
            _ => Err("neither postcard nor JSON".into()),
        }
    }

    /// The contacts that have not lapsed at `now`.
    pub fn live(&self, now: u64) -> Vec<Binding> {
        self.contacts
            .iter()
            .filter(|b| b.expires_at > now)
            .cloned()
            .collect()
    }
}

/// The stored registrations at `key` (`reg/{aor}`) and their raw value; one that does not
/// decode counts as absent (and is logged).
pub fn get_bindings(key: &str) -> Result<Option<(Bindings, Vec<u8>)>> {
    get_decoded(key, Bindings::decode)
}

/// The AOR's live contacts.
pub fn live_bindings(aor: &str, now: u64) -> Result<Vec<Binding>> {
    Ok(get_bindings(&format!("reg/{aor}"))?
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bindings {
        Bindings {
            contacts: vec![Binding {
                uri: "sip:bob@192.0.2.4:5060;transport=tcp".into(),
                instance: Some("\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"".into()),
                reg_id: Some(1),
                expires_at: 1_700_000_600,
                target: Target {
                    transport: "tcp".into(),
                    peer: "127.0.0.1:40000".into(),
                    flow: Some(7),
                    local: "127.0.0.1:5060".into(),
                },
                path: vec!["<sip:edge.example.com;lr>".into()],
                call_id: "843817637684230@998sdasdh09".into(),
                cseq: 1826,
            }],
        }
    }

    #[test]
    fn registrations_round_trip_and_earlier_json_still_reads() {
        let b = sample();
        let raw = b.encode();
        assert_eq!(raw[0], BINDINGS_POSTCARD);
        assert_eq!(Bindings::decode(&raw), Ok(b.clone()));
        // What versions before the postcard form stored.
        assert_eq!(Bindings::decode(&to_json(&b)), Ok(b));
        assert!(Bindings::decode(b"").is_err());
        assert!(Bindings::decode(&[BINDINGS_POSTCARD, 0xff]).is_err());
        assert!(Bindings::decode(b"[1,2]").is_err());
    }
}
