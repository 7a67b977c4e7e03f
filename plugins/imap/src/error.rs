//! Errors of the IMAP side and how they reach frontends as SDK errors.

use switchboard_sdk::Error;

/// What went wrong talking to the IMAP (or SMTP) server. Messages name the server's
/// `host:port` and the login, never a password.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// No TCP connection could be made.
    #[error("mail server {addr} unreachable: {source}")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error("mail server {addr} did not answer within {secs} s")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The limit.
        secs: u64,
    },
    /// The connection broke (closed, reset, BYE).
    #[error("connection to mail server {addr} lost: {reason}")]
    Lost {
        /// `host:port`.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// TLS setup failed.
    #[error("TLS with mail server {addr} failed: {reason}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Login refused (wrong password or unknown user).
    #[error("mail server {addr} refused the login of {login}")]
    Denied {
        /// `host:port`.
        addr: String,
        /// The login name (never the password).
        login: String,
    },
    /// The server turned the login away for load or limits (`[UNAVAILABLE]`, `[LIMIT]`…).
    #[error("mail server {addr} is not taking logins now: {text}")]
    Refused {
        /// `host:port`.
        addr: String,
        /// The server's answer.
        text: String,
    },
    /// `login = "user"`, but the host gave no password for the user (not granted, or a
    /// request without a password login).
    #[error("login = \"user\": the server passed no password for {0} (set pass_password = true for this connector; only HTTP Basic logins carry one)")]
    NoPassword(String),
    /// The mailbox does not exist (or may not be selected).
    #[error("no mailbox {0:?}")]
    NoMailbox(String),
    /// The item does not exist (any more).
    #[error("no item {0:?}")]
    NoItem(String),
    /// The server answered NO.
    #[error("mail server refused {command}: {text}")]
    No {
        /// The command verb.
        command: String,
        /// The server's text.
        text: String,
    },
    /// The server answered BAD (our bug or an incompatible server).
    #[error("mail server rejected {command} as malformed: {text}")]
    Bad {
        /// The command verb.
        command: String,
        /// The server's text.
        text: String,
    },
    /// A response we could not understand.
    #[error("unexpected answer from the mail server: {0}")]
    Protocol(String),
    /// A response larger than the configured limit.
    #[error("mail server response larger than {0} bytes")]
    TooLarge(usize),
    /// All connections of this user are busy for longer than the timeout.
    #[error("all {0} connections for this mailbox are busy")]
    Busy(usize),
    /// A setting is missing or wrong.
    #[error("connector settings: {0}")]
    Config(String),
    /// An argument is malformed (item id, folder id, query).
    #[error("{0}")]
    Invalid(String),
    /// The server lacks an extension this operation needs.
    #[error("mail server lacks {0}")]
    Unsupported(&'static str),
    /// A sync state no longer matches the server (UIDVALIDITY changed, state evicted).
    #[error("{0}")]
    Conflict(String),
}

impl ImapError {
    /// Whether the connection is unusable afterwards (discard it; a retry on a fresh
    /// connection may succeed).
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            ImapError::Unreachable { .. }
                | ImapError::Timeout { .. }
                | ImapError::Lost { .. }
                | ImapError::Tls { .. }
                | ImapError::Protocol(_)
                | ImapError::TooLarge(_)
        )
    }
}

impl From<ImapError> for Error {
    fn from(e: ImapError) -> Error {
        let text = e.to_string();
        match e {
            ImapError::Unreachable { .. }
            | ImapError::Timeout { .. }
            | ImapError::Lost { .. }
            | ImapError::Tls { .. }
            | ImapError::Refused { .. }
            | ImapError::Busy(_) => Error::Unavailable(text),
            ImapError::Denied { .. } | ImapError::NoPassword(_) => Error::Denied(text),
            ImapError::NoMailbox(_) | ImapError::NoItem(_) => Error::NotFound(text),
            ImapError::Invalid(_) => Error::Invalid(text),
            ImapError::Conflict(_) => Error::Conflict(text),
            ImapError::Unsupported(_) => Error::Denied(text),
            ImapError::No { .. }
            | ImapError::Bad { .. }
            | ImapError::Protocol(_)
            | ImapError::TooLarge(_)
            | ImapError::Config(_) => Error::Internal(text),
        }
    }
}

/// Result with [`ImapError`].
pub type Result<T, E = ImapError> = std::result::Result<T, E>;
