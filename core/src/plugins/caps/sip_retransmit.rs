//! Client transactions over UDP for the requests a SIP frontend sends (a MESSAGE forked to a
//! contact, a queued delivery, a NOTIFY): RFC 3261 §17.1.2 timer E. UDP loses datagrams, and
//! the plugin is called once per message and keeps nothing in memory, so the core resends the
//! request at T1 = 500 ms, doubling up to T2 = 4 s, until a response carrying the request's
//! top Via branch comes back (any response ends it: the plugin handles what it says) or
//! timer F (64·T1 = 32 s) gives up. Streams need none of this (TCP retransmits).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

/// RFC 3261 T1.
const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2.
const T2: Duration = Duration::from_secs(4);
/// Timer F: 64·T1.
const GIVE_UP: Duration = Duration::from_secs(32);
/// Transactions tracked at most; beyond, requests go out once (a flood must not grow memory).
const MAX_PENDING: usize = 100_000;

/// The delays before each resend: T1, 2·T1, … capped at T2, within timer F.
pub fn schedule() -> impl Iterator<Item = Duration> {
    let mut total = Duration::ZERO;
    let mut next = T1;
    std::iter::from_fn(move || {
        if total + next > GIVE_UP {
            return None;
        }
        total += next;
        let this = next;
        next = (next * 2).min(T2);
        Some(this)
    })
}

/// Open client transactions by branch.
#[derive(Debug, Default)]
pub struct Retransmits {
    pending: Mutex<HashMap<String, (u64, AbortHandle)>>,
    next_id: AtomicU64,
}

impl Retransmits {
    /// Resend `message` to `target` from `socket` on timer E until [`Retransmits::answered`]
    /// names `branch`. A second request with the same branch replaces the first.
    pub fn start(
        self: &Arc<Self>,
        socket: Arc<UdpSocket>,
        target: SocketAddr,
        message: Bytes,
        branch: String,
    ) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() >= MAX_PENDING && !pending.contains_key(&branch) {
            metrics::counter!("sip_retransmit_skipped_total").increment(1);
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let me = Arc::downgrade(self);
        let key = branch.clone();
        let task = tokio::spawn(async move {
            for delay in schedule() {
                tokio::time::sleep(delay).await;
                if socket.send_to(&message, target).await.is_ok() {
                    metrics::counter!("sip_retransmissions_total").increment(1);
                }
            }
            metrics::counter!("sip_transactions_timed_out_total").increment(1);
            if let Some(me) = me.upgrade() {
                me.forget(&key, id);
            }
        });
        if let Some((_, older)) = pending.insert(branch, (id, task.abort_handle())) {
            older.abort();
        }
    }

    /// A response with this top Via branch arrived: stop resending. True when it ended one.
    pub fn answered(&self, branch: &str) -> bool {
        let removed = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(branch);
        match removed {
            Some((_, task)) => {
                task.abort();
                true
            }
            None => false,
        }
    }

    /// Transactions still waiting for a response.
    pub fn pending(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn forget(&self, branch: &str, id: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.get(branch).is_some_and(|(i, _)| *i == id) {
            pending.remove(branch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_e_doubles_to_t2_and_stops_at_timer_f() {
        let delays: Vec<u64> = schedule().map(|d| d.as_millis() as u64).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000],
            "RFC 3261 §17.1.2.2: 500 ms doubling to 4 s, within 32 s"
        );
        assert!(delays.iter().sum::<u64>() <= 32_000);
    }

    /// Our socket, a peer's, its address, and an empty tracker.
    async fn setup() -> (Arc<UdpSocket>, UdpSocket, SocketAddr, Arc<Retransmits>) {
        let server = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = client.local_addr().unwrap();
        (server, client, target, Arc::default())
    }

    #[tokio::test]
    async fn resends_until_answered() {
        let (server, client, target, r) = setup().await;
        r.start(
            server.clone(),
            target,
            Bytes::from_static(b"MESSAGE"),
            "z9hG4bK1".into(),
        );
        assert_eq!(r.pending(), 1);
        let mut buf = [0u8; 64];
        // Two resends (after 0.5 s and 1.5 s), then the answer ends it.
        for _ in 0..2 {
            let (n, _) = client.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"MESSAGE");
        }
        assert!(r.answered("z9hG4bK1"));
        assert!(!r.answered("z9hG4bK1"), "answered once");
        assert_eq!(r.pending(), 0);
        // The next resend would come 2 s after the second: none may arrive.
        let nothing = tokio::time::timeout(Duration::from_secs(3), client.recv_from(&mut buf));
        assert!(nothing.await.is_err(), "resent after the answer");
    }

    #[tokio::test]
    async fn a_second_request_with_the_branch_replaces_the_first() {
        let (server, client, target, r) = setup().await;
        r.start(
            server.clone(),
            target,
            Bytes::from_static(b"one"),
            "z9hG4bK3".into(),
        );
        r.start(
            server,
            target,
            Bytes::from_static(b"two"),
            "z9hG4bK3".into(),
        );
        assert_eq!(r.pending(), 1);
        let mut buf = [0u8; 64];
        let (n, _) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"two");
        assert!(r.answered("z9hG4bK3"));
    }
}
