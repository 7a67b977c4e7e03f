//! The error type of this crate.

use sea_orm::DbErr;

/// Everything that can go wrong in the storage layer.
///
/// The messages are written for operators: they name the object involved (quoted, with control
/// characters escaped) and, where there is an obvious fix, say what it is. Underlying causes are
/// part of the message (after a colon) rather than a separate [`std::error::Error::source`], so
/// printing the error once shows everything without repetition.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database URL has a scheme this crate does not handle.
    #[error(
        "unsupported database URL {url:?}: expected \"sqlite://PATH\", \"sqlite::memory:\" or \
         \"postgres://USER@HOST/DB\""
    )]
    UnsupportedUrl {
        /// The URL as given, with any password replaced by `***`.
        url: String,
    },

    /// The database could not be opened or reached.
    #[error("cannot open database {url:?}: {cause}")]
    Connect {
        /// The URL as given, with any password replaced by `***`.
        url: String,
        /// What went wrong.
        cause: String,
    },

    /// Applying or listing schema migrations failed.
    #[error("database migration failed: {cause}")]
    Migration {
        /// The error reported by the migrator.
        cause: DbErr,
    },

    /// A database statement failed for a reason not covered by a more specific variant.
    #[error("database error while {context}: {cause}")]
    Database {
        /// What the storage layer was doing, e.g. `adding user "bob@example.com"`.
        context: String,
        /// The error reported by the database driver.
        cause: DbErr,
    },

    /// A domain name is not a valid DNS name.
    #[error("invalid domain name {name:?}: {reason}")]
    InvalidDomain {
        /// The name as given.
        name: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A user address is not of the form `local@domain`.
    #[error("invalid user address {address:?}: {reason} (expected \"local@domain\")")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// Why it was rejected.
        reason: String,
    },

    /// Some other argument was rejected before touching the database.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInput {
        /// Which argument, e.g. `plugin name` or `SIP realm`.
        field: &'static str,
        /// The value as given (shortened if very long).
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// Passwords must not be empty.
    #[error("the password for {address:?} must not be empty")]
    EmptyPassword {
        /// The user the password was for.
        address: String,
    },

    /// `add_domain` for a domain that is already there.
    #[error("domain {name:?} already exists")]
    DomainExists {
        /// The (lowercased) domain name.
        name: String,
    },

    /// An operation referred to a domain that does not exist.
    #[error("domain {name:?} does not exist; add it first with \"switchboard domain add {name}\"")]
    DomainNotFound {
        /// The (lowercased) domain name.
        name: String,
    },

    /// A domain cannot be removed while it still has users.
    #[error("domain {name:?} still has {users} user(s); remove them first")]
    DomainNotEmpty {
        /// The (lowercased) domain name.
        name: String,
        /// How many users it has.
        users: u64,
    },

    /// `add_user` for an address that is already taken.
    #[error("user {address:?} already exists")]
    UserExists {
        /// The (lowercased) address.
        address: String,
    },

    /// An operation referred to a user that does not exist.
    #[error("user {address:?} does not exist")]
    UserNotFound {
        /// The (lowercased) address.
        address: String,
    },

    /// Hashing a password failed (this indicates a bug or resource exhaustion, not bad input).
    #[error("hashing the password for {address:?} failed: {cause}")]
    PasswordHash {
        /// The user the password was for.
        address: String,
        /// The error reported by the hash implementation.
        cause: String,
    },

    /// A stored value could not be interpreted; the database was probably edited by hand.
    #[error("stored {what} is invalid: {cause}")]
    Corrupt {
        /// What was being read, e.g. `password hash of user "bob@example.com"`.
        what: String,
        /// Why it could not be interpreted.
        cause: String,
    },

    /// A background task (password hashing runs off the async executor) did not complete.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Attaches "what were we doing" to a sea-orm error.
pub(crate) trait DbResultExt<T> {
    /// Wraps an error into [`StorageError::Database`] with the given context.
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, StorageError>;
}

impl<T> DbResultExt<T> for Result<T, DbErr> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, StorageError> {
        self.map_err(|cause| StorageError::Database {
            context: context(),
            cause,
        })
    }
}

/// True if the error is a unique-constraint (or primary-key) violation.
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// True if the error is a foreign-key violation.
pub(crate) fn is_foreign_key_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))
    )
}
