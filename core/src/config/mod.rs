//! Configuration: `switchboard.toml` plus `SWITCHBOARD__SECTION__KEY` environment overrides,
//! read with the `config` crate, deserialised into [`Config`], then validated into
//! [`Settings`]. Loading never stops at the first problem: every unknown key, bad value and
//! conflict is collected with its key path so `check-config` can print them all at once.

mod error;
pub(crate) mod load;
mod model;
mod plugins;
mod secret;
pub(crate) mod validate;

pub use error::{ConfigError, ConfigErrors};
pub use load::{load, ConfigSource};
pub use model::*;
pub use plugins::routes as plugin_routes;
pub use secret::Secret;
pub use validate::{Listener, Settings};

/// Frontends built into the core (no plugin needed).
pub const BUILTIN_FRONTENDS: &[&str] = &["autodiscover"];

/// Frontends that are implemented by plugins, with the HTTP path each one serves.
pub const PLUGIN_FRONTENDS: &[(&str, &str)] = &[
    ("eas", "/Microsoft-Server-ActiveSync"),
    ("mapi", "/mapi/"),
    ("rpc", "/rpc/"),
    ("ews", "/EWS/"),
    ("sip", ""),
];
