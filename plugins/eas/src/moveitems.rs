//! MoveItems ([MS-ASCMD] 2.2.1.12): move mail between folders. The moved item's removal from
//! the source and arrival in the destination are recorded as echoes in the device's
//! collection states, so the next Sync does not undo the move on the phone or show the item
//! twice.

use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{host, Error as HostError, Result};
use switchboard_wbxml::{tags::moves as mv, Element};

use crate::ids;
use crate::state;
use crate::sync::{CollState, Echo};
use crate::wire;
use crate::Ctx;

/// MoveItems status values ([MS-ASCMD] 2.2.3.177.9).
pub mod status {
    /// The source folder or item is invalid.
    pub const BAD_SOURCE: u8 = 1;
    /// The destination folder is invalid.
    pub const BAD_DESTINATION: u8 = 2;
    /// Success.
    pub const OK: u8 = 3;
    /// Source and destination are the same.
    pub const SAME_FOLDER: u8 = 4;
    /// Another failure (a transient one: retry).
    pub const FAILED: u8 = 5;
}

/// Handle MoveItems.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Response> {
    let doc = match wire::decode_body(req, mv::MoveItems) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(wire::status_only(ctx.query.command, 103, 400)),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let who = &ctx.dk.who;
    let map = crate::folders::id_map(who, &host::mailstore::list_folders(who)?)?;
    let mut out = Element::new(mv::MoveItems);
    for m in doc.children_tagged(mv::Move).take(500) {
        let src_msg = wire::text(m, "SrcMsgId").unwrap_or("").to_string();
        let src_fld = wire::text(m, "SrcFldId").unwrap_or("");
        let dst_fld = wire::text(m, "DstFldId").unwrap_or("");
        let mut r = Element::new(mv::Response).with_text_child(mv::SrcMsgId, src_msg.clone());
        let code = if src_fld == dst_fld {
            (status::SAME_FOLDER, None)
        } else {
            match (
                map.connector_id(src_fld),
                map.connector_id(dst_fld),
                ids::item_id(who, &src_msg)?,
            ) {
                (None, _, _) | (_, _, None) => (status::BAD_SOURCE, None),
                (_, None, _) => (status::BAD_DESTINATION, None),
                (Some(_), Some(dst), Some(item)) => {
                    match host::mailstore::move_item(who, &item, dst) {
                        Ok(new_id) => {
                            echo(ctx, src_fld, &item)?;
                            echo(ctx, dst_fld, &new_id)?;
                            (status::OK, Some(ids::server_id(who, &new_id)?))
                        }
                        Err(HostError::NotFound(_)) => (status::BAD_SOURCE, None),
                        Err(HostError::Unavailable(_) | HostError::Conflict(_)) => {
                            (status::FAILED, None)
                        }
                        Err(e) => {
                            host::log::warn(&format!("eas: MoveItems: {e}"));
                            (status::FAILED, None)
                        }
                    }
                }
            }
        };
        r.push(Element::text_element(mv::Status, code.0.to_string()));
        if let Some(dst) = code.1 {
            r.push(Element::text_element(mv::DstMsgId, dst));
        }
        out.push(r);
    }
    Ok(wire::respond(&out))
}

/// Record that the device already knows of this item's arrival or departure.
fn echo(ctx: &Ctx, collection: &str, item: &str) -> Result<()> {
    let key = ctx.dk.collection(collection);
    if let Some(mut st) = state::load::<CollState>(&key)? {
        st.echo.insert(item.to_string(), Echo::Item);
        st.aging.retain(|(s, _)| s != item);
        state::store(&key, &st)?;
    }
    Ok(())
}
