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

/// Before a windowed listing: what the collection holds (calendar? which components?) and
/// the sync-token and CTag the listing's record will name.
const PROPFIND_KIND_TAGS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/"><D:prop><D:resourcetype/><C:supported-calendar-component-set/><D:sync-token/><CS:getctag/></D:prop></D:propfind>"#;

/// The span of time calendars and task lists are listed for (`calendar_past_days`,
/// `calendar_future_days`), in seconds since the epoch; `None` is an open side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: Option<i64>,
    end: Option<i64>,
}

impl Window {
    /// The window around `now` (seconds), `None` when neither side is limited. The ends are
    /// whole UTC days (from the start of today back, to the end of today forward), so a sync
    /// replayed later the same day lists the same members and gives the same page.
    fn around(now: i64, past_days: u32, future_days: u32) -> Option<Window> {
        if past_days == 0 && future_days == 0 {
            return None;
        }
        let today = now.div_euclid(86_400) * 86_400;
        let days = |n: u32| i64::from(n) * 86_400;
        Some(Window {
            start: (past_days > 0).then(|| today - days(past_days)),
            end: (future_days > 0).then(|| today + days(future_days) + 86_400),
        })
    }
}

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

/// A REPORT's multistatus body; `None` when the server answers it with anything but 207 (it
/// does not support the report: the caller falls back to a listing). A refused login is an
/// error.
async fn report(
    t: &DavTarget,
    path: &str,
    depth: Option<&str>,
    body: String,
) -> Result<Option<Vec<u8>>, ImapError> {
    let mut headers = vec![("Content-Type", "application/xml; charset=utf-8")];
    if let Some(d) = depth {
        headers.push(("Depth", d));
    }
    let r = request(t, "REPORT", path, &headers, body.into_bytes(), MAX_LISTING).await?;
    if r.status == 401 {
        check(t, &r, path)?;
    }
    Ok((r.status == 207).then_some(r.body))
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

/// A listing of the calendar objects that overlap `window` (`calendar-query` REPORTs, RFC
/// 4791 §7.8, one per component the collection holds: VEVENT, VTODO): href → ETag, and the
/// sync-token and CTag the record may name. `Ok(None)` when the window does not apply or
/// cannot be used — an address book, a collection of neither component, a server that
/// refuses the query or caps its matches (507) — and the caller lists everything.
///
/// The token and CTag come from a `PROPFIND Depth: 0` before the queries, so a later
/// `sync-collection` from that token reports every change made since (members listed again
/// with the ETag the client holds are no change). They are kept only if a second one after
/// the queries finds them unchanged: a token or CTag that is a hash of the members' ETags
/// (Radicale's) could otherwise name a state the listing did not see (an edit the query saw
/// and that was undone before the second check is caught by the GETs' ETag check). Without
/// them, the next sync lists again.
#[allow(clippy::type_complexity)]
async fn windowed_listing(
    t: &DavTarget,
    path: &str,
    window: Window,
) -> Result<Option<(BTreeMap<String, String>, Option<String>, Option<String>)>, ImapError> {
    let entries = propfind(t, path, "0", PROPFIND_KIND_TAGS).await?;
    let Some(own) = entries.into_iter().find(|e| e.collection) else {
        return Ok(None);
    };
    if !own.calendar {
        return Ok(None);
    }
    // No component set: the server allows every component (RFC 4791 §5.2.3).
    let components: Vec<&str> = ["VEVENT", "VTODO"]
        .into_iter()
        .filter(|c| own.components.is_empty() || own.components.iter().any(|o| o == c))
        .collect();
    if components.is_empty() {
        return Ok(None);
    }
    let own_path = super::percent_decode(path);
    let own_path = own_path.trim_end_matches('/');
    let mut current = BTreeMap::new();
    for component in components {
        let body = xml::calendar_query(component, window.start, window.end);
        let Some(answer) = report(t, path, Some("1"), body).await? else {
            return Ok(None);
        };
        for e in xml::multistatus(&answer).map_err(ImapError::Protocol)? {
            let href = path_of_href(&e.href);
            if super::percent_decode(&href).trim_end_matches('/') == own_path {
                if e.status == Some(507) {
                    return Ok(None);
                }
                continue;
            }
            if e.collection {
                continue;
            }
            // Without an ETag a member is not listed (as in the full listing).
            if let Some(etag) = e.etag {
                current.insert(href, etag);
            }
        }
    }
    let (token, ctag) = (storable(own.sync_token), storable(own.ctag));
    let tags = if collection_tags(t, path).await? == (token.clone(), ctag.clone()) {
        (token, ctag)
    } else {
        (None, None)
    };
    Ok(Some((current, tags.0, tags.1)))
}

/// Every member's ETag (`PROPFIND Depth: 1`), with the collection's own sync-token and CTag
/// from the same answer.
#[allow(clippy::type_complexity)]
async fn etag_listing(
    t: &DavTarget,
    path: &str,
) -> Result<(BTreeMap<String, String>, Option<String>, Option<String>), ImapError> {
    let entries = propfind(t, path, "1", PROPFIND_ETAGS).await?;
    let own = super::percent_decode(path);
    let own = own.trim_end_matches('/');
    let (mut token, mut ctag) = (None, None);
    let mut current = BTreeMap::new();
    for e in entries {
        if e.collection {
            if super::percent_decode(&e.href).trim_end_matches('/') == own {
                token = storable(e.sync_token);
                ctag = storable(e.ctag);
            }
        } else if e.href != path {
            if let Some(etag) = e.etag {
                current.insert(e.href, etag);
            }
        }
    }
    Ok((current, token, ctag))
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
    let Some(answer) = report(t, path, None, body).await? else {
        return Ok(None);
    };
    let (entries, new_token) = xml::multistatus_with_token(&answer).map_err(ImapError::Protocol)?;
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
///
/// With a calendar window set (`calendar_past_days`/`calendar_future_days`), the listing of
/// a calendar or task list is a `calendar-query` of what overlaps the window instead, so the
/// client gets (and the connector GETs) only those; address books are listed whole. The
/// window is applied when listing, not to reports: an event that enters the window later
/// without being edited is handed out only by the next listing (after a refused or expired
/// token, a partial page); one that leaves it stays on the client until then.
pub fn sync(
    who: &Principal,
    folder_id: &str,
    path: &str,
    state: Option<&str>,
    max: u32,
) -> Result<SyncPage> {
    let t = target_for(who, path)?;
    let settings = Settings::load()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let window = Window::around(
        now,
        settings.calendar_past_days,
        settings.calendar_future_days,
    );
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
        // The report names every changed member, also one outside the calendar window (an
        // event moved out of it, an old one edited): it is delivered all the same — the client
        // gets a few more items than the window holds, never fewer.
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
                // A windowed listing holds only what overlaps the window: items the client
                // holds outside it (delivered by a report, or moved out of the window since)
                // are removed from the client here, as a fresh sync would not hand them out.
                let windowed = match window {
                    Some(w) => windowed_listing(&t2, &p2, w).await?,
                    None => None,
                };
                match windowed {
                    Some(f) => f,
                    None => etag_listing(&t2, &p2).await?,
                }
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

    #[test]
    fn the_window_is_whole_utc_days_and_open_where_unset() {
        let day = 86_400;
        let now = 20_000 * day + 3_600 * 13 + 7; // 13:00:07 on day 20000
        assert_eq!(Window::around(now, 0, 0), None);
        assert_eq!(
            Window::around(now, 30, 365),
            Some(Window {
                start: Some(19_970 * day),
                end: Some(20_366 * day)
            })
        );
        // The same window all day long: replays later that day list the same members.
        assert_eq!(
            Window::around(20_000 * day, 30, 365),
            Window::around(20_001 * day - 1, 30, 365)
        );
        assert_eq!(
            Window::around(now, 7, 0),
            Some(Window {
                start: Some(19_993 * day),
                end: None
            })
        );
        assert_eq!(
            Window::around(now, 0, 1),
            Some(Window {
                start: None,
                end: Some(20_002 * day)
            })
        );
        let far = Window::around(now, u32::MAX, u32::MAX).unwrap();
        assert!(far.start.unwrap() < 0 && far.end.unwrap() > now);
    }

    #[test]
    fn a_window_that_is_not_a_number_names_the_setting() {
        let host = switchboard_sdk::mock::MockHost::new()
            .with_config("host", "127.0.0.1")
            .with_config("master_user", "switchboard")
            .with_config("master_password", "x")
            .with_config("calendar_past_days", "30")
            .with_config("calendar_future_days", "a year");
        let err = host.run(Settings::load).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"connector settings: calendar_future_days: not a number: "a year""#
        );
        let host = switchboard_sdk::mock::MockHost::new()
            .with_config("host", "127.0.0.1")
            .with_config("master_user", "switchboard")
            .with_config("master_password", "x")
            .with_config("calendar_past_days", "-3");
        let err = host.run(Settings::load).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"connector settings: calendar_past_days: not a number: "-3""#
        );
        let host = switchboard_sdk::mock::MockHost::new()
            .with_config("host", "127.0.0.1")
            .with_config("master_user", "switchboard")
            .with_config("master_password", "x")
            .with_config("calendar_past_days", "30");
        let s = host.run(Settings::load).unwrap();
        assert_eq!((s.calendar_past_days, s.calendar_future_days), (30, 0));
    }
}
