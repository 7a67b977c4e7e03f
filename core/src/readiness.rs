//! Readiness as a set of latches: every subsystem that must be up before the server takes
//! traffic registers a latch and releases it once initialised. `/readyz` is ready when all are.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Shared set of readiness latches.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    latches: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Readiness {
    /// Register a latch that starts closed (not ready).
    pub fn register(&self, name: &str) {
        self.lock().entry(name.to_string()).or_insert(false);
    }

    /// Mark a latch ready (registering it if needed).
    pub fn release(&self, name: &str) {
        self.lock().insert(name.to_string(), true);
    }

    /// Mark a latch not ready again (e.g. a subsystem failed).
    pub fn block(&self, name: &str) {
        self.lock().insert(name.to_string(), false);
    }

    /// Drop a latch that no longer exists (a frontend disabled by reload).
    pub fn remove(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Names of the latches still closed; empty means ready.
    pub fn pending(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// All latches with their state.
    pub fn snapshot(&self) -> BTreeMap<String, bool> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        // A poisoned lock only means a panic elsewhere while holding it; the map is still valid.
        self.latches.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_latch_is_released() {
        let r = Readiness::default();
        r.register("storage");
        r.register("http");
        assert_eq!(r.pending(), vec!["http", "storage"]);
        r.release("storage");
        r.release("http");
        assert!(r.pending().is_empty());
        r.block("http");
        assert_eq!(r.pending(), vec!["http"]);
        r.remove("http");
        assert!(r.pending().is_empty());
    }
}
