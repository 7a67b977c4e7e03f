//! The native plugin ABI: how a `cdylib` built with [`crate::export_native!`] and the
//! Switchboard server talk. Plugin authors never use this module directly; it is public so
//! the server (and other hosts) share one definition.
//!
//! The library exports one symbol, [`ENTRY_SYMBOL`], returning a [`PluginEntry`]. Its first
//! field is [`ABI_VERSION`]; a host reads that before anything else and refuses a mismatch.
//! Calls cross the boundary as postcard-encoded [`PluginCall`]s and [`HostCall`]s; results are
//! handed back through a writer callback so each side frees only what it allocated.
//!
//! Native plugins run in the server process with its privileges: they are trusted code.

use std::ffi::c_void;

use serde::{Deserialize, Serialize};

use crate::http::Request;
use crate::sip::Origin;
use crate::types::{Chunk, Folder, FolderKind, ItemSummary, Level, Person, Principal, SyncPage};

/// Version of this ABI. Bumped on any layout or encoding change.
pub const ABI_VERSION: u32 = 1;

/// Name of the entry symbol a native plugin exports.
pub const ENTRY_SYMBOL: &[u8] = b"switchboard_plugin_entry\0";

/// Receives a result buffer; the bytes are valid only during the call.
pub type WriteFn = unsafe extern "C" fn(out: *mut c_void, ptr: *const u8, len: usize);

/// The host's side: handles one postcard-encoded [`HostCall`] and writes the encoded result.
pub type HostFn = unsafe extern "C" fn(
    host: *mut c_void,
    call: *const u8,
    call_len: usize,
    out: *mut c_void,
    write: WriteFn,
);

/// The plugin's side: handles one postcard-encoded [`PluginCall`], calling back into the host
/// through `host_fn(host, …)`, and writes the encoded result. Returns a [`CallStatus`] code.
pub type CallFn = unsafe extern "C" fn(
    host: *mut c_void,
    host_fn: HostFn,
    call: *const u8,
    call_len: usize,
    out: *mut c_void,
    write: WriteFn,
) -> u32;

/// What a native plugin library describes itself with.
#[repr(C)]
#[derive(Debug)]
pub struct PluginEntry {
    /// Must equal the host's [`ABI_VERSION`]; read first.
    pub abi_version: u32,
    /// The world, as [`world_code`] numbers it.
    pub world: u32,
    /// The SDK version the plugin was built with (`major`, `minor`, `patch`).
    pub sdk_version: [u32; 3],
    /// The call entry point.
    pub call: CallFn,
}

/// Outcome codes of [`CallFn`].
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// The result was written.
    Ok = 0,
    /// The plugin panicked; the panic message was written as UTF-8.
    Panicked = 1,
    /// The call could not be decoded (host/plugin mismatch); a message was written.
    BadCall = 2,
}

/// World numbering used in [`PluginEntry::world`].
pub fn world_code(world: &str) -> u32 {
    match world {
        "http-frontend" => 1,
        "sip-frontend" => 2,
        "mail-connector" => 3,
        "directory-connector" => 4,
        _ => 0,
    }
}

/// The world name for a [`PluginEntry::world`] code.
pub fn world_name(code: u32) -> Option<&'static str> {
    Some(match code {
        1 => "http-frontend",
        2 => "sip-frontend",
        3 => "mail-connector",
        4 => "directory-connector",
        _ => return None,
    })
}

/// The SDK version of this crate (`major`, `minor`, `patch`); a test keeps it equal to the
/// crate version.
pub const SDK_VERSION: [u32; 3] = [0, 1, 0];

/// A call from the host into the plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PluginCall {
    /// `http-handler.handle` → [`crate::http::Outcome`].
    HttpHandle(Request),
    /// `http-handler.resume` → [`crate::http::Outcome`].
    HttpResume {
        /// Parked state.
        #[serde(with = "serde_bytes")]
        state: Vec<u8>,
        /// Keys that fired.
        fired: Vec<String>,
    },
    /// `sip-handler.handle` → `()`.
    SipHandle {
        /// The whole message.
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
        /// Where it came from.
        origin: Origin,
    },
    /// A `mailstore` export → `Result<MailReply, Error>`.
    Mail(MailCall),
    /// A `directory` export → `Result<DirectoryReply, Error>`.
    Directory(DirectoryCall),
}

/// One `mailstore` function call with its arguments. Frontends' mailstore imports and
/// connectors' mailstore exports meet in the core as these values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum MailCall {
    ListFolders {
        who: Principal,
    },
    CreateFolder {
        who: Principal,
        parent_id: String,
        name: String,
        kind: FolderKind,
    },
    UpdateFolder {
        who: Principal,
        id: String,
        parent_id: String,
        name: String,
    },
    DeleteFolder {
        who: Principal,
        id: String,
    },
    Sync {
        who: Principal,
        folder_id: String,
        state: Option<String>,
        max: u32,
    },
    Fetch {
        who: Principal,
        item_id: String,
        part_id: Option<String>,
        offset: u64,
        max: u32,
    },
    CreateItem {
        who: Principal,
        folder_id: String,
        /// A staged upload (see [`crate::host::staging`]).
        content: u32,
    },
    ReplaceItem {
        who: Principal,
        item_id: String,
        /// A staged upload.
        content: u32,
    },
    SetFlags {
        who: Principal,
        item_id: String,
        read: Option<bool>,
        flagged: Option<bool>,
    },
    MoveItem {
        who: Principal,
        item_id: String,
        to_folder_id: String,
    },
    DeleteItem {
        who: Principal,
        item_id: String,
    },
    Send {
        who: Principal,
        /// A staged upload.
        mime: u32,
        save_copy: bool,
    },
    Search {
        who: Principal,
        folder_id: Option<String>,
        query: String,
        max: u32,
    },
    /// Appended last so the other cases keep their numbers.
    Watch {
        who: Principal,
        folder_ids: Vec<String>,
        timeout_ms: u32,
    },
}

impl MailCall {
    /// Whose mailbox the call is for (the core routes by its domain).
    pub fn who(&self) -> &Principal {
        match self {
            MailCall::ListFolders { who }
            | MailCall::CreateFolder { who, .. }
            | MailCall::UpdateFolder { who, .. }
            | MailCall::DeleteFolder { who, .. }
            | MailCall::Sync { who, .. }
            | MailCall::Fetch { who, .. }
            | MailCall::CreateItem { who, .. }
            | MailCall::ReplaceItem { who, .. }
            | MailCall::SetFlags { who, .. }
            | MailCall::MoveItem { who, .. }
            | MailCall::DeleteItem { who, .. }
            | MailCall::Send { who, .. }
            | MailCall::Search { who, .. }
            | MailCall::Watch { who, .. } => who,
        }
    }

    /// The WIT function name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            MailCall::ListFolders { .. } => "list-folders",
            MailCall::CreateFolder { .. } => "create-folder",
            MailCall::UpdateFolder { .. } => "update-folder",
            MailCall::DeleteFolder { .. } => "delete-folder",
            MailCall::Sync { .. } => "sync",
            MailCall::Fetch { .. } => "fetch",
            MailCall::CreateItem { .. } => "create-item",
            MailCall::ReplaceItem { .. } => "replace-item",
            MailCall::SetFlags { .. } => "set-flags",
            MailCall::MoveItem { .. } => "move-item",
            MailCall::DeleteItem { .. } => "delete-item",
            MailCall::Send { .. } => "send",
            MailCall::Search { .. } => "search",
            MailCall::Watch { .. } => "watch",
        }
    }
}

/// The result of a [`MailCall`], one case per return type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum MailReply {
    Unit,
    Folders(Vec<Folder>),
    Folder(Folder),
    Page(SyncPage),
    Chunk(Chunk),
    Item(ItemSummary),
    Id(String),
    Items(Vec<ItemSummary>),
}

/// One `directory` function call with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum DirectoryCall {
    Authenticate {
        who: Principal,
        password: String,
    },
    Lookup {
        who: Principal,
    },
    Search {
        domain: String,
        query: String,
        max: u32,
    },
}

impl DirectoryCall {
    /// The domain the call is routed by.
    pub fn domain(&self) -> &str {
        match self {
            DirectoryCall::Authenticate { who, .. } | DirectoryCall::Lookup { who } => &who.domain,
            DirectoryCall::Search { domain, .. } => domain,
        }
    }

    /// The WIT function name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            DirectoryCall::Authenticate { .. } => "authenticate",
            DirectoryCall::Lookup { .. } => "lookup",
            DirectoryCall::Search { .. } => "search",
        }
    }
}

/// The result of a [`DirectoryCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum DirectoryReply {
    Authenticated(bool),
    Person(Option<Person>),
    People(Vec<Person>),
}

/// A call from the plugin into the host. The comment on each case names the type the host
/// encodes as the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum HostCall {
    /// → `()`
    Log { level: Level, message: String },
    /// → `Option<String>`
    ConfigGet { key: String },
    /// → `Result<Option<Vec<u8>>>`
    KvGet { key: String },
    /// → `Result<()>`
    KvSet {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// → `Result<bool>`
    KvDelete { key: String },
    /// → `Result<Vec<(String, Vec<u8>)>>`
    KvScan {
        prefix: String,
        after: Option<String>,
        limit: u32,
    },
    /// → `Result<bool>`
    KvCompareAndSwap {
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    },
    /// → `Result<bool>`
    KvCommit {
        checks: Vec<(String, Option<Vec<u8>>)>,
        writes: Vec<(String, Option<Vec<u8>>)>,
    },
    /// → `Result<()>`
    EventsPublish { key: String },
    /// → `Result<MailReply>`
    Mail(MailCall),
    /// → `Result<DirectoryReply>`
    Directory(DirectoryCall),
    /// → `Result<u32>`
    OutboundConnect { host: String, port: u16, tls: bool },
    /// → `Result<Vec<u8>>`
    OutboundRead { conn: u32, max: u32 },
    /// → `Result<()>`
    OutboundWrite {
        conn: u32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// → `()`
    OutboundClose { conn: u32 },
    /// → `Result<Vec<u8>>`
    RequestBodyRead { max: u32 },
    /// → `Result<()>`
    SipSendFlow {
        flow: u64,
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    /// → `Result<()>`
    SipSendTo {
        transport: String,
        target: String,
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    /// → `Option<String>` (native builds only; WebAssembly sees granted directories as
    /// preopened paths instead)
    FilesDir { name: String },
    /// → `Result<u32>`
    StagingCreate,
    /// → `Result<()>`
    StagingAppend {
        upload: u32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// → `Result<Vec<u8>>`
    StagingRead { upload: u32, offset: u64, max: u32 },
    /// → `Result<u64>`
    StagingSize { upload: u32 },
    /// → `Result<Option<Principal>>` (`sip-auth.verify-digest`; appended last so older
    /// native plugins keep their variant numbers)
    SipVerifyDigest {
        method: String,
        authorization: String,
        realm: String,
        source: String,
    },
    /// → `String` (`sip-auth.challenge`)
    SipChallenge { realm: String, stale: bool },
    /// → `Option<(u64, u64)>`: a [`Notifier`]'s context and [`PublishFn`] addresses, valid
    /// for as long as the plugin stays loaded (native builds only; see
    /// [`crate::host::events::publisher`]).
    EventsPublisher,
    /// → `Option<String>` (`credentials.password`)
    CredentialsPassword { who: Principal },
    /// → `Result<()>` (`sip-transport.relay-to`)
    SipRelayTo {
        transport: String,
        target: String,
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
}

/// Publishes one event key from any thread, at any time (not only during a call): the
/// plugin's background tasks (an IMAP IDLE connection) use it. `key` is UTF-8. Returns 0
/// when published, 1 when the key was refused (its topic is not in the manifest).
pub type PublishFn =
    unsafe extern "C" fn(notifier: *const c_void, key: *const u8, len: usize) -> u32;

/// The host's side of a [`PublishFn`]; opaque to plugins.
pub type Notifier = c_void;

/// Encode a value for the other side (postcard). Encoding plain data into a `Vec` cannot fail.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_default()
}

/// Decode a value from the other side.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// Write `bytes` through a [`WriteFn`].
///
/// # Safety
/// `write` and `out` must be the pair the caller of the current call provided.
#[allow(unsafe_code)]
pub unsafe fn write_out(out: *mut c_void, write: WriteFn, bytes: &[u8]) {
    // SAFETY: forwarded contract: the pair comes from the caller of this call.
    unsafe { write(out, bytes.as_ptr(), bytes.len()) }
}

/// A [`WriteFn`] that copies the bytes into the `Vec<u8>` that `out` points to.
///
/// # Safety
/// `out` must point to a live `Vec<u8>` and `ptr`/`len` describe readable memory.
#[allow(unsafe_code)]
pub unsafe extern "C" fn write_to_vec(out: *mut c_void, ptr: *const u8, len: usize) {
    // SAFETY: guaranteed by the caller per this function's contract.
    unsafe {
        let vec = &mut *(out as *mut Vec<u8>);
        vec.clear();
        vec.extend_from_slice(std::slice::from_raw_parts(ptr, len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_version_matches_the_crate() {
        let text = SDK_VERSION.map(|n| n.to_string()).join(".");
        assert_eq!(text, env!("CARGO_PKG_VERSION"));
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever bytes arrive across the native boundary, decoding fails cleanly.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<HostCall>(&bytes);
            let _ = decode::<PluginCall>(&bytes);
            let _ = decode::<crate::http::Outcome>(&bytes);
        }

        /// Requests survive the trip through the ABI encoding unchanged.
        #[test]
        fn requests_round_trip(
            path in "/[a-z/]{0,40}",
            headers in proptest::collection::vec(("[a-z-]{1,12}", "[ -~]{0,30}"), 0..6),
            body in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let call = PluginCall::HttpHandle(Request {
                method: "POST".into(),
                path,
                query: String::new(),
                headers,
                principal: crate::Principal::parse("a@b.example"),
                peer: "127.0.0.1:1".into(),
                body,
                body_complete: true,
            });
            prop_assert_eq!(decode::<PluginCall>(&encode(&call)).unwrap(), call);
        }
    }

    #[test]
    fn world_codes_round_trip() {
        for w in [
            "http-frontend",
            "sip-frontend",
            "mail-connector",
            "directory-connector",
        ] {
            assert_eq!(world_name(world_code(w)), Some(w));
        }
        assert_eq!(world_code("nope"), 0);
        assert_eq!(world_name(0), None);
    }
}
