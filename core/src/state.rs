//! Server-wide state and the reloadable snapshot.
//!
//! Everything a reload may change lives in an immutable [`Snapshot`] behind an `ArcSwap`:
//! each request loads it once and runs under it start to end, and a reload swaps in a new one
//! without touching established connections. What cannot change without a restart (listen
//! addresses, database, data directory) is reported by the reload instead of half-applied.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;
use switchboard_auth::Authenticator;
use switchboard_storage::Storage;

use crate::config::{load, ConfigErrors, Settings};
use crate::frontends;
use crate::http::router::Router;
use crate::plugins::{PluginRuntime, PluginSet};
use crate::readiness::Readiness;
use crate::tls::{self, TlsConfigs, TlsError};

/// Everything a reload replaces.
#[derive(Debug)]
pub struct Snapshot {
    /// Increments with every successful reload (1 at start).
    pub generation: u64,
    /// The validated configuration.
    pub settings: Arc<Settings>,
    /// HTTP routes of the enabled frontends.
    pub router: Router,
    /// The loaded plugins; in-flight requests keep the set they started with.
    pub plugins: Arc<PluginSet>,
    /// TLS configs; new connections pick up a renewed certificate after a reload.
    pub tls: TlsConfigs,
    /// When this snapshot was built.
    pub loaded_at: SystemTime,
}

impl Snapshot {
    /// Build a snapshot from validated settings, loading its plugins.
    pub async fn build(
        settings: Settings,
        generation: u64,
        runtime: &PluginRuntime,
    ) -> Result<Self, ReloadError> {
        let tls = tls::prepare(
            settings.tls_files.as_ref(),
            &settings.data_dir,
            &settings.config.server.hostname,
        )?;
        let plugins = Arc::new(PluginSet::load(&settings, runtime).await?);
        let router = frontends::router_for(&settings, &plugins, runtime);
        Ok(Self {
            generation,
            settings: Arc::new(settings),
            router,
            plugins,
            tls,
            loaded_at: SystemTime::now(),
        })
    }
}

/// State shared by every listener and request.
#[derive(Debug)]
pub struct Shared {
    /// The current snapshot.
    pub snapshot: ArcSwap<Snapshot>,
    /// The database.
    pub storage: Storage,
    /// The credential chain, throttling and nonces. Kept across reloads so throttle counters
    /// and issued nonces survive them.
    pub auth: Arc<Authenticator>,
    /// Readiness latches.
    pub readiness: Readiness,
    /// Metrics renderer.
    pub metrics: PrometheusHandle,
    /// The plugin engine and event hub, shared by every snapshot.
    pub plugin_runtime: Arc<PluginRuntime>,
    reload_lock: tokio::sync::Mutex<()>,
}

/// Why a reload was refused (the old configuration keeps running).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration is invalid.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The new TLS material is unusable.
    #[error("{0}")]
    Tls(#[from] TlsError),
}

/// What a successful reload changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// The new generation.
    pub generation: u64,
    /// Frontends enabled after the reload.
    pub frontends: Vec<String>,
    /// Keys that changed but only take effect after a restart.
    pub restart_required: Vec<String>,
}

impl Shared {
    /// Assemble shared state around a first snapshot.
    pub fn new(
        snapshot: Snapshot,
        storage: Storage,
        auth: Arc<Authenticator>,
        readiness: Readiness,
        plugin_runtime: Arc<PluginRuntime>,
    ) -> Self {
        Self {
            plugin_runtime,
            snapshot: ArcSwap::from_pointee(snapshot),
            storage,
            auth,
            readiness,
            metrics: crate::observability::metrics_handle(),
            reload_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The snapshot in force now.
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Re-read the configuration from its source and swap it in if valid.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let old = self.current();
        let source = old.settings.source.refreshed();
        let settings = load(&source)?;
        let restart_required = restart_keys(&old.settings, &settings);
        let snapshot = Snapshot::build(settings, old.generation + 1, &self.plugin_runtime).await?;
        let report = ReloadReport {
            generation: snapshot.generation,
            frontends: snapshot
                .settings
                .enabled_frontends()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            restart_required,
        };
        for name in old.settings.enabled_frontends() {
            self.readiness.remove(&format!("frontend:{name}"));
        }
        for name in snapshot.settings.enabled_frontends() {
            self.readiness.release(&format!("frontend:{name}"));
        }
        self.snapshot.store(Arc::new(snapshot));
        metrics::counter!("config_reloads_total", "outcome" => "ok").increment(1);
        if report.restart_required.is_empty() {
            tracing::info!(generation = report.generation, frontends = ?report.frontends, "configuration reloaded");
        } else {
            tracing::warn!(
                generation = report.generation,
                keys = ?report.restart_required,
                "configuration reloaded; these changes take effect only after a restart"
            );
        }
        Ok(report)
    }
}

/// Keys whose change needs a restart: the sockets are bound and the pools opened once.
fn restart_keys(old: &Settings, new: &Settings) -> Vec<String> {
    let (o, n) = (&old.config, &new.config);
    let mut keys = Vec::new();
    let mut check = |key: &str, changed: bool| {
        if changed {
            keys.push(key.to_string());
        }
    };
    check("server.data_dir", old.data_dir != new.data_dir);
    check(
        "database",
        old.database_url != new.database_url
            || o.database.max_connections != n.database.max_connections,
    );
    check("http.https", o.http.https != n.http.https);
    check("http.plain", o.http.plain != n.http.plain);
    check(
        "http.max_connections",
        o.http.max_connections != n.http.max_connections,
    );
    check("admin.listen", o.admin.listen != n.admin.listen);
    check("sip.udp", o.sip.udp != n.sip.udp);
    check("sip.tcp", o.sip.tcp != n.sip.tcp);
    check("sip.tls", o.sip.tls != n.sip.tls);
    // UDP sockets take their size limit at start; TCP/TLS connections pick it up on reload.
    check(
        "sip.max_message_bytes",
        o.sip.max_message_bytes != n.sip.max_message_bytes,
    );
    check(
        "sip.max_connections",
        o.sip.max_connections != n.sip.max_connections,
    );
    check("auth", o.auth != n.auth);
    check("log", o.log != n.log);
    keys
}
