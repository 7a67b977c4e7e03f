//! SIP endpoints owned by the core: UDP sockets and TCP/TLS accept loops feeding the
//! transport layer (`switchboard-sip-transport`), which frames messages and enforces the size
//! limits, CRLF keep-alives and idle timeouts. Every framed message then goes through
//! [`SipDispatch`]:
//!
//! 1. a token bucket per source address (`sip.rate_limit_per_sec`, `sip.rate_limit_burst`);
//! 2. the SIP frontend plugin of the current snapshot (`[frontends.sip] plugin = "…"`), which
//!    answers through the `sip-transport` capability ([`crate::plugins::caps::sip`]);
//! 3. without one, the built-in [`CoreSipHandler`]: `OPTIONS` answered 200 (so load balancers
//!    and clients can probe the server), every other request 503.
//!
//! The handler loads the snapshot per message, so a reload swaps the plugin for the next
//! message while connections (and their flow ids) stay open.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use switchboard_sdk::sip::Origin;
use switchboard_sdk::Error;
use switchboard_sip_transport::framing::{error_response, peek_branch, peek_head, Limits};
use switchboard_sip_transport::ratelimit::{Rate, RateLimiter};
use switchboard_sip_transport::{
    serve_stream, serve_stream_notify, serve_udp, FlowId, Flows, Inbound, SipHandler, Transport,
    TransportConfig,
};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::plugins::caps::sip::{Dialer, Sent};
use crate::plugins::{Fault, Plugin};
use crate::state::{Shared, Snapshot};

/// Most source addresses the rate limiter tracks (about 100 bytes each).
pub const RATE_LIMIT_TRACKED: usize = 100_000;
/// How long an outbound SIP connection (or its TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The handler behind every SIP listener: rate limit, then the SIP frontend plugin of the
/// current snapshot, else [`CoreSipHandler`].
#[derive(Debug)]
pub struct SipDispatch {
    shared: Arc<Shared>,
    limiter: RateLimiter,
}

impl SipDispatch {
    /// A dispatcher reading its settings and plugin from `shared`'s current snapshot.
    pub fn new(shared: Arc<Shared>) -> SipDispatch {
        SipDispatch {
            shared,
            limiter: RateLimiter::new(RATE_LIMIT_TRACKED),
        }
    }
}

/// The enabled SIP frontend plugin of `snap`, if any.
fn sip_plugin(snap: &Snapshot) -> Option<&Arc<Plugin>> {
    let frontend = snap.settings.config.frontends.get("sip")?;
    if !frontend.enabled {
        return None;
    }
    snap.plugins.get(frontend.plugin.as_deref()?)
}

/// Counts a message the core itself answers with: `sip_messages_sent_total{transport}`.
fn core_reply(transport: Transport, reply: Option<Bytes>) -> Option<Bytes> {
    if reply.is_some() {
        metrics::counter!("sip_messages_sent_total", "transport" => transport.as_str())
            .increment(1);
    }
    reply
}

/// Whether a response's status line says `2xx` (`SIP/2.0 2xx`).
fn is_2xx(response: &[u8]) -> bool {
    response.starts_with(b"SIP/2.0 2")
        && response
            .get(8..11)
            .is_some_and(|c| c.iter().all(u8::is_ascii_digit))
}

/// `response` (as built by [`error_response`]) with a `Retry-After` header.
fn with_retry_after(mut response: Vec<u8>, secs: u64) -> Vec<u8> {
    // The response ends with the empty line; the header goes before it.
    let at = response.len().saturating_sub(2);
    let header = format!("Retry-After: {secs}\r\n");
    response.splice(at..at, header.into_bytes());
    response
}

#[async_trait]
impl SipHandler for SipDispatch {
    async fn on_message(&self, inbound: Inbound) -> Option<Bytes> {
        let transport = inbound.transport;
        // A response over UDP ends the retransmission of the request it answers (timer E in
        // caps::sip_retransmit). It still goes to the plugin below, unless it is a 2xx to a
        // request the plugin relayed (`relay-to`): that one is consumed here.
        if transport == Transport::Udp && inbound.message.starts_with(b"SIP/") {
            if let Some(head) = peek_branch(&inbound.message).filter(|h| h.method.is_none()) {
                let sent = self.shared.plugin_runtime.sip.answered(&head.branch);
                if sent == Some(Sent::Relay) && is_2xx(&inbound.message) {
                    metrics::counter!("sip_relay_answers_consumed_total").increment(1);
                    return None;
                }
            }
        }
        let snap = self.shared.current();
        let sip = &snap.settings.config.sip;
        let rate = Rate::new(sip.rate_limit_per_sec, sip.rate_limit_burst);
        if !self.limiter.check(inbound.peer.ip(), rate, Instant::now()) {
            metrics::counter!("sip_rate_limited_total", "transport" => transport.as_str())
                .increment(1);
            tracing::debug!(peer = %inbound.peer, %transport, "sip: over the rate limit");
            // UDP: dropped. The source address is unverified, so answering would reflect a
            // spoofed flood at its victim; a real client retransmits (RFC 3261 timers A/E)
            // and gets through once its bucket refills. Streams: the address is verified by
            // the handshake, so requests get 503 with Retry-After (RFC 3261 §21.5.4).
            if transport == Transport::Udp {
                return None;
            }
            let reply = error_response(&inbound.message, 503, "Service Unavailable")
                .map(|r| Bytes::from(with_retry_after(r, rate.retry_after_secs())));
            return core_reply(transport, reply);
        }
        let Some(plugin) = sip_plugin(&snap) else {
            return core_reply(transport, CoreSipHandler.on_message(inbound).await);
        };
        let origin = Origin {
            transport: transport.as_str().to_string(),
            peer: inbound.peer.to_string(),
            local: inbound.local.to_string(),
            flow: transport.is_stream().then_some(inbound.flow.0),
        };
        match plugin
            .sip_handle(
                Some(snap.plugins.routes()),
                inbound.message.to_vec(),
                origin,
            )
            .await
        {
            Ok(()) => None,
            Err(fault) => {
                metrics::counter!("sip_plugin_errors_total", "transport" => transport.as_str(), "kind" => fault.kind())
                    .increment(1);
                let (code, reason) = match fault {
                    Fault::Disabled | Fault::Busy => (503, "Service Unavailable"),
                    _ => (500, "Server Internal Error"),
                };
                core_reply(
                    transport,
                    error_response(&inbound.message, code, reason).map(Bytes::from),
                )
            }
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
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    handler: Arc<dyn SipHandler>,
    shutdown: CancellationToken,
) {
    let cfg = transport_config(&shared);
    serve_udp(socket, cfg, handler, watch_shutdown(&shutdown)).await;
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
        // The address connected to us: the core may connect back to it (see caps::sip).
        shared.plugin_runtime.sip.saw(peer.ip(), Instant::now());
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

/// Opens outbound SIP connections for `sip-transport.send-to` (only where
/// [`crate::plugins::caps::sip::SipSockets`] allows) and serves them like accepted ones:
/// counted against `sip.max_connections`, framed, keep-alives answered, messages to the
/// plugin. TLS verifies the peer's certificate for its IP address against the public roots.
#[derive(Debug)]
pub struct StreamDialer {
    shared: Weak<Shared>,
    handler: Weak<dyn SipHandler>,
    flows: Flows,
    limit: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    tracker: TaskTracker,
}

impl StreamDialer {
    /// A dialer serving its connections with `handler` until `shutdown`. Holds `shared` and
    /// `handler` weakly (they own it through the plugin runtime).
    pub fn new(
        shared: &Arc<Shared>,
        handler: &Arc<dyn SipHandler>,
        flows: Flows,
        limit: Arc<Semaphore>,
        shutdown: &CancellationToken,
        tracker: TaskTracker,
    ) -> StreamDialer {
        StreamDialer {
            shared: Arc::downgrade(shared),
            handler: Arc::downgrade(handler),
            flows,
            limit,
            stop: watch_shutdown(shutdown),
            tracker,
        }
    }

    async fn connect(&self, transport: Transport, target: SocketAddr) -> Result<FlowId, Error> {
        let unavailable =
            |what: String| Error::Unavailable(format!("SIP {transport} to {target}: {what}"));
        let (Some(shared), Some(handler)) = (self.shared.upgrade(), self.handler.upgrade()) else {
            return Err(unavailable("the server is shutting down".into()));
        };
        let permit = self
            .limit
            .clone()
            .try_acquire_owned()
            .map_err(|_| unavailable("sip.max_connections reached".into()))?;
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target))
            .await
            .map_err(|_| unavailable("connect timed out".into()))?
            .map_err(|e| unavailable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(|e| unavailable(e.to_string()))?;
        let cfg = transport_config(&shared);
        let (tx, rx) = oneshot::channel();
        let (flows, stop) = (self.flows.clone(), self.stop.clone());
        if transport == Transport::Tls {
            let name = rustls_pki_types::ServerName::IpAddress(target.ip().into());
            let stream = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio_rustls::TlsConnector::from(crate::plugins::caps::outbound::client_config())
                    .connect(name, tcp),
            )
            .await
            .map_err(|_| unavailable("TLS handshake timed out".into()))?
            .map_err(|e| unavailable(format!("TLS: {e}")))?;
            self.tracker.spawn(async move {
                let _permit = permit;
                serve_stream_notify(
                    stream,
                    target,
                    local,
                    transport,
                    cfg,
                    handler,
                    flows,
                    stop,
                    Some(tx),
                )
                .await;
            });
        } else {
            self.tracker.spawn(async move {
                let _permit = permit;
                serve_stream_notify(
                    tcp,
                    target,
                    local,
                    transport,
                    cfg,
                    handler,
                    flows,
                    stop,
                    Some(tx),
                )
                .await;
            });
        }
        rx.await
            .map_err(|_| unavailable("the connection closed at once".into()))
    }
}

impl Dialer for StreamDialer {
    fn dial(
        &self,
        transport: Transport,
        target: SocketAddr,
    ) -> BoxFuture<'static, Result<FlowId, Error>> {
        let me = StreamDialer {
            shared: self.shared.clone(),
            handler: self.handler.clone(),
            flows: self.flows.clone(),
            limit: self.limit.clone(),
            stop: self.stop.clone(),
            tracker: self.tracker.clone(),
        };
        async move {
            let flow = me.connect(transport, target).await?;
            tracing::debug!(%target, %transport, %flow, "sip: outbound connection opened");
            metrics::counter!("sip_connections_opened_total", "transport" => transport.as_str())
                .increment(1);
            Ok(flow)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::is_2xx;

    #[test]
    fn only_2xx_status_lines_are_2xx() {
        assert!(is_2xx(b"SIP/2.0 200 OK\r\n"));
        assert!(is_2xx(b"SIP/2.0 202 Accepted\r\n"));
        assert!(!is_2xx(b"SIP/2.0 180 Ringing\r\n"));
        assert!(!is_2xx(b"SIP/2.0 404 Not Found\r\n"));
        assert!(!is_2xx(b"SIP/2.0 2x0 Odd\r\n"));
        assert!(!is_2xx(b"SIP/2.0 20"));
        assert!(!is_2xx(b"MESSAGE sip:a@b SIP/2.0\r\n"));
    }
}
