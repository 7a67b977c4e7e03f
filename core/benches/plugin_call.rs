//! Plugin call overhead (run with `cargo bench -p switchboard-core --bench plugin_call`).
//!
//! One handler — the notes example's `POST /example/notes/_echo`: one host call
//! (`config.get`), a checksum over the body, the body echoed back — measured five ways with
//! a 1 KiB request body, in one run:
//! 1. native direct: the handler function linked into this binary, host calls answered
//!    in-process (the anchor);
//! 2. native plugin, FFI only: the same code as a `cdylib` loaded with libloading, called on
//!    this thread (postcard across the C ABI, host call through the callback);
//! 3. native plugin through the host: what a request pays (blocking-pool hop included);
//! 4. WebAssembly, reused instance: warm pool (`warm_instances = 16`);
//! 5. WebAssembly, fresh instance per call: `warm_instances = 0`, so every call
//!    instantiates from `InstancePre` with the pooling allocator.
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
use switchboard_sdk::mock::MockHost;
use switchboard_sdk::{HttpFrontend, Principal};
use switchboard_storage::Storage;

fn request() -> Request {
    Request {
        method: "POST".into(),
        path: "/example/notes/_echo".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        principal: Principal::parse("alice@example.com"),
        peer: "127.0.0.1:40000".into(),
        body: (0..1024).map(|i| (i % 251) as u8).collect(),
        body_complete: true,
    }
}

fn check(o: &Outcome) {
    match o {
        Outcome::Reply(r) => assert_eq!((r.status, r.body_bytes().len()), (200, 1024 + 3)),
        Outcome::Park(_) => panic!("echo never parks"),
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

async fn load_set(dir: &std::path::Path, build: Build, warm: u32) -> (Arc<PluginSet>, PluginRuntime) {
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
    let settings = load(&ConfigSource { path: Some(config), env: BTreeMap::new() }).unwrap_or_else(|e| panic!("{e}"));
    let storage = Storage::connect("sqlite::memory:", 1).await.unwrap();
    storage.migrate().await.unwrap();
    let runtime = PluginRuntime::new(&settings, storage);
    let set = Arc::new(PluginSet::load(&settings, &runtime).await.unwrap_or_else(|e| panic!("{e}")));
    (set, runtime)
}

fn main() {
    let calls: usize = std::env::var("BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    println!("plugin call overhead, 1 KiB body, {calls} calls per case (machine: shared 2 cores; compare within this run)");

    // 1. Native direct.
    let host = MockHost::new().with_config("echo_tag", "ok:");
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let req = request();
        let t = Instant::now();
        let o = host.run(|| Notes::handle(req));
        samples.push(t.elapsed());
        check(&o);
    }
    let direct = stats(samples);
    let anchor = direct.mean_ns;
    print("native direct (anchor)", &direct, anchor);

    rt.block_on(async {
        // 2 + 3. Native plugin.
        let (set, _runtime) = load_set(dir.path(), Build::Native, 16).await;
        let plugin = set.get("notes").unwrap().clone();
        let native = plugin.native().unwrap().clone();
        let handle = tokio::runtime::Handle::current();
        let p2 = plugin.clone();
        let ffi = tokio::task::spawn_blocking(move || {
            let mut samples = Vec::with_capacity(calls);
            for _ in 0..calls {
                let call = PluginCall::HttpHandle(request());
                let ctx = p2.call_ctx(Principal::parse("alice@example.com"));
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
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let req = request();
            let t = Instant::now();
            let o = plugin.http_handle(None, None, req).await.unwrap();
            samples.push(t.elapsed());
            check(&o);
        }
        print("native plugin through the host", &stats(samples), anchor);

        // 4. WebAssembly, warm instances.
        let (set, _runtime) = load_set(dir.path(), Build::Wasm, 16).await;
        let plugin = set.get("notes").unwrap().clone();
        for _ in 0..100 {
            plugin.http_handle(None, None, request()).await.unwrap();
        }
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let req = request();
            let t = Instant::now();
            let o = plugin.http_handle(None, None, req).await.unwrap();
            samples.push(t.elapsed());
            check(&o);
        }
        let reused = stats(samples);
        print("wasm, reused instance", &reused, anchor);
        let status = plugin.status();
        println!(
            "wasm linear memory per warm instance: {:.1} KiB ({} warm)",
            status.memory_bytes as f64 / 1024.0 / status.warm_instances.max(1) as f64,
            status.warm_instances
        );

        // 5. WebAssembly, fresh instance per call.
        let (set, _runtime) = load_set(dir.path(), Build::Wasm, 0).await;
        let plugin = set.get("notes").unwrap().clone();
        let n = calls.min(5000);
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let req = request();
            let t = Instant::now();
            let o = plugin.http_handle(None, None, req).await.unwrap();
            samples.push(t.elapsed());
            check(&o);
        }
        let fresh = stats(samples);
        print("wasm, fresh instance per call", &fresh, anchor);
        println!(
            "instantiation (fresh - reused): {:.1} µs",
            (fresh.mean_ns - reused.mean_ns) / 1000.0
        );
    });
}
