//! SIP endpoints end to end over real loopback sockets: UDP, TCP and TLS, with the built-in
//! handler (no SIP frontend enabled yet): OPTIONS answered, other requests 503, limits enforced.

mod support;

use std::time::Duration;

use rustls::pki_types::ServerName;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn request(method: &str, body: &str) -> String {
    format!(
        "{method} sip:alice@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK776asdhds\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:alice@example.com>\r\n\
         From: <sip:bob@example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@127.0.0.1\r\n\
         CSeq: 314159 {method}\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

const SIP: &str = "[sip]\nudp = [\"127.0.0.1:0\"]\ntcp = [\"127.0.0.1:0\"]\ntls = [\"127.0.0.1:0\"]\nmax_message_bytes = 2000\nidle_timeout_secs = 1";

async fn udp_roundtrip(sock: &UdpSocket, to: std::net::SocketAddr, msg: &[u8]) -> Option<String> {
    sock.send_to(msg, to).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test]
async fn udp_options_message_and_oversize() {
    let t = TestServer::start(SIP).await;
    let server = t.server().addrs.sip_udp[0];
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    let r = udp_roundtrip(&sock, server, request("OPTIONS", "").as_bytes())
        .await
        .unwrap();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert!(
        r.contains("Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK776asdhds\r\n"),
        "{r}"
    );
    assert!(
        r.contains("Call-ID: a84b4c76e66710@127.0.0.1\r\n")
            && r.contains("CSeq: 314159 OPTIONS\r\n"),
        "{r}"
    );

    let r = udp_roundtrip(&sock, server, request("MESSAGE", "hello").as_bytes())
        .await
        .unwrap();
    assert!(r.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{r}");

    let big = request("MESSAGE", &"x".repeat(3000));
    let r = udp_roundtrip(&sock, server, big.as_bytes()).await.unwrap();
    assert!(r.starts_with("SIP/2.0 513 Message Too Large\r\n"), "{r}");
    assert!(r.contains("CSeq: 314159 MESSAGE\r\n"), "{r}");

    // Garbage gets no answer, and the socket keeps working.
    sock.send_to(b"\x00\x01garbage", server).await.unwrap();
    let r = udp_roundtrip(&sock, server, request("OPTIONS", "").as_bytes())
        .await
        .unwrap();
    assert!(r.starts_with("SIP/2.0 200 OK"), "{r}");
    t.shutdown().await;
}

async fn read_some(s: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut buf = vec![0u8; 8192];
    match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn tcp_framing_keepalive_and_limits() {
    let t = TestServer::start(SIP).await;
    let addr = t.server().addrs.sip_tcp[0];

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request("OPTIONS", "").as_bytes())
        .await
        .unwrap();
    assert!(read_some(&mut s).await.starts_with("SIP/2.0 200 OK\r\n"));
    // RFC 5626 keep-alive: CRLFCRLF ping, CRLF pong.
    s.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_some(&mut s).await, "\r\n");

    // An oversize frame: 513, then the connection is closed (framing cannot resync).
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request("MESSAGE", &"x".repeat(3000)).as_bytes())
        .await
        .unwrap();
    assert!(read_some(&mut s).await.starts_with("SIP/2.0 513"));
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
        "connection left open"
    );

    // No Content-Length on a stream: 400 and close.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let no_len = request("MESSAGE", "").replace("Content-Length: 0\r\n", "");
    s.write_all(no_len.as_bytes()).await.unwrap();
    assert!(read_some(&mut s).await.starts_with("SIP/2.0 400"));

    // A silent connection is closed after sip.idle_timeout_secs.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "idle SIP connection not closed");
    t.shutdown().await;
}

#[tokio::test]
async fn tls_options() {
    let t = TestServer::start(SIP).await;
    let addr = t.server().addrs.sip_tls[0];
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut s = t
        .connector()
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    s.write_all(request("OPTIONS", "").as_bytes())
        .await
        .unwrap();
    let r = read_some(&mut s).await;
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    t.shutdown().await;
}
