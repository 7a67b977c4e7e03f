//! One trait per world. A plugin implements exactly one of them on a unit struct and hands
//! that struct to [`crate::export_wasm!`] and [`crate::export_native!`].
//!
//! Methods are associated functions (no `self`): an instance of a WebAssembly plugin may be
//! fresh for every request or reused for many, so nothing may be kept in memory between calls.
//! Durable state goes in [`crate::host::kv`].

use crate::abi::{DirectoryCall, DirectoryReply, MailCall, MailReply};
use crate::http::{Outcome, Request, Response};
use crate::sip::Origin;
use crate::types::{
    Chunk, Error, Folder, FolderKind, ItemSummary, Person, Principal, Result, SyncPage,
};

/// The `http-frontend` world: serves HTTP paths (ActiveSync, Outlook, your own API).
pub trait HttpFrontend {
    /// Answer a request, or park it (see [`crate::http::Park`]).
    fn handle(req: Request) -> Outcome;

    /// A parked request's watch key fired; `fired` lists the keys that changed. The default
    /// answers 500, which is right for frontends that never park.
    fn resume(state: Vec<u8>, fired: Vec<String>) -> Outcome {
        let _ = (state, fired);
        Outcome::Reply(Response::text(500, "this frontend does not park requests"))
    }
}

/// The `sip-frontend` world: handles SIP messages the core has framed.
pub trait SipFrontend {
    /// Handle one complete SIP message; answer through [`crate::host::sip_transport`].
    fn handle(message: Vec<u8>, origin: Origin);
}

fn unsupported(what: &str) -> Error {
    Error::Denied(format!("this connector does not support {what}"))
}

/// The `mail-connector` world: backs mailboxes. Only listing, sync and fetch are required;
/// everything else defaults to a `denied` error, which makes a read-only connector short.
pub trait MailConnector {
    /// All folders of the mailbox.
    fn list_folders(who: &Principal) -> Result<Vec<Folder>>;
    /// Changes since `state` (none: everything), at most `max`. The same `state` must yield
    /// the same changes when asked again.
    fn sync(who: &Principal, folder_id: &str, state: Option<&str>, max: u32) -> Result<SyncPage>;
    /// Up to `max` bytes of an item's content (or an attachment's) from `offset`.
    fn fetch(
        who: &Principal,
        item_id: &str,
        part_id: Option<&str>,
        offset: u64,
        max: u32,
    ) -> Result<Chunk>;

    /// Create a folder.
    fn create_folder(
        who: &Principal,
        parent_id: &str,
        name: &str,
        kind: FolderKind,
    ) -> Result<Folder> {
        let _ = (who, parent_id, name, kind);
        Err(unsupported("creating folders"))
    }
    /// Rename or move a folder.
    fn update_folder(who: &Principal, id: &str, parent_id: &str, name: &str) -> Result<Folder> {
        let _ = (who, id, parent_id, name);
        Err(unsupported("changing folders"))
    }
    /// Delete a folder and its contents.
    fn delete_folder(who: &Principal, id: &str) -> Result<()> {
        let _ = (who, id);
        Err(unsupported("deleting folders"))
    }
    /// Store a new item; read its content in chunks with [`crate::host::staging::Upload`].
    fn create_item(
        who: &Principal,
        folder_id: &str,
        content: crate::host::staging::Upload,
    ) -> Result<ItemSummary> {
        let _ = (who, folder_id, content);
        Err(unsupported("creating items"))
    }
    /// Replace an item's content (staged, read in chunks).
    fn replace_item(
        who: &Principal,
        item_id: &str,
        content: crate::host::staging::Upload,
    ) -> Result<ItemSummary> {
        let _ = (who, item_id, content);
        Err(unsupported("changing items"))
    }
    /// Set or clear flags.
    fn set_flags(
        who: &Principal,
        item_id: &str,
        read: Option<bool>,
        flagged: Option<bool>,
    ) -> Result<()> {
        let _ = (who, item_id, read, flagged);
        Err(unsupported("flags"))
    }
    /// Move an item; returns its new id.
    fn move_item(who: &Principal, item_id: &str, to_folder_id: &str) -> Result<String> {
        let _ = (who, item_id, to_folder_id);
        Err(unsupported("moving items"))
    }
    /// Delete an item.
    fn delete_item(who: &Principal, item_id: &str) -> Result<()> {
        let _ = (who, item_id);
        Err(unsupported("deleting items"))
    }
    /// Submit a message for delivery (staged MIME, read in chunks).
    fn send(who: &Principal, mime: crate::host::staging::Upload, save_copy: bool) -> Result<()> {
        let _ = (who, mime, save_copy);
        Err(unsupported("sending mail"))
    }
    /// Free-text search.
    fn search(
        who: &Principal,
        folder_id: Option<&str>,
        query: &str,
        max: u32,
    ) -> Result<Vec<ItemSummary>> {
        let _ = (who, folder_id, query, max);
        Err(unsupported("search"))
    }
    /// A frontend will wait up to `timeout_ms` for changes in these folders: start watching
    /// the backend and publish `mailbox:{user@domain}/{folder}` ([`crate::mail::folder_event`])
    /// from a background task when one changes (see [`crate::host::events::publisher`]).
    /// Return at once. The default does nothing, right for a connector that makes every
    /// change itself and publishes as it goes.
    fn watch(who: &Principal, folder_ids: &[String], timeout_ms: u32) -> Result<()> {
        let _ = (who, folder_ids, timeout_ms);
        Ok(())
    }
}

/// The `directory-connector` world: backs people and logins.
pub trait DirectoryConnector {
    /// Check a password: `Ok(false)` for a wrong password or unknown user.
    fn authenticate(who: &Principal, password: &str) -> Result<bool>;
    /// One person by login.
    fn lookup(who: &Principal) -> Result<Option<Person>>;
    /// GAL search within a domain.
    fn search(domain: &str, query: &str, max: u32) -> Result<Vec<Person>>;
}

/// Run a [`MailCall`] against a connector (used by both export macros and the mock host).
pub fn dispatch_mail<T: MailConnector>(call: MailCall) -> Result<MailReply> {
    Ok(match call {
        MailCall::ListFolders { who } => MailReply::Folders(T::list_folders(&who)?),
        MailCall::CreateFolder {
            who,
            parent_id,
            name,
            kind,
        } => MailReply::Folder(T::create_folder(&who, &parent_id, &name, kind)?),
        MailCall::UpdateFolder {
            who,
            id,
            parent_id,
            name,
        } => MailReply::Folder(T::update_folder(&who, &id, &parent_id, &name)?),
        MailCall::DeleteFolder { who, id } => {
            T::delete_folder(&who, &id)?;
            MailReply::Unit
        }
        MailCall::Sync {
            who,
            folder_id,
            state,
            max,
        } => MailReply::Page(T::sync(&who, &folder_id, state.as_deref(), max)?),
        MailCall::Fetch {
            who,
            item_id,
            part_id,
            offset,
            max,
        } => MailReply::Chunk(T::fetch(&who, &item_id, part_id.as_deref(), offset, max)?),
        MailCall::CreateItem {
            who,
            folder_id,
            content,
        } => MailReply::Item(T::create_item(
            &who,
            &folder_id,
            crate::host::staging::Upload::from_handle(content),
        )?),
        MailCall::ReplaceItem {
            who,
            item_id,
            content,
        } => MailReply::Item(T::replace_item(
            &who,
            &item_id,
            crate::host::staging::Upload::from_handle(content),
        )?),
        MailCall::SetFlags {
            who,
            item_id,
            read,
            flagged,
        } => {
            T::set_flags(&who, &item_id, read, flagged)?;
            MailReply::Unit
        }
        MailCall::MoveItem {
            who,
            item_id,
            to_folder_id,
        } => MailReply::Id(T::move_item(&who, &item_id, &to_folder_id)?),
        MailCall::DeleteItem { who, item_id } => {
            T::delete_item(&who, &item_id)?;
            MailReply::Unit
        }
        MailCall::Send {
            who,
            mime,
            save_copy,
        } => {
            T::send(
                &who,
                crate::host::staging::Upload::from_handle(mime),
                save_copy,
            )?;
            MailReply::Unit
        }
        MailCall::Search {
            who,
            folder_id,
            query,
            max,
        } => MailReply::Items(T::search(&who, folder_id.as_deref(), &query, max)?),
        MailCall::Watch {
            who,
            folder_ids,
            timeout_ms,
        } => {
            T::watch(&who, &folder_ids, timeout_ms)?;
            MailReply::Unit
        }
    })
}

/// Run a [`DirectoryCall`] against a connector.
pub fn dispatch_directory<T: DirectoryConnector>(call: DirectoryCall) -> Result<DirectoryReply> {
    Ok(match call {
        DirectoryCall::Authenticate { who, password } => {
            DirectoryReply::Authenticated(T::authenticate(&who, &password)?)
        }
        DirectoryCall::Lookup { who } => DirectoryReply::Person(T::lookup(&who)?),
        DirectoryCall::Search { domain, query, max } => {
            DirectoryReply::People(T::search(&domain, &query, max)?)
        }
    })
}
