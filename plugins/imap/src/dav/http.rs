//! A small HTTP/1.1 client for DAV requests (hyper's connection API over our TCP/TLS
//! streams): one connection per request, Basic auth, bounded response bodies, timeouts.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{ImapError, Result};
use crate::imap::session::Io;

/// Where the DAV server is and how to log in.
#[derive(Clone)]
pub struct DavTarget {
    /// https?
    pub tls: bool,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path prefix of the server (no trailing slash), from `dav_url`.
    pub base: String,
    /// Basic auth user.
    pub user: String,
    /// Basic auth password (never logged).
    pub password: String,
    /// Per request.
    pub timeout: Duration,
    /// CA file for TLS.
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for DavTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DavTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("base", &self.base)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl DavTarget {
    /// From `http(s)://host[:port][/base]`.
    pub fn parse_url(url: &str) -> Option<(bool, String, u16, String)> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            (false, url.strip_prefix("http://")?)
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return None;
        }
        Some((
            tls,
            host.to_string(),
            port,
            path.trim_end_matches('/').to_string(),
        ))
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `ETag` header.
    pub etag: Option<String>,
    /// Body (bounded).
    pub body: Vec<u8>,
}

/// Send one request; `path` is absolute (`/alice@example.com/cal/`).
pub async fn request(
    t: &DavTarget,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    max_body: usize,
) -> Result<Reply> {
    let addr = t.addr();
    let timeout = || ImapError::Timeout {
        addr: addr.clone(),
        secs: t.timeout.as_secs(),
    };
    let lost = |e: &dyn std::fmt::Display| ImapError::Lost {
        addr: addr.clone(),
        reason: e.to_string(),
    };
    tokio::time::timeout(t.timeout, async {
        let stream = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|source| ImapError::Unreachable {
                addr: addr.clone(),
                source,
            })?;
        let mut io: Box<dyn Io> = Box::new(stream);
        if t.tls {
            io = crate::tls::wrap(io, &t.host, &addr, t.ca_file.as_deref()).await?;
        }
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| lost(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", t.user, t.password));
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|e| ImapError::Invalid(format!("HTTP method: {e}")))?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &addr)
            .header(http::header::AUTHORIZATION, format!("Basic {auth}"))
            .header(http::header::USER_AGENT, "switchboard-imap");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ImapError::Invalid(format!("HTTP request: {e}")))?;
        let resp = sender.send_request(req).await.map_err(|e| lost(&e))?;
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = Limited::new(resp.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| lost(&e))?
            .to_bytes()
            .to_vec();
        Ok(Reply { status, etag, body })
    })
    .await
    .map_err(|_| timeout())?
}

/// Map a non-success status to an error about `what`.
pub fn check(t: &DavTarget, r: &Reply, what: &str) -> Result<()> {
    match r.status {
        200..=299 => Ok(()),
        401 | 403 => Err(ImapError::Denied {
            addr: t.addr(),
            login: t.user.clone(),
        }),
        404 | 410 => Err(ImapError::NoItem(what.to_string())),
        409 | 412 => Err(ImapError::Conflict(format!("{what} changed or exists"))),
        500..=599 => Err(ImapError::Refused {
            addr: t.addr(),
            text: format!("HTTP {} for {what}", r.status),
        }),
        s => Err(ImapError::No {
            command: "HTTP".into(),
            text: format!("{s} for {what}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            DavTarget::parse_url("http://127.0.0.1:5232"),
            Some((false, "127.0.0.1".into(), 5232, String::new()))
        );
        assert_eq!(
            DavTarget::parse_url("https://dav.example.com/dav/"),
            Some((true, "dav.example.com".into(), 443, "/dav".into()))
        );
        assert_eq!(DavTarget::parse_url("ftp://x"), None);
        assert_eq!(DavTarget::parse_url("http://:80"), None);
        assert_eq!(DavTarget::parse_url("http://h:notaport/"), None);
    }
}
