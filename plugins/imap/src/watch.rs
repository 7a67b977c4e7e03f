//! Watching a user's folders while an ActiveSync Ping is parked, so mail delivered to the IMAP
//! server by anyone else wakes the phone at once instead of at the Ping's timeout.
//!
//! One watch per user, one IMAP connection each, on the connector runtime: IDLE (RFC 2177) on
//! the Inbox (or the first folder watched when the Inbox is not), and every `watch_poll_secs`
//! a STATUS of the other watched folders, compared with the previous answer. Servers without
//! IDLE get a NOOP poll on the same interval instead. A change publishes
//! `mailbox:{user@domain}/{folder}` through the plugin's background publisher, which is what
//! the parked Ping waits on. Every Ping extends its user's watch to its own timeout (and adds
//! folders); a watch nobody extends ends at its deadline and logs out. The connection is
//! re-opened after a failure, with a growing pause, until the deadline.
//!
//! CalDAV/CardDAV folders (`dav:` ids) are not watched: DAV has no push, and their changes are
//! seen at the phone's next Sync.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use switchboard_sdk::host::events::Publisher;
use switchboard_sdk::mail::folder_event;
use switchboard_sdk::Principal;
use tokio::sync::Notify;

use crate::error::Result;
use crate::imap::{Session, Target};
use crate::runtime;

/// IDLE is re-issued this often: RFC 2177 has servers drop an IDLE after 30 minutes.
const IDLE_REFRESH: Duration = Duration::from_secs(25 * 60);
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One user's watch, shared by the registry and its task.
struct UserWatch {
    who: Principal,
    until: Mutex<Instant>,
    folders: Mutex<BTreeSet<String>>,
    /// Bumped when `folders` grows, so the task re-plans.
    generation: AtomicU64,
    /// Wakes the task out of IDLE or its poll pause when `generation` moved.
    replan: Notify,
    publisher: Mutex<Publisher>,
}

impl UserWatch {
    fn left(&self) -> Duration {
        lock(&self.until).saturating_duration_since(Instant::now())
    }

    fn publish(&self, folder: &str) {
        let publisher = *lock(&self.publisher);
        publisher.publish(&folder_event(&self.who, folder));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Watches by user (server and address).
fn registry() -> &'static Mutex<HashMap<String, Arc<UserWatch>>> {
    static WATCHES: OnceLock<Mutex<HashMap<String, Arc<UserWatch>>>> = OnceLock::new();
    WATCHES.get_or_init(Default::default)
}

/// Users being watched right now.
pub fn active() -> usize {
    lock(registry()).len()
}

/// What [`start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A new watch (and connection) for this user.
    New,
    /// The user's running watch now lasts longer and/or covers more folders.
    Extended,
    /// `max` users are watched already; this one is not.
    Full,
    /// No IMAP folder among those asked for.
    Nothing,
}

/// How a watch runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Use IDLE when the server offers it.
    pub idle: bool,
    /// STATUS / NOOP interval.
    pub poll: Duration,
    /// Most users watched at once.
    pub max: usize,
}

/// Watch `folders` (IMAP folder ids) of `who` on `target` for `timeout`, publishing with
/// `publisher`. Returns at once; the watching runs on the connector runtime.
pub fn start(
    who: &Principal,
    target: Target,
    folders: &[String],
    timeout: Duration,
    plan: Plan,
    publisher: Publisher,
) -> Result<Started> {
    let folders: BTreeSet<String> = folders.iter().cloned().collect();
    if folders.is_empty() {
        return Ok(Started::Nothing);
    }
    let until = Instant::now() + timeout;
    let key = format!(
        "{}:{}/{}",
        target.host,
        target.port,
        who.address().to_lowercase()
    );
    let mut watches = lock(registry());
    if let Some(w) = watches.get(&key) {
        *lock(&w.publisher) = publisher;
        {
            let mut u = lock(&w.until);
            *u = (*u).max(until);
        }
        let grew = {
            let mut f = lock(&w.folders);
            let before = f.len();
            f.extend(folders);
            f.len() != before
        };
        if grew {
            w.generation.fetch_add(1, Ordering::Relaxed);
            w.replan.notify_one();
        }
        return Ok(Started::Extended);
    }
    if watches.len() >= plan.max {
        return Ok(Started::Full);
    }
    let w = Arc::new(UserWatch {
        who: who.clone(),
        until: Mutex::new(until),
        folders: Mutex::new(folders),
        generation: AtomicU64::new(0),
        replan: Notify::new(),
        publisher: Mutex::new(publisher),
    });
    watches.insert(key.clone(), w.clone());
    drop(watches);
    // The receiver is dropped: nobody waits for a watch to end.
    let started = runtime::spawn(run(key.clone(), w, target, plan));
    if let Err(e) = started {
        lock(registry()).remove(&key);
        return Err(e);
    }
    Ok(Started::New)
}

/// The watch task: sessions until the deadline, then out of the registry.
async fn run(key: String, w: Arc<UserWatch>, target: Target, plan: Plan) {
    let mut pause = Duration::from_secs(1);
    loop {
        let left = w.left();
        if left.is_zero() {
            // `start` extends deadlines under this lock, so an extension either happened
            // before this check (and we go on) or finds the entry gone (and starts anew).
            let mut watches = lock(registry());
            if w.left().is_zero() {
                if watches.get(&key).is_some_and(|x| Arc::ptr_eq(x, &w)) {
                    watches.remove(&key);
                }
                return;
            }
            continue;
        }
        match session(&w, &target, plan).await {
            Ok(()) => pause = Duration::from_secs(1),
            // Lost connection, server restart, a folder deleted meanwhile: try again shortly,
            // within the deadline (nothing is published that did not happen).
            Err(_) => {
                tokio::time::sleep(pause.min(left)).await;
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One connection's life: returns Ok when the deadline passed, Err when the connection failed.
async fn session(w: &UserWatch, target: &Target, plan: Plan) -> Result<()> {
    let mut s = Session::open(target).await?;
    let idle = plan.idle && s.has("IDLE");
    loop {
        let generation = w.generation.load(Ordering::Relaxed);
        let folders: Vec<String> = lock(&w.folders).iter().cloned().collect();
        let Some(primary) = folders
            .iter()
            .find(|f| f.eq_ignore_ascii_case("INBOX"))
            .or(folders.first())
            .cloned()
        else {
            return Ok(());
        };
        let others: Vec<String> = folders.into_iter().filter(|f| *f != primary).collect();
        s.select(&primary, false, true).await?;
        let mut seen: HashMap<String, String> = HashMap::new();
        for f in &others {
            seen.insert(f.clone(), s.status(f).await?);
        }
        while w.generation.load(Ordering::Relaxed) == generation {
            let left = w.left();
            if left.is_zero() {
                s.logout().await;
                return Ok(());
            }
            let slice = if idle && others.is_empty() {
                left.min(IDLE_REFRESH)
            } else {
                left.min(plan.poll)
            };
            let changed = if idle {
                s.idle(slice, &w.replan).await?
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(slice) => {}
                    _ = w.replan.notified() => {}
                }
                s.noop_changed().await?
            };
            if changed {
                w.publish(&primary);
            }
            for f in &others {
                let now = s.status(f).await?;
                if seen.get(f) != Some(&now) {
                    w.publish(f);
                    seen.insert(f.clone(), now);
                }
            }
        }
    }
}
