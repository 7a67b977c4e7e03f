//! The plugin host: manifests, the wasmtime engine and its compile cache, WebAssembly and
//! native loaders, host capabilities, the per-snapshot plugin set with connector routing,
//! and the HTTP frontend adapter with request parking.

pub mod builtin;
pub mod caps;
pub mod embedded;
pub mod engine;
pub mod frontend;
pub mod local_directory;
pub mod manifest;
pub mod native;
mod plugin;
pub mod scaffold;
pub mod set;
pub mod wasm;

pub use plugin::{Plugin, PluginStatus};
pub use set::{PluginRuntime, PluginSet};

/// Why a plugin could not be loaded (the server refuses to start, or a reload is refused).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The wasmtime engine could not be built.
    #[error("WebAssembly engine: {0}")]
    Engine(String),
    /// The file is not a valid component.
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    /// The plugin does not implement the world its manifest names.
    #[error("does not match its manifest: {0}")]
    WorldMismatch(String),
    /// The first instantiation failed.
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    /// A native library problem.
    #[error("{0}")]
    Native(String),
    /// Reading the file failed.
    #[error("cannot read {0}")]
    Io(String),
}

/// Why one call into a plugin failed. The request gets a protocol-appropriate error; the
/// server goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// A WebAssembly trap.
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin panicked.
    #[error("panicked: {0}")]
    Panic(String),
    /// The call overran `plugins.<name>.deadline_ms`.
    #[error("exceeded its deadline")]
    Deadline,
    /// The instance hit `plugins.<name>.memory_mb`.
    #[error("exceeded its memory cap")]
    Memory,
    /// Host and plugin disagree about a call's encoding.
    #[error("broke the plugin ABI: {0}")]
    Abi(String),
    /// A fresh instance could not be created.
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    /// The plugin was disabled after repeated faults.
    #[error("is disabled after repeated faults")]
    Disabled,
    /// Every WebAssembly instance slot of the host (`plugin_host.instances`) is in use: the
    /// server is overloaded, the plugin did nothing wrong, so this is not counted as a fault.
    #[error("could not run: every WebAssembly instance slot (plugin_host.instances) is in use")]
    Busy,
}

impl Fault {
    /// Whether this counts against the plugin (towards `max_faults`): overload does not.
    pub fn is_plugin_fault(&self) -> bool {
        !matches!(self, Fault::Busy | Fault::Disabled)
    }

    /// Short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Trap(_) => "trap",
            Fault::Panic(_) => "panic",
            Fault::Deadline => "deadline",
            Fault::Memory => "memory",
            Fault::Abi(_) => "abi",
            Fault::Instantiate(_) => "instantiate",
            Fault::Disabled => "disabled",
            Fault::Busy => "busy",
        }
    }
}
