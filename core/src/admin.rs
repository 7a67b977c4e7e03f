//! The admin listener (plain HTTP, loopback by default): `/healthz`, `/readyz`, `/metrics`,
//! and the admin API under `/admin/` (bearer token when `admin.token` is set).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::body::{full, text, Body};
use crate::state::Shared;

/// Serve the admin API on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    while let Some((tcp, peer)) = crate::net::accept(&listener, &shutdown, "admin").await {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let svc_shared = shared.clone();
            let service = service_fn(move |req| {
                let shared = svc_shared.clone();
                async move { Ok::<_, Infallible>(handle(req, peer, shared).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(conn);
            let _ = tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.cancelled() => { conn.as_mut().graceful_shutdown(); conn.await }
            };
        });
    }
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(format!("{value}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(req: Request<Incoming>, peer: SocketAddr, shared: Arc<Shared>) -> Response<Body> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            let pending = shared.readiness.pending();
            if pending.is_empty() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {}\n", pending.join(", ")),
                )
            }
        }
        (&Method::GET, "/metrics") => {
            let mut r = text(StatusCode::OK, shared.metrics.render());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (_, p) if p.starts_with("/admin/") => {
            let snap = shared.current();
            if let Some(token) = &snap.settings.admin_token {
                let given = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("");
                if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
                    tracing::warn!(%peer, path = p, "admin API: missing or wrong bearer token");
                    let mut r = json(
                        StatusCode::UNAUTHORIZED,
                        serde_json::json!({"error": "bearer token required"}),
                    );
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    return r;
                }
            }
            admin_api(req.method(), p, &shared).await
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn admin_api(method: &Method, path: &str, shared: &Shared) -> Response<Body> {
    match (method, path) {
        (&Method::POST, "/admin/reload") => match shared.reload().await {
            Ok(report) => json(
                StatusCode::OK,
                serde_json::json!({"status": "reloaded", "report": report}),
            ),
            Err(e) => {
                metrics::counter!("config_reloads_total", "outcome" => "refused").increment(1);
                tracing::error!("reload refused, the previous configuration keeps running:\n{e}");
                json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    serde_json::json!({"status": "refused", "error": e.to_string()}),
                )
            }
        },
        (&Method::GET, "/admin/status") => {
            let snap = shared.current();
            let routes: Vec<_> = snap
                .router
                .table()
                .into_iter()
                .map(|(prefix, fe)| serde_json::json!({"prefix": prefix, "frontend": fe}))
                .collect();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "generation": snap.generation,
                    "config": snap.settings.source.path.as_ref().map(|p| p.display().to_string()),
                    "frontends": snap.settings.enabled_frontends(),
                    "routes": routes,
                    "tls_certificate": snap.tls.cert_path.display().to_string(),
                    "tls_self_signed": snap.tls.self_signed,
                    "readiness": shared.readiness.snapshot(),
                    "plugins": snap.plugins.iter().map(|p| p.status()).collect::<Vec<_>>(),
                    "parked_requests": shared.plugin_runtime.hub.parked(),
                }),
            )
        }
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": format!("no admin endpoint {method} {path}")}),
        ),
    }
}
