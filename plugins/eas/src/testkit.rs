//! Test support: an in-memory mail connector (state in its own mock host's kv, like a real
//! connector), a device that provisions itself, and request helpers.

use serde::{Deserialize, Serialize};
use switchboard_sdk::host::{kv, staging::Upload};
use switchboard_sdk::http::Response;
use switchboard_sdk::mock::MockHost;
use switchboard_sdk::{
    Attachment, Change, Chunk, Error, Folder, FolderKind, ItemClass, ItemSummary, MailConnector,
    Principal, Result, SyncPage,
};
use switchboard_wbxml::{decode, Element};

use crate::tests::{request, response};
use crate::Eas;

/// An item with its content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub summary: ItemSummary,
    #[serde(with = "serde_bytes_compat")]
    pub content: Vec<u8>,
}

mod serde_bytes_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

/// The in-memory connector.
#[derive(Debug)]
pub struct MemStore;

fn get<T: for<'de> Deserialize<'de> + Default>(k: &str) -> T {
    kv::get(k)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn put<T: Serialize>(k: &str, v: &T) {
    kv::set(k, &serde_json::to_vec(v).unwrap()).unwrap();
}

fn items(folder: &str) -> Vec<Stored> {
    get(&format!("items/{folder}"))
}

fn log(folder: &str) -> Vec<Change> {
    get(&format!("log/{folder}"))
}

fn record(folder: &str, c: Change) {
    let mut l = log(folder);
    l.push(c);
    put(&format!("log/{folder}"), &l);
}

fn find(item_id: &str) -> Option<(String, usize, Stored)> {
    let folders: Vec<Folder> = get("folders");
    for f in folders {
        if let Some(i) = items(&f.id).iter().position(|s| s.summary.id == item_id) {
            return Some((f.id.clone(), i, items(&f.id)[i].clone()));
        }
    }
    None
}

impl MemStore {
    /// A mailbox with Inbox, Drafts, Sent, Trash, Calendar and Contacts.
    pub fn seed() {
        let f = |id: &str, kind| Folder {
            id: id.into(),
            parent_id: String::new(),
            name: id.into(),
            kind,
        };
        put(
            "folders",
            &vec![
                f("INBOX", FolderKind::Inbox),
                f("Drafts", FolderKind::Drafts),
                f("Sent", FolderKind::Sent),
                f("Trash", FolderKind::Deleted),
                f("Calendar", FolderKind::Calendar),
                f("Contacts", FolderKind::Contacts),
            ],
        );
    }

    /// Add a folder directly (as another client would).
    pub fn add_folder(id: &str, parent: &str, kind: FolderKind) {
        let mut fs: Vec<Folder> = get("folders");
        fs.push(Folder {
            id: id.into(),
            parent_id: parent.into(),
            name: id.rsplit('/').next().unwrap_or(id).into(),
            kind,
        });
        put("folders", &fs);
    }

    /// Deliver a message.
    pub fn deliver(folder: &str, id: &str, subject: &str, mime: &str, ts: i64) {
        let summary = ItemSummary {
            id: id.into(),
            folder_id: folder.into(),
            class: ItemClass::Email,
            size: mime.len() as u64,
            timestamp_ms: ts,
            subject: subject.into(),
            sender: "Bob <bob@example.com>".into(),
            read: false,
            flagged: false,
            attachments: if mime.contains("Content-Disposition: attachment") {
                vec![Attachment {
                    part_id: "2".into(),
                    file_name: "report.pdf".into(),
                    content_type: "application/pdf".into(),
                    size: 1234,
                }]
            } else {
                vec![]
            },
        };
        let mut its = items(folder);
        its.push(Stored {
            summary: summary.clone(),
            content: mime.as_bytes().to_vec(),
        });
        put(&format!("items/{folder}"), &its);
        record(folder, Change::Added(summary));
    }

    /// Every item of a folder.
    #[allow(dead_code)]
    pub fn items(folder: &str) -> Vec<Stored> {
        items(folder)
    }

    /// The folders.
    pub fn list() -> Vec<Folder> {
        get("folders")
    }

    /// The messages sent so far.
    #[allow(dead_code)]
    pub fn sent() -> Vec<String> {
        get("sent")
    }
}

impl MailConnector for MemStore {
    fn list_folders(_who: &Principal) -> Result<Vec<Folder>> {
        Ok(get("folders"))
    }

    fn sync(_who: &Principal, folder_id: &str, state: Option<&str>, max: u32) -> Result<SyncPage> {
        let folders: Vec<Folder> = get("folders");
        if !folders.iter().any(|f| f.id == folder_id) {
            return Err(Error::NotFound(folder_id.into()));
        }
        // Every item's addition is in the log: a sync from nothing is the log from 0.
        let n: usize = match state {
            None => 0,
            Some(s) => s.parse().map_err(|_| Error::Invalid("state".into()))?,
        };
        let all = log(folder_id);
        if n > all.len() {
            return Err(Error::Invalid("state from the future".into()));
        }
        let max = max as usize;
        let rest: Vec<Change> = all.into_iter().skip(n).collect();
        let more = rest.len() > max;
        let page: Vec<Change> = rest.into_iter().take(max).collect();
        let state = n + page.len();
        Ok(SyncPage {
            changes: page,
            state: state.to_string(),
            more,
        })
    }

    fn fetch(
        _who: &Principal,
        item_id: &str,
        _part_id: Option<&str>,
        offset: u64,
        max: u32,
    ) -> Result<Chunk> {
        let (_, _, s) = find(item_id).ok_or_else(|| Error::NotFound(item_id.into()))?;
        let start = (offset as usize).min(s.content.len());
        let end = start.saturating_add(max as usize).min(s.content.len());
        Ok(Chunk {
            data: s.content[start..end].to_vec(),
            total: s.content.len() as u64,
        })
    }

    fn create_folder(
        _who: &Principal,
        parent_id: &str,
        name: &str,
        kind: FolderKind,
    ) -> Result<Folder> {
        let id = if parent_id.is_empty() {
            name.to_string()
        } else {
            format!("{parent_id}/{name}")
        };
        let f = Folder {
            id,
            parent_id: parent_id.into(),
            name: name.into(),
            kind,
        };
        let mut fs: Vec<Folder> = get("folders");
        fs.push(f.clone());
        put("folders", &fs);
        Ok(f)
    }

    fn update_folder(_who: &Principal, id: &str, parent_id: &str, name: &str) -> Result<Folder> {
        let mut fs: Vec<Folder> = get("folders");
        let f = fs
            .iter_mut()
            .find(|f| f.id == id)
            .ok_or_else(|| Error::NotFound(id.into()))?;
        f.parent_id = parent_id.into();
        f.name = name.into();
        let out = f.clone();
        put("folders", &fs);
        Ok(out)
    }

    fn delete_folder(_who: &Principal, id: &str) -> Result<()> {
        let mut fs: Vec<Folder> = get("folders");
        let before = fs.len();
        fs.retain(|f| f.id != id && !f.id.starts_with(&format!("{id}/")));
        if fs.len() == before {
            return Err(Error::NotFound(id.into()));
        }
        put("folders", &fs);
        Ok(())
    }

    fn create_item(_who: &Principal, folder_id: &str, content: Upload) -> Result<ItemSummary> {
        let mut data = Vec::new();
        for c in content.chunks(4096) {
            data.extend(c?);
        }
        let id = format!("{folder_id}-{}", items(folder_id).len() + 1000);
        let text = String::from_utf8_lossy(&data).to_string();
        Self::deliver(folder_id, &id, "", &text, 0);
        Ok(find(&id).map(|x| x.2.summary).unwrap())
    }

    fn replace_item(_who: &Principal, item_id: &str, content: Upload) -> Result<ItemSummary> {
        let (folder, i, _) = find(item_id).ok_or_else(|| Error::NotFound(item_id.into()))?;
        let mut data = Vec::new();
        for c in content.chunks(4096) {
            data.extend(c?);
        }
        let mut its = items(&folder);
        its[i].content = data;
        its[i].summary.size = its[i].content.len() as u64;
        let s = its[i].summary.clone();
        put(&format!("items/{folder}"), &its);
        record(&folder, Change::Changed(s.clone()));
        Ok(s)
    }

    fn set_flags(
        _who: &Principal,
        item_id: &str,
        read: Option<bool>,
        flagged: Option<bool>,
    ) -> Result<()> {
        let (folder, i, _) = find(item_id).ok_or_else(|| Error::NotFound(item_id.into()))?;
        let mut its = items(&folder);
        if let Some(r) = read {
            its[i].summary.read = r;
        }
        if let Some(f) = flagged {
            its[i].summary.flagged = f;
        }
        let s = its[i].summary.clone();
        put(&format!("items/{folder}"), &its);
        record(&folder, Change::Changed(s));
        Ok(())
    }

    fn move_item(_who: &Principal, item_id: &str, to_folder_id: &str) -> Result<String> {
        let (folder, i, mut s) = find(item_id).ok_or_else(|| Error::NotFound(item_id.into()))?;
        let mut its = items(&folder);
        its.remove(i);
        put(&format!("items/{folder}"), &its);
        record(&folder, Change::Deleted(item_id.into()));
        let new_id = format!("{to_folder_id}-{item_id}");
        s.summary.id = new_id.clone();
        s.summary.folder_id = to_folder_id.into();
        let mut dst = items(to_folder_id);
        dst.push(s.clone());
        put(&format!("items/{to_folder_id}"), &dst);
        record(to_folder_id, Change::Added(s.summary));
        Ok(new_id)
    }

    fn delete_item(_who: &Principal, item_id: &str) -> Result<()> {
        let (folder, i, _) = find(item_id).ok_or_else(|| Error::NotFound(item_id.into()))?;
        let mut its = items(&folder);
        its.remove(i);
        put(&format!("items/{folder}"), &its);
        record(&folder, Change::Deleted(item_id.into()));
        Ok(())
    }

    fn send(_who: &Principal, mime: Upload, _save_copy: bool) -> Result<()> {
        let mut data = Vec::new();
        for c in mime.chunks(4096) {
            data.extend(c?);
        }
        let mut sent: Vec<String> = get("sent");
        sent.push(String::from_utf8_lossy(&data).into_owned());
        put("sent", &sent);
        Ok(())
    }

    fn search(
        _who: &Principal,
        folder_id: Option<&str>,
        query: &str,
        max: u32,
    ) -> Result<Vec<ItemSummary>> {
        let folders: Vec<Folder> = get("folders");
        let q = query.to_lowercase();
        let mut out = Vec::new();
        for f in folders {
            if folder_id.is_some_and(|x| x != f.id) {
                continue;
            }
            for s in items(&f.id) {
                if s.summary.subject.to_lowercase().contains(&q)
                    || String::from_utf8_lossy(&s.content)
                        .to_lowercase()
                        .contains(&q)
                {
                    out.push(s.summary);
                }
            }
        }
        out.truncate(max as usize);
        Ok(out)
    }
}

/// A phone: its hosts and its policy key.
#[derive(Debug)]
pub struct Phone {
    /// The plugin's host.
    pub host: MockHost,
    /// The connector's host (seed it with `store.run(|| MemStore::deliver(…))`).
    pub store: MockHost,
    /// The protocol version it speaks.
    pub version: &'static str,
    /// Its policy key after provisioning.
    pub key: Option<u32>,
}

impl Phone {
    /// A provisioned phone speaking `version` against a seeded store.
    pub fn new(version: &'static str) -> Phone {
        let store = MockHost::new();
        store.run(MemStore::seed);
        let host = MockHost::new().with_mail_connector::<MemStore>(store.clone());
        let key = crate::provision::tests::provision(&host, version);
        Phone {
            host,
            store,
            version,
            key: Some(key),
        }
    }

    /// POST a command with a WBXML body (an element), returning the raw response.
    pub fn post(&self, cmd: &str, extra_query: &str, body: &[u8]) -> Response {
        let q = format!("Cmd={cmd}&User=alice&DeviceId=DEV1&DeviceType=iPhone{extra_query}");
        let key = self.key.map(|k| k.to_string());
        let mut h = vec![("MS-ASProtocolVersion", self.version)];
        if let Some(k) = key.as_deref() {
            h.push(("X-MS-PolicyKey", k));
        }
        response(self.host.handle::<Eas>(request("POST", &q, &h, body)))
    }

    /// POST a command document and decode the answer.
    pub fn cmd(&self, cmd: &str, doc: &Element) -> Element {
        let r = self.post(cmd, "", &doc.to_wbxml().unwrap());
        assert_eq!(r.status, 200, "{cmd}: {r:?}");
        decode(&r.body_bytes()).expect("response decodes")
    }

    /// Run something against the connector's state.
    pub fn store<R>(&self, f: impl FnOnce() -> R) -> R {
        self.store.run(f)
    }
}
