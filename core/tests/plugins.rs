//! The plugin host end to end: the example plugins in both builds through real HTTP, parking,
//! hostile plugins, faults and disabling, manifest lies, reload and the compile cache.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::plugins::{install, manifest_of, Build};
use support::{admin, basic, Conn, TestServer, PASSWORD, USER};
use tokio::net::TcpStream;

fn auth() -> String {
    basic(USER, PASSWORD)
}

/// A maildir with two messages in Inbox, one large (3 MiB, so streaming takes many chunks).
fn maildir(root: &Path) -> PathBuf {
    let dir = root.join("maildir");
    std::fs::create_dir_all(dir.join("Inbox")).unwrap();
    std::fs::create_dir_all(dir.join("Archive")).unwrap();
    std::fs::write(
        dir.join("Inbox/a.eml"),
        "From: Bob <bob@example.com>\r\nSubject: Lunch?\r\n\r\nAt noon.\r\n",
    )
    .unwrap();
    let mut big = b"From: carol@example.com\r\nSubject: Big one\r\n\r\n".to_vec();
    big.extend((0..3 * 1024 * 1024).map(|i| b'a' + (i % 26) as u8));
    std::fs::write(dir.join("Inbox/big.eml"), big).unwrap();
    dir
}

fn plugin_config(root: &Path, build: Build) -> String {
    let notes_manifest = manifest_of("examples/notes-frontend/plugin.toml");
    let eml_manifest = manifest_of("examples/eml-connector/plugin.toml");
    let notes = install(
        &root.join("notes"),
        "example-notes-frontend",
        build,
        &notes_manifest,
    );
    let eml = install(
        &root.join("eml"),
        "example-eml-connector",
        build,
        &eml_manifest,
    );
    let maildir = maildir(root);
    format!(
        r#"
[plugins.notes]
manifest = {notes:?}
settings = {{ max_note_bytes = 4096 }}

[plugins.eml]
manifest = {eml:?}
dirs = {{ maildir = {maildir:?} }}

[frontends.notes]
plugin = "notes"
"#
    )
}

async fn http(server: &TestServer) -> Conn<TcpStream> {
    Conn::new(TcpStream::connect(server.http_addr()).await.unwrap())
}

async fn get(server: &TestServer, path: &str) -> support::Response {
    http(server)
        .await
        .request("GET", path, &[("Authorization", &auth())], b"")
        .await
}

/// One authenticated request on an open connection.
async fn call(c: &mut Conn<TcpStream>, method: &str, path: &str, body: &[u8]) -> support::Response {
    c.request(method, path, &[("Authorization", &auth())], body)
        .await
}

async fn examples_behave(build: Build) {
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&plugin_config(root.path(), build)).await;
    let mut c = http(&server).await;

    let r = call(&mut c, "PUT", "/example/notes/todo", b"milk").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = call(&mut c, "GET", "/example/notes/todo", b"").await;
    assert_eq!((r.status, r.text().as_str()), (200, "milk"));
    let r = call(&mut c, "GET", "/example/notes/", b"").await;
    assert_eq!(r.text(), "todo");
    // The count moves with new and deleted notes only, through atomic multi-key commits.
    call(&mut c, "PUT", "/example/notes/todo", b"milk").await;
    call(&mut c, "PUT", "/example/notes/other", b"x").await;
    let r = call(&mut c, "GET", "/example/notes/_count", b"").await;
    assert_eq!(r.text(), "2");
    let r = call(&mut c, "DELETE", "/example/notes/other", b"").await;
    assert_eq!(r.status, 204);
    let r = call(&mut c, "GET", "/example/notes/_count", b"").await;
    assert_eq!(r.text(), "1");
    let r = call(&mut c, "GET", "/example/notes/missing", b"").await;
    assert_eq!(r.status, 404);
    // The admin's setting reached the plugin, and its limit holds.
    let r = call(&mut c, "GET", "/example/notes/_config", b"").await;
    assert_eq!(r.text(), "max_note_bytes=4096");
    let r = call(&mut c, "PUT", "/example/notes/huge", &[b'x'; 5000]).await;
    assert_eq!(r.status, 413);
    // Unauthenticated requests never reach the plugin.
    let r = c.request("GET", "/example/notes/todo", &[], b"").await;
    assert_eq!(r.status, 401);

    // Mailbox through the host's routing to the eml connector.
    let r = call(&mut c, "GET", "/example/notes/_mail", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listing = r.text();
    assert!(listing.contains("folder Inbox Inbox Inbox"), "{listing}");
    assert!(
        listing.contains("folder Archive UserMail Archive"),
        "{listing}"
    );
    assert!(listing.contains("| Lunch?"), "{listing}");
    assert!(listing.contains("| Big one"), "{listing}");
    // A 3 MiB message streamed by the core from the connector in chunks.
    let r = call(&mut c, "GET", "/example/notes/_mail/Inbox/big.eml", b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        std::fs::read(root.path().join("maildir/Inbox/big.eml")).unwrap()
    );
    // Items that fail before streaming starts get a clear error, not a cut connection.
    let r = call(
        &mut c,
        "GET",
        "/example/notes/_mail/Inbox/../../etc/passwd",
        b"",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().starts_with("invalid: bad id"), "{}", r.text());
    let r = call(&mut c, "GET", "/example/notes/_mail/Inbox/none.eml", b"").await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        r.text(),
        "not found: Inbox/none.eml\n",
        "no host paths leak to clients"
    );

    // kv data is durable in the core DB, per plugin.
    let kv = server
        .server()
        .shared
        .storage
        .kv_get("notes", "note/alice@example.com/todo")
        .await
        .unwrap();
    assert_eq!(kv.as_deref(), Some(&b"milk"[..]));
    server.shutdown().await;
}

#[tokio::test]
async fn examples_behave_as_webassembly_components() {
    examples_behave(Build::Wasm).await;
}

#[tokio::test]
async fn examples_behave_as_native_libraries() {
    examples_behave(Build::Native).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_parked_requests_are_released_by_one_event() {
    let root = tempfile::tempdir().unwrap();
    let config = plugin_config(root.path(), Build::Wasm).replace(
        "settings = { max_note_bytes = 4096 }",
        "settings = { max_note_bytes = 4096 }\nmax_concurrent_calls = 4",
    );
    let server = TestServer::start(&config).await;
    let a = auth();
    let mut waiters = Vec::new();
    for _ in 0..1000 {
        let mut c = http(&server).await;
        let req = format!(
            "GET /example/notes/todo?wait=60 HTTP/1.1\r\nHost: x\r\nAuthorization: {a}\r\nContent-Length: 0\r\n\r\n"
        );
        c.send_raw(req.as_bytes()).await;
        waiters.push(c);
    }
    // All parked, holding no plugin instance.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = admin(server.admin_addr(), "GET", "/admin/status").await;
        let v: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
        if v["parked_requests"] == 1000 {
            let notes = v["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "notes")
                .unwrap();
            assert!(notes["warm_instances"].as_u64().unwrap() <= 16, "{notes}");
            // The burst of 1,000 took turns on a few instances (max_concurrent_calls = 4
            // below) instead of one each; +1: the instance that type-checked the plugin.
            let created = notes["instances_created"].as_u64().unwrap();
            assert!((1..=5).contains(&created), "{notes}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} parked",
            v["parked_requests"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = get_with(&server, "PUT", "/example/notes/todo", b"bread").await;
    assert_eq!(r.status, 204);
    let answers =
        futures_util::future::join_all(waiters.iter_mut().map(|c| c.read_response())).await;
    for r in answers {
        let r = r.expect("a parked request got no answer");
        assert_eq!((r.status, r.text().as_str()), (200, "bread"));
    }
    server.shutdown().await;
}

async fn get_with(server: &TestServer, method: &str, path: &str, body: &[u8]) -> support::Response {
    http(server)
        .await
        .request(method, path, &[("Authorization", &auth())], body)
        .await
}

#[tokio::test]
async fn parked_requests_time_out_and_a_newer_one_supersedes_the_older() {
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&plugin_config(root.path(), Build::Wasm)).await;
    let r = get(&server, "/example/notes/x?wait=1").await;
    assert_eq!(
        r.status, 204,
        "timeout answer is the plugin's on-timeout response"
    );

    let a = auth();
    let mut older = http(&server).await;
    older
        .send_raw(format!("GET /example/notes/x?wait=60&group=dev1 HTTP/1.1\r\nHost: x\r\nAuthorization: {a}\r\nContent-Length: 0\r\n\r\n").as_bytes())
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut newer = http(&server).await;
    newer
        .send_raw(format!("GET /example/notes/x?wait=60&group=dev1 HTTP/1.1\r\nHost: x\r\nAuthorization: {a}\r\nContent-Length: 0\r\n\r\n").as_bytes())
        .await;
    let r = older.read_response().await.unwrap();
    assert_eq!(r.status, 204, "the older wait of the same device ends");
    get_with(&server, "PUT", "/example/notes/x", b"v2").await;
    let r = newer.read_response().await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "v2"));
    server.shutdown().await;
}

/// Writes note `k` (the event that answers requests parked on it).
async fn put_note_k(server: &TestServer, text: &[u8]) {
    let r = get_with(server, "PUT", "/example/notes/k", text).await;
    assert_eq!(r.status, 204, "PUT /example/notes/k");
}

/// `parked_requests` from `/admin/status` once it equals `n` (bounded wait).
async fn until_parked(server: &TestServer, n: u64) {
    for _ in 0..600 {
        let status = admin(server.admin_addr(), "GET", "/admin/status").await;
        let v: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
        if v["parked_requests"] == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("parked requests never reached {n}");
}

/// A parked request waits outside hyper (`http/detach.rs`): its answer is written by the
/// connection, which then serves the next request — also one the client sent while the first
/// was parked, pipelined — and a client leaving ends the wait.
#[tokio::test]
async fn a_parked_request_is_answered_and_its_connection_serves_on() {
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&plugin_config(root.path(), Build::Wasm)).await;
    let a = auth();
    let wait = |name: &str, extra: &str| {
        format!("GET /example/notes/{name}?wait=60 HTTP/1.1\r\nHost: x\r\nAuthorization: {a}\r\n{extra}Content-Length: 0\r\n\r\n")
    };
    let plain = format!(
        "GET /example/notes/k HTTP/1.1\r\nHost: x\r\nAuthorization: {a}\r\nContent-Length: 0\r\n\r\n"
    );

    // Parked, answered, and the same connection goes on.
    let mut c = http(&server).await;
    c.send_raw(wait("k", "").as_bytes()).await;
    until_parked(&server, 1).await;
    put_note_k(&server, b"one").await;
    let r = c.read_response().await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "one"));
    assert_eq!(r.header("content-length"), Some("3"));
    assert!(r.header("date").is_some());
    let r = call(&mut c, "GET", "/example/notes/k", b"").await;
    assert_eq!((r.status, r.text().as_str()), (200, "one"));

    // A second parked request on that connection, with the next one sent behind it at once.
    c.send_raw(format!("{}{plain}", wait("k", "")).as_bytes())
        .await;
    until_parked(&server, 1).await;
    put_note_k(&server, b"two").await;
    let first = c.read_response().await.unwrap();
    assert_eq!((first.status, first.text().as_str()), (200, "two"));
    let second = c.read_response().await.unwrap();
    assert_eq!((second.status, second.text().as_str()), (200, "two"));

    // Requests that end their connection wait inside hyper, answered just the same.
    let mut closing = http(&server).await;
    closing
        .send_raw(wait("k", "Connection: close\r\n").as_bytes())
        .await;
    let mut old = http(&server).await;
    old.send_raw(wait("k", "").replace("HTTP/1.1", "HTTP/1.0").as_bytes())
        .await;
    until_parked(&server, 2).await;
    put_note_k(&server, b"three").await;
    for conn in [&mut closing, &mut old] {
        let r = conn.read_response().await.unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "three"));
        assert!(conn.closed_within(Duration::from_secs(10)).await);
    }

    // A client that leaves while parked ends its wait.
    let mut gone = http(&server).await;
    gone.send_raw(wait("k", "").as_bytes()).await;
    until_parked(&server, 1).await;
    drop(gone);
    until_parked(&server, 0).await;
    server.shutdown().await;
}

/// The plugin's entry in `/admin/status`.
async fn plugin_status(server: &TestServer, name: &str) -> serde_json::Value {
    let status = admin(server.admin_addr(), "GET", "/admin/status").await;
    let v: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {v}"))
        .clone()
}

fn hostile_config(root: &Path, max_faults: u32) -> String {
    let hostile = install(
        &root.join("hostile"),
        "hostile-frontend",
        Build::Wasm,
        &manifest_of("core/tests/plugins/hostile-frontend/plugin.toml"),
    );
    format!(
        r#"{}
[plugins.hostile]
manifest = {hostile:?}
deadline_ms = 500
memory_mb = 32
max_faults = {max_faults}

[frontends.hostile]
plugin = "hostile"
"#,
        plugin_config(root, Build::Wasm)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_are_contained() {
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&hostile_config(root.path(), 100)).await;
    get_with(&server, "PUT", "/example/notes/n", b"still here").await;

    let check_others = || async {
        let r = get(&server, "/example/notes/n").await;
        assert_eq!((r.status, r.text().as_str()), (200, "still here"));
        let r = get(&server, "/hostile/ok").await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "ok"),
            "the faulting plugin serves again"
        );
    };

    let started = Instant::now();
    let r = get(&server, "/hostile/loop").await;
    assert_eq!(r.status, 504, "{}", r.text());
    // Interrupted by the 500 ms epoch deadline, not by the client or the test's timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    check_others().await;

    let r = get(&server, "/hostile/bomb").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "plugin hostile ran out of memory\n")
    );
    check_others().await;

    for path in ["/hostile/trap", "/hostile/panic"] {
        let r = get(&server, path).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "plugin hostile failed\n"),
            "{path}"
        );
        check_others().await;
    }

    let r = get(&server, "/hostile/kvflood").await;
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(
        r.text()
            .contains("kv quota of plugin hostile is 262144 bytes"),
        "{}",
        r.text()
    );
    let used = server
        .server()
        .shared
        .storage
        .kv_usage_bytes("hostile")
        .await
        .unwrap();
    assert!(used <= 262_144, "quota overrun: {used}");

    let r = get(&server, "/hostile/foreign-event").await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = get(&server, "/hostile/other-mailbox").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text()
            .contains("cannot reach the mailbox of bob@example.com"),
        "{}",
        r.text()
    );

    let h = plugin_status(&server, "hostile").await;
    assert_eq!(h["faults"], 4, "{h}");
    assert_eq!(h["state"], "loaded");
    let metrics = admin(server.admin_addr(), "GET", "/metrics").await.text();
    for kind in ["deadline", "memory", "trap", "panic"] {
        assert!(
            metrics.contains(&format!(
                "switchboard_plugin_traps_total{{plugin=\"hostile\",kind=\"{kind}\"}} 1"
            )),
            "{kind} not counted:\n{}",
            metrics
                .lines()
                .filter(|l| l.contains("traps"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(
        metrics.contains("switchboard_plugin_call_seconds_bucket{plugin=\"notes\""),
        "latency histogram missing"
    );
    assert!(metrics.contains("switchboard_plugin_memory_bytes{plugin=\"notes\"}"));
    server.shutdown().await;
}

/// Overload is not a plugin fault: with every instance slot of the host in use, further calls
/// get 503 "busy" and the plugin stays enabled however many arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_instance_pool_answers_busy_without_disabling_the_plugin() {
    let root = tempfile::tempdir().unwrap();
    // Five slots: three hold the instances the plugins (notes, eml, hostile) were checked with
    // at load, two are left for the requests. One fault would disable hostile
    // (max_faults = 1), so a busy answer counted as a fault would show.
    let config = hostile_config(root.path(), 1).replace("deadline_ms = 500", "deadline_ms = 10000")
        + "\n[plugin_host]\ninstances = 5\n";
    let server = TestServer::start(&config).await;
    // Each call holds its instance across 200 kv reads; twelve at once cannot all get one of
    // the two free slots.
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let server = &server;
            async move { get(server, "/hostile/ok-slow").await }
        })
        .collect();
    let answers = futures_util::future::join_all(calls).await;
    let busy = answers
        .iter()
        .filter(|r| r.status == 503 && r.text() == "plugin hostile is busy, try again\n")
        .count();
    let ok = answers.iter().filter(|r| r.status == 200).count();
    assert!(
        busy >= 1,
        "no call found the pool full: {:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        busy + ok,
        answers.len(),
        "{:?}",
        answers
            .iter()
            .map(|r| (r.status, r.text()))
            .collect::<Vec<_>>()
    );
    // Not disabled, no fault counted, and it serves once the load is gone.
    let r = get(&server, "/hostile/ok").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let h = plugin_status(&server, "hostile").await;
    assert_eq!(
        (h["state"].as_str(), h["faults"].as_u64()),
        (Some("loaded"), Some(0)),
        "{h}"
    );
    let metrics = admin(server.admin_addr(), "GET", "/metrics").await.text();
    assert!(
        metrics.contains("switchboard_plugin_busy_total{plugin=\"hostile\"}"),
        "busy not counted"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_plugin_that_keeps_faulting_is_disabled_until_reload() {
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&hostile_config(root.path(), 3)).await;
    for _ in 0..3 {
        assert_eq!(get(&server, "/hostile/panic").await.status, 500);
    }
    let r = get(&server, "/hostile/ok").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (503, "plugin hostile is disabled\n")
    );
    let h = plugin_status(&server, "hostile").await;
    assert_eq!(h["state"], "disabled", "{h}");
    assert!(
        h["last_fault"]
            .as_str()
            .unwrap()
            .contains("hostile plugin panics on purpose"),
        "{h}"
    );
    // Other plugins are unaffected.
    assert_eq!(get(&server, "/example/notes/").await.status, 200);
    // A reload loads it afresh.
    server.server().shared.reload().await.unwrap();
    assert_eq!(get(&server, "/hostile/ok").await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn reload_disables_and_reenables_a_plugin_frontend() {
    let root = tempfile::tempdir().unwrap();
    let config = plugin_config(root.path(), Build::Wasm);
    let server = TestServer::start(&config).await;
    assert_eq!(get(&server, "/example/notes/").await.status, 200);
    server.write_config(&config.replace(
        "[frontends.notes]\nplugin = \"notes\"",
        "[frontends.notes]\nplugin = \"notes\"\nenabled = false",
    ));
    server.server().shared.reload().await.unwrap();
    assert_eq!(get(&server, "/example/notes/").await.status, 404);
    server.write_config(&config);
    server.server().shared.reload().await.unwrap();
    assert_eq!(get(&server, "/example/notes/").await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn an_ungranted_outbound_connection_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let sneaky = install(
        &root.path().join("sneaky"),
        "hostile-connector",
        Build::Wasm,
        &manifest_of("core/tests/plugins/hostile-connector/plugin.toml"),
    );
    let notes = install(
        &root.path().join("notes"),
        "example-notes-frontend",
        Build::Wasm,
        &manifest_of("examples/notes-frontend/plugin.toml"),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let server = TestServer::start(&format!(
        r#"
[plugins.sneaky]
manifest = {sneaky:?}
settings = {{ target = {target:?} }}

[plugins.notes]
manifest = {notes:?}

[frontends.notes]
plugin = "notes"
"#
    ))
    .await;
    let r = get(&server, "/example/notes/_mail").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text()
            .contains(&format!("{target} is not granted to plugin sneaky")),
        "{}",
        r.text()
    );
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "no connection may have been made"
    );
    server.shutdown().await;
}

async fn start_error(extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.toml");
    std::fs::write(&path, support::base_config(&dir.path().join("data"), extra)).unwrap();
    let settings = switchboard_core::config::load(&switchboard_core::config::ConfigSource {
        path: Some(path),
        env: Default::default(),
    })
    .unwrap_or_else(|e| panic!("config should validate: {e}"));
    match switchboard_core::server::start(settings).await {
        Ok(_) => panic!("a lying plugin was loaded"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn plugins_that_lie_about_their_world_are_refused() {
    let root = tempfile::tempdir().unwrap();
    // A frontend component whose manifest claims it is a mail connector.
    let notes_as_connector = manifest_of("examples/notes-frontend/plugin.toml")
        .replace("world = \"http-frontend\"", "world = \"mail-connector\"")
        .replace("http_paths = [\"/example/notes\"]", "")
        .replace("events = [\"notes\"]", "");
    let m = install(
        &root.path().join("a"),
        "example-notes-frontend",
        Build::Wasm,
        &notes_as_connector,
    );
    let e = start_error(&format!("[plugins.notes]\nmanifest = {m:?}\n")).await;
    assert!(e.contains("plugins.notes: does not match its manifest: the component needs imports the mail-connector world does not offer: component imports instance `switchboard:plugin/mailstore@0.1.0`"), "{e}");

    // A connector (which imports outbound) posing as an HTTP frontend.
    let sneaky_as_frontend = manifest_of("core/tests/plugins/hostile-connector/plugin.toml")
        .replace("world = \"mail-connector\"", "world = \"http-frontend\"")
        .replace("outbound = [\"*:993\"]", "");
    let m = install(
        &root.path().join("b"),
        "hostile-connector",
        Build::Wasm,
        &sneaky_as_frontend,
    );
    let e = start_error(&format!(
        "[plugins.sneaky]\nmanifest = {m:?}\nsettings = {{ target = \"x:1\" }}\n"
    ))
    .await;
    assert!(e.contains("plugins.sneaky: does not match its manifest: the component needs imports the http-frontend world does not offer"), "{e}");

    // A native library whose stamp disagrees with its manifest.
    let m = install(
        &root.path().join("c"),
        "example-notes-frontend",
        Build::Native,
        &notes_as_connector,
    );
    let e = start_error(&format!("[plugins.notes]\nmanifest = {m:?}\n")).await;
    assert!(e.contains("plugins.notes: does not match its manifest: the library implements http-frontend, the manifest says mail-connector"), "{e}");
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk_across_restarts() {
    let root = tempfile::tempdir().unwrap();
    let config = plugin_config(root.path(), Build::Wasm);
    let server = TestServer::start(&config).await;
    let cache = server.dir.path().join("data/plugin-cache");
    let entries = |d: &Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
    assert_eq!(entries(&cache), 2, "one serialized component per plugin");
    let before: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();
    // Reload and a second server on the same data directory reuse the entries.
    server.server().shared.reload().await.unwrap();
    let after: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(get(&server, "/example/notes/").await.status, 200);
    server.shutdown().await;
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

async fn staged_upload_reaches_the_connector_in_chunks(build: Build) {
    let root = tempfile::tempdir().unwrap();
    let sneaky = install(
        &root.path().join("sneaky"),
        "hostile-connector",
        build,
        &manifest_of("core/tests/plugins/hostile-connector/plugin.toml"),
    );
    let notes = install(
        &root.path().join("notes"),
        "example-notes-frontend",
        build,
        &manifest_of("examples/notes-frontend/plugin.toml"),
    );
    let server = TestServer::start(&format!(
        r#"
[http]
https = ["127.0.0.1:0"]
plain = ["127.0.0.1:0"]
max_body_bytes = 16777216

[plugins.sneaky]
manifest = {sneaky:?}
settings = {{ target = "127.0.0.1:993" }}

[plugins.notes]
manifest = {notes:?}

[frontends.notes]
plugin = "notes"
"#
    ))
    .await;
    // 12 MiB: far beyond the 64 KiB handed over inline, read and staged in chunks.
    let message: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let r = get_with(&server, "POST", "/example/notes/_send", &message).await;
    assert_eq!(
        (r.status, r.text()),
        (202, format!("accepted {} bytes", message.len()))
    );
    let sent = server
        .server()
        .shared
        .storage
        .kv_get("sneaky", "sent/alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(sent).unwrap(),
        format!("{} {:016x} 65536", message.len(), fnv1a(&message)),
        "the connector read the whole message, 64 KiB at a time"
    );
    // Over http.max_body_bytes: refused before anything is staged or sent.
    let big = vec![b'x'; 16 * 1024 * 1024 + 1];
    let r = get_with(&server, "POST", "/example/notes/_send", &big).await;
    assert_eq!(r.status, 413);
    server.shutdown().await;
}

#[tokio::test]
async fn staged_uploads_as_webassembly_components() {
    staged_upload_reaches_the_connector_in_chunks(Build::Wasm).await;
}

#[tokio::test]
async fn staged_uploads_as_native_libraries() {
    staged_upload_reaches_the_connector_in_chunks(Build::Native).await;
}

/// Register the example .eml connector as a built-in of this test process, the way the
/// binary registers `local` (an rlib entry, an embedded manifest).
fn register_eml_builtin(manifest: &'static str) {
    switchboard_core::plugins::builtin::register(switchboard_core::plugins::builtin::Builtin {
        name: "eml",
        manifest,
        entry: example_eml_connector::builtin_entry,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_plugins_load_through_the_native_host_path() {
    register_eml_builtin(include_str!("../../examples/eml-connector/plugin.toml"));
    let root = tempfile::tempdir().unwrap();
    let notes = install(
        &root.path().join("notes"),
        "example-notes-frontend",
        Build::Native,
        &manifest_of("examples/notes-frontend/plugin.toml"),
    );
    let maildir = maildir(root.path());
    let server = TestServer::start(&format!(
        r#"
[plugins.notes]
manifest = {notes:?}

[plugins.eml]
manifest = "builtin:eml"
dirs = {{ maildir = {maildir:?} }}

[frontends.notes]
plugin = "notes"
"#
    ))
    .await;
    // Routed to the built-in connector, whose host calls (files, kv) go through the same
    // capability checks as a library's.
    let r = get(&server, "/example/notes/_mail").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("| Lunch?"), "{}", r.text());
    let r = get(&server, "/example/notes/_mail/Inbox/big.eml").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        std::fs::read(root.path().join("maildir/Inbox/big.eml")).unwrap()
    );
    let status = admin(server.admin_addr(), "GET", "/admin/status").await;
    let v: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    let eml = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "eml")
        .cloned()
        .unwrap();
    assert_eq!(eml["artifact"], "builtin", "{eml}");
    assert!(eml["calls"].as_u64().unwrap() >= 2, "{eml}");
    // The default local store gave up "*" to the configured connector.
    assert!(
        !v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "local"),
        "{v}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn builtin_plugins_get_the_stamp_checks_of_libraries() {
    // A built-in whose embedded manifest names another world is refused like a library.
    register_eml_builtin(
        "[plugin]\nname = \"eml\"\nversion = \"0.1.0\"\nworld = \"directory-connector\"\nsdk = \"0.1.0\"\nfile = \"x.so\"\n",
    );
    let e = start_error("[plugins.eml]\nmanifest = \"builtin:eml\"\ndomains = [\"example.com\"]\n")
        .await;
    assert!(
        e.contains("plugins.eml: does not match its manifest: the built-in crate implements mail-connector, the manifest says directory-connector"),
        "{e}"
    );
}

/// Settings, database and plugin set the way `switchboard mail import` builds them.
async fn import_env(
    dir: &Path,
    extra: &str,
) -> (
    switchboard_core::plugins::PluginRuntime,
    switchboard_core::plugins::PluginSet,
    switchboard_storage::Storage,
) {
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, support::base_config(&dir.join("data"), extra)).unwrap();
    let settings = switchboard_core::config::load(&switchboard_core::config::ConfigSource {
        path: Some(path),
        env: Default::default(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let storage = switchboard_core::server::open_storage(&settings)
        .await
        .unwrap();
    let runtime = switchboard_core::plugins::PluginRuntime::new(&settings, storage.clone());
    let set = switchboard_core::plugins::PluginSet::load(&settings, &runtime)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (runtime, set, storage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_mail_is_served_by_the_default_local_store() {
    use switchboard_core::mail_import::{import_file, principal, target, FileError};
    use switchboard_core::plugins::caps::staging::Staging;
    use switchboard_core::plugins::caps::Routes;
    use switchboard_sdk::abi::{MailCall, MailReply};
    use switchboard_sdk::Change;

    let root = tempfile::tempdir().unwrap();
    let (_rt, set, storage) = import_env(root.path(), "").await;
    let mut big =
        b"From: carol@example.com\r\nTo: ann@example.org\r\nSubject: Big one\r\n\r\n".to_vec();
    big.extend((0..3 * 1024 * 1024u32).map(|i| b'a' + (i % 26) as u8));
    let file = root.path().join("big.eml");
    std::fs::write(&file, &big).unwrap();

    let who = principal("ann@Example.ORG").unwrap();
    let t = target(&set, who.clone(), None).await.unwrap();
    assert_eq!(t.folder.name, "Inbox");
    let item = import_file(&set, &t, &file, 64 << 20).await.unwrap();
    assert_eq!(item.size, big.len() as u64);
    assert_eq!(item.subject, "Big one");

    // A client's sync sees it, and its content comes back byte for byte, by ranges.
    let staging = || std::sync::Arc::new(Staging::new(0));
    let page = match set
        .mail(
            MailCall::Sync {
                who: who.clone(),
                folder_id: t.folder.id.clone(),
                state: None,
                max: 100,
            },
            staging(),
            None,
        )
        .await
        .unwrap()
    {
        MailReply::Page(p) => p,
        other => panic!("{other:?}"),
    };
    let ids: Vec<&str> = page
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Added(i) => Some(i.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [item.id.as_str()]);
    let mut back = Vec::new();
    loop {
        let chunk = match set
            .mail(
                MailCall::Fetch {
                    who: who.clone(),
                    item_id: item.id.clone(),
                    part_id: None,
                    offset: back.len() as u64,
                    max: 192 * 1024,
                },
                staging(),
                None,
            )
            .await
            .unwrap()
        {
            MailReply::Chunk(c) => c,
            other => panic!("{other:?}"),
        };
        if chunk.data.is_empty() {
            break;
        }
        back.extend(chunk.data);
    }
    assert_eq!(back, big);
    // Stored in the local store's kv space, counted by the usage counters.
    let used = storage.kv_usage_bytes("local").await.unwrap();
    assert!(used >= big.len() as u64, "{used}");
    assert_eq!(used, storage.kv_usage_recount("local").await.unwrap());

    // Over http.max_body_bytes: refused before the connector sees it.
    let e = import_file(&set, &t, &file, 1 << 20).await.unwrap_err();
    assert!(
        matches!(e, FileError::TooLarge { limit } if limit == 1 << 20),
        "{e}"
    );

    // The admin's kv quota replaces the manifest's: a small one refuses the message.
    let root = tempfile::tempdir().unwrap();
    let (_rt, set, _storage) =
        import_env(root.path(), "[plugins.local]\nkv_quota_bytes = 100000\n").await;
    let t = target(&set, who, None).await.unwrap();
    let e = import_file(&set, &t, &file, 64 << 20).await.unwrap_err();
    assert!(
        matches!(&e, FileError::Connector(switchboard_sdk::Error::Quota(m)) if m.contains("100000")),
        "{e}"
    );
}
