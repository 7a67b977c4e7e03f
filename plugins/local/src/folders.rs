//! Folders: the standard set created on first use, user folders with nesting, and recursive
//! deletion.

use switchboard_sdk::host::kv::Commit;
use switchboard_sdk::{Error, Folder, FolderKind, ItemClass, Result};

use crate::chunks;
use crate::keys::Mailbox;
use crate::records::{counter_bytes, from_bytes, parse_counter, to_bytes, FolderRec, LogEntry};
use crate::store;

/// The standard folders: id, display name, kind.
pub const STANDARD: [(&str, &str, FolderKind); 10] = [
    ("inbox", "Inbox", FolderKind::Inbox),
    ("drafts", "Drafts", FolderKind::Drafts),
    ("sent", "Sent Items", FolderKind::Sent),
    ("deleted", "Deleted Items", FolderKind::Deleted),
    ("junk", "Junk", FolderKind::Junk),
    ("outbox", "Outbox", FolderKind::Outbox),
    ("calendar", "Calendar", FolderKind::Calendar),
    ("contacts", "Contacts", FolderKind::Contacts),
    ("tasks", "Tasks", FolderKind::Tasks),
    ("notes", "Notes", FolderKind::Notes),
];

/// Longest folder name accepted, in characters.
const MAX_NAME: usize = 255;

/// The class of item a folder of `kind` holds.
pub fn class_of(kind: FolderKind) -> ItemClass {
    match kind {
        FolderKind::Calendar | FolderKind::UserCalendar => ItemClass::Calendar,
        FolderKind::Contacts | FolderKind::UserContacts => ItemClass::Contact,
        FolderKind::Tasks | FolderKind::UserTasks => ItemClass::Task,
        FolderKind::Notes | FolderKind::UserNotes => ItemClass::Note,
        _ => ItemClass::Email,
    }
}

fn is_standard(id: &str) -> bool {
    STANDARD.iter().any(|(s, _, _)| *s == id)
}

/// Create the standard folders if this mailbox has never been used.
pub fn ensure(mb: &Mailbox) -> Result<()> {
    for _ in 0..store::COMMIT_ATTEMPTS {
        if store::get(&mb.init())?.is_some() {
            return Ok(());
        }
        let mut c = Commit::new().check(&mb.init(), None).set(&mb.init(), b"1");
        for (id, name, kind) in STANDARD {
            let rec = FolderRec {
                parent: String::new(),
                name: name.into(),
                kind,
            };
            c = c
                .set(&mb.folder(id), &to_bytes(&rec)?)
                .set(&mb.counter(id), &counter_bytes(0));
        }
        if store::commit(&c)? {
            return Ok(());
        }
    }
    Err(store::busy())
}

/// A folder's record and its stored bytes (for commit checks).
pub fn load(mb: &Mailbox, id: &str) -> Result<(FolderRec, Vec<u8>)> {
    let missing = || {
        Error::NotFound(format!(
            "no folder {:?}",
            id.chars().take(64).collect::<String>()
        ))
    };
    if !crate::keys::valid_folder_id(id) {
        return Err(missing());
    }
    let bytes = store::get(&mb.folder(id))?.ok_or_else(missing)?;
    Ok((from_bytes(&bytes, "folder")?, bytes))
}

/// A folder's change counter and its stored bytes.
pub fn counter(mb: &Mailbox, id: &str) -> Result<(u64, Vec<u8>)> {
    let bytes =
        store::get(&mb.counter(id))?.ok_or_else(|| Error::NotFound(format!("no folder {id:?}")))?;
    Ok((parse_counter(&bytes)?, bytes))
}

fn to_folder(id: &str, rec: FolderRec) -> Folder {
    Folder {
        id: id.to_string(),
        parent_id: rec.parent,
        name: rec.name,
        kind: rec.kind,
    }
}

/// All folders: the standard ones in their usual order, then user folders by creation.
pub fn list(mb: &Mailbox) -> Result<Vec<Folder>> {
    ensure(mb)?;
    let prefix = mb.folders();
    let mut out = Vec::new();
    store::scan_each(&prefix, |k, v| {
        let id = &k[prefix.len()..];
        out.push(to_folder(id, from_bytes(v, "folder")?));
        Ok(true)
    })?;
    let rank = |f: &Folder| match STANDARD.iter().position(|(s, _, _)| *s == f.id) {
        Some(i) => (0, i as u64),
        None => (1, f.id[1..].parse::<u64>().unwrap_or(u64::MAX)),
    };
    out.sort_by_key(rank);
    Ok(out)
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "a folder name must be 1 to {MAX_NAME} printable characters"
        )));
    }
    Ok(name.to_string())
}

fn sibling_named(all: &[Folder], parent: &str, name: &str, except: &str) -> bool {
    all.iter().any(|f| {
        f.parent_id == parent && f.id != except && f.name.to_lowercase() == name.to_lowercase()
    })
}

/// Create a user folder.
pub fn create(mb: &Mailbox, parent: &str, name: &str, kind: FolderKind) -> Result<Folder> {
    let name = check_name(name)?;
    if !matches!(
        kind,
        FolderKind::UserMail
            | FolderKind::UserCalendar
            | FolderKind::UserContacts
            | FolderKind::UserTasks
            | FolderKind::UserNotes
    ) {
        return Err(Error::Invalid(
            "new folders take a user-* kind; the standard folders exist already".into(),
        ));
    }
    let all = list(mb)?;
    if !parent.is_empty() && !all.iter().any(|f| f.id == parent) {
        return Err(Error::NotFound(format!("no parent folder {parent:?}")));
    }
    if sibling_named(&all, parent, &name, "") {
        return Err(Error::Conflict(format!(
            "a folder named {name:?} exists there already"
        )));
    }
    let id = next_folder_id(mb)?;
    let rec = FolderRec {
        parent: parent.to_string(),
        name,
        kind,
    };
    let mut c = Commit::new()
        .check(&mb.folder(&id), None)
        .set(&mb.folder(&id), &to_bytes(&rec)?)
        .set(&mb.counter(&id), &counter_bytes(0));
    if !parent.is_empty() {
        let (_, parent_bytes) = load(mb, parent)?;
        c = c.check(&mb.folder(parent), Some(&parent_bytes));
    }
    if !store::commit(&c)? {
        return Err(Error::Conflict(
            "the parent folder changed meanwhile; try again".into(),
        ));
    }
    Ok(to_folder(&id, rec))
}

fn next_folder_id(mb: &Mailbox) -> Result<String> {
    for _ in 0..store::COMMIT_ATTEMPTS {
        let cur = store::get(&mb.next_folder())?;
        let n = cur.as_deref().map(parse_counter).transpose()?.unwrap_or(0) + 1;
        let c = Commit::new()
            .check(&mb.next_folder(), cur.as_deref())
            .set(&mb.next_folder(), &counter_bytes(n));
        if store::commit(&c)? {
            return Ok(format!("u{n}"));
        }
    }
    Err(store::busy())
}

/// The ids of `id` and every folder below it.
fn subtree(all: &[Folder], id: &str) -> Vec<String> {
    let mut out = vec![id.to_string()];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i].clone();
        out.extend(
            all.iter()
                .filter(|f| f.parent_id == cur)
                .map(|f| f.id.clone()),
        );
        i += 1;
    }
    out
}

/// Rename and/or move a user folder.
pub fn update(mb: &Mailbox, id: &str, parent: &str, name: &str) -> Result<Folder> {
    let name = check_name(name)?;
    ensure(mb)?;
    let (rec, bytes) = load(mb, id)?;
    if is_standard(id) {
        return Err(Error::Denied(
            "standard folders cannot be renamed or moved".into(),
        ));
    }
    let all = list(mb)?;
    if !parent.is_empty() {
        if !all.iter().any(|f| f.id == parent) {
            return Err(Error::NotFound(format!("no parent folder {parent:?}")));
        }
        if subtree(&all, id).iter().any(|f| f == parent) {
            return Err(Error::Invalid("a folder cannot move below itself".into()));
        }
    }
    if sibling_named(&all, parent, &name, id) {
        return Err(Error::Conflict(format!(
            "a folder named {name:?} exists there already"
        )));
    }
    let new = FolderRec {
        parent: parent.to_string(),
        name,
        kind: rec.kind,
    };
    let c = Commit::new()
        .check(&mb.folder(id), Some(&bytes))
        .set(&mb.folder(id), &to_bytes(&new)?);
    if !store::commit(&c)? {
        return Err(Error::Conflict(
            "the folder changed meanwhile; try again".into(),
        ));
    }
    Ok(to_folder(id, new))
}

/// Delete a user folder, its subfolders and everything in them. The folders disappear in one
/// commit (later writes into them fail their folder check); their contents are removed
/// after, in batches. A crash in between leaves unreachable keys, never visible items.
pub fn delete(mb: &Mailbox, id: &str) -> Result<()> {
    ensure(mb)?;
    let (_, bytes) = load(mb, id)?;
    if is_standard(id) {
        return Err(Error::Denied("standard folders cannot be deleted".into()));
    }
    let all = list(mb)?;
    let doomed = subtree(&all, id);
    let mut c = Commit::new().check(&mb.folder(id), Some(&bytes));
    for f in &doomed {
        c = c.delete(&mb.folder(f));
    }
    if !store::commit(&c)? {
        return Err(Error::Conflict(
            "the folder changed meanwhile; try again".into(),
        ));
    }
    for f in &doomed {
        purge(mb, f)?;
        store::publish(&format!("mailbox:{}/{f}", mb.address));
    }
    Ok(())
}

/// Remove a (deleted) folder's log, items' content and counter.
fn purge(mb: &Mailbox, id: &str) -> Result<()> {
    let mut writes = Vec::new();
    let mut blobs = Vec::new();
    store::scan_each(&mb.log_prefix(id), |k, v| {
        writes.push((k.to_string(), None));
        if let Ok(LogEntry::Item(rec)) = from_bytes::<LogEntry>(v, "log entry") {
            if rec.deleted_at.is_none() {
                blobs.push(rec.blob);
            }
        }
        Ok(true)
    })?;
    for blob in blobs {
        chunks::delete_by_meta(mb, &blob)?;
    }
    writes.push((mb.counter(id), None));
    store::write_all(writes)
}
