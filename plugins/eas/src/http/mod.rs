//! The HTTP layer of [MS-ASHTTP]: the query value, protocol versions, the OPTIONS answer,
//! the policy gate and the HTTP-level responses (449, 451, 400, 401, 403, 500, 503).

pub mod command;
pub mod options;
pub mod policy;
pub mod query;
pub mod version;

use switchboard_sdk::http::{BodyPart, Response};

pub use command::Command;
pub use version::Version;

/// The WBXML content type of command requests and responses.
pub const WBXML: &str = "application/vnd.ms-sync.wbxml";

fn base(status: u16) -> Response {
    Response {
        status,
        headers: vec![
            (
                "ms-server-activesync".into(),
                options::SERVER_VERSION.into(),
            ),
            ("cache-control".into(), "private".into()),
        ],
        body: vec![],
    }
}

/// 200 with a WBXML body.
pub fn wbxml(body: Vec<u8>) -> Response {
    let mut r = base(200);
    r.headers.push(("content-type".into(), WBXML.into()));
    r.body.push(BodyPart::Bytes(body));
    r
}

/// A response with no body (200 for a successful SendMail, 449, 403…).
pub fn empty(status: u16) -> Response {
    base(status)
}

/// 400: the request is malformed. The reason goes in a header for diagnostics (clients
/// ignore bodies of error responses); an unsupported version also gets the supported list.
pub fn bad_request(reason: &str) -> Response {
    let mut r = base(400);
    r.headers
        .push(("x-ms-diagnostics".into(), sanitize_header(reason)));
    r
}

/// 400 for an unsupported protocol version, with `MS-ASProtocolVersions` so the client can
/// pick one.
pub fn unsupported_version(reason: &str) -> Response {
    bad_request(reason).with_header("ms-asprotocolversions", version::SUPPORTED_HEADER)
}

/// 449 "Retry after sending a PROVISION command" (protocol 12.1).
pub fn need_provision() -> Response {
    empty(449)
}

/// 451: the mailbox is served elsewhere; `X-MS-Location` names the new URL.
pub fn redirect(url: &str) -> Response {
    empty(451).with_header("x-ms-location", url)
}

/// 401 when the core routed a request without a principal.
pub fn unauthorized() -> Response {
    empty(401).with_header("www-authenticate", "Basic realm=\"ActiveSync\"")
}

/// 503 with a retry hint (the backend is down or overloaded).
pub fn unavailable() -> Response {
    empty(503).with_header("retry-after", "30")
}

/// Header values must not carry control characters.
fn sanitize_header(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}
