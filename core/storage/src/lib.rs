//! Switchboard's database layer.
//!
//! A typed repository over [sea-orm](https://www.sea-ql.org/SeaORM/): SQLite is the embedded
//! default (`sqlite://PATH`, zero setup) and PostgreSQL is used when the URL says so
//! (`postgres://...`). Everything the server persists for accounts goes through [`Storage`]:
//!
//! * [domains](Storage::add_domain) and [users](Storage::add_user) (argon2id password hashes),
//! * [SIP digest credentials](Storage::sip_ha1) (precomputed HA1 values per realm, MD5 and SHA-256),
//! * [devices](Storage::upsert_device) (ActiveSync phones and similar clients),
//! * a per-plugin durable [key-value store](Storage::kv_get) with compare-and-swap,
//! * the [audit log](Storage::audit).
//!
//! The schema is created and upgraded by [`Storage::migrate`]; the migrations live in
//! [`migration`]. Later plugins that need their own tables can use [`Storage::connection`].
//!
//! Every fallible function returns [`StorageError`], whose messages say what was wrong and
//! where, so they can be shown to an operator as they are.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_storage::StorageError> {
//! use switchboard_storage::{PasswordCheck, Storage};
//!
//! let storage = Storage::connect("sqlite:///var/lib/switchboard/switchboard.db", 8).await?;
//! storage.migrate().await?;
//! storage.add_domain("example.com").await?;
//! storage.add_user("bob@example.com", "correct horse", Some("Bob")).await?;
//! match storage.verify_password("bob@example.com", "correct horse").await? {
//!     PasswordCheck::Valid(user) => println!("hello {}", user.address),
//!     other => println!("denied: {other:?}"),
//! }
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod audit;
mod connect;
mod devices;
mod directory_users;
mod domains;
pub mod entity;
mod error;
pub mod migration;
mod password;
mod plugin_kv;
mod sip_credentials;
mod time;
mod users;
mod validate;

pub use audit::{AuditEntry, AuditOutcome, AuditRecord};
pub use connect::{Backend, Storage};
pub use devices::{Device, DeviceSeen, WipeState};
pub use directory_users::{DirectoryLogin, DIRECTORY_PASSWORD_HASH};
pub use domains::Domain;
pub use error::StorageError;
pub use password::PasswordCheck;
pub use sip_credentials::{digest_ha1, HashAlgorithm, SipHa1};
pub use users::User;

/// The sea-orm version this crate is built against, re-exported so callers that use
/// [`Storage::connection`] (for example plugins with their own tables) agree on the types.
pub use sea_orm;
