//! What the store keeps in kv values, encoded with postcard.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use switchboard_sdk::{Error, FolderKind, ItemSummary, Result};

use crate::decode::{Encoding, IndexPoint};

/// A folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderRec {
    /// Parent folder id; empty at top level.
    pub parent: String,
    /// Display name.
    pub name: String,
    /// What it holds.
    pub kind: FolderKind,
}

/// An item, stored at the log position where it was added (which its id names). It stays
/// there, as a "ghost" with `deleted_at` set, after the item is deleted or moved away, so a
/// sync page that saw it added knows its summary and when it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRec {
    /// The summary frontends see.
    pub summary: ItemSummary,
    /// The content blob.
    pub blob: String,
    /// Log position of its tombstone, once deleted.
    pub deleted_at: Option<u64>,
    /// Log position of its latest change marker, if changed since added.
    pub changed_at: Option<u64>,
}

/// One change-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogEntry {
    /// An item added at this position (its record).
    Item(ItemRec),
    /// The latest change of the item added at `item`; older markers of it are removed.
    Changed {
        /// Position of the item record.
        item: u64,
        /// Its summary after the change.
        summary: ItemSummary,
    },
    /// The item added at `item` was deleted or moved away.
    Deleted {
        /// Position of the item record.
        item: u64,
        /// Its id.
        id: String,
    },
}

/// Where a MIME part's body is, for ranged decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRec {
    /// Absolute offset of the body in the content.
    pub body_start: u64,
    /// Absolute offset just past the body.
    pub body_end: u64,
    /// Content-transfer-encoding.
    pub encoding: Encoding,
    /// Decoded size.
    pub size: u64,
    /// Restart points.
    pub index: Vec<IndexPoint>,
}

/// Metadata of a content blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    /// Content size in bytes.
    pub size: u64,
    /// Attachment `n` (part id `n`, from 1) is `parts[n - 1]`.
    pub parts: Vec<PartRec>,
}

/// Encode a record.
pub fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::Internal(format!("encoding a record: {e}")))
}

/// Decode a record; `what` names it in the error.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Internal(format!("corrupt {what}: {e}")))
}

/// A counter value as stored (decimal text, readable in the database).
pub fn counter_bytes(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// Parse a stored counter.
pub fn parse_counter(bytes: &[u8]) -> Result<u64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Internal("corrupt counter".into()))
}
