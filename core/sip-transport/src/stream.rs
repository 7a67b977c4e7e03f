//! [`serve_stream`]: the loop of one TCP or TLS connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::flows::{FlowInfo, Registration};
use crate::framing::{error_response, Frame, StreamFramer};
use crate::{
    metrics_names as m, shutdown_requested, within, Flows, Inbound, SipHandler, Transport,
    TransportConfig,
};

/// Bytes read from the connection at a time. This buffer lives as long as the connection, so
/// it is sized for typical SIP messages (well under 4 KiB), not the largest: bigger ones arrive
/// over several reads and the framer joins them. Idle-connection memory is a goal (issue 6).
const READ_CHUNK: usize = 4 * 1024;
/// After refusing a message, how long to keep reading (and discarding) before closing, so the
/// peer reads the error response instead of a connection reset caused by unread data.
const LINGER: Duration = Duration::from_secs(2);
/// The keep-alive "pong" (RFC 5626 §4.4.1).
const PONG: &[u8] = b"\r\n";

/// Why a connection ended.
#[derive(Debug)]
enum End {
    PeerClosed,
    Idle,
    Shutdown,
    ReadFailed,
    WriterGone,
    Refused,
}

/// Serves one stream connection (TCP, or TLS already accepted by the caller) until the peer
/// closes it, it fails, it idles, or `shutdown` becomes `true` (or its sender is dropped).
///
/// * Bytes are framed with a [`StreamFramer`] using `cfg.limits`. Each message goes to
///   `handler`, one at a time and in order; its reply is written on the connection.
/// * A CRLF CRLF keep-alive ping is answered with a CRLF pong (RFC 5626 §4.4.1).
/// * A framing error is answered `400 Bad Request` or `513 Message Too Large` when a
///   response can be built (see [`error_response`]), and the connection is closed: the
///   message boundaries are lost. It is logged at debug level and counted in
///   `sip_framing_errors_total{transport,kind}`.
/// * No byte received for `cfg.idle_timeout` closes the connection. RFC 5626 clients keep
///   their flows alive with CRLF CRLF pings, which count.
/// * The connection is registered in `flows` for its lifetime under the [`FlowId`](crate::FlowId)
///   its [`Inbound`] messages carry, so others can queue messages on it with [`Flows::send`].
///   A single writer writes replies and queued messages whole and in order. The queue holds
///   `cfg.outbound_queue` messages; when it is full `Flows::send` fails and replies wait for
///   room. A message that cannot be written within `cfg.write_timeout` closes the connection.
///
/// Limiting the number of connections is the caller's job.
#[allow(clippy::too_many_arguments)]
pub async fn serve_stream<S>(
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    cfg: TransportConfig,
    handler: Arc<dyn SipHandler>,
    flows: Flows,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_stream_notify(
        stream, peer, local, transport, cfg, handler, flows, shutdown, None,
    )
    .await;
}

/// [`serve_stream`], telling `registered` the connection's [`FlowId`](crate::FlowId) as soon
/// as it is in `flows` (for connections the caller opened and wants to send on at once).
#[allow(clippy::too_many_arguments)]
pub async fn serve_stream_notify<S>(
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    cfg: TransportConfig,
    handler: Arc<dyn SipHandler>,
    flows: Flows,
    shutdown: watch::Receiver<bool>,
    registered: Option<oneshot::Sender<crate::FlowId>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel(cfg.outbound_queue.max(1));
    let registration = flows.register(
        FlowInfo {
            transport,
            peer,
            local,
        },
        tx.clone(),
    );
    if let Some(registered) = registered {
        let _ = registered.send(registration.id());
    }
    let conn = Connection {
        transport,
        peer,
        local,
        cfg,
        handler,
    };
    tracing::debug!(%peer, %local, %transport, flow = %registration.id(), "sip: connection opened");
    tokio::join!(
        conn.read_loop(reader, tx, registration, shutdown),
        write_loop(writer, rx, cfg.write_timeout, peer, transport),
    );
}

struct Connection {
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
    cfg: TransportConfig,
    handler: Arc<dyn SipHandler>,
}

impl Connection {
    async fn read_loop<R: AsyncRead + Unpin>(
        &self,
        mut reader: R,
        tx: mpsc::Sender<Bytes>,
        registration: Registration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let (peer, transport, flow) = (self.peer, self.transport, registration.id());
        let mut framer = StreamFramer::new(self.cfg.limits);
        let mut buf = vec![0u8; READ_CHUNK];
        let end = 'conn: loop {
            loop {
                let out = match framer.next_frame() {
                    Ok(None) => break,
                    Ok(Some(Frame::Message(message))) => {
                        m::message(transport);
                        let inbound = Inbound {
                            transport,
                            peer,
                            local: self.local,
                            flow,
                            message,
                        };
                        match self.handler.on_message(inbound).await {
                            Some(reply) => reply,
                            None => continue,
                        }
                    }
                    Ok(Some(Frame::KeepAlivePing)) => Bytes::from_static(PONG),
                    Ok(Some(Frame::KeepAlivePong)) => continue,
                    Err(e) => {
                        m::framing_error(transport, &e);
                        tracing::debug!(%peer, %transport, %flow, error = %e, "sip: message refused; closing the connection");
                        let (code, reason) = e.response_status();
                        if let Some(response) = error_response(framer.buffered(), code, reason) {
                            let _ = tx.send(Bytes::from(response)).await;
                        }
                        break 'conn End::Refused;
                    }
                };
                if tx.send(out).await.is_err() {
                    break 'conn End::WriterGone;
                }
            }
            tokio::select! {
                biased;
                () = shutdown_requested(&mut shutdown) => break End::Shutdown,
                () = tx.closed() => break End::WriterGone,
                read = within(self.cfg.idle_timeout, reader.read(&mut buf)) => match read {
                    None => break End::Idle,
                    Some(Ok(0)) => break End::PeerClosed,
                    Some(Ok(n)) => framer.push(buf.get(..n).unwrap_or_default()),
                    Some(Err(e)) => {
                        tracing::debug!(%peer, %transport, %flow, error = %e, "sip: read failed");
                        break End::ReadFailed;
                    }
                },
            }
        };
        // Unregister and let the writer flush what is queued, then close its half.
        drop(registration);
        drop(tx);
        tracing::debug!(%peer, %transport, %flow, reason = ?end, "sip: connection closing");
        if let End::Refused = end {
            // The peer may still be sending the refused message; closing with unread data
            // would reset the connection and could destroy the response in flight.
            let discard = self.cfg.limits.max_message_bytes.saturating_mul(2);
            let _ = within(LINGER, async {
                let mut total = 0usize;
                while total <= discard {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n,
                    }
                }
            })
            .await;
        }
    }
}

/// Writes queued messages until every sender is gone (then closes the write half) or a write
/// fails or stalls (then drops the queue, which stops the read loop).
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<Bytes>,
    timeout: Duration,
    peer: SocketAddr,
    transport: Transport,
) {
    while let Some(message) = rx.recv().await {
        let written = within(timeout, async {
            writer.write_all(&message).await?;
            writer.flush().await
        })
        .await;
        match written {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::debug!(%peer, %transport, error = %e, "sip: write failed");
                return;
            }
            None => {
                tracing::debug!(%peer, %transport, ?timeout, "sip: write timed out (peer not reading)");
                return;
            }
        }
    }
    let _ = within(timeout, writer.shutdown()).await;
}
