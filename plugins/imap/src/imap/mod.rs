//! The IMAP client. Parsing uses `imap-proto` (the resumable, sans-IO parser behind
//! `async-imap` and `tokio-imap`, maintained and fuzzed) for FETCH and LIST responses;
//! the session is our own small tokio loop, because the connector needs things the
//! higher-level crates hide or lack: CONDSTORE/QRESYNC modifiers and VANISHED, partial
//! `BODY.PEEK[]<o.n>` / `BINARY.PEEK` fetches read straight off the wire with a size bound,
//! APPEND streamed from the staging area, and a per-login pool with timeouts.

pub mod frame;
pub mod pool;
pub mod session;

pub use session::{Session, Target};
