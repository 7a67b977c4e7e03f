//! The LDAP directory connector: logins by bind, person lookup and GAL search against an
//! LDAP server (OpenLDAP, 389-ds, Active Directory).
//!
//! * **authenticate** — search the login's entry as the service account with `user_filter`
//!   (`{user}` = local part, `{login}` = `user@domain`, every value escaped per RFC 4515),
//!   then bind as that entry with the password on a connection of its own. A wrong password,
//!   an unknown user, an ambiguous filter or an empty password are `Ok(false)`; an
//!   unreachable server is [`Error::Unavailable`] naming `host:port`.
//! * **lookup** / **search** — the same search with attributes mapped to a [`Person`]
//!   (`attr_*` settings and the `attributes` list, e.g. `memberOf`), the GAL with the simple
//!   paged results control and `size_limit`.
//!
//! Transport: `ldaps://`, or `ldap://` upgraded with StartTLS (`starttls = true`, the
//! default), certificates checked against `ca_file` or the system roots; connect and
//! operation timeouts (`timeout_ms`); a small pool of connections per configuration.
//!
//! **Native only.** The plugin opens its own sockets with the `ldap3` crate, which the
//! WebAssembly sandbox would not allow; native plugins are trusted code (no sandbox), so this
//! is acceptable here, and the manifest says so. Settings are checked on first use (the WIT
//! has no load hook): a bad filter fails that call with the setting named.

use std::sync::Arc;

use ldap3::SearchEntry;
use switchboard_sdk::{host, DirectoryConnector, Error, Person, Principal, Result};

mod client;
pub mod settings;

pub use settings::{escape_filter_value, Settings};

/// What can go wrong, before it becomes an SDK [`Error`].
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// A setting is wrong (named).
    #[error("setting {setting}: {message}")]
    Setting {
        /// The setting's key in `[plugins.<name>.settings]`.
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The server cannot be reached (refused, timed out, TLS handshake failed).
    #[error("LDAP server {host_port} unreachable: {message}")]
    Unreachable {
        /// `host:port` from `url`.
        host_port: String,
        /// What happened.
        message: String,
    },
    /// The server answered with an error.
    #[error("LDAP server {host_port}: {message}")]
    Server {
        /// `host:port` from `url`.
        host_port: String,
        /// The operation and the result.
        message: String,
    },
    /// A bug or an environment problem.
    #[error("{0}")]
    Internal(String),
}

impl From<LdapError> for Error {
    fn from(e: LdapError) -> Error {
        match e {
            LdapError::Setting { .. } => Error::Invalid(format!("ldap connector {e}")),
            LdapError::Unreachable { .. } | LdapError::Server { .. } => {
                Error::Unavailable(e.to_string())
            }
            LdapError::Internal(m) => Error::Internal(m),
        }
    }
}

/// The plugin.
#[derive(Debug)]
pub struct Ldap;

fn settings() -> std::result::Result<Arc<Settings>, LdapError> {
    settings::current(&host::config::get)
}

/// First value of an attribute (attribute names are case-insensitive).
fn first<'a>(e: &'a SearchEntry, attr: &str) -> Option<&'a str> {
    values(e, attr).next()
}

fn values<'a>(e: &'a SearchEntry, attr: &str) -> impl Iterator<Item = &'a str> + 'a {
    let attr = attr.to_string();
    e.attrs
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(&attr))
        .flat_map(|(_, v)| v.iter().map(String::as_str))
}

/// Map an entry to a person of `domain`.
fn person(s: &Settings, e: &SearchEntry, domain: &str) -> Person {
    let uid = first(e, &s.attr_uid).unwrap_or_default();
    let email = first(e, &s.attr_mail).unwrap_or_default().to_string();
    let display_name = s
        .attr_display_name
        .iter()
        .find_map(|a| first(e, a))
        .unwrap_or(uid)
        .to_string();
    let login = if uid.is_empty() {
        email.clone()
    } else {
        format!("{}@{domain}", uid.to_lowercase())
    };
    let mut attributes = Vec::new();
    for m in &s.attributes {
        for v in values(e, &m.ldap) {
            attributes.push((m.name.clone(), v.to_string()));
        }
    }
    attributes.push(("dn".to_string(), e.dn.clone()));
    Person {
        login,
        display_name,
        email,
        phone: first(e, &s.attr_phone).unwrap_or_default().to_string(),
        attributes,
    }
}

fn user_filter(s: &Settings, who: &Principal) -> String {
    s.user_filter.render(&[
        ("user", &who.user),
        ("login", &who.address()),
        ("domain", &who.domain),
    ])
}

impl Ldap {
    /// The one entry of `who`, or `None` (no entry, or the filter matched several: a login
    /// must never be ambiguous, so that is logged and treated as unknown).
    fn find(
        s: &Arc<Settings>,
        who: &Principal,
        attrs: Vec<String>,
    ) -> std::result::Result<Option<SearchEntry>, LdapError> {
        let pool = client::pool(s);
        let filter = user_filter(s, who);
        let mut found = client::run(client::search(pool, filter.clone(), attrs, 2))?;
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => {
                host::log::warn(&format!(
                    "user_filter matched several entries for {} ({filter}); refusing the login",
                    who.address()
                ));
                Ok(None)
            }
        }
    }
}

impl DirectoryConnector for Ldap {
    fn authenticate(who: &Principal, password: &str) -> Result<bool> {
        // An empty password would be an unauthenticated bind, which servers accept as
        // anonymous (RFC 4513 §5.1.2): never a login.
        if password.is_empty() || who.user.is_empty() {
            return Ok(false);
        }
        let s = settings()?;
        let Some(entry) = Ldap::find(&s, who, vec!["1.1".to_string()])? else {
            return Ok(false);
        };
        let ok = client::run(client::bind_as(
            client::pool(&s),
            entry.dn,
            password.to_string(),
        ))?;
        Ok(ok)
    }

    fn lookup(who: &Principal) -> Result<Option<Person>> {
        let s = settings()?;
        let entry = Ldap::find(&s, who, s.wanted_attributes())?;
        Ok(entry.map(|e| person(&s, &e, &who.domain)))
    }

    fn search(domain: &str, query: &str, max: u32) -> Result<Vec<Person>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let s = settings()?;
        let gal = s.gal_filter.render(&[("domain", domain)]);
        let query = query.trim();
        let filter = if query.is_empty() {
            gal
        } else {
            let q = s
                .query_filter
                .render(&[("query", query), ("domain", domain)]);
            format!("(&{gal}{q})")
        };
        let limit = max.min(s.size_limit) as usize;
        let entries = client::run(client::search(
            client::pool(&s),
            filter,
            s.wanted_attributes(),
            limit,
        ))?;
        Ok(entries.iter().map(|e| person(&s, e, domain)).collect())
    }
}

// Native only (see the crate docs): there is deliberately no `export_wasm!`. Linked into the
// server (feature `builtin`, `manifest = "builtin:ldap"`): `builtin_entry()`, no C symbol;
// otherwise a loadable `.so` with `switchboard_plugin_entry`.
#[cfg(feature = "builtin")]
switchboard_sdk::export_native!(directory_connector: Ldap, builtin);
#[cfg(not(feature = "builtin"))]
switchboard_sdk::export_native!(directory_connector: Ldap);
