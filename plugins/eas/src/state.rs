//! Durable per-device state in the plugin's kv namespace.
//!
//! # Key layout
//!
//! Every key starts with a kind, then the user's address and the device id (device ids are
//! restricted to letters, digits, `-`, `_` and `.` by [`crate::http::query`], so `/` separates
//! unambiguously):
//!
//! | key | value | written by |
//! |---|---|---|
//! | `dev/{user@domain}/{device}` | [`Device`] as JSON: type, policy keys, last protocol version, DeviceInformation | the plugin |
//! | `wipe/{user@domain}/{device}` | wipe request, plain text (below) | **admins** (`switchboard device wipe`), then the plugin |
//! | `hier/{user@domain}/{device}` | FolderSync state: sync key and the folder snapshot it stands for, plus the previous one (replay) | the plugin |
//! | `coll/{user@domain}/{device}/{collection}` | Sync state of one collection: sync key, connector state, last answer (replay) | the plugin |
//! | `ping/{user@domain}/{device}` | the last Ping's folder list and heartbeat (a Ping may omit them) | the plugin |
//! | `sreq/{user@domain}/{device}` | the last Sync request's collections and options (empty and partial Syncs, parked Syncs) | the plugin |
//! | `sent/{user@domain}/{device}` | ClientIds of the last 50 messages sent (a resend answers Status 118) | the plugin |
//! | `fid/{user@domain}` | the user's folder id map: connector folder id → short ServerId (shared by the user's devices) | the plugin |
//! | `iid/{user@domain}/{~digest}` | connector item ids longer than a ServerId may be | the plugin |
//! | `oof/{user@domain}` | out-of-office settings set from a phone | the plugin |
//!
//! ## Remote wipe
//!
//! An admin requests a wipe by setting `wipe/{user@domain}/{device}` to
//!
//! - `wipe` — full device wipe (`RemoteWipe`, every protocol version);
//! - `account` — remove only this account's data (`AccountOnlyRemoteWipe`, 16.1; devices on
//!   older versions are refused with HTTP 403 instead, since a full wipe is not what was asked).
//!
//! On its next command the device is told to provision (HTTP 449, or Status 140 from 14.0);
//! the Provision answer carries the wipe directive and the plugin rewrites the value to
//! `sent` (`account-sent`). When the device acknowledges, the value becomes `done`. While the value is `sent`
//! or `done` every other command is answered 403; deleting the key (device remove / resync)
//! lets the device start over.
//!
//! Removing a device (`switchboard device remove`) is deleting every key with the
//! `…/{user@domain}/{device}` part (`dev`, `wipe`, `hier`, `coll`, `ping`, `sreq`, `sent`);
//! a *resync* is deleting `hier`, `coll`, `ping` and `sreq` (the device then gets Status 9 /
//! 3 and starts over). The per-user keys (`fid`, `iid`, `oof`) stay.
//!
//! ## Events
//!
//! Parked Pings and Syncs wait on `mailbox:{user@domain}/{connector folder id}` (published by
//! the mail connector when a folder's content changes, as the local store does) and on
//! `mailbox:{user@domain}` (published by this plugin when a phone changes the folder
//! hierarchy).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchboard_sdk::{host::kv, Principal, Result};

/// The event keys connectors publish (`mailbox:{user@domain}/{folder}`, `mailbox:{user@domain}`).
pub use switchboard_sdk::mail::{folder_event, hierarchy_event};

/// Which user and device a request is for: the prefix of all its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKey {
    /// The authenticated user.
    pub who: Principal,
    /// The device id from the query.
    pub device_id: String,
}

impl DeviceKey {
    fn key(&self, kind: &str) -> String {
        format!("{kind}/{}/{}", self.who.address(), self.device_id)
    }
    /// `dev/…`
    pub fn device(&self) -> String {
        self.key("dev")
    }
    /// `wipe/…`
    pub fn wipe(&self) -> String {
        self.key("wipe")
    }
    /// `hier/…`
    pub fn hierarchy(&self) -> String {
        self.key("hier")
    }
    /// `ping/…`
    pub fn ping(&self) -> String {
        self.key("ping")
    }
    /// `coll/…/{collection}`
    pub fn collection(&self, collection_id: &str) -> String {
        format!("{}/{collection_id}", self.key("coll"))
    }
    /// Prefix of every collection key of this device.
    pub fn collections_prefix(&self) -> String {
        format!("{}/", self.key("coll"))
    }
    /// The park group of this device's long-polls: a newer Ping ends the older one.
    pub fn park_group(&self) -> String {
        format!("eas/{}/{}", self.who.address(), self.device_id)
    }
}

/// What is known about a device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device type from the query (`iPhone`, `Android`…).
    pub device_type: String,
    /// The acknowledged policy key: the one commands must present.
    #[serde(default)]
    pub policy_key: Option<u32>,
    /// The temporary key handed out in the download phase, until acknowledged.
    #[serde(default)]
    pub pending_key: Option<u32>,
    /// How many keys were generated for this device (input to the next one).
    #[serde(default)]
    pub keys_issued: u32,
    /// The protocol version of the last request.
    #[serde(default)]
    pub version: String,
    /// The temporary key the current `policy_key` was issued for (a repeated acknowledgement
    /// gets the same final key).
    #[serde(default)]
    pub acked_from: Option<u32>,
    /// Fingerprint of the policy the device acknowledged; a different one means the admin
    /// changed the policy and the device must provision again (Status 143).
    #[serde(default)]
    pub policy_hash: u32,
    /// `settings:DeviceInformation` as sent (Model, IMEI, FriendlyName, OS, UserAgent…).
    #[serde(default)]
    pub info: BTreeMap<String, String>,
}

/// A wipe request's state (the value of `wipe/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wipe {
    /// Full wipe requested, not yet sent.
    Full,
    /// Account-only wipe requested, not yet sent.
    AccountOnly,
    /// The full-wipe directive went out; waiting for the acknowledgement.
    Sent,
    /// The account-only directive went out; waiting for the acknowledgement.
    AccountSent,
    /// The device acknowledged.
    Done,
}

impl Wipe {
    /// Parse a stored value; unknown values count as a full wipe (fail safe).
    pub fn parse(value: &[u8]) -> Wipe {
        match value.trim_ascii() {
            b"account" => Wipe::AccountOnly,
            b"sent" => Wipe::Sent,
            b"account-sent" => Wipe::AccountSent,
            b"done" => Wipe::Done,
            _ => Wipe::Full,
        }
    }

    /// The stored form.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Wipe::Full => b"wipe",
            Wipe::AccountOnly => b"account",
            Wipe::Sent => b"sent",
            Wipe::AccountSent => b"account-sent",
            Wipe::Done => b"done",
        }
    }
}

/// Read a JSON value; an undecodable value is treated as absent (and logged), so a corrupt
/// state means "start over", never a failed request loop.
pub fn load<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    let Some(bytes) = kv::get(key)? else {
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            switchboard_sdk::host::log::warn(&format!("eas: discarding corrupt state {key}: {e}"));
            Ok(None)
        }
    }
}

/// Read a JSON value with its stored bytes (for a later [`store_if`]).
pub fn load_raw<T: DeserializeOwned>(key: &str) -> Result<(Option<T>, Option<Vec<u8>>)> {
    let raw = kv::get(key)?;
    let value = raw.as_deref().and_then(|b| serde_json::from_slice(b).ok());
    Ok((value, raw))
}

/// Write a JSON value only if the key still holds `expected` (what [`load_raw`] returned):
/// `false` when another request changed it meanwhile.
pub fn store_if<T: Serialize>(key: &str, expected: Option<&[u8]>, value: &T) -> Result<bool> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| switchboard_sdk::Error::Internal(format!("encoding {key}: {e}")))?;
    if expected == Some(bytes.as_slice()) {
        // Unchanged: nothing to write (an idle Sync costs no kv write).
        return Ok(true);
    }
    kv::compare_and_swap(key, expected, Some(&bytes))
}

/// Write a JSON value.
pub fn store<T: Serialize>(key: &str, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| switchboard_sdk::Error::Internal(format!("encoding {key}: {e}")))?;
    kv::set(key, &bytes)
}

/// The wipe state of a device, if any.
pub fn wipe_state(dk: &DeviceKey) -> Result<Option<Wipe>> {
    Ok(kv::get(&dk.wipe())?.map(|v| Wipe::parse(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::mock::MockHost;

    fn dk() -> DeviceKey {
        DeviceKey {
            who: Principal::parse("alice@example.com").unwrap(),
            device_id: "ABC".into(),
        }
    }

    #[test]
    fn key_layout() {
        let k = dk();
        assert_eq!(k.device(), "dev/alice@example.com/ABC");
        assert_eq!(k.wipe(), "wipe/alice@example.com/ABC");
        assert_eq!(k.collection("7"), "coll/alice@example.com/ABC/7");
        assert!(k.collection("7").starts_with(&k.collections_prefix()));
    }

    #[test]
    fn corrupt_state_reads_as_absent_and_wipe_values_parse() {
        let host = MockHost::new();
        host.run(|| {
            kv::set(&dk().device(), b"{not json").unwrap();
            assert_eq!(load::<Device>(&dk().device()).unwrap(), None);
            let d = Device {
                device_type: "iPhone".into(),
                policy_key: Some(5),
                ..Device::default()
            };
            store(&dk().device(), &d).unwrap();
            assert_eq!(load::<Device>(&dk().device()).unwrap(), Some(d));
            assert_eq!(wipe_state(&dk()).unwrap(), None);
            kv::set(&dk().wipe(), b"account\n").unwrap();
            assert_eq!(wipe_state(&dk()).unwrap(), Some(Wipe::AccountOnly));
        });
        for w in [
            Wipe::Full,
            Wipe::AccountOnly,
            Wipe::Sent,
            Wipe::AccountSent,
            Wipe::Done,
        ] {
            assert_eq!(Wipe::parse(w.as_bytes()), w);
        }
        assert_eq!(Wipe::parse(b"yes please"), Wipe::Full);
    }
}
