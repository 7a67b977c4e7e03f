//! Helpers shared by the MockHost tests: a mailbox owner, calls under the mock, and a client
//! replica built from sync pages.
#![allow(dead_code)]

use std::collections::BTreeMap;

use switchboard_local::Local;
use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::mock::MockHost;
use switchboard_sdk::{Change, ItemSummary, MailConnector, Principal, Result};

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn alice() -> Principal {
    Principal::parse("alice@example.com").unwrap()
}

pub fn bob() -> Principal {
    Principal::parse("bob@example.com").unwrap()
}

/// A store on a mock host.
pub struct Env {
    pub host: MockHost,
}

impl Env {
    pub fn new() -> Env {
        Env {
            host: MockHost::new(),
        }
    }

    pub fn with(host: MockHost) -> Env {
        Env { host }
    }

    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        self.host.run(f)
    }

    pub fn create(&self, who: &Principal, folder: &str, content: &[u8]) -> Result<ItemSummary> {
        self.run(|| Local::create_item(who, folder, Upload::from_bytes(content)?))
    }

    pub fn replace(&self, who: &Principal, id: &str, content: &[u8]) -> Result<ItemSummary> {
        self.run(|| Local::replace_item(who, id, Upload::from_bytes(content)?))
    }

    pub fn send(&self, who: &Principal, mime: &[u8], save_copy: bool) -> Result<()> {
        self.run(|| Local::send(who, Upload::from_bytes(mime)?, save_copy))
    }

    /// The whole content (or part), fetched in pieces of `step`.
    pub fn fetch_all(
        &self,
        who: &Principal,
        id: &str,
        part: Option<&str>,
        step: u32,
    ) -> Result<Vec<u8>> {
        self.run(|| {
            let mut out = Vec::new();
            loop {
                let c = Local::fetch(who, id, part, out.len() as u64, step)?;
                assert!(c.data.len() <= step as usize);
                out.extend_from_slice(&c.data);
                if c.data.is_empty() || out.len() as u64 >= c.total {
                    assert_eq!(out.len() as u64, c.total);
                    return Ok(out);
                }
            }
        })
    }

    /// Every live item of a folder, through a fresh full sync.
    pub fn contents(&self, who: &Principal, folder: &str) -> BTreeMap<String, ItemSummary> {
        let mut r = Replica::default();
        r.sync_to_end(self, who, folder, 1000);
        r.items
    }
}

/// A client's copy of one folder, built from sync pages.
#[derive(Debug, Clone, Default)]
pub struct Replica {
    pub state: Option<String>,
    pub items: BTreeMap<String, ItemSummary>,
}

impl Replica {
    /// Apply one page; panics on anything a correct server never sends.
    pub fn apply(&mut self, changes: &[Change]) {
        let mut seen = std::collections::BTreeSet::new();
        for c in changes {
            let id = match c {
                Change::Added(s) | Change::Changed(s) => s.id.clone(),
                Change::Deleted(id) => id.clone(),
            };
            assert!(
                seen.insert(id.clone()),
                "{id} twice in one page: {changes:?}"
            );
            match c {
                Change::Added(s) => {
                    assert!(
                        self.items.insert(s.id.clone(), s.clone()).is_none(),
                        "added twice: {id}"
                    );
                }
                Change::Changed(s) => {
                    assert!(
                        self.items.insert(s.id.clone(), s.clone()).is_some(),
                        "changed unknown {id}"
                    );
                }
                Change::Deleted(id) => {
                    assert!(self.items.remove(id).is_some(), "deleted unknown {id}");
                }
            }
        }
    }

    /// One page; returns `more`.
    pub fn sync_page(&mut self, env: &Env, who: &Principal, folder: &str, max: u32) -> bool {
        let page = env
            .run(|| Local::sync(who, folder, self.state.as_deref(), max))
            .unwrap();
        assert!(page.changes.len() <= max.max(1) as usize);
        self.apply(&page.changes);
        self.state = Some(page.state);
        page.more
    }

    pub fn sync_to_end(&mut self, env: &Env, who: &Principal, folder: &str, max: u32) {
        for _ in 0..100_000 {
            if !self.sync_page(env, who, folder, max) {
                return;
            }
        }
        panic!("sync never ended");
    }
}
