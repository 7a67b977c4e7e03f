//! The `kv` capability: each plugin's private key-value space in the core database, capped by
//! the manifest's `kv_quota_bytes`; keys under the manifest's `kv_volatile` prefixes live in
//! memory instead, and `kv_cached` prefixes are read from memory after the first read
//! ([`super::kv_memory`]).

use std::sync::Arc;

use switchboard_sdk::Error;
use switchboard_storage::Storage;

use super::kv_memory::Memory;

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
    memory: Arc<Memory>,
    volatile: Arc<[String]>,
    cached: Arc<[String]>,
}

fn under(prefixes: &[String], key: &str) -> bool {
    prefixes.iter().any(|p| key.starts_with(p.as_str()))
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
            memory: Arc::default(),
            volatile: Arc::new([]),
            cached: Arc::new([]),
        }
    }

    /// Keep keys under `volatile` in `memory` only, and cache reads of keys under `cached`
    /// there (the manifest's `kv_volatile` / `kv_cached`).
    pub fn with_memory(
        mut self,
        memory: Arc<Memory>,
        volatile: &[String],
        cached: &[String],
    ) -> Kv {
        self.memory = memory;
        self.volatile = volatile.into();
        self.cached = cached.into();
        self
    }

    fn is_volatile(&self, key: &str) -> bool {
        under(&self.volatile, key)
    }

    fn is_cached(&self, key: &str) -> bool {
        under(&self.cached, key)
    }

    fn quota_error(&self, bytes: u64) -> Error {
        Error::Quota(format!(
            "kv quota of plugin {} is {} bytes; this write would use {bytes}",
            self.plugin, self.quota
        ))
    }

    /// A write to memory-only keys (all of `checks` and `writes` are volatile).
    fn volatile_commit(
        &self,
        checks: &[(String, Option<Vec<u8>>)],
        writes: &[(String, Option<Vec<u8>>)],
    ) -> Result<bool, Error> {
        self.memory
            .commit(checks, writes, self.quota)
            .map_err(|bytes| self.quota_error(bytes))
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
            return Err(self.quota_error(after));
        }
        Ok(())
    }

    /// Read a key.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.check(key)?;
        if self.is_volatile(key) {
            return Ok(self.memory.get(key));
        }
        let generation = if self.is_cached(key) {
            match self.memory.cached(key) {
                Ok(hit) => return Ok(hit),
                Err(generation) => Some(generation),
            }
        } else {
            None
        };
        tracing::trace!(plugin = %self.plugin, key, "kv read from the database");
        let value = self
            .storage
            .kv_get(&self.plugin, key)
            .await
            .map_err(internal)?;
        if let Some(generation) = generation {
            self.memory.fill(key, &value, generation);
        }
        Ok(value)
    }

    /// Tell the cache what a write of `key` did (`Ok`: the value now stored).
    fn wrote<T>(
        &self,
        key: &str,
        r: &Result<T, Error>,
        now: impl FnOnce(&T) -> Option<Option<Vec<u8>>>,
    ) {
        if self.is_cached(key) {
            self.memory.wrote(key, r.as_ref().ok().and_then(now));
        }
    }

    /// Write a key within the quota.
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.check(key)?;
        if self.is_volatile(key) {
            return self
                .volatile_commit(&[], &[(key.to_string(), Some(value.to_vec()))])
                .map(drop);
        }
        self.check_quota(key, value.len()).await?;
        let r = self
            .storage
            .kv_set(&self.plugin, key, value)
            .await
            .map_err(internal);
        self.wrote(key, &r, |_| Some(Some(value.to_vec())));
        r
    }

    /// Remove a key.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        self.check(key)?;
        if self.is_volatile(key) {
            let existed = self.memory.get(key).is_some();
            self.volatile_commit(&[], &[(key.to_string(), None)])?;
            return Ok(existed);
        }
        let r = self
            .storage
            .kv_delete(&self.plugin, key)
            .await
            .map_err(internal);
        self.wrote(key, &r, |_| Some(None));
        r
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
        let limit = limit.min(10_000);
        if self.is_volatile(prefix) {
            return Ok(self.memory.scan(prefix, after, limit as usize));
        }
        let mut rows = self
            .storage
            .kv_scan(&self.plugin, prefix, after, limit)
            .await
            .map_err(internal)?;
        // A prefix that spans volatile keys too (`""`, say): both sides, in key order.
        if self.volatile.iter().any(|v| v.starts_with(prefix)) {
            rows.extend(self.memory.scan(prefix, after, limit as usize));
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            rows.truncate(limit as usize);
        }
        Ok(rows)
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
        let volatile = checks
            .iter()
            .chain(writes)
            .filter(|(k, _)| self.is_volatile(k))
            .count();
        if volatile > 0 {
            if volatile != checks.len() + writes.len() {
                return Err(Error::Invalid(
                    "a commit cannot mix volatile keys (kept in memory) with stored ones".into(),
                ));
            }
            return self.volatile_commit(checks, writes);
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
        let r = self
            .storage
            .kv_commit(&self.plugin, checks, writes)
            .await
            .map_err(internal);
        for (key, value) in writes {
            self.wrote(key, &r, |done| done.then(|| value.clone()));
        }
        r
    }

    /// Compare-and-swap.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error> {
        self.check(key)?;
        if self.is_volatile(key) {
            return self.volatile_commit(
                &[(key.to_string(), expected.map(<[u8]>::to_vec))],
                &[(key.to_string(), new.map(<[u8]>::to_vec))],
            );
        }
        if let Some(v) = new {
            self.check_quota(key, v.len()).await?;
        }
        let r = self
            .storage
            .kv_compare_and_swap(&self.plugin, key, expected, new)
            .await
            .map_err(internal);
        self.wrote(key, &r, |&done| done.then(|| new.map(<[u8]>::to_vec)));
        r
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
    async fn volatile_keys_stay_in_memory_and_cached_reads_follow_writes() {
        let (_d, s) = storage().await;
        let kv = Kv::new(s.clone(), "p", 1 << 20).with_memory(
            Arc::default(),
            &["txn/".to_string()],
            &["reg/".to_string()],
        );
        // Volatile: readable, scannable, never in the database.
        kv.set("txn/1", b"resp").await.unwrap();
        kv.set("log/1", b"x").await.unwrap();
        assert_eq!(kv.get("txn/1").await.unwrap(), Some(b"resp".to_vec()));
        assert_eq!(s.kv_get("p", "txn/1").await.unwrap(), None);
        let all: Vec<String> = kv
            .scan("", None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(all, ["log/1", "txn/1"]);
        assert!(kv
            .compare_and_swap("txn/1", Some(b"resp"), None)
            .await
            .unwrap());
        assert_eq!(kv.get("txn/1").await.unwrap(), None);
        let mixed = vec![
            ("txn/2".to_string(), Some(b"a".to_vec())),
            ("log/2".to_string(), Some(b"b".to_vec())),
        ];
        assert!(matches!(
            kv.commit(&[], &mixed).await,
            Err(Error::Invalid(_))
        ));
        // Cached: stored in the database, read once, then from memory; writes through the
        // plugin's kv update the copy.
        kv.set("reg/a", b"1").await.unwrap();
        assert_eq!(s.kv_get("p", "reg/a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get("reg/a").await.unwrap(), Some(b"1".to_vec()));
        assert!(kv
            .compare_and_swap("reg/a", Some(b"1"), Some(b"2"))
            .await
            .unwrap());
        assert_eq!(kv.get("reg/a").await.unwrap(), Some(b"2".to_vec()));
        let writes = vec![("reg/a".to_string(), None)];
        assert!(kv.commit(&[], &writes).await.unwrap());
        assert_eq!(kv.get("reg/a").await.unwrap(), None);
        // What it cannot see (and why kv_cached is only for data this server alone writes):
        // a write into the database from elsewhere.
        s.kv_set("p", "reg/a", b"elsewhere").await.unwrap();
        assert_eq!(kv.get("reg/a").await.unwrap(), None);
        // An uncached key always reads the database.
        s.kv_set("p", "log/1", b"y").await.unwrap();
        assert_eq!(kv.get("log/1").await.unwrap(), Some(b"y".to_vec()));
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
