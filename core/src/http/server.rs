//! HTTP/1.1 connection handling with hyper, over TLS (rustls) or plain TCP.
//!
//! Protections against misbehaving clients, all from `[http]` config: a cap on connections
//! (extra ones are closed at once), a TLS handshake deadline, a deadline for each request head
//! (hyper's `header_read_timeout`, which also ends idle keep-alive connections — slow-loris),
//! a head size limit (431) and a body size limit (413, in [`super::body`]).
//!
//! A request a frontend parks (an ActiveSync Ping) leaves hyper while it waits and is answered
//! by the connection itself ([`super::detach`]), so an idle phone costs no hyper buffers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{field, Instrument};

use super::body::{text, Body};
use super::detach::{wait_parked, write_response, ConnIo, DetachState, Detacher, Placeholder};
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
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http_cfg.header_timeout_secs))
        .max_buf_size(http_cfg.max_header_bytes)
        .keep_alive(true);
    let state = Arc::new(DetachState::default());
    let mut io = ConnIo::new(io, state.clone());
    // One hyper connection per stretch between parked requests (see `super::detach`).
    loop {
        let svc_shared = shared.clone();
        let svc_state = state.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let shared = svc_shared.clone();
            let detacher = Detacher::for_request(&svc_state, &req);
            async move { Ok::<_, Infallible>(handle(req, peer, secure, shared, detacher).await) }
        });
        // Boxed: a parked request's connection task must not carry hyper's state inline.
        let mut conn = Box::new(builder.serve_connection(TokioIo::new(io), service));
        let result = tokio::select! {
            r = &mut *conn => r,
            _ = shutdown.cancelled() => {
                std::pin::Pin::new(&mut *conn).graceful_shutdown();
                (&mut *conn).await
            }
        };
        let pending = state.take_pending();
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
            return;
        }
        let Some(pending) = pending else {
            return; // hyper closed the connection itself
        };
        // hyper "answered" the placeholder and is done: take the socket back, free the rest.
        let parts = conn.into_parts();
        io = parts.io.into_inner();
        io.reclaim(parts.read_buf);
        let Some(response) = wait_parked(&mut io, pending).await else {
            return; // the client left
        };
        match write_response(&mut io, response).await {
            Ok(true) if !shutdown.is_cancelled() => {}
            Ok(_) => {
                let _ = io.shutdown().await;
                return;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "writing a parked request's answer failed");
                return;
            }
        }
    }
}

/// Answer one request under the snapshot current at its start.
/// `detach` lets the frontend hand a parked request to the connection; its answer is then
/// recorded when it is written.
pub async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    secure: bool,
    shared: Arc<Shared>,
    detach: Option<Detacher>,
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
            detach: detach.clone(),
            snapshot: snapshot.clone(),
            shared: shared.clone(),
        };
        route.frontend.handle(req, ctx).await
    }
    .instrument(span.clone())
    .await;
    if response.extensions().get::<Placeholder>().is_some() {
        // The real answer comes later, from the connection: record it then.
        if let Some(d) = &detach {
            d.wrap_pending(|answer| {
                async move {
                    let response = answer.await;
                    record(&response, protocol, started);
                    response
                }
                .instrument(span)
                .boxed()
            });
        }
        return response;
    }
    span.in_scope(|| record(&response, protocol, started));
    response
}

/// Count a finished request and log it.
fn record(response: &Response<Body>, protocol: String, started: Instant) {
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => protocol.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => protocol)
        .record(started.elapsed().as_secs_f64());
    tracing::debug!(status = response.status().as_u16(), "request done");
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
