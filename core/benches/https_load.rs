//! HTTPS benchmark (run with `cargo bench -p switchboard-core --bench https_load`).
//!
//! Starts the real `switchboard` binary (bench profile) on loopback in its own process, then:
//! 1. keep-alive load on `GET /healthz` over TLS from `BENCH_CONNS` connections for
//!    `BENCH_SECS` seconds: requests/s and latency percentiles;
//! 2. `BENCH_IDLE` idle TLS connections held open at once: the server's RSS growth per
//!    connection and its peak RSS (VmHWM);
//! 3. the same number of idle plain-HTTP TCP connections, to separate TLS from connection cost.
//!
//! Loops are bounded in count and time; only 127.0.0.1 is used. Client and server share the
//! machine's cores, so the throughput figure is a floor, not a ceiling.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(stream: &mut tokio_rustls::client::TlsStream<TcpStream>, buf: &mut [u8]) -> bool {
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    // The /healthz answer is small and fixed: read until its 3-byte body "ok\n" has arrived.
    let mut have = 0;
    loop {
        match stream.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => have += n,
        }
        if buf[..have].ends_with(b"\r\n\r\nok\n") {
            return true;
        }
        if have == buf.len() {
            return false;
        }
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo test --benches asks for a listing; nothing to list.
    }
    let conns = env_or("BENCH_CONNS", 32);
    let secs = env_or("BENCH_SECS", 10) as u64;
    let idle = env_or("BENCH_IDLE", 10_000);
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }

    let dir = tempfile::tempdir().unwrap();
    let (https, plain, admin) = (free_port(), free_port(), free_port());
    std::fs::write(
        dir.path().join("switchboard.toml"),
        format!(
            "[server]\ndemo_user = false\n[log]\nlevel = \"warn\"\n[http]\nhttps = [\"127.0.0.1:{https}\"]\nplain = [\"127.0.0.1:{plain}\"]\nheader_timeout_secs = 600\nmax_connections = 20000\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n[sip]\nudp = []\ntcp = []\ntls = []\n"
        ),
    )
    .unwrap();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("serve")
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .spawn()
            .expect("start switchboard"),
    );
    let pid = server.0.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", https)).await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connector = support::connector_trusting(&dir.path().join("data/tls/cert.pem"));
    let connect = |connector: TlsConnector| async move {
        let tcp = TcpStream::connect(("127.0.0.1", https)).await?;
        tcp.set_nodelay(true)?;
        connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    };

    // 1. Throughput and latency with keep-alive.
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let c = connector.clone();
        let fut = connect(c);
        tasks.push(tokio::spawn(async move {
            let mut stream = fut.await.expect("connect");
            let mut lat = Vec::with_capacity(200_000);
            let mut buf = vec![0u8; 4096];
            let mut errors = 0u64;
            while Instant::now() < stop && lat.len() < 5_000_000 {
                let t = Instant::now();
                if get(&mut stream, &mut buf).await {
                    lat.push(t.elapsed().as_micros() as u32);
                } else {
                    errors += 1;
                    break;
                }
            }
            (lat, errors)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!("https /healthz keep-alive: {conns} connections, {secs} s");
    println!(
        "  requests: {}  errors: {errors}  throughput: {:.0} req/s",
        all.len(),
        all.len() as f64 / elapsed
    );
    println!(
        "  latency µs: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        all.last().copied().unwrap_or(0)
    );

    // 2. Idle TLS connections.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before, _) = rss_kib(pid);
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut handles = Vec::with_capacity(idle);
    let t0 = Instant::now();
    for _ in 0..idle {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let fut = connect(connector.clone());
        handles.push(tokio::spawn(async move {
            let s = fut.await;
            drop(permit);
            s
        }));
    }
    let mut open = Vec::with_capacity(idle);
    let mut failed = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(s) => open.push(s),
            Err(_) => failed += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_after, hwm) = rss_kib(pid);
    println!(
        "idle TLS connections: {} open, {failed} failed, opened in {:.1} s",
        open.len(),
        t0.elapsed().as_secs_f64()
    );
    println!(
        "  server RSS: {rss_before} KiB before, {rss_after} KiB with them open, peak {hwm} KiB; {:.1} KiB per connection",
        (rss_after.saturating_sub(rss_before)) as f64 / open.len().max(1) as f64
    );
    drop(open);

    // 3. Idle plain TCP connections (HTTP behind a TLS-terminating proxy), to separate the
    //    cost of TLS from the cost of a connection.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_before, _) = rss_kib(pid);
    let mut plain_open = Vec::with_capacity(idle);
    for _ in 0..idle {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", plain)).await {
            plain_open.push(s);
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_after, hwm) = rss_kib(pid);
    println!("idle plain TCP connections: {} open", plain_open.len());
    println!(
        "  server RSS: {rss_before} KiB before, {rss_after} KiB with them open, peak {hwm} KiB; {:.1} KiB per connection",
        (rss_after.saturating_sub(rss_before)) as f64 / plain_open.len().max(1) as f64
    );
    drop(plain_open);
    drop(server);
}
