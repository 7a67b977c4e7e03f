//! The store's only door to the host: kv and staged uploads, with counters of what each call
//! reads (the bounded-memory tests read them through [`stats`]).

use std::cell::Cell;

use switchboard_sdk::host::{self, kv::Commit};
use switchboard_sdk::{Error, Result};

/// How often a commit that lost a race is retried before giving up.
pub const COMMIT_ATTEMPTS: u32 = 100;

/// Most keys read per kv scan call.
pub const SCAN_BATCH: u32 = 256;

thread_local! {
    static READ_BYTES: Cell<u64> = const { Cell::new(0) };
    static LARGEST_READ: Cell<u64> = const { Cell::new(0) };
}

/// What the store read from the host on this thread since the last [`stats::reset`].
pub mod stats {
    use super::*;

    /// Counts of bytes read.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Reads {
        /// Bytes read from kv and staged uploads, in total.
        pub total: u64,
        /// The largest single answer (one kv value, one scan page, one upload read).
        pub largest: u64,
    }

    /// Start counting afresh.
    pub fn reset() {
        READ_BYTES.with(|c| c.set(0));
        LARGEST_READ.with(|c| c.set(0));
    }

    /// The counts so far.
    pub fn get() -> Reads {
        Reads {
            total: READ_BYTES.with(Cell::get),
            largest: LARGEST_READ.with(Cell::get),
        }
    }
}

fn count(n: usize) {
    READ_BYTES.with(|c| c.set(c.get() + n as u64));
    LARGEST_READ.with(|c| c.set(c.get().max(n as u64)));
}

/// Read a key.
pub fn get(key: &str) -> Result<Option<Vec<u8>>> {
    let v = host::kv::get(key)?;
    count(v.as_ref().map_or(0, Vec::len));
    Ok(v)
}

/// Write a key.
pub fn set(key: &str, value: &[u8]) -> Result<()> {
    host::kv::set(key, value)
}

/// One page of keys under `prefix` after `after`.
pub fn scan(prefix: &str, after: Option<&str>, limit: u32) -> Result<Vec<(String, Vec<u8>)>> {
    let rows = host::kv::scan(prefix, after, limit)?;
    count(rows.iter().map(|(k, v)| k.len() + v.len()).sum());
    Ok(rows)
}

/// Visit every key under `prefix` in order, a page at a time; `f` returns false to stop.
pub fn scan_each(prefix: &str, mut f: impl FnMut(&str, &[u8]) -> Result<bool>) -> Result<()> {
    let mut after: Option<String> = None;
    loop {
        let rows = scan(prefix, after.as_deref(), SCAN_BATCH)?;
        let full = rows.len() as u32 == SCAN_BATCH;
        for (k, v) in &rows {
            if !f(k, v)? {
                return Ok(());
            }
        }
        match rows.into_iter().last() {
            Some((k, _)) if full => after = Some(k),
            _ => return Ok(()),
        }
    }
}

/// Apply a commit; `Ok(false)` when it lost a race.
pub fn commit(c: &Commit) -> Result<bool> {
    host::kv::commit(c)
}

/// Apply writes without checks in commits of at most `batch` keys, retrying lost races.
pub fn write_all(writes: Vec<(String, Option<Vec<u8>>)>) -> Result<()> {
    for batch in writes.chunks(500) {
        let c = Commit {
            checks: Vec::new(),
            writes: batch.to_vec(),
        };
        let mut attempts = 0;
        while !commit(&c)? {
            attempts += 1;
            if attempts >= COMMIT_ATTEMPTS {
                return Err(busy());
            }
        }
    }
    Ok(())
}

/// The error when commits keep losing races.
pub fn busy() -> Error {
    Error::Unavailable("the mailbox is too busy right now; try again".into())
}

/// Announce a change; failures are logged, never fatal (the change is stored already).
pub fn publish(key: &str) {
    if let Err(e) = host::events::publish(key) {
        host::log::warn(&format!("publishing {key}: {e}"));
    }
}

/// Content to store, read in pieces.
pub trait Source {
    /// Total size.
    fn size(&self) -> Result<u64>;
    /// Up to `max` bytes from `offset`; empty at the end.
    fn read(&self, offset: u64, max: u32) -> Result<Vec<u8>>;
}

impl Source for host::staging::Upload {
    fn size(&self) -> Result<u64> {
        host::staging::Upload::size(self)
    }
    fn read(&self, offset: u64, max: u32) -> Result<Vec<u8>> {
        let data = host::staging::Upload::read(self, offset, max)?;
        count(data.len());
        Ok(data)
    }
}

/// An upload with its first `skip` bytes replaced by `prefix` (a rewritten header).
#[derive(Debug)]
pub struct Prefixed<'a> {
    /// What comes first.
    pub prefix: &'a [u8],
    /// The rest comes from here…
    pub upload: host::staging::Upload,
    /// …from this offset on.
    pub skip: u64,
}

impl Source for Prefixed<'_> {
    fn size(&self) -> Result<u64> {
        Ok(self.prefix.len() as u64 + Source::size(&self.upload)?.saturating_sub(self.skip))
    }
    fn read(&self, offset: u64, max: u32) -> Result<Vec<u8>> {
        let plen = self.prefix.len() as u64;
        if offset < plen {
            let end = plen.min(offset + u64::from(max));
            return Ok(self.prefix[offset as usize..end as usize].to_vec());
        }
        Source::read(&self.upload, offset - plen + self.skip, max)
    }
}
