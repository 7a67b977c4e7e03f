//! Incremental ActiveSync Sync of a 5,000-message Dovecot folder through the IMAP connector
//! (run with `cargo bench -p switchboard-core --bench eas_imap_sync`).
//!
//! One throwaway Dovecot (the connector tests' harness, `mail_fsync = never`) is seeded with
//! `BENCH_MESSAGES` (5,000) small messages in Alice's INBOX by pipelined APPENDs over one
//! connection. The real
//! server runs in-process with the built-in ActiveSync plugin and an optimised build of the
//! native imap connector for `scalix.test`, which reaches Dovecot through a counting TCP proxy
//! on loopback: every IMAP command the connector sends is counted by name. Then, once with
//! CONDSTORE/QRESYNC (Dovecot's default) and once with the connector's `condstore = false`
//! (the fallback sync older stores such as Scalix get), a provisioned phone:
//! 1. syncs the folder from scratch (windows of 100, plain-text bodies truncated to 500
//!    bytes): time and IMAP commands;
//! 2. runs `BENCH_SYNCS` (200) incremental Syncs with nothing changed: requests/s, latency,
//!    IMAP commands per Sync;
//! 3. runs `BENCH_CHANGED` (100) incremental Syncs, each after one flag change made directly
//!    on Dovecot (`\Flagged` in the first mode, `\Seen` in the second; not through the proxy,
//!    not timed): the same figures, and each answer must
//!    carry exactly that one change.
//!
//! Requests are sequential from one phone (requests/s = 1 / latency); client, server and
//! Dovecot share the machine's cores. Loopback only; every loop is bounded.

#[path = "../tests/support/mod.rs"]
mod support;

#[allow(unused_imports)]
#[path = "../../plugins/imap/tests/support/mod.rs"]
mod imap_support;

#[allow(dead_code)]
#[path = "../tests/eas_imap_support/mod.rs"]
mod eas_imap_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use eas_imap_support::{imap_settings, window, Phone, ALICE};
use imap_support::dovecot::{Dovecot, PASSWORD};
use imap_support::raw::Raw;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// IMAP commands seen by the proxy, by name (`UID FETCH`, `SELECT`…).
#[derive(Clone, Default)]
struct Counter(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counter {
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
    fn add(&self, name: String) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default() += 1;
    }
}

/// Splits the client's side of an IMAP connection into commands: a line is `tag NAME …`
/// (`UID` joins the next word); a line ending in a literal `{n}` / `{n+}` is followed by `n`
/// raw bytes and then the rest of the same command.
#[derive(Default)]
struct Scanner {
    line: Vec<u8>,
    skip: usize,
    continuing: bool,
}

impl Scanner {
    fn feed(&mut self, mut data: &[u8], counter: &Counter) {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let Some(end) = data.iter().position(|b| *b == b'\n') else {
                self.line.extend_from_slice(data);
                return;
            };
            self.line.extend_from_slice(&data[..=end]);
            data = &data[end + 1..];
            let line = String::from_utf8_lossy(&self.line).trim_end().to_string();
            self.line.clear();
            if !self.continuing {
                let mut words = line.split_whitespace().skip(1);
                let name = match words.next().map(str::to_ascii_uppercase) {
                    Some(u) if u == "UID" => {
                        format!("UID {}", words.next().unwrap_or("").to_ascii_uppercase())
                    }
                    Some(n) => n,
                    None => continue,
                };
                counter.add(name);
            }
            // A literal continues the command after its bytes.
            let literal = line
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.trim_end_matches('+').parse::<usize>().ok());
            self.continuing = literal.is_some();
            self.skip = literal.unwrap_or(0);
        }
    }
}

/// A proxy on 127.0.0.1 in front of `upstream`, counting the commands clients send.
async fn counting_proxy(upstream: u16, counter: Counter) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                });
                let mut scanner = Scanner::default();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    scanner.feed(&buf[..n], &counter);
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = sw.shutdown().await;
                let _ = down.await;
            });
        }
    });
    Ok(port)
}

/// APPEND `n` messages to Alice's INBOX over one connection, pipelined in batches.
fn seed(d: &Dovecot, n: usize) -> Result<()> {
    let stream = std::net::TcpStream::connect(("127.0.0.1", d.port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    w.write_all(format!("L LOGIN \"{ALICE}\" \"{PASSWORD}\"\r\n").as_bytes())?;
    loop {
        line.clear();
        ensure!(r.read_line(&mut line)? > 0, "closed during login");
        if line.starts_with("L ") {
            ensure!(line.starts_with("L OK"), "login: {line}");
            break;
        }
    }
    let mut i = 0;
    while i < n {
        let batch = (n - i).min(250);
        let mut out = Vec::new();
        for j in i..i + batch {
            let m = format!(
                "From: Bob <bob@scalix.test>\r\nTo: {ALICE}\r\nSubject: Message {j}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m{j}@bench>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBody of message {j}, a few words long.\r\n"
            );
            out.extend_from_slice(format!("A{j} APPEND INBOX () {{{}+}}\r\n", m.len()).as_bytes());
            out.extend_from_slice(m.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        w.write_all(&out)?;
        let mut done = 0;
        while done < batch {
            line.clear();
            ensure!(r.read_line(&mut line)? > 0, "closed during APPEND");
            if line.starts_with('A') {
                ensure!(line.split(' ').nth(1) == Some("OK"), "APPEND: {line}");
                done += 1;
            }
        }
        i += batch;
    }
    Ok(())
}

fn per_sync(counts: &BTreeMap<String, u64>, syncs: usize) -> String {
    let total: u64 = counts.values().sum();
    let parts: Vec<String> = counts
        .iter()
        .map(|(k, v)| format!("{k} {:.2}", *v as f64 / syncs as f64))
        .collect();
    format!(
        "{:.2} ({})",
        total as f64 / syncs as f64,
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Phase {
    name: String,
    syncs: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    counts: BTreeMap<String, u64>,
}

impl Phase {
    fn print(&mut self) {
        self.latencies.sort();
        println!(
            "  {:<34} {:>5} Syncs  {:>8.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  IMAP commands/Sync {}",
            self.name,
            self.syncs,
            self.syncs as f64 / self.elapsed.as_secs_f64(),
            percentile(&self.latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&self.latencies, 0.99).as_secs_f64() * 1e3,
            per_sync(&self.counts, self.syncs),
        );
    }
}

async fn run_mode(
    d: &Dovecot,
    condstore: bool,
    messages: usize,
    syncs: usize,
    changed: usize,
) -> Result<()> {
    let counter = Counter::default();
    let proxy = counting_proxy(d.port, counter.clone()).await?;
    let root = tempfile::tempdir()?;
    let settings = format!("{}, condstore = {condstore}", imap_settings(proxy));
    let server = eas_imap_support::server(root.path(), &settings, true).await?;
    let mut phone = Phone::new(
        &server,
        ALICE,
        PASSWORD,
        if condstore { "B1" } else { "B2" },
    );
    phone.provision().await?;
    let inbox = phone.folder(2).await?;
    println!(
        "{} (connector condstore = {condstore}):",
        if condstore {
            "with CONDSTORE/QRESYNC"
        } else {
            "without CONDSTORE (fallback: UID and flag listing diffed against the kv record)"
        }
    );

    // 1. Initial sync of the whole folder.
    counter.take();
    let started = Instant::now();
    let k0 = phone.sync("0", &inbox, vec![]).await?;
    let mut key = k0.key;
    let mut requests = 1;
    let mut added = 0;
    for _ in 0..(messages / 5 + 10) {
        let page = phone.sync(&key, &inbox, window()).await?;
        requests += 1;
        ensure!(page.status == "1", "initial sync status {}", page.status);
        added += page.adds.len();
        key = page.key;
        if !page.more {
            break;
        }
    }
    let initial = started.elapsed();
    ensure!(
        added == messages,
        "initial sync brought {added} of {messages}"
    );
    let counts = counter.take();
    println!(
        "  initial sync: {added} items in {requests} requests, {:.1} s ({:.0} items/s); IMAP commands {} ({})",
        initial.as_secs_f64(),
        added as f64 / initial.as_secs_f64(),
        counts.values().sum::<u64>(),
        counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // 2. Nothing changed.
    let mut phase = Phase {
        name: "incremental, nothing changed".into(),
        syncs,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(syncs),
        counts: BTreeMap::new(),
    };
    let started = Instant::now();
    for _ in 0..syncs {
        let t = Instant::now();
        let page = phone.sync(&key, &inbox, window()).await?;
        phase.latencies.push(t.elapsed());
        ensure!(
            page.status == "1" && page.adds.is_empty() && page.changes.is_empty(),
            "unexpected changes: {page:?}"
        );
        key = page.key;
    }
    phase.elapsed = started.elapsed();
    phase.counts = counter.take();
    phase.print();

    // 3. One flag change made directly on Dovecot before each Sync.
    let mut raw = Raw::login(d.port, ALICE, PASSWORD);
    raw.ok("SELECT INBOX");
    let mut phase = Phase {
        name: "incremental, one server-side change".into(),
        syncs: changed,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(changed),
        counts: BTreeMap::new(),
    };
    // A flag neither the seed nor the other mode set on these messages: a real change.
    let flag = if condstore { "\\Flagged" } else { "\\Seen" };
    for i in 0..changed {
        let uid = 1 + (i * 37) % messages;
        raw.ok(&format!("UID STORE {uid} +FLAGS.SILENT ({flag})"));
        let t = Instant::now();
        let page = phone.sync(&key, &inbox, window()).await?;
        let took = t.elapsed();
        phase.elapsed += took;
        phase.latencies.push(took);
        ensure!(
            page.status == "1" && page.changes.len() == 1 && page.adds.is_empty(),
            "expected one change: {page:?}"
        );
        key = page.key;
    }
    phase.counts = counter.take();
    phase.print();
    server.shutdown().await;
    Ok(())
}

async fn bench() -> Result<()> {
    let messages = env_or("BENCH_MESSAGES", 5000).clamp(10, 50_000);
    let syncs = env_or("BENCH_SYNCS", 200).clamp(1, 10_000);
    let changed = env_or("BENCH_CHANGED", 100).clamp(1, messages);
    // Build the connector before anything is timed.
    let build = tempfile::tempdir()?;
    eas_imap_support::imap_manifest(build.path(), true);

    // A throwaway store: no fsync per delivered message (seeding speed; reads dominate the
    // Syncs measured).
    let d = Dovecot::start_with("mail_fsync = never\n");
    let started = Instant::now();
    seed(&d, messages)?;
    let mut check = Raw::login(d.port, ALICE, PASSWORD);
    let status = check.ok("STATUS INBOX (MESSAGES)");
    if !status[0].contains(&format!("MESSAGES {messages}")) {
        bail!("seeding failed: {status:?}");
    }
    println!(
        "eas_imap_sync: {messages} messages seeded in {:.1} s by pipelined APPEND; {syncs} idle and {changed} changed incremental Syncs per mode",
        started.elapsed().as_secs_f64()
    );
    for condstore in [true, false] {
        run_mode(&d, condstore, messages, syncs, changed)
            .await
            .with_context(|| format!("condstore = {condstore}"))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; a filter argument naming another benchmark skips this.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"eas_imap_sync".contains(a.as_str()))
    {
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench())
}
