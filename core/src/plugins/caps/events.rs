//! Change notifications and parked requests. A plugin publishes `topic:rest` keys; requests
//! parked by HTTP frontends (EAS Ping, MAPI NotificationWait) wait here on the keys they
//! watch — holding no plugin instance, only a small slot — until a key fires, their
//! timeout passes, or a newer request of the same group (a device) supersedes them.
//!
//! In-process for one node. A cluster would feed `publish` from PostgreSQL LISTEN/NOTIFY or
//! NATS; the waiting side stays as it is.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_sdk::Error;
use tokio::sync::Notify;

/// Why a parked wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// These watched keys fired.
    Fired(Vec<String>),
    /// Nothing fired before the timeout.
    TimedOut,
    /// A newer wait of the same group replaced this one.
    Superseded,
}

#[derive(Debug, Default)]
struct Slot {
    fired: Mutex<Vec<String>>,
    superseded: std::sync::atomic::AtomicBool,
    notify: Notify,
}

#[derive(Debug, Default)]
struct Tables {
    by_key: HashMap<String, HashMap<u64, Arc<Slot>>>,
    by_group: HashMap<String, (u64, Arc<Slot>)>,
}

/// The event hub: one per server, shared across reloads.
#[derive(Debug, Default)]
pub struct EventHub {
    tables: Mutex<Tables>,
    next_id: AtomicU64,
    parked: AtomicU64,
}

/// Removes a wait's registrations however the wait ends (including the client hanging up,
/// which drops the future).
struct Registration<'a> {
    hub: &'a EventHub,
    id: u64,
    keys: Vec<String>,
    group: Option<String>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut t = self.hub.tables.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            if let Some(waiters) = t.by_key.get_mut(key) {
                waiters.remove(&self.id);
                if waiters.is_empty() {
                    t.by_key.remove(key);
                }
            }
        }
        if let Some(g) = &self.group {
            if t.by_group.get(g).is_some_and(|(id, _)| *id == self.id) {
                t.by_group.remove(g);
            }
        }
        self.hub.parked.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("switchboard_parked_requests").decrement(1.0);
    }
}

impl EventHub {
    /// A new, empty hub.
    pub fn new() -> EventHub {
        EventHub::default()
    }

    /// Announce that `key` changed: wakes every wait watching it. Returns how many woke.
    pub fn publish(&self, key: &str) -> usize {
        let waiters: Vec<Arc<Slot>> = {
            let t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
            match t.by_key.get(key) {
                Some(w) => w.values().cloned().collect(),
                None => return 0,
            }
        };
        for slot in &waiters {
            slot.fired
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(key.to_string());
            slot.notify.notify_one();
        }
        metrics::counter!("switchboard_events_published_total").increment(1);
        waiters.len()
    }

    /// Requests parked right now.
    pub fn parked(&self) -> u64 {
        self.parked.load(Ordering::Relaxed)
    }

    /// Wait until one of `keys` fires, `timeout` passes, or a newer wait with the same
    /// `group` starts.
    pub async fn wait(
        &self,
        keys: &[String],
        timeout: Duration,
        group: Option<&str>,
    ) -> WaitOutcome {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        let unique: HashSet<&String> = keys.iter().collect();
        {
            let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
            for key in &unique {
                t.by_key
                    .entry((*key).clone())
                    .or_default()
                    .insert(id, slot.clone());
            }
            if let Some(g) = group {
                if let Some((_, older)) = t.by_group.insert(g.to_string(), (id, slot.clone())) {
                    older.superseded.store(true, Ordering::Relaxed);
                    older.notify.notify_one();
                }
            }
        }
        self.parked.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("switchboard_parked_requests").increment(1.0);
        let _registration = Registration {
            hub: self,
            id,
            keys: unique.into_iter().cloned().collect(),
            group: group.map(str::to_string),
        };
        let woke = tokio::time::timeout(timeout, slot.notify.notified()).await;
        if slot.superseded.load(Ordering::Relaxed) {
            return WaitOutcome::Superseded;
        }
        let fired = std::mem::take(&mut *slot.fired.lock().unwrap_or_else(|p| p.into_inner()));
        match woke {
            Ok(()) if !fired.is_empty() => WaitOutcome::Fired(fired),
            // A publish can land between the timeout and this check; report it rather than
            // lose it.
            Err(_) if !fired.is_empty() => WaitOutcome::Fired(fired),
            _ => WaitOutcome::TimedOut,
        }
    }
}

/// Whether plugin `plugin` may publish `key`: its topic (before the first `:`) must be one of
/// the manifest's `capabilities.events`.
pub fn check_topic(plugin: &str, topics: &[String], key: &str) -> Result<(), Error> {
    let topic = key.split_once(':').map(|(t, _)| t).unwrap_or("");
    if topics.iter().any(|t| t == topic) {
        return Ok(());
    }
    Err(Error::Denied(format!(
        "plugin {plugin} may not publish {key:?}: topic {topic:?} is not in its manifest's capabilities.events"
    )))
}

/// What a native plugin's background publisher points at: the hub and the plugin's grant.
/// Handed out by address ([`Notifier::for_plugin`]) and never freed, because a plugin's
/// threads may hold the address for as long as its code is loaded; one small value per
/// plugin and hub, reused across calls.
#[derive(Debug)]
pub struct Notifier {
    hub: Arc<EventHub>,
    plugin: String,
    topics: Vec<String>,
}

impl Notifier {
    /// The notifier of `plugin` with these topics on `hub`, made once.
    pub fn for_plugin(hub: &Arc<EventHub>, plugin: &str, topics: &[String]) -> &'static Notifier {
        static MADE: Mutex<Vec<&'static Notifier>> = Mutex::new(Vec::new());
        let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = made
            .iter()
            .find(|n| Arc::ptr_eq(&n.hub, hub) && n.plugin == plugin && n.topics == topics)
        {
            return n;
        }
        let n: &'static Notifier = Box::leak(Box::new(Notifier {
            hub: hub.clone(),
            plugin: plugin.to_string(),
            topics: topics.to_vec(),
        }));
        made.push(n);
        n
    }

    /// Publish `key` if the grant allows it.
    pub fn publish(&self, key: &str) -> Result<usize, Error> {
        check_topic(&self.plugin, &self.topics, key)?;
        Ok(self.hub.publish(key))
    }

    /// The ABI pair (context address, [`switchboard_sdk::abi::PublishFn`] address) for
    /// `HostCall::EventsPublisher`.
    pub fn abi_pair(&'static self) -> (u64, u64) {
        let publish: switchboard_sdk::abi::PublishFn = notifier_publish;
        (
            self as *const Notifier as usize as u64,
            publish as usize as u64,
        )
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn notifier_publish(
    notifier: *const std::ffi::c_void,
    key: *const u8,
    len: usize,
) -> u32 {
    // SAFETY: `notifier` is a leaked `Notifier` (see `abi_pair`), and the plugin passes a
    // buffer of `len` readable bytes for the duration of this call.
    let (n, bytes) = unsafe {
        (
            &*(notifier as *const Notifier),
            std::slice::from_raw_parts(key, len),
        )
    };
    let Ok(key) = std::str::from_utf8(bytes) else {
        return 1;
    };
    match n.publish(key) {
        Ok(_) => 0,
        Err(e) => {
            tracing::warn!(plugin = %n.plugin, "background publish refused: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_publish_wakes_a_thousand_waiters_and_cleans_up() {
        let hub = Arc::new(EventHub::new());
        let mut tasks = Vec::new();
        for i in 0..1000 {
            let hub = hub.clone();
            let keys = vec!["mailbox:a@x/inbox".to_string(), format!("own:{i}")];
            tasks.push(tokio::spawn(async move {
                hub.wait(&keys, Duration::from_secs(60), None).await
            }));
        }
        while hub.parked() < 1000 {
            tokio::task::yield_now().await;
        }
        assert_eq!(hub.publish("mailbox:a@x/inbox"), 1000);
        for t in tasks {
            assert_eq!(
                t.await.unwrap(),
                WaitOutcome::Fired(vec!["mailbox:a@x/inbox".into()])
            );
        }
        assert_eq!(hub.parked(), 0);
        assert!(hub.tables.lock().unwrap().by_key.is_empty());
    }

    #[tokio::test]
    async fn timeout_and_unrelated_keys() {
        let hub = EventHub::new();
        let keys = vec!["a".to_string()];
        let (outcome, woke) =
            tokio::join!(hub.wait(&keys, Duration::from_millis(300), None), async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                hub.publish("b")
            });
        assert_eq!(woke, 0);
        assert_eq!(outcome, WaitOutcome::TimedOut);
    }

    #[tokio::test]
    async fn newer_wait_of_the_same_group_supersedes_the_older() {
        let hub = Arc::new(EventHub::new());
        let h = hub.clone();
        let older = tokio::spawn(async move {
            h.wait(
                &["k".to_string()],
                Duration::from_secs(60),
                Some("device-1"),
            )
            .await
        });
        while hub.parked() < 1 {
            tokio::task::yield_now().await;
        }
        let h = hub.clone();
        let newer = tokio::spawn(async move {
            h.wait(
                &["k".to_string()],
                Duration::from_secs(60),
                Some("device-1"),
            )
            .await
        });
        assert_eq!(older.await.unwrap(), WaitOutcome::Superseded);
        while hub.parked() < 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(hub.publish("k"), 1);
        assert_eq!(newer.await.unwrap(), WaitOutcome::Fired(vec!["k".into()]));
    }

    #[tokio::test]
    async fn dropped_wait_unregisters() {
        let hub = EventHub::new();
        let keys = vec!["k".to_string()];
        let fut = hub.wait(&keys, Duration::from_secs(60), Some("g"));
        let _ = tokio::time::timeout(Duration::from_millis(10), fut).await;
        assert_eq!(hub.parked(), 0);
        assert_eq!(hub.publish("k"), 0);
        assert!(hub.tables.lock().unwrap().by_group.is_empty());
    }
}
