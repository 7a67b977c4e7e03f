//! The data every interface shares: who is asking, what went wrong, and the shapes of
//! folders, items and people. These mirror `types` in the WIT package one to one.

use serde::{Deserialize, Serialize};

/// Declares the wasmtime component derives only for the host build, so plugins never pull
/// in wasmtime.
macro_rules! host_types {
    ($($item:item)*) => {
        $(
            #[cfg_attr(
                feature = "host",
                derive(
                    wasmtime::component::ComponentType,
                    wasmtime::component::Lift,
                    wasmtime::component::Lower
                )
            )]
            $item
        )*
    };
}
pub(crate) use host_types;

host_types! {
    /// The authenticated user a call is made for. The core fills it in from the request's
    /// credentials; a frontend cannot act for anyone else.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct Principal {
        /// Local part, e.g. `alice`.
        pub user: String,
        /// Domain, e.g. `example.com`; decides which connector serves the call.
        pub domain: String,
    }

    /// Why a call failed. Each case maps to a protocol status in the frontend (an EAS
    /// `Status`, a SIP 4xx, an HTTP code).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(variant))]
    pub enum Error {
        /// The folder, item, key or person does not exist.
        #[cfg_attr(feature = "host", component(name = "not-found"))]
        NotFound(String),
        /// The principal or the plugin may not do this (capability not granted).
        #[cfg_attr(feature = "host", component(name = "denied"))]
        Denied(String),
        /// An argument was malformed; the text names it.
        #[cfg_attr(feature = "host", component(name = "invalid"))]
        Invalid(String),
        /// A compare-and-swap or sync state lost a race; retry from fresh state.
        #[cfg_attr(feature = "host", component(name = "conflict"))]
        Conflict(String),
        /// The backend is unreachable or overloaded; retry later.
        #[cfg_attr(feature = "host", component(name = "unavailable"))]
        Unavailable(String),
        /// A quota (kv bytes, item size) would be exceeded.
        #[cfg_attr(feature = "host", component(name = "quota"))]
        Quota(String),
        /// Anything else; the text is logged, never shown to end users verbatim.
        #[cfg_attr(feature = "host", component(name = "internal"))]
        Internal(String),
    }

    /// What a folder holds. Standard folders have fixed kinds; user folders say which class
    /// of item they hold.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(enum))]
    #[repr(u8)]
    #[allow(missing_docs)]
    pub enum FolderKind {
        #[cfg_attr(feature = "host", component(name = "inbox"))]
        Inbox,
        #[cfg_attr(feature = "host", component(name = "drafts"))]
        Drafts,
        #[cfg_attr(feature = "host", component(name = "sent"))]
        Sent,
        #[cfg_attr(feature = "host", component(name = "deleted"))]
        Deleted,
        #[cfg_attr(feature = "host", component(name = "junk"))]
        Junk,
        #[cfg_attr(feature = "host", component(name = "outbox"))]
        Outbox,
        #[cfg_attr(feature = "host", component(name = "calendar"))]
        Calendar,
        #[cfg_attr(feature = "host", component(name = "contacts"))]
        Contacts,
        #[cfg_attr(feature = "host", component(name = "tasks"))]
        Tasks,
        #[cfg_attr(feature = "host", component(name = "notes"))]
        Notes,
        #[cfg_attr(feature = "host", component(name = "user-mail"))]
        UserMail,
        #[cfg_attr(feature = "host", component(name = "user-calendar"))]
        UserCalendar,
        #[cfg_attr(feature = "host", component(name = "user-contacts"))]
        UserContacts,
        #[cfg_attr(feature = "host", component(name = "user-tasks"))]
        UserTasks,
        #[cfg_attr(feature = "host", component(name = "user-notes"))]
        UserNotes,
    }

    /// One folder of a mailbox.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct Folder {
        /// Opaque, stable id chosen by the connector.
        pub id: String,
        /// Id of the parent folder; empty for top level.
        #[cfg_attr(feature = "host", component(name = "parent-id"))]
        pub parent_id: String,
        /// Display name.
        pub name: String,
        /// What the folder holds.
        pub kind: FolderKind,
    }

    /// The class of an item; its content is MIME (email), iCalendar (calendar, task), vCard
    /// (contact) or plain text (note).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(enum))]
    #[repr(u8)]
    #[allow(missing_docs)]
    pub enum ItemClass {
        #[cfg_attr(feature = "host", component(name = "email"))]
        Email,
        #[cfg_attr(feature = "host", component(name = "calendar"))]
        Calendar,
        #[cfg_attr(feature = "host", component(name = "contact"))]
        Contact,
        #[cfg_attr(feature = "host", component(name = "task"))]
        Task,
        #[cfg_attr(feature = "host", component(name = "note"))]
        Note,
    }

    /// An attachment of a mail item.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct Attachment {
        /// Part id for [`crate::host::mailstore::fetch`].
        #[cfg_attr(feature = "host", component(name = "part-id"))]
        pub part_id: String,
        /// File name as the sender gave it.
        #[cfg_attr(feature = "host", component(name = "file-name"))]
        pub file_name: String,
        /// MIME type.
        #[cfg_attr(feature = "host", component(name = "content-type"))]
        pub content_type: String,
        /// Decoded size in bytes.
        pub size: u64,
    }

    /// What a frontend needs to list an item without fetching its content.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct ItemSummary {
        /// Opaque, stable id chosen by the connector.
        pub id: String,
        /// The folder holding it.
        #[cfg_attr(feature = "host", component(name = "folder-id"))]
        pub folder_id: String,
        /// Mail, event, contact, task or note.
        pub class: ItemClass,
        /// Size of the full content in bytes.
        pub size: u64,
        /// Received (mail) or last-modified time, milliseconds since the Unix epoch.
        #[cfg_attr(feature = "host", component(name = "timestamp-ms"))]
        pub timestamp_ms: i64,
        /// Subject or title.
        pub subject: String,
        /// `From` for mail, organizer for events, empty otherwise.
        pub sender: String,
        /// Seen flag.
        pub read: bool,
        /// Follow-up flag.
        pub flagged: bool,
        /// Attachments (mail only).
        pub attachments: Vec<Attachment>,
    }

    /// One entry in a change list.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(variant))]
    pub enum Change {
        /// New since the given state.
        #[cfg_attr(feature = "host", component(name = "added"))]
        Added(ItemSummary),
        /// Flags or content changed.
        #[cfg_attr(feature = "host", component(name = "changed"))]
        Changed(ItemSummary),
        /// Gone; the id is what the client knew.
        #[cfg_attr(feature = "host", component(name = "deleted"))]
        Deleted(String),
    }

    /// The answer to a mailstore `sync`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct SyncPage {
        /// The changes, oldest first.
        pub changes: Vec<Change>,
        /// Token for the next call; opaque to frontends.
        pub state: String,
        /// More changes wait beyond this page (EAS `MoreAvailable`).
        pub more: bool,
    }

    /// A chunk of an item's content or of one of its parts.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct Chunk {
        /// The bytes.
        #[serde(with = "serde_bytes")]
        pub data: Vec<u8>,
        /// Total size of the item or part, so a frontend can write length prefixes before
        /// streaming.
        pub total: u64,
    }

    /// A person from the directory (GAL entry).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct Person {
        /// Login (`user@domain`).
        pub login: String,
        /// Name to show.
        #[cfg_attr(feature = "host", component(name = "display-name"))]
        pub display_name: String,
        /// Primary email address.
        pub email: String,
        /// Phone number, possibly empty.
        pub phone: String,
        /// Free-form attributes the connector maps (title, office, company…).
        pub attributes: Vec<(String, String)>,
    }

    /// Log severity.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(enum))]
    #[repr(u8)]
    #[allow(missing_docs)]
    pub enum Level {
        #[cfg_attr(feature = "host", component(name = "trace"))]
        Trace,
        #[cfg_attr(feature = "host", component(name = "debug"))]
        Debug,
        #[cfg_attr(feature = "host", component(name = "info"))]
        Info,
        #[cfg_attr(feature = "host", component(name = "warn"))]
        Warn,
        #[cfg_attr(feature = "host", component(name = "error"))]
        Error,
    }
}

impl Principal {
    /// `user@domain`.
    pub fn address(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }

    /// Split `user@domain`; `None` when there is no `@`.
    pub fn parse(address: &str) -> Option<Principal> {
        let (user, domain) = address.rsplit_once('@')?;
        (!user.is_empty() && !domain.is_empty()).then(|| Principal {
            user: user.to_string(),
            domain: domain.to_ascii_lowercase(),
        })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, text) = match self {
            Error::NotFound(t) => ("not found", t),
            Error::Denied(t) => ("denied", t),
            Error::Invalid(t) => ("invalid", t),
            Error::Conflict(t) => ("conflict", t),
            Error::Unavailable(t) => ("unavailable", t),
            Error::Quota(t) => ("quota exceeded", t),
            Error::Internal(t) => ("internal error", t),
        };
        write!(f, "{kind}: {text}")
    }
}

impl std::error::Error for Error {}

/// Result of every host call and connector method.
pub type Result<T, E = Error> = std::result::Result<T, E>;
