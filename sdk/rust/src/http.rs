//! HTTP frontend types: the request the core hands over, and what the plugin decides —
//! a reply, or *park*: "hold this request in the core until one of these keys changes or the
//! timeout passes". Mirrors the `http-handler` interface.

use serde::{Deserialize, Serialize};

use crate::types::{host_types, Principal};

host_types! {
    /// A request as the core received it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct Request {
        /// `GET`, `POST`, …
        pub method: String,
        /// Path without the query, e.g. `/Microsoft-Server-ActiveSync`.
        pub path: String,
        /// Raw query string (after `?`), possibly empty.
        pub query: String,
        /// Header names (lower case) and values, in arrival order.
        pub headers: Vec<(String, String)>,
        /// The authenticated user, if the route requires one.
        pub principal: Option<Principal>,
        /// Address of the client, `ip:port`.
        pub peer: String,
        /// The first bytes of the body (all of it when `body_complete`); read the rest with
        /// [`crate::host::request_body::read`].
        #[serde(with = "serde_bytes")]
        pub body: Vec<u8>,
        /// Whether `body` is the whole body.
        #[cfg_attr(feature = "host", component(name = "body-complete"))]
        pub body_complete: bool,
    }

    /// A mailstore item (or one of its parts) to stream into a response.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct ItemRef {
        /// Whose mailbox.
        pub who: Principal,
        /// The item.
        #[cfg_attr(feature = "host", component(name = "item-id"))]
        pub item_id: String,
        /// An attachment's part id; `None` for the whole item.
        #[cfg_attr(feature = "host", component(name = "part-id"))]
        pub part_id: Option<String>,
    }

    /// One piece of a response body. Items are streamed by the core from the connector in
    /// bounded chunks after the plugin has returned, so big attachments never pass through the
    /// plugin's memory.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(variant))]
    pub enum BodyPart {
        /// Literal bytes.
        #[cfg_attr(feature = "host", component(name = "bytes"))]
        Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
        /// The content of a mailstore item, copied raw.
        #[cfg_attr(feature = "host", component(name = "item"))]
        Item(ItemRef),
        /// The same, base64-encoded (e.g. EAS `Data` elements).
        #[cfg_attr(feature = "host", component(name = "item-base64"))]
        ItemBase64(ItemRef),
    }

    /// A response.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct Response {
        /// HTTP status code.
        pub status: u16,
        /// Header names and values.
        pub headers: Vec<(String, String)>,
        /// The body, in parts.
        pub body: Vec<BodyPart>,
    }

    /// Hold the request in the core until one of `watch` fires or `timeout_ms` passes. The
    /// plugin instance is released meanwhile: an idle long-poll costs the core a few hundred
    /// bytes, not a sandbox.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct Park {
        /// Event keys to wait on (see [`crate::host::events`]).
        pub watch: Vec<String>,
        /// How long to wait, in milliseconds.
        #[cfg_attr(feature = "host", component(name = "timeout-ms"))]
        pub timeout_ms: u32,
        /// Handed back to [`crate::HttpFrontend::resume`] when a key fires.
        #[serde(with = "serde_bytes")]
        pub state: Vec<u8>,
        /// Sent as is when the timeout passes (or a newer request of the same group arrives).
        #[cfg_attr(feature = "host", component(name = "on-timeout"))]
        pub on_timeout: Response,
        /// A newer parked request with the same group (e.g. a device id) ends this one early
        /// with its `on_timeout` response.
        pub group: Option<String>,
    }

    /// What the plugin decided.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(variant))]
    pub enum Outcome {
        /// Answer now.
        #[cfg_attr(feature = "host", component(name = "reply"))]
        Reply(Response),
        /// Wait in the core.
        #[cfg_attr(feature = "host", component(name = "park"))]
        Park(Park),
    }
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter named `name`, percent-decoding `%XX` and `+`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Response {
    /// A response with a literal body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: vec![BodyPart::Bytes(body.into())],
        }
    }

    /// `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    /// Add a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The literal bytes of the body (item parts are skipped); handy in tests.
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in &self.body {
            if let BodyPart::Bytes(b) = part {
                out.extend_from_slice(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_decode() {
        let req = Request {
            method: "GET".into(),
            path: "/".into(),
            query: "a=1&name=J%C3%BCrgen+M&bad=%zz&end=%4".into(),
            headers: vec![],
            principal: None,
            peer: String::new(),
            body: vec![],
            body_complete: true,
        };
        assert_eq!(req.query_param("a").as_deref(), Some("1"));
        assert_eq!(req.query_param("name").as_deref(), Some("Jürgen M"));
        assert_eq!(req.query_param("bad").as_deref(), Some("%zz"));
        assert_eq!(req.query_param("end").as_deref(), Some("%4"));
        assert_eq!(req.query_param("missing"), None);
    }
}
