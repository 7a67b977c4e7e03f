//! Plugins: manifests now; the wasmtime / libloading host comes with the plugin runtime
//! milestone and builds on these types.

pub mod manifest;
