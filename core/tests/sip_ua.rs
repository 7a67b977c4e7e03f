//! A real SIP user agent against the SIP IM frontend (`plugins/sip`, WebAssembly build) behind
//! the core's real listeners: two `baresip` processes (Debian package `baresip-core`), run
//! headless from a temp config directory each, register with Digest checked by the core's
//! credential chain (a third one with a wrong password is refused), and exchange MESSAGEs both
//! ways with the exact bodies — alice over UDP, bob over TCP — including a message sent while
//! bob was offline, delivered when his baresip registers.
//!
//! baresip is driven through its `ctrl_tcp` module (netstring JSON commands: `message` sends
//! to the current contact); what it receives is read from its stdout, where the `stdio` UI
//! prints each incoming MESSAGE as `<from-uri>: "<body>"` and `-s` traces every SIP message.
//! CI installs the package (`.ci/run`); without it this test fails and names the package.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::plugins::{install, manifest_of, Build};
use support::{required_tool, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long any one wait lasts before the test fails (generous: slow CI machines).
const WAIT: Duration = Duration::from_secs(20);
/// baresip takes account parameters up to the next `;` or blank, unquoted: these passwords
/// avoid both (the shared test passwords contain blanks).
const ALICE_PASSWORD: &str = "Alice.UA-s3cret!";
const BOB_PASSWORD: &str = "Bob.UA-s3cret!";

fn baresip_binary() -> PathBuf {
    required_tool("baresip", "baresip-core")
}

/// The server with the SIP plugin (WebAssembly) as `[frontends.sip]`, alice and bob with
/// passwords baresip can carry.
async fn server(root: &Path) -> TestServer {
    let manifest = install(
        &root.join("sip"),
        "switchboard-sip",
        Build::Wasm,
        &manifest_of("plugins/sip/plugin.toml"),
    );
    let t = TestServer::start(&format!(
        "[plugins.sip]\nmanifest = {manifest:?}\nsettings = {{ }}\n\n\
         [frontends.sip]\nplugin = \"sip\"\n\n\
         [sip]\nudp = [\"127.0.0.1:0\"]\ntcp = [\"127.0.0.1:0\"]\ntls = [\"127.0.0.1:0\"]\n\
         rate_limit_per_sec = 0\n"
    ))
    .await;
    let storage = &t.server().shared.storage;
    storage
        .set_password("alice@example.com", ALICE_PASSWORD)
        .await
        .unwrap();
    storage
        .add_user("bob@example.com", BOB_PASSWORD, None)
        .await
        .unwrap();
    storage
        .add_user("carol@example.com", "carol's own password", None)
        .await
        .unwrap();
    t
}

/// A loopback port free for both UDP and TCP right now (baresip's `sip_listen` takes both;
/// a port taken in between makes baresip exit, and [`Baresip::start`] tries another).
fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// One running baresip: its output lines as they come, and its `ctrl_tcp` connection.
struct Baresip {
    name: &'static str,
    user: String,
    child: Child,
    /// Held open: the `stdio` UI reads its terminal; EOF there is not what a user does.
    _stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    /// Everything read so far, shown when a wait fails.
    seen: Vec<String>,
    ctrl: TcpStream,
    ctrl_buf: Vec<u8>,
    token: u32,
    _dir: tempfile::TempDir,
}

fn forward_lines(from: impl AsyncRead + Unpin + Send + 'static, to: mpsc::UnboundedSender<String>) {
    tokio::spawn(async move {
        let mut from = BufReader::new(from);
        let mut line = Vec::new();
        loop {
            line.clear();
            match from.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    // The stdio UI starts its lines with `\r` (it redraws a prompt).
                    let text = text.trim_end_matches(['\r', '\n']).trim_start_matches('\r');
                    if to.send(text.to_string()).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

impl Baresip {
    /// Start baresip as `user`@example.com over `transport` to `server`, with `peer` as its
    /// one (current) contact, and wait until it is ready and its control port answers.
    async fn start(
        name: &'static str,
        user: &str,
        password: &str,
        transport: Transport,
        server: SocketAddr,
        peer: &str,
    ) -> Baresip {
        let binary = baresip_binary();
        let mut failures = Vec::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let sip_port = free_port();
            let ctrl_port = free_port();
            // No audio or video modules: messaging only. `dns_server` points at loopback so
            // nothing leaves the machine (the outbound proxy is an address; nothing is looked
            // up).
            let config = format!(
                "poll_method epoll\n\
                 sip_listen 127.0.0.1:{sip_port}\n\
                 dns_server 127.0.0.1:53\n\
                 module_path /usr/lib/baresip/modules\n\
                 module stdio.so\n\
                 module_tmp account.so\n\
                 module_app contact.so\n\
                 module_app menu.so\n\
                 module_app ctrl_tcp.so\n\
                 ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n"
            );
            let t = transport.name();
            let account = format!(
                "<sip:{user}@example.com;transport={t}>;auth_pass={password};\
                 outbound=\"sip:{server};transport={t}\";regint=600\n"
            );
            std::fs::write(dir.path().join("config"), config).unwrap();
            std::fs::write(dir.path().join("accounts"), account).unwrap();
            std::fs::write(dir.path().join("contacts"), format!("<{peer}>\n")).unwrap();
            let mut child = Command::new(&binary)
                .arg("-f")
                .arg(dir.path())
                .arg("-s")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let (tx, lines) = mpsc::unbounded_channel();
            forward_lines(child.stdout.take().unwrap(), tx.clone());
            forward_lines(child.stderr.take().unwrap(), tx);
            let stdin = child.stdin.take().unwrap();
            let mut seen = Vec::new();
            let mut lines = lines;
            let ready = wait_line(&mut lines, &mut seen, |l| l == "baresip is ready.").await;
            let ctrl = match ready {
                Some(_) => connect_ctrl(ctrl_port).await,
                None => None,
            };
            let Some(ctrl) = ctrl else {
                // Most likely a port taken between free_port() and baresip's bind.
                let _ = child.kill().await;
                failures.push(seen.join("\n"));
                continue;
            };
            return Baresip {
                name,
                user: user.to_string(),
                child,
                _stdin: stdin,
                lines,
                seen,
                ctrl,
                ctrl_buf: Vec::new(),
                token: 0,
                _dir: dir,
            };
        }
        panic!(
            "baresip ({name}) did not start in 5 attempts:\n{}",
            failures.join("\n----\n")
        )
    }

    /// The next output line matching `pred`, failing the test with the output after [`WAIT`].
    async fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        match wait_line(&mut self.lines, &mut self.seen, pred).await {
            Some(line) => line,
            None => panic!(
                "baresip ({}): no {what} within {WAIT:?}; its output:\n{}",
                self.name,
                tail(&self.seen)
            ),
        }
    }

    /// Run a `ctrl_tcp` command and return its answer's `data` (failing unless `ok`).
    async fn command(&mut self, command: &str, params: &str) -> String {
        self.token += 1;
        let token = format!("t{}", self.token);
        let json =
            serde_json::json!({"command": command, "params": params, "token": token}).to_string();
        let frame = format!("{}:{json},", json.len());
        self.ctrl.write_all(frame.as_bytes()).await.unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            // Netstrings: `<len>:<json>,`; events may come before our answer.
            if let Some(colon) = self.ctrl_buf.iter().position(|&b| b == b':') {
                let len: usize = std::str::from_utf8(&self.ctrl_buf[..colon])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| {
                        panic!(
                            "ctrl_tcp: bad netstring {:?}",
                            String::from_utf8_lossy(&self.ctrl_buf)
                        )
                    });
                if self.ctrl_buf.len() > colon + len + 1 {
                    let frame: Vec<u8> = self.ctrl_buf.drain(..colon + len + 2).collect();
                    let v: serde_json::Value =
                        serde_json::from_slice(&frame[colon + 1..colon + 1 + len]).unwrap();
                    if v["response"] == true && v["token"] == token.as_str() {
                        assert_eq!(v["ok"], true, "baresip ({}) {command}: {v}", self.name);
                        return v["data"].as_str().unwrap_or("").to_string();
                    }
                    continue;
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.ctrl.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.ctrl_buf.extend_from_slice(&chunk[..n]),
                other => panic!(
                    "baresip ({}): no answer to {command} ({other:?}); its output:\n{}",
                    self.name,
                    tail(&self.seen)
                ),
            }
        }
    }

    /// Wait for baresip's own report of a successful registration over `transport`.
    async fn registered(&mut self, transport: &str) {
        let line = format!(
            "{}@example.com: {{0/{transport}/v4}} 200 OK (Switchboard) [1 binding]",
            self.user
        );
        self.expect("registration", |l| l == line).await;
    }

    /// Send `text` to the current contact and wait for the server's `202 Accepted`.
    async fn message(&mut self, text: &str) {
        self.command("message", text).await;
        self.expect("202 Accepted for the MESSAGE", |l| {
            l == "SIP/2.0 202 Accepted"
        })
        .await;
    }

    /// `quit`: baresip un-registers, then exits (no answer comes: the process is gone).
    async fn quit(mut self) {
        let json = serde_json::json!({"command": "quit", "token": "quit"}).to_string();
        let frame = format!("{}:{json},", json.len());
        self.ctrl.write_all(frame.as_bytes()).await.unwrap();
        match tokio::time::timeout(WAIT, self.child.wait()).await {
            Ok(Ok(status)) => {
                // Drain what it said on the way out, for the assertion below.
                while let Ok(Some(line)) =
                    tokio::time::timeout(Duration::from_secs(1), self.lines.recv()).await
                {
                    self.seen.push(line);
                }
                assert!(status.success(), "baresip ({}) quit: {status}", self.name);
            }
            other => panic!(
                "baresip ({}) did not quit ({other:?}); its output:\n{}",
                self.name,
                tail(&self.seen)
            ),
        }
        // The un-REGISTER (its contact with `expires=0`) was answered 200.
        let unregister = self
            .seen
            .iter()
            .rposition(|l| l.starts_with("Contact: ") && l.ends_with(";expires=0"));
        let unregistered =
            unregister.is_some_and(|at| self.seen[at..].iter().any(|l| l == "SIP/2.0 200 OK"));
        assert!(
            unregistered,
            "baresip ({}) did not un-register; its output:\n{}",
            self.name,
            tail(&self.seen)
        );
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn wait_line(
    lines: &mut mpsc::UnboundedReceiver<String>,
    seen: &mut Vec<String>,
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let line = tokio::time::timeout_at(deadline, lines.recv())
            .await
            .ok()??;
        seen.push(line.clone());
        if pred(&line) {
            return Some(line);
        }
    }
}

async fn connect_ctrl(port: u16) -> Option<TcpStream> {
    // ctrl_tcp listens once baresip is ready; a few tries cover a slow start.
    for _ in 0..50 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(150)..].join("\n")
}

/// The header lines of the first request in `lines` (a SIP trace) whose request line starts
/// with `start`.
fn request<'a>(lines: &'a [String], start: &str) -> Vec<&'a str> {
    let Some(at) = lines.iter().position(|l| l.starts_with(start)) else {
        panic!("no {start} in the trace:\n{}", tail(lines))
    };
    lines[at..]
        .iter()
        .take_while(|l| !l.is_empty())
        .map(String::as_str)
        .collect()
}

/// The line baresip's UI prints for a received MESSAGE.
fn received(from: &str, body: &str) -> String {
    format!("{from}: \"{body}\"")
}

#[tokio::test]
async fn baresip_registers_and_exchanges_messages() {
    baresip_binary();
    let root = tempfile::tempdir().unwrap();
    let t = server(root.path()).await;
    let addrs = t.server().addrs.clone();
    let (udp, tcp) = (addrs.sip_udp[0], addrs.sip_tcp[0]);

    // A wrong password (for carol, so alice's and bob's logins are not the ones throttled):
    // challenged, answered, refused. baresip 1.0.0 answers every fresh challenge again, so it
    // keeps retrying until the core's failed-login throttle (5 per login) stops it with 403.
    let mut mallory = Baresip::start(
        "wrong password",
        "carol",
        "not-carols-password",
        Transport::Udp,
        udp,
        "sip:bob@example.com",
    )
    .await;
    mallory
        .expect("challenge", |l| l == "SIP/2.0 401 Unauthorized")
        .await;
    mallory
        .expect("Authorization in a REGISTER", |l| {
            l.starts_with("Authorization: Digest username=\"carol\", realm=\"example.com\"")
        })
        .await;
    mallory
        .expect("refusal", |l| l == "SIP/2.0 401 Unauthorized")
        .await;
    mallory
        .expect("throttling", |l| {
            l.starts_with("SIP/2.0 403 Forbidden (too many failed logins; retry in ")
        })
        .await;
    assert!(
        !mallory.seen.iter().any(|l| l.starts_with("SIP/2.0 2")),
        "a wrong password was accepted:\n{}",
        tail(&mallory.seen)
    );
    mallory.stop().await;

    let mut alice = Baresip::start(
        "alice",
        "alice",
        ALICE_PASSWORD,
        Transport::Udp,
        udp,
        "sip:bob@example.com",
    )
    .await;
    alice.registered("UDP").await;

    // bob registers, then quits (baresip un-registers on the way out): offline. The message
    // waits in the server and comes when he registers again.
    let mut bob = Baresip::start(
        "bob",
        "bob",
        BOB_PASSWORD,
        Transport::Tcp,
        tcp,
        "sip:alice@example.com",
    )
    .await;
    bob.registered("TCP").await;
    bob.quit().await;
    let offline = "while you were out: ünïcödé, <tags> & \\backslash";
    alice.message(offline).await;

    let mut bob = Baresip::start(
        "bob again",
        "bob",
        BOB_PASSWORD,
        Transport::Tcp,
        tcp,
        "sip:alice@example.com",
    )
    .await;
    bob.registered("TCP").await;
    bob.expect("the offline message", |l| {
        l == received("sip:alice@example.com", offline)
    })
    .await;
    // It came from the queue: a queued delivery carries the Date it was queued (live forks
    // do not), and it was the first MESSAGE bob saw.
    let delivered = request(&bob.seen, "MESSAGE sip:bob");
    assert!(
        delivered.iter().any(|l| l.starts_with("Date: ")),
        "offline delivery without Date: {delivered:#?}"
    );

    // Live, both ways.
    let to_bob = "hello bob, from alice's baresip";
    alice.message(to_bob).await;
    bob.expect("alice's message", |l| {
        l == received("sip:alice@example.com", to_bob)
    })
    .await;
    let to_alice = "hi alice — bob here (over TCP)";
    bob.message(to_alice).await;
    alice
        .expect("bob's message", |l| {
            l == received("sip:bob@example.com", to_alice)
        })
        .await;

    alice.stop().await;
    bob.stop().await;
    t.shutdown().await;
}
