//! One loaded plugin: its runtime (WebAssembly or native), what it is granted, and its
//! health. Every call goes through [`Plugin::guard`], which counts, times, logs faults with
//! the plugin's name, and disables a plugin that keeps faulting.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use switchboard_sdk::abi::{DirectoryCall, DirectoryReply, MailCall, MailReply, PluginCall};
use switchboard_sdk::http::{Outcome, Request};
use switchboard_sdk::sip::Origin;
use switchboard_sdk::{Error, Principal};

use super::caps::credentials::UserSecret;
use super::caps::events::EventHub;
use super::caps::request_body::RequestBody;
use super::caps::sip::SipSockets;
use super::caps::staging::Staging;
use super::caps::{CallCtx, PluginInfo, Routes};
use super::manifest::{Artifact, Manifest};
use super::native::NativePlugin;
use super::wasm::WasmPlugin;
use super::Fault;

/// How the plugin runs.
#[derive(Debug)]
pub enum Runtime {
    /// In the wasmtime sandbox.
    Wasm(WasmPlugin),
    /// In-process native library.
    Native(Arc<NativePlugin>),
}

/// Metric handles, registered once per plugin and op rather than looked up on every call.
#[derive(Default)]
struct Meters {
    ops: Mutex<std::collections::HashMap<&'static str, (metrics::Counter, metrics::Histogram)>>,
}

impl std::fmt::Debug for Meters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Meters")
    }
}

impl Meters {
    fn op(&self, plugin: &str, op: &'static str) -> (metrics::Counter, metrics::Histogram) {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        ops.entry(op)
            .or_insert_with(|| {
                (
                    metrics::counter!("switchboard_plugin_calls_total", "plugin" => plugin.to_string(), "op" => op),
                    metrics::histogram!("switchboard_plugin_call_seconds", "plugin" => plugin.to_string(), "op" => op),
                )
            })
            .clone()
    }
}

#[derive(Debug, Default)]
struct Health {
    calls: AtomicU64,
    faults: AtomicU64,
    consecutive: AtomicU32,
    disabled: AtomicBool,
    last_fault: Mutex<Option<String>>,
}

/// A loaded plugin.
#[derive(Debug)]
pub struct Plugin {
    /// Grants and identity.
    pub info: Arc<PluginInfo>,
    /// Its manifest.
    pub manifest: Manifest,
    runtime: Runtime,
    hub: Arc<EventHub>,
    max_faults: u32,
    health: Health,
    meters: Meters,
    /// The core's SIP sockets, for SIP frontends (see [`Plugin::with_sip`]).
    sip: Option<Arc<SipSockets>>,
}

/// What `/admin/status` and `switchboard plugin list` show.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginStatus {
    /// `[plugins.<name>]`
    pub name: String,
    /// World.
    pub world: String,
    /// `wasm`, `native` or `builtin`.
    pub artifact: &'static str,
    /// Plugin version from its manifest.
    pub version: String,
    /// `loaded` or `disabled`.
    pub state: &'static str,
    /// Calls so far.
    pub calls: u64,
    /// Faults so far.
    pub faults: u64,
    /// The last fault, if any.
    pub last_fault: Option<String>,
    /// Warm WebAssembly instances.
    pub warm_instances: usize,
    /// WebAssembly instances made since the plugin was loaded.
    pub instances_created: u64,
    /// Linear memory of those instances.
    pub memory_bytes: u64,
}

impl Plugin {
    /// Wrap a loaded runtime.
    pub fn new(
        info: Arc<PluginInfo>,
        manifest: Manifest,
        runtime: Runtime,
        hub: Arc<EventHub>,
        max_faults: u32,
    ) -> Plugin {
        Plugin {
            info,
            manifest,
            runtime,
            hub,
            max_faults: max_faults.max(1),
            health: Health::default(),
            meters: Meters::default(),
            sip: None,
        }
        .with_memory_gauge()
    }

    /// Give a SIP frontend the core's SIP sockets (its `sip-transport` import); without them
    /// its sends answer `unavailable`.
    pub fn with_sip(mut self, sip: Arc<SipSockets>) -> Plugin {
        self.sip = Some(sip);
        self
    }

    fn with_memory_gauge(self) -> Plugin {
        self.update_memory_gauge();
        self
    }

    fn update_memory_gauge(&self) {
        if let Runtime::Wasm(w) = &self.runtime {
            metrics::gauge!("switchboard_plugin_memory_bytes", "plugin" => self.info.name.clone())
                .set(w.memory_bytes() as f64);
        }
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Whether it was disabled after repeated faults.
    pub fn is_disabled(&self) -> bool {
        self.health.disabled.load(Ordering::Relaxed)
    }

    /// Status for admins.
    pub fn status(&self) -> PluginStatus {
        let (warm, memory, created) = match &self.runtime {
            Runtime::Wasm(w) => (w.warm_instances(), w.memory_bytes(), w.instances_created()),
            Runtime::Native(_) => (0, 0, 0),
        };
        PluginStatus {
            name: self.info.name.clone(),
            world: self.info.world.to_string(),
            artifact: match self.manifest.artifact {
                Artifact::Wasm => "wasm",
                Artifact::Native => "native",
                Artifact::Builtin => "builtin",
            },
            version: self.manifest.version.to_string(),
            state: if self.is_disabled() {
                "disabled"
            } else {
                "loaded"
            },
            calls: self.health.calls.load(Ordering::Relaxed),
            faults: self.health.faults.load(Ordering::Relaxed),
            last_fault: self
                .health
                .last_fault
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            warm_instances: warm,
            instances_created: created,
            memory_bytes: memory,
        }
    }

    /// The native library, for callers that measure or drive it directly (benchmarks).
    pub fn native(&self) -> Option<&Arc<NativePlugin>> {
        match &self.runtime {
            Runtime::Native(n) => Some(n),
            Runtime::Wasm(_) => None,
        }
    }

    /// A call context for this plugin acting for `principal` (no routing, no body).
    pub fn call_ctx(&self, principal: Option<Principal>) -> CallCtx {
        self.ctx(None, principal, None, None)
    }

    /// A context; `staging` is the calling request's when this call is routed from another
    /// plugin, else a fresh one.
    fn ctx(
        &self,
        routes: Option<Arc<dyn Routes>>,
        principal: Option<Principal>,
        body: Option<RequestBody>,
        staging: Option<Arc<Staging>>,
    ) -> CallCtx {
        CallCtx {
            info: self.info.clone(),
            hub: self.hub.clone(),
            routes,
            principal,
            body: body.map(|b| Arc::new(tokio::sync::Mutex::new(b))),
            staging: staging.unwrap_or_else(|| Arc::new(Staging::new(self.info.upload_limit))),
            sip: self.sip.clone(),
            secret: None,
        }
    }

    /// Run one call with accounting: refuses when disabled, records metrics, logs and counts
    /// faults, and disables the plugin after `max_faults` faults in a row.
    async fn guard<R>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<R, Fault>>,
    ) -> Result<R, Fault> {
        if self.is_disabled() {
            return Err(Fault::Disabled);
        }
        let calls = self.health.calls.fetch_add(1, Ordering::Relaxed);
        let (counter, histogram) = self.meters.op(&self.info.name, op);
        counter.increment(1);
        let started = Instant::now();
        let result = call.await;
        histogram.record(started.elapsed().as_secs_f64());
        // Memory moves slowly and reading it walks the warm pool: sample, don't poll.
        if calls.is_multiple_of(256) || result.is_err() {
            self.update_memory_gauge();
        }
        match &result {
            Ok(_) => {
                self.health.consecutive.store(0, Ordering::Relaxed);
            }
            Err(fault) if !fault.is_plugin_fault() => {
                metrics::counter!("switchboard_plugin_busy_total", "plugin" => self.info.name.clone())
                    .increment(1);
                tracing::warn!(plugin = %self.info.name, op, "plugin {} {fault}", self.info.name);
            }
            Err(fault) => {
                let plugin = self.info.name.clone();
                self.health.faults.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("switchboard_plugin_traps_total", "plugin" => plugin.clone(), "kind" => fault.kind())
                    .increment(1);
                *self
                    .health
                    .last_fault
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(fault.to_string());
                tracing::error!(plugin = %plugin, op, "plugin {plugin} {fault}");
                let n = self.health.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
                if n >= self.max_faults && !self.health.disabled.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        plugin = %plugin,
                        "plugin {plugin} disabled after {n} faults in a row; fix it and reload to enable it again"
                    );
                    metrics::gauge!("switchboard_plugin_disabled", "plugin" => plugin).set(1.0);
                }
            }
        }
        result
    }

    /// `http-handler.handle`
    pub async fn http_handle(
        &self,
        routes: Option<Arc<dyn Routes>>,
        body: Option<RequestBody>,
        req: Request,
        secret: Option<UserSecret>,
    ) -> Result<Outcome, Fault> {
        let tenant = req
            .principal
            .as_ref()
            .map(|p| p.domain.clone())
            .unwrap_or_default();
        let mut ctx = self.ctx(routes, req.principal.clone(), body, None);
        ctx.secret = secret;
        self.guard("handle", async {
            match &self.runtime {
                Runtime::Wasm(w) => w.http_handle(&tenant, ctx, req).await,
                Runtime::Native(n) => n.call(ctx, PluginCall::HttpHandle(req)).await,
            }
        })
        .await
    }

    /// `http-handler.resume`
    #[allow(clippy::too_many_arguments)]
    pub async fn http_resume(
        &self,
        routes: Option<Arc<dyn Routes>>,
        principal: Option<Principal>,
        state: Vec<u8>,
        fired: Vec<String>,
        secret: Option<UserSecret>,
    ) -> Result<Outcome, Fault> {
        let tenant = principal
            .as_ref()
            .map(|p| p.domain.clone())
            .unwrap_or_default();
        let mut ctx = self.ctx(routes, principal, None, None);
        ctx.secret = secret;
        self.guard("resume", async {
            match &self.runtime {
                Runtime::Wasm(w) => w.http_resume(&tenant, ctx, state, fired).await,
                Runtime::Native(n) => n.call(ctx, PluginCall::HttpResume { state, fired }).await,
            }
        })
        .await
    }

    /// `sip-handler.handle`: one framed SIP message. The plugin answers through
    /// `sip-transport`; directory calls are routed through `routes`.
    ///
    /// WebAssembly instances come from one warm pool for all SIP traffic (the tenant is not
    /// known before the plugin parses the message); `docs/plugins.md` says why that is safe.
    pub async fn sip_handle(
        &self,
        routes: Option<Arc<dyn Routes>>,
        message: Vec<u8>,
        origin: Origin,
    ) -> Result<(), Fault> {
        let ctx = self.ctx(routes, None, None, None);
        self.guard("handle", async {
            match &self.runtime {
                Runtime::Wasm(w) => w.sip_handle(ctx, message, origin).await,
                Runtime::Native(n) => n.call(ctx, PluginCall::SipHandle { message, origin }).await,
            }
        })
        .await
    }

    /// A mailstore call on this connector, with the calling request's staged uploads; faults
    /// become `unavailable` errors for the caller.
    pub async fn mail(
        &self,
        call: MailCall,
        staging: Arc<Staging>,
        secret: Option<UserSecret>,
    ) -> Result<MailReply, Error> {
        let mut ctx = self.ctx(None, Some(call.who().clone()), None, Some(staging));
        // Only the user's own mailbox calls carry their password, and only to a connector the
        // admin granted it (checked again when the plugin asks).
        ctx.secret =
            secret.filter(|s| self.info.pass_password && s.password_for(call.who()).is_some());
        let op = call.name();
        let result = self
            .guard(op, async {
                match &self.runtime {
                    Runtime::Wasm(w) => w.mail(ctx, call).await,
                    Runtime::Native(n) => {
                        let watch = matches!(call, MailCall::Watch { .. });
                        match n.call(ctx, PluginCall::Mail(call)).await {
                            // A connector built before `watch` existed cannot decode it; it
                            // has nothing to watch, and that is no fault of its own.
                            Err(Fault::Abi(_)) if watch => Ok(Ok(MailReply::Unit)),
                            r => r,
                        }
                    }
                }
            })
            .await;
        self.connector_result(result)
    }

    /// A directory call on this connector.
    pub async fn directory(&self, call: DirectoryCall) -> Result<DirectoryReply, Error> {
        let principal = match &call {
            DirectoryCall::Authenticate { who, .. } | DirectoryCall::Lookup { who } => {
                Some(who.clone())
            }
            DirectoryCall::Search { .. } => None,
        };
        let ctx = self.ctx(None, principal, None, None);
        let op = call.name();
        let result = self
            .guard(op, async {
                match &self.runtime {
                    Runtime::Wasm(w) => w.directory(ctx, call).await,
                    Runtime::Native(n) => n.call(ctx, PluginCall::Directory(call)).await,
                }
            })
            .await;
        self.connector_result(result)
    }

    fn connector_result<T>(&self, result: Result<Result<T, Error>, Fault>) -> Result<T, Error> {
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                metrics::counter!("switchboard_plugin_errors_total", "plugin" => self.info.name.clone()).increment(1);
                Err(e)
            }
            Err(fault) => Err(Error::Unavailable(format!(
                "connector {} {fault}",
                self.info.name
            ))),
        }
    }
}
