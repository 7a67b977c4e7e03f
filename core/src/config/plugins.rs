//! Validation of `[frontends.*]` and `[plugins.*]`: each enabled plugin's manifest is read
//! and checked against how the admin configured it (slot, settings schema, outbound grants,
//! directories, limits, domain routing), so a bad plugin setup fails `check-config`, not a
//! request.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::model::Config;
use super::{BUILTIN_FRONTENDS, PLUGIN_FRONTENDS};
use crate::plugins::builtin;
use crate::plugins::manifest::{
    builtin_manifest, load_manifest, unknown_builtin, Manifest, SettingType, World, MAX_KV_QUOTA,
};

type Err<'a> = dyn FnMut(&str, String) + 'a;

fn absolutize(base: &Path, p: &Path) -> std::path::PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Validate frontends and plugins; returns the manifests of enabled plugins that loaded.
/// `explicit`: the plugin entries the file (or environment) mentions; a default entry it does
/// not mention gives up the domains other connectors of its world claim (see
/// [`yield_default_domains`]), which is why `config` is mutable.
pub(super) fn validate(
    config: &mut Config,
    explicit: &BTreeSet<String>,
    base: &Path,
    err: &mut Err<'_>,
) -> BTreeMap<String, Manifest> {
    let mut manifests = BTreeMap::new();
    for (name, p) in &config.plugins {
        if !p.enabled {
            continue;
        }
        if let Some(m) = plugin(name, p, config, base, err) {
            manifests.insert(name.clone(), m);
        }
    }
    yield_default_domains(config, explicit, &mut manifests);
    let config = &*config;
    for (name, f) in &config.frontends {
        let path = format!("frontends.{name}");
        let builtin = BUILTIN_FRONTENDS.contains(&name.as_str());
        match (&f.plugin, builtin) {
            (Some(_), true) => err(&format!("{path}.plugin"), format!("\"{name}\" is built in and takes no plugin")),
            (Some(p), false) => match config.plugins.get(p) {
                None => err(&format!("{path}.plugin"), format!("unknown plugin \"{p}\" (declare it as [plugins.{p}])")),
                Some(pc) if !pc.enabled && f.enabled => err(
                    &format!("{path}.plugin"),
                    format!("plugin \"{p}\" is disabled (plugins.{p}.enabled = false); disable this frontend too"),
                ),
                Some(_) => {
                    if let Some(m) = manifests.get(p) {
                        let want = if name == "sip" { World::SipFrontend } else { World::HttpFrontend };
                        if let Err(e) = m.expect_world(want, &format!("{path}.plugin")) {
                            err(&e.path, e.message);
                        } else if want == World::HttpFrontend && routes(name, m).is_empty() {
                            err(
                                &format!("{path}.plugin"),
                                format!("plugin \"{p}\" lists no capabilities.http_paths, and \"{name}\" has no default path"),
                            );
                        }
                    }
                }
            },
            (None, false) if PLUGIN_FRONTENDS.iter().any(|(n, _)| n == name) => {
                if f.enabled {
                    err(&format!("{path}.plugin"), "must name the [plugins.<name>] entry that implements this frontend".into());
                }
            }
            (None, false) => err(
                &path,
                format!(
                    "unknown frontend (built in: {}; plugin-backed: {}; any other name needs `plugin = \"…\"`)",
                    BUILTIN_FRONTENDS.join(", "),
                    PLUGIN_FRONTENDS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            ),
            (None, true) => {}
        }
    }
    // Connector routing: one connector per world and domain; one "*" fallback per world.
    for world in [World::MailConnector, World::DirectoryConnector] {
        let mut claimed: BTreeMap<String, &str> = BTreeMap::new();
        for (name, m) in &manifests {
            if m.world != world {
                continue;
            }
            for d in &config.plugins[name].domains {
                let d = d.to_ascii_lowercase();
                if let Some(other) = claimed.insert(d.clone(), name) {
                    err(
                        &format!("plugins.{name}.domains"),
                        format!("domain \"{d}\" is already served by {world} \"{other}\" (narrow plugins.{other}.domains or plugins.{name}.domains, or disable one)"),
                    );
                }
            }
        }
    }
    manifests
}

/// A default connector entry the configuration does not mention (the built-in local store)
/// serves only what no configured connector of its world claims: it drops those domains,
/// `"*"` included, and is not loaded when none are left. Mentioning it in the file (even
/// just `[plugins.local]`) makes it an ordinary entry, whose clashes are errors.
fn yield_default_domains(
    config: &mut Config,
    explicit: &BTreeSet<String>,
    manifests: &mut BTreeMap<String, Manifest>,
) {
    for name in super::model::Config::default().plugins.keys() {
        if explicit.contains(name) {
            continue;
        }
        let Some(world) = manifests.get(name).map(|m| m.world) else {
            continue;
        };
        if !matches!(world, World::MailConnector | World::DirectoryConnector) {
            continue; // only connectors serve domains
        }
        let claimed: BTreeSet<String> = manifests
            .iter()
            .filter(|(other, m)| *other != name && m.world == world)
            .flat_map(|(other, _)| config.plugins[other].domains.iter())
            .map(|d| d.to_ascii_lowercase())
            .collect();
        let Some(entry) = config.plugins.get_mut(name) else {
            continue;
        };
        entry
            .domains
            .retain(|d| !claimed.contains(&d.to_ascii_lowercase()));
        if entry.domains.is_empty() {
            entry.enabled = false;
            manifests.remove(name);
        }
    }
}

/// HTTP paths a plugin frontend serves: the manifest's, or the standard path of the slot.
pub fn routes(frontend: &str, m: &Manifest) -> Vec<String> {
    if !m.http_paths.is_empty() {
        return m.http_paths.clone();
    }
    PLUGIN_FRONTENDS
        .iter()
        .find(|(n, p)| *n == frontend && !p.is_empty())
        .map(|(_, p)| vec![p.to_string()])
        .unwrap_or_default()
}

/// Each of `table`'s keys must be in the manifest's schema, with a value of its type.
fn check_settings(
    m: &Manifest,
    table: &std::collections::BTreeMap<String, toml::Value>,
    at: &str,
    err: &mut Err<'_>,
) {
    for (key, value) in table {
        let path = format!("{at}.{key}");
        match m.settings.get(key) {
            None => err(
                &path,
                format!(
                    "not in the manifest's config schema (known: {})",
                    if m.settings.is_empty() {
                        "none".to_string()
                    } else {
                        m.settings.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
            ),
            Some(s) => {
                let ok = match s.kind {
                    SettingType::String | SettingType::Secret => value.is_str(),
                    SettingType::Integer => value.is_integer(),
                    SettingType::Boolean => value.is_bool(),
                    SettingType::List => value
                        .as_array()
                        .is_some_and(|a| a.iter().all(|v| v.is_str())),
                };
                if !ok {
                    err(
                        &path,
                        format!("must be {:?} per the manifest", s.kind).to_lowercase(),
                    );
                }
            }
        }
    }
}

fn plugin(
    name: &str,
    p: &super::model::PluginConfig,
    config: &Config,
    base: &Path,
    err: &mut Err<'_>,
) -> Option<Manifest> {
    let at = |k: &str| format!("plugins.{name}.{k}");
    if p.manifest.as_os_str().is_empty() {
        err(
            &at("manifest"),
            "must be set (path to the plugin's plugin.toml, or builtin:NAME)".into(),
        );
        return None;
    }
    let file = absolutize(base, &p.manifest);
    let loaded = match builtin::reference(&p.manifest) {
        Some(b) => match builtin_manifest(b) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => {
                err(&at("manifest"), unknown_builtin(b));
                return None;
            }
            Err(e) => Err(e),
        },
        None => load_manifest(&file),
    };
    let m = match loaded {
        Ok(m) => m,
        Err(e) => {
            let origin = e.origin;
            for e in e.errors {
                let msg = if e.path == "(file)" {
                    e.message
                } else {
                    format!("{origin}: {}: {}", e.path, e.message)
                };
                err(&at("manifest"), msg);
            }
            return None;
        }
    };
    if m.name != name {
        err(
            &at("manifest"),
            format!("the manifest names the plugin \"{}\"; declare it as [plugins.{}] (names are how kv data and metrics are kept apart)", m.name, m.name),
        );
    }
    // Settings against the schema.
    check_settings(&m, &p.settings, &at("settings"), err);
    for (domain, table) in &p.domain_settings {
        let path = at(&format!("domain_settings.\"{domain}\""));
        if !matches!(m.world, World::MailConnector | World::DirectoryConnector) {
            err(&path, "only connectors serve domains".into());
            continue;
        }
        let served = p
            .domains
            .iter()
            .any(|d| d == "*" || d.eq_ignore_ascii_case(domain));
        if !served {
            err(
                &path,
                format!(
                    "{domain} is not among plugins.{name}.domains ({})",
                    p.domains.join(", ")
                ),
            );
        }
        check_settings(&m, table, &path, err);
    }
    if p.pass_password && m.world != World::MailConnector {
        err(
            &at("pass_password"),
            "only mail connectors are given the user's password".into(),
        );
    }
    for (key, s) in &m.settings {
        if s.required && s.default.is_none() && !p.settings.contains_key(key) {
            err(
                &at(&format!("settings.{key}")),
                "must be set (the manifest marks it required)".into(),
            );
        }
    }
    // Outbound grants must be asked for.
    for (i, g) in p.outbound.iter().enumerate() {
        let path = at(&format!("outbound[{i}]"));
        let Some((host, port)) = g
            .rsplit_once(':')
            .and_then(|(h, port)| Some((h, port.parse::<u16>().ok()?)))
        else {
            err(&path, format!("\"{g}\" must be host:port"));
            continue;
        };
        let asked = m
            .outbound
            .iter()
            .any(|r| r.port == port && (r.host == "*" || r.host.eq_ignore_ascii_case(host)));
        if !asked {
            err(
                &path,
                format!("{g} is not asked for by the manifest (capabilities.outbound)"),
            );
        }
    }
    // Directories.
    for d in &m.dirs {
        match p.dirs.get(d) {
            None => err(
                &at(&format!("dirs.{d}")),
                "must be set (the manifest asks for this directory)".into(),
            ),
            Some(path) if !absolutize(base, path).is_dir() => err(
                &at(&format!("dirs.{d}")),
                format!("{} is not a directory", absolutize(base, path).display()),
            ),
            Some(_) => {}
        }
    }
    for d in p.dirs.keys() {
        if !m.dirs.contains(d) {
            err(
                &at(&format!("dirs.{d}")),
                "not asked for by the manifest (capabilities.dirs)".into(),
            );
        }
    }
    if let Some(q) = p.kv_quota_bytes {
        if m.kv_quota_bytes == 0 {
            err(
                &at("kv_quota_bytes"),
                "the manifest asks for no kv access (capabilities.kv_quota_bytes), so there is no quota to set".into(),
            );
        } else if q == 0 || q > MAX_KV_QUOTA {
            err(
                &at("kv_quota_bytes"),
                format!("{q} must be between 1 and {MAX_KV_QUOTA} (16 TiB)"),
            );
        }
    }
    if p.deadline_ms == 0 {
        err(&at("deadline_ms"), "must be at least 1".into());
    }
    if p.max_concurrent_calls == 0 {
        err(
            &at("max_concurrent_calls"),
            "must be at least 1 (calls beyond it wait their turn)".into(),
        );
    }
    if p.memory_mb == 0 || p.memory_mb > config.plugin_host.max_memory_mb {
        err(
            &at("memory_mb"),
            format!(
                "must be between 1 and plugin_host.max_memory_mb ({})",
                config.plugin_host.max_memory_mb
            ),
        );
    }
    if !matches!(m.world, World::MailConnector | World::DirectoryConnector) && p.domains != ["*"] {
        err(
            &at("domains"),
            format!(
                "only connectors serve domains; this plugin is a {}",
                m.world
            ),
        );
    }
    Some(m)
}
