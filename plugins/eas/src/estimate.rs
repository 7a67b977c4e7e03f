//! GetItemEstimate ([MS-ASCMD] 2.2.1.9): how many changes a Sync of each collection would
//! bring, counted from the device's current sync point without moving it.

use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{host, Change, Result};
use switchboard_wbxml::{tags::getitemestimate as ge, Element};

use crate::state;
use crate::sync::{filter_window, CollState};
use crate::synckey::{self, ClientKey};
use crate::wire;
use crate::Ctx;

/// GetItemEstimate status values ([MS-ASCMD] 2.2.3.177.7).
pub mod status {
    /// Success.
    pub const OK: u8 = 1;
    /// A collection is invalid.
    pub const BAD_COLLECTION: u8 = 2;
    /// The sync state is not primed (the collection was never synced past key 0).
    pub const NOT_PRIMED: u8 = 3;
    /// The sync key is invalid.
    pub const BAD_SYNC_KEY: u8 = 4;
}

/// The most changes counted per collection.
const MAX_COUNT: usize = 5000;

/// Handle GetItemEstimate.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Response> {
    let doc = match wire::decode_body(req, ge::GetItemEstimate) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(wire::status_only(ctx.query.command, 103, 400)),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let who = &ctx.dk.who;
    let map = crate::folders::id_map(who, &host::mailstore::list_folders(who)?)?;
    let mut out = Element::new(ge::GetItemEstimate);
    let cols = doc.child_tag(ge::Collections);
    for c in cols
        .iter()
        .flat_map(|c| c.children_tagged(ge::Collection))
        .take(100)
    {
        let id = wire::text(c, "CollectionId").unwrap_or("").to_string();
        let key = wire::text(c, "SyncKey").unwrap_or("");
        // 12.1 puts FilterType in the collection, later versions in airsync:Options.
        let filter: u8 = c
            .child_text("FilterType")
            .or_else(|| c.child("Options").and_then(|o| o.child_text("FilterType")))
            .and_then(|f| f.trim().parse().ok())
            .unwrap_or(0);
        let respond = |code: u8, estimate: Option<usize>| {
            let mut col =
                Element::new(ge::Collection).with_text_child(ge::CollectionId, id.clone());
            if let Some(n) = estimate {
                col.push(Element::text_element(ge::Estimate, n.to_string()));
            }
            Element::new(ge::Response)
                .with_text_child(ge::Status, code.to_string())
                .with(col)
        };
        let Some(folder) = map.connector_id(&id).map(str::to_string) else {
            out.push(respond(status::BAD_COLLECTION, None));
            continue;
        };
        let st: Option<CollState> = state::load(&ctx.dk.collection(&id))?;
        let base = match (synckey::parse(key), st) {
            (ClientKey::Initial, _) => {
                out.push(respond(status::NOT_PRIMED, None));
                continue;
            }
            (ClientKey::Issued(k), Some(st)) if st.cur.key == k => st.cur.conn,
            (ClientKey::Issued(k), Some(st)) if st.prev.as_ref().is_some_and(|p| p.key == k) => {
                st.prev.and_then(|p| p.conn)
            }
            _ => {
                out.push(respond(status::BAD_SYNC_KEY, None));
                continue;
            }
        };
        let cutoff = filter_window(filter).map(|w| crate::time::now_ms() - w);
        let mut count = 0usize;
        let mut state = base;
        loop {
            let page = match host::mailstore::sync(who, &folder, state.as_deref(), 512) {
                Ok(p) => p,
                Err(e) => {
                    host::log::warn(&format!("eas: GetItemEstimate: {e}"));
                    break;
                }
            };
            count += page
                .changes
                .iter()
                .filter(|ch| match ch {
                    Change::Added(i) => cutoff.is_none_or(|t| i.timestamp_ms >= t),
                    _ => true,
                })
                .count();
            if !page.more || count >= MAX_COUNT {
                break;
            }
            state = Some(page.state);
        }
        out.push(respond(status::OK, Some(count.min(MAX_COUNT))));
    }
    Ok(wire::respond(&out))
}
