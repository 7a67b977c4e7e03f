//! The local mail store (`plugins/local`) through the real plugin host, on SQLite and on
//! PostgreSQL: property tests of change tracking with restarts (the plugin set reloaded from
//! the same database), two writers committing into one folder while a reader syncs, and the
//! WebAssembly build end to end.
//!
//! PostgreSQL: the server on 127.0.0.1:5432 or a throwaway one (see
//! `core/storage/tests/support/pg.rs`); each test creates and drops its own database.

#[allow(dead_code)]
#[path = "../storage/tests/support/pg.rs"]
mod pg;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use support::plugins::{install, manifest_of, Build};
use switchboard_core::config::{load, ConfigSource};
use switchboard_core::plugins::caps::events::WaitOutcome;
use switchboard_core::plugins::caps::staging::Staging;
use switchboard_core::plugins::{PluginRuntime, PluginSet};
use switchboard_sdk::abi::{MailCall, MailReply};
use switchboard_sdk::{Change, Error, FolderKind, ItemSummary, Principal};
use switchboard_storage::Storage;

/// The local store loaded by the plugin host over one database.
struct Store {
    set: PluginSet,
    _runtime: PluginRuntime,
    config: std::path::PathBuf,
}

fn manifest(build: Build) -> &'static str {
    match build {
        Build::Wasm => "plugins/local/plugin.toml",
        Build::Native => "plugins/local/plugin-native.toml",
    }
}

/// Write a config for `db_url` with the local store in `build`, and load it.
async fn open(dir: &Path, db_url: &str, build: Build) -> Store {
    let config = dir.join(format!("switchboard-{build:?}.toml"));
    if !config.exists() {
        let plugin = install(
            &dir.join(format!("local-{build:?}")),
            "switchboard-local",
            build,
            &manifest_of(manifest(build)),
        );
        let text = support::base_config(
            &dir.join("data"),
            &format!(
                r#"
[database]
url = {db_url:?}

[plugins.local]
manifest = {plugin:?}
domains = ["*"]
"#
            ),
        );
        std::fs::write(&config, text).unwrap();
    }
    reopen(&config).await
}

/// Load the plugin set afresh from a config (a restart, as far as the store can tell).
async fn reopen(config: &Path) -> Store {
    let settings = load(&ConfigSource {
        path: Some(config.to_path_buf()),
        env: BTreeMap::new(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let storage = Storage::connect(&settings.database_url, 8).await.unwrap();
    storage.migrate().await.unwrap();
    let runtime = PluginRuntime::new(&settings, storage);
    let set = PluginSet::load(&settings, &runtime)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Store {
        set,
        _runtime: runtime,
        config: config.to_path_buf(),
    }
}

impl Store {
    async fn restart(self) -> Store {
        let config = self.config.clone();
        drop(self);
        reopen(&config).await
    }

    async fn call(&self, call: MailCall, staging: Arc<Staging>) -> Result<MailReply, Error> {
        self.set
            .get("local")
            .unwrap()
            .mail(call, staging, None)
            .await
    }

    async fn mail(&self, call: MailCall) -> Result<MailReply, Error> {
        self.call(call, Arc::new(Staging::new(1 << 30))).await
    }

    async fn create(&self, who: &Principal, folder: &str, content: &[u8]) -> ItemSummary {
        let staging = Arc::new(Staging::new(1 << 30));
        let id = staging.create().unwrap();
        staging.append(id, content).unwrap();
        let call = MailCall::CreateItem {
            who: who.clone(),
            folder_id: folder.into(),
            content: id,
        };
        match self.call(call, staging).await {
            Ok(MailReply::Item(s)) => s,
            other => panic!("create_item: {other:?}"),
        }
    }

    async fn sync(
        &self,
        who: &Principal,
        folder: &str,
        state: Option<&str>,
        max: u32,
    ) -> Result<(Vec<Change>, String, bool), Error> {
        let call = MailCall::Sync {
            who: who.clone(),
            folder_id: folder.into(),
            state: state.map(Into::into),
            max,
        };
        match self.mail(call).await? {
            MailReply::Page(p) => Ok((p.changes, p.state, p.more)),
            other => panic!("sync: {other:?}"),
        }
    }

    async fn unit(&self, call: MailCall) {
        match self.mail(call).await {
            Ok(MailReply::Unit) => {}
            other => panic!("{other:?}"),
        }
    }
}

/// A client's copy of a folder.
#[derive(Debug, Clone, Default)]
struct Replica {
    state: Option<String>,
    items: BTreeMap<String, ItemSummary>,
}

impl Replica {
    fn apply(&mut self, changes: &[Change]) {
        let mut seen = BTreeSet::new();
        for c in changes {
            match c {
                Change::Added(s) => {
                    assert!(seen.insert(s.id.clone()), "twice in a page: {}", s.id);
                    assert!(
                        self.items.insert(s.id.clone(), s.clone()).is_none(),
                        "added twice: {}",
                        s.id
                    );
                }
                Change::Changed(s) => {
                    assert!(seen.insert(s.id.clone()), "twice in a page: {}", s.id);
                    assert!(
                        self.items.insert(s.id.clone(), s.clone()).is_some(),
                        "changed unknown {}",
                        s.id
                    );
                }
                Change::Deleted(id) => {
                    assert!(seen.insert(id.clone()), "twice in a page: {id}");
                    assert!(self.items.remove(id).is_some(), "deleted unknown {id}");
                }
            }
        }
    }

    async fn page(&mut self, store: &Store, who: &Principal, folder: &str, max: u32) -> bool {
        let (changes, state, more) = store
            .sync(who, folder, self.state.as_deref(), max)
            .await
            .unwrap();
        assert!(changes.len() <= max as usize);
        self.apply(&changes);
        self.state = Some(state);
        more
    }

    async fn sync_to_end(&mut self, store: &Store, who: &Principal, folder: &str, max: u32) {
        while self.page(store, who, folder, max).await {}
    }
}

/// What a brand-new client sees: the folder's contents.
async fn contents(store: &Store, who: &Principal, folder: &str) -> BTreeMap<String, ItemSummary> {
    let mut r = Replica::default();
    r.sync_to_end(store, who, folder, 1000).await;
    r.items
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize),
    Flag(usize, bool),
    Move(usize, usize),
    Delete(usize),
    Sync(usize, u32),
    Replay(usize, usize),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize).prop_map(Op::Add),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Op::Flag(i, b)),
        1 => (any::<usize>(), 0..2usize).prop_map(|(i, f)| Op::Move(i, f)),
        1 => any::<usize>().prop_map(Op::Delete),
        3 => (0..2usize, 1..4u32).prop_map(|(c, m)| Op::Sync(c, m)),
        1 => (0..2usize, 1..3usize).prop_map(|(c, b)| Op::Replay(c, b)),
        1 => Just(Op::Restart),
    ]
}

/// One property case on a fresh mailbox of `store`'s database.
async fn run_case(mut store: Store, who: &Principal, ops: Vec<Op>) -> Store {
    let folder = match store
        .mail(MailCall::CreateFolder {
            who: who.clone(),
            parent_id: String::new(),
            name: "Archive".into(),
            kind: FolderKind::UserMail,
        })
        .await
    {
        Ok(MailReply::Folder(f)) => f.id,
        other => panic!("{other:?}"),
    };
    let folders = ["inbox".to_string(), folder];
    let mut history: Vec<Vec<Replica>> = vec![vec![Replica::default()]; 2];
    let mut live: Vec<String> = Vec::new();
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Add(f) => {
                let s = store
                    .create(
                        who,
                        &folders[f],
                        format!("Subject: m{n}\r\n\r\nbody\r\n").as_bytes(),
                    )
                    .await;
                live.push(s.id);
            }
            Op::Flag(i, v) if !live.is_empty() => {
                let id = live[i % live.len()].clone();
                store
                    .unit(MailCall::SetFlags {
                        who: who.clone(),
                        item_id: id,
                        read: Some(v),
                        flagged: Some(!v),
                    })
                    .await;
            }
            Op::Move(i, f) if !live.is_empty() => {
                let k = i % live.len();
                let call = MailCall::MoveItem {
                    who: who.clone(),
                    item_id: live[k].clone(),
                    to_folder_id: folders[f].clone(),
                };
                match store.mail(call).await {
                    Ok(MailReply::Id(id)) => live[k] = id,
                    other => panic!("{other:?}"),
                }
            }
            Op::Delete(i) if !live.is_empty() => {
                let id = live.remove(i % live.len());
                store
                    .unit(MailCall::DeleteItem {
                        who: who.clone(),
                        item_id: id,
                    })
                    .await;
            }
            Op::Sync(c, max) => {
                let mut r = history[c].last().cloned().unwrap_or_default();
                if !r.page(&store, who, &folders[c], max).await {
                    assert_eq!(r.items, contents(&store, who, &folders[c]).await);
                }
                history[c].push(r);
            }
            Op::Replay(c, back) => {
                let keep = history[c].len().saturating_sub(back).max(1);
                history[c].truncate(keep);
                let mut r = history[c].last().cloned().unwrap_or_default();
                r.sync_to_end(&store, who, &folders[c], 2).await;
                assert_eq!(r.items, contents(&store, who, &folders[c]).await);
                history[c].push(r);
            }
            Op::Restart => store = store.restart().await,
            _ => {}
        }
    }
    let mut all = Vec::new();
    for c in 0..2 {
        let mut r = history[c].last().cloned().unwrap_or_default();
        r.sync_to_end(&store, who, &folders[c], 3).await;
        let now = contents(&store, who, &folders[c]).await;
        assert_eq!(r.items, now);
        all.extend(now.into_keys());
    }
    all.sort();
    live.sort();
    assert_eq!(all, live);
    store
}

/// A temp directory for SQLite databases: in /dev/shm where there is one (every commit is
/// an fsync; on tmpfs that costs nothing, and these tests commit thousands of times).
fn db_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Run the property on one database: every case gets its own mailbox.
fn property_on(db_url: &str, dir: &Path, cases: u32) {
    let rt = runtime();
    let store = std::cell::RefCell::new(Some(rt.block_on(open(dir, db_url, Build::Native))));
    let case = std::cell::Cell::new(0u32);
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..30))| {
        case.set(case.get() + 1);
        let who = Principal::parse(&format!("user{}@example.com", case.get())).unwrap();
        let s = store.borrow_mut().take().unwrap();
        let s = rt.block_on(run_case(s, &who, ops));
        *store.borrow_mut() = Some(s);
    });
}

#[test]
fn change_tracking_property_on_sqlite() {
    let dir = db_dir();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sb.db").display());
    property_on(&url, dir.path(), 16);
}

#[test]
fn change_tracking_property_on_postgres() {
    let rt = runtime();
    let db = rt.block_on(pg::PgDatabase::create()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    property_on(db.url(), dir.path(), 8);
    drop(rt);
}

/// Two writers commit into one folder while a reader syncs with small pages.
async fn concurrent_writers_and_a_reader(db_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), db_url, Build::Native).await);
    let who = Principal::parse("busy@example.com").unwrap();
    const PER_WRITER: usize = 24;
    let writer = |w: usize| {
        let store = store.clone();
        let who = who.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..PER_WRITER {
                let s = store
                    .create(
                        &who,
                        "inbox",
                        format!("Subject: w{w} {i}\r\n\r\nx\r\n").as_bytes(),
                    )
                    .await;
                mine.push(s.id.clone());
                if i % 3 == 0 {
                    let id = mine[i / 2].clone();
                    store
                        .unit(MailCall::SetFlags {
                            who: who.clone(),
                            item_id: id,
                            read: Some(true),
                            flagged: Some(i % 2 == 0),
                        })
                        .await;
                }
                if i % 4 == 3 {
                    let id = mine.remove(0);
                    store
                        .unit(MailCall::DeleteItem {
                            who: who.clone(),
                            item_id: id,
                        })
                        .await;
                }
            }
            mine
        })
    };
    let (a, b) = (writer(0), writer(1));
    let mut reader = Replica::default();
    let mut pages = 0;
    while !(a.is_finished() && b.is_finished()) {
        reader.page(&store, &who, "inbox", 3).await;
        pages += 1;
        tokio::task::yield_now().await;
    }
    let mut live = a.await.unwrap();
    live.extend(b.await.unwrap());
    reader.sync_to_end(&store, &who, "inbox", 3).await;
    let now = contents(&store, &who, "inbox").await;
    assert_eq!(reader.items, now, "after {pages} pages during the writes");
    let mut ids: Vec<String> = now.into_keys().collect();
    ids.sort();
    live.sort();
    assert_eq!(ids, live, "exactly the items the writers left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_sqlite() {
    let dir = db_dir();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sb.db").display());
    concurrent_writers_and_a_reader(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_postgres() {
    let db = pg::PgDatabase::create().await.unwrap();
    concurrent_writers_and_a_reader(db.url()).await;
}

/// The WebAssembly build: items, attachments by range, delivery with an event, restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webassembly_build_stores_syncs_and_delivers() {
    let dir = db_dir();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sb.db").display());
    let store = open(dir.path(), &url, Build::Wasm).await;
    let alice = Principal::parse("alice@example.com").unwrap();
    let bob = Principal::parse("bob@example.com").unwrap();
    let eml = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins/local/tests/fixtures/attachment.eml"),
    )
    .unwrap();
    let s = store.create(&alice, "inbox", &eml).await;
    assert_eq!(s.subject, "Q1 report");
    assert_eq!(s.attachments[0].file_name, "Q1 report.pdf");
    let pdf = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins/local/tests/fixtures/attachment.pdf.bin"),
    )
    .unwrap();
    let fetch = MailCall::Fetch {
        who: alice.clone(),
        item_id: s.id.clone(),
        part_id: Some("1".into()),
        offset: 10,
        max: 100,
    };
    match store.mail(fetch).await {
        Ok(MailReply::Chunk(c)) => {
            assert_eq!(c.data, &pdf[10..110]);
            assert_eq!(c.total, pdf.len() as u64);
        }
        other => panic!("{other:?}"),
    }
    let (changes, state, more) = store.sync(&alice, "inbox", None, 10).await.unwrap();
    assert_eq!((changes.len(), more), (1, false));

    // Delivery to bob wakes a request parked on his inbox.
    let hub = store._runtime.hub.clone();
    let parked = tokio::spawn(async move {
        let keys = ["mailbox:bob@example.com/inbox".to_string()];
        hub.wait(&keys, std::time::Duration::from_secs(60), None)
            .await
    });
    while store._runtime.hub.parked() == 0 {
        tokio::task::yield_now().await;
    }
    let staging = Arc::new(Staging::new(1 << 20));
    let up = staging.create().unwrap();
    staging
        .append(
            up,
            b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n",
        )
        .unwrap();
    let send = MailCall::Send {
        who: alice.clone(),
        mime: up,
        save_copy: true,
    };
    assert!(matches!(
        store.call(send, staging).await,
        Ok(MailReply::Unit)
    ));
    assert_eq!(contents(&store, &bob, "inbox").await.len(), 1);
    assert_eq!(contents(&store, &alice, "sent").await.len(), 1);
    match parked.await.unwrap() {
        WaitOutcome::Fired(keys) => assert_eq!(keys, ["mailbox:bob@example.com/inbox"]),
        other => panic!("{other:?}"),
    }

    // A restart loses nothing: the old state is still valid and sees nothing new.
    let store = store.restart().await;
    let (changes, again, _) = store.sync(&alice, "inbox", Some(&state), 10).await.unwrap();
    assert!(changes.is_empty());
    assert_eq!(again, state);
    let bad = store
        .sync(&alice, "inbox", Some("12345-deadbeef"), 10)
        .await;
    assert!(matches!(bad, Err(Error::Invalid(_))), "{bad:?}");
}
