//! Validation: turn a deserialised [`Config`] into [`Settings`] — addresses parsed, secrets
//! resolved, paths made absolute — collecting every problem on the way.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::load::ConfigSource;
use super::model::Config;
use super::plugins;
use crate::plugins::manifest::{Manifest, SettingType};

/// Which listener a socket address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// `http.https`
    Https,
    /// `http.plain`
    Http,
    /// `admin.listen`
    Admin,
    /// `sip.udp`
    SipUdp,
    /// `sip.tcp`
    SipTcp,
    /// `sip.tls`
    SipTls,
}

/// A validated configuration: the typed [`Config`] plus everything derived from it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configuration as read.
    pub config: Config,
    /// Where it was read from.
    pub source: ConfigSource,
    /// `server.data_dir`, relative paths resolved.
    pub data_dir: PathBuf,
    /// The database URL with secrets resolved (never log it).
    pub database_url: String,
    /// The admin bearer token, if any (never log it).
    pub admin_token: Option<String>,
    /// Every listen address, by listener.
    pub listeners: Vec<(Listener, SocketAddr)>,
    /// `tls.cert` / `tls.key`, resolved; `None` means generate a self-signed pair.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// Manifests of the enabled plugins, validated against their configuration.
    pub plugin_manifests: BTreeMap<String, Manifest>,
}

impl Settings {
    /// Listen addresses of one kind.
    pub fn addrs(&self, kind: Listener) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
            .collect()
    }

    /// The HTTP path each enabled frontend serves.
    pub fn enabled_frontends(&self) -> Vec<&str> {
        self.config
            .frontends
            .iter()
            .filter(|(_, f)| f.enabled)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

pub(super) fn validate(
    mut config: Config,
    explicit_plugins: &std::collections::BTreeSet<String>,
    source: &ConfigSource,
    errors: &mut Vec<ConfigError>,
) -> Settings {
    let base = source.base_dir();
    let env = |k: &str| source.env.get(k).cloned();
    let mut err = |path: &str, msg: String| errors.push(ConfigError::new(path, msg));

    // [server]
    let data_dir = absolutize(&base, &config.server.data_dir);
    if config.server.hostname.trim().is_empty() {
        err("server.hostname", "must not be empty".into());
    }
    let url = &config.server.public_url;
    if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
        err(
            "server.public_url",
            format!("\"{url}\" must start with https:// or http://"),
        );
    }

    // [log]
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        err(
            "log.level",
            format!("\"{}\" is not a valid filter: {e}", config.log.level),
        );
    }

    // [database]
    let database_url = match &config.database.url {
        None => format!("sqlite://{}", data_dir.join("switchboard.db").display()),
        Some(secret) => match secret.resolve(&env, &base) {
            Ok(u) => u,
            Err(e) => {
                err("database.url", e);
                String::new()
            }
        },
    };
    if !database_url.is_empty()
        && !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| database_url.starts_with(p))
    {
        err(
            "database.url",
            "must start with sqlite:// , postgres:// or postgresql:// (value not shown: it may hold a password)"
                .into(),
        );
    }
    if config.database.max_connections == 0 {
        err("database.max_connections", "must be at least 1".into());
    }

    // [tls]
    let tls_files = match (&config.tls.cert, &config.tls.key) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            let (c, k) = (absolutize(&base, c), absolutize(&base, k));
            for (path, p) in [("tls.cert", &c), ("tls.key", &k)] {
                if let Err(e) = std::fs::metadata(p) {
                    err(
                        path,
                        format!("cannot read {}: {}", p.display(), io_reason(&e)),
                    );
                }
            }
            Some((c, k))
        }
        (Some(_), None) => {
            err("tls.key", "must be set when tls.cert is set".into());
            None
        }
        (None, Some(_)) => {
            err("tls.cert", "must be set when tls.key is set".into());
            None
        }
    };
    at_least(
        &mut err,
        "tls.handshake_timeout_secs",
        config.tls.handshake_timeout_secs,
        1,
    );

    // Listeners: parse every address, then look for two listeners on one socket.
    let mut listeners = Vec::new();
    let mut parse_list = |path: &str,
                          kind: Listener,
                          list: &[String],
                          err: &mut dyn FnMut(&str, String)| {
        for (i, raw) in list.iter().enumerate() {
            match raw.trim().parse::<SocketAddr>() {
                Ok(a) => listeners.push((kind, a, format!("{path}[{i}]"))),
                Err(_) => err(
                    &format!("{path}[{i}]"),
                    format!("\"{raw}\" is not a socket address (expected IP:PORT, e.g. 0.0.0.0:8443 or [::]:8443)"),
                ),
            }
        }
    };
    parse_list("http.https", Listener::Https, &config.http.https, &mut err);
    parse_list("http.plain", Listener::Http, &config.http.plain, &mut err);
    parse_list("sip.udp", Listener::SipUdp, &config.sip.udp, &mut err);
    parse_list("sip.tcp", Listener::SipTcp, &config.sip.tcp, &mut err);
    parse_list("sip.tls", Listener::SipTls, &config.sip.tls, &mut err);
    let admin_listen = config.admin.listen.trim();
    if !admin_listen.is_empty() {
        match admin_listen.parse::<SocketAddr>() {
            Ok(a) => listeners.push((Listener::Admin, a, "admin.listen".to_string())),
            Err(_) => err(
                "admin.listen",
                format!("\"{admin_listen}\" is not a socket address (expected IP:PORT, e.g. 127.0.0.1:8090)"),
            ),
        }
    }
    for (i, (kind_a, a, path_a)) in listeners.iter().enumerate() {
        for (kind_b, b, path_b) in &listeners[..i] {
            let udp_a = *kind_a == Listener::SipUdp;
            let udp_b = *kind_b == Listener::SipUdp;
            if udp_a == udp_b && sockets_clash(a, b) {
                err(
                    path_a,
                    format!("duplicate listener: {a} clashes with {path_b} ({b})"),
                );
            }
        }
    }
    if config.http.https.is_empty() && config.http.plain.is_empty() {
        err("http", "no listener: set http.https or http.plain".into());
    }
    let listeners: Vec<_> = listeners.into_iter().map(|(k, a, _)| (k, a)).collect();

    // [http]
    let h = &config.http;
    if !(8192..=1024 * 1024).contains(&h.max_header_bytes) {
        err(
            "http.max_header_bytes",
            format!("{} is out of range (8192 to 1048576)", h.max_header_bytes),
        );
    }
    at_least(&mut err, "http.max_body_bytes", h.max_body_bytes, 1);
    at_least(
        &mut err,
        "http.header_timeout_secs",
        h.header_timeout_secs,
        1,
    );
    at_least(
        &mut err,
        "http.max_connections",
        h.max_connections as u64,
        1,
    );

    // [admin]
    let admin_token = match &config.admin.token {
        None => None,
        Some(secret) => match secret.resolve(&env, &base) {
            Ok(t) => Some(t),
            Err(e) => {
                err("admin.token", e);
                None
            }
        },
    };
    if let Some((_, addr)) = listeners.iter().find(|(k, _)| *k == Listener::Admin) {
        if !is_loopback(addr.ip()) && config.admin.token.is_none() {
            err(
                "admin.token",
                format!("required because admin.listen ({addr}) is not a loopback address"),
            );
        }
    }

    // [sip]
    let s = &config.sip;
    if !(1024..=1024 * 1024).contains(&s.max_message_bytes) {
        err(
            "sip.max_message_bytes",
            format!("{} is out of range (1024 to 1048576)", s.max_message_bytes),
        );
    }
    at_least(&mut err, "sip.idle_timeout_secs", s.idle_timeout_secs, 1);
    at_least(&mut err, "sip.max_connections", s.max_connections as u64, 1);
    at_least(
        &mut err,
        "sip.rate_limit_burst",
        s.rate_limit_burst.into(),
        1,
    );

    // [auth]
    let a = &config.auth;
    at_least(&mut err, "auth.nonce_ttl_secs", a.nonce_ttl_secs, 10);
    let t = &a.throttle;
    at_least(
        &mut err,
        "auth.throttle.max_failures_per_user",
        t.max_failures_per_user.into(),
        1,
    );
    at_least(
        &mut err,
        "auth.throttle.max_failures_per_address",
        t.max_failures_per_address.into(),
        1,
    );
    at_least(&mut err, "auth.throttle.window_secs", t.window_secs, 1);
    at_least(&mut err, "auth.throttle.lockout_secs", t.lockout_secs, 1);
    at_least(
        &mut err,
        "auth.throttle.max_tracked",
        t.max_tracked as u64,
        100,
    );

    // [frontends] and [plugins]
    let plugin_manifests = plugins::validate(&mut config, explicit_plugins, &base, &mut err);
    // Secret plugin settings given as `env:NAME` / `file:PATH` must resolve now, so
    // `check-config` catches them (the plugin host resolves them again when it loads the plugin).
    for (name, m) in &plugin_manifests {
        let Some(p) = config.plugins.get(name) else {
            continue;
        };
        for (key, value) in &p.settings {
            let (Some(s), Some(raw)) = (m.settings.get(key), value.as_str()) else {
                continue;
            };
            if s.kind == SettingType::Secret {
                if let Err(e) = super::secret::Secret::new(raw).resolve(&env, &base) {
                    err(&format!("plugins.{name}.settings.{key}"), e);
                }
            }
        }
    }

    Settings {
        data_dir,
        database_url,
        admin_token,
        listeners,
        tls_files,
        plugin_manifests,
        config,
        source: source.clone(),
    }
}

fn at_least(err: &mut dyn FnMut(&str, String), path: &str, value: u64, min: u64) {
    if value < min {
        err(path, format!("must be at least {min} (got {value})"));
    }
}

fn absolutize(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

/// Two sockets of the same protocol clash when they share a port and either the addresses are
/// equal or one of them is the wildcard of the same family. Port 0 (ephemeral) never clashes.
fn sockets_clash(a: &SocketAddr, b: &SocketAddr) -> bool {
    if a.port() == 0 || a.port() != b.port() {
        return false;
    }
    a.ip() == b.ip()
        || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified()))
}
