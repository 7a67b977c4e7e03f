//! A read-only mail connector over a directory of `.eml` files — the smallest useful
//! `mail-connector`:
//!
//! ```text
//! maildir/Inbox/hello.eml           every user sees maildir/… unless
//! maildir/Archive/2024/old.eml      maildir/USER@DOMAIN/ exists, which then is theirs
//! ```
//!
//! Each subdirectory is a folder (`Inbox`, `Sent`, `Drafts`, … get their standard kinds);
//! each file is a message. Sync states are content hashes of the listing the client has, kept
//! in kv, so asking again with the same state gives the same answer (replay-safe) and a
//! restart loses nothing. Content is read by ranges: a big message is never loaded whole.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use switchboard_sdk::{
    host, Change, Chunk, Error, Folder, FolderKind, ItemClass, ItemSummary, MailConnector,
    Principal, Result, SyncPage,
};

/// The plugin.
pub struct Eml;

fn root(who: &Principal) -> Result<PathBuf> {
    let base = host::files::dir("maildir")
        .ok_or_else(|| Error::Unavailable("the maildir directory is not granted".into()))?;
    let own = base.join(who.address());
    Ok(if own.is_dir() { own } else { base })
}

fn kind_of(name: &str) -> FolderKind {
    match name.to_ascii_lowercase().as_str() {
        "inbox" => FolderKind::Inbox,
        "sent" | "sent items" => FolderKind::Sent,
        "drafts" => FolderKind::Drafts,
        "trash" | "deleted items" => FolderKind::Deleted,
        "junk" | "spam" => FolderKind::Junk,
        _ => FolderKind::UserMail,
    }
}

/// Reject ids that would leave the mail directory.
fn checked(id: &str) -> Result<&str> {
    let bad = id.is_empty()
        || id.starts_with('/')
        || id
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || id.contains('\\');
    if bad {
        Err(Error::Invalid(format!("bad id {id:?}")))
    } else {
        Ok(id)
    }
}

/// Map an IO error; messages name the item or folder id, never the host path.
fn io(id: &str, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(id.to_string()),
        _ => Error::Unavailable(format!("{id}: {e}")),
    }
}

fn walk_folders(base: &Path, rel: &str, out: &mut Vec<Folder>) -> Result<()> {
    let dir = if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    };
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map_err(|e| io(rel, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.contains('@') || !rel.is_empty())
        .collect();
    names.sort();
    for name in names {
        let id = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        out.push(Folder {
            id: id.clone(),
            parent_id: rel.to_string(),
            kind: if rel.is_empty() {
                kind_of(&name)
            } else {
                FolderKind::UserMail
            },
            name,
        });
        walk_folders(base, &id, out)?;
    }
    Ok(())
}

/// Listing of a folder: item id → size.
fn listing(base: &Path, folder: &str) -> Result<BTreeMap<String, u64>> {
    let dir = base.join(checked(folder)?);
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(&dir).map_err(|e| io(folder, e))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".eml") {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.insert(format!("{folder}/{name}"), size);
        }
    }
    Ok(out)
}

fn encode(list: &BTreeMap<String, u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, size) in list {
        out.extend_from_slice(format!("{id}\t{size}\n").as_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> BTreeMap<String, u64> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, size)| (id.to_string(), size.parse().unwrap_or(0)))
        .collect()
}

/// Store a listing under its hash and return the hash as the state token.
fn save_state(who: &Principal, folder: &str, list: &BTreeMap<String, u64>) -> Result<String> {
    let bytes = encode(list);
    let token = hex::encode(&Sha256::digest(&bytes)[..12]);
    host::kv::set(&format!("state/{}/{folder}/{token}", who.address()), &bytes)?;
    Ok(token)
}

fn load_state(who: &Principal, folder: &str, token: &str) -> Result<BTreeMap<String, u64>> {
    match host::kv::get(&format!("state/{}/{folder}/{token}", who.address()))? {
        Some(bytes) => Ok(decode(&bytes)),
        None => Err(Error::Invalid(format!("unknown sync state {token:?}"))),
    }
}

/// Subject, From and a timestamp from the header block, reading only the headers.
fn summary(base: &Path, id: &str, folder: &str, size: u64) -> ItemSummary {
    let mut subject = String::new();
    let mut sender = String::new();
    if let Ok(file) = fs::File::open(base.join(id)) {
        let mut head = Vec::new();
        let _ = file.take(16 * 1024).read_to_end(&mut head);
        let text = String::from_utf8_lossy(&head);
        for line in text.split("\r\n\r\n").next().unwrap_or("").lines() {
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "subject" if subject.is_empty() => subject = value.trim().to_string(),
                    "from" if sender.is_empty() => sender = value.trim().to_string(),
                    _ => {}
                }
            }
        }
    }
    ItemSummary {
        id: id.to_string(),
        folder_id: folder.to_string(),
        class: ItemClass::Email,
        size,
        timestamp_ms: 0,
        subject,
        sender,
        read: false,
        flagged: false,
        attachments: vec![],
    }
}

impl MailConnector for Eml {
    fn list_folders(who: &Principal) -> Result<Vec<Folder>> {
        let mut out = Vec::new();
        walk_folders(&root(who)?, "", &mut out)?;
        Ok(out)
    }

    fn sync(who: &Principal, folder_id: &str, state: Option<&str>, max: u32) -> Result<SyncPage> {
        let base = root(who)?;
        let now = listing(&base, folder_id)?;
        let mut known = match state {
            Some(token) => load_state(who, folder_id, token)?,
            None => BTreeMap::new(),
        };
        let mut changes = Vec::new();
        let mut more = false;
        let ids: Vec<String> = known.keys().chain(now.keys()).cloned().collect();
        for id in ids {
            let (old, new) = (known.get(&id).copied(), now.get(&id).copied());
            if old == new {
                continue;
            }
            if changes.len() == max as usize {
                more = true;
                break;
            }
            match (old, new) {
                (None, Some(size)) => {
                    changes.push(Change::Added(summary(&base, &id, folder_id, size)));
                    known.insert(id, size);
                }
                (Some(_), Some(size)) => {
                    changes.push(Change::Changed(summary(&base, &id, folder_id, size)));
                    known.insert(id, size);
                }
                (Some(_), None) => {
                    changes.push(Change::Deleted(id.clone()));
                    known.remove(&id);
                }
                (None, None) => {}
            }
        }
        let state = save_state(who, folder_id, &known)?;
        Ok(SyncPage {
            changes,
            state,
            more,
        })
    }

    fn fetch(
        who: &Principal,
        item_id: &str,
        part_id: Option<&str>,
        offset: u64,
        max: u32,
    ) -> Result<Chunk> {
        if part_id.is_some() {
            return Err(Error::NotFound(
                "this connector does not split attachments".into(),
            ));
        }
        let path = root(who)?.join(checked(item_id)?);
        let mut file = fs::File::open(&path).map_err(|e| io(item_id, e))?;
        let total = file.metadata().map_err(|e| io(item_id, e))?.len();
        file.seek(SeekFrom::Start(offset.min(total)))
            .map_err(|e| io(item_id, e))?;
        let mut data = Vec::with_capacity((max as u64).min(total.saturating_sub(offset)) as usize);
        file.take(u64::from(max))
            .read_to_end(&mut data)
            .map_err(|e| io(item_id, e))?;
        Ok(Chunk { data, total })
    }

    fn search(
        who: &Principal,
        folder_id: Option<&str>,
        query: &str,
        max: u32,
    ) -> Result<Vec<ItemSummary>> {
        let base = root(who)?;
        let folders = match folder_id {
            Some(f) => vec![f.to_string()],
            None => Self::list_folders(who)?.into_iter().map(|f| f.id).collect(),
        };
        let needle = query.to_lowercase();
        let mut out = Vec::new();
        for folder in folders {
            for (id, size) in listing(&base, &folder)? {
                let item = summary(&base, &id, &folder, size);
                if item.subject.to_lowercase().contains(&needle)
                    || item.sender.to_lowercase().contains(&needle)
                {
                    out.push(item);
                    if out.len() == max as usize {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }
}

switchboard_sdk::export_wasm!(mail_connector: Eml);
// The C entry symbol for the .so, unless the crate is linked into a host as a built-in (then
// the host takes `builtin_entry()`; a binary may link several built-ins, but only one symbol).
#[cfg(not(feature = "builtin"))]
switchboard_sdk::export_native!(mail_connector: Eml);
switchboard_sdk::export_native!(mail_connector: Eml, builtin);

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::mock::MockHost;

    fn mailbox() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("Inbox")).unwrap();
        fs::create_dir_all(dir.path().join("Archive/2024")).unwrap();
        for (name, subject) in [("a.eml", "First"), ("b.eml", "Second")] {
            fs::write(
                dir.path().join("Inbox").join(name),
                format!("From: bob@example.com\r\nSubject: {subject}\r\n\r\nbody {subject}\r\n"),
            )
            .unwrap();
        }
        dir
    }

    fn who() -> Principal {
        Principal::parse("alice@example.com").unwrap()
    }

    #[test]
    fn folders_and_kinds() {
        let dir = mailbox();
        let host = MockHost::new().with_dir("maildir", dir.path());
        let folders = host.run(|| Eml::list_folders(&who())).unwrap();
        let ids: Vec<_> = folders.iter().map(|f| (f.id.as_str(), f.kind)).collect();
        assert_eq!(
            ids,
            [
                ("Archive", FolderKind::UserMail),
                ("Archive/2024", FolderKind::UserMail),
                ("Inbox", FolderKind::Inbox)
            ]
        );
    }

    #[test]
    fn sync_pages_replays_and_sees_changes() {
        let dir = mailbox();
        let host = MockHost::new().with_dir("maildir", dir.path());
        host.run(|| {
            let p1 = Eml::sync(&who(), "Inbox", None, 1).unwrap();
            assert!(p1.more);
            assert!(matches!(&p1.changes[..], [Change::Added(i)] if i.subject == "First"));
            // Same state again: same answer.
            let again = Eml::sync(&who(), "Inbox", None, 1).unwrap();
            assert_eq!(again, p1);
            let p2 = Eml::sync(&who(), "Inbox", Some(&p1.state), 10).unwrap();
            assert!(!p2.more);
            assert!(matches!(&p2.changes[..], [Change::Added(i)] if i.subject == "Second"));
            fs::remove_file(dir.path().join("Inbox/a.eml")).unwrap();
            let p3 = Eml::sync(&who(), "Inbox", Some(&p2.state), 10).unwrap();
            assert_eq!(p3.changes, [Change::Deleted("Inbox/a.eml".into())]);
            let p4 = Eml::sync(&who(), "Inbox", Some(&p3.state), 10).unwrap();
            assert!(p4.changes.is_empty());
            assert!(matches!(
                Eml::sync(&who(), "Inbox", Some("forged"), 10),
                Err(Error::Invalid(_))
            ));
        });
    }

    #[test]
    fn fetch_by_ranges_and_refuses_escapes() {
        let dir = mailbox();
        let host = MockHost::new().with_dir("maildir", dir.path());
        host.run(|| {
            let c = Eml::fetch(&who(), "Inbox/a.eml", None, 6, 3).unwrap();
            assert_eq!(c.data, b"bob");
            assert_eq!(
                c.total,
                fs::metadata(dir.path().join("Inbox/a.eml")).unwrap().len()
            );
            assert!(matches!(
                Eml::fetch(&who(), "../etc/passwd", None, 0, 10),
                Err(Error::Invalid(_))
            ));
            assert!(matches!(
                Eml::fetch(&who(), "Inbox/none.eml", None, 0, 10),
                Err(Error::NotFound(_))
            ));
        });
    }
}
