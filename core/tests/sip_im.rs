//! The SIP IM and presence frontend (`plugins/sip`, WebAssembly build) behind the core's real
//! SIP listeners on loopback UDP and TCP: REGISTER with Digest checked by the core's
//! credential chain (`sip-auth`), MESSAGE forked to both of a user's contacts, an offline
//! message delivered on the next REGISTER, SUBSCRIBE + NOTIFY on PUBLISH, an expired
//! registration, bad credentials, a malformed request; and the same again as `sipp`
//! scenarios (`plugins/sip/tests/sipp/`; `sipp` is Debian's `sip-tester`, required).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use support::plugins::{install, manifest_of, Build};
use support::sip::{body, header, status};
use support::{required_tool, TestServer};
use switchboard_auth::digest::{expected_response, ha1, DigestResponse};
use switchboard_auth::DigestAlgorithm;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long a test waits for any one message before failing (generous: slow CI machines).
const WAIT: Duration = Duration::from_secs(20);
const BOB_PASSWORD: &str = "bob's secret";
const CAROL_PASSWORD: &str = "carol's secret";

/// Config enabling the SIP plugin (WebAssembly) as `[frontends.sip]`.
fn config(root: &Path, settings: &str) -> String {
    let manifest = install(
        &root.join("sip"),
        "switchboard-sip",
        Build::Wasm,
        &manifest_of("plugins/sip/plugin.toml"),
    );
    format!(
        "[plugins.sip]\nmanifest = {manifest:?}\nsettings = {{ {settings} }}\n\n\
         [frontends.sip]\nplugin = \"sip\"\n\n\
         [sip]\nudp = [\"127.0.0.1:0\"]\ntcp = [\"127.0.0.1:0\"]\ntls = [\"127.0.0.1:0\"]\n\
         rate_limit_per_sec = 0\n"
    )
}

async fn server(root: &Path, settings: &str) -> TestServer {
    let t = TestServer::start(&config(root, settings)).await;
    let storage = &t.server().shared.storage;
    storage
        .add_user("bob@example.com", BOB_PASSWORD, None)
        .await
        .unwrap();
    storage
        .add_user("carol@example.com", CAROL_PASSWORD, None)
        .await
        .unwrap();
    t
}

/// A client endpoint: a UDP socket or a TCP connection, with its own Via/Contact address.
enum Client {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream, Vec<u8>),
}

impl Client {
    async fn udp(server: SocketAddr) -> Client {
        Client::Udp(UdpSocket::bind("127.0.0.1:0").await.unwrap(), server)
    }
    async fn tcp(server: SocketAddr) -> Client {
        Client::Tcp(TcpStream::connect(server).await.unwrap(), Vec::new())
    }
    fn transport(&self) -> &'static str {
        match self {
            Client::Udp(..) => "UDP",
            Client::Tcp(..) => "TCP",
        }
    }
    fn local(&self) -> SocketAddr {
        match self {
            Client::Udp(s, _) => s.local_addr().unwrap(),
            Client::Tcp(s, _) => s.local_addr().unwrap(),
        }
    }
    fn contact(&self, user: &str) -> String {
        match self {
            Client::Udp(..) => format!("<sip:{user}@{}>", self.local()),
            Client::Tcp(..) => format!("<sip:{user}@{};transport=tcp>", self.local()),
        }
    }
    async fn send(&mut self, msg: &str) {
        match self {
            Client::Udp(s, to) => {
                s.send_to(msg.as_bytes(), *to).await.unwrap();
            }
            Client::Tcp(s, _) => s.write_all(msg.as_bytes()).await.unwrap(),
        }
    }
    /// The next message, `None` after [`WAIT`].
    async fn next(&mut self) -> Option<String> {
        match self {
            Client::Udp(s, _) => {
                let mut buf = vec![0u8; 65536];
                let (n, _) = tokio::time::timeout(WAIT, s.recv_from(&mut buf))
                    .await
                    .ok()?
                    .ok()?;
                Some(String::from_utf8_lossy(&buf[..n]).into_owned())
            }
            Client::Tcp(s, buf) => {
                for _ in 0..10_000 {
                    while buf.starts_with(b"\r\n") {
                        buf.drain(..2);
                    }
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let len: usize = header(&head, "Content-Length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let msg: Vec<u8> = buf.drain(..end + 4 + len).collect();
                            return Some(String::from_utf8_lossy(&msg).into_owned());
                        }
                    }
                    let mut chunk = [0u8; 4096];
                    match tokio::time::timeout(WAIT, s.read(&mut chunk)).await {
                        Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return None,
                    }
                }
                None
            }
        }
    }
    /// The next message whose first line starts with `prefix` (others skipped, at most 20).
    async fn next_starting(&mut self, prefix: &str) -> String {
        for _ in 0..20 {
            let m = self
                .next()
                .await
                .unwrap_or_else(|| panic!("no {prefix} arrived"));
            if m.starts_with(prefix) {
                return m;
            }
        }
        panic!("no {prefix} among 20 messages")
    }
}

fn param<'a>(challenge: &'a str, name: &str) -> &'a str {
    challenge
        .split(&format!("{name}=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
}

/// The Digest answer (RFC 2617 without qop) to `challenge` for `method` on `uri`.
fn digest(challenge: &str, user: &str, password: &str, method: &str, uri: &str) -> String {
    let realm = param(challenge, "realm");
    let resp = DigestResponse {
        username: user.into(),
        realm: realm.into(),
        nonce: param(challenge, "nonce").into(),
        uri: uri.into(),
        response: String::new(),
        algorithm: DigestAlgorithm::Md5,
        cnonce: None,
        nc: None,
        qop: None,
        opaque: None,
    };
    let h = ha1(DigestAlgorithm::Md5, user, realm, password);
    let response = expected_response(&h, method, &resp);
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5",
        resp.nonce
    )
}

#[allow(clippy::too_many_arguments)]
fn request(
    c: &Client,
    method: &str,
    uri: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    extra: &[(&str, String)],
    body: &str,
) -> String {
    let mut headers = String::new();
    for (n, v) in extra {
        headers.push_str(&format!("{n}: {v}\r\n"));
    }
    let branch = format!("z9hG4bK{call_id}{cseq}{method}");
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/{} {};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{from}>;tag=t{cseq}\r\n\
         To: <sip:{to}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         {headers}\
         Content-Length: {}\r\n\r\n{body}",
        c.transport(),
        c.local(),
        body.len()
    )
}

/// REGISTER `user` from `c` with Digest (challenge, answer); returns the final answer.
async fn register(
    c: &mut Client,
    user: &str,
    password: &str,
    expires: u32,
    call_id: &str,
) -> String {
    let aor = format!("{user}@example.com");
    let contact = c.contact(user);
    let extra = vec![
        ("Contact", contact.clone()),
        ("Expires", expires.to_string()),
    ];
    c.send(&request(
        c,
        "REGISTER",
        "sip:example.com",
        &aor,
        &aor,
        call_id,
        1,
        &extra,
        "",
    ))
    .await;
    let challenge = c.next_starting("SIP/2.0 401").await;
    let www = header(&challenge, "WWW-Authenticate").unwrap().to_string();
    assert!(www.starts_with("Digest realm=\"example.com\""), "{www}");
    let mut extra = extra;
    extra.push((
        "Authorization",
        digest(&www, user, password, "REGISTER", "sip:example.com"),
    ));
    c.send(&request(
        c,
        "REGISTER",
        "sip:example.com",
        &aor,
        &aor,
        call_id,
        2,
        &extra,
        "",
    ))
    .await;
    c.next_starting("SIP/2.0").await
}

fn message(c: &Client, from: &str, to: &str, call_id: &str, text: &str) -> String {
    request(
        c,
        "MESSAGE",
        &format!("sip:{to}"),
        from,
        to,
        call_id,
        1,
        &[("Content-Type", "text/plain".into())],
        text,
    )
}

/// The 200 a client answers a MESSAGE or NOTIFY with.
fn ok_for(req: &str) -> String {
    let mut out = "SIP/2.0 200 OK\r\n".to_string();
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        let v = header(req, name).unwrap();
        let v = if name == "To" && !v.contains("tag=") {
            format!("{v};tag=ua")
        } else {
            v.to_string()
        };
        out.push_str(&format!("{name}: {v}\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

#[tokio::test]
async fn register_message_offline_and_presence_over_udp_and_tcp() {
    let root = tempfile::tempdir().unwrap();
    let t = server(root.path(), "").await;
    let addrs = t.server().addrs.clone();

    // Malformed: 400 with the parser's reason.
    let mut alice = Client::udp(addrs.sip_udp[0]).await;
    let broken = request(
        &alice,
        "OPTIONS",
        "sip:example.com",
        "alice@example.com",
        "example.com",
        "m1",
        1,
        &[],
        "",
    )
    .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    alice.send(&broken).await;
    let r = alice.next().await.unwrap();
    assert_eq!(
        status(&r),
        "SIP/2.0 400 CSeq method INVITE does not match request method OPTIONS"
    );

    // Bad credentials: challenged again.
    let r = register(&mut alice, "alice", "wrong password", 600, "reg-bad").await;
    assert_eq!(status(&r), "SIP/2.0 401 Unauthorized", "{r}");

    // alice over UDP; bob over UDP and over TCP (two contacts).
    let r = register(&mut alice, "alice", support::PASSWORD, 600, "reg-a").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(
        header(&r, "Contact"),
        Some(format!("{};expires=600", alice.contact("alice")).as_str())
    );
    let mut bob_udp = Client::udp(addrs.sip_udp[0]).await;
    let r = register(&mut bob_udp, "bob", BOB_PASSWORD, 600, "reg-b1").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    let mut bob_tcp = Client::tcp(addrs.sip_tcp[0]).await;
    let r = register(&mut bob_tcp, "bob", BOB_PASSWORD, 600, "reg-b2").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(r.matches("\r\nContact: ").count(), 2, "{r}");

    // alice → bob: both forks receive it, alice gets 202.
    alice
        .send(&message(
            &alice,
            "alice@example.com",
            "bob@example.com",
            "im-1",
            "hello bob",
        ))
        .await;
    let r = alice.next_starting("SIP/2.0").await;
    assert_eq!(status(&r), "SIP/2.0 202 Accepted", "{r}");
    for bob in [&mut bob_udp, &mut bob_tcp] {
        let m = bob.next_starting("MESSAGE ").await;
        assert_eq!(body(&m), "hello bob");
        assert_eq!(header(&m, "From"), Some("<sip:alice@example.com>;tag=t1"));
        let ok = ok_for(&m);
        bob.send(&ok).await;
    }

    // carol registers and leaves; a message for her waits and arrives on her next REGISTER.
    let mut carol = Client::tcp(addrs.sip_tcp[0]).await;
    let r = register(&mut carol, "carol", CAROL_PASSWORD, 600, "reg-c1").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    let r = register(&mut carol, "carol", CAROL_PASSWORD, 0, "reg-c2").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(header(&r, "Contact"), None, "{r}");
    alice
        .send(&message(
            &alice,
            "alice@example.com",
            "carol@example.com",
            "im-2",
            "while you were out",
        ))
        .await;
    let r = alice.next_starting("SIP/2.0").await;
    assert_eq!(status(&r), "SIP/2.0 202 Accepted", "{r}");
    let mut carol = Client::udp(addrs.sip_udp[0]).await;
    let r = register(&mut carol, "carol", CAROL_PASSWORD, 600, "reg-c3").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    let m = carol.next_starting("MESSAGE ").await;
    assert_eq!(body(&m), "while you were out");
    carol.send(&ok_for(&m)).await;

    // bob (TCP) watches alice: 200 with a tag, then NOTIFY (closed); alice publishes open.
    let sub = request(
        &bob_tcp,
        "SUBSCRIBE",
        "sip:alice@example.com",
        "bob@example.com",
        "alice@example.com",
        "sub-1",
        1,
        &[
            ("Event", "presence".into()),
            ("Contact", bob_tcp.contact("bob")),
            ("Expires", "600".into()),
        ],
        "",
    );
    bob_tcp.send(&sub).await;
    let r = bob_tcp.next_starting("SIP/2.0").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert!(header(&r, "To").unwrap().contains(";tag="), "{r}");
    let n = bob_tcp.next_starting("NOTIFY ").await;
    assert_eq!(header(&n, "Subscription-State"), Some("active;expires=600"));
    assert!(body(&n).contains("<basic>closed</basic>"), "{n}");
    bob_tcp.send(&ok_for(&n)).await;
    let pidf = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"pres:alice@example.com\"><tuple id=\"a1\"><status><basic>open</basic></status><note>at my desk</note></tuple></presence>";
    let publish = request(
        &alice,
        "PUBLISH",
        "sip:alice@example.com",
        "alice@example.com",
        "alice@example.com",
        "pub-1",
        1,
        &[
            ("Event", "presence".into()),
            ("Expires", "600".into()),
            ("Content-Type", "application/pidf+xml".into()),
        ],
        pidf,
    );
    alice.send(&publish).await;
    let r = alice.next_starting("SIP/2.0").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert!(header(&r, "SIP-ETag").is_some(), "{r}");
    let n = bob_tcp.next_starting("NOTIFY ").await;
    assert!(body(&n).contains("<basic>open</basic>"), "{n}");
    assert!(body(&n).contains("at my desk"), "{n}");
    assert_eq!(header(&n, "CSeq"), Some("2 NOTIFY"));
    t.shutdown().await;
}

#[tokio::test]
async fn expired_registrations_receive_nothing() {
    let root = tempfile::tempdir().unwrap();
    let t = server(root.path(), "min_expires = 1").await;
    let addrs = t.server().addrs.clone();
    let mut alice = Client::udp(addrs.sip_udp[0]).await;
    let r = register(&mut alice, "alice", support::PASSWORD, 600, "reg-a").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    let mut bob = Client::udp(addrs.sip_udp[0]).await;
    let r = register(&mut bob, "bob", BOB_PASSWORD, 1, "reg-b").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(
        header(&r, "Contact"),
        Some(format!("{};expires=1", bob.contact("bob")).as_str())
    );
    // Let the one-second registration lapse (whole seconds: the plugin counts in seconds).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    alice
        .send(&message(
            &alice,
            "alice@example.com",
            "bob@example.com",
            "im-x",
            "too late",
        ))
        .await;
    let r = alice.next_starting("SIP/2.0").await;
    assert_eq!(status(&r), "SIP/2.0 202 Accepted", "{r}");
    // Queued, not sent to the lapsed contact: bob's socket gets it only when he registers.
    let r = register(&mut bob, "bob", BOB_PASSWORD, 600, "reg-b2").await;
    assert_eq!(status(&r), "SIP/2.0 200 OK", "{r}");
    assert_eq!(
        header(&r, "Contact"),
        Some(format!("{};expires=600", bob.contact("bob")).as_str())
    );
    let m = bob.next_starting("MESSAGE ").await;
    assert_eq!(body(&m), "too late");
    t.shutdown().await;
}

/// Runs one scenario of `plugins/sip/tests/sipp/` as alice against `server`; panics with
/// sipp's output when it fails (every `recv` and `ereg check_it` is an assertion).
async fn sipp(root: &Path, scenario: &str, transport: &str, server: SocketAddr) {
    sipp_as(
        root,
        scenario,
        None,
        transport,
        server,
        "alice",
        support::PASSWORD,
    )
    .await
}

/// [`sipp`] as `user` (Digest with `password`) in the working directory `root`, with
/// `ooc` as the out-of-call scenario (requests on other Call-IDs: forwarded MESSAGEs).
async fn sipp_as(
    root: &Path,
    scenario: &str,
    ooc: Option<&str>,
    transport: &str,
    server: SocketAddr,
    user: &str,
    password: &str,
) {
    let sipp = required_tool("sipp", "sip-tester");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sip/tests/sipp");
    let file = dir.join(scenario);
    let ooc = ooc.map(|o| ["-oocsf".into(), dir.join(o).into_os_string()]);
    let out = tokio::process::Command::new(sipp)
        .current_dir(root)
        .args(["-sf"])
        .arg(&file)
        .args(ooc.into_iter().flatten())
        .args([
            "-t",
            transport,
            "-s",
            user,
            "-au",
            user,
            "-ap",
            password,
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-m",
            "1",
            "-l",
            "1",
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            &server.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let errors = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "sipp {scenario} over {transport} failed ({:?}):\n{}\n{}\n{errors}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn sipp_scenarios() {
    let root = tempfile::tempdir().unwrap();
    let t = server(root.path(), "").await;
    let addrs = t.server().addrs.clone();
    let work = tempfile::tempdir().unwrap();
    sipp(work.path(), "register_message.xml", "u1", addrs.sip_udp[0]).await;
    sipp(work.path(), "register_message.xml", "t1", addrs.sip_tcp[0]).await;
    sipp(work.path(), "presence.xml", "u1", addrs.sip_udp[0]).await;
    sipp(work.path(), "malformed.xml", "u1", addrs.sip_udp[0]).await;
    sipp(work.path(), "malformed.xml", "t1", addrs.sip_tcp[0]).await;
    let (udp, tcp) = (addrs.sip_udp[0], addrs.sip_tcp[0]);
    // carol, not alice: the failed login must not throttle the users of the scenarios below.
    sipp_as(
        work.path(),
        "bad_credentials.xml",
        None,
        "u1",
        udp,
        "carol",
        "wrong",
    )
    .await;
    // Live: bob (TCP) is registered before alice (UDP) sends, so the MESSAGE is forwarded.
    let (bob, alice) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    tokio::join!(
        sipp_as(
            bob.path(),
            "receiver.xml",
            RECEIVED,
            "t1",
            tcp,
            "bob",
            BOB_PASSWORD
        ),
        async {
            registered(bob.path()).await;
            sipp(alice.path(), "message_sender.xml", "u1", udp).await
        }
    );
    assert!(
        bob.path().join("delivered").exists(),
        "bob never got the MESSAGE"
    );
    // Offline: bob's sipp and its TCP connection are gone, so the MESSAGE is queued (202) and
    // delivered, with the Date it was queued, after bob's next REGISTER.
    sipp(alice.path(), "message_sender.xml", "u1", udp).await;
    let bob = tempfile::tempdir().unwrap();
    sipp_as(
        bob.path(),
        "receiver.xml",
        QUEUED,
        "u1",
        udp,
        "bob",
        BOB_PASSWORD,
    )
    .await;
    assert!(
        bob.path().join("delivered").exists(),
        "queued MESSAGE not delivered"
    );
    t.shutdown().await;
}

/// bob's out-of-call scenario: checks a forwarded MESSAGE and touches `delivered` (the file
/// is the assertion: sipp's exit status ignores failed out-of-call scenarios).
const RECEIVED: Option<&str> = Some("received_message.xml");
/// The same for a MESSAGE from the offline queue (which must also carry a `Date`).
const QUEUED: Option<&str> = Some("received_queued.xml");

/// Waits (bounded) for the `registered` file a receiver scenario touches after its 200.
async fn registered(dir: &Path) {
    let file = dir.join("registered");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !file.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{file:?} never appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sipp_expired_registration() {
    let root = tempfile::tempdir().unwrap();
    let t = server(root.path(), "min_expires = 1").await;
    let udp = t.server().addrs.sip_udp[0];
    let (bob, alice) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let delivered = bob.path().join("delivered");
    tokio::join!(
        sipp_as(
            bob.path(),
            "expired_registration.xml",
            QUEUED,
            "u1",
            udp,
            "bob",
            BOB_PASSWORD
        ),
        async {
            registered(bob.path()).await;
            // Past bob's one-second registration (whole seconds: the plugin counts in seconds).
            tokio::time::sleep(Duration::from_millis(2100)).await;
            sipp(alice.path(), "message_sender.xml", "u1", udp).await;
            // Forks go out right after the 202; give a wrong one time to land. bob's sipp
            // re-registers only 8 s after its first 200, well after this.
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(!delivered.exists(), "the lapsed contact got the MESSAGE");
        }
    );
    assert!(
        delivered.exists(),
        "queued MESSAGE not delivered on re-REGISTER"
    );
    t.shutdown().await;
}

#[tokio::test]
async fn a_forked_message_is_resent_over_udp_until_answered() {
    // UDP loses datagrams: the core resends a request the plugin sent (RFC 3261 timer E:
    // 500 ms, then doubling) until the contact answers, and stops at the answer.
    let root = tempfile::tempdir().unwrap();
    let t = server(root.path(), "").await;
    let addrs = t.server().addrs.clone();
    let mut bob = Client::udp(addrs.sip_udp[0]).await;
    let answer = register(&mut bob, "bob", BOB_PASSWORD, 600, "reg-bob-rtx").await;
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    let mut carol = Client::udp(addrs.sip_udp[0]).await;
    let answer = register(&mut carol, "carol", CAROL_PASSWORD, 600, "reg-carol-rtx").await;
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");

    carol
        .send(&message(
            &carol,
            "carol@example.com",
            "bob@example.com",
            "rtx-1",
            "are you there?",
        ))
        .await;
    assert!(carol.next_starting("SIP/2.0 202").await.contains("rtx-1"));
    // Bob's client "loses" the first copy (does not answer) and gets the same request again.
    let first = bob.next_starting("MESSAGE").await;
    let again = bob.next_starting("MESSAGE").await;
    assert_eq!(first, again, "the retransmission is the same request");
    assert!(t.server().shared.plugin_runtime.sip.awaiting_response() >= 1);
    let snap = t.server().shared.current();
    let plugin = snap.plugins.get("sip").unwrap();
    let calls_before_the_200 = plugin.status().calls;
    bob.send(&ok_for(&again)).await;
    // Answered: no further copies (the next one would have come 1 s after the second).
    assert!(
        bob.next().await.is_none(),
        "resent after the 200 (or something else arrived)"
    );
    assert_eq!(t.server().shared.plugin_runtime.sip.awaiting_response(), 0);
    // The fork went with `relay-to`: its 200 was consumed by the core, never handed to the
    // plugin (the 20 s quiet wait above leaves no call in flight).
    assert_eq!(plugin.status().calls, calls_before_the_200);

    // A failure answer to a relayed fork still reaches the plugin.
    carol
        .send(&message(
            &carol,
            "carol@example.com",
            "bob@example.com",
            "rtx-2",
            "still there?",
        ))
        .await;
    assert!(carol.next_starting("SIP/2.0 202").await.contains("rtx-2"));
    let fork = bob.next_starting("MESSAGE").await;
    let before = plugin.status().calls;
    assert_eq!(
        before,
        calls_before_the_200 + 1,
        "only carol's MESSAGE since"
    );
    bob.send(&ok_for(&fork).replace("SIP/2.0 200 OK", "SIP/2.0 480 Temporarily Unavailable"))
        .await;
    let mut calls = before;
    for _ in 0..200 {
        calls = plugin.status().calls;
        if calls > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(calls, before + 1, "the 480 was not handed to the plugin");
    assert_eq!(t.server().shared.plugin_runtime.sip.awaiting_response(), 0);
}
