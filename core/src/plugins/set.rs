//! The plugins of one configuration snapshot, loaded and routed, and the long-lived
//! runtime they are loaded with. A reload builds a new set; requests already running keep
//! the set (and plugin versions) they started with and release it when done.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sha2::{Digest, Sha256};
use switchboard_sdk::abi::{DirectoryCall, DirectoryReply, MailCall, MailReply};
use switchboard_sdk::Error;
use switchboard_storage::Storage;

use super::caps::credentials::UserSecret;
use super::caps::events::EventHub;
use super::caps::kv::Kv;
use super::caps::kv_memory::MemoryStores;
use super::caps::outbound::{Connections, Grant};
use super::caps::sip::SipSockets;
use super::caps::staging::Staging;
use super::caps::{PluginInfo, Routes};
use super::engine::{EngineOptions, WasmEngine};
use super::manifest::{Artifact, World};
use super::native::NativePlugin;
use super::plugin::{Plugin, Runtime};
use super::wasm::{WasmLimits, WasmPlugin};
use super::PluginError;
use crate::config::{ConfigError, ConfigErrors, Settings};

/// What lives as long as the server: the engine (created on first use), the event hub and
/// the database.
#[derive(Debug)]
pub struct PluginRuntime {
    engine: OnceLock<Result<WasmEngine, PluginError>>,
    options: EngineOptions,
    /// Events and parked requests.
    pub hub: Arc<EventHub>,
    /// The core's SIP sockets and open SIP flows (they outlive reloads).
    pub sip: Arc<SipSockets>,
    storage: Storage,
    /// Plugins' volatile keys and cached reads (they outlive reloads).
    kv_memory: Arc<MemoryStores>,
}

impl PluginRuntime {
    /// A runtime for `settings` (engine options are read once; changing them needs a restart).
    pub fn new(settings: &Settings, storage: Storage) -> PluginRuntime {
        let host = &settings.config.plugin_host;
        PluginRuntime {
            engine: OnceLock::new(),
            options: EngineOptions {
                instances: host.instances,
                max_memory_bytes: host.max_memory_mb << 20,
                cache_dir: host
                    .compile_cache
                    .then(|| settings.data_dir.join("plugin-cache")),
            },
            hub: Arc::new(EventHub::new()),
            sip: Arc::new(SipSockets::new()),
            storage,
            kv_memory: Arc::default(),
        }
    }

    /// The engine, built on first use so servers without WebAssembly plugins reserve nothing.
    pub fn engine(&self) -> Result<&WasmEngine, PluginError> {
        self.engine
            .get_or_init(|| WasmEngine::new(&self.options))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The loaded plugins of a snapshot.
#[derive(Debug, Default)]
pub struct PluginSet {
    plugins: BTreeMap<String, Arc<Plugin>>,
    /// (world, domain) → plugin; domain `*` is the fallback.
    routes: BTreeMap<(World, String), String>,
    /// The core's users, the directory of domains no directory connector serves.
    local_users: Option<Storage>,
}

fn load_error(name: &str, message: String) -> ConfigError {
    ConfigError::new(format!("plugins.{name}"), message)
}

impl PluginSet {
    /// This set as the routing of the plugins' directory and mailstore calls.
    pub fn routes(self: &Arc<Self>) -> Arc<dyn Routes> {
        self.clone()
    }

    /// Load every enabled plugin of `settings`. Errors name the plugin and what failed.
    pub async fn load(
        settings: &Settings,
        runtime: &PluginRuntime,
    ) -> Result<PluginSet, ConfigErrors> {
        let mut set = PluginSet {
            local_users: Some(runtime.storage.clone()),
            ..PluginSet::default()
        };
        let mut errors = Vec::new();
        for (name, manifest) in &settings.plugin_manifests {
            let cfg = &settings.config.plugins[name];
            match load_one(settings, runtime, name, manifest.clone()).await {
                Ok(plugin) => {
                    if matches!(
                        manifest.world,
                        World::MailConnector | World::DirectoryConnector
                    ) {
                        for d in &cfg.domains {
                            set.routes
                                .insert((manifest.world, d.to_ascii_lowercase()), name.clone());
                        }
                    }
                    set.plugins.insert(name.clone(), Arc::new(plugin));
                }
                Err(e) => errors.push(load_error(name, e.to_string())),
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(ConfigErrors {
                subject: "plugins",
                origin: settings.source.origin(),
                errors,
            })
        }
    }

    /// A plugin by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// All plugins, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }

    /// The connector of `world` serving `domain`.
    pub fn connector(&self, world: World, domain: &str) -> Option<&Arc<Plugin>> {
        let name = self
            .routes
            .get(&(world, domain.to_ascii_lowercase()))
            .or_else(|| self.routes.get(&(world, "*".to_string())))?;
        self.plugins.get(name)
    }
}

impl Routes for PluginSet {
    fn mail(
        &self,
        call: MailCall,
        staging: Arc<Staging>,
        secret: Option<UserSecret>,
    ) -> BoxFuture<'static, Result<MailReply, Error>> {
        let domain = call.who().domain.clone();
        match self.connector(World::MailConnector, &domain).cloned() {
            Some(p) => async move { p.mail(call, staging, secret).await }.boxed(),
            None => futures_util::future::ready(Err(Error::Unavailable(format!(
                "no mail connector serves {domain} (set plugins.<name>.domains)"
            ))))
            .boxed(),
        }
    }

    fn directory(&self, call: DirectoryCall) -> BoxFuture<'static, Result<DirectoryReply, Error>> {
        let domain = call.domain().to_string();
        match self.connector(World::DirectoryConnector, &domain).cloned() {
            Some(p) => async move { p.directory(call).await }.boxed(),
            None => match self.local_users.clone() {
                Some(storage) => {
                    async move { super::local_directory::answer(&storage, call).await }.boxed()
                }
                None => futures_util::future::ready(Err(Error::Unavailable(format!(
                    "no directory connector serves {domain}"
                ))))
                .boxed(),
            },
        }
    }
}

fn text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Settings as text, with `secret` ones' `env:NAME` / `file:PATH` references resolved.
fn resolve(
    settings: &Settings,
    manifest: &super::manifest::Manifest,
    table: &BTreeMap<String, toml::Value>,
    at: &str,
) -> Result<BTreeMap<String, String>, PluginError> {
    let base = settings.source.base_dir();
    let mut out = BTreeMap::new();
    for (k, v) in table {
        let mut value = text(v);
        if manifest
            .settings
            .get(k)
            .is_some_and(|s| s.kind == super::manifest::SettingType::Secret)
        {
            let env = |n: &str| settings.source.env.get(n).cloned();
            value = crate::config::Secret::new(value)
                .resolve(&env, &base)
                .map_err(|e| PluginError::Native(format!("{at}.{k}: {e}")))?;
        }
        out.insert(k.clone(), value);
    }
    Ok(out)
}

async fn load_one(
    settings: &Settings,
    runtime: &PluginRuntime,
    name: &str,
    manifest: super::manifest::Manifest,
) -> Result<Plugin, PluginError> {
    let cfg = &settings.config.plugins[name];
    let base = settings.source.base_dir();
    let mut values: BTreeMap<String, String> = manifest
        .settings
        .iter()
        .filter_map(|(k, s)| s.default.as_ref().map(|d| (k.clone(), text(d))))
        .collect();
    values.extend(resolve(settings, &manifest, &cfg.settings, "settings")?);
    let mut domain_settings = BTreeMap::new();
    for (domain, table) in &cfg.domain_settings {
        let at = format!("domain_settings.{domain}");
        domain_settings.insert(
            domain.to_ascii_lowercase(),
            resolve(settings, &manifest, table, &at)?,
        );
    }
    let grants = cfg
        .outbound
        .iter()
        .filter_map(|g| {
            let (host, port) = g.rsplit_once(':')?;
            Some(Grant {
                host: host.to_string(),
                port: port.parse().ok()?,
            })
        })
        .collect();
    let dirs = cfg
        .dirs
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                if p.is_absolute() {
                    p.clone()
                } else {
                    base.join(p)
                },
            )
        })
        .collect();
    let info = Arc::new(PluginInfo {
        name: name.to_string(),
        world: manifest.world,
        kv: Kv::new(
            runtime.storage.clone(),
            name,
            cfg.kv_quota_bytes.unwrap_or(manifest.kv_quota_bytes),
        )
        .with_memory(
            runtime.kv_memory.for_plugin(name),
            &manifest.kv_volatile,
            &manifest.kv_cached,
        ),
        event_topics: manifest.events.clone(),
        conns: Connections::new(grants),
        dirs,
        settings: values,
        domain_settings,
        pass_password: cfg.pass_password,
        upload_limit: settings.config.http.max_body_bytes,
    });
    let deadline = Duration::from_millis(cfg.deadline_ms);
    let rt = match manifest.artifact {
        Artifact::Wasm => {
            let engine = runtime.engine()?.clone();
            let file = manifest.file.clone();
            // Reading and compiling are blocking and CPU-heavy: keep them off the reactor.
            let component = tokio::task::spawn_blocking(move || {
                let bytes = super::embedded::read(&file)
                    .map_err(|e| PluginError::Io(format!("{}: {e}", file.display())))?;
                let sha = hex::encode(Sha256::digest(&bytes));
                engine.component(&bytes, &sha)
            })
            .await
            .map_err(|e| PluginError::Engine(format!("compile task: {e}")))??;
            let limits = WasmLimits {
                memory_bytes: cfg.memory_mb << 20,
                deadline,
                warm: cfg.warm_instances as usize,
                recycle_after: cfg.recycle_after.max(1),
                concurrency: cfg.max_concurrent_calls as usize,
            };
            Runtime::Wasm(
                WasmPlugin::load(runtime.engine()?, &component, info.clone(), limits).await?,
            )
        }
        Artifact::Native => {
            let (native, stamp) = NativePlugin::load(&manifest.file, manifest.world, deadline)?;
            if stamp.sdk != manifest.sdk {
                tracing::warn!(
                    plugin = name,
                    "manifest says SDK {} but the library was built with {}",
                    manifest.sdk,
                    stamp.sdk
                );
            }
            Runtime::Native(Arc::new(native))
        }
        Artifact::Builtin => Runtime::Native(Arc::new(load_builtin(&manifest, deadline)?)),
    };
    tracing::info!(plugin = name, world = %manifest.world, version = %manifest.version, "plugin loaded");
    let world = manifest.world;
    let plugin = Plugin::new(info, manifest, rt, runtime.hub.clone(), cfg.max_faults);
    Ok(if world == World::SipFrontend {
        plugin.with_sip(runtime.sip.clone())
    } else {
        plugin
    })
}

/// What `switchboard plugin verify` found out about a plugin file.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Interfaces the component imports (WebAssembly), or the native ABI stamp.
    pub imports: Vec<String>,
    /// Interfaces it exports.
    pub exports: Vec<String>,
}

/// Load a plugin's file the way the server would — compile, link against its world,
/// instantiate once and type-check the exports (WebAssembly), or check the ABI stamp and
/// world (native) — without a configuration. Capabilities are granted as the manifest asks,
/// against an in-memory database.
pub async fn verify(manifest: &super::manifest::Manifest) -> Result<Verified, PluginError> {
    let storage = Storage::connect("sqlite::memory:", 1)
        .await
        .map_err(|e| PluginError::Engine(format!("scratch database: {e}")))?;
    storage
        .migrate()
        .await
        .map_err(|e| PluginError::Engine(format!("scratch database: {e}")))?;
    let info = Arc::new(PluginInfo {
        name: manifest.name.clone(),
        world: manifest.world,
        kv: Kv::new(storage, &manifest.name, manifest.kv_quota_bytes).with_memory(
            Arc::default(),
            &manifest.kv_volatile,
            &manifest.kv_cached,
        ),
        event_topics: manifest.events.clone(),
        conns: Connections::new(Vec::new()),
        dirs: BTreeMap::new(),
        settings: BTreeMap::new(),
        domain_settings: BTreeMap::new(),
        pass_password: false,
        upload_limit: 1 << 20,
    });
    match manifest.artifact {
        Artifact::Wasm => {
            let engine = WasmEngine::new(&EngineOptions {
                instances: 4,
                max_memory_bytes: 256 << 20,
                cache_dir: None,
            })?;
            let bytes = super::embedded::read(&manifest.file)
                .map_err(|e| PluginError::Io(format!("{}: {e}", manifest.file.display())))?;
            let sha = hex::encode(Sha256::digest(&bytes));
            let component = engine.component(&bytes, &sha)?;
            let ty = component.component_type();
            let names = |items: Vec<String>| {
                let mut v: Vec<String> = items
                    .into_iter()
                    .filter(|n| n.starts_with("switchboard:") || n.starts_with("wasi:"))
                    .collect();
                v.sort();
                v
            };
            let imports = names(
                ty.imports(&engine.engine)
                    .map(|(n, _)| n.to_string())
                    .collect(),
            );
            let exports = names(
                ty.exports(&engine.engine)
                    .map(|(n, _)| n.to_string())
                    .collect(),
            );
            let limits = WasmLimits {
                memory_bytes: 64 << 20,
                deadline: Duration::from_secs(10),
                warm: 1,
                recycle_after: 1,
                concurrency: 1,
            };
            WasmPlugin::load(&engine, &component, info, limits).await?;
            Ok(Verified { imports, exports })
        }
        Artifact::Native | Artifact::Builtin => {
            let (_plugin, stamp) = if manifest.artifact == Artifact::Builtin {
                let name = builtin_name(manifest)?;
                let b = super::builtin::find(name)
                    .ok_or_else(|| PluginError::Native(super::manifest::unknown_builtin(name)))?;
                let entry = (b.entry)();
                NativePlugin::builtin(name, entry, manifest.world, Duration::from_secs(10))?
            } else {
                NativePlugin::load(&manifest.file, manifest.world, Duration::from_secs(10))?
            };
            Ok(Verified {
                imports: vec![format!("native ABI {}, SDK {}", stamp.abi, stamp.sdk)],
                exports: vec![stamp.world.unwrap_or("?").to_string()],
            })
        }
    }
}

/// The name of a built-in plugin from its manifest (`file` is `builtin:NAME`).
fn builtin_name(manifest: &super::manifest::Manifest) -> Result<&str, PluginError> {
    super::builtin::reference(&manifest.file)
        .ok_or_else(|| PluginError::Native(format!("{} is not a built-in plugin", manifest.name)))
}

/// Load a built-in plugin: its entry checked like a library's, no `dlopen`.
fn load_builtin(
    manifest: &super::manifest::Manifest,
    deadline: Duration,
) -> Result<NativePlugin, PluginError> {
    let name = builtin_name(manifest)?;
    let b = super::builtin::find(name)
        .ok_or_else(|| PluginError::Native(super::manifest::unknown_builtin(name)))?;
    let (plugin, stamp) = NativePlugin::builtin(name, (b.entry)(), manifest.world, deadline)?;
    if stamp.sdk != manifest.sdk {
        tracing::warn!(
            plugin = name,
            "embedded manifest says SDK {} but the crate was built with {}",
            manifest.sdk,
            stamp.sdk
        );
    }
    Ok(plugin)
}

/// Describe a plugin file without a manifest: a component's imports and exports, or a native
/// library's ABI stamp. Nothing is instantiated or called (beyond the native entry symbol).
pub fn inspect_file(path: &std::path::Path) -> Result<Vec<String>, PluginError> {
    let is_wasm = path.extension().is_some_and(|e| e == "wasm");
    if !is_wasm {
        let stamp = NativePlugin::stamp(path)?;
        return Ok(vec![
            "kind:    native library (trusted code, not sandboxed)".into(),
            format!("world:   {}", stamp.world.unwrap_or("unknown")),
            format!("abi:     {}", stamp.abi),
            format!("sdk:     {}", stamp.sdk),
        ]);
    }
    let engine = WasmEngine::new(&EngineOptions {
        instances: 1,
        max_memory_bytes: 64 << 20,
        cache_dir: None,
    })?;
    let bytes =
        std::fs::read(path).map_err(|e| PluginError::Io(format!("{}: {e}", path.display())))?;
    let component = engine.component(&bytes, &hex::encode(Sha256::digest(&bytes)))?;
    let ty = component.component_type();
    let mut out = vec![
        "kind:    WebAssembly component (sandboxed)".to_string(),
        format!("sha256:  {}", hex::encode(Sha256::digest(&bytes))),
    ];
    for (label, mut names) in [
        (
            "exports",
            ty.exports(&engine.engine)
                .map(|(n, _)| n.to_string())
                .collect::<Vec<_>>(),
        ),
        (
            "imports",
            ty.imports(&engine.engine)
                .map(|(n, _)| n.to_string())
                .collect::<Vec<_>>(),
        ),
    ] {
        names.sort();
        out.push(format!("{label}: {}", names.join(", ")));
    }
    Ok(out)
}
