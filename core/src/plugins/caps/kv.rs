//! The `kv` capability: each plugin's private key-value space in the core database, capped by
//! the manifest's `kv_quota_bytes`.

use switchboard_sdk::Error;
use switchboard_storage::Storage;

/// Longest key accepted (keys are indexed; absurd keys are a plugin bug, not data).
pub const MAX_KEY_BYTES: usize = 512;
/// Most keys one atomic commit may check and write together.
pub const MAX_COMMIT_KEYS: usize = 1000;

/// A plugin's view of the store.
#[derive(Debug, Clone)]
pub struct Kv {
    storage: Storage,
    plugin: String,
    quota: u64,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("database: {e}"))
}

impl Kv {
    /// The space of `plugin`, with `quota` bytes (0: no access).
    pub fn new(storage: Storage, plugin: &str, quota: u64) -> Kv {
        Kv {
            storage,
            plugin: plugin.to_string(),
            quota,
        }
    }

    fn check(&self, key: &str) -> Result<(), Error> {
        if self.quota == 0 {
            return Err(Error::Denied(format!(
                "plugin {} has no kv access (its manifest asks for no kv_quota_bytes)",
                self.plugin
            )));
        }
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(Error::Invalid(format!(
                "kv keys must be 1 to {MAX_KEY_BYTES} bytes (got {})",
                key.len()
            )));
        }
        Ok(())
    }

    async fn check_quota(&self, key: &str, adding: usize) -> Result<(), Error> {
        let used = self
            .storage
            .kv_usage_bytes(&self.plugin)
            .await
            .map_err(internal)?;
        let replaced = match self
            .storage
            .kv_get(&self.plugin, key)
            .await
            .map_err(internal)?
        {
            Some(old) => (old.len() + key.len()) as u64,
            None => 0,
        };
        let after = used.saturating_sub(replaced) + (adding + key.len()) as u64;
        if after > self.quota {
            return Err(Error::Quota(format!(
                "kv quota of plugin {} is {} bytes; this write would use {after}",
                self.plugin, self.quota
            )));
        }
        Ok(())
    }

    /// Read a key.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.check(key)?;
        self.storage
            .kv_get(&self.plugin, key)
            .await
            .map_err(internal)
    }

    /// Write a key within the quota.
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.check(key)?;
        self.check_quota(key, value.len()).await?;
        self.storage
            .kv_set(&self.plugin, key, value)
            .await
            .map_err(internal)
    }

    /// Remove a key.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        self.check(key)?;
        self.storage
            .kv_delete(&self.plugin, key)
            .await
            .map_err(internal)
    }

    /// Keys under `prefix` after `after`, at most `limit` (capped at 10,000).
    pub async fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>, Error> {
        if self.quota == 0 {
            self.check("-")?;
        }
        self.storage
            .kv_scan(&self.plugin, prefix, after, limit.min(10_000))
            .await
            .map_err(internal)
    }

    /// Atomic multi-key commit (see the WIT `kv.commit`). The quota counts every set as if it
    /// added its key and value (a slight overestimate for replacements, never an underestimate).
    pub async fn commit(
        &self,
        checks: &[(String, Option<Vec<u8>>)],
        writes: &[(String, Option<Vec<u8>>)],
    ) -> Result<bool, Error> {
        if writes.len() + checks.len() > MAX_COMMIT_KEYS {
            return Err(Error::Invalid(format!(
                "a commit may name at most {MAX_COMMIT_KEYS} keys"
            )));
        }
        for (key, _) in checks.iter().chain(writes) {
            self.check(key)?;
        }
        let adding: usize = writes
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| k.len() + v.len()))
            .sum();
        if adding > 0 {
            let used = self
                .storage
                .kv_usage_bytes(&self.plugin)
                .await
                .map_err(internal)?;
            if used + adding as u64 > self.quota {
                return Err(Error::Quota(format!(
                    "kv quota of plugin {} is {} bytes; this commit would use up to {}",
                    self.plugin,
                    self.quota,
                    used + adding as u64
                )));
            }
        }
        self.storage
            .kv_commit(&self.plugin, checks, writes)
            .await
            .map_err(internal)
    }

    /// Compare-and-swap.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error> {
        self.check(key)?;
        if let Some(v) = new {
            self.check_quota(key, v.len()).await?;
        }
        self.storage
            .kv_compare_and_swap(&self.plugin, key, expected, new)
            .await
            .map_err(internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("kv.db").display());
        let s = Storage::connect(&url, 2).await.unwrap();
        s.migrate().await.unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn quota_counts_keys_and_values_and_replacements() {
        let (_d, s) = storage().await;
        let kv = Kv::new(s.clone(), "p", 20);
        kv.set("abc", b"0123456789").await.unwrap(); // 13 bytes
        kv.set("abc", b"01234567890123456").await.unwrap(); // replaces: 20 bytes
        let err = kv.set("d", b"x").await.unwrap_err();
        assert!(matches!(err, Error::Quota(_)), "{err}");
        assert_eq!(
            kv.get("d").await.unwrap(),
            None,
            "a refused write stores nothing"
        );
        assert!(kv.delete("abc").await.unwrap());
        kv.set("d", b"x").await.unwrap();
        // Plugins are separated.
        assert_eq!(Kv::new(s, "other", 10).get("d").await.unwrap(), None);
    }

    #[tokio::test]
    async fn no_quota_means_no_access_and_keys_are_bounded() {
        let (_d, s) = storage().await;
        let err = Kv::new(s.clone(), "p", 0).get("k").await.unwrap_err();
        assert!(
            matches!(err, Error::Denied(ref t) if t.contains("kv_quota_bytes")),
            "{err}"
        );
        let kv = Kv::new(s, "p", 1 << 20);
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(matches!(kv.set(&long, b"v").await, Err(Error::Invalid(_))));
        assert!(kv.compare_and_swap("k", None, Some(b"1")).await.unwrap());
        let counter = vec![("c".to_string(), None)];
        let writes = vec![
            ("c".to_string(), Some(b"1".to_vec())),
            ("log/1".to_string(), Some(b"x".to_vec())),
        ];
        assert!(kv.commit(&counter, &writes).await.unwrap());
        assert!(
            !kv.commit(&counter, &writes).await.unwrap(),
            "the check no longer holds"
        );
        assert!(!kv.compare_and_swap("k", None, Some(b"2")).await.unwrap());
        assert_eq!(
            kv.scan("", None, 10).await.unwrap(),
            vec![
                ("c".to_string(), b"1".to_vec()),
                ("k".to_string(), b"1".to_vec()),
                ("log/1".to_string(), b"x".to_vec())
            ]
        );
    }
}
