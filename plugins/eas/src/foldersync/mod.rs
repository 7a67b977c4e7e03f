//! FolderSync, FolderCreate, FolderUpdate, FolderDelete ([MS-ASCMD] 2.2.1.3–2.2.1.6).
//!
//! The device's hierarchy state (`hier/…`) is the folder list its current sync key stands
//! for, plus the previous key and list: a client that lost an answer presents the previous key
//! again and gets the same changes (computed against the previous list), never an error.
//! Changes are the difference between the state's list and the mailbox now.

use serde::{Deserialize, Serialize};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{host, Error as HostError, Principal, Result};
use switchboard_wbxml::{tags::folderhierarchy as fh, Element};

use crate::folders::{self, DeviceFolder, IdMap};
use crate::state;
use crate::synckey::{self, ClientKey, SyncKey};
use crate::wire;
use crate::Ctx;

/// FolderSync / FolderCreate / … status values ([MS-ASCMD] 2.2.3.177.x).
pub mod status {
    /// Success.
    pub const OK: u8 = 1;
    /// A folder with that name exists.
    pub const EXISTS: u8 = 2;
    /// A special (default) folder cannot be changed.
    pub const SPECIAL_FOLDER: u8 = 3;
    /// The folder does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// The parent folder does not exist.
    pub const PARENT_NOT_FOUND: u8 = 5;
    /// Server error.
    pub const SERVER_ERROR: u8 = 6;
    /// Invalid or mismatched sync key: FolderSync from 0.
    pub const INVALID_SYNC_KEY: u8 = 9;
    /// Malformed request.
    pub const MALFORMED: u8 = 10;
    /// Unknown folder type.
    pub const UNKNOWN_TYPE: u8 = 12;
}

/// One snapshot: a key and the folder list it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The key.
    pub key: SyncKey,
    /// The folders the device knows at that key.
    pub folders: Vec<DeviceFolder>,
}

/// The hierarchy state of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HierState {
    /// The newest key handed out.
    pub cur: Snapshot,
    /// The key before it (replay).
    pub prev: Option<Snapshot>,
}

impl HierState {
    /// The snapshot a client key stands for, if it is the current or the previous one.
    pub fn base(&self, k: SyncKey) -> Option<&Snapshot> {
        if self.cur.key == k {
            Some(&self.cur)
        } else {
            self.prev.as_ref().filter(|p| p.key == k)
        }
    }

    /// Record `folders` as what the device has after an answer from `base`: same key when
    /// nothing changed, else the next key with `base` kept for replay.
    pub fn advance(&mut self, base: &Snapshot, folders: Vec<DeviceFolder>) -> SyncKey {
        if base.folders == folders {
            return base.key;
        }
        // The current key already stands for exactly this list (a replayed answer).
        if self.cur.folders == folders {
            return self.cur.key;
        }
        let key = self.cur.key.next();
        self.prev = Some(base.clone());
        self.cur = Snapshot { key, folders };
        key
    }
}

/// The changes from `old` to `new`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff<'a> {
    /// New folders (parents first).
    pub add: Vec<&'a DeviceFolder>,
    /// Renamed, moved or retyped.
    pub update: Vec<&'a DeviceFolder>,
    /// Ids gone.
    pub delete: Vec<&'a str>,
}

/// Compare two folder lists.
pub fn diff<'a>(old: &'a [DeviceFolder], new: &'a [DeviceFolder]) -> Diff<'a> {
    let mut d = Diff::default();
    for n in new {
        match old.iter().find(|o| o.id == n.id) {
            None => d.add.push(n),
            Some(o) if o != n => d.update.push(n),
            Some(_) => {}
        }
    }
    for o in old {
        if !new.iter().any(|n| n.id == o.id) {
            d.delete.push(&o.id);
        }
    }
    d
}

/// The device's folders now (list_folders + the user's id map).
pub fn current(who: &Principal) -> Result<(Vec<DeviceFolder>, IdMap)> {
    let list = host::mailstore::list_folders(who)?;
    let map = folders::id_map(who, &list)?;
    Ok((folders::device_view(&list, &map), map))
}

fn folder_xml(f: &DeviceFolder) -> Element {
    Element::new(fh::Add)
        .with_text_child(fh::ServerId, f.id.clone())
        .with_text_child(fh::ParentId, f.parent.clone())
        .with_text_child(fh::DisplayName, f.name.clone())
        .with_text_child(fh::Type, f.kind.to_string())
}

fn answer(root: switchboard_wbxml::Tag, st: u8) -> Element {
    Element::new(root).with_text_child(fh::Status, st.to_string())
}

/// Handle FolderSync.
pub fn sync(ctx: &Ctx, req: &Request) -> Result<Response> {
    let doc = match wire::decode_body(req, fh::FolderSync) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(wire::respond(&answer(fh::FolderSync, status::MALFORMED))),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let Some(client) = wire::text(&doc, "SyncKey").map(synckey::parse) else {
        return Ok(wire::respond(&answer(fh::FolderSync, status::MALFORMED)));
    };
    let dk = &ctx.dk;
    let (now, _) = match current(&dk.who) {
        Ok(x) => x,
        Err(e) => return Ok(server_error(fh::FolderSync, &e)),
    };
    let (stored, raw): (Option<HierState>, _) = state::load_raw(&dk.hierarchy())?;

    let (mut st, base) = match (client, stored) {
        (ClientKey::Initial, _) => {
            // A fresh start: the device forgets every collection too.
            reset_collections(ctx)?;
            let first = SyncKey::first(&format!("{}/{}/hier", dk.who.address(), dk.device_id));
            let empty = Snapshot {
                key: SyncKey {
                    epoch: first.epoch,
                    n: 0,
                },
                folders: vec![],
            };
            (
                HierState {
                    cur: empty.clone(),
                    prev: None,
                },
                empty,
            )
        }
        (ClientKey::Issued(k), Some(st)) => match st.base(k).cloned() {
            Some(base) => (st, base),
            None => {
                return Ok(wire::respond(&answer(
                    fh::FolderSync,
                    status::INVALID_SYNC_KEY,
                )))
            }
        },
        _ => {
            return Ok(wire::respond(&answer(
                fh::FolderSync,
                status::INVALID_SYNC_KEY,
            )))
        }
    };

    let d = diff(&base.folders, &now);
    let count = d.add.len() + d.update.len() + d.delete.len();
    let mut changes = Element::new(fh::Changes).with_text_child(fh::Count, count.to_string());
    for u in &d.update {
        let mut e = folder_xml(u);
        e.tag = fh::Update;
        changes.push(e);
    }
    for id in &d.delete {
        changes.push(Element::new(fh::Delete).with_text_child(fh::ServerId, *id));
    }
    for a in &d.add {
        changes.push(folder_xml(a));
    }
    let key = st.advance(&base, now.clone());
    // A key 0 request starts over whatever is stored; otherwise a concurrent FolderSync of
    // this device must not be overwritten (the client retries on Status 6).
    let expected = if client == ClientKey::Initial {
        state::load_raw::<HierState>(&dk.hierarchy())?.1
    } else {
        raw
    };
    if !state::store_if(&dk.hierarchy(), expected.as_deref(), &st)? {
        return Ok(wire::respond(&answer(fh::FolderSync, status::SERVER_ERROR)));
    }
    let out = answer(fh::FolderSync, status::OK)
        .with_text_child(fh::SyncKey, key.to_string())
        .with(changes);
    Ok(wire::respond(&out))
}

/// Drop every collection state of the device, and its cached Sync and Ping requests
/// (FolderSync from 0).
fn reset_collections(ctx: &Ctx) -> Result<()> {
    host::kv::delete(&ctx.dk.ping())?;
    host::kv::delete(&format!(
        "sreq/{}/{}",
        ctx.dk.who.address(),
        ctx.dk.device_id
    ))?;
    let prefix = ctx.dk.collections_prefix();
    loop {
        let rows = host::kv::scan(&prefix, None, 100)?;
        if rows.is_empty() {
            return Ok(());
        }
        for (k, _) in rows {
            host::kv::delete(&k)?;
        }
    }
}

fn server_error(root: switchboard_wbxml::Tag, e: &HostError) -> Response {
    host::log::warn(&format!("eas: {} failed: {e}", root.name()));
    wire::respond(&answer(root, status::SERVER_ERROR))
}

/// The state for a FolderCreate/Update/Delete: the client's key must be the current one.
fn mutation_state(ctx: &Ctx, doc: &Element) -> Result<Option<HierState>> {
    let Some(ClientKey::Issued(k)) = wire::text(doc, "SyncKey").map(synckey::parse) else {
        return Ok(None);
    };
    let st: Option<HierState> = state::load(&ctx.dk.hierarchy())?;
    Ok(st.filter(|s| s.cur.key == k))
}

/// Record a hierarchy change the client made itself: the new key's list is the old one with
/// the change applied, so its next FolderSync does not echo the change back.
fn commit_mutation(
    ctx: &Ctx,
    mut st: HierState,
    apply: impl FnOnce(&mut Vec<DeviceFolder>),
) -> Result<SyncKey> {
    let base = st.cur.clone();
    let mut folders = base.folders.clone();
    apply(&mut folders);
    let key = base.key.next();
    st.prev = Some(base);
    st.cur = Snapshot { key, folders };
    state::store(&ctx.dk.hierarchy(), &st)?;
    // Other devices of the user learn of it through Ping.
    let _ = host::events::publish(&crate::state::hierarchy_event(&ctx.dk.who));
    Ok(key)
}

fn mutation_error(root: switchboard_wbxml::Tag, e: &HostError, parent: bool) -> Response {
    let st = match e {
        HostError::NotFound(_) if parent => status::PARENT_NOT_FOUND,
        HostError::NotFound(_) => status::NOT_FOUND,
        HostError::Conflict(_) => status::EXISTS,
        HostError::Denied(_) => status::SPECIAL_FOLDER,
        HostError::Invalid(_) => status::MALFORMED,
        _ => return server_error(root, e),
    };
    wire::respond(&answer(root, st))
}

/// Handle FolderCreate.
pub fn create(ctx: &Ctx, req: &Request) -> Result<Response> {
    let root = fh::FolderCreate;
    let doc = match wire::decode_body(req, root) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(wire::respond(&answer(root, status::MALFORMED))),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let (Some(parent), Some(name), Some(t)) = (
        wire::text(&doc, "ParentId"),
        wire::text(&doc, "DisplayName"),
        wire::text(&doc, "Type"),
    ) else {
        return Ok(wire::respond(&answer(root, status::MALFORMED)));
    };
    if name.is_empty() || name.len() > 256 {
        return Ok(wire::respond(&answer(root, status::MALFORMED)));
    }
    let Some(kind) = t.parse::<u8>().ok().and_then(folders::kind_for_create) else {
        return Ok(wire::respond(&answer(root, status::UNKNOWN_TYPE)));
    };
    let Some(st) = mutation_state(ctx, &doc)? else {
        return Ok(wire::respond(&answer(root, status::INVALID_SYNC_KEY)));
    };
    let who = &ctx.dk.who;
    let (now, map) = match current(who) {
        Ok(x) => x,
        Err(e) => return Ok(server_error(root, &e)),
    };
    let parent_conn = if parent == "0" {
        String::new()
    } else {
        match map.connector_id(parent) {
            Some(c) => c.to_string(),
            None => return Ok(wire::respond(&answer(root, status::PARENT_NOT_FOUND))),
        }
    };
    if now.iter().any(|f| f.parent == parent && f.name == name) {
        return Ok(wire::respond(&answer(root, status::EXISTS)));
    }
    let created = match host::mailstore::create_folder(who, &parent_conn, name, kind) {
        Ok(f) => f,
        Err(e) => return Ok(mutation_error(root, &e, true)),
    };
    let map = folders::id_map(who, std::slice::from_ref(&created))?;
    let Some(short) = map.ids.get(&created.id).cloned() else {
        return Ok(server_error(root, &HostError::Internal("no id".into())));
    };
    let t = folders::eas_type(kind);
    let entry = DeviceFolder {
        id: short.clone(),
        parent: parent.to_string(),
        name: created.name.clone(),
        kind: t,
    };
    let key = commit_mutation(ctx, st, |fs| fs.push(entry))?;
    let out = answer(root, status::OK)
        .with_text_child(fh::SyncKey, key.to_string())
        .with_text_child(fh::ServerId, short);
    Ok(wire::respond(&out))
}

/// Handle FolderUpdate (rename and/or move).
pub fn update(ctx: &Ctx, req: &Request) -> Result<Response> {
    let root = fh::FolderUpdate;
    let doc = match wire::decode_body(req, root) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(wire::respond(&answer(root, status::MALFORMED))),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let (Some(id), Some(parent), Some(name)) = (
        wire::text(&doc, "ServerId"),
        wire::text(&doc, "ParentId"),
        wire::text(&doc, "DisplayName"),
    ) else {
        return Ok(wire::respond(&answer(root, status::MALFORMED)));
    };
    let Some(st) = mutation_state(ctx, &doc)? else {
        return Ok(wire::respond(&answer(root, status::INVALID_SYNC_KEY)));
    };
    let who = &ctx.dk.who;
    let (now, map) = match current(who) {
        Ok(x) => x,
        Err(e) => return Ok(server_error(root, &e)),
    };
    let (Some(folder), Some(conn)) = (now.iter().find(|f| f.id == id), map.connector_id(id)) else {
        return Ok(wire::respond(&answer(root, status::NOT_FOUND)));
    };
    if folders::is_default(folder.kind) {
        return Ok(wire::respond(&answer(root, status::SPECIAL_FOLDER)));
    }
    let parent_conn = if parent == "0" {
        String::new()
    } else {
        match map.connector_id(parent) {
            Some(c) => c.to_string(),
            None => return Ok(wire::respond(&answer(root, status::PARENT_NOT_FOUND))),
        }
    };
    if now
        .iter()
        .any(|f| f.parent == parent && f.name == name && f.id != id)
    {
        return Ok(wire::respond(&answer(root, status::EXISTS)));
    }
    let updated = match host::mailstore::update_folder(who, conn, &parent_conn, name) {
        Ok(f) => f,
        Err(e) => return Ok(mutation_error(root, &e, false)),
    };
    // A connector may give a moved folder a new id (IMAP paths): map it, and let the next
    // FolderSync report the id change as delete + add.
    let map = folders::id_map(who, std::slice::from_ref(&updated))?;
    let new_short = map
        .ids
        .get(&updated.id)
        .cloned()
        .unwrap_or_else(|| id.to_string());
    let (id, parent, name) = (id.to_string(), parent.to_string(), updated.name.clone());
    let key = commit_mutation(ctx, st, |fs| {
        if let Some(f) = fs.iter_mut().find(|f| f.id == id) {
            if new_short == id {
                f.parent = parent;
                f.name = name;
            }
        }
    })?;
    let out = answer(root, status::OK).with_text_child(fh::SyncKey, key.to_string());
    Ok(wire::respond(&out))
}

/// Handle FolderDelete.
pub fn delete(ctx: &Ctx, req: &Request) -> Result<Response> {
    let root = fh::FolderDelete;
    let doc = match wire::decode_body(req, root) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(wire::respond(&answer(root, status::MALFORMED))),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let Some(id) = wire::text(&doc, "ServerId") else {
        return Ok(wire::respond(&answer(root, status::MALFORMED)));
    };
    let Some(st) = mutation_state(ctx, &doc)? else {
        return Ok(wire::respond(&answer(root, status::INVALID_SYNC_KEY)));
    };
    let who = &ctx.dk.who;
    let (now, map) = match current(who) {
        Ok(x) => x,
        Err(e) => return Ok(server_error(root, &e)),
    };
    let (Some(folder), Some(conn)) = (now.iter().find(|f| f.id == id), map.connector_id(id)) else {
        return Ok(wire::respond(&answer(root, status::NOT_FOUND)));
    };
    if folders::is_default(folder.kind) {
        return Ok(wire::respond(&answer(root, status::SPECIAL_FOLDER)));
    }
    if let Err(e) = host::mailstore::delete_folder(who, conn) {
        return Ok(mutation_error(root, &e, false));
    }
    // The folder and everything below it is gone.
    let mut gone = vec![id.to_string()];
    let mut i = 0;
    while i < gone.len() {
        let p = gone[i].clone();
        gone.extend(now.iter().filter(|f| f.parent == p).map(|f| f.id.clone()));
        i += 1;
    }
    let key = commit_mutation(ctx, st, |fs| fs.retain(|f| !gone.contains(&f.id)))?;
    for g in &gone {
        let _ = host::kv::delete(&ctx.dk.collection(g));
    }
    let out = answer(root, status::OK).with_text_child(fh::SyncKey, key.to_string());
    Ok(wire::respond(&out))
}

#[cfg(test)]
mod tests;
