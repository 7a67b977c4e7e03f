//! The shared wasmtime engine: component model, async, pooling allocator, epoch
//! interruption, and a compile cache (in memory by file hash, on disk as serialized
//! components keyed by the engine's compatibility hash (wasmtime version and code-affecting settings) and the file's SHA-256), so a restart or a
//! reload does not pay Cranelift again.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::PluginError;

/// How often the epoch advances; per-call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings (from `[plugin_host]`).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Component instances the pool holds at most (warm + in flight, all plugins).
    pub instances: u32,
    /// Largest linear memory any plugin may be given, in bytes.
    pub max_memory_bytes: u64,
    /// Directory for serialized components; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
}

/// The engine plus its compile cache. One per server, shared by every snapshot.
#[derive(Clone)]
pub struct WasmEngine {
    /// The wasmtime engine.
    pub engine: Engine,
    cache_dir: Option<PathBuf>,
    compiled: Arc<Mutex<HashMap<String, Component>>>,
    /// Most memory one instance may have, as the pool was sized.
    pub max_memory_bytes: u64,
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine")
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl WasmEngine {
    /// Build the engine and start its epoch ticker.
    pub fn new(opts: &EngineOptions) -> Result<WasmEngine, PluginError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // For `perf`: with this set, plugin code shows up by function name in profiles
        // (wasmtime writes /tmp/perf-PID.map). Off by default: the map only grows.
        if std::env::var_os("SWITCHBOARD_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let n = opts.instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        // A Rust component holds a few core instances (the program plus canonical-ABI
        // shims), one memory and a few tables; size the pool for that shape.
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(4))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memory_size(opts.max_memory_bytes as usize);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                // Ends with the engine: the weak handle stops upgrading.
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| PluginError::Engine(format!("epoch thread: {e}")))?;
        if let Some(dir) = &opts.cache_dir {
            let _ = std::fs::create_dir_all(dir);
        }
        Ok(WasmEngine {
            engine,
            cache_dir: opts.cache_dir.clone(),
            compiled: Arc::default(),
            max_memory_bytes: opts.max_memory_bytes,
        })
    }

    fn cache_file(&self, sha256: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        // Covers the wasmtime version and every setting that affects compiled code.
        self.engine.precompile_compatibility_hash().hash(&mut h);
        Some(dir.join(format!("{sha256}-{:016x}.cwasm", h.finish())))
    }

    /// The compiled component for `bytes` (whose SHA-256 is `sha256`): from memory, from the
    /// disk cache, or compiled now and cached.
    pub fn component(&self, bytes: &[u8], sha256: &str) -> Result<Component, PluginError> {
        if let Some(c) = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sha256)
        {
            return Ok(c.clone());
        }
        let file = self.cache_file(sha256);
        let component = match file.as_deref().and_then(|f| self.load_cached(f)) {
            Some(c) => c,
            None => {
                let c = Component::new(&self.engine, bytes)
                    .map_err(|e| PluginError::Compile(format!("{e:#}")))?;
                if let (Some(f), Ok(serialized)) = (&file, c.serialize()) {
                    store_cached(f, &serialized);
                }
                c
            }
        };
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sha256.to_string(), component.clone());
        Ok(component)
    }

    #[allow(unsafe_code)]
    fn load_cached(&self, file: &Path) -> Option<Component> {
        if !file.is_file() {
            return None;
        }
        // SAFETY: the file lives in the server's own data directory, was written by
        // `store_cached` from `Component::serialize` (atomically, via rename), and its name
        // carries the engine's compatibility hash; wasmtime additionally checks the header
        // and refuses artifacts from another version or configuration.
        match unsafe { Component::deserialize_file(&self.engine, file) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(file = %file.display(), "ignoring unusable compile cache entry: {e:#}");
                None
            }
        }
    }

    /// Whether the disk cache holds `sha256` (for tests and `plugin inspect`).
    pub fn is_cached_on_disk(&self, sha256: &str) -> bool {
        self.cache_file(sha256).is_some_and(|f| f.is_file())
    }
}

fn store_cached(file: &Path, bytes: &[u8]) {
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, file));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(file = %file.display(), "could not write the compile cache: {e}");
    }
}
