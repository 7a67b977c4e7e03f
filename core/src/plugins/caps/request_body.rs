//! The `request-body` capability: the part of an HTTP request body the core did not hand
//! over inline, read by the plugin in bounded chunks (big uploads never sit in memory whole).

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use switchboard_sdk::Error;

/// Largest chunk handed out per call.
pub const MAX_CHUNK: u32 = 1 << 20;

/// The unread rest of a request body.
#[derive(Debug)]
pub struct RequestBody {
    body: Option<Incoming>,
    pending: Bytes,
    remaining: u64,
}

impl RequestBody {
    /// `pending` bytes already read but not handed over, then `body`, at most `limit` bytes in
    /// total (`http.max_body_bytes`).
    pub fn new(body: Option<Incoming>, pending: Bytes, limit: u64) -> RequestBody {
        RequestBody {
            body,
            pending,
            remaining: limit,
        }
    }

    /// Up to `max` more bytes; empty at the end.
    pub async fn read(&mut self, max: u32) -> Result<Vec<u8>, Error> {
        let max = max.clamp(1, MAX_CHUNK) as usize;
        while self.pending.is_empty() {
            let Some(body) = self.body.as_mut() else {
                return Ok(Vec::new());
            };
            match body.frame().await {
                None => {
                    self.body = None;
                    return Ok(Vec::new());
                }
                Some(Err(e)) => return Err(Error::Unavailable(format!("request body: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending = data;
                    }
                }
            }
        }
        let n = max.min(self.pending.len());
        if n as u64 > self.remaining {
            return Err(Error::Quota(
                "request body exceeds http.max_body_bytes".into(),
            ));
        }
        self.remaining -= n as u64;
        let chunk = self.pending.slice(..n).to_vec();
        self.pending.advance(n);
        Ok(chunk)
    }
}
