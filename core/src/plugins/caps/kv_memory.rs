//! The in-memory side of a plugin's kv space: keys under the manifest's `kv_volatile`
//! prefixes live only here, and reads of keys under its `kv_cached` prefixes are answered from
//! here after the first. A SIP MESSAGE, say, then costs no database round trip at all: its
//! response cache is volatile and the registrations it reads are cached.
//!
//! One [`Memory`] per plugin name and server, shared by every load of the plugin (a reload
//! keeps it), from [`MemoryStores`].
//!
//! **Why the cache stays right.** Every write of a cached key goes through the plugin's
//! [`super::kv::Kv`], which updates the copy after the database write. A read that misses
//! notes the write generation before it reads the database and keeps what it read only if no
//! write happened meanwhile, so an old value read concurrently with a write is never kept.
//! What it cannot see: writes by another process into the same database (another server of a
//! cluster, an admin command). So `kv_cached` is for data only this server writes (the docs
//! say so); everything else reads the database every time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// Cached keys kept at most; past it the copy is dropped and refilled from the database.
const MAX_CACHED: usize = 100_000;

/// The memory stores of every plugin of one server.
#[derive(Debug, Default)]
pub struct MemoryStores {
    by_plugin: Mutex<HashMap<String, Arc<Memory>>>,
}

impl MemoryStores {
    /// The store of `plugin`, made on first use.
    pub fn for_plugin(&self, plugin: &str) -> Arc<Memory> {
        lock(&self.by_plugin)
            .entry(plugin.to_string())
            .or_default()
            .clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
struct Volatile {
    map: BTreeMap<String, Vec<u8>>,
    /// Keys plus values, for the quota.
    bytes: u64,
}

#[derive(Debug, Default)]
struct Cache {
    map: HashMap<String, Option<Vec<u8>>>,
    /// Bumped by every write of a cached key.
    generation: u64,
}

/// One plugin's volatile keys and cached reads.
#[derive(Debug, Default)]
pub struct Memory {
    volatile: Mutex<Volatile>,
    cache: Mutex<Cache>,
}

/// The writes of a commit: key and new value (`None`: delete).
pub type Writes<'a> = &'a [(String, Option<Vec<u8>>)];

impl Memory {
    /// A volatile key's value.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.volatile).map.get(key).cloned()
    }

    /// Bytes the volatile keys use (keys plus values).
    pub fn volatile_bytes(&self) -> u64 {
        lock(&self.volatile).bytes
    }

    /// Apply `writes` to volatile keys when every `checks` entry holds (`None`: absent) and the
    /// result stays within `quota` bytes; all or nothing. `Ok(false)`: a check failed.
    /// `Err(bytes)`: the writes would use `bytes`, over the quota.
    pub fn commit(
        &self,
        checks: &[(String, Option<Vec<u8>>)],
        writes: Writes<'_>,
        quota: u64,
    ) -> Result<bool, u64> {
        let mut v = lock(&self.volatile);
        if checks.iter().any(|(k, want)| v.map.get(k) != want.as_ref()) {
            return Ok(false);
        }
        let mut after = v.bytes;
        for (k, new) in writes {
            if let Some(old) = v.map.get(k) {
                after -= (k.len() + old.len()) as u64;
            }
            if let Some(n) = new {
                after += (k.len() + n.len()) as u64;
            }
        }
        if after > quota && after > v.bytes {
            return Err(after);
        }
        for (k, new) in writes {
            match new {
                Some(n) => {
                    v.map.insert(k.clone(), n.clone());
                }
                None => {
                    v.map.remove(k);
                }
            }
        }
        v.bytes = after;
        Ok(true)
    }

    /// Volatile keys under `prefix` after `after`, at most `limit`, in key order.
    pub fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Vec<(String, Vec<u8>)> {
        let v = lock(&self.volatile);
        let start = match after {
            Some(a) if a >= prefix => std::ops::Bound::Excluded(a.to_string()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        v.map
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, val)| (k.clone(), val.clone()))
            .collect()
    }

    /// A cached read: `Some(value)` on a hit (the value itself may be `None`: known absent),
    /// or `Err(generation)` on a miss, to hand back to [`Memory::fill`].
    pub fn cached(&self, key: &str) -> Result<Option<Vec<u8>>, u64> {
        let c = lock(&self.cache);
        match c.map.get(key) {
            Some(v) => Ok(v.clone()),
            None => Err(c.generation),
        }
    }

    /// Keep what a missed read found in the database, unless a write came in since the miss
    /// (`generation` from [`Memory::cached`]).
    pub fn fill(&self, key: &str, value: &Option<Vec<u8>>, generation: u64) {
        let mut c = lock(&self.cache);
        if c.generation != generation {
            return;
        }
        if c.map.len() >= MAX_CACHED {
            c.map.clear();
        }
        c.map.insert(key.to_string(), value.clone());
    }

    /// A cached key was written: `Some(value)` is what the database now holds for sure,
    /// `None` when that is not known (a failed or refused write), which forgets the copy.
    pub fn wrote(&self, key: &str, now: Option<Option<Vec<u8>>>) {
        let mut c = lock(&self.cache);
        c.generation += 1;
        match now {
            Some(v) if c.map.len() < MAX_CACHED => {
                c.map.insert(key.to_string(), v);
            }
            _ => {
                c.map.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(k: &str, v: Option<&[u8]>) -> (String, Option<Vec<u8>>) {
        (k.to_string(), v.map(<[u8]>::to_vec))
    }

    #[test]
    fn volatile_commits_are_checked_atomic_and_within_the_quota() {
        let m = Memory::default();
        assert_eq!(m.commit(&[], &[w("txn/a", Some(b"12345"))], 100), Ok(true));
        assert_eq!(m.volatile_bytes(), 10);
        // A failed check writes nothing.
        assert_eq!(
            m.commit(&[w("txn/a", None)], &[w("txn/b", Some(b"x"))], 100),
            Ok(false)
        );
        assert_eq!(m.get("txn/b"), None);
        // Over the quota: refused, nothing written.
        assert_eq!(m.commit(&[], &[w("txn/c", Some(&[0; 100]))], 100), Err(115));
        assert_eq!(m.get("txn/c"), None);
        // Replacing and deleting give the bytes back.
        assert_eq!(m.commit(&[], &[w("txn/a", Some(b"1"))], 100), Ok(true));
        assert_eq!(m.volatile_bytes(), 6);
        assert_eq!(
            m.commit(&[w("txn/a", Some(b"1"))], &[w("txn/a", None)], 100),
            Ok(true)
        );
        assert_eq!(m.volatile_bytes(), 0);
    }

    #[test]
    fn scans_keep_to_their_prefix_and_cursor() {
        let m = Memory::default();
        for k in ["t/1", "t/2", "t/3", "u/1"] {
            m.commit(&[], &[w(k, Some(b"v"))], 1000).unwrap();
        }
        let keys = |v: Vec<(String, Vec<u8>)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(keys(m.scan("t/", None, 10)), ["t/1", "t/2", "t/3"]);
        assert_eq!(keys(m.scan("t/", Some("t/1"), 1)), ["t/2"]);
        assert_eq!(keys(m.scan("t/", Some("a"), 10)), ["t/1", "t/2", "t/3"]);
        assert!(m.scan("t/", Some("t/3"), 10).is_empty());
        assert_eq!(keys(m.scan("", None, 10)), ["t/1", "t/2", "t/3", "u/1"]);
    }

    #[test]
    fn a_read_racing_a_write_never_keeps_the_old_value() {
        let m = Memory::default();
        // Miss, then a write lands before the database answer is kept: the (old) answer is
        // dropped.
        let generation = m.cached("reg/a").unwrap_err();
        m.wrote("reg/a", Some(Some(b"new".to_vec())));
        m.fill("reg/a", &Some(b"old".to_vec()), generation);
        assert_eq!(m.cached("reg/a"), Ok(Some(b"new".to_vec())));
        // A plain miss is kept, absent values too.
        let generation = m.cached("reg/b").unwrap_err();
        m.fill("reg/b", &None, generation);
        assert_eq!(m.cached("reg/b"), Ok(None));
        // An unknown outcome forgets the copy.
        m.wrote("reg/a", None);
        assert!(m.cached("reg/a").is_err());
    }

    #[test]
    fn one_store_per_plugin_shared_by_its_loads() {
        let stores = MemoryStores::default();
        let a = stores.for_plugin("sip");
        a.commit(&[], &[w("txn/x", Some(b"1"))], 100).unwrap();
        assert_eq!(stores.for_plugin("sip").get("txn/x"), Some(b"1".to_vec()));
        assert_eq!(stores.for_plugin("eas").get("txn/x"), None);
    }
}
