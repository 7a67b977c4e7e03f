//! Built-in WebAssembly plugins: components embedded in this binary, configured as
//! `manifest = "builtin:NAME"` like the native built-ins of [`super::builtin`], but loaded
//! through the wasmtime sandbox exactly as a `.wasm` file beside a `plugin.toml` would be
//! (same limits, same capability checks, same compile cache — so the component is compiled
//! once per machine and data directory, then deserialised).
//!
//! The ActiveSync and SIP IM/presence frontends are such: they parse untrusted bytes from the
//! internet, so they run sandboxed even though they ship with the server. `core/build.rs`
//! builds them for `wasm32-wasip2` and this module embeds the results.

use std::path::Path;

/// One component embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedWasm {
    /// The name after `builtin:` (also the plugin's name in its manifest).
    pub name: &'static str,
    /// Its manifest, `plugin.toml` text (its `file` is ignored).
    pub manifest: &'static str,
    /// The component.
    pub wasm: &'static [u8],
}

/// The components this binary carries.
pub static EMBEDDED: &[EmbeddedWasm] = &[
    // Exchange ActiveSync (`[frontends.eas]` in the defaults), built by core/build.rs.
    EmbeddedWasm {
        name: "eas",
        manifest: include_str!("../../../plugins/eas/plugin.toml"),
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/eas.wasm")),
    },
    // SIP IM and presence (`[frontends.sip]` in the defaults), built by core/build.rs.
    EmbeddedWasm {
        name: "sip",
        manifest: include_str!("../../../plugins/sip/plugin.toml"),
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/sip.wasm")),
    },
];

/// The embedded component named `name`.
pub fn find(name: &str) -> Option<&'static EmbeddedWasm> {
    EMBEDDED.iter().find(|e| e.name == name)
}

/// The embedded component a manifest's `file` names (`builtin:NAME`), if it is one.
pub fn bytes(file: &Path) -> Option<&'static [u8]> {
    super::builtin::reference(file)
        .and_then(find)
        .map(|e| e.wasm)
}

/// Read a WebAssembly plugin file: the embedded bytes for `builtin:NAME`, else the file.
pub fn read(file: &Path) -> std::io::Result<std::borrow::Cow<'static, [u8]>> {
    match bytes(file) {
        Some(b) => Ok(std::borrow::Cow::Borrowed(b)),
        None => std::fs::read(file).map(std::borrow::Cow::Owned),
    }
}
