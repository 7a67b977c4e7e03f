//! [`serve_udp`]: the receive loop of one UDP socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::framing::{classify_datagram, error_response, Datagram};
use crate::{
    metrics_names as m, shutdown_requested, FlowId, Inbound, SipHandler, Transport, TransportConfig,
};

/// Receives SIP datagrams on `socket` until `shutdown` becomes `true` (or its sender is
/// dropped), then waits for the handler calls in flight to finish and send their replies.
///
/// * The receive buffer is `max_message_bytes + 1` bytes, so an oversize datagram is
///   detected: it is answered `513 Message Too Large` when enough of its header arrived to
///   build a response (see [`error_response`]), else dropped. Other malformed datagrams are
///   answered `400 Bad Request` on the same terms. Both are logged at debug level with the
///   peer and counted in `sip_framing_errors_total{transport="udp",kind}`.
/// * Keep-alives (`CRLF`, `CRLF CRLF`) are ignored: on UDP they only refresh the client's NAT
///   binding and need no answer. (RFC 5626 UDP keep-alives are STUN, which this loop does not
///   answer.)
/// * Each message is handled in its own task, so a slow handler does not stop the socket
///   from receiving; the reply, if any, is sent to the peer's address. At most
///   [`TransportConfig::max_inflight_per_socket`] calls run at once: a message arriving when
///   all are busy is answered `503 Service Unavailable` rather than queued
///   (`sip_overload_rejections_total{transport="udp"}`).
/// * Every message handed to the handler carries the same [`FlowId`], that of this socket.
pub async fn serve_udp(
    socket: Arc<UdpSocket>,
    cfg: TransportConfig,
    handler: Arc<dyn SipHandler>,
    mut shutdown: watch::Receiver<bool>,
) {
    let local = match socket.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            tracing::warn!(error = %e, "sip/udp: socket has no local address; not serving it");
            return;
        }
    };
    let flow = FlowId::next();
    let limits = cfg.limits;
    let max_inflight = cfg.max_inflight_per_socket.max(1);
    let mut inflight = JoinSet::new();
    let mut buf = vec![0u8; limits.max_message_bytes.saturating_add(1)];
    tracing::debug!(%local, %flow, "sip/udp: serving");
    loop {
        while let Some(done) = inflight.try_join_next() {
            log_join(done);
        }
        let (n, peer) = tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(e) => {
                    tracing::debug!(%local, error = %e, "sip/udp: receive failed");
                    // Do not spin if the error persists.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let data = buf.get(..n).unwrap_or_default();
        match classify_datagram(data, limits) {
            Ok(Datagram::KeepAlive) => tracing::trace!(%peer, "sip/udp: keep-alive"),
            Ok(Datagram::Message(message)) => {
                if inflight.len() >= max_inflight {
                    m::overload(Transport::Udp);
                    tracing::debug!(%peer, max_inflight, "sip/udp: too many messages in flight; answering 503");
                    send_reply(
                        &socket,
                        peer,
                        error_response(message, 503, "Service Unavailable"),
                    )
                    .await;
                    continue;
                }
                m::message(Transport::Udp);
                let inbound = Inbound {
                    transport: Transport::Udp,
                    peer,
                    local,
                    flow,
                    message: Bytes::copy_from_slice(message),
                };
                let (socket, handler) = (socket.clone(), handler.clone());
                inflight.spawn(async move {
                    let reply = handler.on_message(inbound).await;
                    send_reply(&socket, peer, reply).await;
                });
            }
            Err(e) => {
                m::framing_error(Transport::Udp, &e);
                tracing::debug!(%peer, error = %e, "sip/udp: datagram refused");
                let (code, reason) = e.response_status();
                send_reply(&socket, peer, error_response(data, code, reason)).await;
            }
        }
    }
    tracing::debug!(%local, in_flight = inflight.len(), "sip/udp: stopping");
    while let Some(done) = inflight.join_next().await {
        log_join(done);
    }
}

async fn send_reply(socket: &UdpSocket, peer: SocketAddr, reply: Option<impl AsRef<[u8]>>) {
    if let Some(reply) = reply {
        if let Err(e) = socket.send_to(reply.as_ref(), peer).await {
            tracing::debug!(%peer, error = %e, "sip/udp: send failed");
        }
    }
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("sip/udp: message handler panicked");
        }
    }
}
