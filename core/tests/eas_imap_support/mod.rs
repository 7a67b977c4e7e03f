//! Shared by the ActiveSync-through-IMAP test (`core/tests/eas_imap.rs`) and benchmark
//! (`core/benches/eas_imap_sync.rs`): the server set up with the imap connector for
//! `scalix.test`, and a phone speaking WBXML (protocol 14.1) over plain HTTP with Basic auth.
//! Expects the including crate to have `mod support` (core/tests/support) and `mod
//! imap_support` (plugins/imap/tests/support) at its root.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use switchboard_wbxml::tags::{
    airsync as a, airsyncbase as asb, folderhierarchy as fh, provision as p, settings as s,
};
use switchboard_wbxml::{decode, element, Element};
use tokio::net::TcpStream;

use crate::imap_support::dovecot::{MASTER_PASSWORD, MASTER_USER, PASSWORD};
use crate::support::plugins::{install_with, manifest_of, Build};
use crate::support::{basic, Conn, Response, TestServer};

/// The user the tests and the benchmark sync as (also a Dovecot user).
pub const ALICE: &str = "alice@scalix.test";
/// Another Dovecot user of the domain, unknown to the core.
pub const BOB: &str = "bob@scalix.test";

/// The imap connector installed in `dir` (debug build, as the other plugin tests use).
/// `release`: an optimised build (benchmarks).
pub fn imap_manifest(dir: &Path, release: bool) -> std::path::PathBuf {
    install_with(
        &dir.join("imap"),
        "switchboard-imap",
        Build::Native,
        &manifest_of("plugins/imap/plugin.toml"),
        release,
    )
}

/// Server config: `scalix.test` served by the imap connector with `settings` (a TOML inline
/// table body), ActiveSync by the built-in plugin.
pub fn config(manifest: &Path, settings: &str) -> String {
    format!(
        r#"
[plugins.imap]
manifest = {manifest:?}
domains = ["scalix.test"]
settings = {{ {settings} }}

[plugins.eas]
manifest = "builtin:eas"

[frontends.eas]
plugin = "eas"
"#
    )
}

/// Connector settings for a Dovecot on `port` (plain IMAP on loopback, master user).
pub fn imap_settings(port: u16) -> String {
    format!(
        "host = \"127.0.0.1\", port = {port}, tls = \"none\", master_user = \"{MASTER_USER}\", \
         master_password = \"{MASTER_PASSWORD}\", timeout_secs = 10"
    )
}

/// Start the server and add the domain and Alice (same password as on Dovecot).
pub async fn server(root: &Path, settings: &str, release: bool) -> Result<TestServer> {
    let server = TestServer::start(&config(&imap_manifest(root, release), settings)).await;
    let storage = &server.server().shared.storage;
    storage.add_domain("scalix.test").await?;
    storage
        .add_user(ALICE, PASSWORD, Some("Alice Scalix"))
        .await?;
    Ok(server)
}

/// A phone: one device of one user, speaking protocol 14.1 over plain HTTP.
#[derive(Clone)]
pub struct Phone {
    pub addr: SocketAddr,
    pub user: String,
    pub password: String,
    pub device: String,
    pub policy_key: Option<String>,
}

impl Phone {
    pub fn new(server: &TestServer, user: &str, password: &str, device: &str) -> Phone {
        Phone {
            addr: server.http_addr(),
            user: user.into(),
            password: password.into(),
            device: device.into(),
            policy_key: None,
        }
    }

    /// POST a command (a fresh connection each time: the tests restart backends in between).
    pub async fn post(&self, cmd: &str, body: &[u8]) -> Result<Response> {
        let mut c = Conn::new(TcpStream::connect(self.addr).await?);
        let path = format!(
            "/Microsoft-Server-ActiveSync?Cmd={cmd}&User={}&DeviceId={}&DeviceType=SmartPhone",
            self.user, self.device
        );
        let auth = basic(&self.user, &self.password);
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("MS-ASProtocolVersion", "14.1"),
            ("Content-Type", "application/vnd.ms-sync.wbxml"),
            ("User-Agent", "switchboard-test/1.0"),
        ];
        if let Some(k) = &self.policy_key {
            headers.push(("X-MS-PolicyKey", k));
        }
        Ok(c.request("POST", &path, &headers, body).await)
    }

    /// POST a command document; the decoded answer, `None` for an empty 200 (nothing new).
    pub async fn cmd(&self, cmd: &str, doc: &Element) -> Result<Option<Element>> {
        let r = self.post(cmd, &doc.to_wbxml()?).await?;
        ensure!(
            r.status == 200,
            "{cmd}: HTTP {} {:?} {}",
            r.status,
            r.headers,
            r.text()
        );
        if r.body.is_empty() {
            return Ok(None);
        }
        Ok(Some(decode(&r.body)?))
    }

    /// The two-phase Provision of [MS-ASPROV]; keeps the final policy key.
    pub async fn provision(&mut self) -> Result<()> {
        let ask = element!(p::Provision [
            element!(s::DeviceInformation [element!(s::Set [
                element!(s::Model = "Test Phone"),
                element!(s::FriendlyName = "Alice's phone"),
            ])]),
            element!(p::Policies [element!(p::Policy [element!(p::PolicyType = "MS-EAS-Provisioning-WBXML")])]),
        ]);
        let d = self
            .cmd("Provision", &ask)
            .await?
            .context("empty Provision")?;
        let temp = policy_key(&d)?;
        self.policy_key = Some(temp.clone());
        let ack = element!(
            p::Provision[element!(
                p::Policies[element!(p::Policy [
                    element!(p::PolicyType = "MS-EAS-Provisioning-WBXML"),
                    element!(p::PolicyKey = temp),
                    element!(p::Status = "1"),
                ])]
            )]
        );
        let d = self
            .cmd("Provision", &ack)
            .await?
            .context("empty Provision")?;
        self.policy_key = Some(policy_key(&d)?);
        Ok(())
    }

    /// FolderSync from 0: (ServerId, DisplayName, Type) of every folder.
    pub async fn folders(&self) -> Result<Vec<(String, String, u8)>> {
        let d = self
            .cmd(
                "FolderSync",
                &element!(fh::FolderSync[element!(fh::SyncKey = "0")]),
            )
            .await?
            .context("empty FolderSync")?;
        ensure!(d.child_text("Status") == Some("1"), "FolderSync: {d}");
        let changes = d.child("Changes").context("no Changes")?;
        changes
            .children_named("Add")
            .map(|f| {
                Ok((
                    f.child_text("ServerId").context("ServerId")?.to_string(),
                    f.child_text("DisplayName").context("name")?.to_string(),
                    f.child_text("Type").context("Type")?.parse()?,
                ))
            })
            .collect()
    }

    /// The ServerId of the folder of EAS type `kind` (2 Inbox, 4 Deleted Items, 5 Sent).
    pub async fn folder(&self, kind: u8) -> Result<String> {
        self.folders()
            .await?
            .into_iter()
            .find(|f| f.2 == kind)
            .map(|f| f.0)
            .with_context(|| format!("no folder of type {kind}"))
    }

    /// The ServerId of the folder named `name`.
    pub async fn folder_named(&self, name: &str) -> Result<String> {
        self.folders()
            .await?
            .into_iter()
            .find(|f| f.1 == name)
            .map(|f| f.0)
            .with_context(|| format!("no folder named {name}"))
    }

    /// One Sync of one collection; `extra` goes into the Collection (WindowSize, Commands…).
    pub async fn sync(&self, key: &str, collection: &str, extra: Vec<Element>) -> Result<Page> {
        let mut col = element!(a::Collection [
            element!(a::SyncKey = key),
            element!(a::CollectionId = collection),
        ]);
        for e in extra {
            col.push(e);
        }
        let doc = element!(a::Sync[element!(a::Collections[col])]);
        match self.cmd("Sync", &doc).await? {
            None => Ok(Page::nothing(key)),
            Some(d) => Page::parse(&d),
        }
    }

    /// Sync until no more is available, from `key`; the last key and everything seen.
    pub async fn sync_all(&self, key: &str, collection: &str) -> Result<(String, Page)> {
        let mut all = Page::nothing(key);
        let mut key = key.to_string();
        for _ in 0..1000 {
            let page = self.sync(&key, collection, window()).await?;
            ensure!(page.status == "1", "Sync status {}", page.status);
            key = page.key.clone();
            all.adds.extend(page.adds);
            all.changes.extend(page.changes);
            all.deletes.extend(page.deletes);
            if !page.more {
                all.key = key.clone();
                return Ok((key, all));
            }
        }
        bail!("Sync never ended")
    }
}

/// What a phone sends with each Sync: a window of 100 and plain-text bodies truncated to
/// 500 bytes (so the plugin reads only the start of each message).
pub fn window() -> Vec<Element> {
    vec![
        element!(a::WindowSize = "100"),
        element!(a::Options [
            element!(a::FilterType = "0"),
            element!(asb::BodyPreference [
                element!(asb::Type = "1"),
                element!(asb::TruncationSize = "500"),
            ]),
        ]),
    ]
}

pub fn policy_key(d: &Element) -> Result<String> {
    Ok(d.child("Policies")
        .and_then(|x| x.child("Policy"))
        .and_then(|x| x.child_text("PolicyKey"))
        .with_context(|| format!("no PolicyKey in {d}"))?
        .to_string())
}

/// What one Sync answered for one collection.
#[derive(Debug, Default)]
pub struct Page {
    pub key: String,
    pub status: String,
    pub adds: Vec<Element>,
    pub changes: Vec<Element>,
    pub deletes: Vec<String>,
    pub more: bool,
}

impl Page {
    /// The empty answer: nothing changed, the key stays.
    pub fn nothing(key: &str) -> Page {
        Page {
            key: key.into(),
            status: "1".into(),
            ..Page::default()
        }
    }

    pub fn parse(d: &Element) -> Result<Page> {
        let Some(col) = d.child("Collections").and_then(|c| c.child("Collection")) else {
            // A whole-request failure: <Sync><Status>…</Status></Sync>.
            return Ok(Page {
                status: d.child_text("Status").unwrap_or("?").into(),
                ..Page::default()
            });
        };
        let mut page = Page {
            key: col.child_text("SyncKey").unwrap_or_default().into(),
            status: col.child_text("Status").unwrap_or_default().into(),
            more: col.child("MoreAvailable").is_some(),
            ..Page::default()
        };
        if let Some(cmds) = col.child("Commands") {
            for c in cmds.elements() {
                match c.name() {
                    "Add" => page.adds.push(c.clone()),
                    "Change" => page.changes.push(c.clone()),
                    "Delete" | "SoftDelete" => page
                        .deletes
                        .push(c.child_text("ServerId").unwrap_or_default().into()),
                    other => bail!("unexpected command {other}: {c}"),
                }
            }
        }
        Ok(page)
    }

    pub fn subjects(&self) -> Vec<String> {
        self.adds
            .iter()
            .filter_map(|e| e.child("ApplicationData")?.child_text("Subject"))
            .map(str::to_string)
            .collect()
    }
}

/// The IMAP UID inside a connector item id (`{UIDVALIDITY}.{UID}.{folder}`).
pub fn uid(server_id: &str) -> &str {
    server_id.split('.').nth(1).unwrap_or("?")
}

pub fn server_id(e: &Element) -> String {
    e.child_text("ServerId").unwrap_or_default().to_string()
}
