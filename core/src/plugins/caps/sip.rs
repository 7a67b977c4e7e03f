//! The `sip-transport` capability: a SIP frontend sends messages through the core's sockets.
//!
//! * `send-flow(flow, bytes)` queues the message on an open TCP/TLS connection (the flow id
//!   from the `origin` of a message that arrived on it). A closed flow is `not-found`; a flow
//!   whose peer does not read (its bounded queue is full) is `unavailable`.
//! * `send-to(transport, target, bytes)`: over UDP, sent from the core's SIP UDP socket of the
//!   target's address family; over TCP/TLS, on the open connection to exactly that address if
//!   there is one (RFC 5626 flow reuse; RFC 3261 §18.2.2 for responses). Otherwise the core
//!   opens a connection only back to an address that itself connected to this server recently
//!   (see [`SipSockets::set_dialer`] and `docs/plugins.md`); anything else is `not-found`.
//! * `relay-to(transport, target, bytes)`: `send-to` for a request whose success the plugin
//!   need not hear of (a forked MESSAGE). Over UDP its resend entry remembers that, and the
//!   listener consumes a `2xx` answering it instead of calling the plugin
//!   ([`SipSockets::answered`], `crate::sip`): one plugin call less per relayed request.
//!
//! * `sip-auth.verify-digest` / `challenge` check Digest credentials against the core's
//!   credential chain ([`SipSockets::set_auth`]): nonces, replay counters, throttling and the
//!   audit log are the core's, and the plugin never sees a password or HA1.
//!
//! One [`SipSockets`] lives as long as the server (in the plugin runtime), so flows survive
//! reloads: a reloaded SIP frontend can still answer on connections opened before.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use switchboard_auth::{AuthFailureKind, Authenticator};
use switchboard_sdk::{Error, Principal};
use switchboard_sip_transport::framing::peek_branch;
use switchboard_sip_transport::{FlowId, Flows, SendError, Transport};

pub use super::sip_retransmit::Sent;

use super::sip_retransmit::Retransmits;
use tokio::net::UdpSocket;

/// Largest message a plugin may send (the upper bound of `sip.max_message_bytes`), so a
/// flow's queue (`64` messages) stays bounded in bytes too.
pub const MAX_SEND_BYTES: usize = 1024 * 1024;

/// How long after its last stream connection an address may still be connected back to.
pub const CONNECT_BACK_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Most addresses remembered for connecting back (oldest forgotten first).
const MAX_REMEMBERED: usize = 65_536;

/// Opens an outbound stream connection and serves it like an accepted one (so the peer's
/// answers reach the SIP frontend). Implemented by the core's SIP listeners.
pub trait Dialer: Send + Sync + std::fmt::Debug {
    /// Connect to `target` over `transport` (TCP or TLS); the id of the new flow.
    fn dial(
        &self,
        transport: Transport,
        target: SocketAddr,
    ) -> BoxFuture<'static, Result<FlowId, Error>>;
}

/// The core's SIP sockets as the `sip-transport` capability sees them.
#[derive(Debug, Default)]
pub struct SipSockets {
    flows: Flows,
    /// The UDP listener sockets with their local addresses (read once: asking the socket
    /// is a system call, and every `send-to` picks one).
    udp: Mutex<Vec<(SocketAddr, Arc<UdpSocket>)>>,
    /// IP → when it last had a stream connection to us.
    seen: Mutex<HashMap<IpAddr, Instant>>,
    dialer: OnceLock<Arc<dyn Dialer>>,
    auth: OnceLock<Arc<Authenticator>>,
    /// Requests sent over UDP still waiting for a response (timer E).
    retransmits: Arc<Retransmits>,
}

fn transport_of(name: &str) -> Result<Transport, Error> {
    match name.to_ascii_lowercase().as_str() {
        "udp" => Ok(Transport::Udp),
        "tcp" => Ok(Transport::Tcp),
        "tls" => Ok(Transport::Tls),
        other => Err(Error::Invalid(format!(
            "unknown SIP transport {other:?} (expected udp, tcp or tls)"
        ))),
    }
}

fn sent(transport: Transport) {
    metrics::counter!("sip_messages_sent_total", "transport" => transport.as_str()).increment(1);
}

fn send_failed(transport: &'static str, reason: &'static str) {
    metrics::counter!("sip_send_errors_total", "transport" => transport, "reason" => reason)
        .increment(1);
}

impl SipSockets {
    /// No sockets yet; the server adds its UDP sockets and hands out [`SipSockets::flows`] to
    /// its stream listeners.
    pub fn new() -> SipSockets {
        SipSockets::default()
    }

    /// The registry of open stream connections (shared with the listeners).
    pub fn flows(&self) -> &Flows {
        &self.flows
    }

    /// A UDP response arrived: the request it answers (by top Via `branch`) is no longer
    /// resent. How that request was sent, when it answered one of ours.
    pub fn answered(&self, branch: &str) -> Option<Sent> {
        self.retransmits.answered(branch)
    }

    /// Requests sent over UDP and not answered yet.
    pub fn awaiting_response(&self) -> usize {
        self.retransmits.pending()
    }

    /// Registers a UDP listener socket for `send-to`.
    pub fn add_udp(&self, socket: Arc<UdpSocket>) {
        // A socket without a local address could not be picked by family: never used.
        let Ok(local) = socket.local_addr() else {
            return;
        };
        self.udp
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((local, socket));
    }

    /// Installs what opens outbound connections (once; later calls are ignored). Without one,
    /// `send-to` over TCP/TLS only reuses open flows.
    pub fn set_dialer(&self, dialer: Arc<dyn Dialer>) {
        let _ = self.dialer.set(dialer);
    }

    /// Installs the credential chain `sip-auth` checks against (once; later calls are
    /// ignored). Without one, `verify-digest` is `unavailable`.
    pub fn set_auth(&self, auth: Arc<Authenticator>) {
        let _ = self.auth.set(auth);
    }

    fn auth(&self) -> Result<&Arc<Authenticator>, Error> {
        self.auth.get().ok_or_else(|| {
            Error::Unavailable("no credential chain for SIP Digest in this context".into())
        })
    }

    /// `sip-auth.verify-digest`: `Ok(None)` when refused, `conflict` when stale, `denied`
    /// when throttled, `unavailable` when no credential source answered.
    pub async fn verify_digest(
        &self,
        method: &str,
        authorization: &str,
        realm: &str,
        source: &str,
    ) -> Result<Option<Principal>, Error> {
        let auth = self.auth()?;
        let source: IpAddr = source
            .trim()
            .parse()
            .or_else(|_| source.trim().parse::<SocketAddr>().map(|a| a.ip()))
            .map_err(|_| Error::Invalid(format!("source {source:?} is not an IP address")))?;
        let header = Some(authorization).filter(|h| !h.trim().is_empty());
        let now = Instant::now();
        let wall = std::time::SystemTime::now();
        match auth
            .digest(header, method, realm, source, "sip", now, wall)
            .await
        {
            Ok(identity) => Principal::parse(&identity.address)
                .map(Some)
                .ok_or_else(|| {
                    Error::Internal(format!(
                        "credential source returned an address without a domain: {:?}",
                        identity.address
                    ))
                }),
            Err(f) => match f.kind {
                AuthFailureKind::Stale => Err(Error::Conflict(
                    "stale or replayed nonce: challenge again with stale=true".into(),
                )),
                AuthFailureKind::Throttled { retry_after } => Err(Error::Denied(format!(
                    "too many failed logins; retry in {} s",
                    retry_after.as_secs().max(1)
                ))),
                AuthFailureKind::Unavailable => {
                    Err(Error::Unavailable("no credential source answered".into()))
                }
                AuthFailureKind::MissingCredentials
                | AuthFailureKind::Malformed(_)
                | AuthFailureKind::BadCredentials
                | AuthFailureKind::Disabled => Ok(None),
            },
        }
    }

    /// `sip-auth.challenge`: a fresh nonce for `realm` (empty without a credential chain).
    pub fn challenge(&self, realm: &str, stale: bool) -> String {
        let Ok(auth) = self.auth() else {
            return String::new();
        };
        let nonce = auth.nonces().issue(std::time::SystemTime::now());
        switchboard_auth::digest::challenge(
            realm,
            &nonce,
            switchboard_auth::DigestAlgorithm::Md5,
            stale,
            None,
        )
    }

    /// Notes that `ip` has a stream connection to us now (it may be connected back to for
    /// [`CONNECT_BACK_WINDOW`] after).
    pub fn saw(&self, ip: IpAddr, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_REMEMBERED && !seen.contains_key(&ip) {
            seen.retain(|_, at| now.saturating_duration_since(*at) < CONNECT_BACK_WINDOW);
            if seen.len() >= MAX_REMEMBERED {
                if let Some(oldest) = seen.iter().min_by_key(|(_, at)| **at).map(|(ip, _)| *ip) {
                    seen.remove(&oldest);
                }
            }
        }
        seen.insert(ip, now);
    }

    /// Whether the core may open a connection to `ip`: it connected to us within
    /// [`CONNECT_BACK_WINDOW`].
    pub fn may_connect_back(&self, ip: IpAddr, now: Instant) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&ip)
            .is_some_and(|at| now.saturating_duration_since(*at) < CONNECT_BACK_WINDOW)
    }

    fn check_size(message: &[u8]) -> Result<(), Error> {
        if message.len() > MAX_SEND_BYTES {
            return Err(Error::Invalid(format!(
                "SIP message of {} bytes exceeds the {MAX_SEND_BYTES}-byte limit",
                message.len()
            )));
        }
        Ok(())
    }

    fn queue(&self, flow: FlowId, transport: Transport, message: &[u8]) -> Result<(), Error> {
        match self.flows.send(flow, Bytes::copy_from_slice(message)) {
            Ok(()) => {
                sent(transport);
                Ok(())
            }
            Err(SendError::UnknownFlow(_)) => {
                send_failed(transport.as_str(), "closed");
                Err(Error::NotFound(format!("SIP flow {flow} is closed")))
            }
            Err(e @ SendError::QueueFull { .. }) => {
                send_failed(transport.as_str(), "queue_full");
                Err(Error::Unavailable(e.to_string()))
            }
        }
    }

    /// `sip-transport.send-flow`
    pub fn send_flow(&self, flow: u64, message: &[u8]) -> Result<(), Error> {
        Self::check_size(message)?;
        let flow = FlowId(flow);
        let Some(info) = self.flows.info(flow) else {
            send_failed("stream", "closed");
            return Err(Error::NotFound(format!("SIP flow {flow} is closed")));
        };
        self.queue(flow, info.transport, message)
    }

    /// `sip-transport.send-to`
    pub async fn send_to(
        &self,
        transport: &str,
        target: &str,
        message: &[u8],
    ) -> Result<(), Error> {
        self.send(transport, target, message, Sent::Request).await
    }

    /// `send-to` (`how`: [`Sent::Request`]) or `relay-to` ([`Sent::Relay`]: over UDP the
    /// resend entry remembers that a `2xx` to the request is not the plugin's, see
    /// [`SipSockets::answered`]).
    pub async fn send(
        &self,
        transport: &str,
        target: &str,
        message: &[u8],
        how: Sent,
    ) -> Result<(), Error> {
        Self::check_size(message)?;
        let transport = transport_of(transport)?;
        let target: SocketAddr = target.trim().parse().map_err(|_| {
            Error::Invalid(format!(
                "SIP target {target:?} is not an address (expected ip:port)"
            ))
        })?;
        if target.port() == 0 || target.ip().is_unspecified() {
            return Err(Error::Invalid(format!(
                "SIP target {target} is not reachable"
            )));
        }
        if transport == Transport::Udp {
            return self.send_udp(target, message, how).await;
        }
        let flow = match self.flows.find(transport, target) {
            Some(flow) => flow,
            None => self.dial(transport, target).await?,
        };
        self.queue(flow, transport, message)
    }

    async fn send_udp(&self, target: SocketAddr, message: &[u8], how: Sent) -> Result<(), Error> {
        let socket = {
            let udp = self.udp.lock().unwrap_or_else(PoisonError::into_inner);
            udp.iter()
                .find(|(local, _)| local.is_ipv4() == target.is_ipv4())
                .map(|(_, s)| s.clone())
        };
        let Some(socket) = socket else {
            send_failed("udp", "no_socket");
            return Err(Error::Unavailable(format!(
                "no SIP UDP listener for {} targets (sip.udp)",
                if target.is_ipv4() { "IPv4" } else { "IPv6" }
            )));
        };
        match socket.send_to(message, target).await {
            Ok(_) => {
                sent(Transport::Udp);
                // A request (not an ACK, which has no response) is resent until answered;
                // responses, most of what goes out, are not even parsed.
                let request = !message.starts_with(b"SIP/") && !message.starts_with(b"ACK ");
                let head = request.then(|| peek_branch(message)).flatten();
                if let Some(head) = head.filter(|h| h.method.is_some()) {
                    self.retransmits.start(
                        socket,
                        target,
                        Bytes::copy_from_slice(message),
                        &head.branch,
                        how,
                    );
                }
                Ok(())
            }
            Err(e) => {
                send_failed("udp", "io");
                Err(Error::Unavailable(format!("SIP UDP send to {target}: {e}")))
            }
        }
    }

    async fn dial(&self, transport: Transport, target: SocketAddr) -> Result<FlowId, Error> {
        let refuse = |why: &str| {
            send_failed(transport.as_str(), "no_flow");
            Err(Error::NotFound(format!(
                "no open SIP {transport} connection to {target}, and {why}"
            )))
        };
        let Some(dialer) = self.dialer.get().cloned() else {
            return refuse("this server opens no outbound SIP connections");
        };
        if !self.may_connect_back(target.ip(), Instant::now()) {
            return refuse(
                "the core connects only back to addresses that connected to it recently",
            );
        }
        dialer.dial(transport, target).await.inspect_err(|_| {
            send_failed(transport.as_str(), "connect");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_arguments_are_invalid_and_unknown_flows_not_found() {
        let s = SipSockets::new();
        assert!(matches!(s.send_flow(42, b"x"), Err(Error::NotFound(_))));
        for (t, target) in [
            ("sctp", "127.0.0.1:5060"),
            ("udp", "localhost"),
            ("udp", "127.0.0.1:0"),
            ("udp", "0.0.0.0:5060"),
        ] {
            let r = s.send_to(t, target, b"x").await;
            assert!(matches!(r, Err(Error::Invalid(_))), "{t} {target}: {r:?}");
        }
        let big = vec![b'x'; MAX_SEND_BYTES + 1];
        assert!(matches!(s.send_flow(1, &big), Err(Error::Invalid(_))));
        // No UDP socket registered, no flow, no dialer.
        assert!(matches!(
            s.send_to("udp", "127.0.0.1:5060", b"x").await,
            Err(Error::Unavailable(_))
        ));
        assert!(matches!(
            s.send_to("tcp", "127.0.0.1:5060", b"x").await,
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn connect_back_window_and_bounded_memory() {
        let s = SipSockets::new();
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!s.may_connect_back(ip, t0));
        s.saw(ip, t0);
        assert!(s.may_connect_back(ip, t0 + CONNECT_BACK_WINDOW / 2));
        assert!(!s.may_connect_back(ip, t0 + CONNECT_BACK_WINDOW));
        for i in 0..(MAX_REMEMBERED as u32 + 10) {
            s.saw(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(s.seen.lock().unwrap().len() <= MAX_REMEMBERED);
    }

    #[tokio::test]
    async fn udp_goes_out_of_the_socket_of_the_targets_family() {
        let s = SipSockets::new();
        let listener = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        s.add_udp(listener.clone());
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = peer.local_addr().unwrap().to_string();
        s.send_to("UDP", &to, b"hello").await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from, listener.local_addr().unwrap());
        assert!(matches!(
            s.send_to("udp", "[::1]:5060", b"x").await,
            Err(Error::Unavailable(_))
        ));
    }
}
