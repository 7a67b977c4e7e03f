//! The core's SIP listeners wired to a SIP frontend plugin (the `sip-echo` fixture, in both
//! builds), over real loopback sockets: request → response on UDP, TCP and TLS, keep-alives and
//! size limits still in the core, flow reuse through kv registrations, closed flows, connecting
//! back, the per-address rate limit, reload without dropping connections, and a `sipp` smoke
//! test when `sipp` is installed.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rustls::pki_types::ServerName;
use support::plugins::{install, manifest_of, Build};
use support::sip::{body, header, status};
use support::{required_tool, TestServer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

/// How long a test waits for any one answer before failing (generous: slow CI machines).
const WAIT: Duration = Duration::from_secs(20);

fn sip_section(rate: &str) -> String {
    format!(
        "[sip]\nudp = [\"127.0.0.1:0\"]\ntcp = [\"127.0.0.1:0\"]\ntls = [\"127.0.0.1:0\"]\n\
         max_message_bytes = 2000\nidle_timeout_secs = 3600\n{rate}\n"
    )
}

/// Config enabling the echo plugin (built as `build`) as `[frontends.sip]`.
fn config(root: &Path, build: Build, tag: &str, rate: &str) -> String {
    let manifest = install(
        &root.join("sip-echo"),
        "sip-echo",
        build,
        &manifest_of("core/tests/plugins/sip-echo/plugin.toml"),
    );
    format!(
        "[plugins.echo]\nmanifest = {manifest:?}\nsettings = {{ tag = {tag:?} }}\n\n\
         [frontends.sip]\nplugin = \"echo\"\n\n{}",
        sip_section(rate)
    )
}

const NO_LIMIT: &str = "rate_limit_per_sec = 0";

fn request(method: &str, uri: &str, transport: &str, extra: &[(&str, &str)], body: &str) -> String {
    let mut headers = String::new();
    for (n, v) in extra {
        headers.push_str(&format!("{n}: {v}\r\n"));
    }
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:5099;branch=z9hG4bK776asdhds\r\n\
         Max-Forwards: 70\r\n\
         To: <{uri}>\r\n\
         From: <sip:bob@example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@127.0.0.1\r\n\
         CSeq: 314159 {method}\r\n\
         {headers}\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn options(transport: &str) -> String {
    request("OPTIONS", "sip:alice@example.com", transport, &[], "")
}

fn register(user: &str, transport: &str) -> String {
    request(
        "REGISTER",
        &format!("sip:{user}@example.com"),
        transport,
        &[],
        "",
    )
}

/// A MESSAGE for the fixture's relay, forwarded to `to`.
fn relay(to: &str, transport: &str, extra: &[(&str, &str)], body: &str) -> String {
    let mut headers = vec![("X-Relay-To", to)];
    headers.extend_from_slice(extra);
    request(
        "MESSAGE",
        "sip:relay@example.com",
        transport,
        &headers,
        body,
    )
}

/// One SIP message read from a stream (header, then `Content-Length` bytes of body), or a
/// bare CRLF keep-alive pong.
struct SipReader<S> {
    io: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SipReader<S> {
    fn new(io: S) -> Self {
        SipReader {
            io,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, message: &str) {
        self.io.write_all(message.as_bytes()).await.unwrap();
        self.io.flush().await.unwrap();
    }

    /// The next message; `None` when the connection closed or nothing came within [`WAIT`].
    async fn next(&mut self) -> Option<String> {
        for _ in 0..10_000 {
            if self.buf.starts_with(b"\r\n") && !self.buf.starts_with(b"\r\n\r\n") {
                self.buf.drain(..2);
                return Some("\r\n".into());
            }
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    let msg: Vec<u8> = self.buf.drain(..end + 4 + len).collect();
                    return Some(String::from_utf8_lossy(&msg).into_owned());
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(WAIT, self.io.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
        None
    }

    /// Whether the peer closes the connection within [`WAIT`] (what arrives first is skipped).
    async fn closed(&mut self) -> bool {
        let mut sink = Vec::new();
        matches!(
            tokio::time::timeout(WAIT, self.io.read_to_end(&mut sink)).await,
            Ok(Ok(_)) | Ok(Err(_))
        )
    }
}

async fn tcp(addr: SocketAddr) -> SipReader<TcpStream> {
    SipReader::new(TcpStream::connect(addr).await.unwrap())
}

async fn udp_send_recv(sock: &UdpSocket, to: SocketAddr, msg: &str) -> Option<String> {
    sock.send_to(msg.as_bytes(), to).await.unwrap();
    udp_recv(sock).await
}

async fn udp_recv(sock: &UdpSocket) -> Option<String> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Waits (bounded) until the server holds `n` open SIP flows.
async fn flows_become(t: &TestServer, n: usize) {
    for _ in 0..400 {
        if t.server().sip_flows.len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} open SIP flows, have {}",
        t.server().sip_flows.len()
    );
}

async fn request_response_on_every_transport(build: Build) {
    let root = tempfile::tempdir().unwrap();
    let t = TestServer::start(&config(root.path(), build, "v1", NO_LIMIT)).await;
    let addrs = t.server().addrs.clone();

    // UDP: answered with send-to from the listener's socket.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let r = udp_send_recv(&sock, addrs.sip_udp[0], &options("UDP"))
        .await
        .unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(header(&r, "X-Echo-Tag"), Some("v1"), "{r}");
    assert_eq!(header(&r, "X-Echo-Transport"), Some("udp"), "{r}");
    assert_eq!(
        header(&r, "Via"),
        Some("SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK776asdhds")
    );
    assert_eq!(header(&r, "CSeq"), Some("314159 OPTIONS"));
    // Oversize on UDP: 513 from the core; the plugin never sees it.
    let big = request(
        "MESSAGE",
        "sip:alice@example.com",
        "UDP",
        &[],
        &"x".repeat(3000),
    );
    let r = udp_send_recv(&sock, addrs.sip_udp[0], &big).await.unwrap();
    assert!(r.starts_with("SIP/2.0 513 Message Too Large\r\n"), "{r}");
    assert_eq!(header(&r, "X-Echo-Tag"), None, "{r}");

    // TCP: answered with send-flow on the same connection.
    let mut c = tcp(addrs.sip_tcp[0]).await;
    c.send(&options("TCP")).await;
    let r = c.next().await.unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(header(&r, "X-Echo-Transport"), Some("tcp"), "{r}");
    // Keep-alive ping answered by the core, then the connection still carries messages.
    c.send("\r\n\r\n").await;
    assert_eq!(c.next().await.as_deref(), Some("\r\n"));
    c.send(&request(
        "INFO",
        "sip:alice@example.com",
        "TCP",
        &[],
        "ping",
    ))
    .await;
    let r = c.next().await.unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(header(&r, "CSeq"), Some("314159 INFO"));
    // Oversize on TCP: 513 from the core, then the connection is closed.
    c.send(&big.replace("UDP", "TCP")).await;
    let r = c.next().await.unwrap();
    assert!(r.starts_with("SIP/2.0 513"), "{r}");
    assert_eq!(header(&r, "X-Echo-Tag"), None, "{r}");
    assert!(c.closed().await, "connection left open after 513");

    // TLS.
    let stream = TcpStream::connect(addrs.sip_tls[0]).await.unwrap();
    let stream = t
        .connector()
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
        .unwrap();
    let mut c = SipReader::new(stream);
    c.send(&options("TLS")).await;
    let r = c.next().await.unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(header(&r, "X-Echo-Transport"), Some("tls"), "{r}");
    c.send("\r\n\r\n").await;
    assert_eq!(c.next().await.as_deref(), Some("\r\n"));

    // A plugin fault fails that request with 500 from the core; the connection goes on.
    c.send(&request("CRASH", "sip:alice@example.com", "TLS", &[], ""))
        .await;
    let r = c.next().await.unwrap();
    assert_eq!(status(&r), "SIP/2.0 500 Server Internal Error", "{r}");
    c.send(&options("TLS")).await;
    assert_eq!(status(&c.next().await.unwrap()), "SIP/2.0 200 OK");

    // Metrics: messages in and out per transport, plugin calls and faults.
    let m = support::admin(t.admin_addr(), "GET", "/metrics")
        .await
        .text();
    for line in [
        "sip_messages_total{transport=\"udp\"}",
        "sip_messages_sent_total{transport=\"udp\"}",
        "sip_messages_sent_total{transport=\"tcp\"}",
        "sip_messages_sent_total{transport=\"tls\"}",
        "sip_plugin_errors_total{transport=\"tls\",kind=\"",
        "switchboard_plugin_calls_total{plugin=\"echo\",op=\"handle\"}",
    ] {
        assert!(m.contains(line), "{line} missing from /metrics");
    }
    t.shutdown().await;
}

#[tokio::test]
async fn webassembly_echo_answers_on_udp_tcp_and_tls() {
    request_response_on_every_transport(Build::Wasm).await;
}

#[tokio::test]
async fn native_echo_answers_on_udp_tcp_and_tls() {
    request_response_on_every_transport(Build::Native).await;
}

async fn relays_reuse_registered_flows(build: Build) {
    let root = tempfile::tempdir().unwrap();
    let t = TestServer::start(&config(root.path(), build, "v1", NO_LIMIT)).await;
    let addrs = t.server().addrs.clone();

    // Bob registers over TCP and keeps his connection.
    let mut bob = tcp(addrs.sip_tcp[0]).await;
    bob.send(&register("bob", "TCP")).await;
    assert_eq!(status(&bob.next().await.unwrap()), "SIP/2.0 200 OK");
    // Dave registers over UDP.
    let dave = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let r = udp_send_recv(&dave, addrs.sip_udp[0], &register("dave", "UDP"))
        .await
        .unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");

    // Alice (UDP) messages bob: the forward arrives on bob's own connection (send-flow).
    let alice = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let r = udp_send_recv(
        &alice,
        addrs.sip_udp[0],
        &relay("bob", "UDP", &[], "hi bob"),
    )
    .await
    .unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    let fwd = bob.next().await.unwrap();
    assert!(
        fwd.starts_with("MESSAGE sip:bob@example.com SIP/2.0\r\n"),
        "{fwd}"
    );
    assert_eq!(body(&fwd), "hi bob");

    // By address (send-to tcp): the core finds bob's open connection to that address.
    let r = udp_send_recv(
        &alice,
        addrs.sip_udp[0],
        &relay("bob", "UDP", &[("X-Relay-Via", "target")], "again"),
    )
    .await
    .unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    let fwd = bob.next().await.unwrap();
    assert_eq!(body(&fwd), "again");
    assert_eq!(
        t.server().sip_flows.len(),
        1,
        "no new connection was opened"
    );

    // Bob answers the forwarded MESSAGE; the response goes to the plugin (which drops it)
    // and the connection stays usable.
    bob.send(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP switchboard.invalid;branch=z9hG4bK-relay\r\n\
         From: <sip:relay@example.com>;tag=relay\r\nTo: <sip:bob@example.com>;tag=b\r\n\
         Call-ID: relay-x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    bob.send(&options("TCP")).await;
    assert_eq!(status(&bob.next().await.unwrap()), "SIP/2.0 200 OK");

    // To dave over UDP (send-to udp from the listener socket).
    let r = udp_send_recv(
        &alice,
        addrs.sip_udp[0],
        &relay("dave", "UDP", &[], "hi dave"),
    )
    .await
    .unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    let fwd = udp_recv(&dave).await.unwrap();
    assert!(fwd.starts_with("MESSAGE sip:dave@example.com"), "{fwd}");
    assert_eq!(body(&fwd), "hi dave");

    // Carol registers over TCP, then hangs up: her flow is gone, the plugin is told so.
    let mut carol = tcp(addrs.sip_tcp[0]).await;
    carol.send(&register("carol", "TCP")).await;
    assert_eq!(status(&carol.next().await.unwrap()), "SIP/2.0 200 OK");
    flows_become(&t, 2).await;
    drop(carol);
    flows_become(&t, 1).await;
    let r = udp_send_recv(
        &alice,
        addrs.sip_udp[0],
        &relay("carol", "UDP", &[], "gone?"),
    )
    .await
    .unwrap();
    assert_eq!(status(&r), "SIP/2.0 480 Temporarily Unavailable", "{r}");
    let err = header(&r, "X-Error").unwrap_or("");
    assert!(err.contains("not found") && err.contains("closed"), "{r}");
    // By address, the core may connect back (127.0.0.1 connected recently) but nothing
    // listens on carol's old port any more: an error, not a hang.
    let r = udp_send_recv(
        &alice,
        addrs.sip_udp[0],
        &relay("carol", "UDP", &[("X-Relay-Via", "target")], "gone?"),
    )
    .await
    .unwrap();
    assert_eq!(status(&r), "SIP/2.0 480 Temporarily Unavailable", "{r}");
    t.shutdown().await;
}

#[tokio::test]
async fn webassembly_relay_reuses_registered_flows() {
    relays_reuse_registered_flows(Build::Wasm).await;
}

#[tokio::test]
async fn native_relay_reuses_registered_flows() {
    relays_reuse_registered_flows(Build::Native).await;
}

/// A TCP client bound to `local` (another loopback address) connected to `server`.
async fn tcp_from(local: &str, server: SocketAddr) -> SipReader<TcpStream> {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
    SipReader::new(sock.connect(server).await.unwrap())
}

#[tokio::test]
async fn the_core_connects_back_only_to_addresses_that_connected() {
    let root = tempfile::tempdir().unwrap();
    let t = TestServer::start(&config(root.path(), Build::Wasm, "v1", NO_LIMIT)).await;
    let addrs = t.server().addrs.clone();
    // Erin's UA listens on 127.0.0.2, which has never connected to the server.
    let erin = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let erin_addr = erin.local_addr().unwrap();
    let alice = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = format!("tcp {erin_addr}");
    let to_erin = |body: &str| relay("erin", "UDP", &[("X-Relay-Target", &target)], body);
    let r = udp_send_recv(&alice, addrs.sip_udp[0], &to_erin("hello?"))
        .await
        .unwrap();
    assert_eq!(status(&r), "SIP/2.0 480 Temporarily Unavailable", "{r}");
    assert!(
        header(&r, "X-Error")
            .unwrap_or("")
            .contains("connects only back"),
        "{r}"
    );
    // Once 127.0.0.2 has connected over TCP, the core may open a connection to it.
    let mut probe = tcp_from("127.0.0.2", addrs.sip_tcp[0]).await;
    probe.send(&options("TCP")).await;
    assert_eq!(status(&probe.next().await.unwrap()), "SIP/2.0 200 OK");
    let r = udp_send_recv(&alice, addrs.sip_udp[0], &to_erin("hello!"))
        .await
        .unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    let (conn, _) = tokio::time::timeout(WAIT, erin.accept())
        .await
        .unwrap()
        .unwrap();
    let mut conn = SipReader::new(conn);
    let fwd = conn.next().await.unwrap();
    assert_eq!(body(&fwd), "hello!");
    // The new connection is a flow like any other: keep-alives answered, reused by address.
    conn.send("\r\n\r\n").await;
    assert_eq!(conn.next().await.as_deref(), Some("\r\n"));
    let r = udp_send_recv(&alice, addrs.sip_udp[0], &to_erin("again"))
        .await
        .unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(body(&conn.next().await.unwrap()), "again");
    t.shutdown().await;
}

#[tokio::test]
async fn reload_swaps_the_plugin_and_keeps_connections() {
    let root = tempfile::tempdir().unwrap();
    let t = TestServer::start(&config(root.path(), Build::Wasm, "v1", NO_LIMIT)).await;
    // Built (and installed) before any connection is open: a build may wait on cargo's lock.
    let v2 = config(root.path(), Build::Wasm, "v2", NO_LIMIT);
    let addrs = t.server().addrs.clone();
    let mut bob = tcp(addrs.sip_tcp[0]).await;
    bob.send(&register("bob", "TCP")).await;
    let r = bob.next().await.unwrap();
    assert_eq!(header(&r, "X-Echo-Tag"), Some("v1"), "{r}");

    t.write_config(&v2);
    let report = t.server().shared.reload().await.unwrap();
    assert!(report.restart_required.is_empty(), "{report:?}");

    // Same connection, new plugin.
    bob.send(&options("TCP")).await;
    let r = bob.next().await.unwrap();
    assert_eq!(header(&r, "X-Echo-Tag"), Some("v2"), "{r}");
    // The flow registered before the reload still reaches bob.
    let alice = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let r = udp_send_recv(
        &alice,
        addrs.sip_udp[0],
        &relay("bob", "UDP", &[], "after reload"),
    )
    .await
    .unwrap();
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(header(&r, "X-Echo-Tag"), Some("v2"), "{r}");
    assert_eq!(body(&bob.next().await.unwrap()), "after reload");

    // Turning the frontend off falls back to the core's stand-in, still on the same flow.
    let off = v2.replace(
        "[frontends.sip]\nplugin = \"echo\"",
        "[frontends.sip]\nenabled = false\nplugin = \"echo\"",
    );
    t.write_config(&off);
    t.server().shared.reload().await.unwrap();
    bob.send(&request(
        "MESSAGE",
        "sip:alice@example.com",
        "TCP",
        &[],
        "x",
    ))
    .await;
    let r = bob.next().await.unwrap();
    assert_eq!(status(&r), "SIP/2.0 503 Service Unavailable", "{r}");
    t.shutdown().await;
}

#[tokio::test]
async fn per_address_rate_limit() {
    let root = tempfile::tempdir().unwrap();
    let rate = "rate_limit_per_sec = 1\nrate_limit_burst = 2";
    let t = TestServer::start(&config(root.path(), Build::Native, "v1", rate)).await;
    let addrs = t.server().addrs.clone();
    // Ten requests at once on TCP: the burst passes, the rest get 503 with Retry-After
    // (unless the machine is so slow that the bucket refills in between; 10 s would be needed
    // for all of them to pass).
    let mut c = tcp(addrs.sip_tcp[0]).await;
    let burst: String = (0..10).map(|_| options("TCP")).collect();
    c.send(&burst).await;
    let mut refused = 0;
    for _ in 0..10 {
        let r = c.next().await.unwrap();
        if status(&r) == "SIP/2.0 503 Service Unavailable" {
            assert_eq!(header(&r, "Retry-After"), Some("1"), "{r}");
            refused += 1;
        } else {
            assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
        }
    }
    assert!(refused > 0, "no request was refused");
    // UDP from the same address: over the limit is dropped, not answered.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..10 {
        sock.send_to(options("UDP").as_bytes(), addrs.sip_udp[0])
            .await
            .unwrap();
    }
    let mut answers = 0;
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await
    {
        let r = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert_eq!(status(&r), "SIP/2.0 200 OK", "UDP gets no 503s: {r}");
        answers += 1;
        assert!(answers <= 10);
    }
    assert!(answers < 10, "no datagram was dropped");
    t.shutdown().await;
}

/// `sipp`'s built-in UAC scenario (INVITE → 200, ACK, BYE → 200) against the echo plugin over
/// UDP. Needs `sipp` (Debian: sip-tester; `.ci/run` installs it).
#[tokio::test]
async fn sipp_uac_call_against_the_echo_plugin() {
    let sipp = required_tool("sipp", "sip-tester");
    let root = tempfile::tempdir().unwrap();
    let t = TestServer::start(&config(root.path(), Build::Wasm, "v1", NO_LIMIT)).await;
    let server = t.server().addrs.sip_udp[0];
    let out = tokio::process::Command::new(sipp)
        .current_dir(root.path())
        .args([
            "-sn",
            "uac",
            &server.to_string(),
            "-i",
            "127.0.0.1",
            "-m",
            "3",
            "-l",
            "1",
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sipp failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    t.shutdown().await;
}
