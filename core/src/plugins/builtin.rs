//! Built-in plugins: first-party plugin crates linked into this binary as rlibs, configured as
//! `manifest = "builtin:NAME"` and loaded through the same native host path as a `.so`
//! (the ABI stamp is checked, host calls go through the same capability checks) minus
//! `dlopen`. The embedded manifest is the crate's own `plugin.toml`; its `file` is ignored.
//!
//! Adding one (e.g. `ldap`): the crate exports `export_native!(WORLD: Type, builtin)` and hides
//! its C symbol behind `#[cfg(not(feature = "builtin"))]`; `core/Cargo.toml` depends on it
//! with `features = ["builtin"]`; add an entry to [`BUILTINS`] below. `docs/plugins.md` has
//! the walk-through.

use std::sync::{Mutex, OnceLock};

use switchboard_sdk::abi::PluginEntry;

/// How a manifest path names a built-in plugin: `builtin:NAME`.
pub const PREFIX: &str = "builtin:";

/// One plugin linked into the binary.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The name after `builtin:` (also the plugin's name in its manifest).
    pub name: &'static str,
    /// Its manifest, `plugin.toml` text.
    pub manifest: &'static str,
    /// Its stamped entry (`builtin_entry` from `export_native!(…, builtin)`).
    pub entry: fn() -> &'static PluginEntry,
}

/// The plugins this binary is built with.
pub static BUILTINS: &[Builtin] = &[
    // The local mail store, the default mail connector (`[plugins.local]` in the defaults).
    Builtin {
        name: "local",
        manifest: include_str!("../../../plugins/local/plugin.toml"),
        entry: switchboard_local::builtin_entry,
    },
    // The LDAP directory connector (native only: it opens its own sockets). Not on by
    // default: an admin enables it with `[plugins.ldap] manifest = "builtin:ldap"`.
    Builtin {
        name: "ldap",
        manifest: include_str!("../../../plugins/ldap/plugin.toml"),
        entry: switchboard_ldap::builtin_entry,
    },
];

fn extra() -> &'static Mutex<Vec<Builtin>> {
    static EXTRA: OnceLock<Mutex<Vec<Builtin>>> = OnceLock::new();
    EXTRA.get_or_init(|| Mutex::new(Vec::new()))
}

/// Register a further built-in for this process (a custom binary that links its own plugin
/// crates; tests). Call before loading the configuration; a later registration of the same
/// name wins over an earlier one, and over [`BUILTINS`].
pub fn register(builtin: Builtin) {
    let mut extra = extra().lock().unwrap_or_else(|p| p.into_inner());
    extra.retain(|b| b.name != builtin.name);
    extra.push(builtin);
}

/// The built-in named `name`.
pub fn find(name: &str) -> Option<Builtin> {
    let extra = extra().lock().unwrap_or_else(|p| p.into_inner());
    extra
        .iter()
        .chain(BUILTINS.iter())
        .find(|b| b.name == name)
        .copied()
}

/// Names of all built-ins, sorted.
pub fn names() -> Vec<&'static str> {
    let extra = extra().lock().unwrap_or_else(|p| p.into_inner());
    let mut names: Vec<&'static str> = BUILTINS
        .iter()
        .chain(extra.iter())
        .map(|b| b.name)
        .chain(super::embedded::EMBEDDED.iter().map(|e| e.name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The built-in name in a manifest reference (`builtin:local` → `local`), if it is one.
pub fn reference(manifest: &std::path::Path) -> Option<&str> {
    manifest.to_str()?.strip_prefix(PREFIX)
}
