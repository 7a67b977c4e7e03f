//! Switchboard's SIP transport layer.
//!
//! The core owns the SIP sockets (UDP, TCP, TLS); the SIP frontend owns SIP logic. This crate
//! sits between them:
//!
//! * [`framing`] — sans-IO message framing: message boundaries on streams
//!   ([`framing::StreamFramer`]), datagram checks ([`framing::classify_datagram`]), size
//!   limits, RFC 5626 CRLF keep-alives, and the minimal error responses a transport sends
//!   ([`framing::error_response`]).
//! * [`serve_udp`] and [`serve_stream`] — the receive loops for one UDP socket and one stream
//!   connection. They are generic over the IO, so the core hands in TLS streams
//!   (tokio-rustls) without this crate knowing about TLS.
//! * [`Flows`] — the registry of open stream connections, so a message can later be sent on a
//!   client's existing connection (RFC 5626 flow reuse), found by id or by remote address.
//! * [`ratelimit`] — a token bucket per source address in bounded memory (sans-IO).
//!
//! It is not a SIP message model: it never parses more than it needs to frame a message and
//! to refuse one.
#![deny(missing_docs)]

pub mod framing;
pub mod ratelimit;

mod flows;
mod metrics_names;
mod stream;
mod udp;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use flows::{FlowInfo, Flows, SendError};
pub use stream::{serve_stream, serve_stream_notify};
pub use udp::serve_udp;

use framing::Limits;

/// The transport a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS (over TCP).
    Tls,
}

impl Transport {
    /// The lower-case name, as used in metric labels and logs (`"udp"`, `"tcp"`, `"tls"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// Whether this is a stream transport (TCP or TLS).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies a flow: one stream connection, or one UDP socket. Unique within the process
/// (never reused); not meaningful across restarts.
///
/// Only stream flows are registered in [`Flows`]: every datagram received on a UDP socket
/// carries that socket's id, which [`Flows::send`] does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

impl FlowId {
    /// A fresh, process-unique id.
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        FlowId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message received by the transport and handed to the [`SipHandler`].
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The transport it arrived on.
    pub transport: Transport,
    /// The sender's address (for UDP, where replies go).
    pub peer: SocketAddr,
    /// The local address it arrived at.
    pub local: SocketAddr,
    /// The flow it arrived on: the connection (usable with [`Flows::send`]) or the UDP socket.
    pub flow: FlowId,
    /// The whole message (header and body), already checked against the limits.
    pub message: Bytes,
}

/// The SIP logic behind the transport (the SIP frontend, or the core's stand-in).
///
/// Implement it with `#[async_trait::async_trait]`; the trait is dyn-compatible and the loops
/// take an `Arc<dyn SipHandler>`.
#[async_trait]
pub trait SipHandler: Send + Sync + 'static {
    /// Handles one message. Returned bytes are sent back on the same flow: to the peer's
    /// address on UDP, on the connection for TCP/TLS. On a stream connection messages are
    /// handled one after another, in order; on UDP concurrently.
    async fn on_message(&self, inbound: Inbound) -> Option<Bytes>;
}

/// Settings for the transport loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportConfig {
    /// Message size limits.
    pub limits: Limits,
    /// A stream connection on which no byte arrives for this long is closed. Default 300 s.
    /// RFC 5626 clients keep their flows open with CRLF CRLF pings (every 95–120 s for
    /// TCP/TLS by default), which count as received bytes. `Duration::ZERO` disables it.
    pub idle_timeout: Duration,
    /// Most handler calls in flight per UDP socket; a datagram arriving when all are busy is
    /// answered `503 Service Unavailable` instead of being queued. Default 1024; 0 counts as 1.
    pub max_inflight_per_socket: usize,
    /// Capacity, in messages, of each stream connection's outbound queue. When it is full (the
    /// peer does not read), [`Flows::send`] fails with [`SendError::QueueFull`] and replies
    /// wait. Default 64; 0 counts as 1.
    pub outbound_queue: usize,
    /// A stream connection on which writing one message (and flushing it) takes longer than
    /// this is closed, so a peer that stops reading cannot hold the connection, and the replies
    /// waiting for it, forever. Default 30 s. `Duration::ZERO` disables it.
    pub write_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(300),
            max_inflight_per_socket: 1024,
            outbound_queue: 64,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Runs `fut` with a time limit, or without one for `Duration::ZERO`. `None` on timeout.
pub(crate) async fn within<F: std::future::Future>(limit: Duration, fut: F) -> Option<F::Output> {
    if limit.is_zero() {
        Some(fut.await)
    } else {
        tokio::time::timeout(limit, fut).await.ok()
    }
}

/// Resolves when the shutdown signal is `true` or its sender is gone.
pub(crate) async fn shutdown_requested(rx: &mut tokio::sync::watch::Receiver<bool>) {
    // `wait_for` errs only when the sender was dropped, which also means: stop.
    let _ = rx.wait_for(|stop| *stop).await;
}
