//! # Writing Switchboard plugins
//!
//! Switchboard's protocol frontends (ActiveSync, SIP, Outlook) and backend connectors
//! (local store, LDAP, IMAP, Exchange) are plugins. This crate is everything a plugin author
//! needs: the data types of the WIT package `switchboard:plugin@0.1.0`, one trait per world,
//! the calls a plugin can make into the server, two export macros, and a mock host for tests.
//!
//! **One source, two builds.** The same crate builds as
//! - a WebAssembly component: `cargo build --release --target wasm32-wasip2` — sandboxed by
//!   wasmtime, with memory and time limits, no filesystem or network beyond what the admin
//!   grants. The default for anything that parses untrusted input.
//! - a native library: `cargo build --release` with `crate-type = ["cdylib"]` — no sandbox,
//!   runs with the server's privileges, for trusted code that needs native speed or
//!   libraries that do not build for WebAssembly.
//!
//! ## The four worlds
//!
//! | world | trait | what it does |
//! |---|---|---|
//! | `http-frontend` | [`HttpFrontend`] | serves HTTP paths; may *park* long-polls in the server |
//! | `sip-frontend` | [`SipFrontend`] | handles SIP messages the server framed |
//! | `mail-connector` | [`MailConnector`] | backs mailboxes |
//! | `directory-connector` | [`DirectoryConnector`] | backs people and logins |
//!
//! ## A complete plugin
//!
//! ```
//! use switchboard_sdk::http::{Outcome, Request, Response};
//! use switchboard_sdk::{host, HttpFrontend};
//!
//! pub struct Hello;
//!
//! impl HttpFrontend for Hello {
//!     fn handle(req: Request) -> Outcome {
//!         let who = req.principal.as_ref().map(|p| p.address()).unwrap_or_default();
//!         host::log::info(&format!("hello for {who}"));
//!         Outcome::Reply(Response::text(200, format!("hello {who}")))
//!     }
//! }
//!
//! switchboard_sdk::export_wasm!(http_frontend: Hello);
//! switchboard_sdk::export_native!(http_frontend: Hello);
//! ```
//!
//! Beside the crate goes a `plugin.toml` manifest naming the world, the SDK version and the
//! capabilities the plugin needs; `switchboard plugin new NAME --world WORLD` writes both,
//! and `switchboard plugin verify plugin.toml` checks the result before you deploy it.
//!
//! ## Rules of the road
//!
//! - Trait methods have no `self`: a WebAssembly instance may serve one request or many,
//!   so keep nothing in memory between calls. Durable state goes in [`host::kv`].
//! - Long waits (EAS Ping, MAPI NotificationWait) are not loops: return
//!   [`http::Outcome::Park`] and the server holds the request without your plugin.
//! - Big content moves in chunks: connectors answer `fetch` by ranges, frontends put
//!   [`http::BodyPart::Item`] in responses and the server streams it; content going into a
//!   mailbox is appended to a [`host::staging::Upload`] and read back by the connector in
//!   chunks.
//! - A panic, trap or overrun fails the one request; a plugin that keeps failing is
//!   disabled by the server and shown as such to the admin.
//!
//! ## Testing
//!
//! With the `mock` feature, [`mock::MockHost`] answers host calls in memory, so plugins are
//! unit-tested with plain `cargo test`.

#![deny(missing_docs)]

// Generated bindings name this crate by its published name, also from inside it.
extern crate self as switchboard_sdk;

pub mod abi;
pub mod host;
pub mod http;
mod macros;
pub mod mail;
#[cfg(all(feature = "mock", not(target_arch = "wasm32")))]
pub mod mock;
#[doc(hidden)]
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod sip;
pub mod types;
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub mod wasm;
mod worlds;

pub use types::{
    Attachment, Change, Chunk, Error, Folder, FolderKind, ItemClass, ItemSummary, Person,
    Principal, Result, SyncPage,
};
pub use worlds::{
    dispatch_directory, dispatch_mail, DirectoryConnector, HttpFrontend, MailConnector, SipFrontend,
};

#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub use wit_bindgen as __wit_bindgen;

#[doc(hidden)]
pub mod __private {
    pub use serde::de::DeserializeOwned;
}
