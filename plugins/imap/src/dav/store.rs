//! The mailstore operations on DAV folders and items (called from the connector when an id
//! starts with `dav:`). Host calls (kv, staging) stay on the calling thread; HTTP runs on the
//! connector runtime.

use std::collections::BTreeMap;

use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::{
    Change, Chunk, Error, Folder, FolderKind, ItemSummary, Principal, Result, SyncPage,
};

use super::http::{check, request, DavTarget};
use super::{ical, xml, PREFIX};
use crate::error::ImapError;
use crate::runtime;
use crate::settings::Settings;
use crate::state::Token;

/// Largest DAV item handled (events and cards are small; this bounds memory).
const MAX_ITEM: usize = 16 * 1024 * 1024;
/// Largest PROPFIND answer.
const MAX_LISTING: usize = 32 * 1024 * 1024;

const PROPFIND_COLLECTIONS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:resourcetype/><D:displayname/><C:supported-calendar-component-set/></D:prop></D:propfind>"#;

const PROPFIND_ETAGS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getetag/></D:prop></D:propfind>"#;

fn target(who: &Principal) -> Result<(DavTarget, String)> {
    Settings::load()?
        .dav(who)?
        .ok_or_else(|| Error::NotFound("no CalDAV/CardDAV server is configured".into()))
}

/// The target, after checking that `path` (from a client's id) is in the user's own home.
fn target_for(who: &Principal, path: &str) -> Result<DavTarget> {
    let (t, home) = target(who)?;
    if !super::within_home(path, &home) {
        return Err(Error::Denied(format!(
            "{path:?} is not among {}'s calendars and address books",
            who.address()
        )));
    }
    Ok(t)
}

/// Paths from hrefs: absolute URLs lose their scheme and authority.
fn path_of_href(href: &str) -> String {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = href.strip_prefix(scheme) {
            return rest
                .find('/')
                .map(|i| rest[i..].to_string())
                .unwrap_or_else(|| "/".into());
        }
    }
    href.to_string()
}

async fn propfind(t: &DavTarget, path: &str, body: &str) -> Result<Vec<xml::Entry>, ImapError> {
    let r = request(
        t,
        "PROPFIND",
        path,
        &[
            ("Depth", "1"),
            ("Content-Type", "application/xml; charset=utf-8"),
        ],
        body.as_bytes().to_vec(),
        MAX_LISTING,
    )
    .await?;
    check(t, &r, path)?;
    let mut entries = xml::multistatus(&r.body).map_err(ImapError::Protocol)?;
    for e in &mut entries {
        e.href = path_of_href(&e.href);
    }
    Ok(entries)
}

/// The user's calendars, task lists and address books as folders (empty when DAV is not
/// configured). Kinds: the first event calendar is `calendar`, the first task list `tasks`,
/// the first address book `contacts`; further ones are user folders.
pub fn list_folders(who: &Principal) -> Result<Vec<Folder>> {
    let Some((t, home)) = Settings::load()?.dav(who)? else {
        return Ok(Vec::new());
    };
    let home2 = home.clone();
    let entries = runtime::block(async move { propfind(&t, &home2, PROPFIND_COLLECTIONS).await })?;
    let mut taken = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut entries: Vec<_> = entries
        .into_iter()
        .filter(|e| e.href.trim_end_matches('/') != home.trim_end_matches('/'))
        .filter(|e| e.calendar || e.addressbook)
        .collect();
    entries.sort_by(|a, b| a.href.cmp(&b.href));
    for e in entries {
        let tasks_only =
            e.calendar && !e.components.is_empty() && e.components.iter().all(|c| c == "VTODO");
        let (first, other) = if e.addressbook {
            (FolderKind::Contacts, FolderKind::UserContacts)
        } else if tasks_only {
            (FolderKind::Tasks, FolderKind::UserTasks)
        } else {
            (FolderKind::Calendar, FolderKind::UserCalendar)
        };
        let kind = if taken.insert(first) { first } else { other };
        let name = e
            .display_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| {
                e.href
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_string()
            });
        out.push(Folder {
            id: format!("{PREFIX}{}", e.href),
            parent_id: String::new(),
            name,
            kind,
        });
    }
    Ok(out)
}

/// The href → ETag record a client holds, as text lines.
fn encode(known: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    for (href, etag) in known {
        out.extend_from_slice(format!("{href}\t{etag}\n").as_bytes());
    }
    out
}

fn decode(data: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(h, e)| (h.to_string(), e.to_string()))
        .collect()
}

fn summary(folder_id: &str, href: &str, data: &[u8]) -> ItemSummary {
    let (class, subject, sender, timestamp_ms) = ical::summarize(data);
    ItemSummary {
        id: format!("{PREFIX}{href}"),
        folder_id: folder_id.to_string(),
        class,
        size: data.len() as u64,
        timestamp_ms,
        subject,
        sender,
        read: true,
        flagged: false,
        attachments: Vec::new(),
    }
}

/// Changes in a DAV folder since `state`: ETag listings diffed against the record, then
/// deletions, changes and additions (by href), at most `max`; replay-safe like mail.
pub fn sync(
    who: &Principal,
    folder_id: &str,
    path: &str,
    state: Option<&str>,
    max: u32,
) -> Result<SyncPage> {
    let t = target_for(who, path)?;
    let mut known = match state {
        None => BTreeMap::new(),
        Some(s) => {
            let tok =
                Token::decode(s).ok_or_else(|| Error::Invalid(format!("bad sync state {s:?}")))?;
            decode(&crate::load_record(who, folder_id, &tok.set_hash)?)
        }
    };
    let max = if max == 0 { 100 } else { max as usize };
    let (t2, p2, known2, folder) = (
        t.clone(),
        path.to_string(),
        known.clone(),
        folder_id.to_string(),
    );
    let (page, more, etags) = runtime::block(async move {
        let entries = propfind(&t2, &p2, PROPFIND_ETAGS).await?;
        let current: BTreeMap<String, String> = entries
            .into_iter()
            .filter(|e| !e.collection && e.href != p2)
            .filter_map(|e| Some((e.href, e.etag?)))
            .collect();
        let mut deltas: Vec<(String, bool)> = Vec::new(); // (href, present)
        deltas.extend(
            known2
                .keys()
                .filter(|h| !current.contains_key(*h))
                .map(|h| (h.clone(), false)),
        );
        deltas.extend(
            current
                .iter()
                .filter(|(h, e)| known2.get(*h).is_some_and(|k| k != *e))
                .map(|(h, _)| (h.clone(), true)),
        );
        deltas.extend(
            current
                .keys()
                .filter(|h| !known2.contains_key(*h))
                .map(|h| (h.clone(), true)),
        );
        let more = deltas.len() > max;
        deltas.truncate(max);
        let mut page = Vec::new();
        for (href, present) in deltas {
            if !present {
                page.push((href, None));
                continue;
            }
            let r = request(&t2, "GET", &href, &[], Vec::new(), MAX_ITEM).await?;
            if r.status == 404 {
                continue; // gone since the listing: the next sync reports it
            }
            check(&t2, &r, &href)?;
            page.push((href, Some(r.body)));
        }
        let _ = folder;
        Ok((page, more, current))
    })?;
    let mut changes = Vec::new();
    for (href, body) in page {
        match body {
            None => {
                known.remove(&href);
                changes.push(Change::Deleted(format!("{PREFIX}{href}")));
            }
            Some(data) => {
                let item = summary(folder_id, &href, &data);
                let etag = etags.get(&href).cloned().unwrap_or_default();
                if known.insert(href, etag).is_some() {
                    changes.push(Change::Changed(item));
                } else {
                    changes.push(Change::Added(item));
                }
            }
        }
    }
    let hash = crate::save_record(who, folder_id, &encode(&known))?;
    let token = Token {
        uid_validity: 0,
        modseq: 0,
        last_uid: 0,
        set_hash: hash,
    };
    Ok(SyncPage {
        changes,
        state: token.encode(),
        more,
    })
}

/// A range of an item.
pub fn fetch(who: &Principal, path: &str, offset: u64, max: u32) -> Result<Chunk> {
    let t = target_for(who, path)?;
    let p = path.to_string();
    let r = runtime::block(async move {
        let r = request(&t, "GET", &p, &[], Vec::new(), MAX_ITEM).await?;
        check(&t, &r, &p)?;
        Ok(r)
    })?;
    let total = r.body.len() as u64;
    let start = offset.min(total) as usize;
    let end = (offset.saturating_add(u64::from(max))).min(total) as usize;
    Ok(Chunk {
        data: r.body[start..end].to_vec(),
        total,
    })
}

fn read_upload(content: &Upload) -> Result<Vec<u8>> {
    let size = content.size()?;
    if size > MAX_ITEM as u64 {
        return Err(Error::Quota(format!(
            "calendar and contact items are limited to {MAX_ITEM} bytes"
        )));
    }
    let mut data = Vec::with_capacity(size as usize);
    while (data.len() as u64) < size {
        let chunk = content.read(data.len() as u64, 64 * 1024)?;
        if chunk.is_empty() {
            break;
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// PUT `data` at `href` (`create`: only if nothing is there).
fn put(who: &Principal, href: &str, data: Vec<u8>, create: bool) -> Result<()> {
    let t = target_for(who, href)?;
    let content_type = if ical::summarize(&data).0 == switchboard_sdk::ItemClass::Contact {
        "text/vcard; charset=utf-8"
    } else {
        "text/calendar; charset=utf-8"
    };
    let h = href.to_string();
    runtime::block(async move {
        let mut headers = vec![("Content-Type", content_type)];
        if create {
            headers.push(("If-None-Match", "*"));
        }
        let r = request(&t, "PUT", &h, &headers, data, 64 * 1024).await?;
        check(&t, &r, &h)
    })?;
    Ok(())
}

/// Store a new item (iCalendar or vCard) in a DAV folder.
pub fn create(
    who: &Principal,
    folder_id: &str,
    path: &str,
    content: &Upload,
) -> Result<ItemSummary> {
    let data = read_upload(content)?;
    let (class, ..) = ical::summarize(&data);
    let ext = if class == switchboard_sdk::ItemClass::Contact {
        "vcf"
    } else {
        "ics"
    };
    use sha2::Digest;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = sha2::Sha256::new();
    h.update(&data);
    h.update(nonce.to_le_bytes());
    h.update(who.address().as_bytes());
    let name: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    let href = format!("{dir}{name}.{ext}");
    put(who, &href, data.clone(), true)?;
    Ok(summary(folder_id, &href, &data))
}

/// Replace an item's content in place (same id).
pub fn replace(who: &Principal, path: &str, content: &Upload) -> Result<ItemSummary> {
    let data = read_upload(content)?;
    put(who, path, data.clone(), false)?;
    let folder = match path.trim_end_matches('/').rsplit_once('/') {
        Some((dir, _)) => format!("{PREFIX}{dir}/"),
        None => String::new(),
    };
    Ok(summary(&folder, path, &data))
}

/// Delete an item.
pub fn delete(who: &Principal, path: &str) -> Result<()> {
    let t = target_for(who, path)?;
    let p = path.to_string();
    runtime::block(async move {
        let r = request(&t, "DELETE", &p, &[], Vec::new(), 64 * 1024).await?;
        check(&t, &r, &p)
    })?;
    Ok(())
}
