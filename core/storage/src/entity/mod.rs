//! sea-orm entities, one module per table.
//!
//! These describe the schema created by [`crate::migration`]. They are public so that code
//! using [`Storage::connection`](crate::Storage::connection) directly (reports, one-off tools)
//! can query the tables with sea-orm; the typed methods on [`Storage`](crate::Storage) are the
//! supported interface and should be preferred.

pub mod audit_log;
pub mod device;
pub mod domain;
pub mod plugin_kv;
pub mod sip_credential;
pub mod user;
