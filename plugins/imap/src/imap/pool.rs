//! Connections per mailbox login, reused across calls: at most `max` open at once per login
//! (callers wait up to the timeout for one), idle ones kept for a while. A pooled connection
//! that turns out dead (the server restarted, a NAT dropped it) is replaced once,
//! transparently.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::session::{Session, Target};
use crate::error::{ImapError, Result};

/// How long an idle connection is kept.
const IDLE_KEEP: Duration = Duration::from_secs(300);

/// A boxed future borrowing the session.
pub type OpFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

struct Entry {
    idle: Vec<Session>,
    permits: Arc<Semaphore>,
}

/// The pool.
#[derive(Default)]
pub struct Pool {
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

/// The process-wide pool.
pub fn global() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::default)
}

/// Connections are shared only between calls with the same server, login and security
/// settings (a reload that changes the TLS mode, the CA or the password gets new ones). The
/// password enters as a hash; keys are never logged anyway.
fn key(t: &Target) -> String {
    use sha2::Digest;
    let pw = sha2::Sha256::digest(t.password.as_bytes());
    format!(
        "{}:{}/{}/{:?}/{}/{:02x}{:02x}{:02x}{:02x}",
        t.host,
        t.port,
        t.login,
        t.tls,
        t.ca_file.as_deref().unwrap_or(""),
        pw[0],
        pw[1],
        pw[2],
        pw[3]
    )
}

impl Pool {
    fn permits(&self, key: &str, max: usize) -> Arc<Semaphore> {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(key.to_string()).or_insert_with(|| Entry {
            idle: Vec::new(),
            permits: Arc::new(Semaphore::new(max.max(1))),
        });
        entry.permits.clone()
    }

    fn pop_idle(&self, key: &str) -> Option<Session> {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get_mut(key)?;
        entry.idle.retain(|s| s.last_used.elapsed() < IDLE_KEEP);
        entry.idle.pop()
    }

    fn give_back(&self, key: &str, s: Session) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = map.get_mut(key) {
            entry.idle.push(s);
        }
    }

    /// Run `op` on a connection for `t`. With `retry`, an operation that failed because a
    /// reused connection was dead runs once more on a fresh one (only for operations that
    /// are safe to repeat).
    pub async fn run<T, F>(&self, t: &Target, max: usize, retry: bool, mut op: F) -> Result<T>
    where
        F: for<'a> FnMut(&'a mut Session) -> OpFuture<'a, T>,
    {
        let k = key(t);
        let permits = self.permits(&k, max);
        let _permit = tokio::time::timeout(t.timeout, permits.acquire_owned())
            .await
            .map_err(|_| ImapError::Busy(max))?
            .map_err(|_| ImapError::Busy(max))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (mut s, reused) = match self.pop_idle(&k) {
                Some(s) => (s, true),
                None => (Session::open(t).await?, false),
            };
            match op(&mut s).await {
                Ok(v) => {
                    self.give_back(&k, s);
                    return Ok(v);
                }
                Err(e) if e.is_connection() => {
                    drop(s);
                    if reused && retry && attempt < 3 {
                        continue;
                    }
                    return Err(e);
                }
                Err(e) => {
                    self.give_back(&k, s);
                    return Err(e);
                }
            }
        }
    }
}
