//! Sync ([MS-ASCMD] 2.2.1.21): items of one or more collections, both ways.
//!
//! Per collection the device's state (`coll/…`) holds two points: the current sync key with
//! the connector state it stands for, and the previous one. A client that did not receive an
//! answer presents the previous key again: the connector (whose `sync` is replay-safe) yields
//! the same changes, and client Adds are recognised by their ClientId and answered with the
//! ServerIds already created — nothing is applied twice. Any other key gets Status 3 and the
//! client starts over from key 0.
//!
//! Changes a client makes (flags, deletes, adds) come back from the connector as changes on
//! the next sync; they are recognised ("echoes") and not sent back to the device that made
//! them. With `Wait`/`HeartbeatInterval` and nothing to report, the request is parked on the
//! collections' `mailbox:` events.

pub mod request;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::http::{Outcome, Park, Request, Response};
use switchboard_sdk::{host, Change, Error as HostError, ItemSummary, Principal, Result};
use switchboard_wbxml::{tags::airsync as a, Element};

use crate::folders::{self, IdMap};
use crate::http::{self as h, Version};
use crate::ids;
use crate::item::{self, calendar, contact, draft, email, task};
use crate::state::{self, DeviceKey};
use crate::synckey::{self, ClientKey, SyncKey};
use crate::wire::{self, Streams};
use crate::Ctx;
use request::{ClientCommand, Collection, SyncRequest};

/// Sync status values ([MS-ASCMD] 2.2.3.177.17).
pub mod status {
    /// Success.
    pub const OK: u8 = 1;
    /// Invalid or mismatched sync key: start over from 0.
    pub const INVALID_SYNC_KEY: u8 = 3;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u8 = 4;
    /// Server error.
    pub const SERVER_ERROR: u8 = 5;
    /// Conversion error (an item the server cannot store).
    pub const CONVERSION: u8 = 6;
    /// Object not found.
    pub const NOT_FOUND: u8 = 8;
    /// Mailbox full.
    pub const FULL: u8 = 9;
    /// The folder hierarchy changed: FolderSync first.
    pub const HIERARCHY_CHANGED: u8 = 12;
    /// An empty or partial request without a cached full request.
    pub const NO_CACHED_REQUEST: u8 = 13;
    /// Wait or HeartbeatInterval out of range.
    pub const BAD_WAIT: u8 = 14;
    /// Retry.
    pub const RETRY: u8 = 16;
}

/// HeartbeatInterval bounds (seconds); Wait is 1–59 minutes.
pub const HEARTBEAT_MIN: u32 = 60;
/// See [`HEARTBEAT_MIN`].
pub const HEARTBEAT_MAX: u32 = 3540;

/// One sync point: a key, the connector state it stands for, and the client Adds that were
/// applied on the way to it (ClientId → ServerId).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// The key.
    pub key: SyncKey,
    /// The connector's state (`None`: nothing synced yet).
    pub conn: Option<String>,
    /// Client adds applied on the way here.
    #[serde(default)]
    pub adds: BTreeMap<String, String>,
}

/// What the echo of a client change looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Echo {
    /// The client set these flags (read, flagged; `None`: left alone).
    Flags(Option<bool>, Option<bool>),
    /// The client created or deleted the item.
    Item,
}

/// The state of one collection on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollState {
    /// The newest key handed out.
    pub cur: Point,
    /// The key before it.
    pub prev: Option<Point>,
    /// The connector folder id.
    pub folder: String,
    /// Changes the client made itself, by connector item id, not to be echoed.
    #[serde(default)]
    pub echo: BTreeMap<String, Echo>,
    /// Mail on the device with its time, kept while a FilterType is in force, so mail that
    /// ages out of the window is removed from the phone (SoftDelete).
    #[serde(default)]
    pub aging: Vec<(String, i64)>,
}

/// The most messages tracked for ageing out per collection.
const MAX_AGING: usize = 5000;
/// The most SoftDeletes in one answer.
const MAX_SOFT_DELETES: usize = 100;

const MAX_ECHO: usize = 2000;

/// What was asked of the device, kept for empty and partial requests and for parking.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    collections: Vec<Collection>,
    heartbeat: Option<u32>,
}

fn cache_key(dk: &DeviceKey) -> String {
    format!("sreq/{}/{}", dk.who.address(), dk.device_id)
}

/// What the parked request needs to run again.
#[derive(Debug, Serialize, Deserialize)]
pub struct Parked {
    who: String,
    device_id: String,
    device_type: String,
    version: String,
}

/// Handle a Sync request.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Outcome> {
    let doc = match wire::decode_body(req, a::Sync) {
        Ok(d) => d,
        Err(e) => {
            return Ok(Outcome::Reply(wire::body_error(
                ctx.query.command,
                ctx.version,
                &e,
            )))
        }
    };
    let cached: Option<Cached> = state::load(&cache_key(&ctx.dk))?;
    let request = match doc {
        None => match cached {
            // An empty request repeats the last one (14.0+).
            Some(c) => {
                let mut collections = c.collections;
                // The keys are those of the last answer: the states' current keys.
                for col in &mut collections {
                    if let Ok(Some(st)) = state::load::<CollState>(&ctx.dk.collection(&col.id)) {
                        col.sync_key = st.cur.key.to_string();
                    }
                }
                SyncRequest {
                    collections,
                    heartbeat: c.heartbeat,
                    ..SyncRequest::default()
                }
            }
            None => return Ok(Outcome::Reply(top_status(status::NO_CACHED_REQUEST))),
        },
        Some(doc) => match request::parse(&doc) {
            Ok(mut r) => {
                if r.partial {
                    let Some(c) = cached else {
                        return Ok(Outcome::Reply(top_status(status::NO_CACHED_REQUEST)));
                    };
                    for old in c.collections {
                        if !r.collections.iter().any(|n| n.id == old.id) {
                            r.collections.push(old);
                        }
                    }
                    if r.heartbeat.is_none() && r.wait.is_none() {
                        r.heartbeat = c.heartbeat;
                    }
                }
                r
            }
            Err(request::Invalid(what)) => {
                host::log::info(&format!("eas: Sync request refused: {what}"));
                return Ok(Outcome::Reply(top_status(status::PROTOCOL_ERROR)));
            }
        },
    };
    let mut request = request;
    for c in &mut request.collections {
        c.options.restore();
    }
    // Long-poll bounds ([MS-ASCMD] 2.2.3.88.2, 2.2.3.198); both at once is a protocol error.
    let wait_secs = match (request.wait, request.heartbeat) {
        (Some(_), Some(_)) => return Ok(Outcome::Reply(top_status(status::PROTOCOL_ERROR))),
        (Some(w), _) if !(1..=59).contains(&w) => {
            return Ok(Outcome::Reply(bad_wait(if w < 1 { 1 } else { 59 })))
        }
        (_, Some(hb)) if !(HEARTBEAT_MIN..=HEARTBEAT_MAX).contains(&hb) => {
            return Ok(Outcome::Reply(bad_wait(if hb < HEARTBEAT_MIN {
                HEARTBEAT_MIN
            } else {
                HEARTBEAT_MAX
            })))
        }
        (Some(w), _) => Some(w * 60),
        (_, Some(hb)) => Some(hb),
        _ => None,
    };
    if !request.collections.is_empty() {
        let keep = Cached {
            collections: request.collections.clone(),
            heartbeat: wait_secs,
        };
        state::store(&cache_key(&ctx.dk), &keep)?;
    }
    run(ctx, &request, wait_secs)
}

/// Run the request; park when nothing is to be said and the client will wait.
fn run(ctx: &Ctx, request: &SyncRequest, wait_secs: Option<u32>) -> Result<Outcome> {
    let (list, map) = match crate::foldersync::current(&ctx.dk.who) {
        Ok(x) => x,
        Err(e) => {
            host::log::warn(&format!("eas: Sync: folders: {e}"));
            return Ok(Outcome::Reply(top_status(status::SERVER_ERROR)));
        }
    };
    let mut streams = Streams::new();
    let mut cols = Element::new(a::Collections);
    let mut anything = false;
    let mut watch = Vec::new();
    for c in &request.collections {
        let Some(folder) = map.connector_id(&c.id).map(str::to_string) else {
            cols.push(collection_status(c, status::HIERARCHY_CHANGED, ctx.version));
            anything = true;
            continue;
        };
        let kind = list.iter().find(|f| f.id == c.id).map_or(1, |f| f.kind);
        watch.push(crate::state::folder_event(&ctx.dk.who, &folder));
        let (el, said) = collection(ctx, c, &folder, kind, &map, &mut streams)?;
        anything |= said;
        cols.push(el);
    }
    if !anything {
        if let Some(secs) = wait_secs {
            watch.push(crate::state::hierarchy_event(&ctx.dk.who));
            let parked = Parked {
                who: ctx.dk.who.address(),
                device_id: ctx.dk.device_id.clone(),
                device_type: ctx.query.device_type.clone(),
                version: ctx.version.to_string(),
            };
            return Ok(Outcome::Park(Park {
                watch,
                timeout_ms: secs.saturating_mul(1000),
                state: serde_json::to_vec(&("sync", parked)).unwrap_or_default(),
                // Nothing changed within the wait: an empty answer.
                on_timeout: h::empty(200),
                group: Some(ctx.dk.park_group()),
            }));
        }
    }
    if !anything && ctx.version.has_common_status() {
        // Nothing to report: the empty Sync response ([MS-ASCMD] 2.2.1.21.2).
        return Ok(Outcome::Reply(h::empty(200)));
    }
    let doc = Element::new(a::Sync).with(cols);
    Ok(Outcome::Reply(wire::respond_streaming(&doc, streams)))
}

/// A parked Sync woke up: run the cached request again (no client commands).
pub fn resume(parked: Parked) -> Result<Outcome> {
    let (Some(who), Some(version)) = (
        Principal::parse(&parked.who),
        Version::from_header(&parked.version),
    ) else {
        return Ok(Outcome::Reply(h::empty(500)));
    };
    let ctx = Ctx::resumed(who, parked.device_id, parked.device_type, version);
    let cached: Option<Cached> = state::load(&cache_key(&ctx.dk))?;
    let Some(c) = cached else {
        return Ok(Outcome::Reply(h::empty(200)));
    };
    let mut request = SyncRequest {
        collections: c.collections,
        ..SyncRequest::default()
    };
    for col in &mut request.collections {
        col.options.restore();
        // The client's key is whatever the state holds now.
        if let Ok(Some(st)) = state::load::<CollState>(&ctx.dk.collection(&col.id)) {
            col.sync_key = st.cur.key.to_string();
        }
        col.get_changes = true;
    }
    run(&ctx, &request, None)
}

fn top_status(code: u8) -> Response {
    wire::respond(&Element::new(a::Sync).with_text_child(a::Status, code.to_string()))
}

fn bad_wait(limit: u32) -> Response {
    wire::respond(
        &Element::new(a::Sync)
            .with_text_child(a::Status, status::BAD_WAIT.to_string())
            .with_text_child(a::Limit, limit.to_string()),
    )
}

fn collection_head(c: &Collection, key: &str, version: Version, class: &str) -> Element {
    let mut e = Element::new(a::Collection);
    if version == Version::V12_1 {
        e.push(Element::text_element(a::Class, class));
    }
    e.with_text_child(a::SyncKey, key)
        .with_text_child(a::CollectionId, c.id.clone())
}

fn collection_status(c: &Collection, code: u8, version: Version) -> Element {
    let key = if code == status::INVALID_SYNC_KEY {
        "0"
    } else {
        c.sync_key.as_str()
    };
    collection_head(c, key, version, "Email").with_text_child(a::Status, code.to_string())
}

/// Milliseconds of history a FilterType keeps (mail); `None`: everything.
pub fn filter_window(filter: u8) -> Option<i64> {
    const DAY: i64 = 86_400_000;
    Some(match filter {
        1 => DAY,
        2 => 3 * DAY,
        3 => 7 * DAY,
        4 => 14 * DAY,
        5 => 31 * DAY,
        6 => 92 * DAY,
        7 => 183 * DAY,
        _ => return None,
    })
}

/// One collection: apply the client's commands, collect the server's changes. Returns the
/// element and whether it says anything (changes, responses, a new key).
fn collection(
    ctx: &Ctx,
    c: &Collection,
    folder: &str,
    kind: u8,
    _map: &IdMap,
    streams: &mut Streams,
) -> Result<(Element, bool)> {
    let who = &ctx.dk.who;
    let class = folders::class_of(kind);
    let skey = ctx.dk.collection(&c.id);
    let (stored, raw): (Option<CollState>, _) = state::load_raw(&skey)?;

    // Which point does the client stand on?
    let (mut st, base) = match (synckey::parse(&c.sync_key), stored) {
        (ClientKey::Initial, _) => {
            let key = SyncKey::first(&format!("{}/{}/{}", who.address(), ctx.dk.device_id, c.id));
            let st = CollState {
                cur: Point {
                    key,
                    conn: None,
                    adds: BTreeMap::new(),
                },
                prev: None,
                folder: folder.to_string(),
                echo: BTreeMap::new(),
                aging: Vec::new(),
            };
            state::store(&skey, &st)?;
            let e = collection_head(c, &key.to_string(), ctx.version, class)
                .with_text_child(a::Status, status::OK.to_string());
            return Ok((e, true));
        }
        (ClientKey::Issued(k), Some(st)) if st.folder == folder => {
            let base = if st.cur.key == k {
                st.cur.clone()
            } else if let Some(p) = st.prev.clone().filter(|p| p.key == k) {
                p
            } else {
                return Ok((
                    collection_status(c, status::INVALID_SYNC_KEY, ctx.version),
                    true,
                ));
            };
            (st, base)
        }
        _ => {
            return Ok((
                collection_status(c, status::INVALID_SYNC_KEY, ctx.version),
                true,
            ))
        }
    };
    let replay = base.key != st.cur.key;
    let base_key = base.key;

    // Client commands.
    let mut responses = Element::new(a::Responses);
    let mut adds = if replay {
        st.cur.adds.clone()
    } else {
        BTreeMap::new()
    };
    let mut client_changed = false;
    for cmd in &c.commands {
        client_changed = true;
        match cmd {
            ClientCommand::Add { client_id, data } => {
                let (sid, code) = match adds.get(client_id) {
                    Some(sid) => (Some(sid.clone()), status::OK),
                    None => match add_item(who, folder, class, data, kind, ctx.version) {
                        Ok(item) => {
                            st.echo.insert(item.id.clone(), Echo::Item);
                            let sid = ids::server_id(who, &item.id)?;
                            adds.insert(client_id.clone(), sid.clone());
                            (Some(sid), status::OK)
                        }
                        Err(e) => (None, item_status(&e)),
                    },
                };
                let mut r = Element::new(a::Add).with_text_child(a::ClientId, client_id.clone());
                if let Some(sid) = sid {
                    r.push(Element::text_element(a::ServerId, sid));
                }
                responses.push(r.with_text_child(a::Status, code.to_string()));
            }
            ClientCommand::Change { server_id, data } => {
                let code = match ids::item_id(who, server_id)? {
                    None => status::NOT_FOUND,
                    Some(id) => {
                        match change_item(who, &id, class, data, &mut st, kind, ctx.version) {
                            Ok(()) => status::OK,
                            Err(e) => item_status(&e),
                        }
                    }
                };
                // Successful changes are not answered ([MS-ASCMD] 2.2.3.24).
                if code != status::OK {
                    responses.push(
                        Element::new(a::Change)
                            .with_text_child(a::ServerId, server_id.clone())
                            .with_text_child(a::Status, code.to_string()),
                    );
                }
            }
            ClientCommand::Delete { server_id } => {
                let code = match ids::item_id(who, server_id)? {
                    None => status::OK,
                    Some(id) => {
                        st.echo.insert(id.clone(), Echo::Item);
                        st.aging.retain(|(s, _)| s != server_id);
                        match delete_item(who, &id, folder, kind, c.deletes_as_moves) {
                            Ok(()) | Err(HostError::NotFound(_)) => status::OK,
                            Err(e) => item_status(&e),
                        }
                    }
                };
                if code != status::OK {
                    responses.push(
                        Element::new(a::Delete)
                            .with_text_child(a::ServerId, server_id.clone())
                            .with_text_child(a::Status, code.to_string()),
                    );
                }
            }
            ClientCommand::Fetch { server_id } => {
                let r = Element::new(a::Fetch).with_text_child(a::ServerId, server_id.clone());
                let found = match ids::item_id(who, server_id)? {
                    Some(id) => fetch_item(who, &id, class, c, ctx.version, streams)?,
                    None => None,
                };
                responses.push(match found {
                    Some(data) => r.with_text_child(a::Status, "1").with(data),
                    None => r.with_text_child(a::Status, status::NOT_FOUND.to_string()),
                });
            }
        }
    }

    // Server changes.
    let mut commands = Element::new(a::Commands);
    let mut conn = base.conn.clone();
    let mut more = false;
    if c.get_changes {
        let cutoff = if class == "Email" {
            filter_window(c.options.filter).map(|w| crate::time::now_ms() - w)
        } else {
            None
        };
        // Pages whose changes are all filtered out (old mail, echoes) are skipped here rather
        // than answered empty with MoreAvailable, up to a bound.
        let mut pages = 0;
        loop {
            let first = pages == 0;
            let page = match host::mailstore::sync(who, folder, conn.as_deref(), page_size(c)) {
                Ok(p) => p,
                Err(_) if !first => break,
                Err(HostError::NotFound(_)) => {
                    return Ok((
                        collection_status(c, status::HIERARCHY_CHANGED, ctx.version),
                        true,
                    ))
                }
                Err(HostError::Invalid(_) | HostError::Conflict(_)) => {
                    // The connector no longer knows the state: the client starts over.
                    let _ = host::kv::delete(&skey);
                    return Ok((
                        collection_status(c, status::INVALID_SYNC_KEY, ctx.version),
                        true,
                    ));
                }
                Err(e) => {
                    host::log::warn(&format!("eas: Sync {folder}: {e}"));
                    return Ok((
                        collection_status(c, status::SERVER_ERROR, ctx.version),
                        true,
                    ));
                }
            };
            pages += 1;
            more = page.more;
            conn = Some(page.state.clone());
            for change in page.changes {
                if let Some(el) =
                    server_change(ctx, c, class, change, cutoff, &mut st, replay, streams)?
                {
                    commands.push(el);
                }
            }
            if !more || commands.elements().next().is_some() || pages >= MAX_SKIPPED_PAGES {
                break;
            }
        }
    }

    // Mail that aged out of the FilterType window leaves the phone.
    if c.get_changes && class == "Email" {
        match filter_window(c.options.filter) {
            Some(w) => {
                let cutoff = crate::time::now_ms() - w;
                let mut gone = 0;
                st.aging.retain(|(sid, t)| {
                    if *t < cutoff && gone < MAX_SOFT_DELETES {
                        commands.push(
                            Element::new(a::SoftDelete).with_text_child(a::ServerId, sid.clone()),
                        );
                        gone += 1;
                        false
                    } else {
                        true
                    }
                });
            }
            None => st.aging.clear(),
        }
    }

    // The new key: unchanged when nothing happened; the current one when a replay ends
    // where the lost answer did; else the next.
    let said = commands.elements().next().is_some() || responses.elements().next().is_some();
    let key = if !said && !client_changed && conn == base.conn {
        base.key
    } else if replay && conn == st.cur.conn {
        st.cur.adds = adds;
        st.cur.key
    } else {
        let next = st.cur.key.next();
        st.prev = Some(base);
        st.cur = Point {
            key: next,
            conn,
            adds,
        };
        next
    };
    while st.echo.len() > MAX_ECHO {
        let Some(first) = st.echo.keys().next().cloned() else {
            break;
        };
        st.echo.remove(&first);
    }
    if !state::store_if(&skey, raw.as_deref(), &st)? {
        // Another request of this device moved the collection meanwhile: let the client
        // retry rather than overwrite what that request recorded.
        host::log::info(&format!("eas: concurrent Sync of collection {}", c.id));
        return Ok((collection_status(c, status::RETRY, ctx.version), true));
    }

    let mut e = collection_head(c, &key.to_string(), ctx.version, class)
        .with_text_child(a::Status, status::OK.to_string());
    if more {
        e.push(Element::new(a::MoreAvailable));
    }
    if commands.elements().next().is_some() {
        e.push(commands);
    }
    if responses.elements().next().is_some() {
        e.push(responses);
    }
    Ok((e, said || key != base_key))
}

/// Most connector pages read for one answer when filters leave them empty.
const MAX_SKIPPED_PAGES: u32 = 20;

/// Most bytes of item data one answer should carry (memory and the per-call deadline).
const RESPONSE_BUDGET: u64 = 8 * 1024 * 1024;

/// How many changes to ask the connector for: the window, fewer when bodies are large, so one
/// answer stays within an 8 MiB budget (MoreAvailable brings the rest).
pub fn page_size(c: &Collection) -> u32 {
    let per_item = u64::from(item::cap_for(c.options.body_pref().truncation)).max(16 * 1024);
    let fit = u32::try_from(RESPONSE_BUDGET / per_item).unwrap_or(u32::MAX);
    c.window.min(fit.max(5)).min(100)
}

/// The status of a failed item operation.
fn item_status(e: &HostError) -> u8 {
    match e {
        HostError::NotFound(_) => status::NOT_FOUND,
        HostError::Quota(_) => status::FULL,
        HostError::Invalid(_) | HostError::Denied(_) => status::CONVERSION,
        HostError::Unavailable(_) | HostError::Conflict(_) => status::RETRY,
        HostError::Internal(_) => status::SERVER_ERROR,
    }
}

/// One server change as a command for the device; `None` when it is an echo or filtered.
#[allow(clippy::too_many_arguments)]
fn server_change(
    ctx: &Ctx,
    c: &Collection,
    class: &str,
    change: Change,
    cutoff: Option<i64>,
    st: &mut CollState,
    replay: bool,
    streams: &mut Streams,
) -> Result<Option<Element>> {
    let who = &ctx.dk.who;
    // On a replay the echo record is still needed for the next attempt: read, don't take.
    let id_of = match &change {
        Change::Added(i) | Change::Changed(i) => i.id.clone(),
        Change::Deleted(i) => i.clone(),
    };
    let echoed = if replay {
        st.echo.get(&id_of).copied()
    } else {
        st.echo.remove(&id_of)
    };
    let aging = cutoff.is_some() && class == "Email";
    Ok(match change {
        Change::Added(item) => {
            if echoed == Some(Echo::Item) {
                return Ok(None);
            }
            if cutoff.is_some_and(|t| item.timestamp_ms < t) {
                return Ok(None);
            }
            let Some(data) = item_data(who, &item, class, c, ctx.version, streams)? else {
                return Ok(None);
            };
            let sid = ids::server_id(who, &item.id)?;
            if aging && st.aging.len() < MAX_AGING {
                st.aging.push((sid.clone(), item.timestamp_ms));
            }
            Some(
                Element::new(a::Add)
                    .with_text_child(a::ServerId, sid)
                    .with(data),
            )
        }
        Change::Changed(item) => {
            if let Some(Echo::Flags(r, f)) = echoed {
                if r.is_none_or(|r| r == item.read) && f.is_none_or(|f| f == item.flagged) {
                    return Ok(None);
                }
            }
            let data = if class == "Email" {
                email::application_data(who, &item, None, None, ctx.version, streams)?
            } else {
                match item_data(who, &item, class, c, ctx.version, streams)? {
                    Some(d) => d,
                    None => return Ok(None),
                }
            };
            Some(
                Element::new(a::Change)
                    .with_text_child(a::ServerId, ids::server_id(who, &item.id)?)
                    .with(data),
            )
        }
        Change::Deleted(id) => {
            let sid = ids::server_id(who, &id)?;
            st.aging.retain(|(s, _)| *s != sid);
            if echoed == Some(Echo::Item) {
                return Ok(None);
            }
            Some(Element::new(a::Delete).with_text_child(a::ServerId, sid))
        }
    })
}

/// The full `ApplicationData` of an item of `class`; `None` when it vanished meanwhile or
/// the class is one this server does not convert yet.
fn item_data(
    who: &Principal,
    item: &ItemSummary,
    class: &str,
    c: &Collection,
    version: Version,
    streams: &mut Streams,
) -> Result<Option<Element>> {
    let cap = if class == "Email" {
        let pref = c.options.body_pref();
        if pref.kind == crate::item::body::kind::MIME && pref.truncation.is_none() {
            item::PARSE_CAP
        } else {
            item::cap_for(pref.truncation)
        }
    } else {
        item::PARSE_CAP
    };
    let content = match item::load_up_to(who, item, cap) {
        Ok(x) => x,
        Err(HostError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(match class {
        "Email" => {
            let msg = crate::mime::parse(&content.bytes);
            Some(email::application_data(
                who,
                item,
                Some((&content, &msg)),
                Some(c.options.body_pref()),
                version,
                streams,
            )?)
        }
        "Contacts" => Some(contact::application_data(&String::from_utf8_lossy(
            &content.bytes,
        ))),
        "Calendar" => calendar::application_data(
            &String::from_utf8_lossy(&content.bytes),
            &who.address(),
            version,
        )
        .filter(|d| !calendar_filtered(d, c.options.filter)),
        "Tasks" => task::application_data(&String::from_utf8_lossy(&content.bytes)),
        "Notes" => Some(task::note_data(
            &String::from_utf8_lossy(&content.bytes),
            item.timestamp_ms,
        )),
        _ => None,
    })
}

/// Whether a FilterType (4 two weeks … 7 six months back) hides a past, non-recurring event.
fn calendar_filtered(data: &Element, filter: u8) -> bool {
    let Some(window) = filter_window(filter).filter(|_| (4..=7).contains(&filter)) else {
        return false;
    };
    if data.child("Recurrence").is_some() {
        return false;
    }
    let end = data.child_text("EndTime").and_then(crate::time::parse);
    end.is_some_and(|e| e < crate::time::now_ms() - window)
}

/// Fetch one item whole (a Sync Fetch).
fn fetch_item(
    who: &Principal,
    id: &str,
    class: &str,
    c: &Collection,
    version: Version,
    streams: &mut Streams,
) -> Result<Option<Element>> {
    let summary = crate::item::bare(id);
    let mut full = c.clone();
    for p in &mut full.options.body {
        p.truncation = None;
    }
    item_data(who, &summary, class, &full, version, streams)
}

/// Create an item from a client's Add.
fn add_item(
    who: &Principal,
    folder: &str,
    class: &str,
    data: &Element,
    kind: u8,
    version: Version,
) -> Result<ItemSummary> {
    let content = match class {
        "Email" if kind == folders::kind::DRAFTS && version.is_16() => {
            draft::to_mime(data, &who.address()).into_bytes()
        }
        "Contacts" => {
            let uid = format!(
                "{:08x}",
                crate::provision::fnv(format!("{data}{}", crate::time::now_ms()).as_bytes())
            );
            contact::to_vcard(data, &uid).into_bytes()
        }
        "Calendar" => {
            let uid = format!(
                "{:08x}-{:08x}@switchboard",
                crate::provision::fnv(format!("{data}").as_bytes()),
                crate::provision::fnv(format!("{}", crate::time::now_ms()).as_bytes())
            );
            let ical = calendar::to_ical_as(data, &uid, Some(&who.address()));
            // From 16.0 the server sends the invitations of meetings made on the phone.
            if version.is_16() {
                if let Some(mail) = calendar::invitation(&ical, &who.address()) {
                    let upload = Upload::from_bytes(mail.as_bytes())?;
                    if let Err(e) = host::mailstore::send(who, &upload, true) {
                        host::log::warn(&format!("eas: sending invitations: {e}"));
                    }
                }
            }
            ical.into_bytes()
        }
        "Tasks" => {
            let uid = format!(
                "{:08x}-{:08x}@switchboard",
                crate::provision::fnv(format!("{data}").as_bytes()),
                crate::provision::fnv(format!("{}", crate::time::now_ms()).as_bytes())
            );
            task::to_ical(data, &uid).into_bytes()
        }
        "Notes" => task::note_text(data).into_bytes(),
        _ => {
            return Err(HostError::Denied(format!(
                "creating {class} items from a phone is not supported"
            )))
        }
    };
    let upload = Upload::from_bytes(&content)?;
    host::mailstore::create_item(who, folder, &upload)
}

/// Apply a client's Change.
#[allow(clippy::too_many_arguments)]
fn change_item(
    who: &Principal,
    id: &str,
    class: &str,
    data: &Element,
    st: &mut CollState,
    kind: u8,
    version: Version,
) -> Result<()> {
    match class {
        "Email"
            if kind == folders::kind::DRAFTS
                && version.is_16()
                && (draft::is_edit(data) || draft::wants_send(data)) =>
        {
            if draft::is_edit(data) {
                let mime = draft::to_mime(data, &who.address());
                let upload = Upload::from_bytes(mime.as_bytes())?;
                host::mailstore::replace_item(who, id, &upload)?;
                st.echo.insert(id.to_string(), Echo::Flags(None, None));
            }
            if draft::wants_send(data) {
                // Stage the stored draft in chunks, send it, and remove it from Drafts.
                let upload = Upload::create()?;
                let mut offset = 0u64;
                loop {
                    let chunk = host::mailstore::fetch(who, id, None, offset, 256 * 1024)?;
                    if chunk.data.is_empty() {
                        break;
                    }
                    offset += chunk.data.len() as u64;
                    upload.append(&chunk.data)?;
                    if offset >= chunk.total {
                        break;
                    }
                }
                host::mailstore::send(who, &upload, true)?;
                host::mailstore::delete_item(who, id)?;
                st.echo.insert(id.to_string(), Echo::Item);
            }
            Ok(())
        }
        "Email" => {
            let (read, flagged) = email::parse_change(data);
            if read.is_none() && flagged.is_none() {
                return Ok(());
            }
            host::mailstore::set_flags(who, id, read, flagged)?;
            // Remember what was set, to recognise the connector's echo of it.
            st.echo.insert(id.to_string(), Echo::Flags(read, flagged));
            Ok(())
        }
        "Contacts" => {
            let old = stored_whole(who, id)?;
            let uid = contact::uid(&old).unwrap_or_else(|| id.to_string());
            let vcard = contact::merge(&old, data, &uid);
            let upload = Upload::from_bytes(vcard.as_bytes())?;
            host::mailstore::replace_item(who, id, &upload)?;
            Ok(())
        }
        "Calendar" => {
            // Keep the event's UID when the phone does not repeat it.
            let old = stored_whole(who, id)?;
            let uid = calendar::parse(&old)
                .and_then(|c| c.child("VEVENT").and_then(|e| e.text("UID")))
                .unwrap_or_else(|| id.to_string());
            let ical = calendar::merge(&old, data, &uid, &who.address());
            let upload = Upload::from_bytes(ical.as_bytes())?;
            host::mailstore::replace_item(who, id, &upload)?;
            Ok(())
        }
        _ => Err(HostError::Denied(format!(
            "changing {class} items is not supported"
        ))),
    }
}

/// The whole stored text of a contact or event that a change is merged into. One that does
/// not fit in [`crate::item::PARSE_CAP`] is refused rather than merged from its start and
/// written back cut short.
fn stored_whole(who: &Principal, id: &str) -> Result<String> {
    let content = crate::item::load(who, &crate::item::bare(id))?;
    whole_text(&content)
}

fn whole_text(content: &crate::item::Content) -> Result<String> {
    if !content.complete() {
        return Err(HostError::Invalid(format!(
            "stored item of {} bytes is too large to merge a change into",
            content.total
        )));
    }
    Ok(String::from_utf8_lossy(&content.bytes).into_owned())
}

/// Delete (or move to Deleted Items) a client's Delete.
fn delete_item(who: &Principal, id: &str, folder: &str, kind: u8, as_move: bool) -> Result<()> {
    if as_move && folders::class_of(kind) == "Email" {
        let trash = host::mailstore::list_folders(who)?
            .into_iter()
            .find(|f| f.kind == switchboard_sdk::FolderKind::Deleted);
        if let Some(t) = trash.filter(|t| t.id != folder) {
            host::mailstore::move_item(who, id, &t.id)?;
            return Ok(());
        }
    }
    host::mailstore::delete_item(who, id)
}
