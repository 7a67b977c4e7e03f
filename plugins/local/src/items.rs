//! Items: storing content (streamed into chunks while it is analysed), flags, moves,
//! deletes and ranged fetches.

use switchboard_sdk::host::kv::Commit;
use switchboard_sdk::{Chunk, Error, FolderKind, ItemClass, ItemSummary, Result};

use crate::changes;
use crate::chunks;
use crate::content::Analyzer;
use crate::decode::{restart_point, RangeDecoder};
use crate::folders;
use crate::keys::Mailbox;
use crate::records::{counter_bytes, parse_counter, to_bytes, BlobMeta, ItemRec};
use crate::store::{self, Source};

/// Milliseconds since the epoch now (0 when the clock is unavailable).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Reserve a new blob name in the mailbox.
fn new_blob(mb: &Mailbox) -> Result<String> {
    for _ in 0..store::COMMIT_ATTEMPTS {
        let cur = store::get(&mb.next_blob())?;
        let n = cur.as_deref().map(parse_counter).transpose()?.unwrap_or(0) + 1;
        let c = Commit::new()
            .check(&mb.next_blob(), cur.as_deref())
            .set(&mb.next_blob(), &counter_bytes(n));
        if store::commit(&c)? {
            return Ok(n.to_string());
        }
    }
    Err(store::busy())
}

/// Content stored and analysed, not yet an item.
#[derive(Debug)]
pub struct Stored {
    /// The blob holding it.
    pub blob: String,
    /// Summary fields (id and folder not yet set).
    pub summary: ItemSummary,
}

/// Stream `src` into a new blob of `mb`, analysing it as `class` on the way.
pub fn store_content(mb: &Mailbox, class: ItemClass, src: &dyn Source) -> Result<Stored> {
    let blob = new_blob(mb)?;
    let size_hint = src.size()?;
    let mut analyzer = Analyzer::new(class, size_hint);
    let size = chunks::write(mb, &blob, src, |data, _| analyzer.feed(data))?;
    let parsed = analyzer.finish();
    let meta = BlobMeta {
        size,
        parts: parsed.parts,
    };
    if let Err(e) = to_bytes(&meta).and_then(|m| store::set(&mb.blob_meta(&blob), &m)) {
        let _ = chunks::delete(mb, &blob, size);
        return Err(e);
    }
    Ok(Stored {
        blob,
        summary: ItemSummary {
            id: String::new(),
            folder_id: String::new(),
            class,
            size,
            timestamp_ms: parsed.timestamp_ms.unwrap_or_else(now_ms),
            subject: parsed.subject,
            sender: parsed.sender,
            read: false,
            flagged: false,
            attachments: parsed.attachments,
        },
    })
}

/// Store staged content as a new item of `folder`.
pub fn create(mb: &Mailbox, folder: &str, src: &dyn Source, read: bool) -> Result<ItemSummary> {
    folders::ensure(mb)?;
    let (rec, _) = folders::load(mb, folder)?;
    let stored = store_content(mb, folders::class_of(rec.kind), src)?;
    let read = read || rec.kind == FolderKind::Sent || rec.kind == FolderKind::Drafts;
    add_stored(mb, folder, stored, read)
}

/// Turn stored content into an item of `folder` (the content is removed if that fails).
pub fn add_stored(mb: &Mailbox, folder: &str, stored: Stored, read: bool) -> Result<ItemSummary> {
    let Stored { blob, summary } = stored;
    let size = summary.size;
    let result = changes::add(mb, folder, |id| ItemRec {
        summary: ItemSummary {
            id: id.to_string(),
            folder_id: folder.to_string(),
            read,
            ..summary.clone()
        },
        blob: blob.clone(),
        deleted_at: None,
        changed_at: None,
    });
    match result {
        Ok(rec) => Ok(rec.summary),
        Err(e) => {
            let _ = chunks::delete(mb, &blob, size);
            Err(e)
        }
    }
}

/// Replace an item's content; flags stay.
pub fn replace(mb: &Mailbox, id: &str, src: &dyn Source) -> Result<ItemSummary> {
    folders::ensure(mb)?;
    let (_, _, rec, _) = changes::load(mb, id)?;
    let stored = store_content(mb, rec.summary.class, src)?;
    let size = stored.summary.size;
    let result = changes::change(mb, id, |r| {
        let s = &mut r.summary;
        let (read, flagged) = (s.read, s.flagged);
        *s = ItemSummary {
            id: s.id.clone(),
            folder_id: s.folder_id.clone(),
            read,
            flagged,
            ..stored.summary.clone()
        };
        r.blob = stored.blob.clone();
    });
    match result {
        Ok((new, old)) => {
            chunks::delete(mb, &old.blob, old.summary.size)?;
            Ok(new.summary)
        }
        Err(e) => {
            let _ = chunks::delete(mb, &stored.blob, size);
            Err(e)
        }
    }
}

/// Set or clear flags; a no-op (no change recorded) when nothing would change.
pub fn set_flags(mb: &Mailbox, id: &str, read: Option<bool>, flagged: Option<bool>) -> Result<()> {
    folders::ensure(mb)?;
    let (_, _, rec, _) = changes::load(mb, id)?;
    let s = &rec.summary;
    if read.is_none_or(|r| r == s.read) && flagged.is_none_or(|f| f == s.flagged) {
        return Ok(());
    }
    changes::change(mb, id, |r| {
        if let Some(v) = read {
            r.summary.read = v;
        }
        if let Some(v) = flagged {
            r.summary.flagged = v;
        }
    })?;
    Ok(())
}

/// Move an item: a delete in its folder and an add in the target, in one commit. The item
/// gets a new id in the target (ids name the folder); its content is not copied.
pub fn move_to(mb: &Mailbox, id: &str, to: &str) -> Result<String> {
    folders::ensure(mb)?;
    let (folder, _) = crate::keys::parse_item_id(id)?;
    folders::load(mb, to)?;
    if folder == to {
        changes::load(mb, id)?;
        return Ok(id.to_string());
    }
    let (_, moved) = changes::remove(mb, id, Some(to))?;
    moved
        .map(|r| r.summary.id)
        .ok_or_else(|| Error::Internal("move without a target record".into()))
}

/// Delete an item and its content.
pub fn delete(mb: &Mailbox, id: &str) -> Result<()> {
    folders::ensure(mb)?;
    let (old, _) = changes::remove(mb, id, None)?;
    chunks::delete(mb, &old.blob, old.summary.size)
}

/// Most bytes one fetch returns, whatever it asks for (callers loop on `total`).
pub const MAX_FETCH: u32 = 4 * 1024 * 1024;

/// Up to `max` bytes of an item (or of attachment `part`) from `offset`.
pub fn fetch(mb: &Mailbox, id: &str, part: Option<&str>, offset: u64, max: u32) -> Result<Chunk> {
    let max = max.min(MAX_FETCH);
    let (_, _, rec, _) = changes::load(mb, id)?;
    let Some(part) = part else {
        let data = chunks::read(mb, &rec.blob, rec.summary.size, offset, max)?;
        return Ok(Chunk {
            data,
            total: rec.summary.size,
        });
    };
    let missing = || Error::NotFound(format!("item {id:?} has no part {part:?}"));
    let n: usize = part.parse().map_err(|_| missing())?;
    let meta = chunks::meta(mb, &rec.blob)?;
    let p = n
        .checked_sub(1)
        .and_then(|i| meta.parts.get(i))
        .ok_or_else(missing)?;
    if offset >= p.size || max == 0 {
        return Ok(Chunk {
            data: Vec::new(),
            total: p.size,
        });
    }
    let start = restart_point(&p.index, p.body_start, offset);
    let mut range = RangeDecoder::new(p.encoding, start, offset, max);
    let mut complete = false;
    chunks::each(mb, &rec.blob, start.encoded, p.body_end, |data, at| {
        complete = range.feed(data, at);
        complete
    })?;
    if !complete {
        range.finish();
    }
    Ok(Chunk {
        data: range.into_bytes(),
        total: p.size,
    })
}
