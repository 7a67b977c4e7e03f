//! `plugin.toml`: what a plugin is, which SDK world it implements, and which capabilities it
//! asks for. The host reads it before touching the plugin file and refuses anything it cannot
//! honour, with every problem listed by key path (same format as config errors).
//!
//! ```toml
//! [plugin]
//! name = "imap"                  # [a-z][a-z0-9-]*, at most 63 characters
//! version = "0.3.1"              # semver
//! world = "mail-connector"       # http-frontend | sip-frontend | mail-connector | directory-connector
//! sdk = "0.1.0"                  # switchboard:plugin version it was built against
//! file = "imap.wasm"             # .wasm component, or a native .so / .dylib / .dll
//! sha256 = "…64 hex digits…"     # optional; checked against the file when given
//!
//! [capabilities]
//! outbound = ["imap.example.com:993", "*:587"]   # connectors only; "*" = the admin names the host
//! kv_quota_bytes = 1048576
//! events = ["mailbox"]
//!
//! [config.host]                  # the plugin's own settings, checked against this schema
//! type = "string"
//! required = true
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::load::typed;
use crate::config::validate::io_reason;
use crate::config::{ConfigError, ConfigErrors};

/// The `switchboard:plugin` WIT version this host implements.
pub const HOST_SDK_VERSION: semver::Version = semver::Version::new(0, 1, 0);

/// Whether a plugin built against SDK `v` runs on this host: not newer, and semver-compatible.
pub fn sdk_compatible(v: &semver::Version) -> bool {
    *v <= HOST_SDK_VERSION
        && semver::VersionReq::parse(&format!("^{v}")).is_ok_and(|r| r.matches(&HOST_SDK_VERSION))
}

/// Event topics a plugin may publish or wait on (besides a private topic named after the
/// plugin itself).
pub const EVENT_TOPICS: &[&str] = &["mailbox", "calendar", "contacts", "presence", "im"];

/// The largest key-value quota a manifest may ask for, or an admin may give
/// (`plugins.<name>.kv_quota_bytes`): 16 TiB, enough for a mail store (usage is kept in
/// per-plugin counters, so a quota check costs the same at any size).
pub const MAX_KV_QUOTA: u64 = 16 << 40;

/// The SDK world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum World {
    /// Serves HTTP paths (ActiveSync, Outlook).
    HttpFrontend,
    /// Handles SIP messages.
    SipFrontend,
    /// Backs mailboxes (local store, IMAP, Exchange).
    MailConnector,
    /// Backs people and logins (LDAP).
    DirectoryConnector,
}

impl World {
    const ALL: [World; 4] = [
        World::HttpFrontend,
        World::SipFrontend,
        World::MailConnector,
        World::DirectoryConnector,
    ];

    /// The world named `name` (`http-frontend`, …).
    pub fn parse(name: &str) -> Option<World> {
        World::ALL.into_iter().find(|w| w.as_str() == name)
    }

    /// The WIT world name.
    pub fn as_str(self) -> &'static str {
        match self {
            World::HttpFrontend => "http-frontend",
            World::SipFrontend => "sip-frontend",
            World::MailConnector => "mail-connector",
            World::DirectoryConnector => "directory-connector",
        }
    }

    /// Whether the world imports the `outbound` interface (connectors reach backends; frontends
    /// only talk to the host).
    pub fn has_outbound(self) -> bool {
        matches!(self, World::MailConnector | World::DirectoryConnector)
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the plugin file is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// A WebAssembly component, run in the wasmtime sandbox.
    Wasm,
    /// A native shared library: trusted code, no sandbox.
    Native,
    /// A native plugin linked into this binary (`builtin:NAME`): trusted code, no sandbox.
    Builtin,
}

/// An outbound connection the plugin may open (still subject to the admin's grant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    /// Host name or address; `*` means "whatever the admin configures".
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// The type of one plugin setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingType {
    /// Text.
    String,
    /// Text that must be given by `env:`/`file:` reference or is never logged.
    Secret,
    /// Whole number.
    Integer,
    /// true / false.
    Boolean,
    /// List of strings.
    List,
}

/// One entry of the plugin's config schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Its type.
    pub kind: SettingType,
    /// Must the admin set it?
    pub required: bool,
    /// Value used when the admin does not set it.
    pub default: Option<toml::Value>,
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// `plugin.name`
    pub name: String,
    /// `plugin.version`
    pub version: semver::Version,
    /// `plugin.world`
    pub world: World,
    /// `plugin.sdk`
    pub sdk: semver::Version,
    /// `plugin.file`, resolved against the manifest's directory (`builtin:NAME` for built-ins).
    pub file: PathBuf,
    /// Wasm component or native library, from the file name.
    pub artifact: Artifact,
    /// `plugin.sha256`, checked against the file.
    pub sha256: Option<String>,
    /// `capabilities.outbound`
    pub outbound: Vec<OutboundRule>,
    /// `capabilities.kv_quota_bytes` (0: no key-value access).
    pub kv_quota_bytes: u64,
    /// `capabilities.events`
    pub events: Vec<String>,
    /// `capabilities.http_paths` (HTTP frontends).
    pub http_paths: Vec<String>,
    /// `capabilities.dirs`: directories the admin maps in `plugins.<name>.dirs`, read-only.
    pub dirs: Vec<String>,
    /// `capabilities.kv_volatile`: key prefixes kept in the server's memory only (lost on a
    /// restart, not shared between servers): short-lived caches such as a SIP transaction's
    /// response.
    pub kv_volatile: Vec<String>,
    /// `capabilities.kv_cached`: key prefixes whose reads the server answers from memory after
    /// the first (writes go to the database and update the copy). Only for data no other
    /// server writes (see docs/plugins.md).
    pub kv_cached: Vec<String>,
    /// `[config.*]`
    pub settings: BTreeMap<String, Setting>,
}

#[derive(Debug, Deserialize)]
struct RawPlugin {
    name: String,
    version: String,
    world: String,
    sdk: String,
    file: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawCapabilities {
    outbound: Vec<String>,
    kv_quota_bytes: u64,
    events: Vec<String>,
    http_paths: Vec<String>,
    dirs: Vec<String>,
    kv_volatile: Vec<String>,
    kv_cached: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawSetting {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<toml::Value>,
    #[serde(default)]
    description: Option<String>,
}

const SECTIONS: &[&str] = &["plugin", "capabilities", "config"];

/// Read and validate `path`; checks the plugin file exists and matches `sha256` if given.
pub fn load_manifest(path: &Path) -> Result<Manifest, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        subject: "plugin manifest",
        origin: path.display().to_string(),
        errors,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(vec![ConfigError::new(
            "(file)",
            format!("cannot read {}: {e}", path.display()),
        )])
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse_manifest(&text, base).map_err(fail)
}

/// The manifest of the built-in plugin `name` (see [`super::builtin`]); `Ok(None)` if this
/// binary has no such built-in.
pub fn builtin_manifest(name: &str) -> Result<Option<Manifest>, ConfigErrors> {
    // A native built-in, or a component embedded in the binary (see `super::embedded`).
    let (text, wasm) = match (super::builtin::find(name), super::embedded::find(name)) {
        (Some(b), _) => (b.manifest, false),
        (None, Some(e)) => (e.manifest, true),
        (None, None) => return Ok(None),
    };
    parse(text, Path::new("."), Some(name))
        .map(|mut m| {
            if wasm {
                m.artifact = Artifact::Wasm;
            }
            Some(m)
        })
        .map_err(|errors| ConfigErrors {
            subject: "plugin manifest",
            origin: format!("{}{name} (embedded)", super::builtin::PREFIX),
            errors,
        })
}

/// Read a manifest reference as the configuration gives it: `builtin:NAME`, or a path to a
/// `plugin.toml`.
pub fn load_manifest_ref(reference: &Path) -> Result<Manifest, ConfigErrors> {
    let Some(name) = super::builtin::reference(reference) else {
        return load_manifest(reference);
    };
    builtin_manifest(name)?.ok_or_else(|| ConfigErrors {
        subject: "plugin manifest",
        origin: reference.display().to_string(),
        errors: vec![ConfigError::new("(file)", unknown_builtin(name))],
    })
}

/// The error for `builtin:NAME` naming nothing this binary has.
pub fn unknown_builtin(name: &str) -> String {
    let names = super::builtin::names();
    format!(
        "unknown built-in plugin \"{name}\" (this binary has: {})",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )
}

/// Validate manifest text; relative file names are taken from `base`.
pub fn parse_manifest(text: &str, base: &Path) -> Result<Manifest, Vec<ConfigError>> {
    parse(text, base, None)
}

/// `builtin`: the text is the embedded manifest of that built-in; `plugin.file` and
/// `plugin.sha256` are not checked (the code is part of the binary).
fn parse(text: &str, base: &Path, builtin: Option<&str>) -> Result<Manifest, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            return Err(vec![ConfigError::new(
                "(file)",
                e.to_string().trim_end().to_string(),
            )])
        }
    };
    for key in table.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            errors.push(ConfigError::new(
                key.clone(),
                format!("unknown section (known: {})", SECTIONS.join(", ")),
            ));
        }
    }
    let plugin: Option<RawPlugin> = match table.remove("plugin") {
        Some(v) => typed(v, "plugin", &mut errors),
        None => {
            errors.push(ConfigError::new("plugin", "missing section"));
            None
        }
    };
    let caps: RawCapabilities = match table.remove("capabilities") {
        Some(v) => {
            let mut caps_errors = Vec::new();
            let caps = typed(v, "capabilities", &mut caps_errors);
            for e in caps_errors {
                if e.message == "unknown key" {
                    errors.push(ConfigError::new(
                        e.path,
                        "unknown capability (known: outbound, kv_quota_bytes, kv_volatile, kv_cached, events, http_paths, dirs)",
                    ));
                } else {
                    errors.push(e);
                }
            }
            caps.unwrap_or_default()
        }
        None => RawCapabilities::default(),
    };
    let mut settings = BTreeMap::new();
    if let Some(v) = table.remove("config") {
        match v {
            toml::Value::Table(t) => {
                for (name, entry) in t {
                    let path = format!("config.{name}");
                    if let Some(raw) = typed::<_, RawSetting>(entry, &path, &mut errors) {
                        if let Some(s) = setting(&path, raw, &mut errors) {
                            settings.insert(name, s);
                        }
                    }
                }
            }
            _ => errors.push(ConfigError::new("config", "must be a table of settings")),
        }
    }
    let Some(plugin) = plugin else {
        return Err(errors);
    };
    let mut err = |path: &str, msg: String| errors.push(ConfigError::new(path, msg));

    let name_ok = plugin.name.len() <= 63
        && plugin.name.starts_with(|c: char| c.is_ascii_lowercase())
        && plugin
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        err("plugin.name", format!("\"{}\" must be lower-case letters, digits and '-', starting with a letter, at most 63 characters", plugin.name));
    }
    let version = semver::Version::parse(&plugin.version)
        .map_err(|e| {
            err(
                "plugin.version",
                format!("\"{}\" is not a semantic version: {e}", plugin.version),
            )
        })
        .ok();
    let world = World::ALL.into_iter().find(|w| w.as_str() == plugin.world);
    if world.is_none() {
        err(
            "plugin.world",
            format!(
                "unknown world \"{}\" (known: {})",
                plugin.world,
                World::ALL.map(World::as_str).join(", ")
            ),
        );
    }
    let sdk = match semver::Version::parse(&plugin.sdk) {
        Err(e) => {
            err(
                "plugin.sdk",
                format!("\"{}\" is not a semantic version: {e}", plugin.sdk),
            );
            None
        }
        Ok(v) if v > HOST_SDK_VERSION => {
            err(
                "plugin.sdk",
                format!("built for switchboard:plugin {v}, newer than this host's {HOST_SDK_VERSION}: upgrade Switchboard"),
            );
            None
        }
        Ok(v) if !sdk_compatible(&v) => {
            err(
                "plugin.sdk",
                format!("built for switchboard:plugin {v}, which this host ({HOST_SDK_VERSION}) no longer serves: rebuild the plugin"),
            );
            None
        }
        Ok(v) => Some(v),
    };
    let file = match builtin {
        Some(name) => PathBuf::from(format!("{}{name}", super::builtin::PREFIX)),
        None => base.join(&plugin.file),
    };
    let artifact = match Path::new(&plugin.file).extension().and_then(|e| e.to_str()) {
        _ if builtin.is_some() => Some(Artifact::Builtin),
        Some("wasm") => Some(Artifact::Wasm),
        Some("so" | "dylib" | "dll") => Some(Artifact::Native),
        _ => {
            err(
                "plugin.file",
                format!(
                    "\"{}\" must end in .wasm (component) or .so/.dylib/.dll (native)",
                    plugin.file
                ),
            );
            None
        }
    };
    if builtin.is_some() {
        // The code is in the binary; the file the crate's manifest names is not read.
    } else if Path::new(&plugin.file)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
        || Path::new(&plugin.file).is_absolute()
    {
        err(
            "plugin.file",
            format!(
                "\"{}\" must be a path inside the plugin's directory",
                plugin.file
            ),
        );
    } else if artifact.is_some() {
        match std::fs::read(&file) {
            Err(e) => err(
                "plugin.file",
                format!("cannot read {}: {}", file.display(), io_reason(&e)),
            ),
            Ok(bytes) => {
                if let Some(want) = &plugin.sha256 {
                    let got = hex::encode(Sha256::digest(&bytes));
                    if !want.eq_ignore_ascii_case(&got) {
                        err(
                            "plugin.sha256",
                            format!("{} has sha256 {got}, the manifest says {want}", plugin.file),
                        );
                    }
                }
            }
        }
    }
    if let Some(h) = &plugin.sha256 {
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            err("plugin.sha256", "must be 64 hexadecimal digits".into());
        }
    }
    let _ = &plugin.description;

    // Capabilities, checked against what the world can use.
    let mut outbound = Vec::new();
    for (i, rule) in caps.outbound.iter().enumerate() {
        let path = format!("capabilities.outbound[{i}]");
        match rule.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
            Some((host, Ok(port))) if !host.is_empty() && port != 0 && !host.contains('/') => {
                outbound.push(OutboundRule {
                    host: host.trim_matches(['[', ']']).to_string(),
                    port,
                })
            }
            _ => err(
                &path,
                format!("\"{rule}\" must be HOST:PORT (e.g. imap.example.com:993, or *:993)"),
            ),
        }
    }
    if let Some(w) = world {
        if !caps.outbound.is_empty() && !w.has_outbound() {
            err(
                "capabilities.outbound",
                format!(
                    "the {w} world has no outbound interface; only connectors open connections"
                ),
            );
        }
        if !caps.http_paths.is_empty() && w != World::HttpFrontend {
            err(
                "capabilities.http_paths",
                format!("only http-frontend plugins serve HTTP paths, this one is {w}"),
            );
        }
    }
    for (i, p) in caps.http_paths.iter().enumerate() {
        if !p.starts_with('/') {
            err(
                &format!("capabilities.http_paths[{i}]"),
                format!("\"{p}\" must start with '/'"),
            );
        }
    }
    for (i, d) in caps.dirs.iter().enumerate() {
        let ok = d.starts_with(|c: char| c.is_ascii_lowercase())
            && d.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            err(
                &format!("capabilities.dirs[{i}]"),
                format!("\"{d}\" is not a directory name ([a-z][a-z0-9_-]*)"),
            );
        }
    }
    for (i, t) in caps.events.iter().enumerate() {
        if !EVENT_TOPICS.contains(&t.as_str()) && *t != plugin.name {
            err(
                &format!("capabilities.events[{i}]"),
                format!(
                    "unknown event topic \"{t}\" (known: {}, or the plugin's own name \"{}\")",
                    EVENT_TOPICS.join(", "),
                    plugin.name
                ),
            );
        }
    }
    for (field, prefixes) in [
        ("kv_volatile", &caps.kv_volatile),
        ("kv_cached", &caps.kv_cached),
    ] {
        for (i, p) in prefixes.iter().enumerate() {
            let path = format!("capabilities.{field}[{i}]");
            if p.is_empty() || p.len() > 64 {
                err(&path, "a key prefix of 1 to 64 bytes".into());
            } else if caps.kv_quota_bytes == 0 {
                err(
                    &path,
                    "needs capabilities.kv_quota_bytes (no kv access without it)".into(),
                );
            }
        }
    }
    for p in &caps.kv_cached {
        if caps
            .kv_volatile
            .iter()
            .filter(|v| !v.is_empty() && !p.is_empty())
            .any(|v| p.starts_with(v.as_str()) || v.starts_with(p.as_str()))
        {
            err(
                "capabilities.kv_cached",
                format!("\"{p}\" overlaps a kv_volatile prefix (a key is kept one way only)"),
            );
        }
    }
    if caps.kv_quota_bytes > MAX_KV_QUOTA {
        err(
            "capabilities.kv_quota_bytes",
            format!(
                "{} is over the limit of {MAX_KV_QUOTA} (16 TiB)",
                caps.kv_quota_bytes
            ),
        );
    }

    match (errors.is_empty(), version, world, sdk, artifact) {
        (true, Some(version), Some(world), Some(sdk), Some(artifact)) => Ok(Manifest {
            name: plugin.name,
            version,
            world,
            sdk,
            file,
            artifact,
            sha256: plugin
                .sha256
                .filter(|_| builtin.is_none())
                .map(|h| h.to_ascii_lowercase()),
            outbound,
            kv_quota_bytes: caps.kv_quota_bytes,
            events: caps.events,
            http_paths: caps.http_paths,
            dirs: caps.dirs,
            kv_volatile: caps.kv_volatile,
            kv_cached: caps.kv_cached,
            settings,
        }),
        _ => Err(errors),
    }
}

fn setting(path: &str, raw: RawSetting, errors: &mut Vec<ConfigError>) -> Option<Setting> {
    let _ = &raw.description;
    let kind = match raw.kind.as_str() {
        "string" => SettingType::String,
        "secret" => SettingType::Secret,
        "integer" => SettingType::Integer,
        "boolean" => SettingType::Boolean,
        "list" => SettingType::List,
        other => {
            errors.push(ConfigError::new(
                format!("{path}.type"),
                format!("unknown setting type \"{other}\" (known: string, secret, integer, boolean, list)"),
            ));
            return None;
        }
    };
    if let Some(d) = &raw.default {
        let fits = matches!(
            (kind, d),
            (
                SettingType::String | SettingType::Secret,
                toml::Value::String(_)
            ) | (SettingType::Integer, toml::Value::Integer(_))
                | (SettingType::Boolean, toml::Value::Boolean(_))
                | (SettingType::List, toml::Value::Array(_))
        );
        if !fits {
            errors.push(ConfigError::new(
                format!("{path}.default"),
                format!("{d} is not a {}", raw.kind),
            ));
            return None;
        }
        if raw.required {
            errors.push(ConfigError::new(
                format!("{path}.required"),
                "a setting with a default cannot be required",
            ));
            return None;
        }
    }
    Some(Setting {
        kind,
        required: raw.required,
        default: raw.default,
    })
}

impl Manifest {
    /// Refuse a plugin configured in a slot its world cannot fill.
    pub fn expect_world(&self, expected: World, slot: &str) -> Result<(), ConfigError> {
        if self.world == expected {
            Ok(())
        } else {
            Err(ConfigError::new(
                slot,
                format!(
                    "plugin \"{}\" implements {}, but this slot needs {expected}",
                    self.name, self.world
                ),
            ))
        }
    }
}
