//! The HTTPS listener end to end, in-process, over real loopback sockets and real TLS.

mod support;

use std::time::Duration;

use support::*;
use tokio::net::TcpStream;

#[tokio::test]
async fn healthz_over_https_with_keep_alive() {
    let t = TestServer::start("").await;
    let mut c = t.https().await;
    for _ in 0..3 {
        let r = c.request("GET", "/healthz", &[], b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "ok\n");
    }
    let r = c.request("GET", "/nothing-here", &[], b"").await;
    assert_eq!(r.status, 404);
    // Admin listener: health, readiness, metrics.
    assert_eq!(admin(t.admin_addr(), "GET", "/healthz").await.status, 200);
    let ready = admin(t.admin_addr(), "GET", "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let m = admin(t.admin_addr(), "GET", "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.text().contains("http_requests_total"), "{}", m.text());
    t.shutdown().await;
}

#[tokio::test]
async fn plain_http_listener_serves_too() {
    let t = TestServer::start("").await;
    let mut c = Conn::new(TcpStream::connect(t.http_addr()).await.unwrap());
    assert_eq!(c.request("GET", "/healthz", &[], b"").await.status, 200);
    t.shutdown().await;
}

#[tokio::test]
async fn autodiscover_requires_basic_auth_and_answers_the_activesync_url() {
    let t = TestServer::start("[server]\ndata_dir = \"data\"\ndemo_user = false\nhostname = \"mail.example.com\"\npublic_url = \"https://mail.example.com\"").await;
    let mut c = t.https().await;
    let body = AUTODISCOVER_REQUEST.as_bytes();
    let path = "/Autodiscover/Autodiscover.xml";

    let r = c.request("POST", path, &[], body).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"Switchboard\", charset=\"UTF-8\"")
    );

    let r = c
        .request(
            "POST",
            path,
            &[("Authorization", "Basic !!!notbase64")],
            body,
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.text().contains("bad Authorization header"),
        "{}",
        r.text()
    );

    let r = c
        .request("POST", path, &[("Authorization", "Bearer abc")], body)
        .await;
    assert_eq!(r.status, 401);

    let r = c
        .request(
            "POST",
            path,
            &[("Authorization", &basic(USER, "wrong"))],
            body,
        )
        .await;
    assert_eq!(r.status, 401);

    let r = c
        .request(
            "POST",
            path,
            &[("Authorization", &basic(USER, PASSWORD))],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let xml = r.text();
    assert!(
        xml.contains("<Url>https://mail.example.com/Microsoft-Server-ActiveSync</Url>"),
        "{xml}"
    );
    assert!(
        xml.contains("<DisplayName>Alice Example</DisplayName>"),
        "{xml}"
    );

    // Another user's address is not described.
    let other = AUTODISCOVER_REQUEST.replace("alice@", "bob@");
    let r = c
        .request(
            "POST",
            path,
            &[("Authorization", &basic(USER, PASSWORD))],
            other.as_bytes(),
        )
        .await;
    assert!(
        r.text().contains("<ErrorCode>600</ErrorCode>"),
        "{}",
        r.text()
    );

    // Malformed XML gets the protocol's error, not a crash.
    let r = c
        .request(
            "POST",
            path,
            &[("Authorization", &basic(USER, PASSWORD))],
            b"<Autodiscover><Request>",
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<ErrorCode>600</ErrorCode>"));
    t.shutdown().await;
}

#[tokio::test]
async fn failed_logins_are_throttled_and_audited() {
    let t = TestServer::start("[auth.throttle]\nmax_failures_per_user = 3\nmax_failures_per_address = 100\nlockout_secs = 600").await;
    let mut c = t.https().await;
    let body = AUTODISCOVER_REQUEST.as_bytes();
    for _ in 0..3 {
        let r = c
            .request(
                "POST",
                "/autodiscover/autodiscover.xml",
                &[("Authorization", &basic(USER, "nope"))],
                body,
            )
            .await;
        assert_eq!(r.status, 401);
    }
    // Locked out now, even with the right password.
    let r = c
        .request(
            "POST",
            "/autodiscover/autodiscover.xml",
            &[("Authorization", &basic(USER, PASSWORD))],
            body,
        )
        .await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 600);
    // The failures reach the audit log (written asynchronously).
    let storage = &t.server().shared.storage;
    let mut found = 0;
    for _ in 0..100 {
        found = storage
            .recent_audit(50)
            .await
            .unwrap()
            .iter()
            .filter(|a| a.action.starts_with("auth.") && a.outcome != "ok")
            .count();
        if found >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        found >= 4,
        "expected 3 failures + 1 throttled in the audit log, found {found}"
    );
    t.shutdown().await;
}

#[tokio::test]
async fn disabled_users_cannot_log_in() {
    let t = TestServer::start("").await;
    t.server()
        .shared
        .storage
        .set_disabled(USER, true)
        .await
        .unwrap();
    let mut c = t.https().await;
    let r = c
        .request(
            "POST",
            "/autodiscover/autodiscover.xml",
            &[("Authorization", &basic(USER, PASSWORD))],
            AUTODISCOVER_REQUEST.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 401);
    t.shutdown().await;
}

#[tokio::test]
async fn malformed_and_oversize_requests_get_precise_errors() {
    let t = TestServer::start("[http]\nhttps = [\"127.0.0.1:0\"]\nplain = [\"127.0.0.1:0\"]\nmax_header_bytes = 8192\nmax_body_bytes = 1000").await;

    // Garbage request line.
    let mut c = t.https().await;
    c.send_raw(b"HELLO\x00WORLD\r\n\r\n").await;
    assert_eq!(c.read_response().await.map(|r| r.status), Some(400));

    // Head larger than max_header_bytes.
    let mut c = t.https().await;
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    c.send_raw(big.as_bytes()).await;
    assert_eq!(c.read_response().await.map(|r| r.status), Some(431));

    // Declared body over the limit: refused before it is read.
    let mut c = t.https().await;
    c.send_raw(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n").await;
    assert_eq!(c.read_response().await.map(|r| r.status), Some(413));

    // Chunked body that grows over the limit after authentication.
    let mut c = t.https().await;
    let mut req = format!(
        "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        basic(USER, PASSWORD)
    )
    .into_bytes();
    for _ in 0..3 {
        req.extend_from_slice(format!("400\r\n{}\r\n", "x".repeat(0x400)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    c.send_raw(&req).await;
    assert_eq!(c.read_response().await.map(|r| r.status), Some(413));

    // Server still fine.
    let mut c = t.https().await;
    assert_eq!(c.request("GET", "/healthz", &[], b"").await.status, 200);
    t.shutdown().await;
}

#[tokio::test]
async fn slowloris_connections_are_cut_and_others_still_served() {
    let t = TestServer::start(
        "[http]\nhttps = [\"127.0.0.1:0\"]\nplain = [\"127.0.0.1:0\"]\nheader_timeout_secs = 1",
    )
    .await;
    // A client that trickles a request head and never finishes it.
    let mut slow = t.https().await;
    slow.send_raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    // An idle keep-alive connection is cut the same way.
    let mut idle = t.https().await;
    assert_eq!(idle.request("GET", "/healthz", &[], b"").await.status, 200);
    // Meanwhile a normal client is served.
    let mut ok = t.https().await;
    assert_eq!(ok.request("GET", "/healthz", &[], b"").await.status, 200);
    assert!(
        slow.closed_within(Duration::from_secs(20)).await,
        "slow client still connected"
    );
    assert!(
        idle.closed_within(Duration::from_secs(20)).await,
        "idle keep-alive connection still open"
    );
    // A TLS client that never finishes its handshake is dropped too.
    let mut raw = TcpStream::connect(t.https_addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut raw, b"\x16\x03\x01")
        .await
        .unwrap();
    let mut c = Conn::new(raw);
    assert!(c.closed_within(Duration::from_secs(30)).await);
    t.shutdown().await;
}

#[tokio::test]
async fn connection_cap_refuses_extra_connections() {
    let t = TestServer::start(
        "[http]\nhttps = [\"127.0.0.1:0\"]\nplain = [\"127.0.0.1:0\"]\nmax_connections = 2",
    )
    .await;
    let mut a = Conn::new(TcpStream::connect(t.http_addr()).await.unwrap());
    let mut b = Conn::new(TcpStream::connect(t.http_addr()).await.unwrap());
    assert_eq!(a.request("GET", "/healthz", &[], b"").await.status, 200);
    assert_eq!(b.request("GET", "/healthz", &[], b"").await.status, 200);
    let mut c = Conn::new(TcpStream::connect(t.http_addr()).await.unwrap());
    c.send_raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(
        c.read_response().await.is_none(),
        "third connection should be closed unanswered"
    );
    drop(a);
    // The freed slot is usable again (the server notices the close asynchronously).
    let mut served = false;
    for _ in 0..50 {
        let mut d = Conn::new(TcpStream::connect(t.http_addr()).await.unwrap());
        d.send_raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        if d.read_response().await.is_some_and(|r| r.status == 200) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served);
    t.shutdown().await;
}

#[tokio::test]
async fn reload_toggles_routes_without_dropping_keep_alive_connections() {
    let t = TestServer::start("").await;
    let mut c = t.https().await;
    // GET on autodiscover: the route exists (auth first, so 401).
    assert_eq!(
        c.request("GET", "/autodiscover/autodiscover.xml", &[], b"")
            .await
            .status,
        401
    );

    t.write_config("[frontends.autodiscover]\nenabled = false");
    let r = admin(t.admin_addr(), "POST", "/admin/reload").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"generation\":2"), "{}", r.text());
    // Same connection, new snapshot: the route is gone.
    assert_eq!(
        c.request("GET", "/autodiscover/autodiscover.xml", &[], b"")
            .await
            .status,
        404
    );

    t.write_config("[frontends.autodiscover]\nenabled = true");
    assert_eq!(
        admin(t.admin_addr(), "POST", "/admin/reload").await.status,
        200
    );
    let r = c
        .request(
            "POST",
            "/autodiscover/autodiscover.xml",
            &[("Authorization", &basic(USER, PASSWORD))],
            AUTODISCOVER_REQUEST.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200);

    // An invalid config is refused; the old one keeps running on the same connection.
    t.write_config(
        "[http]\nhttps = [\"not an address\"]\n[frontends.autodiscover]\nenabled = false",
    );
    let r = admin(t.admin_addr(), "POST", "/admin/reload").await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("http.https[0]"), "{}", r.text());
    assert_eq!(
        c.request("GET", "/autodiscover/autodiscover.xml", &[], b"")
            .await
            .status,
        401
    );
    let status = admin(t.admin_addr(), "GET", "/admin/status").await;
    assert!(
        status.text().contains("\"generation\":3"),
        "{}",
        status.text()
    );

    // Changing a listen address is accepted but reported as needing a restart.
    t.write_config("[http]\nhttps = [\"127.0.0.1:0\"]\nplain = []");
    let r = admin(t.admin_addr(), "POST", "/admin/reload").await;
    assert!(r.text().contains("http.plain"), "{}", r.text());
    assert_eq!(c.request("GET", "/healthz", &[], b"").await.status, 200);
    t.shutdown().await;
}

#[tokio::test]
async fn admin_token_is_enforced_when_set() {
    let t = TestServer::start("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret\"").await;
    assert_eq!(
        admin(t.admin_addr(), "POST", "/admin/reload").await.status,
        401
    );
    let mut c = Conn::new(TcpStream::connect(t.admin_addr()).await.unwrap());
    let r = c
        .request(
            "POST",
            "/admin/reload",
            &[("Authorization", "Bearer s3cret")],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Health endpoints stay open for probes.
    assert_eq!(admin(t.admin_addr(), "GET", "/healthz").await.status, 200);
    t.shutdown().await;
}
