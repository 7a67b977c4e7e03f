//! ItemOperations ([MS-ASCMD] 2.2.1.10) — Fetch of mail items (by ServerId or a Search
//! LongId) and of attachments (FileReference, streamed by the core as base64, or a byte
//! range), EmptyFolderContents — and the older GetAttachment (12.1–14.1).

use base64::Engine as _;
use switchboard_sdk::http::{BodyPart, ItemRef, Request, Response};
use switchboard_sdk::{host, Error as HostError, Result};
use switchboard_wbxml::{
    tags::airsync as a, tags::airsyncbase as asb, tags::itemoperations as io, Element,
};

use crate::http as h;
use crate::ids;
use crate::item::{self, body, email};
use crate::wire::{self, Streams};
use crate::Ctx;

/// ItemOperations status values ([MS-ASCMD] 2.2.3.177.8).
pub mod status {
    /// Success.
    pub const OK: u8 = 1;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u8 = 2;
    /// Server error.
    pub const SERVER_ERROR: u8 = 3;
    /// Object not found.
    pub const NOT_FOUND: u8 = 6;
    /// Byte range invalid or too large.
    pub const BAD_RANGE: u8 = 8;
    /// Store unknown or not supported.
    pub const BAD_STORE: u8 = 9;
    /// Attachment or attachment id invalid.
    pub const BAD_ATTACHMENT: u8 = 15;
}

/// The largest byte range served from memory.
const MAX_RANGE: u64 = 4 * 1024 * 1024;

/// Handle ItemOperations.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Response> {
    let doc = match wire::decode_body(req, io::ItemOperations) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(top(status::PROTOCOL_ERROR)),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let mut streams = Streams::new();
    let multipart = ctx.query.params.accept_multipart;
    let mut parts: Vec<(ItemRef, u64)> = Vec::new();
    let mut response = Element::new(io::Response);
    for op in doc.elements().take(100) {
        let el = if op.tag == io::Fetch {
            fetch(ctx, op, &mut streams, multipart.then_some(&mut parts))?
        } else if op.tag == io::EmptyFolderContents {
            empty_folder(ctx, op)?
        } else {
            Element::new(op.tag).with_text_child(io::Status, status::PROTOCOL_ERROR.to_string())
        };
        response.push(el);
    }
    let out = Element::new(io::ItemOperations)
        .with_text_child(io::Status, status::OK.to_string())
        .with(response);
    if parts.is_empty() {
        return Ok(wire::respond_streaming(&out, streams));
    }
    let first = wire::respond_streaming(&out, streams);
    if first.status != 200 {
        return Ok(first);
    }
    Ok(multipart_response(first, parts))
}

/// The multipart form ([MS-ASCMD] 2.2.1.10.1.1): a part count, (offset, length) pairs, then
/// the WBXML document and the attachments, raw, streamed by the core.
fn multipart_response(wbxml: Response, parts: Vec<(ItemRef, u64)>) -> Response {
    let doc_len: u64 = wbxml
        .body
        .iter()
        .map(|p| match p {
            BodyPart::Bytes(b) => b.len() as u64,
            _ => 0,
        })
        .sum();
    let count = 1 + parts.len();
    let mut header = Vec::with_capacity(4 + 8 * count);
    header.extend_from_slice(&(count as u32).to_le_bytes());
    let mut offset = (4 + 8 * count) as u64;
    let lens = std::iter::once(doc_len).chain(parts.iter().map(|p| p.1));
    for len in lens {
        header.extend_from_slice(&u32::try_from(offset).unwrap_or(u32::MAX).to_le_bytes());
        header.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
        offset += len;
    }
    let mut body = vec![BodyPart::Bytes(header)];
    body.extend(wbxml.body);
    body.extend(parts.into_iter().map(|(r, _)| BodyPart::Item(r)));
    let mut r = h::empty(200);
    r.headers.push((
        "content-type".into(),
        "application/vnd.ms-sync.multipart".into(),
    ));
    r.body = body;
    r
}

fn top(code: u8) -> Response {
    wire::respond(&Element::new(io::ItemOperations).with_text_child(io::Status, code.to_string()))
}

fn fetch_status(code: u8) -> Element {
    Element::new(io::Fetch).with_text_child(io::Status, code.to_string())
}

fn fetch(
    ctx: &Ctx,
    op: &Element,
    streams: &mut Streams,
    parts: Option<&mut Vec<(ItemRef, u64)>>,
) -> Result<Element> {
    let who = &ctx.dk.who;
    let store = wire::text(op, "Store").unwrap_or("Mailbox");
    if !store.eq_ignore_ascii_case("Mailbox") {
        return Ok(fetch_status(status::BAD_STORE));
    }
    let options = op.child_tag(io::Options);
    // An attachment.
    if let Some(fref) = op.child_tag(asb::FileReference).and_then(|f| f.text()) {
        let Some((item_id, part_id)) = ids::parse_file_reference(fref.trim()) else {
            return Ok(fetch_status(status::BAD_ATTACHMENT));
        };
        let head = match host::mailstore::fetch(who, &item_id, Some(&part_id), 0, 1) {
            Ok(c) => c,
            Err(HostError::NotFound(_)) => return Ok(fetch_status(status::BAD_ATTACHMENT)),
            Err(e) => {
                host::log::warn(&format!("eas: ItemOperations attachment: {e}"));
                return Ok(fetch_status(status::SERVER_ERROR));
            }
        };
        let mut props = Element::new(io::Properties);
        let range = options.and_then(|o| o.child_text("Range")).map(str::trim);
        match range {
            Some(r) => {
                let Some((from, to)) = parse_range(r, head.total) else {
                    return Ok(fetch_status(status::BAD_RANGE));
                };
                let len = to + 1 - from;
                if len > MAX_RANGE {
                    return Ok(fetch_status(status::BAD_RANGE));
                }
                let mut data = Vec::new();
                while (data.len() as u64) < len {
                    let c = host::mailstore::fetch(
                        who,
                        &item_id,
                        Some(&part_id),
                        from + data.len() as u64,
                        u32::try_from(len - data.len() as u64).unwrap_or(u32::MAX),
                    )?;
                    if c.data.is_empty() {
                        break;
                    }
                    data.extend(c.data);
                }
                props.push(Element::text_element(io::Range, format!("{from}-{to}")));
                props.push(Element::text_element(io::Total, head.total.to_string()));
                props.push(Element::text_element(
                    io::Data,
                    base64::engine::general_purpose::STANDARD.encode(&data),
                ));
            }
            None => {
                props.push(Element::text_element(io::Total, head.total.to_string()));
                let item = ItemRef {
                    who: who.clone(),
                    item_id,
                    part_id: Some(part_id),
                };
                match parts {
                    // Multipart: the attachment is a raw part after the document.
                    Some(parts) if head.total <= u64::from(u32::MAX) => {
                        parts.push((item, head.total));
                        props.push(Element::text_element(io::Part, parts.len().to_string()));
                    }
                    _ => {
                        let marker = streams.placeholder(BodyPart::ItemBase64(item));
                        props.push(Element::text_element(io::Data, marker));
                    }
                }
            }
        }
        return Ok(Element::new(io::Fetch)
            .with_text_child(io::Status, status::OK.to_string())
            .with_text_child(asb::FileReference, fref.trim())
            .with(props));
    }
    // A mail item, by ServerId (+ CollectionId) or by a Search LongId.
    let server_id = op
        .child_tag(a::ServerId)
        .and_then(|e| e.text())
        .or_else(|| op.child("LongId").and_then(|e| e.text()))
        .map(str::trim);
    let Some(server_id) = server_id else {
        return Ok(fetch_status(status::PROTOCOL_ERROR));
    };
    let Some(item_id) = ids::item_id(who, server_id)? else {
        return Ok(fetch_status(status::NOT_FOUND));
    };
    let summary = crate::item::bare(&item_id);
    let content = match item::load(who, &summary) {
        Ok(c) => c,
        Err(HostError::NotFound(_)) => return Ok(fetch_status(status::NOT_FOUND)),
        Err(e) => {
            host::log::warn(&format!("eas: ItemOperations fetch: {e}"));
            return Ok(fetch_status(status::SERVER_ERROR));
        }
    };
    let msg = crate::mime::parse(&content.bytes);
    let prefs = options.map(body::parse_prefs).unwrap_or_default();
    let mime_support = options
        .and_then(|o| o.child_text("MIMESupport"))
        .map(str::trim)
        .unwrap_or("0");
    let mut pref = body::choose(&prefs);
    if mime_support == "2" {
        if let Some(p) = prefs.iter().find(|p| p.kind == body::kind::MIME) {
            pref = *p;
        }
    }
    let data = email::application_data(
        who,
        &summary,
        Some((&content, &msg)),
        Some(pref),
        ctx.version,
        streams,
    )?;
    let mut props = Element::new(io::Properties);
    props.children = data.children;
    let mut out = Element::new(io::Fetch).with_text_child(io::Status, status::OK.to_string());
    if let Some(cid) = op.child_tag(a::CollectionId).and_then(|c| c.text()) {
        out.push(Element::text_element(a::CollectionId, cid.trim()));
    }
    out.push(Element::text_element(a::ServerId, server_id));
    out.push(Element::text_element(a::Class, "Email"));
    Ok(out.with(props))
}

/// `from-to` within `total`.
fn parse_range(r: &str, total: u64) -> Option<(u64, u64)> {
    let (a, b) = r.split_once('-')?;
    let from: u64 = a.trim().parse().ok()?;
    let to: u64 = b.trim().parse().ok()?;
    if from > to || total == 0 || from >= total {
        return None;
    }
    Some((from, to.min(total - 1)))
}

fn empty_folder(ctx: &Ctx, op: &Element) -> Result<Element> {
    let who = &ctx.dk.who;
    let done = |code: u8| {
        Element::new(io::EmptyFolderContents).with_text_child(io::Status, code.to_string())
    };
    let Some(cid) = op.child_tag(a::CollectionId).and_then(|c| c.text()) else {
        return Ok(done(status::PROTOCOL_ERROR));
    };
    let map = crate::folders::id_map(who, &[])?;
    let Some(folder) = map.connector_id(cid.trim()).map(str::to_string) else {
        return Ok(done(status::NOT_FOUND));
    };
    // Walk the folder's current content and delete it (bounded per request).
    let mut state: Option<String> = None;
    let mut deleted = 0;
    loop {
        let page = host::mailstore::sync(who, &folder, state.as_deref(), 500)?;
        for c in &page.changes {
            if let switchboard_sdk::Change::Added(i) = c {
                match host::mailstore::delete_item(who, &i.id) {
                    Ok(()) | Err(HostError::NotFound(_)) => deleted += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        state = Some(page.state);
        if !page.more || deleted > 10_000 {
            break;
        }
    }
    let mut out = done(status::OK);
    out.push(Element::text_element(a::CollectionId, cid.trim()));
    Ok(out)
}

/// GetAttachment (12.1–14.1): `AttachmentName` is a FileReference; the core streams the
/// attachment as the body.
pub fn get_attachment(ctx: &Ctx) -> Result<Response> {
    let Some(name) = ctx.query.params.attachment_name.as_deref() else {
        return Ok(h::bad_request("GetAttachment needs AttachmentName"));
    };
    let Some((item_id, part_id)) = ids::parse_file_reference(name) else {
        return Ok(h::empty(404));
    };
    let who = &ctx.dk.who;
    let item = match host::mailstore::fetch(who, &item_id, Some(&part_id), 0, 1) {
        Ok(_) => item_id,
        Err(HostError::NotFound(_)) => return Ok(h::empty(404)),
        Err(e) => return Err(e),
    };
    let mut r = h::empty(200);
    r.headers
        .push(("content-type".into(), "application/octet-stream".into()));
    r.body.push(BodyPart::Item(ItemRef {
        who: who.clone(),
        item_id: item,
        part_id: Some(part_id),
    }));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{MemStore, Phone};
    use switchboard_wbxml::{decode, element, tags::search};

    const MAIL: &str =
        "From: a@b.c\r\nSubject: s\r\nContent-Type: text/html\r\n\r\n<p>big body</p>\r\n";

    #[test]
    fn fetch_item_attachment_range_and_missing() {
        let phone = Phone::new("14.1");
        phone.store(|| MemStore::deliver("INBOX", "m1", "s", MAIL, 1));
        let fref = ids::file_reference("m1", "2");
        let doc = element!(io::ItemOperations [
            element!(io::Fetch [
                element!(io::Store = "Mailbox"),
                element!(a::CollectionId = "1"),
                element!(a::ServerId = "m1"),
                element!(io::Options [element!(asb::BodyPreference [element!(asb::Type = "2")])]),
            ]),
            element!(io::Fetch [element!(io::Store = "Mailbox"), element!(asb::FileReference = fref.as_str())]),
            element!(io::Fetch [
                element!(io::Store = "Mailbox"),
                element!(asb::FileReference = fref.as_str()),
                element!(io::Options [element!(io::Range = "0-3")]),
            ]),
            element!(io::Fetch [element!(io::Store = "Mailbox"), element!(search::LongId = "nope")]),
            element!(io::Fetch [element!(io::Store = "Mailbox"), element!(asb::FileReference = "garbage")]),
        ]);
        let r = phone.post("ItemOperations", "", &doc.to_wbxml().unwrap());
        assert_eq!(r.status, 200);
        // The attachment without a range is streamed by the core: the body has an item part.
        assert!(r.body.iter().any(|p| matches!(p, BodyPart::ItemBase64(i) if i.item_id == "m1" && i.part_id.as_deref() == Some("2"))));
        // Reassemble with the streamed part replaced by base64 of "ABCD" to decode the rest.
        let mut bytes = Vec::new();
        for p in &r.body {
            match p {
                BodyPart::Bytes(b) => bytes.extend(b),
                _ => bytes.extend(b"QUJDRA=="),
            }
        }
        let d = decode(&bytes).unwrap();
        assert_eq!(d.child_text("Status"), Some("1"));
        let fetches: Vec<_> = d
            .child("Response")
            .unwrap()
            .children_named("Fetch")
            .collect();
        assert_eq!(fetches.len(), 5);
        let props = fetches[0].child("Properties").unwrap();
        assert_eq!(
            props.child("Body").and_then(|b| b.child_text("Data")),
            Some("<p>big body</p>\r\n")
        );
        assert_eq!(fetches[0].child_text("ServerId"), Some("m1"));
        assert_eq!(
            fetches[1]
                .child("Properties")
                .and_then(|p| p.child_text("Data")),
            Some("QUJDRA==")
        );
        let ranged = fetches[2].child("Properties").unwrap();
        assert_eq!(ranged.child_text("Range"), Some("0-3"));
        assert_eq!(
            ranged.child_text("Data"),
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode(&MAIL.as_bytes()[..4])
                    .as_str()
            )
        );
        assert_eq!(fetches[3].child_text("Status"), Some("6"));
        assert_eq!(fetches[4].child_text("Status"), Some("15"));
    }

    #[test]
    fn multipart_attachment_fetch() {
        let phone = Phone::new("14.1");
        phone.store(|| MemStore::deliver("INBOX", "m1", "s", MAIL, 1));
        let fref = ids::file_reference("m1", "2");
        let doc = element!(io::ItemOperations [
            element!(io::Fetch [element!(io::Store = "Mailbox"), element!(asb::FileReference = fref.as_str())]),
        ]);
        let r = phone.post("ItemOperations", "", &doc.to_wbxml().unwrap());
        assert!(r.body.iter().any(|p| matches!(p, BodyPart::ItemBase64(_))));
        let key = phone.key.unwrap().to_string();
        let r = crate::tests::response(phone.host.handle::<crate::Eas>(crate::tests::request(
            "POST",
            "Cmd=ItemOperations&User=alice&DeviceId=DEV1&DeviceType=iPhone",
            &[
                ("MS-ASProtocolVersion", "14.1"),
                ("X-MS-PolicyKey", &key),
                ("MS-ASAcceptMultiPart", "T"),
            ],
            &doc.to_wbxml().unwrap(),
        )));
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/vnd.ms-sync.multipart"));
        let BodyPart::Bytes(header) = &r.body[0] else {
            panic!()
        };
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        assert_eq!(word(0), 2);
        let (doc_off, doc_len, att_off, att_len) = (word(4), word(8), word(12), word(16));
        assert_eq!(doc_off, 20);
        assert_eq!(att_off, doc_off + doc_len);
        assert_eq!(att_len as usize, MAIL.len());
        let BodyPart::Bytes(wbxml) = &r.body[1] else {
            panic!()
        };
        assert_eq!(wbxml.len() as u32, doc_len);
        let d = decode(wbxml).unwrap();
        let props = d
            .child("Response")
            .and_then(|r| r.child("Fetch"))
            .and_then(|f| f.child("Properties"))
            .unwrap();
        assert_eq!(props.child_text("Part"), Some("1"));
        assert!(matches!(&r.body[2], BodyPart::Item(i) if i.item_id == "m1"));
    }

    #[test]
    fn empty_folder_contents_and_get_attachment() {
        let phone = Phone::new("14.1");
        phone.store(|| {
            MemStore::deliver("Trash", "t1", "s", MAIL, 1);
            MemStore::deliver("Trash", "t2", "s", MAIL, 1);
        });
        let ids = crate::folders::IdMap::default();
        let _ = ids;
        let d = phone.cmd(
            "FolderSync",
            &element!(
                switchboard_wbxml::tags::folderhierarchy::FolderSync
                    [element!(switchboard_wbxml::tags::folderhierarchy::SyncKey = "0")]
            ),
        );
        let changes = d.child("Changes").unwrap();
        let trash = changes
            .children_named("Add")
            .find(|x| x.child_text("DisplayName") == Some("Trash"))
            .and_then(|x| x.child_text("ServerId"))
            .unwrap()
            .to_string();
        let doc = element!(
            io::ItemOperations
                [element!(io::EmptyFolderContents[element!(a::CollectionId = trash.as_str())])]
        );
        let d = phone.cmd("ItemOperations", &doc);
        let e = d
            .child("Response")
            .and_then(|r| r.child("EmptyFolderContents"))
            .unwrap();
        assert_eq!(e.child_text("Status"), Some("1"));
        assert!(phone.store(|| MemStore::items("Trash")).is_empty());
        let fref = ids::file_reference("t1", "2");
        let r = phone.post("GetAttachment", &format!("&AttachmentName={fref}"), b"");
        assert_eq!(r.status, 404, "t1 is gone");
        phone.store(|| MemStore::deliver("INBOX", "m9", "s", MAIL, 1));
        let fref = ids::file_reference("m9", "2");
        let r = phone.post("GetAttachment", &format!("&AttachmentName={fref}"), b"");
        assert_eq!(r.status, 200);
        assert!(matches!(&r.body[..], [BodyPart::Item(i)] if i.item_id == "m9"));
    }
}
