//! The built-in local mail store: Switchboard's default `mail-connector`. Every mailbox of
//! every domain it serves lives in the core database.
//!
//! # Why kv through the host
//!
//! The store keeps everything in the plugin's key-value space (`host::kv`) rather than in
//! tables of its own:
//!
//! - **It stays a pure plugin.** The same source builds as a sandboxed WebAssembly component,
//!   a native library, or (feature `builtin`) statically linked into the server, and it
//!   runs unchanged on SQLite (the embedded default) and PostgreSQL (production, clusters):
//!   the host owns the database, its migrations and its connection pool, and the store needs
//!   no schema of its own.
//! - **`kv.commit` gives the atomicity change tracking needs.** An item, its folder's change
//!   counter and its change-log entry are written in one checked commit (serializable on
//!   PostgreSQL, write-locked on SQLite); a writer that loses a race writes nothing and
//!   retries. That is what lets `sync` promise no lost and no duplicated changes under
//!   concurrent writers, across restarts (see [`changes`]).
//! - **Chunking bounds memory.** Content is stored in 256 KiB keys ([`chunks`]) written as the
//!   staged upload is read, and read back by range; big messages are analysed by a streaming
//!   MIME scanner ([`mime_scan`]) and their attachments decoded by range through a sparse
//!   index ([`decode`]). A 50 MB message never sits in memory whole, in either build.
//!
//! # Layout and behaviour
//!
//! Keys: [`keys`]. Standard folders (Inbox, Drafts, Sent Items, Deleted Items, Junk, Outbox,
//! Calendar, Contacts, Tasks, Notes) are created on a mailbox's first use; user folders nest
//! and are deleted with their contents ([`folders`]). Items take their class from the
//! folder they are created in and keep it when moved; a move gives the item a new id in the
//! target folder (ids name their folder) without copying its content. Sync states are
//! opaque `<position>-<check>` tokens ([`state`]); forged, foreign and future states are
//! refused as `invalid`. Delivery: [`send`]. Search: [`search`].
//!
//! Not done yet: dropping the records of long-deleted items from the change log (they are a
//! summary each; it needs a per-folder floor below which old states are refused).

pub mod changes;
pub mod chunks;
pub mod content;
pub mod decode;
pub mod folders;
pub mod items;
pub mod keys;
pub mod mime_scan;
pub mod records;
pub mod search;
pub mod send;
pub mod state;
pub mod store;
pub mod vobject;

use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::{
    Chunk, Folder, FolderKind, ItemSummary, MailConnector, Principal, Result, SyncPage,
};

use keys::Mailbox;

/// The local store plugin.
#[derive(Debug)]
pub struct Local;

impl MailConnector for Local {
    fn list_folders(who: &Principal) -> Result<Vec<Folder>> {
        folders::list(&Mailbox::of(who)?)
    }

    fn sync(who: &Principal, folder_id: &str, state: Option<&str>, max: u32) -> Result<SyncPage> {
        let mb = Mailbox::of(who)?;
        folders::ensure(&mb)?;
        let (changes, state, more) = changes::sync(&mb, folder_id, state, max)?;
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
        items::fetch(&Mailbox::of(who)?, item_id, part_id, offset, max)
    }

    fn create_folder(
        who: &Principal,
        parent_id: &str,
        name: &str,
        kind: FolderKind,
    ) -> Result<Folder> {
        folders::create(&Mailbox::of(who)?, parent_id, name, kind)
    }

    fn update_folder(who: &Principal, id: &str, parent_id: &str, name: &str) -> Result<Folder> {
        folders::update(&Mailbox::of(who)?, id, parent_id, name)
    }

    fn delete_folder(who: &Principal, id: &str) -> Result<()> {
        folders::delete(&Mailbox::of(who)?, id)
    }

    fn create_item(who: &Principal, folder_id: &str, content: Upload) -> Result<ItemSummary> {
        items::create(&Mailbox::of(who)?, folder_id, &content, false)
    }

    fn replace_item(who: &Principal, item_id: &str, content: Upload) -> Result<ItemSummary> {
        items::replace(&Mailbox::of(who)?, item_id, &content)
    }

    fn set_flags(
        who: &Principal,
        item_id: &str,
        read: Option<bool>,
        flagged: Option<bool>,
    ) -> Result<()> {
        items::set_flags(&Mailbox::of(who)?, item_id, read, flagged)
    }

    fn move_item(who: &Principal, item_id: &str, to_folder_id: &str) -> Result<String> {
        items::move_to(&Mailbox::of(who)?, item_id, to_folder_id)
    }

    fn delete_item(who: &Principal, item_id: &str) -> Result<()> {
        items::delete(&Mailbox::of(who)?, item_id)
    }

    fn send(who: &Principal, mime: Upload, save_copy: bool) -> Result<()> {
        send::send(who, mime, save_copy)
    }

    fn search(
        who: &Principal,
        folder_id: Option<&str>,
        query: &str,
        max: u32,
    ) -> Result<Vec<ItemSummary>> {
        search::search(&Mailbox::of(who)?, folder_id, query, max)
    }
}

switchboard_sdk::export_wasm!(mail_connector: Local);
// Statically linked into the server (feature `builtin`): `builtin_entry()`, no C symbol, so
// it links beside other built-in plugins; otherwise the C entry point of a loadable library.
#[cfg(feature = "builtin")]
switchboard_sdk::export_native!(mail_connector: Local, builtin);
#[cfg(not(feature = "builtin"))]
switchboard_sdk::export_native!(mail_connector: Local);
