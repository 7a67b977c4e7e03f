//! Change tracking: every item write and its change-log entry in one `kv.commit`, and `sync`
//! pages built from the log.
//!
//! # The log
//!
//! Each folder has a counter; every add, change or delete takes the next value `n` and, in
//! the same commit that checks the counter still holds `n - 1`, writes the log entry at `n`.
//! So positions are never reused, never skipped by a reader, and a commit that lost a race
//! writes nothing and is retried. The log holds, per item:
//!
//! - its record at the position where it was added (`<folder>.<pos>` is its id); it stays
//!   there for good, marked deleted when the item goes;
//! - at most one change marker, at the position of its latest change (each change moves it);
//! - once deleted (or moved away), a tombstone at the position of the delete.
//!
//! So repeated flag flips cost one entry, not one per flip, and an item added and deleted
//! between two syncs shows up in neither (the page drops the pair).
//!
//! # What a state means
//!
//! A client at state `S` has exactly the items added at or before `S` and not deleted at or
//! before `S`, each at least as new as its last change at or before `S`. A page from `S`
//! walks the log from `S` in order and ends at `T` (the last position it took, or the
//! counter when it took everything): item records become `Added` (dropped again when the
//! item's tombstone is in the page too), markers become `Changed` (or refresh an `Added` of
//! the same page), tombstones of items added at or before `S` become `Deleted`. Entries only
//! ever appear above the counter, which every reader has read before walking, so a page
//! never misses a write below its `T`; whatever happens above `T` is for the next page.
//! Asking again from `S` walks the same positions again: the same answer if nothing was
//! written meanwhile, else one that is right for the newer contents.
//!
//! # Compaction
//!
//! Change markers are compacted as they move; records and tombstones of deleted items stay,
//! since a client at any older state may still need to hear of the delete. They are small
//! (a summary); dropping them needs a floor below which states are refused (see the crate
//! docs: not done yet).

use std::collections::HashMap;

use switchboard_sdk::host::kv::Commit;
use switchboard_sdk::{Change, Error, ItemSummary, Result};

use crate::folders;
use crate::keys::{item_id, parse_item_id, seq_of_log_key, Mailbox};
use crate::records::{counter_bytes, from_bytes, to_bytes, ItemRec, LogEntry};
use crate::state;
use crate::store;

fn event(mb: &Mailbox, folder: &str) -> String {
    format!("mailbox:{}/{folder}", mb.address)
}

/// Add an item to `folder`: `build` gets the item's id and log position and returns its
/// record. Returns the stored record.
pub fn add(mb: &Mailbox, folder: &str, build: impl Fn(&str) -> ItemRec) -> Result<ItemRec> {
    for _ in 0..store::COMMIT_ATTEMPTS {
        let (_, fbytes) = folders::load(mb, folder)?;
        let (n, cbytes) = folders::counter(mb, folder)?;
        let seq = n + 1;
        let rec = build(&item_id(folder, seq));
        let c = Commit::new()
            .check(&mb.folder(folder), Some(&fbytes))
            .check(&mb.counter(folder), Some(&cbytes))
            .set(&mb.counter(folder), &counter_bytes(seq))
            .set(
                &mb.log(folder, seq),
                &to_bytes(&LogEntry::Item(rec.clone()))?,
            );
        if store::commit(&c)? {
            store::publish(&event(mb, folder));
            return Ok(rec);
        }
    }
    Err(store::busy())
}

/// A live item's record, with its folder, position and stored bytes.
pub fn load(mb: &Mailbox, id: &str) -> Result<(String, u64, ItemRec, Vec<u8>)> {
    let (folder, seq) = parse_item_id(id)?;
    let missing = || Error::NotFound(format!("no item {id:?}"));
    let bytes = store::get(&mb.log(&folder, seq))?.ok_or_else(missing)?;
    match from_bytes::<LogEntry>(&bytes, "item")? {
        LogEntry::Item(rec) if rec.deleted_at.is_none() => Ok((folder, seq, rec, bytes)),
        _ => Err(missing()),
    }
}

/// Change a live item (`edit` may change its summary and content); writes the change marker
/// in the same commit. Returns the new record and the one it replaced.
pub fn change(mb: &Mailbox, id: &str, edit: impl Fn(&mut ItemRec)) -> Result<(ItemRec, ItemRec)> {
    for _ in 0..store::COMMIT_ATTEMPTS {
        let (folder, seq, old, ibytes) = load(mb, id)?;
        let (_, fbytes) = folders::load(mb, &folder)?;
        let (n, cbytes) = folders::counter(mb, &folder)?;
        let at = n + 1;
        let mut rec = old.clone();
        edit(&mut rec);
        rec.changed_at = Some(at);
        let mut c = Commit::new()
            .check(&mb.folder(&folder), Some(&fbytes))
            .check(&mb.counter(&folder), Some(&cbytes))
            .check(&mb.log(&folder, seq), Some(&ibytes))
            .set(&mb.counter(&folder), &counter_bytes(at))
            .set(
                &mb.log(&folder, seq),
                &to_bytes(&LogEntry::Item(rec.clone()))?,
            );
        if let Some(prev) = old.changed_at {
            c = c.delete(&mb.log(&folder, prev));
        }
        let marker = LogEntry::Changed {
            item: seq,
            summary: rec.summary.clone(),
        };
        c = c.set(&mb.log(&folder, at), &to_bytes(&marker)?);
        if store::commit(&c)? {
            store::publish(&event(mb, &folder));
            return Ok((rec, old));
        }
    }
    Err(store::busy())
}

/// Delete a live item, or move it to `to` (same content, a new id there). Returns the record
/// it had and, for a move, the record in the target folder.
pub fn remove(mb: &Mailbox, id: &str, to: Option<&str>) -> Result<(ItemRec, Option<ItemRec>)> {
    for _ in 0..store::COMMIT_ATTEMPTS {
        let (folder, seq, old, ibytes) = load(mb, id)?;
        let (_, fbytes) = folders::load(mb, &folder)?;
        let (n, cbytes) = folders::counter(mb, &folder)?;
        let at = n + 1;
        let mut ghost = old.clone();
        ghost.deleted_at = Some(at);
        ghost.changed_at = None;
        let tomb = LogEntry::Deleted {
            item: seq,
            id: id.to_string(),
        };
        let mut c = Commit::new()
            .check(&mb.folder(&folder), Some(&fbytes))
            .check(&mb.counter(&folder), Some(&cbytes))
            .check(&mb.log(&folder, seq), Some(&ibytes))
            .set(&mb.counter(&folder), &counter_bytes(at))
            .set(&mb.log(&folder, seq), &to_bytes(&LogEntry::Item(ghost))?)
            .set(&mb.log(&folder, at), &to_bytes(&tomb)?);
        if let Some(prev) = old.changed_at {
            c = c.delete(&mb.log(&folder, prev));
        }
        let mut moved = None;
        if let Some(target) = to {
            let (_, tbytes) = folders::load(mb, target)?;
            let (tn, tcbytes) = folders::counter(mb, target)?;
            let tseq = tn + 1;
            let mut rec = old.clone();
            rec.summary.id = item_id(target, tseq);
            rec.summary.folder_id = target.to_string();
            rec.changed_at = None;
            c = c
                .check(&mb.folder(target), Some(&tbytes))
                .check(&mb.counter(target), Some(&tcbytes))
                .set(&mb.counter(target), &counter_bytes(tseq))
                .set(
                    &mb.log(target, tseq),
                    &to_bytes(&LogEntry::Item(rec.clone()))?,
                );
            moved = Some(rec);
        }
        if store::commit(&c)? {
            store::publish(&event(mb, &folder));
            if let Some(target) = to {
                store::publish(&event(mb, target));
            }
            return Ok((old, moved));
        }
    }
    Err(store::busy())
}

/// Builds one sync page from log entries offered in position order. Sans-IO.
#[derive(Debug)]
pub struct PageBuilder {
    since: u64,
    max: usize,
    changes: Vec<Option<Change>>,
    visible: usize,
    by_item: HashMap<u64, usize>,
    last: Option<u64>,
}

impl PageBuilder {
    /// A page of at most `max` changes after position `since`.
    pub fn new(since: u64, max: u32) -> PageBuilder {
        PageBuilder {
            since,
            max: (max as usize).max(1),
            changes: Vec::new(),
            visible: 0,
            by_item: HashMap::new(),
            last: None,
        }
    }

    fn push(&mut self, item: u64, change: Change) {
        self.by_item.insert(item, self.changes.len());
        self.changes.push(Some(change));
        self.visible += 1;
    }

    /// Take the entry at `seq`; false (not taken) when the page is full and it would add a
    /// change.
    pub fn offer(&mut self, seq: u64, entry: LogEntry) -> bool {
        let full = self.visible >= self.max;
        match entry {
            LogEntry::Item(rec) => {
                if full {
                    return false;
                }
                self.push(seq, Change::Added(rec.summary));
            }
            LogEntry::Changed { item, summary } => match self.by_item.get(&item) {
                Some(&i) => {
                    let slot = &mut self.changes[i];
                    *slot = match slot.take() {
                        Some(Change::Added(_)) => Some(Change::Added(summary)),
                        Some(Change::Changed(_)) => Some(Change::Changed(summary)),
                        // Deleted after this change: the delete stands.
                        other => other,
                    };
                }
                None => {
                    if full {
                        return false;
                    }
                    let change = if item > self.since {
                        Change::Added(summary)
                    } else {
                        Change::Changed(summary)
                    };
                    self.push(item, change);
                }
            },
            LogEntry::Deleted { item, id } => match self.by_item.get(&item) {
                Some(&i) => {
                    if let Some(Change::Added(_)) = self.changes[i] {
                        // Added and deleted within this page: the client never sees it.
                        self.changes[i] = None;
                        self.visible -= 1;
                    } else if self.changes[i].is_some() {
                        self.changes[i] = Some(Change::Deleted(id));
                    }
                }
                None if item > self.since => {} // added after the client's state: never seen
                None => {
                    if full {
                        return false;
                    }
                    self.push(item, Change::Deleted(id));
                }
            },
        }
        self.last = Some(seq);
        true
    }

    /// The changes, and the last position taken.
    pub fn finish(self) -> (Vec<Change>, Option<u64>) {
        (self.changes.into_iter().flatten().collect(), self.last)
    }
}

/// A sync page for `folder` since `token` (none: from the beginning).
pub fn sync(
    mb: &Mailbox,
    folder: &str,
    token: Option<&str>,
    max: u32,
) -> Result<(Vec<Change>, String, bool)> {
    folders::load(mb, folder)?;
    let (counter, _) = folders::counter(mb, folder)?;
    let since = match token {
        None => 0,
        Some(t) => {
            let s =
                state::decode(&mb.address, folder, t).map_err(|e| Error::Invalid(e.to_string()))?;
            if s > counter {
                return Err(Error::Invalid(format!(
                    "sync state {t:?} is ahead of this folder"
                )));
            }
            s
        }
    };
    let prefix = mb.log_prefix(folder);
    let mut page = PageBuilder::new(since, max);
    let mut after = mb.log(folder, since);
    let mut more = false;
    'walk: loop {
        let rows = store::scan(&prefix, Some(&after), store::SCAN_BATCH)?;
        let full = rows.len() as u32 == store::SCAN_BATCH;
        for (key, value) in &rows {
            let seq = seq_of_log_key(key)
                .ok_or_else(|| Error::Internal(format!("corrupt log key {key:?}")))?;
            let entry: LogEntry = from_bytes(value, "log entry")?;
            if !page.offer(seq, entry) {
                more = true;
                break 'walk;
            }
        }
        match rows.last() {
            Some((k, _)) if full => after = k.clone(),
            _ => break,
        }
    }
    let (changes, last) = page.finish();
    let end = match (more, last) {
        (true, Some(last)) => last,
        (true, None) => since,
        (false, last) => last.unwrap_or(0).max(counter).max(since),
    };
    Ok((changes, state::encode(&mb.address, folder, end), more))
}

/// Every live item of a folder, as summaries.
pub fn items(mb: &Mailbox, folder: &str) -> Result<Vec<(ItemRec, u64)>> {
    let mut out = Vec::new();
    store::scan_each(&mb.log_prefix(folder), |k, v| {
        if let LogEntry::Item(rec) = from_bytes(v, "log entry")? {
            if rec.deleted_at.is_none() {
                out.push((rec, seq_of_log_key(k).unwrap_or(0)));
            }
        }
        Ok(true)
    })?;
    Ok(out)
}

/// The summaries of a folder's live items (what a full sync would show).
pub fn summaries(mb: &Mailbox, folder: &str) -> Result<Vec<ItemSummary>> {
    Ok(items(mb, folder)?
        .into_iter()
        .map(|(r, _)| r.summary)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::ItemClass;

    fn summary(id: u64, subject: &str) -> ItemSummary {
        ItemSummary {
            id: format!("f.{id}"),
            folder_id: "f".into(),
            class: ItemClass::Email,
            size: 0,
            timestamp_ms: 0,
            subject: subject.into(),
            sender: String::new(),
            read: false,
            flagged: false,
            attachments: vec![],
        }
    }

    fn item(id: u64) -> LogEntry {
        LogEntry::Item(ItemRec {
            summary: summary(id, "new"),
            blob: "b".into(),
            deleted_at: None,
            changed_at: None,
        })
    }

    #[test]
    fn added_then_deleted_within_a_page_is_dropped() {
        let mut p = PageBuilder::new(0, 10);
        assert!(p.offer(1, item(1)));
        assert!(p.offer(2, item(2)));
        assert!(p.offer(
            3,
            LogEntry::Deleted {
                item: 1,
                id: "f.1".into()
            }
        ));
        assert!(p.offer(
            4,
            LogEntry::Changed {
                item: 2,
                summary: summary(2, "edited")
            }
        ));
        let (changes, last) = p.finish();
        assert_eq!(changes, vec![Change::Added(summary(2, "edited"))]);
        assert_eq!(last, Some(4));
    }

    #[test]
    fn changes_and_deletes_of_known_items() {
        let mut p = PageBuilder::new(5, 10);
        assert!(p.offer(
            6,
            LogEntry::Changed {
                item: 2,
                summary: summary(2, "x")
            }
        ));
        assert!(p.offer(
            7,
            LogEntry::Deleted {
                item: 3,
                id: "f.3".into()
            }
        ));
        assert!(p.offer(
            8,
            LogEntry::Deleted {
                item: 2,
                id: "f.2".into()
            }
        ));
        let (changes, _) = p.finish();
        assert_eq!(
            changes,
            vec![Change::Deleted("f.2".into()), Change::Deleted("f.3".into())]
        );
    }

    #[test]
    fn a_full_page_still_takes_entries_that_add_nothing() {
        let mut p = PageBuilder::new(0, 1);
        assert!(p.offer(1, item(1)));
        assert!(p.offer(
            2,
            LogEntry::Changed {
                item: 1,
                summary: summary(1, "y")
            }
        ));
        assert!(!p.offer(3, item(3)));
        let (changes, last) = p.finish();
        assert_eq!(changes, vec![Change::Added(summary(1, "y"))]);
        assert_eq!(last, Some(2));
    }
}
