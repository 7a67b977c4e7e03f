//! Plugin call overhead (run with `cargo bench -p switchboard-core --bench plugin_call`).
//!
//! Two handlers of the notes example, each measured five ways in one run:
//! - `echo`: `POST /example/notes/_echo` with a 1 KiB body — one cheap host call
//!   (`config.get`), a checksum over the body, the body echoed back (pure overhead);
//! - `kv read`: `GET /example/notes/todo` — one key-value read from the core database
//!   (SQLite), the shape of a realistic request.
//! 1. native direct: the handler function linked into this binary, host calls answered by the
//!    same host capabilities in-process (the anchor);
//! 2. native plugin, FFI only: the same code as a `cdylib` loaded with libloading, called on
//!    this thread (postcard across the C ABI, host call through the callback);
//! 3. native plugin through the host: what a request pays (blocking-pool hop included);
//! 4. WebAssembly, reused instance: warm pool (`warm_instances = 16`);
//! 5. WebAssembly, fresh instance per call: `warm_instances = 0`, so every call
//!    instantiates from `InstancePre` with the pooling allocator.
//!
//! Also: linear memory per warm instance. `BENCH_CALLS` sets calls per case (default 20000).

#[allow(dead_code)]
#[path = "../tests/support/plugins.rs"]
mod plugins;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use example_notes_frontend::Notes;
use plugins::{install_with, manifest_of, Build};
use switchboard_core::config::{load, ConfigSource};
use switchboard_core::plugins::{PluginRuntime, PluginSet};
use switchboard_sdk::abi::{decode, PluginCall};
use switchboard_sdk::http::{Outcome, Request};
use switchboard_sdk::{HttpFrontend, Principal};
use switchboard_storage::Storage;

#[derive(Clone, Copy, PartialEq)]
enum Case {
    Echo,
    KvRead,
}

static CASE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn case() -> Case {
    if CASE.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        Case::Echo
    } else {
        Case::KvRead
    }
}

fn request() -> Request {
    let (method, path, body) = match case() {
        Case::Echo => (
            "POST",
            "/example/notes/_echo",
            (0..1024).map(|i| (i % 251) as u8).collect(),
        ),
        Case::KvRead => ("GET", "/example/notes/todo", Vec::new()),
    };
    Request {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        principal: Principal::parse("alice@example.com"),
        peer: "127.0.0.1:40000".into(),
        body,
        body_complete: true,
    }
}

fn check(o: &Outcome) {
    let want = match case() {
        Case::Echo => 1024 + 3,
        Case::KvRead => 1024,
    };
    match o {
        Outcome::Reply(r) => assert_eq!((r.status, r.body_bytes().len()), (200, want)),
        Outcome::Park(_) => panic!("never parks"),
    }
}

/// Host calls of a directly linked plugin, answered by the real host capabilities.
struct Direct {
    ctx: switchboard_core::plugins::caps::CallCtx,
    handle: tokio::runtime::Handle,
}

impl switchboard_sdk::native::HostApi for Direct {
    fn call(&self, call: switchboard_sdk::abi::HostCall) -> Vec<u8> {
        self.handle.block_on(self.ctx.dispatch(call))
    }
}

struct Stats {
    mean_ns: f64,
    p50_ns: u128,
    p99_ns: u128,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let total: Duration = samples.iter().sum();
    Stats {
        mean_ns: total.as_nanos() as f64 / samples.len() as f64,
        p50_ns: samples[samples.len() / 2].as_nanos(),
        p99_ns: samples[samples.len() * 99 / 100].as_nanos(),
    }
}

fn print(name: &str, s: &Stats, anchor: f64) {
    println!(
        "{name:<38} mean {:>9.0} ns  p50 {:>8} ns  p99 {:>8} ns  {:>6.2}x native  (+{:.2} µs)",
        s.mean_ns,
        s.p50_ns,
        s.p99_ns,
        s.mean_ns / anchor,
        (s.mean_ns - anchor) / 1000.0
    );
}

async fn load_set(
    dir: &std::path::Path,
    build: Build,
    warm: u32,
) -> (Arc<PluginSet>, PluginRuntime) {
    let manifest = install_with(
        &dir.join(format!("notes-{build:?}-{warm}")),
        "example-notes-frontend",
        build,
        &manifest_of("examples/notes-frontend/plugin.toml"),
        true,
    );
    let config = dir.join(format!("switchboard-{build:?}-{warm}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = {:?}\n[plugins.notes]\nmanifest = {manifest:?}\nwarm_instances = {warm}\nsettings = {{ echo_tag = \"ok:\" }}\n",
            dir.join("data").display().to_string()
        ),
    )
    .unwrap();
    let settings = load(&ConfigSource {
        path: Some(config),
        env: BTreeMap::new(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let storage = Storage::connect("sqlite::memory:", 1).await.unwrap();
    storage.migrate().await.unwrap();
    let runtime = PluginRuntime::new(&settings, storage);
    let set = Arc::new(
        PluginSet::load(&settings, &runtime)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    (set, runtime)
}

fn main() {
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!("plugin call overhead, {calls} calls per case (machine: shared 2 cores; compare within one run)");
    rt.block_on(async {
        let (native_set, _n) = load_set(dir.path(), Build::Native, 16).await;
        let (warm_set, _w) = load_set(dir.path(), Build::Wasm, 16).await;
        let (fresh_set, _f) = load_set(dir.path(), Build::Wasm, 0).await;
        for set in [&native_set, &warm_set, &fresh_set] {
            let notes = set.get("notes").unwrap();
            notes
                .info
                .kv
                .set("note/alice@example.com/todo", &[b'n'; 1024])
                .await
                .unwrap();
        }
        for (code, name) in [
            (0u8, "echo (1 KiB body, config.get)"),
            (1, "kv read (1 KiB value from SQLite)"),
        ] {
            CASE.store(code, std::sync::atomic::Ordering::Relaxed);
            println!("\n== {name}");
            run_case(calls, &native_set, &warm_set, &fresh_set).await;
        }
    });
}

async fn measure(calls: usize, plugin: &switchboard_core::plugins::Plugin) -> Stats {
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let req = request();
        let t = Instant::now();
        let o = plugin.http_handle(None, None, req, None).await.unwrap();
        samples.push(t.elapsed());
        check(&o);
    }
    stats(samples)
}

async fn run_case(
    calls: usize,
    native_set: &Arc<PluginSet>,
    warm_set: &Arc<PluginSet>,
    fresh_set: &Arc<PluginSet>,
) {
    let plugin = native_set.get("notes").unwrap().clone();
    let handle = tokio::runtime::Handle::current();

    // 1. Native direct, on a blocking thread like the native plugin.
    let p = plugin.clone();
    let h = handle.clone();
    let direct = tokio::task::spawn_blocking(move || {
        let api = std::rc::Rc::new(Direct {
            ctx: p.call_ctx(Principal::parse("alice@example.com")),
            handle: h,
        });
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let req = request();
            let t = Instant::now();
            let o = switchboard_sdk::native::with_host(api.clone(), || Notes::handle(req));
            samples.push(t.elapsed());
            check(&o);
        }
        stats(samples)
    })
    .await
    .unwrap();
    let anchor = direct.mean_ns;
    print("native direct (anchor)", &direct, anchor);

    // 2. FFI only.
    let native = plugin.native().unwrap().clone();
    let p = plugin.clone();
    let ffi = tokio::task::spawn_blocking(move || {
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let call = PluginCall::HttpHandle(request());
            let ctx = p.call_ctx(Principal::parse("alice@example.com"));
            let t = Instant::now();
            let bytes = native.call_now(ctx, handle.clone(), call).unwrap();
            samples.push(t.elapsed());
            check(&decode::<Outcome>(&bytes).unwrap());
        }
        stats(samples)
    })
    .await
    .unwrap();
    print("native plugin, FFI call (libloading)", &ffi, anchor);
    print(
        "native plugin through the host",
        &measure(calls, &plugin).await,
        anchor,
    );

    // 4. WebAssembly, warm instances.
    let plugin = warm_set.get("notes").unwrap().clone();
    for _ in 0..100 {
        plugin
            .http_handle(None, None, request(), None)
            .await
            .unwrap();
    }
    let reused = measure(calls, &plugin).await;
    print("wasm, reused instance", &reused, anchor);
    let status = plugin.status();
    println!(
        "  linear memory per warm instance: {:.0} KiB",
        status.memory_bytes as f64 / 1024.0 / status.warm_instances.max(1) as f64
    );

    // 5. WebAssembly, fresh instance per call.
    let plugin = fresh_set.get("notes").unwrap().clone();
    let fresh = measure(calls.min(5000), &plugin).await;
    print("wasm, fresh instance per call", &fresh, anchor);
    println!(
        "  instantiation (fresh - reused): {:.1} µs",
        (fresh.mean_ns - reused.mean_ns) / 1000.0
    );
}
