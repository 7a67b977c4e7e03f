//! What a plugin can ask of the server. Each module is one WIT interface; the same calls
//! work in both builds (component imports in WebAssembly, the C-ABI callback natively) and
//! against [`crate::mock::MockHost`] in unit tests.
//!
//! The host enforces what the manifest and the admin grant: a `kv` call without a
//! `kv_quota_bytes`, an event topic not listed, or an outbound host not granted comes back as
//! [`Error::Denied`].

#[cfg(not(target_arch = "wasm32"))]
use serde::de::DeserializeOwned;

#[allow(unused_imports)] // unused in WebAssembly builds, where imports are called directly
use crate::abi::HostCall;
use crate::types::{Error, Result};

/// `call!(native HostCall, wasm expression)`: a call whose answer is `Result<T>`. Natively the
/// [`HostCall`] goes to the current host and its postcard answer is decoded; in WebAssembly
/// the expression calls the one component import it needs (so unused imports vanish from the
/// component) and already yields the typed answer — no encoding round trip on the hot paths
/// (kv, SIP sends, request bodies).
macro_rules! call {
    ($native:expr, $wasm:expr) => {{
        #[cfg(target_arch = "wasm32")]
        let answer: Result<_> = $wasm;
        #[cfg(not(target_arch = "wasm32"))]
        let answer = decode_result(crate::native::host_call($native));
        answer
    }};
}

/// `call_plain!(…)`: a call whose answer is a plain value; `None` on transport problems
/// (natively: no host, or an undecodable answer).
macro_rules! call_plain {
    ($native:expr, $wasm:expr) => {{
        #[cfg(target_arch = "wasm32")]
        let answer = Some($wasm);
        #[cfg(not(target_arch = "wasm32"))]
        let answer = crate::native::host_call($native).and_then(|b| crate::abi::decode(&b).ok());
        answer
    }};
}

/// Decode a `Result<T>` answer; transport problems become [`Error::Internal`].
#[cfg(not(target_arch = "wasm32"))]
fn decode_result<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Result<T> {
    let bytes = bytes.ok_or_else(|| {
        Error::Internal("no host: host calls only work inside a plugin call or a mock host".into())
    })?;
    crate::abi::decode::<Result<T>>(&bytes)
        .map_err(|e| Error::Internal(format!("undecodable host answer: {e}")))?
}

/// Structured logging into the server's tracing output, tagged with the plugin's name.
pub mod log {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;
    pub use crate::types::Level;

    /// Write one log line.
    pub fn write(level: Level, message: &str) {
        let _: Option<()> = call_plain!(
            HostCall::Log {
                level,
                message: message.to_string(),
            },
            crate::wasm::log_write(level, message)
        );
    }
    /// [`Level::Debug`] line.
    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }
    /// [`Level::Info`] line.
    pub fn info(message: &str) {
        write(Level::Info, message)
    }
    /// [`Level::Warn`] line.
    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }
    /// [`Level::Error`] line.
    pub fn error(message: &str) {
        write(Level::Error, message)
    }
}

/// The plugin's settings from `switchboard.toml`, already checked against the manifest.
pub mod config {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;

    /// One setting as text (lists comma-separated), if set or defaulted.
    pub fn get(key: &str) -> Option<String> {
        call_plain!(
            HostCall::ConfigGet { key: key.into() },
            crate::wasm::config_get(key)
        )
        .flatten()
    }
}

/// Durable key-value storage private to this plugin, in the server's database.
pub mod kv {
    pub use super::Commit;

    /// Apply a [`Commit`] atomically: `Ok(false)` (nothing written) when a check failed or a
    /// concurrent commit got in the way — read again and retry.
    pub fn commit(c: &Commit) -> Result<bool> {
        call!(
            HostCall::KvCommit {
                checks: c.checks.clone(),
                writes: c.writes.clone(),
            },
            crate::wasm::kv_commit(&c.checks, &c.writes)
        )
    }

    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;

    /// Read a key.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>> {
        call!(
            HostCall::KvGet { key: key.into() },
            crate::wasm::kv_get(key)
        )
    }
    /// Write a key.
    pub fn set(key: &str, value: &[u8]) -> Result<()> {
        call!(
            HostCall::KvSet {
                key: key.into(),
                value: value.to_vec(),
            },
            crate::wasm::kv_set(key, value)
        )
    }
    /// Remove a key; `true` when it existed.
    pub fn delete(key: &str) -> Result<bool> {
        call!(
            HostCall::KvDelete { key: key.into() },
            crate::wasm::kv_delete(key)
        )
    }
    /// Keys starting with `prefix`, strictly after `after`, at most `limit`, in bytewise order.
    pub fn scan(prefix: &str, after: Option<&str>, limit: u32) -> Result<Vec<(String, Vec<u8>)>> {
        call!(
            HostCall::KvScan {
                prefix: prefix.into(),
                after: after.map(Into::into),
                limit,
            },
            crate::wasm::kv_scan(prefix, after, limit)
        )
    }
    /// Set `key` to `new` (`None`: delete) only if it holds `expected` (`None`: absent).
    pub fn compare_and_swap(
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        call!(
            HostCall::KvCompareAndSwap {
                key: key.into(),
                expected: expected.map(<[u8]>::to_vec),
                new: new.map(<[u8]>::to_vec),
            },
            crate::wasm::kv_cas(key, expected, new)
        )
    }
}

/// Several key-value changes applied atomically; see [`kv::commit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// Conditions: the key holds this value (`None`: is absent).
    pub checks: Vec<(String, Option<Vec<u8>>)>,
    /// Changes: set to this value (`None`: delete).
    pub writes: Vec<(String, Option<Vec<u8>>)>,
}

impl Commit {
    /// An empty commit.
    pub fn new() -> Commit {
        Commit::default()
    }
    /// Require `key` to hold `value` (`None`: to be absent).
    pub fn check(mut self, key: &str, value: Option<&[u8]>) -> Commit {
        self.checks.push((key.into(), value.map(<[u8]>::to_vec)));
        self
    }
    /// Set `key`.
    pub fn set(mut self, key: &str, value: &[u8]) -> Commit {
        self.writes.push((key.into(), Some(value.to_vec())));
        self
    }
    /// Delete `key`.
    pub fn delete(mut self, key: &str) -> Commit {
        self.writes.push((key.into(), None));
        self
    }
}

/// Change notifications that wake parked requests (`topic:rest` keys).
pub mod events {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;

    /// Announce that `key` changed; its topic must be listed in the manifest.
    pub fn publish(key: &str) -> Result<()> {
        call!(
            HostCall::EventsPublish { key: key.into() },
            crate::wasm::events_publish(key)
        )
    }

    /// A handle that publishes from anywhere in the plugin — a background thread or task, after
    /// the call that asked for it has returned — for as long as the plugin stays loaded.
    /// Ask for it during a call. Native builds only (a WebAssembly plugin has no background
    /// work, so it gets `None`), and `None` from a host that does not offer it.
    pub fn publisher() -> Option<Publisher> {
        #[cfg(target_arch = "wasm32")]
        {
            None
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let raw: Option<Option<(u64, u64)>> = call_plain!(HostCall::EventsPublisher, ());
            let (notifier, publish) = raw.flatten()?;
            if notifier == 0 || publish == 0 {
                return None;
            }
            #[allow(unsafe_code)]
            // SAFETY: the host encoded the address of a function of type `PublishFn` (the
            // ABI's contract for `EventsPublisher`); a zero address was refused above.
            let publish =
                unsafe { std::mem::transmute::<usize, crate::abi::PublishFn>(publish as usize) };
            Some(Publisher {
                notifier: notifier as usize,
                publish,
            })
        }
    }

    /// Publishes event keys outside of calls; see [`publisher`]. Cheap to clone, usable
    /// from any thread.
    #[derive(Clone, Copy)]
    pub struct Publisher {
        #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
        notifier: usize,
        #[cfg(not(target_arch = "wasm32"))]
        publish: crate::abi::PublishFn,
    }

    impl std::fmt::Debug for Publisher {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Publisher").finish_non_exhaustive()
        }
    }

    impl Publisher {
        /// Announce that `key` changed; false when the host refused it (its topic is not in
        /// the manifest).
        pub fn publish(&self, key: &str) -> bool {
            #[cfg(target_arch = "wasm32")]
            {
                let _ = key;
                false
            }
            #[cfg(not(target_arch = "wasm32"))]
            {
                #[allow(unsafe_code)]
                // SAFETY: the host promised `notifier`/`publish` stay valid while the plugin
                // is loaded, and `key` is a live UTF-8 buffer for the duration of the call.
                let status = unsafe {
                    (self.publish)(
                        self.notifier as *const std::ffi::c_void,
                        key.as_ptr(),
                        key.len(),
                    )
                };
                status == 0
            }
        }
    }
}

/// The password the user logged in with on this request, for mail connectors the admin lets
/// log in to their backend as the user (`pass_password = true` in the server's config).
pub mod credentials {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;
    use crate::types::Principal;

    /// `who`'s password from this request's login; `None` when `who` is not the user who
    /// logged in, the request carried no password, or the admin has not granted it.
    pub fn password(who: &Principal) -> Option<String> {
        call_plain!(
            HostCall::CredentialsPassword { who: who.clone() },
            crate::wasm::credentials_password(who)
        )
        .flatten()
    }
}

/// Mailboxes, for frontends. The server routes each call to the connector serving the
/// principal's domain.
pub mod mailstore {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;
    use crate::abi::{MailCall, MailReply};
    use crate::types::{Chunk, Folder, FolderKind, ItemSummary, Principal, SyncPage};

    fn mail(c: MailCall) -> Result<MailReply> {
        call!(HostCall::Mail(c.clone()), crate::wasm::mail(c))
    }
    fn mismatch() -> Error {
        Error::Internal("the host answered a mailstore call with the wrong kind of reply".into())
    }

    /// All folders.
    pub fn list_folders(who: &Principal) -> Result<Vec<Folder>> {
        match mail(MailCall::ListFolders { who: who.clone() })? {
            MailReply::Folders(f) => Ok(f),
            _ => Err(mismatch()),
        }
    }
    /// Create a folder.
    pub fn create_folder(
        who: &Principal,
        parent_id: &str,
        name: &str,
        kind: FolderKind,
    ) -> Result<Folder> {
        match mail(MailCall::CreateFolder {
            who: who.clone(),
            parent_id: parent_id.into(),
            name: name.into(),
            kind,
        })? {
            MailReply::Folder(f) => Ok(f),
            _ => Err(mismatch()),
        }
    }
    /// Rename or move a folder.
    pub fn update_folder(who: &Principal, id: &str, parent_id: &str, name: &str) -> Result<Folder> {
        match mail(MailCall::UpdateFolder {
            who: who.clone(),
            id: id.into(),
            parent_id: parent_id.into(),
            name: name.into(),
        })? {
            MailReply::Folder(f) => Ok(f),
            _ => Err(mismatch()),
        }
    }
    /// Delete a folder.
    pub fn delete_folder(who: &Principal, id: &str) -> Result<()> {
        mail(MailCall::DeleteFolder {
            who: who.clone(),
            id: id.into(),
        })
        .map(drop)
    }
    /// Changes since `state`.
    pub fn sync(
        who: &Principal,
        folder_id: &str,
        state: Option<&str>,
        max: u32,
    ) -> Result<SyncPage> {
        match mail(MailCall::Sync {
            who: who.clone(),
            folder_id: folder_id.into(),
            state: state.map(Into::into),
            max,
        })? {
            MailReply::Page(p) => Ok(p),
            _ => Err(mismatch()),
        }
    }
    /// A chunk of an item's content or of one attachment.
    pub fn fetch(
        who: &Principal,
        item_id: &str,
        part_id: Option<&str>,
        offset: u64,
        max: u32,
    ) -> Result<Chunk> {
        match mail(MailCall::Fetch {
            who: who.clone(),
            item_id: item_id.into(),
            part_id: part_id.map(Into::into),
            offset,
            max,
        })? {
            MailReply::Chunk(c) => Ok(c),
            _ => Err(mismatch()),
        }
    }
    /// Store a new item from staged content.
    pub fn create_item(
        who: &Principal,
        folder_id: &str,
        content: &super::staging::Upload,
    ) -> Result<ItemSummary> {
        match mail(MailCall::CreateItem {
            who: who.clone(),
            folder_id: folder_id.into(),
            content: content.handle(),
        })? {
            MailReply::Item(i) => Ok(i),
            _ => Err(mismatch()),
        }
    }
    /// Replace an item's content with staged content.
    pub fn replace_item(
        who: &Principal,
        item_id: &str,
        content: &super::staging::Upload,
    ) -> Result<ItemSummary> {
        match mail(MailCall::ReplaceItem {
            who: who.clone(),
            item_id: item_id.into(),
            content: content.handle(),
        })? {
            MailReply::Item(i) => Ok(i),
            _ => Err(mismatch()),
        }
    }
    /// Set or clear flags.
    pub fn set_flags(
        who: &Principal,
        item_id: &str,
        read: Option<bool>,
        flagged: Option<bool>,
    ) -> Result<()> {
        mail(MailCall::SetFlags {
            who: who.clone(),
            item_id: item_id.into(),
            read,
            flagged,
        })
        .map(drop)
    }
    /// Move an item; returns the new id.
    pub fn move_item(who: &Principal, item_id: &str, to_folder_id: &str) -> Result<String> {
        match mail(MailCall::MoveItem {
            who: who.clone(),
            item_id: item_id.into(),
            to_folder_id: to_folder_id.into(),
        })? {
            MailReply::Id(i) => Ok(i),
            _ => Err(mismatch()),
        }
    }
    /// Delete an item.
    pub fn delete_item(who: &Principal, item_id: &str) -> Result<()> {
        mail(MailCall::DeleteItem {
            who: who.clone(),
            item_id: item_id.into(),
        })
        .map(drop)
    }
    /// Submit a staged MIME message.
    pub fn send(who: &Principal, mime: &super::staging::Upload, save_copy: bool) -> Result<()> {
        mail(MailCall::Send {
            who: who.clone(),
            mime: mime.handle(),
            save_copy,
        })
        .map(drop)
    }
    /// Free-text search.
    pub fn search(
        who: &Principal,
        folder_id: Option<&str>,
        query: &str,
        max: u32,
    ) -> Result<Vec<ItemSummary>> {
        match mail(MailCall::Search {
            who: who.clone(),
            folder_id: folder_id.map(Into::into),
            query: query.into(),
            max,
        })? {
            MailReply::Items(i) => Ok(i),
            _ => Err(mismatch()),
        }
    }
    /// Tell the connector this request is about to wait up to `timeout_ms` for changes in
    /// these folders, so it can watch a backend that changes behind its back (IMAP IDLE);
    /// changes arrive as `mailbox:` events. Returns at once.
    pub fn watch(who: &Principal, folder_ids: &[String], timeout_ms: u32) -> Result<()> {
        mail(MailCall::Watch {
            who: who.clone(),
            folder_ids: folder_ids.to_vec(),
            timeout_ms,
        })
        .map(drop)
    }
}

/// People and logins, for frontends; routed by domain to the directory connector.
pub mod directory {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;
    use crate::abi::{DirectoryCall, DirectoryReply};
    use crate::types::{Person, Principal};

    fn mismatch() -> Error {
        Error::Internal("the host answered a directory call with the wrong kind of reply".into())
    }
    fn dir(c: DirectoryCall) -> Result<DirectoryReply> {
        call!(HostCall::Directory(c.clone()), crate::wasm::directory(c))
    }
    /// Check a password.
    pub fn authenticate(who: &Principal, password: &str) -> Result<bool> {
        match dir(DirectoryCall::Authenticate {
            who: who.clone(),
            password: password.into(),
        })? {
            DirectoryReply::Authenticated(ok) => Ok(ok),
            _ => Err(mismatch()),
        }
    }
    /// One person by login.
    pub fn lookup(who: &Principal) -> Result<Option<Person>> {
        match dir(DirectoryCall::Lookup { who: who.clone() })? {
            DirectoryReply::Person(p) => Ok(p),
            _ => Err(mismatch()),
        }
    }
    /// GAL search.
    pub fn search(domain: &str, query: &str, max: u32) -> Result<Vec<Person>> {
        match dir(DirectoryCall::Search {
            domain: domain.into(),
            query: query.into(),
            max,
        })? {
            DirectoryReply::People(p) => Ok(p),
            _ => Err(mismatch()),
        }
    }
}

/// Outbound TCP/TLS for connectors, to granted hosts only.
pub mod outbound {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;

    /// An open connection; closed on drop. Implements `std::io::Read` and `Write`, so
    /// protocol crates that take a stream work over it.
    #[derive(Debug)]
    pub struct Connection {
        id: u32,
    }

    /// Connect to `host:port`, optionally through TLS.
    pub fn connect(host: &str, port: u16, tls: bool) -> Result<Connection> {
        let id = call!(
            HostCall::OutboundConnect {
                host: host.into(),
                port,
                tls,
            },
            crate::wasm::outbound_connect(host, port, tls)
        )?;
        Ok(Connection { id })
    }

    impl Connection {
        /// Up to `max` bytes; empty when the peer closed.
        pub fn read_chunk(&mut self, max: u32) -> Result<Vec<u8>> {
            call!(
                HostCall::OutboundRead { conn: self.id, max },
                crate::wasm::outbound_read(self.id, max)
            )
        }
        /// Write all of `data`.
        pub fn write_all_bytes(&mut self, data: &[u8]) -> Result<()> {
            call!(
                HostCall::OutboundWrite {
                    conn: self.id,
                    data: data.to_vec(),
                },
                crate::wasm::outbound_write(self.id, data)
            )
        }
    }

    impl std::io::Read for Connection {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let max = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            let data = self.read_chunk(max).map_err(std::io::Error::other)?;
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            Ok(n)
        }
    }

    impl std::io::Write for Connection {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.write_all_bytes(buf).map_err(std::io::Error::other)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Drop for Connection {
        fn drop(&mut self) {
            let _: Option<()> = call_plain!(
                HostCall::OutboundClose { conn: self.id },
                crate::wasm::outbound_close(self.id)
            );
        }
    }
}

/// The rest of the current HTTP request's body, in chunks.
pub mod request_body {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;

    /// Up to `max` more bytes; empty at the end.
    pub fn read(max: u32) -> Result<Vec<u8>> {
        call!(
            HostCall::RequestBodyRead { max },
            crate::wasm::request_body_read(max)
        )
    }
}

/// Sending SIP messages through the server's sockets.
pub mod sip_transport {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;

    /// Send on an existing flow (RFC 5626).
    pub fn send_flow(flow: u64, message: &[u8]) -> Result<()> {
        call!(
            HostCall::SipSendFlow {
                flow,
                message: message.to_vec(),
            },
            crate::wasm::sip_send_flow(flow, message)
        )
    }
    /// Send to `target` (`ip:port`) over `transport` (`udp`, `tcp`, `tls`).
    pub fn send_to(transport: &str, target: &str, message: &[u8]) -> Result<()> {
        call!(
            HostCall::SipSendTo {
                transport: transport.into(),
                target: target.into(),
                message: message.to_vec(),
            },
            crate::wasm::sip_send_to(transport, target, message)
        )
    }
    /// Like [`send_to`], for a request whose `2xx` answer the plugin does not need (a forked
    /// MESSAGE): the server consumes that answer instead of calling the plugin with it. Over
    /// UDP only, while the server still resends the request; any other response still
    /// arrives as usual.
    pub fn relay_to(transport: &str, target: &str, message: &[u8]) -> Result<()> {
        call!(
            HostCall::SipRelayTo {
                transport: transport.into(),
                target: target.into(),
                message: message.to_vec(),
            },
            crate::wasm::sip_relay_to(transport, target, message)
        )
    }
}

/// SIP Digest authentication against the server's credential chain (RFC 3261 §22): the
/// plugin passes the client's header, the server checks it without ever showing the plugin a
/// password or HA1.
pub mod sip_auth {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;
    use crate::types::Principal;

    /// Check a Digest `Authorization` / `Proxy-Authorization` value for a request with
    /// `method` in `realm`; `source` is the peer's IP address (throttling, audit).
    ///
    /// `Ok(Some(user))`: valid. `Ok(None)`: refused — challenge again.
    /// [`Error::Conflict`]: right password, stale or replayed nonce — challenge with
    /// `stale=true`. [`Error::Denied`]: throttled. [`Error::Unavailable`]: no credential
    /// source answered.
    pub fn verify_digest(
        method: &str,
        authorization: &str,
        realm: &str,
        source: &str,
    ) -> Result<Option<Principal>> {
        call!(
            HostCall::SipVerifyDigest {
                method: method.into(),
                authorization: authorization.into(),
                realm: realm.into(),
                source: source.into(),
            },
            crate::wasm::sip_verify_digest(method, authorization, realm, source)
        )
    }

    /// A fresh challenge for `realm`: the value of a `WWW-Authenticate` /
    /// `Proxy-Authenticate` header. `None` only when there is no host.
    pub fn challenge(realm: &str, stale: bool) -> Option<String> {
        call_plain!(
            HostCall::SipChallenge {
                realm: realm.into(),
                stale,
            },
            crate::wasm::sip_challenge(realm, stale)
        )
    }
}

/// Directories the admin granted (manifest `capabilities.dirs`), read-only.
pub mod files {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;
    use std::path::PathBuf;

    /// Where granted directory `name` is: a preopened `/NAME` inside the WebAssembly sandbox,
    /// the configured path for native builds. `None` when not granted.
    pub fn dir(name: &str) -> Option<PathBuf> {
        let dir: Option<Option<String>> = call_plain!(
            HostCall::FilesDir { name: name.into() },
            crate::wasm::files_dir(name)
        );
        dir.flatten().map(PathBuf::from)
    }
}

/// Content on its way into a mailbox, staged by the host in a temporary file for the length of
/// the request. Frontends [`create`](staging::Upload::create) an upload and append to it as
/// they decode the client's request; connectors read it back in chunks. Neither side holds
/// the whole content in memory.
pub mod staging {
    #[allow(unused_imports)] // HostCall is only built natively
    use super::*;

    /// A staged upload (a handle valid until the request ends).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Upload {
        handle: u32,
    }

    impl Upload {
        /// A new, empty upload.
        pub fn create() -> Result<Upload> {
            let handle = call!(HostCall::StagingCreate, crate::wasm::staging_create())?;
            Ok(Upload { handle })
        }

        /// An upload from bytes already in memory (small items).
        pub fn from_bytes(data: &[u8]) -> Result<Upload> {
            let u = Upload::create()?;
            for chunk in data.chunks(256 * 1024) {
                u.append(chunk)?;
            }
            Ok(u)
        }

        /// The upload behind a handle received from the host.
        pub fn from_handle(handle: u32) -> Upload {
            Upload { handle }
        }

        /// Its handle.
        pub fn handle(&self) -> u32 {
            self.handle
        }

        /// Append bytes.
        pub fn append(&self, data: &[u8]) -> Result<()> {
            call!(
                HostCall::StagingAppend {
                    upload: self.handle,
                    data: data.to_vec(),
                },
                crate::wasm::staging_append(self.handle, data)
            )
        }

        /// Up to `max` bytes from `offset`; empty at the end.
        pub fn read(&self, offset: u64, max: u32) -> Result<Vec<u8>> {
            call!(
                HostCall::StagingRead {
                    upload: self.handle,
                    offset,
                    max,
                },
                crate::wasm::staging_read(self.handle, offset, max)
            )
        }

        /// Bytes staged.
        pub fn size(&self) -> Result<u64> {
            call!(
                HostCall::StagingSize {
                    upload: self.handle
                },
                crate::wasm::staging_size(self.handle)
            )
        }

        /// The chunks from the start, `chunk` bytes at a time.
        pub fn chunks(&self, chunk: u32) -> Chunks {
            Chunks {
                upload: *self,
                offset: 0,
                chunk,
                done: false,
            }
        }
    }

    /// Iterator over an upload's content; see [`Upload::chunks`].
    #[derive(Debug)]
    pub struct Chunks {
        upload: Upload,
        offset: u64,
        chunk: u32,
        done: bool,
    }

    impl Iterator for Chunks {
        type Item = Result<Vec<u8>>;
        fn next(&mut self) -> Option<Self::Item> {
            if self.done {
                return None;
            }
            match self.upload.read(self.offset, self.chunk) {
                Ok(data) if data.is_empty() => {
                    self.done = true;
                    None
                }
                Ok(data) => {
                    self.offset += data.len() as u64;
                    Some(Ok(data))
                }
                Err(e) => {
                    self.done = true;
                    Some(Err(e))
                }
            }
        }
    }
}
