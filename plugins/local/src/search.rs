//! Free-text search over subject and sender, and over the body text of small messages.

use switchboard_sdk::{ItemClass, ItemSummary, Result};

use crate::changes;
use crate::chunks::{self, CHUNK};
use crate::content;
use crate::folders;
use crate::keys::Mailbox;

/// Messages up to this size have their body text searched too.
pub const BODY_SEARCH_MAX: u64 = CHUNK as u64;

/// Items of `folder` (none: every folder) matching all words of `query`, newest first.
pub fn search(
    mb: &Mailbox,
    folder: Option<&str>,
    query: &str,
    max: u32,
) -> Result<Vec<ItemSummary>> {
    folders::ensure(mb)?;
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let folder_ids: Vec<String> = match folder {
        Some(f) => {
            folders::load(mb, f)?;
            vec![f.to_string()]
        }
        None => folders::list(mb)?.into_iter().map(|f| f.id).collect(),
    };
    let mut hits = Vec::new();
    for f in folder_ids {
        for (rec, _) in changes::items(mb, &f)? {
            let s = &rec.summary;
            let head = format!("{} {}", s.subject, s.sender).to_lowercase();
            let mut pending: Vec<&String> = words
                .iter()
                .filter(|w| !head.contains(w.as_str()))
                .collect();
            if !pending.is_empty() && s.class == ItemClass::Email && s.size <= BODY_SEARCH_MAX {
                let raw = chunks::read(mb, &rec.blob, s.size, 0, s.size as u32)?;
                let body = content::body_text(&raw).to_lowercase();
                pending.retain(|w| !body.contains(w.as_str()));
            }
            if pending.is_empty() {
                hits.push(rec.summary);
            }
        }
    }
    hits.sort_by(|a, b| {
        b.timestamp_ms
            .cmp(&a.timestamp_ms)
            .then_with(|| b.id.cmp(&a.id))
    });
    hits.truncate(max as usize);
    Ok(hits)
}
