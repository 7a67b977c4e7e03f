//! Items as the device sees them: the `ApplicationData` of mail (and contacts), and bodies
//! shaped by the client's `BodyPreference` ([MS-ASAIRS]).

pub mod body;
pub mod calendar;
pub mod contact;
pub mod draft;
pub mod email;
pub mod task;
pub(crate) mod text;

use switchboard_sdk::{host, ItemSummary, Principal, Result};

/// How much of an item is read to show it (headers, text parts); bigger items are shown
/// from this much and their MIME streamed by the core when asked for whole.
pub const PARSE_CAP: u32 = 512 * 1024;

/// Marks a summary made up from an id alone (Fetch by ServerId): its flags and time are not
/// known, so they are not reported.
pub const UNKNOWN_TIME: i64 = i64::MIN;

/// A summary standing for an item known only by its id.
pub fn bare(id: &str) -> ItemSummary {
    ItemSummary {
        id: id.to_string(),
        folder_id: String::new(),
        class: switchboard_sdk::ItemClass::Email,
        size: 0,
        timestamp_ms: UNKNOWN_TIME,
        subject: String::new(),
        sender: String::new(),
        read: false,
        flagged: false,
        attachments: vec![],
    }
}

/// The first bytes of an item's content.
#[derive(Debug, Clone)]
pub struct Content {
    /// Up to [`PARSE_CAP`] bytes.
    pub bytes: Vec<u8>,
    /// The full size.
    pub total: u64,
}

impl Content {
    /// Whether `bytes` is the whole item.
    pub fn complete(&self) -> bool {
        self.bytes.len() as u64 >= self.total
    }
}

/// Read the start of an item (up to [`PARSE_CAP`]).
pub fn load(who: &Principal, item: &ItemSummary) -> Result<Content> {
    load_up_to(who, item, PARSE_CAP)
}

/// How much to read to show a body truncated at `truncation` bytes: headers and the parts
/// before the text need room too, and encodings grow text by a third.
pub fn cap_for(truncation: Option<u32>) -> u32 {
    match truncation {
        Some(t) => t.saturating_mul(2).saturating_add(32 * 1024).min(PARSE_CAP),
        None => PARSE_CAP,
    }
}

/// Read the start of an item, up to `cap` bytes.
pub fn load_up_to(who: &Principal, item: &ItemSummary, cap: u32) -> Result<Content> {
    let cap = cap.clamp(1, PARSE_CAP);
    let mut bytes = Vec::new();
    let mut total = item.size;
    while bytes.len() < cap as usize {
        let want = cap - bytes.len() as u32;
        let chunk = host::mailstore::fetch(who, &item.id, None, bytes.len() as u64, want)?;
        total = chunk.total;
        if chunk.data.is_empty() {
            break;
        }
        bytes.extend_from_slice(&chunk.data);
        if bytes.len() as u64 >= total {
            break;
        }
    }
    Ok(Content { bytes, total })
}
