//! Sync state, sans-IO: the opaque token handed to frontends, the record of the UIDs (and
//! flags) a client knows, and the diff that turns "what the client knows" and "what the server
//! has" into one replay-safe page of changes.
//!
//! The token is short (EAS SyncKeys are limited to 64 characters): `i1` + base64url of
//! UIDVALIDITY, HIGHESTMODSEQ (0 without CONDSTORE), the highest UID handed out, and an 8-byte
//! hash naming the known-set record kept in kv. The record is content-addressed, so replaying
//! a sync with the same token recomputes the same page and the same next token.

use std::collections::BTreeMap;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::mapping::Flags;

/// What a token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// UIDVALIDITY of the mailbox when the client synced.
    pub uid_validity: u32,
    /// HIGHESTMODSEQ every change up to which the client has (0: unknown, compare all).
    pub modseq: u64,
    /// Highest UID the client has been given.
    pub last_uid: u32,
    /// Names the known-set record in kv.
    pub set_hash: [u8; 8],
}

const PREFIX: &str = "i1";

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn get_varint(data: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl Token {
    /// Encode as text.
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(32);
        put_varint(&mut b, u64::from(self.uid_validity));
        put_varint(&mut b, self.modseq);
        put_varint(&mut b, u64::from(self.last_uid));
        b.extend_from_slice(&self.set_hash);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        )
    }

    /// Decode; `None` for anything that is not a token of ours.
    pub fn decode(s: &str) -> Option<Token> {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.strip_prefix(PREFIX)?)
            .ok()?;
        let mut at = 0;
        let uid_validity = u32::try_from(get_varint(&b, &mut at)?).ok()?;
        let modseq = get_varint(&b, &mut at)?;
        let last_uid = u32::try_from(get_varint(&b, &mut at)?).ok()?;
        let set_hash: [u8; 8] = b.get(at..)?.try_into().ok()?;
        Some(Token {
            uid_validity,
            modseq,
            last_uid,
            set_hash,
        })
    }
}

/// Most UIDs one record may hold (a bound for corrupt records; mailboxes are far smaller).
pub const MAX_KNOWN: u64 = 4_000_000;

/// The UIDs a client knows, with the flags it was last told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known(pub BTreeMap<u32, Flags>);

impl Known {
    /// Compact form: runs of consecutive UIDs with equal flags, as varints
    /// (gap from the previous run's end, length, flag bits).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev_end = 0u32;
        let mut iter = self.0.iter().peekable();
        while let Some((&start, &flags)) = iter.next() {
            let mut end = start;
            while let Some((&next, &f)) = iter.peek() {
                if next == end + 1 && f == flags {
                    end = next;
                    iter.next();
                } else {
                    break;
                }
            }
            put_varint(&mut out, u64::from(start - prev_end));
            put_varint(&mut out, u64::from(end - start + 1));
            out.push(flags.bits());
            prev_end = end;
        }
        out
    }

    /// From [`Known::encode`]; `None` when corrupt.
    pub fn decode(data: &[u8]) -> Option<Known> {
        let mut map = BTreeMap::new();
        let mut at = 0;
        let mut prev_end = 0u32;
        while at < data.len() {
            let start = prev_end.checked_add(u32::try_from(get_varint(data, &mut at)?).ok()?)?;
            let len = u32::try_from(get_varint(data, &mut at)?).ok()?;
            let bits = *data.get(at)?;
            at += 1;
            if len == 0 || start == 0 || map.len() as u64 + u64::from(len) > MAX_KNOWN {
                return None;
            }
            let end = start.checked_add(len - 1)?;
            for uid in start..=end {
                map.insert(uid, Flags::from_bits(bits));
            }
            prev_end = end;
        }
        Some(Known(map))
    }

    /// 8-byte content hash of the encoded record.
    pub fn hash(encoded: &[u8]) -> [u8; 8] {
        let d = Sha256::digest(encoded);
        let mut h = [0u8; 8];
        h.copy_from_slice(&d[..8]);
        h
    }
}

/// A sync record's hash and when it was last made or used (seconds since the epoch).
pub type RecordUse = ([u8; 8], u64);

/// Which sync records of a folder to keep. Each entry is a record's hash and when it was last
/// made or used (seconds). The newest `keep_newest` always stay; older ones stay while
/// younger than `max_age` (a second device that synced yesterday keeps its state while the
/// first one churns), up to `cap` in all. Returns (kept, in the order given; evicted).
pub fn evict(
    entries: &[RecordUse],
    now: u64,
    keep_newest: usize,
    max_age: u64,
    cap: usize,
) -> (Vec<RecordUse>, Vec<[u8; 8]>) {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[b].1.cmp(&entries[a].1).then(b.cmp(&a)));
    let mut keep = vec![false; entries.len()];
    for (rank, &i) in order.iter().enumerate() {
        let young = now.saturating_sub(entries[i].1) < max_age;
        keep[i] = rank < keep_newest || (young && rank < cap);
    }
    let mut kept = Vec::new();
    let mut evicted = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if keep[i] {
            kept.push(*e);
        } else {
            evicted.push(e.0);
        }
    }
    (kept, evicted)
}

/// One change before it gets a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// The client does not have this UID yet.
    Added(u32),
    /// Flags differ from what the client was told.
    Changed(u32, Flags),
    /// Gone from the server.
    Deleted(u32),
}

/// What the server has, as far as this sync needed to ask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerView {
    /// Current flags of known UIDs that may have changed (all known UIDs without CONDSTORE,
    /// the CHANGEDSINCE answer with it).
    pub flags: Vec<(u32, Flags)>,
    /// Known UIDs that are gone (VANISHED, or known minus UID SEARCH ALL).
    pub gone: Vec<u32>,
    /// UIDs the client does not know (ascending).
    pub new: Vec<u32>,
}

/// The changes, oldest kind first: deletions, flag changes, then additions by UID. At most
/// `max` are in the page; `more` tells whether any were left out.
pub fn plan(known: &Known, view: &ServerView, max: usize) -> (Vec<Delta>, bool) {
    let mut all = Vec::new();
    let mut gone: Vec<u32> = view
        .gone
        .iter()
        .copied()
        .filter(|u| known.0.contains_key(u))
        .collect();
    gone.sort_unstable();
    gone.dedup();
    all.extend(gone.iter().map(|&u| Delta::Deleted(u)));
    let gone_set: std::collections::HashSet<u32> = gone.iter().copied().collect();
    let mut changed: Vec<(u32, Flags)> = view
        .flags
        .iter()
        .copied()
        .filter(|(u, f)| known.0.get(u).is_some_and(|k| k != f) && !gone_set.contains(u))
        .collect();
    changed.sort_unstable_by_key(|c| c.0);
    changed.dedup_by_key(|c| c.0);
    all.extend(changed.iter().map(|&(u, f)| Delta::Changed(u, f)));
    let mut new: Vec<u32> = view
        .new
        .iter()
        .copied()
        .filter(|u| !known.0.contains_key(u))
        .collect();
    new.sort_unstable();
    new.dedup();
    all.extend(new.iter().map(|&u| Delta::Added(u)));
    let max = max.max(1);
    let more = all.len() > max;
    all.truncate(max);
    (all, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(seen: bool) -> Flags {
        Flags {
            seen,
            flagged: false,
        }
    }

    #[test]
    fn token_round_trip_and_rejects() {
        let t = Token {
            uid_validity: u32::MAX,
            modseq: u64::MAX,
            last_uid: 123_456,
            set_hash: [1, 2, 3, 4, 5, 6, 7, 8],
        };
        let s = t.encode();
        assert!(s.len() <= 64, "{s}");
        assert_eq!(Token::decode(&s), Some(t));
        assert_eq!(Token::decode("forged"), None);
        assert_eq!(Token::decode("i1"), None);
        assert_eq!(Token::decode(&s[..s.len() - 2]), None);
        assert_eq!(Token::decode("i1////"), None);
    }

    #[test]
    fn known_set_is_compact_and_round_trips() {
        let mut k = Known::default();
        for uid in 1..=10_000 {
            k.0.insert(uid, f(uid > 5000));
        }
        k.0.insert(
            20_000,
            Flags {
                seen: true,
                flagged: true,
            },
        );
        let e = k.encode();
        assert!(e.len() < 20, "{} bytes", e.len());
        assert_eq!(Known::decode(&e), Some(k.clone()));
        assert_eq!(Known::decode(&[]), Some(Known::default()));
        assert_eq!(Known::decode(&[0, 1, 0]), None); // UID 0
        assert_eq!(Known::decode(&[1]), None); // truncated
        assert_ne!(Known::hash(&e), Known::hash(&[]));
    }

    #[test]
    fn eviction_keeps_the_newest_and_the_young() {
        let h = |n: u8| [n; 8];
        let day = 86_400;
        let now = 100 * day;
        let entries: Vec<([u8; 8], u64)> = (0..10u8)
            .map(|n| (h(n), now - u64::from(10 - n) * day))
            .collect();
        // Newest 3 always; others younger than 5 days; at most 6.
        let (kept, evicted) = evict(&entries, now, 3, 5 * day, 6);
        let kept: Vec<u8> = kept.iter().map(|e| e.0[0]).collect();
        assert_eq!(kept, [6, 7, 8, 9]);
        assert_eq!(evicted.len(), 6);
        let (kept, _) = evict(&entries, now, 3, 50 * day, 6);
        assert_eq!(kept.len(), 6);
        let (kept, _) = evict(&entries, now, 20, 0, 6);
        assert_eq!(kept.len(), 10);
        assert_eq!(evict(&[], now, 3, day, 6), (vec![], vec![]));
    }

    #[test]
    fn plan_orders_filters_and_pages() {
        let mut known = Known::default();
        for uid in [1, 2, 3] {
            known.0.insert(uid, f(false));
        }
        let view = ServerView {
            flags: vec![(1, f(true)), (2, f(false)), (3, f(true)), (9, f(true))],
            gone: vec![3, 7],
            new: vec![5, 4, 2],
        };
        let (page, more) = plan(&known, &view, 10);
        assert!(!more);
        assert_eq!(
            page,
            [
                Delta::Deleted(3),
                Delta::Changed(1, f(true)),
                Delta::Added(4),
                Delta::Added(5)
            ]
        );
        let (page, more) = plan(&known, &view, 2);
        assert!(more);
        assert_eq!(page.len(), 2);
        assert_eq!(plan(&known, &view, 0).0.len(), 1);
    }
}
