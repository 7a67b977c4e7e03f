//! Request bodies in, WBXML responses out: bounded body reading, decoding with limits and
//! the command-level error answers (`<Cmd><Status>N</Status></Cmd>`).

use switchboard_sdk::host;
use switchboard_sdk::http::{Request, Response};
use switchboard_wbxml::{decode_with, tags as t, Element, Limits, Node, Tag};
use thiserror::Error;

use crate::http::{self, Command};

/// The largest WBXML command body accepted (MIME uploads go through staging instead).
pub const MAX_WBXML_BODY: usize = 8 * 1024 * 1024;

/// Decoder limits for request bodies: EAS requests nest < 12 deep.
pub const LIMITS: Limits = Limits {
    max_depth: 32,
    max_elements: 200_000,
};

/// Why a request body could not be used.
#[derive(Debug, Error)]
pub enum BodyError {
    /// Larger than the limit.
    #[error("request body over {0} bytes")]
    TooLarge(usize),
    /// Reading the rest of the body failed.
    #[error("reading the body: {0}")]
    Read(switchboard_sdk::Error),
    /// Not WBXML, or not the code pages we know.
    #[error("invalid WBXML: {0}")]
    Wbxml(switchboard_wbxml::DecodeError),
    /// WBXML, but not the command's document.
    #[error("unexpected document: {0}")]
    Schema(String),
}

/// The whole body, at most `limit` bytes.
pub fn read_body(req: &Request, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = req.body.clone();
    if body.len() > limit {
        return Err(BodyError::TooLarge(limit));
    }
    if !req.body_complete {
        loop {
            let chunk = host::request_body::read(64 * 1024).map_err(BodyError::Read)?;
            if chunk.is_empty() {
                break;
            }
            body.extend_from_slice(&chunk);
            if body.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
        }
    }
    Ok(body)
}

/// Decode a command body whose root must be `root`. An empty body is `Ok(None)` (several
/// commands allow it: Ping, Sync, GetItemEstimate).
pub fn decode_body(req: &Request, root: Tag) -> Result<Option<Element>, BodyError> {
    decode_body_limit(req, root, MAX_WBXML_BODY)
}

/// [`decode_body`] with another size limit (ComposeMail carries whole messages).
pub fn decode_body_limit(
    req: &Request,
    root: Tag,
    limit: usize,
) -> Result<Option<Element>, BodyError> {
    let body = read_body(req, limit)?;
    if body.is_empty() {
        return Ok(None);
    }
    let doc = decode_with(&body, &LIMITS).map_err(BodyError::Wbxml)?;
    if doc.tag != root {
        return Err(BodyError::Schema(format!(
            "expected {root}, got {}",
            doc.tag
        )));
    }
    Ok(Some(doc))
}

/// Encode a response document as a 200 WBXML response. Text that WBXML cannot carry (NUL
/// characters, from a broken message) is dropped rather than failing the whole answer.
pub fn respond(doc: &Element) -> Response {
    match doc.to_wbxml() {
        Ok(bytes) => http::wbxml(bytes),
        Err(switchboard_wbxml::EncodeError::NulInText) => {
            let mut clean = doc.clone();
            strip_nul(&mut clean);
            match clean.to_wbxml() {
                Ok(bytes) => http::wbxml(bytes),
                Err(e) => {
                    host::log::error(&format!("eas: encoding {}: {e}", doc.tag));
                    http::empty(500)
                }
            }
        }
        Err(e) => {
            host::log::error(&format!("eas: encoding {}: {e}", doc.tag));
            http::empty(500)
        }
    }
}

fn strip_nul(e: &mut Element) {
    for n in &mut e.children {
        match n {
            Node::Text(t) if t.contains('\0') => t.retain(|c| c != '\0'),
            Node::Element(child) => strip_nul(child),
            _ => {}
        }
    }
}

/// The root element and its `Status` tag of each command's response; `None` for commands
/// without a WBXML response (GetAttachment, Find).
pub fn roots(command: Command) -> Option<(Tag, Tag)> {
    use Command as C;
    Some(match command {
        C::Sync => (t::airsync::Sync, t::airsync::Status),
        C::SendMail => (t::composemail::SendMail, t::composemail::Status),
        C::SmartForward => (t::composemail::SmartForward, t::composemail::Status),
        C::SmartReply => (t::composemail::SmartReply, t::composemail::Status),
        C::FolderSync => (t::folderhierarchy::FolderSync, t::folderhierarchy::Status),
        C::FolderCreate => (t::folderhierarchy::FolderCreate, t::folderhierarchy::Status),
        C::FolderDelete => (t::folderhierarchy::FolderDelete, t::folderhierarchy::Status),
        C::FolderUpdate => (t::folderhierarchy::FolderUpdate, t::folderhierarchy::Status),
        C::MoveItems => (t::moves::MoveItems, t::moves::Status),
        C::GetItemEstimate => (
            t::getitemestimate::GetItemEstimate,
            t::getitemestimate::Status,
        ),
        C::MeetingResponse => (
            t::meetingresponse::MeetingResponse,
            t::meetingresponse::Status,
        ),
        C::Search => (t::search::Search, t::search::Status),
        C::Settings => (t::settings::Settings, t::settings::Status),
        C::Ping => (t::ping::Ping, t::ping::Status),
        C::ItemOperations => (t::itemoperations::ItemOperations, t::itemoperations::Status),
        C::Provision => (t::provision::Provision, t::provision::Status),
        C::ResolveRecipients => (
            t::resolverecipients::ResolveRecipients,
            t::resolverecipients::Status,
        ),
        C::ValidateCert => (t::validatecert::ValidateCert, t::validatecert::Status),
        C::GetAttachment | C::Find => return None,
    })
}

/// `<Cmd><Status>code</Status></Cmd>`: how 14.0+ learn of common errors (policy, wipe,
/// invalid WBXML, server errors). Commands without a WBXML response get the HTTP form.
pub fn status_only(command: Command, code: u8, http_fallback: u16) -> Response {
    match roots(command) {
        Some((root, status)) => {
            respond(&Element::new(root).with_text_child(status, code.to_string()))
        }
        None => http::empty(http_fallback),
    }
}

/// The answer to an unusable body: 400 for 12.1, `Status` 102/103 from 14.0 (413 for an
/// oversized body either way).
pub fn body_error(command: Command, version: http::Version, e: &BodyError) -> Response {
    use crate::status::common;
    host::log::info(&format!("eas: {}: {e}", command.name()));
    match e {
        BodyError::TooLarge(_) => http::empty(413),
        BodyError::Read(err) => {
            let m = crate::status::map_host_error(err);
            http::empty(m.http)
        }
        BodyError::Wbxml(_) if version.has_common_status() => {
            status_only(command, common::INVALID_WBXML, 400)
        }
        BodyError::Schema(_) if version.has_common_status() => {
            status_only(command, common::INVALID_XML, 400)
        }
        _ => http::bad_request(&e.to_string()),
    }
}

/// The text of child `name`, trimmed; `None` when absent or not text.
pub fn text<'a>(e: &'a Element, name: &str) -> Option<&'a str> {
    e.child_text(name).map(str::trim)
}

/// Content streamed by the core into a response where a text placeholder stood: big MIME
/// bodies and attachments never pass through the plugin's memory.
#[derive(Debug)]
pub struct Streams {
    nonce: u32,
    parts: Vec<switchboard_sdk::http::BodyPart>,
}

impl Default for Streams {
    fn default() -> Self {
        Streams::new()
    }
}

impl Streams {
    /// A new set; the placeholders carry a per-response nonce so message text cannot forge
    /// one.
    pub fn new() -> Streams {
        Streams {
            nonce: crate::provision::fnv(format!("{}", crate::time::now_ms()).as_bytes())
                | 0x8000_0000,
            parts: Vec::new(),
        }
    }

    /// A placeholder text for `part`; put it as the only text of an element.
    pub fn placeholder(&mut self, part: switchboard_sdk::http::BodyPart) -> String {
        self.parts.push(part);
        self.marker(self.parts.len() - 1)
    }

    fn marker(&self, i: usize) -> String {
        format!("\u{1}SB{:08x}#{i}\u{1}", self.nonce)
    }

    /// Whether any placeholder was handed out.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// Encode `doc`, replacing placeholders with their streamed parts.
pub fn respond_streaming(doc: &Element, streams: Streams) -> Response {
    use switchboard_sdk::http::BodyPart;
    let mut r = respond(doc);
    if streams.is_empty() || r.status != 200 {
        return r;
    }
    let bytes = r.body_bytes();
    let mut out: Vec<BodyPart> = Vec::new();
    let mut rest: &[u8] = &bytes;
    for (i, part) in streams.parts.iter().enumerate() {
        let marker = streams.marker(i);
        let m = marker.as_bytes();
        match rest.windows(m.len()).position(|w| w == m) {
            Some(at) => {
                out.push(BodyPart::Bytes(rest[..at].to_vec()));
                out.push(part.clone());
                rest = &rest[at + m.len()..];
            }
            None => host::log::warn("eas: a stream placeholder went missing"),
        }
    }
    out.push(BodyPart::Bytes(rest.to_vec()));
    r.body = out;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_do_not_fail_an_answer() {
        let doc = Element::new(t::airsync::Sync).with_text_child(t::airsync::Status, "1\0");
        let r = respond(&doc);
        assert_eq!(r.status, 200);
        let back = switchboard_wbxml::decode(&r.body_bytes()).unwrap();
        assert_eq!(back.child_text("Status"), Some("1"));
    }
}
