//! [`RateLimiter`]: a token bucket per source address, in bounded memory.
//!
//! Sans-IO: the caller passes the current [`Instant`], so tests drive time by hand.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often, at most, a full table is swept for buckets that refilled (so a flood of new
/// addresses does not turn every message into a sweep of the whole table).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The rate settings of one check (read from the configuration each time, so a reload changes
/// them without losing the buckets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second: the sustained messages per second allowed. `0` disables
    /// limiting.
    pub per_sec: f64,
    /// Bucket size: how many messages may arrive at once after a quiet period (at least 1).
    pub burst: f64,
}

impl Rate {
    /// `per_sec` messages per second with bursts of `burst`.
    pub fn new(per_sec: u32, burst: u32) -> Rate {
        Rate {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
        }
    }

    /// Whether this rate limits at all.
    pub fn enabled(&self) -> bool {
        self.per_sec > 0.0
    }

    /// Whole seconds until one token is back in an empty bucket (at least 1): the
    /// `Retry-After` a refused client is given.
    pub fn retry_after_secs(&self) -> u64 {
        if !self.enabled() {
            return 1;
        }
        (1.0 / self.per_sec).ceil().max(1.0) as u64
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        self.last = now;
    }

    fn take(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    /// Shared by every address that finds the table full.
    overflow: Option<Bucket>,
    last_sweep: Option<Instant>,
}

/// A token bucket per source address: IPv4 per address, IPv6 per /64 (one subscriber's
/// prefix), so rotating through a prefix does not multiply the allowance.
///
/// Memory is bounded by `max_tracked` buckets. When the table is full, buckets that have
/// refilled completely (their address has been quiet) are dropped, at most once a second;
/// addresses that still find no room share one overflow bucket, so a flood from many
/// (possibly spoofed) addresses is limited as a whole instead of growing the table.
#[derive(Debug)]
pub struct RateLimiter {
    table: Mutex<Table>,
    max_tracked: usize,
}

/// The bucket key of an address: IPv6 addresses are cut to their /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

impl RateLimiter {
    /// A limiter tracking at most `max_tracked` addresses (at least 1).
    pub fn new(max_tracked: usize) -> RateLimiter {
        RateLimiter {
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                overflow: None,
                last_sweep: None,
            }),
            max_tracked: max_tracked.max(1),
        }
    }

    /// Takes one token from `ip`'s bucket: `true` if the message may pass, `false` if the
    /// address is over `rate`. Always `true` when `rate` is disabled.
    pub fn check(&self, ip: IpAddr, rate: Rate, now: Instant) -> bool {
        if !rate.enabled() {
            return true;
        }
        let ip = key(ip);
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = t.buckets.get_mut(&ip) {
            return b.take(rate, now);
        }
        if t.buckets.len() >= self.max_tracked {
            let due = t
                .last_sweep
                .is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY);
            if due {
                t.last_sweep = Some(now);
                t.buckets.retain(|_, b| {
                    b.refill(rate, now);
                    b.tokens < rate.burst
                });
            }
        }
        if t.buckets.len() >= self.max_tracked {
            let b = t.overflow.get_or_insert(Bucket {
                tokens: rate.burst,
                last: now,
            });
            return b.take(rate, now);
        }
        let mut b = Bucket {
            tokens: rate.burst,
            last: now,
        };
        let ok = b.take(rate, now);
        t.buckets.insert(ip, b);
        ok
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .buckets
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_sustained_rate() {
        let l = RateLimiter::new(10);
        let rate = Rate::new(2, 3);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert!((0..3).all(|_| l.check(a, rate, t0)));
        assert!(!l.check(a, rate, t0));
        // Half a second later one token is back (2/s), not two.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.check(a, rate, t1));
        assert!(!l.check(a, rate, t1));
        // Other addresses have their own bucket.
        assert!(l.check(ip("192.0.2.2"), rate, t1));
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(100);
        assert!((0..3).all(|_| l.check(a, rate, t2)));
        assert!(!l.check(a, rate, t2));
    }

    #[test]
    fn disabled_rate_allows_everything() {
        let l = RateLimiter::new(1);
        let t = Instant::now();
        assert!((0..1000).all(|_| l.check(ip("192.0.2.1"), Rate::new(0, 1), t)));
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        let l = RateLimiter::new(10);
        let rate = Rate::new(1, 1);
        let t = Instant::now();
        assert!(l.check(ip("2001:db8::1"), rate, t));
        assert!(!l.check(ip("2001:db8::ffff:2"), rate, t));
        assert!(l.check(ip("2001:db8:0:1::1"), rate, t));
        // IPv4-mapped addresses count as the IPv4 address.
        assert!(l.check(ip("192.0.2.7"), rate, t));
        assert!(!l.check(ip("::ffff:192.0.2.7"), rate, t));
    }

    #[test]
    fn memory_is_bounded_and_quiet_addresses_make_room() {
        let l = RateLimiter::new(4);
        let rate = Rate::new(1, 2);
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(l.check(ip(&format!("192.0.2.{i}")), rate, t0));
        }
        // Full: newcomers share one overflow bucket (burst 2).
        assert!(l.check(ip("198.51.100.1"), rate, t0));
        assert!(l.check(ip("198.51.100.2"), rate, t0));
        assert!(!l.check(ip("198.51.100.3"), rate, t0));
        assert_eq!(l.tracked(), 4);
        // After the tracked addresses went quiet (refilled), the sweep frees their slots.
        let t1 = t0 + Duration::from_secs(5);
        assert!(l.check(ip("198.51.100.4"), rate, t1));
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn retry_after_is_at_least_a_second() {
        assert_eq!(Rate::new(100, 10).retry_after_secs(), 1);
        assert_eq!(Rate::new(1, 1).retry_after_secs(), 1);
        assert_eq!(Rate::new(0, 1).retry_after_secs(), 1);
    }
}
