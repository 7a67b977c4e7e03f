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

/// The listing also asks for the collection's own sync-token and CTag, so the record made
/// from it names the state it was taken at (one request, one consistent view).
const PROPFIND_ETAGS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:prop><D:resourcetype/><D:getetag/><D:sync-token/><CS:getctag/></D:prop></D:propfind>"#;

const PROPFIND_TAGS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:prop><D:resourcetype/><D:sync-token/><CS:getctag/></D:prop></D:propfind>"#;

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

async fn propfind(
    t: &DavTarget,
    path: &str,
    depth: &str,
    body: &str,
) -> Result<Vec<xml::Entry>, ImapError> {
    let r = request(
        t,
        "PROPFIND",
        path,
        &[
            ("Depth", depth),
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
    let entries =
        runtime::block(async move { propfind(&t, &home2, "1", PROPFIND_COLLECTIONS).await })?;
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

/// What a client holds in a DAV folder: href → ETag, and the collection's sync-token and
/// CTag at which that set was complete (so an unchanged collection needs no listing). A
/// token is only stored when every change up to it is either in `known` or will be reported
/// again by `sync-collection` from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Record {
    known: BTreeMap<String, String>,
    sync_token: Option<String>,
    ctag: Option<String>,
}

/// Tokens and CTags are opaque; ones that would break the line format are not kept.
fn storable(v: Option<String>) -> Option<String> {
    v.filter(|v| !v.is_empty() && !v.contains(['\t', '\n', '\r']))
}

/// As text lines: `#t` sync-token, `#c` CTag (hrefs start with `/`), then `href\tetag`.
fn encode(rec: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(t) = &rec.sync_token {
        out.extend_from_slice(format!("#t\t{t}\n").as_bytes());
    }
    if let Some(c) = &rec.ctag {
        out.extend_from_slice(format!("#c\t{c}\n").as_bytes());
    }
    for (href, etag) in &rec.known {
        out.extend_from_slice(format!("{href}\t{etag}\n").as_bytes());
    }
    out
}

fn decode(data: &[u8]) -> Record {
    let mut rec = Record::default();
    for (k, v) in String::from_utf8_lossy(data)
        .lines()
        .filter_map(|l| l.split_once('\t'))
    {
        match k {
            "#t" => rec.sync_token = Some(v.to_string()),
            "#c" => rec.ctag = Some(v.to_string()),
            _ => {
                rec.known.insert(k.to_string(), v.to_string());
            }
        }
    }
    rec
}

/// The collection's own sync-token and CTag (one `PROPFIND Depth: 0`).
async fn collection_tags(
    t: &DavTarget,
    path: &str,
) -> Result<(Option<String>, Option<String>), ImapError> {
    let entries = propfind(t, path, "0", PROPFIND_TAGS).await?;
    let own = entries.into_iter().find(|e| e.collection);
    Ok(own
        .map(|e| (storable(e.sync_token), storable(e.ctag)))
        .unwrap_or_default())
}

/// What changed since `token` (RFC 6578 `sync-collection`, level 1): href → ETag of changed
/// or new members, `None` for removed ones, and the new token. `Ok(None)` when the server
/// will not answer from that token (403/409 `valid-sync-token`, an expired token, no support
/// for the report, a truncated answer): the caller falls back to an ETag listing.
#[allow(clippy::type_complexity)]
async fn sync_collection(
    t: &DavTarget,
    path: &str,
    token: &str,
) -> Result<Option<(Vec<(String, Option<String>)>, Option<String>)>, ImapError> {
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<D:sync-collection xmlns:D="DAV:"><D:sync-token>{}</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"#,
        quick_xml::escape::escape(token)
    );
    let r = request(
        t,
        "REPORT",
        path,
        &[("Content-Type", "application/xml; charset=utf-8")],
        body.into_bytes(),
        MAX_LISTING,
    )
    .await?;
    if r.status == 401 {
        check(t, &r, path)?;
    }
    if r.status != 207 {
        return Ok(None);
    }
    let (entries, new_token) = xml::multistatus_with_token(&r.body).map_err(ImapError::Protocol)?;
    let own = super::percent_decode(path);
    let own = own.trim_end_matches('/');
    let mut changes = Vec::new();
    for e in entries {
        let href = path_of_href(&e.href);
        if super::percent_decode(&href).trim_end_matches('/') == own {
            if e.status == Some(507) {
                return Ok(None); // truncated (RFC 6578 §3.6): list instead
            }
            continue;
        }
        if e.collection {
            continue;
        }
        // Without an ETag a member is not listed either (see the listing); treat it as gone.
        let etag = if e.gone() { None } else { e.etag };
        changes.push((href, etag));
    }
    Ok(Some((changes, storable(new_token))))
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

/// How a sync found the collection.
enum Plan {
    /// Sync-token/CTag as stored: nothing to send.
    Unchanged,
    /// A page of changes: (href, body or `None` for removed), more to come, the ETags now,
    /// the sync-token and CTag for the new record.
    #[allow(clippy::type_complexity)]
    Page(
        Vec<(String, Option<Vec<u8>>)>,
        bool,
        BTreeMap<String, String>,
        Option<String>,
        Option<String>,
    ),
}

/// Changes in a DAV folder since `state`, at most `max`; replay-safe like mail (the same
/// state against the same server gives the same page and next state).
///
/// When the record names the collection's sync-token and/or CTag, one `PROPFIND Depth: 0`
/// tells whether anything changed; if so, `REPORT sync-collection` from the stored token
/// names the changed and removed members. Without a stored token, or when the server
/// refuses it, an ETag listing (`PROPFIND Depth: 1`) is diffed against the record. Pages
/// go deletions, changes, additions (by href); items are fetched with GET.
pub fn sync(
    who: &Principal,
    folder_id: &str,
    path: &str,
    state: Option<&str>,
    max: u32,
) -> Result<SyncPage> {
    let t = target_for(who, path)?;
    let (rec, hash) = match state {
        None => (Record::default(), None),
        Some(s) => {
            let tok =
                Token::decode(s).ok_or_else(|| Error::Invalid(format!("bad sync state {s:?}")))?;
            let rec = decode(&crate::load_record(who, folder_id, &tok.set_hash)?);
            (rec, Some(tok.set_hash))
        }
    };
    let max = if max == 0 { 100 } else { max as usize };
    let (t2, p2, rec2) = (t.clone(), path.to_string(), rec.clone());
    let plan = runtime::block(async move {
        let known2 = &rec2.known;
        if rec2.sync_token.is_some() || rec2.ctag.is_some() {
            let (token, ctag) = collection_tags(&t2, &p2).await?;
            let same =
                |stored: &Option<String>, now: &Option<String>| stored.is_none() || stored == now;
            if same(&rec2.sync_token, &token) && same(&rec2.ctag, &ctag) {
                return Ok(Plan::Unchanged);
            }
        }
        // (current ETags, the token and CTag they were taken at)
        let mut found = None;
        if let Some(old) = &rec2.sync_token {
            if let Some((changes, new_token)) = sync_collection(&t2, &p2, old).await? {
                let mut current = known2.clone();
                for (href, etag) in changes {
                    match etag {
                        Some(e) => current.insert(href, e),
                        None => current.remove(&href),
                    };
                }
                found = Some((current, new_token, None));
            }
        }
        let (current, token, ctag) = match found {
            Some(f) => f,
            None => {
                let entries = propfind(&t2, &p2, "1", PROPFIND_ETAGS).await?;
                let own = super::percent_decode(&p2);
                let own = own.trim_end_matches('/');
                let (mut token, mut ctag) = (None, None);
                let mut current = BTreeMap::new();
                for e in entries {
                    if e.collection {
                        if super::percent_decode(&e.href).trim_end_matches('/') == own {
                            token = storable(e.sync_token);
                            ctag = storable(e.ctag);
                        }
                    } else if e.href != p2 {
                        if let Some(etag) = e.etag {
                            current.insert(e.href, etag);
                        }
                    }
                }
                (current, token, ctag)
            }
        };
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
        // Did every GET return the ETag the listing or report named? If not, the item moved
        // on after the token was taken and the record must not claim that token.
        let mut consistent = true;
        for (href, present) in deltas {
            if !present {
                page.push((href, None));
                continue;
            }
            let r = request(&t2, "GET", &href, &[], Vec::new(), MAX_ITEM).await?;
            if r.status == 404 {
                // Gone since the listing or report: the next sync reports it.
                consistent = false;
                continue;
            }
            check(&t2, &r, &href)?;
            if r.etag.is_some() && r.etag.as_ref() != current.get(&href) {
                consistent = false;
            }
            page.push((href, Some(r.body)));
        }
        // Only a complete, consistent page leaves the client holding exactly the collection at
        // that token. After a partial page neither the new token (members not yet handed out
        // would never be reported again) nor the old one is stored: a CTag, or a token, that
        // is a hash of the members' ETags (Radicale's CTag is) comes back when the edits are
        // undone, and would call the collection "unchanged" while the client holds some of
        // the edited items. The next sync lists.
        let (token, ctag) = if more || !consistent {
            (None, None)
        } else {
            (token, ctag)
        };
        Ok::<_, ImapError>(Plan::Page(page, more, current, token, ctag))
    })?;
    let (page, more, etags, sync_token, ctag) = match plan {
        Plan::Unchanged => {
            let hash = hash.unwrap_or_default();
            crate::touch_record(who, folder_id, &hash)?;
            return Ok(SyncPage {
                changes: Vec::new(),
                state: state.unwrap_or_default().to_string(),
                more: false,
            });
        }
        Plan::Page(page, more, etags, token, ctag) => (page, more, etags, token, ctag),
    };
    let mut known = rec.known;
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
    let record = Record {
        known,
        sync_token,
        ctag,
    };
    let hash = crate::save_record(who, folder_id, &encode(&record))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_tokens_beside_etags_and_read_old_records() {
        let mut rec = Record {
            sync_token: Some("http://radicale.org/ns/sync/abc".into()),
            ctag: Some("\"c1\"".into()),
            ..Record::default()
        };
        rec.known.insert("/a/cal/e1.ics".into(), "\"x\"".into());
        let bytes = encode(&rec);
        assert_eq!(decode(&bytes), rec);
        // Same content, same bytes: the record's hash (and the state) is stable.
        assert_eq!(encode(&decode(&bytes)), bytes);
        // A record written before tokens were kept: no token, so the next sync lists.
        let old = decode(b"/a/cal/e1.ics\t\"x\"\n");
        assert_eq!(old.known, rec.known);
        assert_eq!((old.sync_token, old.ctag), (None, None));
        assert_eq!(storable(Some("a\tb".into())), None);
        assert_eq!(storable(Some(String::new())), None);
    }
}
