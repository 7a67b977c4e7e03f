//! Response bodies and bounded request-body reading.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, LengthLimitError, Limited};

/// The body type every handler answers with (boxed so streaming bodies fit later).
pub type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A body from bytes in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|e: Infallible| match e {})
        .boxed()
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Larger than `http.max_body_bytes`.
    #[error("request body exceeds the limit of {limit} bytes (http.max_body_bytes)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client went away or sent a broken chunked encoding.
    #[error("request body could not be read: {0}")]
    Read(String),
}

impl BodyError {
    /// The HTTP answer for this error.
    pub fn response(&self) -> Response<Body> {
        match self {
            BodyError::TooLarge { .. } => text(StatusCode::PAYLOAD_TOO_LARGE, format!("{self}\n")),
            BodyError::Read(_) => text(StatusCode::BAD_REQUEST, format!("{self}\n")),
        }
    }
}

/// Read a whole request body, refusing more than `limit` bytes. Checks `Content-Length`
/// first so an honest oversized upload is refused before a byte of it is read.
pub async fn read_limited<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: u64,
) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, cap).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(BodyError::TooLarge { limit }),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}
