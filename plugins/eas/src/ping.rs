//! Ping ([MS-ASCMD] 2.2.1.13): "tell me when one of these folders changes". Nothing is
//! looped or polled here: the request is parked in the core on the folders' `mailbox:` event
//! keys (and the user's hierarchy key) with the device id as the park group, so a newer Ping
//! of the same device ends the older one, and an idle phone costs no plugin instance.
//!
//! The folder list and heartbeat are cached in kv (`ping/…`), since a Ping may omit them.

use serde::{Deserialize, Serialize};
use switchboard_sdk::http::{Outcome, Park, Request, Response};
use switchboard_sdk::{host, Result};
use switchboard_wbxml::{tags::ping as p, Element};

use crate::state;
use crate::wire;
use crate::Ctx;

/// Ping status values ([MS-ASCMD] 2.2.3.177.11).
pub mod status {
    /// The heartbeat expired with no changes.
    pub const EXPIRED: u8 = 1;
    /// Changes occurred in the listed folders.
    pub const CHANGES: u8 = 2;
    /// Parameters missing and none cached.
    pub const MISSING: u8 = 3;
    /// Syntax error.
    pub const SYNTAX: u8 = 4;
    /// HeartbeatInterval out of range (the limit is given).
    pub const BAD_HEARTBEAT: u8 = 5;
    /// Too many folders (the limit is given).
    pub const TOO_MANY_FOLDERS: u8 = 6;
    /// The hierarchy changed: FolderSync.
    pub const HIERARCHY: u8 = 7;
    /// Server error.
    pub const SERVER_ERROR: u8 = 8;
}

/// Heartbeat bounds in seconds.
pub const MIN_HEARTBEAT: u32 = 60;
/// See [`MIN_HEARTBEAT`].
pub const MAX_HEARTBEAT: u32 = 3540;
/// The most folders one Ping may watch.
pub const MAX_FOLDERS: usize = 300;

/// What a Ping watches (cached per device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// Seconds.
    pub heartbeat: u32,
    /// Short folder ids with their class.
    pub folders: Vec<(String, String)>,
}

/// A parked Ping.
#[derive(Debug, Serialize, Deserialize)]
pub struct Parked {
    who: String,
    /// Event key → short folder id.
    keys: Vec<(String, String)>,
    hierarchy_key: String,
}

fn answer(code: u8) -> Element {
    Element::new(p::Ping).with_text_child(p::Status, code.to_string())
}

/// Handle Ping.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Outcome> {
    let reply = |e: Element| Ok(Outcome::Reply(wire::respond(&e)));
    let doc = match wire::decode_body(req, p::Ping) {
        Ok(d) => d,
        Err(e) => {
            return Ok(Outcome::Reply(wire::body_error(
                ctx.query.command,
                ctx.version,
                &e,
            )))
        }
    };
    let cache_key = ctx.dk.ping();
    let cached: Option<Watch> = state::load(&cache_key)?;
    let (heartbeat, folders) = match &doc {
        None => (None, None),
        Some(d) => {
            let hb = match d.child_text("HeartbeatInterval") {
                None => None,
                Some(t) => match t.trim().parse::<u32>() {
                    Ok(v) => Some(v),
                    Err(_) => return reply(answer(status::SYNTAX)),
                },
            };
            let fs = match d.child_tag(p::Folders) {
                None => None,
                Some(f) => {
                    let mut out = Vec::new();
                    for folder in f.children_tagged(p::Folder) {
                        let (Some(id), Some(class)) =
                            (folder.child_text("Id"), folder.child_text("Class"))
                        else {
                            return reply(answer(status::SYNTAX));
                        };
                        out.push((id.trim().to_string(), class.trim().to_string()));
                    }
                    Some(out)
                }
            };
            (hb, fs)
        }
    };
    let heartbeat = heartbeat.or(cached.as_ref().map(|c| c.heartbeat));
    let folders = folders.or_else(|| cached.as_ref().map(|c| c.folders.clone()));
    let (Some(heartbeat), Some(folders)) = (heartbeat, folders) else {
        return reply(answer(status::MISSING));
    };
    if !(MIN_HEARTBEAT..=MAX_HEARTBEAT).contains(&heartbeat) {
        let limit = heartbeat.clamp(MIN_HEARTBEAT, MAX_HEARTBEAT);
        return reply(
            answer(status::BAD_HEARTBEAT).with_text_child(p::HeartbeatInterval, limit.to_string()),
        );
    }
    if folders.len() > MAX_FOLDERS {
        return reply(
            answer(status::TOO_MANY_FOLDERS)
                .with_text_child(p::MaxFolders, MAX_FOLDERS.to_string()),
        );
    }
    if folders.is_empty() {
        return reply(answer(status::MISSING));
    }
    let watch = Watch {
        heartbeat,
        folders: folders.clone(),
    };
    if cached.as_ref() != Some(&watch) {
        state::store(&cache_key, &watch)?;
    }

    let who = &ctx.dk.who;
    let (now, map) = match crate::foldersync::current(who) {
        Ok(x) => x,
        Err(e) => {
            host::log::warn(&format!("eas: Ping: {e}"));
            return reply(answer(status::SERVER_ERROR));
        }
    };
    // A hierarchy the device does not know yet: FolderSync first.
    let hier: Option<crate::foldersync::HierState> = state::load(&ctx.dk.hierarchy())?;
    if hier.is_some_and(|h| h.cur.folders != now) {
        return reply(answer(status::HIERARCHY));
    }
    // Device folder id → connector folder id, once.
    let mut pairs = Vec::with_capacity(folders.len());
    for (id, _) in &folders {
        let Some(conn) = map.connector_id(id) else {
            return reply(answer(status::HIERARCHY));
        };
        pairs.push((id, conn.to_string()));
    }
    let conn_ids: Vec<String> = pairs.iter().map(|(_, c)| c.clone()).collect();
    // Before looking for pending changes, so a backend that changes behind the connector's
    // back (IMAP) is already being watched when we park; a change in between is then seen
    // either here or by the watch.
    if let Err(e) = host::mailstore::watch(who, &conn_ids, heartbeat.saturating_mul(1000)) {
        host::log::warn(&format!("eas: Ping: the connector cannot watch: {e}"));
    }
    let mut keys = Vec::new();
    let mut changed = Vec::new();
    for (id, conn) in pairs {
        if pending(ctx, id, &conn)? {
            changed.push(id.clone());
        }
        keys.push((crate::state::folder_event(who, &conn), id.clone()));
    }
    if !changed.is_empty() {
        return reply(changes(&changed));
    }
    let parked = Parked {
        who: who.address(),
        keys: keys.clone(),
        hierarchy_key: crate::state::hierarchy_event(who),
    };
    let mut watch_keys: Vec<String> = keys.into_iter().map(|(k, _)| k).collect();
    watch_keys.push(parked.hierarchy_key.clone());
    Ok(Outcome::Park(Park {
        watch: watch_keys,
        timeout_ms: heartbeat.saturating_mul(1000),
        state: serde_json::to_vec(&("ping", &parked)).unwrap_or_default(),
        on_timeout: wire::respond(&answer(status::EXPIRED)),
        group: Some(ctx.dk.park_group()),
    }))
}

/// Whether the connector has changes past the device's sync point of a folder.
fn pending(ctx: &Ctx, id: &str, conn: &str) -> Result<bool> {
    let st: Option<crate::sync::CollState> = state::load(&ctx.dk.collection(id))?;
    let Some(st) = st else {
        return Ok(false);
    };
    if st.cur.conn.is_none() {
        // Synced to a key but never fetched: everything is new.
        return Ok(true);
    }
    match host::mailstore::sync(&ctx.dk.who, conn, st.cur.conn.as_deref(), 8) {
        Ok(page) => Ok(page.changes.iter().any(|c| {
            let id = match c {
                switchboard_sdk::Change::Added(i) | switchboard_sdk::Change::Changed(i) => &i.id,
                switchboard_sdk::Change::Deleted(i) => i,
            };
            !st.echo.contains_key(id)
        })),
        Err(_) => Ok(false),
    }
}

fn changes(ids: &[String]) -> Element {
    let mut folders = Element::new(p::Folders);
    for id in ids {
        folders.push(Element::text_element(p::Folder, id.clone()));
    }
    answer(status::CHANGES).with(folders)
}

/// A parked Ping woke: report the folders whose keys fired (7 when the hierarchy did).
pub fn resume_with(parked: Parked, fired: &[String]) -> Response {
    if fired.contains(&parked.hierarchy_key) {
        return wire::respond(&answer(status::HIERARCHY));
    }
    let mut ids: Vec<String> = parked
        .keys
        .iter()
        .filter(|(k, _)| fired.contains(k))
        .map(|(_, id)| id.clone())
        .collect();
    ids.dedup();
    if ids.is_empty() {
        return wire::respond(&answer(status::EXPIRED));
    }
    wire::respond(&changes(&ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{MemStore, Phone};
    use crate::tests::{request, response};
    use crate::Eas;
    use switchboard_sdk::http::Outcome;
    use switchboard_wbxml::{decode, element, tags::airsync as a, tags::folderhierarchy as fh};

    fn ping_doc(hb: &str, ids: &[&str]) -> Element {
        let mut folders = Element::new(p::Folders);
        for id in ids {
            folders.push(element!(p::Folder [element!(p::Id = *id), element!(p::Class = "Email")]));
        }
        element!(p::Ping [element!(p::HeartbeatInterval = hb), folders])
    }

    fn send(phone: &Phone, body: &[u8]) -> Outcome {
        let key = phone.key.unwrap().to_string();
        phone.host.handle::<Eas>(request(
            "POST",
            "Cmd=Ping&User=alice&DeviceId=DEV1&DeviceType=iPhone",
            &[
                ("MS-ASProtocolVersion", phone.version),
                ("X-MS-PolicyKey", &key),
            ],
            body,
        ))
    }

    fn inbox(phone: &Phone) -> String {
        let d = phone.cmd(
            "FolderSync",
            &element!(fh::FolderSync[element!(fh::SyncKey = "0")]),
        );
        let changes = d.child("Changes").unwrap();
        let id = changes
            .children_named("Add")
            .find(|x| x.child_text("DisplayName") == Some("INBOX"))
            .and_then(|x| x.child_text("ServerId"))
            .unwrap()
            .to_string();
        id
    }

    fn synced(phone: &Phone, id: &str) {
        let sync = |k: &str| {
            element!(
                a::Sync[element!(
                    a::Collections[element!(a::Collection [
                        element!(a::SyncKey = k), element!(a::CollectionId = id),
                    ])]
                )]
            )
        };
        let d = phone.cmd("Sync", &sync("0"));
        let k = d
            .child("Collections")
            .and_then(|c| c.child("Collection"))
            .and_then(|c| c.child_text("SyncKey"))
            .unwrap()
            .to_string();
        phone.cmd("Sync", &sync(&k));
    }

    #[test]
    fn bounds_and_missing_parameters() {
        for v in ["14.1", "16.1"] {
            let phone = Phone::new(v);
            let id = inbox(&phone);
            let d = phone.cmd("Ping", &ping_doc("30", &[&id]));
            assert_eq!(d.child_text("Status"), Some("5"));
            assert_eq!(d.child_text("HeartbeatInterval"), Some("60"));
            let d = phone.cmd("Ping", &ping_doc("4000", &[&id]));
            assert_eq!(d.child_text("HeartbeatInterval"), Some("3540"));
            let d = phone.cmd("Ping", &element!(p::Ping));
            assert_eq!(d.child_text("Status"), Some("3"));
            let d = phone.cmd("Ping", &ping_doc("abc", &[&id]));
            assert_eq!(d.child_text("Status"), Some("4"));
            let d = phone.cmd("Ping", &ping_doc("600", &["999"]));
            assert_eq!(d.child_text("Status"), Some("7"));
        }
    }

    #[test]
    fn parks_then_reports_the_changed_folder() {
        let phone = Phone::new("14.1");
        let id = inbox(&phone);
        synced(&phone, &id);
        let out = send(&phone, &ping_doc("480", &[&id]).to_wbxml().unwrap());
        let Outcome::Park(park) = out else {
            panic!("{out:?}")
        };
        assert_eq!(park.timeout_ms, 480_000);
        assert_eq!(park.group.as_deref(), Some("eas/alice@example.com/DEV1"));
        let on_timeout = decode(&park.on_timeout.body_bytes()).unwrap();
        assert_eq!(on_timeout.child_text("Status"), Some("1"));
        let r = response(phone.host.resume::<Eas>(
            park.state.clone(),
            vec!["mailbox:alice@example.com/INBOX".into()],
        ));
        let d = decode(&r.body_bytes()).unwrap();
        assert_eq!(d.child_text("Status"), Some("2"));
        assert_eq!(
            d.child("Folders").and_then(|f| f.child_text("Folder")),
            Some(id.as_str())
        );
        let r = response(
            phone
                .host
                .resume::<Eas>(park.state, vec!["mailbox:alice@example.com".into()]),
        );
        assert_eq!(
            decode(&r.body_bytes()).unwrap().child_text("Status"),
            Some("7")
        );
        // An empty Ping reuses the cached folders; with mail waiting it answers at once.
        phone.store(|| MemStore::deliver("INBOX", "n1", "hi", "Subject: hi\r\n\r\nx", 1));
        let out = send(&phone, b"");
        let Outcome::Reply(r) = out else {
            panic!("{out:?}")
        };
        assert_eq!(
            decode(&r.body_bytes()).unwrap().child_text("Status"),
            Some("2")
        );
    }
}
