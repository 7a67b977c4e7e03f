//! SIP endpoints owned by the core: UDP sockets and TCP/TLS accept loops feeding the
//! transport layer (`switchboard-sip-transport`). Until the SIP frontend plugin is enabled the
//! built-in handler answers `OPTIONS` (so load balancers and clients can probe the server) and
//! refuses every other request with `503 Service Unavailable`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use switchboard_sip_transport::framing::{error_response, peek_head, Limits};
use switchboard_sip_transport::{
    serve_stream, serve_udp, Flows, Inbound, SipHandler, Transport, TransportConfig,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::Shared;

/// The handler used while no SIP frontend is enabled.
#[derive(Debug, Default)]
pub struct CoreSipHandler;

#[async_trait]
impl SipHandler for CoreSipHandler {
    async fn on_message(&self, inbound: Inbound) -> Option<Bytes> {
        let head = peek_head(&inbound.message)?;
        let method = head.method.as_deref()?;
        match method {
            "ACK" => None,
            "OPTIONS" => error_response(&inbound.message, 200, "OK").map(Bytes::from),
            _ => error_response(&inbound.message, 503, "Service Unavailable").map(Bytes::from),
        }
    }
}

/// Transport settings from `[sip]`.
pub fn transport_config(shared: &Shared) -> TransportConfig {
    let sip = &shared.current().settings.config.sip;
    TransportConfig {
        limits: Limits {
            max_message_bytes: sip.max_message_bytes,
            ..Limits::default()
        },
        idle_timeout: Duration::from_secs(sip.idle_timeout_secs),
        ..TransportConfig::default()
    }
}

fn watch_shutdown(shutdown: &CancellationToken) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let token = shutdown.clone();
    tokio::spawn(async move {
        token.cancelled().await;
        let _ = tx.send(true);
    });
    rx
}

/// Serve one UDP socket.
pub async fn serve_udp_socket(
    socket: UdpSocket,
    shared: Arc<Shared>,
    handler: Arc<dyn SipHandler>,
    shutdown: CancellationToken,
) {
    let cfg = transport_config(&shared);
    serve_udp(Arc::new(socket), cfg, handler, watch_shutdown(&shutdown)).await;
}

/// Accept TCP (or, with `tls`, TLS) connections and run the transport loop on each.
#[allow(clippy::too_many_arguments)]
pub async fn serve_stream_listener(
    listener: TcpListener,
    tls: bool,
    shared: Arc<Shared>,
    handler: Arc<dyn SipHandler>,
    flows: Flows,
    limit: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let name = if tls { "sip/tls" } else { "sip/tcp" };
    // One shutdown watch per listener, cloned into each connection (no task per connection).
    let stop = watch_shutdown(&shutdown);
    let listen_addr: SocketAddr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    while let Some((tcp, peer)) = crate::net::accept(&listener, &shutdown, name).await {
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            metrics::counter!("sip_connections_refused_total", "reason" => "limit").increment(1);
            // Counted, and logged at debug only: a flood must not flood the log too.
            tracing::debug!(%peer, "{name}: connection refused, sip.max_connections reached");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        // The connection's own address, not the listener's (which may be 0.0.0.0).
        let local = tcp.local_addr().unwrap_or(listen_addr);
        let (shared, handler, flows, stop) =
            (shared.clone(), handler.clone(), flows.clone(), stop.clone());
        tracker.spawn(async move {
            let _permit = permit;
            let cfg = transport_config(&shared);
            if tls {
                let snap = shared.current();
                let deadline = Duration::from_secs(snap.settings.config.tls.handshake_timeout_secs);
                if let Some(stream) =
                    crate::net::tls_handshake(snap.tls.sip.clone(), tcp, peer, deadline, "sip/tls")
                        .await
                {
                    serve_stream(
                        stream,
                        peer,
                        local,
                        Transport::Tls,
                        cfg,
                        handler,
                        flows,
                        stop,
                    )
                    .await;
                }
            } else {
                serve_stream(tcp, peer, local, Transport::Tcp, cfg, handler, flows, stop).await;
            }
        });
    }
}
