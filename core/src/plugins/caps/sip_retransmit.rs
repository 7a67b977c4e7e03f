//! Client transactions over UDP for the requests a SIP frontend sends (a MESSAGE forked to a
//! contact, a queued delivery, a NOTIFY): RFC 3261 §17.1.2 timer E. UDP loses datagrams, and
//! the plugin is called once per message and keeps nothing in memory, so the core resends the
//! request at T1 = 500 ms, doubling up to T2 = 4 s, until a response carrying the request's
//! top Via branch comes back (any response ends it: the plugin handles what it says) or
//! timer F (64·T1 = 32 s) gives up. Streams need none of this (TCP retransmits).
//!
//! One task serves every open transaction of a server: a transaction is an entry in a map by
//! branch plus an entry in a queue by due time ([`Schedule`], sans-IO), so starting one costs
//! a map insert and a queue push and ending one a map remove. The first resend of every
//! request is due T1 after it went out, so those entries arrive in due order and a FIFO
//! holds them (push and pop in O(1)); the later resends, of the few requests still
//! unanswered after T1, go into a heap. A task and a timer per request,
//! as before, cost a spawn, a timer registration and an abort (two task wake-ups) for every
//! forked MESSAGE, nearly all of which are answered within milliseconds.
//!
//! An answered transaction's queue entry is not searched for: it stays until it comes due and
//! is then skipped (its branch is gone, or names a newer transaction). The task wakes at most
//! once per [`TICK`], serving everything due by then, so those skipped entries cost no
//! wake-ups of their own; and the queues are compacted when skipped entries outnumber the
//! open transactions, so they stay bounded by [`MAX_PENDING`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// RFC 3261 T1.
const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2.
const T2: Duration = Duration::from_secs(4);
/// Timer F: 64·T1.
const GIVE_UP: Duration = Duration::from_secs(32);
/// Transactions tracked at most; beyond, requests go out once (a flood must not grow memory).
pub const MAX_PENDING: usize = 100_000;
/// The task's resolution: it sleeps at least this long between rounds, so resends due within
/// one tick go out together (a few ms late at most, against T1 = 500 ms).
pub const TICK: Duration = Duration::from_millis(10);
/// Skipped queue entries tolerated beyond the open transactions before a compaction.
const SLACK: usize = 4096;

/// The delay after the `n`-th send (0: the original) until the next resend.
fn delay_after(n: u32) -> Duration {
    T1.checked_mul(1 << n.min(8)).map_or(T2, |d| d.min(T2))
}

/// What [`Schedule::start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A new transaction is tracked.
    Tracked,
    /// It replaced an open transaction with the same branch.
    Replaced,
    /// Not tracked: [`MAX_PENDING`] transactions are open.
    Full,
}

/// What came due in [`Schedule::due`].
#[derive(Debug, PartialEq, Eq)]
pub enum Due<T> {
    /// Send the request again.
    Resend(T),
    /// Timer F fired: the transaction is dropped unanswered.
    TimedOut,
}

#[derive(Debug)]
struct Txn<T> {
    id: u64,
    started: Instant,
    /// Sends so far (1: only the original).
    sends: u32,
    request: T,
}

/// A queue entry: when, which transaction, its branch.
type Entry = (Instant, u64, Arc<str>);

/// Open client transactions by branch, and when each next needs attention. Sans-IO: the
/// caller passes the time, and sends what [`Schedule::due`] returns.
#[derive(Debug)]
pub struct Schedule<T> {
    open: HashMap<Arc<str>, Txn<T>>,
    /// First resends, in due order: (due, transaction id, branch). Entries whose id is no
    /// longer open are skipped.
    first: VecDeque<Entry>,
    /// Later resends and timer F, earliest first; skipped alike.
    later: BinaryHeap<Reverse<Entry>>,
    next_id: u64,
    limit: usize,
}

impl<T: Clone> Default for Schedule<T> {
    fn default() -> Self {
        Schedule::with_limit(MAX_PENDING)
    }
}

impl<T: Clone> Schedule<T> {
    /// A schedule tracking at most `limit` open transactions.
    pub fn with_limit(limit: usize) -> Schedule<T> {
        Schedule {
            open: HashMap::new(),
            first: VecDeque::new(),
            later: BinaryHeap::new(),
            next_id: 0,
            limit,
        }
    }

    /// `request` was sent at `now` with top Via `branch`: resend it on timer E until
    /// [`Schedule::answered`]. A second request with the same branch replaces the first.
    /// Returns when it is first due.
    pub fn start(&mut self, branch: &str, request: T, now: Instant) -> (Started, Option<Instant>) {
        let replaced = self.open.contains_key(branch);
        if !replaced && self.open.len() >= self.limit {
            return (Started::Full, None);
        }
        let id = self.next_id;
        self.next_id += 1;
        let due = now + delay_after(0);
        let branch: Arc<str> = Arc::from(branch);
        self.open.insert(
            branch.clone(),
            Txn {
                id,
                started: now,
                sends: 1,
                request,
            },
        );
        // Out of order only if the clock went backwards.
        if self.first.back().is_none_or(|(last, _, _)| *last <= due) {
            self.first.push_back((due, id, branch));
        } else {
            self.later.push(Reverse((due, id, branch)));
        }
        self.compact();
        let started = if replaced {
            Started::Replaced
        } else {
            Started::Tracked
        };
        (started, Some(due))
    }

    /// A response with this top Via branch arrived: stop resending. The request, when it
    /// ended one.
    pub fn answered(&mut self, branch: &str) -> Option<T> {
        self.open.remove(branch).map(|t| t.request)
    }

    /// Open transactions.
    pub fn pending(&self) -> usize {
        self.open.len()
    }

    /// Queue entries, skipped ones included (tests: the queues stay bounded).
    pub fn queued(&self) -> usize {
        self.first.len() + self.later.len()
    }

    /// When the earliest queue entry comes due (it may turn out to be skipped).
    pub fn next_due(&self) -> Option<Instant> {
        let first = self.first.front().map(|(due, _, _)| *due);
        let later = self.later.peek().map(|Reverse((due, _, _))| *due);
        match (first, later) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The earliest entry if it is due at `now`, taken off its queue.
    fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        let first = self.first.front().map(|(due, _, _)| *due);
        let later = self.later.peek().map(|Reverse((due, _, _))| *due);
        match (first, later) {
            (Some(a), b) if a <= now && b.is_none_or(|b| a <= b) => self.first.pop_front(),
            (_, Some(b)) if b <= now => self.later.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Everything due at `now`, appended to `out`: resends (their next one scheduled) and
    /// timer F expiries (the transaction dropped).
    pub fn due(&mut self, now: Instant, out: &mut Vec<Due<T>>) {
        while let Some((due, id, branch)) = self.pop_due(now) {
            let Some(txn) = self.open.get_mut(&branch).filter(|t| t.id == id) else {
                continue; // answered, or replaced by a newer request with the branch
            };
            let give_up = txn.started + GIVE_UP;
            if due >= give_up {
                self.open.remove(&branch);
                out.push(Due::TimedOut);
                continue;
            }
            out.push(Due::Resend(txn.request.clone()));
            let next = (due + delay_after(txn.sends)).min(give_up);
            txn.sends += 1;
            self.later.push(Reverse((next, id, branch)));
        }
    }

    /// Drops skipped entries once they outnumber the open transactions by [`SLACK`]
    /// (amortised: each compaction halves the queues at least).
    fn compact(&mut self) {
        if self.queued() <= 2 * self.open.len() + SLACK {
            return;
        }
        let open = &self.open;
        let live = |id: &u64, branch: &Arc<str>| open.get(branch).is_some_and(|t| t.id == *id);
        self.first.retain(|(_, id, branch)| live(id, branch));
        self.later
            .retain(|Reverse((_, id, branch))| live(id, branch));
    }
}

/// How the plugin sent a request, which says who needs its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// `send-to`: every response goes to the plugin.
    Request,
    /// `relay-to`: a `2xx` is the core's to consume; other responses go to the plugin.
    Relay,
}

/// A request to resend: the socket it went out of, where to, its bytes, and how it was sent.
#[derive(Debug, Clone)]
struct Resend {
    socket: Arc<UdpSocket>,
    target: SocketAddr,
    message: Bytes,
    sent: Sent,
}

#[derive(Debug, Default)]
struct State {
    schedule: Schedule<Resend>,
    /// When the task wakes next on its own (`None`: it waits for a start, or is not running).
    armed: Option<Instant>,
    running: bool,
}

/// The open client transactions of a server and the task resending their requests.
#[derive(Debug, Default)]
pub struct Retransmits {
    state: Mutex<State>,
    /// Wakes the task for a transaction due before it would wake anyway (shared with the
    /// task, which holds the tracker itself only weakly).
    wake: Arc<Notify>,
}

impl Drop for Retransmits {
    fn drop(&mut self) {
        // The task sees the tracker gone and ends.
        self.wake.notify_one();
    }
}

impl Retransmits {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resend `message` to `target` from `socket` on timer E until [`Retransmits::answered`]
    /// names `branch`. A second request with the same branch replaces the first. Must run
    /// within a Tokio runtime (the first call starts the task).
    pub fn start(
        self: &Arc<Self>,
        socket: Arc<UdpSocket>,
        target: SocketAddr,
        message: Bytes,
        branch: &str,
        sent: Sent,
    ) {
        let request = Resend {
            socket,
            target,
            message,
            sent,
        };
        let mut state = self.lock();
        let (started, due) = state.schedule.start(branch, request, Instant::now());
        if started == Started::Full {
            drop(state);
            metrics::counter!("sip_retransmit_skipped_total").increment(1);
            return;
        }
        if !state.running {
            state.running = true;
            state.armed = due;
            tokio::spawn(run(Arc::downgrade(self), self.wake.clone()));
        } else if due.is_some_and(|d| state.armed.is_none_or(|a| d < a)) {
            state.armed = due;
            drop(state);
            self.wake.notify_one();
        }
    }

    /// A response with this top Via branch arrived: stop resending. How the request it
    /// answers was sent, when it ended one.
    pub fn answered(&self, branch: &str) -> Option<Sent> {
        self.lock().schedule.answered(branch).map(|r| r.sent)
    }

    /// Transactions still waiting for a response.
    pub fn pending(&self) -> usize {
        self.lock().schedule.pending()
    }
}

/// The resend task: each round takes what is due, sends it, and sleeps until the next due
/// entry (at least [`TICK`]) or until woken for an earlier one. Ends when the tracker is gone.
async fn run(tracker: Weak<Retransmits>, wake: Arc<Notify>) {
    let mut due = Vec::new();
    loop {
        let next = {
            let Some(me) = tracker.upgrade() else {
                return;
            };
            let mut state = me.lock();
            state.schedule.due(Instant::now(), &mut due);
            let next = state.schedule.next_due();
            state.armed = next;
            next
        };
        let mut timed_out = 0u64;
        for d in due.drain(..) {
            match d {
                Due::Resend(r) => {
                    if r.socket.send_to(&r.message, r.target).await.is_ok() {
                        metrics::counter!("sip_retransmissions_total").increment(1);
                    }
                }
                Due::TimedOut => timed_out += 1,
            }
        }
        if timed_out > 0 {
            metrics::counter!("sip_transactions_timed_out_total").increment(timed_out);
        }
        let earliest = tokio::time::Instant::now() + TICK;
        match next {
            Some(at) => {
                let at = tokio::time::Instant::from_std(at).max(earliest);
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_e_doubles_to_t2_and_stops_at_timer_f() {
        let delays: Vec<u64> = (0..10).map(|n| delay_after(n).as_millis() as u64).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000],
            "RFC 3261 §17.1.2.2: 500 ms doubling to 4 s"
        );
        assert_eq!(delay_after(40), T2, "no overflow for large counts");
    }

    /// Drives `s` from `t0` in 100 ms steps for `secs` seconds; the offsets (ms) at which
    /// something came due, and what.
    fn drive(
        s: &mut Schedule<&'static str>,
        t0: Instant,
        secs: u64,
    ) -> Vec<(u64, Due<&'static str>)> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for step in 0..=(secs * 10) {
            let at = Duration::from_millis(step * 100);
            s.due(t0 + at, &mut out);
            seen.extend(out.drain(..).map(|d| (at.as_millis() as u64, d)));
        }
        seen
    }

    #[test]
    fn resends_on_timer_e_and_gives_up_at_timer_f() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        assert_eq!(s.start("z9hG4bK1", "MESSAGE", t0).0, Started::Tracked);
        let seen = drive(&mut s, t0, 40);
        let resends: Vec<u64> = seen
            .iter()
            .filter(|(_, d)| *d == Due::Resend("MESSAGE"))
            .map(|(at, _)| *at)
            .collect();
        // 500 ms doubling to 4 s, each resend that fits before the 32 s give-up.
        let expected = [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
        ];
        assert_eq!(resends, expected);
        assert_eq!(seen.last(), Some(&(32_000, Due::TimedOut)), "{seen:?}");
        assert_eq!(s.pending(), 0);
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn an_answer_ends_the_resends() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        s.start("z9hG4bK1", "one", t0);
        s.start("z9hG4bK2", "two", t0);
        let mut out = Vec::new();
        s.due(t0 + Duration::from_millis(600), &mut out);
        assert_eq!(out, [Due::Resend("one"), Due::Resend("two")]);
        assert_eq!(s.answered("z9hG4bK1"), Some("one"));
        assert_eq!(s.answered("z9hG4bK1"), None, "answered once");
        assert_eq!(s.answered("z9hG4bKnever"), None);
        let seen = drive(&mut s, t0, 40);
        assert!(
            seen.iter().all(|(_, d)| *d != Due::Resend("one")),
            "{seen:?}"
        );
        assert_eq!(
            seen.iter()
                .filter(|(_, d)| *d == Due::Resend("two"))
                .count(),
            9
        );
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn a_second_request_with_the_branch_replaces_the_first() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        s.start("z9hG4bK3", "one", t0);
        let (started, _) = s.start("z9hG4bK3", "two", t0 + Duration::from_millis(200));
        assert_eq!(started, Started::Replaced);
        assert_eq!(s.pending(), 1);
        let mut out = Vec::new();
        s.due(t0 + Duration::from_millis(800), &mut out);
        assert_eq!(
            out,
            [Due::Resend("two")],
            "the first one's entry is skipped"
        );
        assert_eq!(s.answered("z9hG4bK3"), Some("two"));
    }

    #[test]
    fn resends_come_due_in_order_across_both_queues() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        s.start("a", "a", t0 + Duration::from_millis(300));
        // Started "earlier" than the last one (a clock step back): still served in order.
        s.start("b", "b", t0);
        s.start("c", "c", t0 + Duration::from_millis(400));
        let mut out = Vec::new();
        s.due(t0 + Duration::from_millis(850), &mut out);
        assert_eq!(out, [Due::Resend("b"), Due::Resend("a")]);
        out.clear();
        // b's second resend (1.5 s) comes after c's first (0.9 s).
        s.due(t0 + Duration::from_millis(1500), &mut out);
        assert_eq!(out, [Due::Resend("c"), Due::Resend("b")]);
        assert_eq!(
            s.next_due(),
            Some(t0 + Duration::from_millis(1800)),
            "a's second"
        );
    }

    #[test]
    fn bounded_in_transactions_and_heap_entries() {
        let mut s = Schedule::with_limit(10);
        let t0 = Instant::now();
        for i in 0..10 {
            assert_eq!(s.start(&format!("b{i}"), "m", t0).0, Started::Tracked);
        }
        assert_eq!(s.start("b10", "m", t0).0, Started::Full);
        assert_eq!(
            s.start("b3", "m", t0).0,
            Started::Replaced,
            "a known branch still may"
        );
        assert_eq!(s.pending(), 10);
        // Answered transactions leave their heap entries behind until compaction.
        for i in 0..(3 * SLACK) {
            let b = format!("x{i}");
            s.answered("b0");
            s.start(&b, "m", t0);
            s.answered(&b);
        }
        assert!(
            s.queued() <= 2 * (s.pending() + 1) + SLACK,
            "{} entries",
            s.queued()
        );
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
            "z9hG4bK1",
            Sent::Request,
        );
        assert_eq!(r.pending(), 1);
        let mut buf = [0u8; 64];
        // Two resends (after 0.5 s and 1.5 s), then the answer ends it.
        for _ in 0..2 {
            let (n, _) = client.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"MESSAGE");
        }
        assert_eq!(r.answered("z9hG4bK1"), Some(Sent::Request));
        assert_eq!(r.answered("z9hG4bK1"), None, "answered once");
        assert_eq!(r.pending(), 0);
        // The next resend would come 2 s after the second: none may arrive.
        let nothing = tokio::time::timeout(Duration::from_secs(3), client.recv_from(&mut buf));
        assert!(nothing.await.is_err(), "resent after the answer");
    }

    #[tokio::test]
    async fn a_request_due_earlier_wakes_the_task() {
        let (server, client, target, r) = setup().await;
        r.start(
            server.clone(),
            target,
            Bytes::from_static(b"one"),
            "z9hG4bK1",
            Sent::Request,
        );
        let mut buf = [0u8; 64];
        // After the first resend the task sleeps about 1 s for the next one...
        let (n, _) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"one");
        // ...and a new request, due in 0.5 s, must not wait for that.
        r.start(
            server.clone(),
            target,
            Bytes::from_static(b"two"),
            "z9hG4bK2",
            Sent::Relay,
        );
        let (n, _) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"two", "the earlier one first");
        assert_eq!(r.answered("z9hG4bK1"), Some(Sent::Request));
        assert_eq!(r.answered("z9hG4bK2"), Some(Sent::Relay));
    }

    #[tokio::test]
    async fn the_task_ends_with_the_tracker() {
        let (server, _client, target, r) = setup().await;
        r.start(
            server,
            target,
            Bytes::from_static(b"x"),
            "z9hG4bK1",
            Sent::Request,
        );
        let task = Arc::downgrade(&r.wake);
        drop(r);
        // The task held the only other reference to the wake-up; it is gone once the task is.
        for _ in 0..100 {
            if task.upgrade().is_none() {
                return;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the resend task outlived its tracker");
    }
}
