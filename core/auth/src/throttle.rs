//! Failed-login throttling, counted separately per login name and per source address.
//!
//! Memory is bounded by `max_tracked`: an attacker spraying random user names fills the table,
//! then expired entries are dropped first and, if that is not enough, the least recently seen
//! tenth — so the table never grows past the bound, and active lockouts are the last to go.
//! IPv6 sources are counted per /64, since one client usually holds a whole /64.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Throttling limits.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures per login within `window` before that login is locked out.
    pub max_failures_per_user: u32,
    /// Failures per source address within `window` before the address is locked out.
    pub max_failures_per_address: u32,
    /// Counting window.
    pub window: Duration,
    /// Lockout length.
    pub lockout: Duration,
    /// Most logins + addresses tracked at once.
    pub max_tracked: usize,
}

/// Which counter blocked a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedBy {
    /// Too many failures for this login.
    User,
    /// Too many failures from this address.
    Address,
}

/// The answer of [`Throttle::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleVerdict {
    /// Go ahead and check the credentials.
    Allowed,
    /// Refuse without checking.
    Blocked {
        /// When to try again.
        retry_after: Duration,
        /// Which counter tripped.
        reason: BlockedBy,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
    last_seen: Instant,
}

#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let until = self.map.get(key)?.locked_until?;
        (until > now).then(|| until - now)
    }

    fn fail(&mut self, key: K, max: u32, cfg: &ThrottleConfig, now: Instant) {
        let e = self.map.entry(key).or_insert(Entry {
            window_start: now,
            failures: 0,
            locked_until: None,
            last_seen: now,
        });
        if now.duration_since(e.window_start) > cfg.window {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_seen = now;
        if e.failures >= max {
            e.locked_until = Some(now + cfg.lockout);
            e.failures = 0;
            e.window_start = now;
        }
    }

    fn evict(&mut self, keep: usize, cfg: &ThrottleConfig, now: Instant) {
        if self.map.len() <= keep {
            return;
        }
        self.map.retain(|_, e| {
            e.locked_until.is_some_and(|u| u > now)
                || now.duration_since(e.window_start) <= cfg.window
        });
        if self.map.len() > keep {
            // Still full of live entries: drop the least recently seen, unlocked first.
            let mut order: Vec<(bool, Instant, K)> = self
                .map
                .iter()
                .map(|(k, e)| {
                    (
                        e.locked_until.is_some_and(|u| u > now),
                        e.last_seen,
                        k.clone(),
                    )
                })
                .collect();
            order.sort_by_key(|e| (e.0, e.1));
            let excess = self.map.len() - keep;
            for (_, _, k) in order.into_iter().take(excess) {
                self.map.remove(&k);
            }
        }
    }
}

#[derive(Debug)]
struct State {
    users: Table<String>,
    addrs: Table<IpAddr>,
}

/// Failed-login throttle. Cheap to call; thread-safe.
#[derive(Debug)]
pub struct Throttle {
    cfg: ThrottleConfig,
    state: Mutex<State>,
}

fn addr_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].iter_mut().for_each(|s| *s = 0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(cfg: ThrottleConfig) -> Self {
        Self {
            cfg,
            state: Mutex::new(State {
                users: Table {
                    map: HashMap::new(),
                },
                addrs: Table {
                    map: HashMap::new(),
                },
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May this login from this address try now?
    pub fn check(&self, user: &str, addr: IpAddr, now: Instant) -> ThrottleVerdict {
        let s = self.lock();
        if let Some(retry_after) = s.users.blocked(&user.to_lowercase(), now) {
            return ThrottleVerdict::Blocked {
                retry_after,
                reason: BlockedBy::User,
            };
        }
        if let Some(retry_after) = s.addrs.blocked(&addr_key(addr), now) {
            return ThrottleVerdict::Blocked {
                retry_after,
                reason: BlockedBy::Address,
            };
        }
        ThrottleVerdict::Allowed
    }

    /// Count a failed login (pass an empty `user` when the header named none).
    pub fn record_failure(&self, user: &str, addr: IpAddr, now: Instant) {
        let cfg = &self.cfg;
        let mut s = self.lock();
        let budget = cfg.max_tracked.max(2);
        let (ucap, acap) = (budget / 2, budget - budget / 2);
        if !user.is_empty() {
            if s.users.map.len() >= ucap {
                s.users.evict(ucap - ucap / 10 - 1, cfg, now);
            }
            s.users
                .fail(user.to_lowercase(), cfg.max_failures_per_user, cfg, now);
        }
        if s.addrs.map.len() >= acap {
            s.addrs.evict(acap - acap / 10 - 1, cfg, now);
        }
        s.addrs
            .fail(addr_key(addr), cfg.max_failures_per_address, cfg, now);
    }

    /// A successful login clears the login's counter (not the address's: one good password
    /// must not reset a spraying attacker's count).
    pub fn record_success(&self, user: &str, _addr: IpAddr, _now: Instant) {
        self.lock().users.map.remove(&user.to_lowercase());
    }

    /// Logins + addresses tracked now.
    pub fn tracked(&self) -> usize {
        let s = self.lock();
        s.users.map.len() + s.addrs.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ThrottleConfig {
        ThrottleConfig {
            max_failures_per_user: 3,
            max_failures_per_address: 5,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(120),
            max_tracked: 1000,
        }
    }
    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn locks_a_user_after_n_failures_and_releases_after_lockout() {
        let t = Throttle::new(cfg());
        let now = Instant::now();
        for _ in 0..2 {
            t.record_failure("Alice", A, now);
        }
        assert_eq!(t.check("alice", A, now), ThrottleVerdict::Allowed);
        t.record_failure("alice", B, now);
        match t.check("ALICE", A, now) {
            ThrottleVerdict::Blocked {
                retry_after,
                reason,
            } => {
                assert_eq!(reason, BlockedBy::User);
                assert_eq!(retry_after, Duration::from_secs(120));
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(t.check("bob", A, now), ThrottleVerdict::Allowed);
        assert_eq!(
            t.check("alice", A, now + Duration::from_secs(121)),
            ThrottleVerdict::Allowed
        );
    }

    #[test]
    fn locks_an_address_spraying_many_users() {
        let t = Throttle::new(cfg());
        let now = Instant::now();
        for i in 0..5 {
            t.record_failure(&format!("u{i}"), A, now);
        }
        assert!(matches!(
            t.check("new", A, now),
            ThrottleVerdict::Blocked {
                reason: BlockedBy::Address,
                ..
            }
        ));
        assert_eq!(t.check("new", B, now), ThrottleVerdict::Allowed);
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = Throttle::new(cfg());
        let now = Instant::now();
        t.record_failure("a", A, now);
        t.record_failure("a", A, now);
        t.record_failure("a", A, now + Duration::from_secs(61));
        assert_eq!(
            t.check("a", A, now + Duration::from_secs(61)),
            ThrottleVerdict::Allowed
        );
    }

    #[test]
    fn success_clears_the_user_but_not_the_address() {
        let t = Throttle::new(cfg());
        let now = Instant::now();
        for _ in 0..2 {
            t.record_failure("a", A, now);
        }
        t.record_success("a", A, now);
        t.record_failure("a", A, now);
        assert_eq!(t.check("a", A, now), ThrottleVerdict::Allowed);
        t.record_failure("b", A, now);
        t.record_failure("c", A, now);
        assert!(matches!(
            t.check("z", A, now),
            ThrottleVerdict::Blocked {
                reason: BlockedBy::Address,
                ..
            }
        ));
    }

    #[test]
    fn ipv6_counts_per_64() {
        let t = Throttle::new(cfg());
        let now = Instant::now();
        for i in 1..=5u16 {
            let ip: IpAddr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, i, i, i, i).into();
            t.record_failure(&format!("u{i}"), ip, now);
        }
        let other_host: IpAddr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9).into();
        assert!(matches!(
            t.check("x", other_host, now),
            ThrottleVerdict::Blocked { .. }
        ));
    }

    #[test]
    fn memory_stays_bounded_under_spraying() {
        let t = Throttle::new(ThrottleConfig {
            max_tracked: 1000,
            max_failures_per_address: u32::MAX,
            ..cfg()
        });
        let now = Instant::now();
        for i in 0..100_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000 | (i % 60_000)));
            t.record_failure(&format!("user{i}"), ip, now);
        }
        assert!(t.tracked() <= 1000, "{}", t.tracked());
    }
}
