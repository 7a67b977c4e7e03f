//! Reading the configuration sources and deserialising them section by section, so that one
//! bad section does not hide the problems of the next.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use config::{Environment, File, FileFormat, Value, ValueKind};
use serde::de::DeserializeOwned;

use super::error::{ConfigError, ConfigErrors};
use super::model::{Config, FrontendConfig, PluginConfig};
use super::validate::{validate, Settings};

/// Where a configuration comes from: an optional file and an environment snapshot.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The TOML file; `None` runs on built-in defaults (plus environment overrides).
    pub path: Option<PathBuf>,
    /// Environment variables consulted for `SWITCHBOARD__*` overrides and `env:` secrets.
    pub env: BTreeMap<String, String>,
}

impl ConfigSource {
    /// A source reading `path` and the process environment.
    pub fn from_process(path: Option<PathBuf>) -> Self {
        Self {
            path,
            env: std::env::vars().collect(),
        }
    }

    /// Same file, fresh environment snapshot (used on reload).
    pub fn refreshed(&self) -> Self {
        Self::from_process(self.path.clone())
    }

    pub(crate) fn origin(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "built-in defaults".into(),
        }
    }

    /// Directory relative paths in the file are taken from.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.as_deref().and_then(Path::parent) {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// Keys whose environment override is a comma-separated list.
const LIST_KEYS: &[&str] = &["http.https", "http.plain", "sip.udp", "sip.tcp", "sip.tls"];

const SECTIONS: &[&str] = &[
    "server",
    "log",
    "database",
    "tls",
    "http",
    "admin",
    "sip",
    "auth",
    "frontends",
    "plugins",
    "plugin_host",
];

/// Load, deserialise and validate a configuration, returning every problem found.
pub fn load(source: &ConfigSource) -> Result<Settings, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        subject: "configuration",
        origin: source.origin(),
        errors,
    };
    let mut builder = config::Config::builder();
    if let Some(path) = &source.path {
        if !path.is_file() {
            return Err(fail(vec![ConfigError::new(
                "(file)",
                format!("cannot read {}: no such file", path.display()),
            )]));
        }
        builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml));
    }
    let env_map: config::Map<String, String> = source
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("SWITCHBOARD__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut env = Environment::with_prefix("SWITCHBOARD")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .source(Some(env_map));
    for key in LIST_KEYS {
        env = env.with_list_parse_key(key);
    }
    let raw = builder
        .add_source(env)
        .build()
        .and_then(|c| c.try_deserialize::<config::Map<String, Value>>())
        .map_err(|e| fail(vec![ConfigError::new("(file)", e.to_string())]))?;

    let mut errors = Vec::new();
    let (config, explicit_plugins) = deserialize_sections(raw, &mut errors);
    let settings = validate(config, &explicit_plugins, source, &mut errors);
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(fail(errors))
    }
}

/// The typed configuration, and the names of the `[plugins.*]` entries the sources mention
/// (the others are defaults).
fn deserialize_sections(
    raw: config::Map<String, Value>,
    errors: &mut Vec<ConfigError>,
) -> (Config, BTreeSet<String>) {
    let mut config = Config::default();
    let mut explicit_plugins = BTreeSet::new();
    let mut raw: BTreeMap<String, Value> = raw.into_iter().collect();
    for key in raw.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            errors.push(ConfigError::new(
                key.clone(),
                format!("unknown section (known: {})", SECTIONS.join(", ")),
            ));
        }
    }
    macro_rules! section {
        ($name:literal, $field:ident) => {
            if let Some(v) = raw.remove($name) {
                if let Some(parsed) = typed(v, $name, errors) {
                    config.$field = parsed;
                }
            }
        };
    }
    section!("server", server);
    section!("log", log);
    section!("database", database);
    section!("tls", tls);
    section!("http", http);
    section!("admin", admin);
    section!("sip", sip);
    section!("auth", auth);
    section!("plugin_host", plugin_host);
    // Named tables are read entry by entry so that one bad frontend does not hide another.
    for (section, is_frontends) in [("frontends", true), ("plugins", false)] {
        let Some(v) = raw.remove(section) else {
            continue;
        };
        let table = match v.kind {
            ValueKind::Table(t) => t,
            _ => {
                errors.push(ConfigError::new(
                    section,
                    "must be a table of named entries",
                ));
                continue;
            }
        };
        let table: BTreeMap<_, _> = table.into_iter().collect();
        for (name, entry) in table {
            let path = format!("{section}.{name}");
            if is_frontends {
                if let Some(mut parsed) = typed::<_, FrontendConfig>(entry, &path, errors) {
                    // Merged over a default entry (`[frontends.eas] enabled = true` keeps
                    // the default's plugin).
                    if let Some(default) = config.frontends.get(&name) {
                        if parsed.plugin.is_none() {
                            parsed.plugin = default.plugin.clone();
                        }
                    }
                    config.frontends.insert(name, parsed);
                }
            } else {
                explicit_plugins.insert(name.clone());
                if let Some(mut parsed) = typed::<_, PluginConfig>(entry, &path, errors) {
                    // Merged over a default entry of the same name: every other key's default
                    // is the plain `PluginConfig` one, so only `manifest` can be missing.
                    if let Some(default) = config.plugins.get(&name) {
                        if parsed.manifest.as_os_str().is_empty() {
                            parsed.manifest = default.manifest.clone();
                        }
                    }
                    config.plugins.insert(name, parsed);
                }
            }
        }
    }
    (config, explicit_plugins)
}

/// Deserialise one section, reporting unknown keys and the first type error with full paths.
/// Generic over the deserializer so plugin manifests (plain TOML) share it.
pub(crate) fn typed<'de, D, T>(value: D, prefix: &str, errors: &mut Vec<ConfigError>) -> Option<T>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    let mut unknown = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let de = serde_ignored::Deserializer::new(value, &mut on_unknown);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    unknown.sort();
    for key in unknown {
        errors.push(ConfigError::new(format!("{prefix}.{key}"), "unknown key"));
    }
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let path = if inner == "." {
                prefix.to_string()
            } else {
                format!("{prefix}.{inner}")
            };
            let message = e.into_inner().to_string();
            // The config crate appends " for key `x`"; the path already says which key.
            let message = match message.rfind(" for key `") {
                Some(i) if message.ends_with('`') => message[..i].to_string(),
                _ => message,
            };
            errors.push(ConfigError::new(path, message));
            None
        }
    }
}
