//! Switchboard core: configuration, storage wiring, authentication, listeners, admin API.
//!
//! The binary in `main.rs` is a thin CLI over this library; integration tests start the
//! server in-process through [`server::start`].

pub mod admin;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod device_admin;
pub mod directory_auth;
pub mod frontends;
pub mod http;
pub mod mail_import;
pub mod net;
pub mod observability;
pub mod plugins;
pub mod readiness;
pub mod server;
pub mod sip;
pub mod state;
pub mod tls;
