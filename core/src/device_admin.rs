//! `switchboard device …`: phones as admins see them, over the ActiveSync plugin's per-device
//! state in its key-value namespace (layout documented in `plugins/eas/src/state.rs`) and the
//! core's `devices` table.
//!
//! - **wipe** writes `wipe/{user}/{device}` (`wipe`, or `account` for an account-only wipe);
//!   the plugin reads it at the device's next request, makes it provision and sends the
//!   directive.
//! - **resync** deletes the device's sync state (`hier`, `coll/*`, `ping`, `sreq`): its next
//!   FolderSync/Sync is told its keys are unknown and it starts over from scratch.
//! - **remove** deletes everything of the device (`dev`, `wipe`, `sent` too) and its row.
//!
//! The server need not be stopped: the plugin reads its state from the database on every
//! request.

use std::collections::BTreeMap;

use serde::Deserialize;
use switchboard_storage::{Storage, StorageError, WipeState};

/// Keys per kv page while scanning.
const PAGE: u32 = 500;
/// Most kv keys one device operation or listing walks (bounds a runaway namespace).
const MAX_KEYS: usize = 1_000_000;

/// Per-device key kinds the plugin writes (`{kind}/{user}/{device}`).
const DEVICE_KINDS: &[&str] = &["dev", "wipe", "hier", "ping", "sreq", "sent"];
/// What a resync drops (plus every `coll/{user}/{device}/…`).
const SYNC_KINDS: &[&str] = &["hier", "ping", "sreq"];

/// Errors of the device commands.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The database refused or failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No such device.
    #[error("no device {device:?} for {user} (see `switchboard device list`)")]
    NotFound {
        /// The user address.
        user: String,
        /// The device id.
        device: String,
    },
    /// A user or device id that cannot be part of a key.
    #[error("{0}")]
    Invalid(String),
}

/// The plugin's record of a device (`dev/…`), the fields admins look at.
#[derive(Debug, Clone, Default, Deserialize)]
struct StoredDevice {
    #[serde(default)]
    device_type: String,
    #[serde(default)]
    policy_key: Option<u32>,
    #[serde(default)]
    version: String,
    #[serde(default)]
    info: BTreeMap<String, String>,
}

/// One device as `device list` / `device show` print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceView {
    /// Owner's address.
    pub user: String,
    /// Client-chosen device id.
    pub device_id: String,
    /// Client-reported type (`iPhone`, `Android`…).
    pub device_type: String,
    /// Last protocol version used, if known.
    pub version: String,
    /// Whether the device holds an acknowledged policy key.
    pub provisioned: bool,
    /// Remote-wipe state: `none`, `requested` (`wipe`/`account`), `sent`, `account-sent`, `done`.
    pub wipe: String,
    /// Collections with sync state.
    pub collections: usize,
    /// Whether folder-hierarchy sync state exists.
    pub hierarchy: bool,
    /// DeviceInformation (Model, OS, FriendlyName…).
    pub info: BTreeMap<String, String>,
    /// Last contact, from the `devices` table, if recorded there.
    pub last_seen: Option<String>,
}

/// What a wipe should remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WipeKind {
    /// The whole device (`RemoteWipe`).
    Full,
    /// Only this account's data (`AccountOnlyRemoteWipe`, protocol 16.1).
    AccountOnly,
}

/// Device administration over one ActiveSync plugin's namespace (`plugin`: the name of its
/// `[plugins.<name>]` entry, `eas` by default).
#[derive(Debug, Clone)]
pub struct Devices<'a> {
    storage: &'a Storage,
    plugin: &'a str,
}

fn check_part(what: &str, s: &str) -> Result<(), DeviceError> {
    if s.is_empty() || s.contains('/') || s.len() > 320 {
        return Err(DeviceError::Invalid(format!(
            "{what} {s:?} must be 1-320 characters without '/'"
        )));
    }
    Ok(())
}

impl<'a> Devices<'a> {
    /// Devices of the plugin named `plugin` in `storage`.
    pub fn new(storage: &'a Storage, plugin: &'a str) -> Self {
        Self { storage, plugin }
    }

    /// Every key starting with `prefix` (paged, bounded).
    async fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, DeviceError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        while out.len() < MAX_KEYS {
            let page = self
                .storage
                .kv_scan(self.plugin, prefix, after.as_deref(), PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            after = page.last().map(|(k, _)| k.clone());
            out.extend(page);
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Keys (only) starting with `prefix`.
    async fn keys(&self, prefix: &str) -> Result<Vec<String>, DeviceError> {
        Ok(self
            .scan(prefix)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// All devices, or those of `user`, sorted by user and device id: the plugin's records
    /// merged with the `devices` table.
    pub async fn list(&self, user: Option<&str>) -> Result<Vec<DeviceView>, DeviceError> {
        let user = user.map(str::to_lowercase);
        let prefix = match &user {
            Some(u) => {
                check_part("user", u)?;
                format!("dev/{u}/")
            }
            None => "dev/".to_string(),
        };
        let mut found: BTreeMap<(String, String), ()> = BTreeMap::new();
        for (key, _) in self.scan(&prefix).await? {
            if let Some((u, d)) = key
                .strip_prefix("dev/")
                .and_then(|rest| rest.split_once('/'))
            {
                found.insert((u.to_string(), d.to_string()), ());
            }
        }
        let rows = match self.storage.list_devices(user.as_deref()).await {
            Ok(rows) => rows,
            // A user the directory knows but the users table does not: kv only.
            Err(StorageError::UserNotFound { .. } | StorageError::DomainNotFound { .. }) => {
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        for r in rows {
            found.insert((r.user.to_lowercase(), r.device_id.clone()), ());
        }
        let mut out = Vec::with_capacity(found.len());
        for (u, d) in found.into_keys() {
            if let Some(v) = self.show(&u, &d).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// One device, if known.
    pub async fn show(&self, user: &str, device: &str) -> Result<Option<DeviceView>, DeviceError> {
        let user = user.to_lowercase();
        check_part("user", &user)?;
        check_part("device id", device)?;
        let stored = self
            .storage
            .kv_get(self.plugin, &format!("dev/{user}/{device}"))
            .await?;
        let row = match self.storage.device(&user, device).await {
            Ok(row) => row,
            Err(StorageError::UserNotFound { .. } | StorageError::DomainNotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if stored.is_none() && row.is_none() {
            return Ok(None);
        }
        let rec: StoredDevice = stored
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let wipe = match self
            .storage
            .kv_get(self.plugin, &format!("wipe/{user}/{device}"))
            .await?
        {
            Some(v) => match String::from_utf8_lossy(&v).trim() {
                "wipe" | "account" => "requested".to_string(),
                other => other.to_string(),
            },
            None => match row.as_ref().map(|r| r.wipe_state) {
                Some(WipeState::Requested) => "requested".into(),
                Some(WipeState::Acknowledged) => "done".into(),
                _ => "none".into(),
            },
        };
        let collections = self.keys(&format!("coll/{user}/{device}/")).await?.len();
        let hierarchy = self
            .storage
            .kv_get(self.plugin, &format!("hier/{user}/{device}"))
            .await?
            .is_some();
        Ok(Some(DeviceView {
            device_type: if rec.device_type.is_empty() {
                row.as_ref()
                    .map(|r| r.device_type.clone())
                    .unwrap_or_default()
            } else {
                rec.device_type
            },
            version: rec.version,
            provisioned: rec.policy_key.is_some(),
            wipe,
            collections,
            hierarchy,
            info: rec.info,
            last_seen: row.as_ref().map(|r| r.last_seen.to_rfc3339()),
            user,
            device_id: device.to_string(),
        }))
    }

    async fn require(&self, user: &str, device: &str) -> Result<String, DeviceError> {
        let user = user.to_lowercase();
        if self.show(&user, device).await?.is_none() {
            return Err(DeviceError::NotFound {
                user,
                device: device.to_string(),
            });
        }
        Ok(user)
    }

    /// Request a remote wipe, served at the device's next request.
    pub async fn wipe(&self, user: &str, device: &str, kind: WipeKind) -> Result<(), DeviceError> {
        let user = self.require(user, device).await?;
        let value: &[u8] = match kind {
            WipeKind::Full => b"wipe",
            WipeKind::AccountOnly => b"account",
        };
        self.storage
            .kv_set(self.plugin, &format!("wipe/{user}/{device}"), value)
            .await?;
        // Mirror it in the devices table when the device has a row there.
        match self
            .storage
            .set_device_wipe_state(&user, device, WipeState::Requested)
            .await
        {
            Ok(_)
            | Err(StorageError::UserNotFound { .. } | StorageError::DomainNotFound { .. }) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Drop the device's sync state: it re-syncs folders and items from scratch. Returns the
    /// number of keys removed.
    pub async fn resync(&self, user: &str, device: &str) -> Result<usize, DeviceError> {
        let user = self.require(user, device).await?;
        let mut keys: Vec<String> = SYNC_KINDS
            .iter()
            .map(|k| format!("{k}/{user}/{device}"))
            .collect();
        keys.extend(self.keys(&format!("coll/{user}/{device}/")).await?);
        self.delete_all(&keys).await
    }

    /// Forget the device: all its state and its `devices` row. Returns the number of keys
    /// removed.
    pub async fn remove(&self, user: &str, device: &str) -> Result<usize, DeviceError> {
        let user = self.require(user, device).await?;
        let mut keys: Vec<String> = DEVICE_KINDS
            .iter()
            .map(|k| format!("{k}/{user}/{device}"))
            .collect();
        keys.extend(self.keys(&format!("coll/{user}/{device}/")).await?);
        let n = self.delete_all(&keys).await?;
        match self.storage.remove_device(&user, device).await {
            Ok(_)
            | Err(StorageError::UserNotFound { .. } | StorageError::DomainNotFound { .. }) => Ok(n),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_all(&self, keys: &[String]) -> Result<usize, DeviceError> {
        let mut n = 0;
        for k in keys {
            if self.storage.kv_delete(self.plugin, k).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}
