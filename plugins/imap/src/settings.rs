//! The connector's settings (`[plugins.imap] settings = { … }` in `switchboard.toml`,
//! checked against `plugin.toml`'s schema by the host). They are read on every call through
//! `config.get`, which answers with the admin's `domain_settings` for the domain of the user
//! the call is for: one connector serves several customers, each with its own server and
//! service account.
//!
//! Logging in, two ways (`login`):
//! - `"master"` (default): a **service (master) account** names the user in the login; with
//!   Dovecot's master-user syntax `alice@example.com*switchboard` (`login_format =
//!   "{address}*{master}"`, the default). Placeholders: `{user}`, `{domain}`, `{address}`,
//!   `{master}`.
//! - `"user"`: the user's own login (`login_format` default `{address}`) with the password
//!   they gave Switchboard on this request, which the host passes only to a connector the
//!   admin granted `pass_password = true`. Background watches keep the password of the Ping
//!   that started them, in memory only.

use std::time::Duration;

use switchboard_sdk::{host, Principal};

use crate::dav::http::DavTarget;
use crate::error::{ImapError, Result};
use crate::imap::Target;
use crate::smtp::SmtpTarget;
use crate::tls::Mode;

/// Parsed settings.
#[derive(Clone)]
pub struct Settings {
    /// IMAP host.
    pub host: String,
    /// IMAP port.
    pub port: u16,
    /// Log in as the user with their own password (`login = "user"`) instead of with the
    /// service account (`"master"`, the default).
    pub as_user: bool,
    /// Service account name.
    pub master_user: String,
    /// Service account password (never logged).
    pub master_password: String,
    /// How the login is formed.
    pub login_format: String,
    /// Per connect and per command.
    pub timeout: Duration,
    /// Open connections per login.
    pub max_connections: usize,
    /// Use CONDSTORE/QRESYNC when offered (off: the known-set fallback is used throughout).
    pub condstore: bool,
    /// Watch folders for parked Pings with IDLE when the server offers it (off: NOOP polls).
    pub idle: bool,
    /// How often a watch looks at folders it cannot IDLE on (STATUS), or polls without IDLE.
    pub watch_poll: Duration,
    /// Most users watched at once (each holds one IMAP connection); 0 turns watching off.
    pub max_watchers: usize,
    /// Largest single response accepted.
    pub max_response: usize,
    /// Plain, STARTTLS (default) or implicit TLS.
    pub tls: Mode,
    /// PEM file of trusted CAs instead of the public roots.
    pub ca_file: Option<String>,
    /// SMTP submission host (default: the IMAP host).
    pub smtp_host: String,
    /// SMTP port (587).
    pub smtp_port: u16,
    /// SMTP security (STARTTLS by default).
    pub smtp_tls: Mode,
    /// SMTP AUTH login; default: the IMAP login (master-user syntax).
    pub smtp_user: Option<String>,
    /// SMTP AUTH password; default: the master password.
    pub smtp_password: Option<String>,
    /// CalDAV/CardDAV server (`http(s)://host[:port][/base]`); none: no DAV folders.
    pub dav_url: Option<String>,
    /// Path of a user's collections under the server, with placeholders.
    pub dav_home: String,
    /// DAV login (a service account allowed into every user's collections).
    pub dav_user: Option<String>,
    /// Its password; default: the master password.
    pub dav_password: Option<String>,
    /// Calendars and task lists are listed for the last this many days (0: no limit).
    pub calendar_past_days: u32,
    /// … and the next this many days (0: no limit).
    pub calendar_future_days: u32,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("master_user", &self.master_user)
            .field("master_password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn get(key: &str) -> Option<String> {
    host::config::get(key).filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(key: &str, default: T) -> Result<T> {
    match get(key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ImapError::Config(format!("{key}: not a number: {v:?}"))),
    }
}

fn boolean(key: &str, default: bool) -> Result<bool> {
    match get(key).as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(ImapError::Config(format!("{key}: not a boolean: {v:?}"))),
    }
}

impl Settings {
    /// Read the settings.
    pub fn load() -> Result<Settings> {
        let host = get("host").ok_or_else(|| ImapError::Config("host is not set".into()))?;
        let as_user = match get("login").as_deref() {
            None | Some("master") => false,
            Some("user") => true,
            Some(v) => {
                return Err(ImapError::Config(format!(
                    "login: {v:?} is not master or user"
                )))
            }
        };
        // Logging in as the user needs no service account.
        let master = |key: &str| match get(key) {
            Some(v) => Ok(v),
            None if as_user => Ok(String::new()),
            None => Err(ImapError::Config(format!(
                "{key} is not set (needed with login = \"master\")"
            ))),
        };
        let master_user = master("master_user")?;
        let master_password = master("master_password")?;
        let condstore = boolean("condstore", true)?;
        let idle = boolean("idle", true)?;
        let tls = match get("tls") {
            None => Mode::StartTls,
            Some(v) => Mode::parse(&v).ok_or_else(|| {
                ImapError::Config(format!("tls: {v:?} is not none, starttls or tls"))
            })?,
        };
        let smtp_tls = match get("smtp_tls") {
            None => Mode::StartTls,
            Some(v) => Mode::parse(&v).ok_or_else(|| {
                ImapError::Config(format!("smtp_tls: {v:?} is not none, starttls or tls"))
            })?,
        };
        Ok(Settings {
            dav_url: get("dav_url"),
            dav_home: get("dav_home").unwrap_or_else(|| "/{address}/".into()),
            dav_user: get("dav_user"),
            dav_password: get("dav_password"),
            calendar_past_days: number("calendar_past_days", 0u32)?,
            calendar_future_days: number("calendar_future_days", 0u32)?,
            smtp_host: get("smtp_host").unwrap_or_else(|| host.clone()),
            smtp_port: number("smtp_port", 587)?,
            smtp_tls,
            smtp_user: get("smtp_user"),
            smtp_password: get("smtp_password"),
            tls,
            ca_file: get("ca_file"),
            host,
            port: number("port", 143)?,
            master_user,
            master_password,
            login_format: get("login_format").unwrap_or_else(|| {
                if as_user {
                    "{address}"
                } else {
                    "{address}*{master}"
                }
                .into()
            }),
            as_user,
            timeout: Duration::from_secs(number("timeout_secs", 30u64)?.max(1)),
            max_connections: number("max_connections", 4usize)?.max(1),
            condstore,
            idle,
            watch_poll: Duration::from_secs(number("watch_poll_secs", 60u64)?.max(1)),
            max_watchers: number("max_watchers", 1000usize)?,
            max_response: 16 * 1024 * 1024,
        })
    }

    /// Submission target for `who`: the relay account when set, else the IMAP login.
    pub fn smtp_target(&self, who: &Principal) -> Result<SmtpTarget> {
        let imap = self.target(who)?;
        Ok(SmtpTarget {
            host: self.smtp_host.clone(),
            port: self.smtp_port,
            tls: self.smtp_tls,
            ca_file: self.ca_file.clone(),
            login: self.smtp_user.clone().unwrap_or(imap.login),
            password: self.smtp_password.clone().unwrap_or(imap.password),
            timeout: self.timeout,
        })
    }

    /// The password of `who`'s logins: the service account's, or with `login = "user"` the
    /// one the user logged in with on this request.
    fn password(&self, who: &Principal) -> Result<String> {
        if !self.as_user {
            return Ok(self.master_password.clone());
        }
        host::credentials::password(who).ok_or_else(|| ImapError::NoPassword(who.address()))
    }

    /// DAV target and the user's home path, when DAV is configured.
    pub fn dav(&self, who: &Principal) -> Result<Option<(DavTarget, String)>> {
        let Some(url) = &self.dav_url else {
            return Ok(None);
        };
        let (tls, host, port, base) = DavTarget::parse_url(url)
            .ok_or_else(|| ImapError::Config(format!("dav_url: not an http(s) URL: {url:?}")))?;
        let home = self
            .dav_home
            .replace("{address}", &who.address())
            .replace("{user}", &who.user)
            .replace("{domain}", &who.domain);
        let home = format!("{base}/{}", home.trim_start_matches('/'));
        let home = if home.ends_with('/') {
            home
        } else {
            format!("{home}/")
        };
        Ok(Some((
            DavTarget {
                tls,
                host,
                port,
                base,
                user: match (&self.dav_user, self.as_user) {
                    (Some(u), _) => u.clone(),
                    (None, true) => self.target(who)?.login,
                    (None, false) => self.master_user.clone(),
                },
                password: match &self.dav_password {
                    Some(p) => p.clone(),
                    None => self.password(who)?,
                },
                timeout: self.timeout,
                ca_file: self.ca_file.clone(),
            },
            home,
        )))
    }

    /// Connection target for `who`.
    pub fn target(&self, who: &Principal) -> Result<Target> {
        let login = self
            .login_format
            .replace("{address}", &who.address())
            .replace("{user}", &who.user)
            .replace("{domain}", &who.domain)
            .replace("{master}", &self.master_user);
        Ok(Target {
            host: self.host.clone(),
            port: self.port,
            login,
            password: self.password(who)?,
            timeout: self.timeout,
            max_response: self.max_response,
            condstore: self.condstore,
            tls: self.tls,
            ca_file: self.ca_file.clone(),
        })
    }
}
