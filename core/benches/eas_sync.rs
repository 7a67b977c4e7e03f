//! Incremental ActiveSync Sync of a 1,000-message Inbox on the local store, with N devices
//! syncing concurrently (run with `cargo bench -p switchboard-core --bench eas_sync`).
//!
//! The server runs in-process with ActiveSync as shipped (the embedded `builtin:eas`
//! WebAssembly component, the built-in local store), on a plain-HTTP loopback listener.
//! `BENCH_MESSAGES` (1,000) real messages are imported into Alice's Inbox through the
//! mailstore host path (`switchboard mail import`'s code). For each device count in
//! `BENCH_DEVICES` (default `1,4,16,64`), every device (a distinct `DeviceId`, its own
//! keep-alive connection) does FolderSync and a full initial Sync (windows of 100, plain-text
//! bodies truncated to 500 bytes, as phones ask), then `BENCH_ROUNDS` (50) incremental Syncs
//! with its latest key — the request an idle phone repeats — all devices at once. Reported:
//! requests/s over the whole run, p50 and p99 latency, and the initial full sync time.
//! Client and server share the machine's cores. Loopback only; every loop is bounded.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use switchboard_wbxml::tags::{airsync as a, airsyncbase as asb, folderhierarchy as fh};
use switchboard_wbxml::{decode, element, Element};
use tokio::net::TcpStream;

use support::{PASSWORD, USER};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One device on one keep-alive connection.
struct Phone {
    conn: support::Conn<TcpStream>,
    path_prefix: String,
    auth: String,
}

impl Phone {
    async fn new(addr: SocketAddr, device: &str) -> Result<Phone> {
        Ok(Phone {
            conn: support::Conn::new(TcpStream::connect(addr).await?),
            path_prefix: format!(
                "/Microsoft-Server-ActiveSync?User={USER}&DeviceId={device}&DeviceType=Bench&Cmd="
            ),
            auth: support::basic(USER, PASSWORD),
        })
    }

    async fn cmd(&mut self, cmd: &str, doc: &Element) -> Result<Option<Element>> {
        let body = doc.to_wbxml()?;
        let path = format!("{}{cmd}", self.path_prefix);
        let headers = [
            ("Authorization", self.auth.as_str()),
            ("MS-ASProtocolVersion", "14.1"),
            ("Content-Type", "application/vnd.ms-sync.wbxml"),
        ];
        let r = self.conn.request("POST", &path, &headers, &body).await;
        ensure!(r.status == 200, "{cmd}: HTTP {}", r.status);
        if r.body.is_empty() {
            return Ok(None);
        }
        Ok(Some(decode(&r.body)?))
    }

    async fn inbox(&mut self) -> Result<String> {
        let d = self
            .cmd(
                "FolderSync",
                &element!(fh::FolderSync[element!(fh::SyncKey = "0")]),
            )
            .await?
            .context("empty FolderSync")?;
        d.child("Changes")
            .and_then(|c| {
                c.children_named("Add")
                    .find(|f| f.child_text("Type") == Some("2"))
            })
            .and_then(|f| f.child_text("ServerId"))
            .map(str::to_string)
            .context("no Inbox")
    }

    /// One Sync; (new key, items added, more available).
    async fn sync(&mut self, key: &str, inbox: &str) -> Result<(String, usize, bool)> {
        let doc = element!(
            a::Sync[element!(
                a::Collections[element!(a::Collection [
                    element!(a::SyncKey = key),
                    element!(a::CollectionId = inbox),
                    element!(a::WindowSize = "100"),
                    element!(a::Options [
                        element!(a::FilterType = "0"),
                        element!(asb::BodyPreference [
                            element!(asb::Type = "1"),
                            element!(asb::TruncationSize = "500"),
                        ]),
                    ]),
                ])]
            )]
        );
        let Some(d) = self.cmd("Sync", &doc).await? else {
            return Ok((key.to_string(), 0, false));
        };
        let col = d
            .child("Collections")
            .and_then(|c| c.child("Collection"))
            .with_context(|| format!("Sync failed: {d}"))?;
        ensure!(col.child_text("Status") == Some("1"), "Sync: {col}");
        let adds = col
            .child("Commands")
            .map(|c| c.children_named("Add").count())
            .unwrap_or(0);
        Ok((
            col.child_text("SyncKey").unwrap_or(key).to_string(),
            adds,
            col.child("MoreAvailable").is_some(),
        ))
    }

    /// Full initial sync; the final key.
    async fn initial(&mut self, inbox: &str, expect: usize) -> Result<String> {
        let (mut key, _, _) = self.sync("0", inbox).await?;
        let mut total = 0;
        for _ in 0..1000 {
            let (k, n, more) = self.sync(&key, inbox).await?;
            key = k;
            total += n;
            if !more {
                ensure!(total == expect, "initial sync got {total} of {expect}");
                return Ok(key);
            }
        }
        bail!("initial sync never ended")
    }
}

fn message(i: usize) -> String {
    format!(
        "From: Sender {i} <sender{i}@example.org>\r\nTo: alice@example.com\r\n\
         Subject: Message number {i}\r\nDate: Fri, 20 Nov 2026 09:{:02}:{:02} +0000\r\n\
         Message-ID: <bench{i}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
        (i / 60) % 60,
        i % 60,
        "A line of an ordinary message body, repeated to a realistic size. ".repeat(20)
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run() -> Result<()> {
    let messages = env_or("BENCH_MESSAGES", 1000);
    let rounds = env_or("BENCH_ROUNDS", 50);
    let devices: Vec<usize> = std::env::var("BENCH_DEVICES")
        .unwrap_or_else(|_| "1,4,16,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let extra = "[frontends.eas]\nenabled = true\n[plugins.eas]\nmanifest = \"builtin:eas\"\n\
                 settings = { require_provisioning = false }\n";
    let path = dir.path().join("switchboard.toml");
    let running = support::start_server(&path, &data, extra).await?;
    let addr = running.addrs.http[0];

    // Seed the Inbox through the mailstore host path.
    let plugins = running.shared.current().plugins.clone();
    let target = switchboard_core::mail_import::target(
        &plugins,
        switchboard_core::mail_import::principal(USER)?,
        None,
    )
    .await?;
    let eml = dir.path().join("m.eml");
    let seeded = Instant::now();
    for i in 0..messages {
        std::fs::write(&eml, message(i))?;
        switchboard_core::mail_import::import_file(&plugins, &target, &eml, 1 << 20).await?;
    }
    println!(
        "eas_sync: incremental Sync of a {messages}-message Inbox (local store, builtin:eas WebAssembly, plain HTTP on loopback)"
    );
    println!(
        "  seeded {messages} messages in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    for (round, &n) in devices.iter().enumerate() {
        // Set up n devices: FolderSync + full initial sync each (concurrently).
        let setup = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for d in 0..n {
            tasks.spawn(async move {
                let mut phone = Phone::new(addr, &format!("r{round}d{d}")).await?;
                let inbox = phone.inbox().await?;
                let key = phone.initial(&inbox, messages).await?;
                Ok::<_, anyhow::Error>((phone, inbox, key))
            });
        }
        let mut phones = Vec::with_capacity(n);
        while let Some(r) = tasks.join_next().await {
            phones.push(r??);
        }
        let setup = setup.elapsed();

        // Measure: every device repeats its incremental Sync.
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (mut phone, inbox, mut key) in phones {
            tasks.spawn(async move {
                let mut lat = Vec::with_capacity(rounds);
                for _ in 0..rounds {
                    let t = Instant::now();
                    let (k, adds, _) = phone.sync(&key, &inbox).await?;
                    lat.push(t.elapsed());
                    ensure!(adds == 0, "nothing changed, yet {adds} adds");
                    key = k;
                }
                Ok::<_, anyhow::Error>(lat)
            });
        }
        let mut all = Vec::with_capacity(n * rounds);
        while let Some(r) = tasks.join_next().await {
            all.extend(r??);
        }
        let elapsed = started.elapsed();
        all.sort_unstable();
        println!(
            "  {n:>3} devices: {:>7.0} Syncs/s, p50 {:>6.2} ms, p99 {:>6.2} ms ({} Syncs); initial full sync of all devices {:.1} s",
            all.len() as f64 / elapsed.as_secs_f64(),
            percentile(&all, 0.50).as_secs_f64() * 1e3,
            percentile(&all, 0.99).as_secs_f64() * 1e3,
            all.len(),
            setup.as_secs_f64()
        );
    }
    running.shutdown().await;
    Ok(())
}

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
