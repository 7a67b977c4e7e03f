//! Content blobs in fixed-size kv chunks: written as the upload is read, one chunk at a time;
//! read back by range, touching only the chunks the range covers.

use switchboard_sdk::{Error, Result};

use crate::keys::Mailbox;
use crate::records::{from_bytes, BlobMeta};
use crate::store::{self, Source};

/// Bytes per chunk key.
pub const CHUNK: usize = 256 * 1024;

/// Copy `src` into blob `blob` chunk by chunk, showing each chunk (and its offset) to `sink`
/// as it goes; returns the size. On error the chunks written so far are removed again.
pub fn write(
    mb: &Mailbox,
    blob: &str,
    src: &dyn Source,
    mut sink: impl FnMut(&[u8], u64),
) -> Result<u64> {
    let mut offset = 0u64;
    let mut n = 0u64;
    let result = (|| {
        loop {
            let mut chunk = src.read(offset, CHUNK as u32)?;
            // Sources may answer short; fill the chunk so chunk n always starts at n * CHUNK.
            while !chunk.is_empty() && chunk.len() < CHUNK {
                let more = src.read(offset + chunk.len() as u64, (CHUNK - chunk.len()) as u32)?;
                if more.is_empty() {
                    break;
                }
                chunk.extend_from_slice(&more);
            }
            if chunk.is_empty() {
                return Ok(offset);
            }
            store::set(&mb.chunk(blob, n), &chunk)?;
            n += 1;
            sink(&chunk, offset);
            offset += chunk.len() as u64;
            if chunk.len() < CHUNK {
                return Ok(offset);
            }
        }
    })();
    if result.is_err() {
        let _ = delete(mb, blob, n * CHUNK as u64);
    }
    result
}

/// The metadata of a blob.
pub fn meta(mb: &Mailbox, blob: &str) -> Result<BlobMeta> {
    let bytes = store::get(&mb.blob_meta(blob))?
        .ok_or_else(|| Error::Internal(format!("content {blob} is missing its metadata")))?;
    from_bytes(&bytes, "content metadata")
}

/// Visit the content bytes `[start, end)` chunk by chunk (`f` gets each slice and its
/// absolute offset, and returns true to stop early).
pub fn each(
    mb: &Mailbox,
    blob: &str,
    start: u64,
    end: u64,
    mut f: impl FnMut(&[u8], u64) -> bool,
) -> Result<()> {
    let mut at = start;
    while at < end {
        let n = at / CHUNK as u64;
        let chunk = store::get(&mb.chunk(blob, n))?
            .ok_or_else(|| Error::Internal(format!("content {blob} is missing chunk {n}")))?;
        let base = n * CHUNK as u64;
        let from = (at - base) as usize;
        let to = ((end - base) as usize).min(chunk.len());
        if from >= to {
            return Err(Error::Internal(format!(
                "content {blob} is shorter than recorded"
            )));
        }
        if f(&chunk[from..to], at) {
            return Ok(());
        }
        at = base + to as u64;
    }
    Ok(())
}

/// Up to `max` bytes from `offset` of a blob of `size` bytes.
pub fn read(mb: &Mailbox, blob: &str, size: u64, offset: u64, max: u32) -> Result<Vec<u8>> {
    let end = size.min(offset.saturating_add(u64::from(max)));
    let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
    each(mb, blob, offset, end, |data, _| {
        out.extend_from_slice(data);
        false
    })?;
    Ok(out)
}

/// Remove a blob of `size` bytes (its chunks and metadata).
pub fn delete(mb: &Mailbox, blob: &str, size: u64) -> Result<()> {
    let chunks = size.div_ceil(CHUNK as u64);
    let mut writes: Vec<(String, Option<Vec<u8>>)> =
        (0..chunks).map(|n| (mb.chunk(blob, n), None)).collect();
    writes.push((mb.blob_meta(blob), None));
    store::write_all(writes)
}

/// Remove a blob whose size is only in its metadata.
pub fn delete_by_meta(mb: &Mailbox, blob: &str) -> Result<()> {
    let size = meta(mb, blob).map(|m| m.size).unwrap_or(0);
    delete(mb, blob, size)
}
