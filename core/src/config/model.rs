//! The typed configuration. Every default lives in the `Default` impls in this file and
//! nowhere else; `switchboard.toml` at the repository root documents each of them, and a
//! test checks that the sample parses to exactly these defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::secret::Secret;

/// The whole `switchboard.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `[server]`: identity and data directory.
    pub server: ServerConfig,
    /// `[log]`: tracing output.
    pub log: LogConfig,
    /// `[database]`: where state lives.
    pub database: DatabaseConfig,
    /// `[tls]`: certificate for HTTPS and SIP over TLS.
    pub tls: TlsConfig,
    /// `[http]`: the client-facing HTTP(S) listener.
    pub http: HttpConfig,
    /// `[admin]`: health, readiness, metrics and the admin API.
    pub admin: AdminConfig,
    /// `[sip]`: SIP transport endpoints.
    pub sip: SipConfig,
    /// `[auth]`: credential checks and throttling.
    pub auth: AuthConfig,
    /// `[frontends.<name>]`: protocol frontends, toggled by admins.
    pub frontends: BTreeMap<String, FrontendConfig>,
    /// `[plugins.<name>]`: plugin files the frontends and connectors come from.
    pub plugins: BTreeMap<String, PluginConfig>,
    /// `[plugin_host]`: the WebAssembly engine.
    pub plugin_host: PluginHostConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            log: LogConfig::default(),
            database: DatabaseConfig::default(),
            tls: TlsConfig::default(),
            http: HttpConfig::default(),
            admin: AdminConfig::default(),
            sip: SipConfig::default(),
            auth: AuthConfig::default(),
            // Built-in frontends are on unless the file turns them off; entries in the file
            // are merged over these.
            // ActiveSync and SIP IM/presence are on by default, served by the embedded
            // `builtin:eas` and `builtin:sip` components.
            frontends: BTreeMap::from([
                ("autodiscover".to_string(), FrontendConfig::default()),
                (
                    "eas".to_string(),
                    FrontendConfig {
                        plugin: Some("eas".to_string()),
                        ..FrontendConfig::default()
                    },
                ),
                (
                    "sip".to_string(),
                    FrontendConfig {
                        plugin: Some("sip".to_string()),
                        ..FrontendConfig::default()
                    },
                ),
            ]),
            // The built-in local mail store serves every domain no other mail connector claims.
            // A `[plugins.local]` table in the file is merged over this entry key by key (so
            // `enabled = false` alone turns it off); while the file does not mention it, a
            // domain (or "*") claimed by another mail connector is left to that connector.
            // The ActiveSync and SIP frontends: WebAssembly components embedded in the binary
            // (core/build.rs builds them), sandboxed because they parse untrusted bytes.
            plugins: BTreeMap::from([
                (
                    "local".to_string(),
                    PluginConfig {
                        manifest: PathBuf::from("builtin:local"),
                        ..PluginConfig::default()
                    },
                ),
                (
                    "eas".to_string(),
                    PluginConfig {
                        manifest: PathBuf::from("builtin:eas"),
                        ..PluginConfig::default()
                    },
                ),
                (
                    "sip".to_string(),
                    PluginConfig {
                        manifest: PathBuf::from("builtin:sip"),
                        ..PluginConfig::default()
                    },
                ),
            ]),
            plugin_host: PluginHostConfig::default(),
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Directory for the SQLite database, generated certificates and caches.
    pub data_dir: PathBuf,
    /// Public host name: used in the self-signed certificate and in URLs handed to clients.
    pub hostname: String,
    /// Public base URL clients use (Autodiscover answers with it). Empty: `https://{hostname}:{first https port}`.
    pub public_url: String,
    /// Create a demo domain and user with a random password when the database has no users.
    pub demo_user: bool,
    /// Seconds to let in-flight requests finish on shutdown.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            hostname: "localhost".into(),
            public_url: String::new(),
            demo_user: true,
            shutdown_grace_secs: 10,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl TryFrom<String> for LogFormat {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "unknown log format \"{other}\" (expected \"text\" or \"json\")"
            )),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// A tracing `EnvFilter` directive, e.g. `info` or `info,switchboard_core::http=debug`.
    /// `RUST_LOG` overrides it.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`; may be an `env:`/`file:` reference.
    /// Unset: `sqlite://{data_dir}/switchboard.db`.
    pub url: Option<Secret>,
    /// Connection pool size.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
        }
    }
}

/// `[tls]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// PEM certificate chain. Unset (with `key` unset): a self-signed certificate is
    /// generated under `{data_dir}/tls/` on first start.
    pub cert: Option<PathBuf>,
    /// PEM private key matching `cert`.
    pub key: Option<PathBuf>,
    /// Seconds a client gets to finish the TLS handshake.
    pub handshake_timeout_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            handshake_timeout_secs: 10,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// HTTPS listen addresses (`IP:PORT`).
    pub https: Vec<String>,
    /// Plain-HTTP listen addresses, for use behind a TLS-terminating proxy. Empty by default.
    pub plain: Vec<String>,
    /// Largest request head (request line + headers) accepted; larger gets 431.
    pub max_header_bytes: usize,
    /// Largest request body accepted; larger gets 413.
    pub max_body_bytes: u64,
    /// Seconds a client gets to send a complete request head, and the longest an idle
    /// keep-alive connection is kept (slow-loris protection).
    pub header_timeout_secs: u64,
    /// Most simultaneous client connections over all HTTP listeners.
    pub max_connections: usize,
    /// Realm shown in `WWW-Authenticate: Basic`.
    pub basic_realm: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            https: vec!["0.0.0.0:8443".into()],
            plain: Vec::new(),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            header_timeout_secs: 30,
            max_connections: 20_000,
            basic_realm: "Switchboard".into(),
        }
    }
}

/// `[admin]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    /// Admin listener (plain HTTP): `/healthz`, `/readyz`, `/metrics`, `/admin/*`.
    /// Empty string disables it.
    pub listen: String,
    /// Bearer token for `/admin/*`; required when `listen` is not a loopback address.
    pub token: Option<Secret>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8090".into(),
            token: None,
        }
    }
}

/// `[sip]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SipConfig {
    /// UDP listen addresses.
    pub udp: Vec<String>,
    /// TCP listen addresses.
    pub tcp: Vec<String>,
    /// TLS listen addresses.
    pub tls: Vec<String>,
    /// Largest SIP message (head + body) accepted on any transport.
    pub max_message_bytes: usize,
    /// Seconds without a byte from a TCP/TLS client before the connection is closed
    /// (RFC 5626 clients keep it open with CRLF pings).
    pub idle_timeout_secs: u64,
    /// Most simultaneous SIP TCP + TLS connections.
    pub max_connections: usize,
    /// Messages per second one source address (IPv6: one /64) may send on average; excess
    /// requests get 503 with Retry-After on TCP/TLS and are dropped on UDP. 0: no limit.
    pub rate_limit_per_sec: u32,
    /// Messages one source address may send at once after a quiet period.
    pub rate_limit_burst: u32,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            udp: vec!["0.0.0.0:5060".into()],
            tcp: vec!["0.0.0.0:5060".into()],
            tls: vec!["0.0.0.0:5061".into()],
            max_message_bytes: 65_535,
            idle_timeout_secs: 300,
            max_connections: 20_000,
            rate_limit_per_sec: 100,
            rate_limit_burst: 200,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Seconds a Digest nonce stays fresh; an older one gets `stale=true`.
    pub nonce_ttl_secs: u64,
    /// `[auth.throttle]`
    pub throttle: ThrottleConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            nonce_ttl_secs: 300,
            throttle: ThrottleConfig::default(),
        }
    }
}

/// `[auth.throttle]`: failed-login throttling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottleConfig {
    /// Failures for one login within `window_secs` before it is locked out.
    pub max_failures_per_user: u32,
    /// Failures from one source address within `window_secs` before it is locked out.
    pub max_failures_per_address: u32,
    /// Counting window, seconds.
    pub window_secs: u64,
    /// Lockout length, seconds.
    pub lockout_secs: u64,
    /// Most logins + addresses tracked at once (bounds memory under spraying attacks).
    pub max_tracked: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures_per_user: 5,
            max_failures_per_address: 20,
            window_secs: 900,
            lockout_secs: 900,
            max_tracked: 100_000,
        }
    }
}

/// `[frontends.<name>]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrontendConfig {
    /// Whether the frontend's routes answer.
    pub enabled: bool,
    /// The `[plugins.<name>]` entry that implements it; empty for built-in frontends.
    pub plugin: Option<String>,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            plugin: None,
        }
    }
}

/// `[plugins.<name>]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginConfig {
    /// Path to the plugin's `plugin.toml` (which names the `.wasm` or native file), or
    /// `builtin:NAME` for a plugin built into the binary (`builtin:local`).
    pub manifest: PathBuf,
    /// Load it. A disabled plugin is not loaded; frontends naming it are refused.
    pub enabled: bool,
    /// Connectors: the domains this connector serves; `"*"` serves every domain no other
    /// connector of the same kind claims.
    pub domains: Vec<String>,
    /// Connectors: `host:port` pairs the plugin may connect to (must be asked for by the
    /// manifest's `capabilities.outbound`).
    pub outbound: Vec<String>,
    /// Directories for the manifest's `capabilities.dirs`: name → path on this machine,
    /// mounted read-only.
    pub dirs: BTreeMap<String, PathBuf>,
    /// The plugin's own settings, checked against the manifest's `[config.*]` schema.
    pub settings: BTreeMap<String, toml::Value>,
    /// Connectors: settings for one domain, over `settings` key by key, for calls about a
    /// user of that domain (`[plugins.imap.domain_settings."b.example"]`: another server or
    /// service account per customer). Checked against the same schema.
    pub domain_settings: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// Mail connectors: may ask for the password the user logged in with on this request
    /// (`credentials.password`), for backends where each user logs in as themselves.
    pub pass_password: bool,
    /// Longest a single call may run, in milliseconds.
    pub deadline_ms: u64,
    /// Linear-memory cap per WebAssembly instance, in MiB.
    pub memory_mb: u64,
    /// Faults in a row after which the plugin is disabled until the next reload.
    pub max_faults: u32,
    /// Warm WebAssembly instances kept for reuse.
    pub warm_instances: u32,
    /// Calls after which a warm instance is replaced by a fresh one.
    pub recycle_after: u32,
    /// WebAssembly calls of this plugin running at once at most; more wait their turn (a burst
    /// then reuses a few instances instead of touching memory for one each).
    pub max_concurrent_calls: u32,
    /// Key-value quota in bytes, overriding the manifest's `capabilities.kv_quota_bytes`
    /// (1 to 16 TiB; only for plugins whose manifest asks for kv at all). Unset: the manifest's.
    pub kv_quota_bytes: Option<u64>,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            manifest: PathBuf::new(),
            enabled: true,
            domains: vec!["*".into()],
            outbound: Vec::new(),
            dirs: BTreeMap::new(),
            settings: BTreeMap::new(),
            domain_settings: BTreeMap::new(),
            pass_password: false,
            deadline_ms: 10_000,
            memory_mb: 64,
            max_faults: 5,
            warm_instances: 16,
            recycle_after: 10_000,
            max_concurrent_calls: 64,
            kv_quota_bytes: None,
        }
    }
}

/// `[plugin_host]`: the WebAssembly engine, shared by all plugins (restart to change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginHostConfig {
    /// Instances the pooling allocator holds at most, all plugins together.
    pub instances: u32,
    /// Largest `memory_mb` any plugin may be given.
    pub max_memory_mb: u64,
    /// Keep compiled components in `{data_dir}/plugin-cache` so restarts skip compilation.
    pub compile_cache: bool,
}

impl Default for PluginHostConfig {
    fn default() -> Self {
        Self {
            instances: 1000,
            max_memory_mb: 256,
            compile_cache: true,
        }
    }
}
