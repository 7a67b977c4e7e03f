//! Idle ActiveSync Pings: the server's memory per parked Ping (run with
//! `cargo bench -p switchboard-core --bench eas_ping`).
//!
//! The server runs with ActiveSync as shipped (the embedded `builtin:eas` component over the
//! local store), on a plain-HTTP loopback listener (TLS costs per connection are measured by
//! `https_load`; this isolates what parking costs). Each count runs in a *fresh server
//! process* (this binary re-executed), so memory freed by an earlier round but kept by the
//! allocator cannot hide the next round's growth. One FolderSync gives the user's folder
//! ids; then a *separate client process* (re-executed again, so the client's memory is not
//! counted) opens one connection per device — spread over 127.0.0.x source addresses, at
//! most `PER_SOURCE` per address, so the ephemeral port range is never exhausted — and sends
//! one Ping (Inbox, heartbeat 3540 s) per device, each a distinct `DeviceId`. When
//! `/admin/status` reports them all parked, the server's RSS growth over its idle baseline
//! divided by the count is the figure; the kernel's socket memory (`/proc/net/sockstat`,
//! both ends, not in any RSS) is reported beside it. Then one new message wakes all of them
//! (they watch the same Inbox) and the time to answer every Ping is reported.
//!
//! `BENCH_PINGS` (default `10000,50000`): the counts. Both processes need one descriptor per
//! connection: the bench raises its descriptor limit (soft and hard — root, or
//! CAP_SYS_RESOURCE, may raise the hard limit up to `/proc/sys/fs/nr_open`), and a count the
//! limit or the ephemeral port range cannot hold is skipped with a note saying why. Every
//! wait is bounded.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use switchboard_wbxml::tags::{folderhierarchy as fh, ping as p};
use switchboard_wbxml::{decode, element};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::Command;

use support::{PASSWORD, USER};
/// Connections per 127.0.0.x source address: well under the ephemeral port range (a bound
/// port 0 takes a port of its own per source address, whatever the destination).
const PER_SOURCE: usize = 20_000;
/// Pings sent before waiting for them to park.
const BATCH: usize = 500;
/// Descriptors beyond one per connection (listeners, the store, the admin polls, ...).
const FD_SLACK: u64 = 1_000;

/// Raise the descriptor limit to `want` (soft and hard), as far as allowed; the soft limit
/// in force afterwards. Raising the hard limit needs CAP_SYS_RESOURCE (root here) and is
/// capped by `/proc/sys/fs/nr_open`; without it the soft limit goes up to the hard one.
fn raise_fd_limit(want: u64) -> u64 {
    let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() else {
        return 1024;
    };
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(hard);
    let target = want.min(nr_open);
    if target > hard && rlimit::Resource::NOFILE.set(target, target).is_ok() {
        return target;
    }
    let soft_target = target.min(hard).max(soft);
    if rlimit::Resource::NOFILE.set(soft_target, hard).is_ok() {
        soft_target
    } else {
        soft
    }
}

/// Whether this process may raise hard limits (CAP_SYS_RESOURCE, bit 24 of `CapEff`).
fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
            u64::from_str_radix(hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// How many ports a bound port-0 socket can take per source address.
fn ephemeral_ports() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|v| v.parse::<usize>().ok());
            Some(it.next()??..=it.next()??)
        })
        .map(|r| r.count())
        .unwrap_or(28_232)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The kernel's TCP socket memory in KiB (`mem`, in pages, of `/proc/net/sockstat`).
fn tcp_kernel_kib() -> u64 {
    std::fs::read_to_string("/proc/net/sockstat")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("TCP:"))?;
            let mut it = line.split_whitespace();
            it.find(|w| *w == "mem")?;
            it.next()?.parse::<u64>().ok()
        })
        .map(|pages| pages * 4)
        .unwrap_or(0)
}

fn request(addr: SocketAddr, device: &str, cmd: &str, body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "POST /Microsoft-Server-ActiveSync?Cmd={cmd}&User={USER}&DeviceId={device}&DeviceType=Bench HTTP/1.1\r\n\
         Host: {addr}\r\nAuthorization: {}\r\nMS-ASProtocolVersion: 14.1\r\n\
         Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: {}\r\n\r\n",
        support::basic(USER, PASSWORD),
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(body);
    head
}

/// The client role: `EAS_PING_CLIENT=addr admin inbox count`. Opens `count` connections from
/// 127.0.0.2 upwards, sends a Ping on each (pausing at each quarter, once those are parked,
/// with `at N` until the server answers `go` on stdin), prints `sent`, then waits for every
/// answer and prints `answered N`.
async fn client(addr: SocketAddr, admin: SocketAddr, inbox: String, count: usize) -> Result<()> {
    raise_fd_limit(count as u64 + FD_SLACK);
    let ping = element!(p::Ping [
        element!(p::HeartbeatInterval = "3540"),
        element!(p::Folders [element!(p::Folder [
            element!(p::Id = inbox.as_str()),
            element!(p::Class = "Email"),
        ])]),
    ])
    .to_wbxml()?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let quarter = (count / 4).max(1);
    let mut conns = Vec::with_capacity(count);
    for i in 0..count {
        let source = Ipv4Addr::new(127, 0, 0, 2 + (i / PER_SOURCE) as u8);
        let sock = TcpSocket::new_v4()?;
        // A run just before left its ports in TIME_WAIT on these addresses.
        sock.set_reuseaddr(true)?;
        sock.bind(SocketAddr::new(IpAddr::V4(source), 0))
            .with_context(|| format!("bind {source}:0 for connection {i}"))?;
        let mut s = sock
            .connect(addr)
            .await
            .with_context(|| format!("connect {i}"))?;
        s.write_all(&request(addr, &format!("ping{i}"), "Ping", &ping))
            .await?;
        conns.push(s);
        // Paced in batches: the next batch starts when this one is parked, so the accept
        // queue never overflows while the server works through the Pings.
        if (i + 1) % BATCH == 0 || i + 1 == count {
            wait_parked(admin, (i + 1) as u64).await;
        }
        // At each quarter the server samples its memory before the next Pings arrive.
        if (i + 1) % quarter == 0 && i + 1 < count {
            println!("at {}", i + 1);
            std::io::stdout().flush()?;
            let go = tokio::time::timeout(Duration::from_secs(60), stdin.next_line())
                .await
                .context("server sampled within a minute")??;
            ensure!(go.as_deref() == Some("go"), "server said {go:?}");
        }
    }
    println!("sent");
    std::io::stdout().flush()?;
    let answered = tokio::task::spawn(async move {
        let mut ok = 0usize;
        let mut set = tokio::task::JoinSet::new();
        for mut s in conns {
            set.spawn(async move {
                let mut buf = [0u8; 512];
                matches!(s.read(&mut buf).await, Ok(n) if n > 0 && buf.starts_with(b"HTTP/1.1 200"))
            });
        }
        while let Some(r) = set.join_next().await {
            ok += usize::from(r.unwrap_or(false));
        }
        ok
    });
    let answered = tokio::time::timeout(Duration::from_secs(600), answered)
        .await
        .context("answers within 10 minutes")??;
    println!("answered {answered}");
    Ok(())
}

async fn http(addr: SocketAddr, raw: &[u8]) -> Result<(u16, Vec<u8>)> {
    let mut c = support::Conn::new(TcpStream::connect(addr).await?);
    c.send_raw(raw).await;
    let r = c.read_response().await.context("no answer")?;
    Ok((r.status, r.body))
}

/// Wait (bounded: 2 minutes) until at least `n` requests are parked.
async fn wait_parked(admin: SocketAddr, n: u64) -> u64 {
    let mut seen = 0;
    for _ in 0..1200 {
        seen = parked(admin).await;
        if seen >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

async fn parked(admin: SocketAddr) -> u64 {
    let r = support::admin(admin, "GET", "/admin/status").await;
    serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v.get("parked_requests")?.as_u64())
        .unwrap_or(0)
}

/// The server role for one count (`EAS_PING_SERVER=count`): a fresh server, `count` Pings
/// parked by a client process, the RSS growth measured, then all woken by one message.
async fn server_role(count: usize) -> Result<()> {
    let limit = raise_fd_limit(count as u64 + FD_SLACK);
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let extra = format!(
        "[frontends.eas]\nenabled = true\n[plugins.eas]\nmanifest = \"builtin:eas\"\n\
         settings = {{ require_provisioning = false }}\n\
         [http]\nhttps = [\"127.0.0.1:0\"]\nplain = [\"127.0.0.1:0\"]\nmax_connections = {}\n",
        count + 1000
    );
    let path = dir.path().join("switchboard.toml");
    let running = support::start_server(&path, &data, &extra).await?;
    let addr = running.addrs.http[0];
    let admin = running.addrs.admin.context("admin listener")?;

    let fs = element!(fh::FolderSync[element!(fh::SyncKey = "0")]).to_wbxml()?;
    let (status, body) = http(addr, &request(addr, "setup", "FolderSync", &fs)).await?;
    ensure!(status == 200, "FolderSync: HTTP {status}");
    let d = decode(&body)?;
    let inbox = d
        .child("Changes")
        .and_then(|c| {
            c.children_named("Add")
                .find(|f| f.child_text("Type") == Some("2"))
        })
        .and_then(|f| f.child_text("ServerId"))
        .context("no Inbox")?
        .to_string();
    let plugins = running.shared.current().plugins.clone();
    let target = switchboard_core::mail_import::target(
        &plugins,
        switchboard_core::mail_import::principal(USER)?,
        None,
    )
    .await?;
    let wake_mail = dir.path().join("wake.eml");
    std::fs::write(
        &wake_mail,
        "From: bench@example.org\r\nTo: alice@example.com\r\nSubject: wake up\r\n\r\nbody\r\n",
    )?;
    // One Ping parked and answered first, so what every Ping touches once (the plugin's
    // instance pool, the store's caches, the hub's tables) is in the baseline, not the growth.
    warm_up(addr, &inbox, &plugins, &target, &wake_mail, admin).await?;

    // Let the warm-up's memory settle, then take the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let kernel_before = tcp_kernel_kib();
    let mut child = Command::new(std::env::current_exe()?)
        .env("EAS_PING_CLIENT", format!("{addr} {admin} {inbox} {count}"))
        .env_remove("EAS_PING_SERVER")
        // A profiler preloaded into the server (`heaptrack`) stays out of the client.
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut to_client = child.stdin.take().context("stdin")?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let started = Instant::now();
    // (parked, RSS KiB) at each quarter, then at the end.
    let mut curve = vec![(0usize, before)];
    loop {
        let line = tokio::time::timeout(Duration::from_secs(900), out.next_line())
            .await
            .context("client progressed within 15 minutes")??
            .unwrap_or_default();
        if line == "sent" {
            break;
        }
        let at: usize = line
            .strip_prefix("at ")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("client failed: {line:?}"))?;
        let n = wait_parked(admin, at as u64).await;
        ensure!(n as usize >= at, "only {n} of {at} Pings parked");
        tokio::time::sleep(Duration::from_millis(500)).await;
        curve.push((at, rss_kib()));
        to_client.write_all(b"go\n").await?;
    }
    let n = wait_parked(admin, count as u64).await;
    ensure!(n as usize >= count, "only {n} of {count} Pings parked");
    let setup = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();
    let kernel_after = tcp_kernel_kib();
    curve.push((count, after));
    let per = after.saturating_sub(before) as f64 / count as f64;
    // The slope over the second half: what one more parked Ping costs once the server has
    // warmed up to this load (pools and allocator arenas sized, tables grown).
    let (half_n, half_rss) = curve[curve.len() / 2];
    let marginal = after.saturating_sub(half_rss) as f64 / (count - half_n).max(1) as f64;
    let curve_text: Vec<String> = curve
        .iter()
        .map(|(n, kib)| format!("{n}: {} MiB", kib / 1024))
        .collect();
    let kernel_per = kernel_after.saturating_sub(kernel_before) as f64 / count as f64;
    // One new message wakes every Ping (they all watch the Inbox).
    let woke = Instant::now();
    switchboard_core::mail_import::import_file(&plugins, &target, &wake_mail, 1 << 20).await?;
    let line = tokio::time::timeout(Duration::from_secs(660), out.next_line())
        .await
        .context("client answered within 11 minutes")??
        .unwrap_or_default();
    let wake = woke.elapsed();
    let answered: usize = line
        .trim()
        .strip_prefix("answered ")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let _ = child.wait().await;
    // The client has gone and closed every connection: what is still held now was not the
    // parked Pings' own (it is what handling 10,000s of requests left behind: allocator
    // retention, the WebAssembly pool's touched slots, per-device state, caches).
    for _ in 0..100 {
        if parked(admin).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let closed = rss_kib();
    println!(
        "  {count:>6} Pings: server RSS {before} KiB -> {after} KiB = {per:.1} KiB per parked Ping \
         all-in, {marginal:.1} KiB per Ping over the second half (RSS by parked count: {}); \
         kernel TCP memory {kernel_per:.1} KiB per connection (both ends); parked in {:.1} s; \
         one new message answered {answered}/{count} in {:.2} s; RSS {} MiB once all closed \
         (fd limit {limit})",
        curve_text.join(", "),
        setup.as_secs_f64(),
        wake.as_secs_f64(),
        closed / 1024
    );
    ensure!(
        answered == count,
        "only {answered} of {count} Pings were answered"
    );
    running.shutdown().await;
    Ok(())
}

/// One Ping parked and woken before the baseline.
async fn warm_up(
    addr: SocketAddr,
    inbox: &str,
    plugins: &switchboard_core::plugins::PluginSet,
    target: &switchboard_core::mail_import::Target,
    mail: &std::path::Path,
    admin: SocketAddr,
) -> Result<()> {
    let ping = element!(p::Ping [
        element!(p::HeartbeatInterval = "3540"),
        element!(p::Folders [element!(p::Folder [
            element!(p::Id = inbox),
            element!(p::Class = "Email"),
        ])]),
    ])
    .to_wbxml()?;
    let raw = request(addr, "warmup", "Ping", &ping);
    let (answer, ()) = tokio::join!(http(addr, &raw), async {
        wait_parked(admin, 1).await;
        let _ = switchboard_core::mail_import::import_file(plugins, target, mail, 1 << 20).await;
    });
    let (status, _) = answer?;
    ensure!(status == 200, "warm-up Ping: HTTP {status}");
    Ok(())
}

/// Why `count` connections cannot be opened here, if they cannot.
fn cannot_hold(count: usize) -> Option<String> {
    let limit = raise_fd_limit(count as u64 + FD_SLACK);
    if (count as u64) + FD_SLACK > limit {
        let why = if has_cap_sys_resource() {
            "/proc/sys/fs/nr_open caps it"
        } else {
            "raising the hard limit needs CAP_SYS_RESOURCE, which this process lacks even as \
             root (a container's capability bounding set)"
        };
        return Some(format!(
            "both processes need a descriptor per connection; the limit is {limit} and could \
             not be raised to {}: {why}",
            count as u64 + FD_SLACK
        ));
    }
    let ports = ephemeral_ports();
    if ports < PER_SOURCE {
        return Some(format!(
            "the ephemeral port range holds {ports} ports per source address, under {PER_SOURCE}"
        ));
    }
    if count.div_ceil(PER_SOURCE) > 250 {
        return Some("more source addresses than 127.0.0.2-254".into());
    }
    None
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Ok(spec) = std::env::var("EAS_PING_CLIENT") {
        let mut it = spec.split_whitespace();
        let addr: SocketAddr = it.next().context("addr")?.parse()?;
        let admin: SocketAddr = it.next().context("admin")?.parse()?;
        let inbox = it.next().context("inbox")?.to_string();
        let count: usize = it.next().context("count")?.parse()?;
        return rt.block_on(client(addr, admin, inbox, count));
    }
    if let Ok(count) = std::env::var("EAS_PING_SERVER") {
        return rt.block_on(server_role(count.parse()?));
    }
    let counts: Vec<usize> = std::env::var("BENCH_PINGS")
        .unwrap_or_else(|_| "10000,50000".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    println!(
        "eas_ping: idle Pings parked in the server (plain HTTP on loopback; a fresh server \
         process per count, the client in another process)"
    );
    let mut failed = Vec::new();
    for count in counts {
        if let Some(why) = cannot_hold(count) {
            println!("  {count:>6} Pings: SKIPPED: {why}");
            continue;
        }
        let status = rt.block_on(async {
            Command::new(std::env::current_exe()?)
                .env("EAS_PING_SERVER", count.to_string())
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
        })?;
        if !status.success() {
            println!("  {count:>6} Pings: FAILED ({status})");
            failed.push(count);
        }
    }
    if !failed.is_empty() {
        bail!("rounds failed: {failed:?}");
    }
    Ok(())
}
