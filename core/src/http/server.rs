//! HTTP/1.1 connection handling with hyper, over TLS (rustls) or plain TCP.
//!
//! Protections against misbehaving clients, all from `[http]` config: a cap on connections
//! (extra ones are closed at once), a TLS handshake deadline, a deadline for each request head
//! (hyper's `header_read_timeout`, which also ends idle keep-alive connections — slow-loris),
//! a head size limit (431) and a body size limit (413, in [`super::body`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{field, Instrument};

use super::body::{text, Body};
use super::router::{AuthPolicy, RequestContext};
use crate::plugins::caps::credentials::UserSecret;
use crate::state::Shared;
use switchboard_auth::{AuthFailure, AuthFailureKind};
use switchboard_sdk::Principal;

/// Accept connections on `listener` until `shutdown`, serving each in its own task tracked by
/// `tracker` (so shutdown can wait for in-flight requests).
pub async fn serve_listener(
    listener: TcpListener,
    secure: bool,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let scheme = if secure { "https" } else { "http" };
    while let Some((tcp, peer)) = crate::net::accept(&listener, &shutdown, scheme).await {
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            metrics::counter!("http_connections_refused_total", "reason" => "limit").increment(1);
            // Counted, and logged at debug only: a flood must not flood the log too.
            tracing::debug!(%peer, "{scheme}: connection refused, http.max_connections reached");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            metrics::gauge!("http_connections_open").increment(1.0);
            let snap = shared.current();
            if secure {
                let deadline = Duration::from_secs(snap.settings.config.tls.handshake_timeout_secs);
                if let Some(tls) =
                    crate::net::tls_handshake(snap.tls.https.clone(), tcp, peer, deadline, "https")
                        .await
                {
                    serve_connection(tls, peer, true, shared, shutdown).await;
                }
            } else {
                serve_connection(tcp, peer, false, shared, shutdown).await;
            }
            metrics::gauge!("http_connections_open").decrement(1.0);
        });
    }
}

async fn serve_connection<S>(
    io: S,
    peer: SocketAddr,
    secure: bool,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_cfg = shared.current().settings.config.http.clone();
    let svc_shared = shared.clone();
    let service = service_fn(move |req| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(handle(req, peer, secure, shared).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http_cfg.header_timeout_secs))
        .max_buf_size(http_cfg.max_header_bytes)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Parse errors have already been answered (400/431) by hyper; record why.
        let kind = if e.is_parse_too_large() {
            "head_too_large"
        } else if e.is_parse() {
            "malformed"
        } else if e.is_timeout() {
            "header_timeout"
        } else {
            "io"
        };
        metrics::counter!("http_connection_errors_total", "kind" => kind).increment(1);
        tracing::debug!(%peer, kind, error = %e, "http connection ended with an error");
    }
}

/// Answer one request under the snapshot current at its start.
pub async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    secure: bool,
    shared: Arc<Shared>,
) -> Response<Body> {
    let started = Instant::now();
    let snapshot = shared.current();
    let path = req.uri().path();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok\n");
    }
    let Some(route) = snapshot.router.lookup(path).cloned() else {
        metrics::counter!("http_requests_total", "route" => "none", "status" => "404").increment(1);
        return text(StatusCode::NOT_FOUND, "no frontend serves this path\n");
    };
    let protocol = route.frontend.name().to_string();
    let device = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("DeviceId=")))
        .unwrap_or("")
        .chars()
        .take(64)
        .collect::<String>();
    let span = tracing::info_span!(
        "http",
        protocol,
        method = %req.method(),
        path = %path,
        %peer,
        user = field::Empty,
        device = field::Empty,
    );
    if !device.is_empty() {
        span.record("device", device.as_str());
    }
    let limit = snapshot.settings.config.http.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let response = async {
        if declared.is_some_and(|n| n > limit) {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the limit of {limit} bytes (http.max_body_bytes)\n"),
            );
        }
        let mut secret = None;
        let identity = match route.auth {
            AuthPolicy::Public => None,
            AuthPolicy::Basic => {
                let header_value = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                match shared
                    .auth
                    .basic(header_value, peer.ip(), &protocol, Instant::now())
                    .await
                {
                    Ok(identity) => {
                        tracing::Span::current().record("user", identity.address.as_str());
                        secret = header_value
                            .and_then(|h| switchboard_auth::basic::parse_basic(h).ok())
                            .zip(Principal::parse(&identity.address))
                            .map(|(c, who)| UserSecret::new(who, &c.password));
                        Some(identity)
                    }
                    Err(failure) => {
                        return auth_failure_response(
                            &failure,
                            &snapshot.settings.config.http.basic_realm,
                        )
                    }
                }
            }
        };
        let ctx = RequestContext {
            peer,
            secure,
            identity,
            secret,
            snapshot: snapshot.clone(),
            shared: shared.clone(),
        };
        route.frontend.handle(req, ctx).await
    }
    .instrument(span.clone())
    .await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => protocol.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => protocol)
        .record(started.elapsed().as_secs_f64());
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "request done"));
    response
}

/// The HTTP answer for a failed Basic login.
pub fn auth_failure_response(failure: &AuthFailure, realm: &str) -> Response<Body> {
    let challenge = || {
        let mut r = text(StatusCode::UNAUTHORIZED, "authentication required\n");
        let value = switchboard_auth::basic::basic_challenge(realm);
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    };
    match &failure.kind {
        AuthFailureKind::Throttled { retry_after } => {
            let mut r = text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins; try again later\n",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
            r
        }
        AuthFailureKind::Unavailable => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "authentication backend unavailable\n",
        ),
        AuthFailureKind::Malformed(reason) => {
            let mut r = challenge();
            *r.body_mut() = super::body::full(format!("bad Authorization header: {reason}\n"));
            r
        }
        _ => challenge(),
    }
}
