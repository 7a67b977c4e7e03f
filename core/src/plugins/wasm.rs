//! WebAssembly plugins: a linker per world that offers exactly that world's imports (plus a
//! WASI with no network, no environment and only the granted directories), per-call
//! deadlines through epochs, memory caps through a `ResourceLimiter`, and a small pool of
//! warm instances per tenant domain so most requests skip instantiation while no tenant's
//! leftovers reach another tenant's request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use switchboard_sdk::abi::{DirectoryCall, DirectoryReply, MailCall, MailReply};
use switchboard_sdk::http::{Outcome, Request};
use switchboard_sdk::sip::Origin;
use switchboard_sdk::types::{
    Chunk, Error, Folder, FolderKind, ItemSummary, Level, Person, Principal, SyncPage,
};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Linker,
    Lower, ResourceTable, TypedFunc,
};
use wasmtime::{ResourceLimiter, Store, StoreContextMut};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::caps::sip::Sent;
use super::caps::{CallCtx, PluginInfo};
use super::engine::{WasmEngine, EPOCH_TICK};
use super::manifest::World;
use super::{Fault, PluginError};

const PKG: &str = "switchboard:plugin";
const VERSION: &str = "0.1.0";

fn iface(name: &str) -> String {
    format!("{PKG}/{name}@{VERSION}")
}

/// Per-instance limits: the memory cap, and whether it was hit (so a trap that follows is
/// reported as "memory cap" rather than a generic trap).
struct Limiter {
    memory_cap: usize,
    hit: Arc<AtomicBool>,
    /// Linear memory granted so far (Rust components have one memory).
    size: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.hit.store(true, Ordering::Relaxed);
            return Ok(false);
        }
        self.size = self.size.saturating_add(desired.saturating_sub(_current));
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// What a store carries.
#[allow(missing_debug_implementations)] // wasmtime and WASI state have no useful Debug
pub struct StoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    stderr: MemoryOutputPipe,
    call: Option<CallCtx>,
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Run `f` on the current call's context without cloning it (for host functions that do not
/// await).
fn with_ctx<R>(
    store: &StoreContextMut<'_, StoreData>,
    f: impl FnOnce(&CallCtx) -> R,
) -> wasmtime::Result<R> {
    store
        .data()
        .call
        .as_ref()
        .map(f)
        .ok_or_else(|| wasmtime::format_err!("host call outside a plugin call"))
}

fn ctx(store: &StoreContextMut<'_, StoreData>) -> wasmtime::Result<CallCtx> {
    store
        .data()
        .call
        .clone()
        .ok_or_else(|| wasmtime::format_err!("host call outside a plugin call"))
}

/// Register `name` in `linker` as an async host function whose body is `$body` with the
/// call context bound to `$c`.
macro_rules! host_fn {
    ($inst:expr, $name:literal, |$c:ident, ($($arg:ident : $ty:ty),*)| $body:expr) => {
        $inst.func_wrap_async($name, |store: StoreContextMut<'_, StoreData>, ($($arg,)*): ($($ty,)*)| {
            Box::new(async move {
                let $c = ctx(&store)?;
                Ok(($body,))
            })
        })?
    };
}

/// The linker for `world`: its imports and nothing else.
pub fn linker(engine: &WasmEngine, world: World) -> wasmtime::Result<Linker<StoreData>> {
    let mut linker: Linker<StoreData> = Linker::new(&engine.engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    {
        let mut i = linker.instance(&iface("log"))?;
        i.func_wrap(
            "write",
            |store: StoreContextMut<'_, StoreData>, (level, message): (Level, String)| {
                with_ctx(&store, |c| c.log(level, &message))
            },
        )?;
    }
    {
        let mut i = linker.instance(&iface("config"))?;
        i.func_wrap(
            "get",
            |store: StoreContextMut<'_, StoreData>, (key,): (String,)| {
                Ok((with_ctx(&store, |c| c.config(&key))?,))
            },
        )?;
    }
    {
        let mut i = linker.instance(&iface("kv"))?;
        host_fn!(i, "get", |c, (key: String)| c.info.kv.get(&key).await);
        host_fn!(i, "set", |c, (key: String, value: Vec<u8>)| c.info.kv.set(&key, &value).await);
        host_fn!(i, "delete", |c, (key: String)| c.info.kv.delete(&key).await);
        host_fn!(i, "scan", |c, (prefix: String, after: Option<String>, limit: u32)| c
            .info
            .kv
            .scan(&prefix, after.as_deref(), limit)
            .await);
        host_fn!(i, "compare-and-swap", |c, (key: String, expected: Option<Vec<u8>>, new: Option<Vec<u8>>)| c
            .info
            .kv
            .compare_and_swap(&key, expected.as_deref(), new.as_deref())
            .await);
        host_fn!(i, "commit", |c, (checks: Vec<(String, Option<Vec<u8>>)>, writes: Vec<(String, Option<Vec<u8>>)>)| c
            .info
            .kv
            .commit(&checks, &writes)
            .await);
    }
    if world != World::DirectoryConnector {
        let mut i = linker.instance(&iface("events"))?;
        i.func_wrap(
            "publish",
            |store: StoreContextMut<'_, StoreData>, (key,): (String,)| {
                Ok((with_ctx(&store, |c| c.publish(&key))?,))
            },
        )?;
    }
    if world == World::MailConnector {
        let mut i = linker.instance(&iface("credentials"))?;
        i.func_wrap(
            "password",
            |store: StoreContextMut<'_, StoreData>, (who,): (Principal,)| {
                Ok((with_ctx(&store, |c| c.password(&who))?,))
            },
        )?;
    }
    if world == World::HttpFrontend {
        let mut i = linker.instance(&iface("mailstore"))?;
        host_fn!(i, "list-folders", |c, (who: Principal)| mail(&c, MailCall::ListFolders { who }, |r| match r {
            MailReply::Folders(f) => Some(f),
            _ => None,
        }).await);
        host_fn!(i, "create-folder", |c, (who: Principal, parent_id: String, name: String, kind: FolderKind)| mail(&c, MailCall::CreateFolder { who, parent_id, name, kind }, |r| match r {
            MailReply::Folder(f) => Some(f),
            _ => None,
        }).await);
        host_fn!(i, "update-folder", |c, (who: Principal, id: String, parent_id: String, name: String)| mail(&c, MailCall::UpdateFolder { who, id, parent_id, name }, |r| match r {
            MailReply::Folder(f) => Some(f),
            _ => None,
        }).await);
        host_fn!(i, "delete-folder", |c, (who: Principal, id: String)| mail(&c, MailCall::DeleteFolder { who, id }, unit).await);
        host_fn!(i, "sync", |c, (who: Principal, folder_id: String, state: Option<String>, max: u32)| mail(&c, MailCall::Sync { who, folder_id, state, max }, |r| match r {
            MailReply::Page(p) => Some(p),
            _ => None,
        }).await);
        host_fn!(i, "fetch", |c, (who: Principal, item_id: String, part_id: Option<String>, offset: u64, max: u32)| mail(&c, MailCall::Fetch { who, item_id, part_id, offset, max }, |r| match r {
            MailReply::Chunk(p) => Some(p),
            _ => None,
        }).await);
        host_fn!(i, "create-item", |c, (who: Principal, folder_id: String, content: u32)| mail(&c, MailCall::CreateItem { who, folder_id, content }, |r| match r {
            MailReply::Item(p) => Some(p),
            _ => None,
        }).await);
        host_fn!(i, "replace-item", |c, (who: Principal, item_id: String, content: u32)| mail(&c, MailCall::ReplaceItem { who, item_id, content }, |r| match r {
            MailReply::Item(p) => Some(p),
            _ => None,
        }).await);
        host_fn!(i, "set-flags", |c, (who: Principal, item_id: String, read: Option<bool>, flagged: Option<bool>)| mail(&c, MailCall::SetFlags { who, item_id, read, flagged }, unit).await);
        host_fn!(i, "move-item", |c, (who: Principal, item_id: String, to_folder_id: String)| mail(&c, MailCall::MoveItem { who, item_id, to_folder_id }, |r| match r {
            MailReply::Id(p) => Some(p),
            _ => None,
        }).await);
        host_fn!(i, "delete-item", |c, (who: Principal, item_id: String)| mail(&c, MailCall::DeleteItem { who, item_id }, unit).await);
        host_fn!(i, "send", |c, (who: Principal, mime: u32, save_copy: bool)| mail(&c, MailCall::Send { who, mime, save_copy }, unit).await);
        host_fn!(i, "search", |c, (who: Principal, folder_id: Option<String>, query: String, max: u32)| mail(&c, MailCall::Search { who, folder_id, query, max }, |r| match r {
            MailReply::Items(p) => Some(p),
            _ => None,
        }).await);
        host_fn!(i, "watch", |c, (who: Principal, folder_ids: Vec<String>, timeout_ms: u32)| mail(&c, MailCall::Watch { who, folder_ids, timeout_ms }, unit).await);
        let mut i = linker.instance(&iface("request-body"))?;
        host_fn!(i, "read", |c, (max: u32)| c.read_body(max).await);
    }
    if matches!(world, World::HttpFrontend | World::MailConnector) {
        let mut i = linker.instance(&iface("staging"))?;
        i.func_wrap("create", |store: StoreContextMut<'_, StoreData>, (): ()| {
            Ok((with_ctx(&store, |c| c.staging().and_then(|s| s.create()))?,))
        })?;
        i.func_wrap(
            "append",
            |store: StoreContextMut<'_, StoreData>, (upload, data): (u32, Vec<u8>)| {
                Ok((with_ctx(&store, |c| {
                    c.staging().and_then(|s| s.append(upload, &data))
                })?,))
            },
        )?;
        i.func_wrap(
            "read",
            |store: StoreContextMut<'_, StoreData>, (upload, offset, max): (u32, u64, u32)| {
                Ok((with_ctx(&store, |c| {
                    c.staging().and_then(|s| s.read(upload, offset, max))
                })?,))
            },
        )?;
        i.func_wrap(
            "size",
            |store: StoreContextMut<'_, StoreData>, (upload,): (u32,)| {
                Ok((with_ctx(&store, |c| {
                    c.staging().and_then(|s| s.size(upload))
                })?,))
            },
        )?;
    }
    if matches!(world, World::HttpFrontend | World::SipFrontend) {
        let mut i = linker.instance(&iface("directory"))?;
        host_fn!(i, "authenticate", |c, (who: Principal, password: String)| directory(&c, DirectoryCall::Authenticate { who, password }, |r| match r {
            DirectoryReply::Authenticated(b) => Some(b),
            _ => None,
        }).await);
        host_fn!(i, "lookup", |c, (who: Principal)| directory(&c, DirectoryCall::Lookup { who }, |r| match r {
            DirectoryReply::Person(p) => Some(p),
            _ => None,
        }).await);
        host_fn!(i, "search", |c, (domain: String, query: String, max: u32)| directory(&c, DirectoryCall::Search { domain, query, max }, |r| match r {
            DirectoryReply::People(p) => Some(p),
            _ => None,
        }).await);
    }
    if world == World::SipFrontend {
        let mut i = linker.instance(&iface("sip-transport"))?;
        i.func_wrap(
            "send-flow",
            |store: StoreContextMut<'_, StoreData>, (flow, message): (u64, Vec<u8>)| {
                Ok((with_ctx(&store, |c| {
                    c.sip().and_then(|s| s.send_flow(flow, &message))
                })?,))
            },
        )?;
        host_fn!(i, "send-to", |c, (transport: String, target: String, message: Vec<u8>)| c.sip_send(&transport, &target, &message, Sent::Request).await);
        host_fn!(i, "relay-to", |c, (transport: String, target: String, message: Vec<u8>)| c.sip_send(&transport, &target, &message, Sent::Relay).await);
        let mut i = linker.instance(&iface("sip-auth"))?;
        host_fn!(i, "verify-digest", |c, (method: String, authorization: String, realm: String, source: String)| c.sip_verify_digest(&method, &authorization, &realm, &source).await);
        i.func_wrap(
            "challenge",
            |store: StoreContextMut<'_, StoreData>, (realm, stale): (String, bool)| {
                Ok((with_ctx(&store, |c| c.sip_challenge(&realm, stale))?,))
            },
        )?;
    }
    if world.has_outbound() {
        let mut i = linker.instance(&iface("outbound"))?;
        host_fn!(i, "connect", |c, (host: String, port: u16, tls: bool)| c.connect(&host, port, tls).await);
        host_fn!(i, "read", |c, (conn: u32, max: u32)| c.info.conns.read(conn, max).await);
        host_fn!(i, "write", |c, (conn: u32, data: Vec<u8>)| c.info.conns.write(conn, &data).await);
        i.func_wrap_async(
            "close",
            |store: StoreContextMut<'_, StoreData>, (conn,): (u32,)| {
                Box::new(async move {
                    ctx(&store)?.info.conns.close(conn);
                    Ok(())
                })
            },
        )?;
    }
    Ok(linker)
}

fn unit(r: MailReply) -> Option<()> {
    matches!(r, MailReply::Unit).then_some(())
}

async fn mail<T>(
    c: &CallCtx,
    call: MailCall,
    pick: fn(MailReply) -> Option<T>,
) -> Result<T, Error> {
    let reply = c.mail(call).await?;
    pick(reply)
        .ok_or_else(|| Error::Internal("connector answered with the wrong kind of reply".into()))
}

async fn directory<T>(
    c: &CallCtx,
    call: DirectoryCall,
    pick: fn(DirectoryReply) -> Option<T>,
) -> Result<T, Error> {
    let reply = c.directory(call).await?;
    pick(reply)
        .ok_or_else(|| Error::Internal("connector answered with the wrong kind of reply".into()))
}

/// Export indexes of the world's functions, looked up once per component.
#[derive(Debug)]
struct Exports {
    funcs: HashMap<&'static str, ComponentExportIndex>,
}

const HTTP_FUNCS: &[&str] = &["handle", "resume"];
const SIP_FUNCS: &[&str] = &["handle"];
const MAIL_FUNCS: &[&str] = &[
    "list-folders",
    "create-folder",
    "update-folder",
    "delete-folder",
    "sync",
    "fetch",
    "create-item",
    "replace-item",
    "set-flags",
    "move-item",
    "delete-item",
    "send",
    "search",
];
const DIRECTORY_FUNCS: &[&str] = &["authenticate", "lookup", "search"];

fn export_of(world: World) -> (&'static str, &'static [&'static str]) {
    match world {
        World::HttpFrontend => ("http-handler", HTTP_FUNCS),
        World::SipFrontend => ("sip-handler", SIP_FUNCS),
        World::MailConnector => ("mailstore", MAIL_FUNCS),
        World::DirectoryConnector => ("directory", DIRECTORY_FUNCS),
    }
}

/// A warm instance.
struct Warm {
    store: Store<StoreData>,
    instance: Instance,
    tenant: String,
    calls: u32,
    handle: Option<TypedFunc<(Request,), (Outcome,)>>,
    /// `sip-handler.handle`, looked up (and type-checked) once per instance.
    sip_handle: Option<TypedFunc<(Vec<u8>, Origin), ()>>,
    /// Held while the instance runs a call (see [`WasmLimits::concurrency`]).
    running: Option<OwnedSemaphorePermit>,
}

/// Settings of one WebAssembly plugin.
#[derive(Debug, Clone)]
pub struct WasmLimits {
    /// Linear memory cap per instance.
    pub memory_bytes: u64,
    /// Per-call deadline.
    pub deadline: std::time::Duration,
    /// Warm instances kept per plugin.
    pub warm: usize,
    /// Calls after which an instance is replaced anyway.
    pub recycle_after: u32,
    /// Calls running at once at most; more wait their turn. Without a bound a burst (500
    /// phones' Pings arriving together) takes one instance each — each touching a memory slot
    /// and a fiber stack that stay resident — where a few instances in turn serve it as fast.
    pub concurrency: usize,
}

/// A loaded WebAssembly plugin.
pub struct WasmPlugin {
    pre: InstancePre<StoreData>,
    exports: Exports,
    limits: WasmLimits,
    info: Arc<PluginInfo>,
    warm: Mutex<Vec<Warm>>,
    running: Arc<Semaphore>,
    created: AtomicU64,
}

impl std::fmt::Debug for WasmPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPlugin")
            .field("plugin", &self.info.name)
            .finish_non_exhaustive()
    }
}

impl WasmPlugin {
    /// Link `component` for `info.world`, check its exports, and instantiate it once to
    /// type-check them.
    pub async fn load(
        engine: &WasmEngine,
        component: &Component,
        info: Arc<PluginInfo>,
        limits: WasmLimits,
    ) -> Result<WasmPlugin, PluginError> {
        let world = info.world;
        let linker = linker(engine, world).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let pre = linker.instantiate_pre(component).map_err(|e| {
            PluginError::WorldMismatch(format!(
                "the component needs imports the {world} world does not offer: {e:#}"
            ))
        })?;
        let (name, funcs) = export_of(world);
        let iface_name = iface(name);
        let Some(iface_idx) = component.get_export_index(None, &iface_name) else {
            return Err(PluginError::WorldMismatch(format!(
                "the component does not export {iface_name}, which the {world} world requires"
            )));
        };
        let mut map = HashMap::new();
        for f in funcs {
            let idx = component
                .get_export_index(Some(&iface_idx), f)
                .ok_or_else(|| {
                    PluginError::WorldMismatch(format!("{iface_name} has no function {f}"))
                })?;
            map.insert(*f, idx);
        }
        let plugin = WasmPlugin {
            pre,
            exports: Exports { funcs: map },
            running: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            created: AtomicU64::new(0),
            limits,
            info,
            warm: Mutex::default(),
        };
        // Instantiate once now: type-checks the exports against what this host expects and
        // fails the load (not a request) when the plugin was built against another WIT.
        let warm = plugin
            .instantiate("")
            .await
            .map_err(|f| PluginError::Instantiate(f.to_string()))?;
        plugin.typecheck(warm).await?;
        Ok(plugin)
    }

    async fn typecheck(&self, mut warm: Warm) -> Result<(), PluginError> {
        let bad = |f: &str, e: wasmtime::Error| {
            PluginError::WorldMismatch(format!("export {f} has the wrong type: {e:#}"))
        };
        macro_rules! check {
            ($f:literal, $p:ty, $r:ty) => {
                self.func::<$p, $r>(&mut warm, $f).map_err(|e| bad($f, e))?;
            };
        }
        match self.info.world {
            World::HttpFrontend => {
                check!("handle", (Request,), (Outcome,));
                check!("resume", (Vec<u8>, Vec<String>), (Outcome,));
            }
            World::SipFrontend => {
                check!("handle", (Vec<u8>, Origin), ());
            }
            World::MailConnector => {
                check!("list-folders", (Principal,), (Result<Vec<Folder>, Error>,));
                check!(
                    "sync",
                    (Principal, String, Option<String>, u32),
                    (Result<SyncPage, Error>,)
                );
                check!(
                    "fetch",
                    (Principal, String, Option<String>, u64, u32),
                    (Result<Chunk, Error>,)
                );
                check!(
                    "search",
                    (Principal, Option<String>, String, u32),
                    (Result<Vec<ItemSummary>, Error>,)
                );
            }
            World::DirectoryConnector => {
                check!("authenticate", (Principal, String), (Result<bool, Error>,));
                check!("lookup", (Principal,), (Result<Option<Person>, Error>,));
                check!(
                    "search",
                    (String, String, u32),
                    (Result<Vec<Person>, Error>,)
                );
            }
        }
        self.checkin(warm, true);
        Ok(())
    }

    async fn instantiate(&self, tenant: &str) -> Result<Warm, Fault> {
        self.created.fetch_add(1, Ordering::Relaxed);
        let mut wasi = WasiCtxBuilder::new();
        let stderr = MemoryOutputPipe::new(8192);
        wasi.stderr(stderr.clone());
        for (name, path) in &self.info.dirs {
            wasi.preopened_dir(path, format!("/{name}"), FsPerms::ReadOnly)
                .map_err(|e| {
                    Fault::Instantiate(format!("directory {name} ({}): {e:#}", path.display()))
                })?;
        }
        let hit = Arc::new(AtomicBool::new(false));
        let data = StoreData {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_cap: self.limits.memory_bytes as usize,
                hit,
                size: 0,
            },
            stderr,
            call: None,
        };
        let mut store = Store::new(self.pre.engine(), data);
        store.limiter(|d| &mut d.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks());
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify(&store, e))?;
        Ok(Warm {
            store,
            instance,
            tenant: tenant.to_string(),
            calls: 0,
            handle: None,
            sip_handle: None,
            running: None,
        })
    }

    fn deadline_ticks(&self) -> u64 {
        (self.limits.deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }

    fn func<P, R>(&self, warm: &mut Warm, name: &str) -> wasmtime::Result<TypedFunc<P, R>>
    where
        P: ComponentNamedList + Lower + Send + Sync + 'static,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let idx = self
            .exports
            .funcs
            .get(name)
            .ok_or_else(|| wasmtime::format_err!("no export {name}"))?;
        warm.instance.get_typed_func::<P, R>(&mut warm.store, idx)
    }

    /// A warm instance for `tenant`, or a fresh one.
    async fn checkout(&self, tenant: &str, call: CallCtx) -> Result<Warm, Fault> {
        // The semaphore is never closed.
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Fault::Busy)?;
        let reused = {
            let mut warm = self.warm.lock().unwrap_or_else(|p| p.into_inner());
            warm.iter()
                .rposition(|w| w.tenant == tenant)
                .map(|i| warm.swap_remove(i))
        };
        let mut w = match reused {
            Some(w) => w,
            None => self.instantiate(tenant).await?,
        };
        w.store.data_mut().call = Some(call);
        w.store.set_epoch_deadline(self.deadline_ticks());
        w.running = Some(running);
        Ok(w)
    }

    /// Return an instance to the pool, unless it faulted or has served its share.
    fn checkin(&self, mut w: Warm, healthy: bool) {
        w.calls += 1;
        w.store.data_mut().call = None;
        w.running = None;
        if !healthy || w.calls >= self.limits.recycle_after {
            return;
        }
        let mut warm = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        if warm.len() < self.limits.warm {
            warm.push(w);
        }
    }

    /// Instances made so far (the one that type-checked the plugin at load included).
    pub fn instances_created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// Warm instances held now.
    pub fn warm_instances(&self) -> usize {
        self.warm.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Linear memory held by the warm instances, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        let warm = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        warm.iter()
            .map(|w| w.store.data().limiter.size as u64)
            .sum()
    }

    async fn run<P, R>(
        &self,
        tenant: &str,
        call: CallCtx,
        name: &str,
        params: P,
    ) -> Result<R, Fault>
    where
        P: ComponentNamedList + Lower + Send + Sync + 'static,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let mut w = self.checkout(tenant, call).await?;
        let func = match self.func::<P, R>(&mut w, name) {
            Ok(f) => f,
            Err(e) => return Err(Fault::Abi(format!("{e:#}"))),
        };
        match func.call_async(&mut w.store, params).await {
            Ok(r) => {
                self.checkin(w, true);
                Ok(r)
            }
            Err(e) => Err(classify(&w.store, e)),
        }
    }

    /// `http-handler.handle`; the hot path keeps its typed function on the instance.
    pub async fn http_handle(
        &self,
        tenant: &str,
        call: CallCtx,
        req: Request,
    ) -> Result<Outcome, Fault> {
        let mut w = self.checkout(tenant, call).await?;
        let func = match w.handle {
            Some(f) => f,
            None => {
                let f = self
                    .func::<(Request,), (Outcome,)>(&mut w, "handle")
                    .map_err(|e| Fault::Abi(format!("{e:#}")))?;
                w.handle = Some(f);
                f
            }
        };
        match func.call_async(&mut w.store, (req,)).await {
            Ok((outcome,)) => {
                self.checkin(w, true);
                Ok(outcome)
            }
            Err(e) => Err(classify(&w.store, e)),
        }
    }

    /// `http-handler.resume`
    pub async fn http_resume(
        &self,
        tenant: &str,
        call: CallCtx,
        state: Vec<u8>,
        fired: Vec<String>,
    ) -> Result<Outcome, Fault> {
        self.run::<_, (Outcome,)>(tenant, call, "resume", (state, fired))
            .await
            .map(|(o,)| o)
    }

    /// `sip-handler.handle`; like `http_handle`, the typed function stays on the instance
    /// (looking it up type-checks the signature, once per message otherwise).
    pub async fn sip_handle(
        &self,
        call: CallCtx,
        message: Vec<u8>,
        origin: Origin,
    ) -> Result<(), Fault> {
        let mut w = self.checkout("", call).await?;
        let func = match w.sip_handle {
            Some(f) => f,
            None => {
                let f = self
                    .func::<(Vec<u8>, Origin), ()>(&mut w, "handle")
                    .map_err(|e| Fault::Abi(format!("{e:#}")))?;
                w.sip_handle = Some(f);
                f
            }
        };
        match func.call_async(&mut w.store, (message, origin)).await {
            Ok(()) => {
                self.checkin(w, true);
                Ok(())
            }
            Err(e) => Err(classify(&w.store, e)),
        }
    }

    /// A `mailstore` export.
    pub async fn mail(
        &self,
        call: CallCtx,
        m: MailCall,
    ) -> Result<Result<MailReply, Error>, Fault> {
        let tenant = m.who().domain.clone();
        macro_rules! go {
            ($name:literal, $params:expr, $ty:ty, $wrap:expr) => {
                self.run::<_, (Result<$ty, Error>,)>(&tenant, call, $name, $params)
                    .await
                    .map(|(r,)| r.map($wrap))
            };
        }
        match m {
            MailCall::ListFolders { who } => {
                go!("list-folders", (who,), Vec<Folder>, MailReply::Folders)
            }
            MailCall::CreateFolder {
                who,
                parent_id,
                name,
                kind,
            } => {
                go!(
                    "create-folder",
                    (who, parent_id, name, kind),
                    Folder,
                    MailReply::Folder
                )
            }
            MailCall::UpdateFolder {
                who,
                id,
                parent_id,
                name,
            } => {
                go!(
                    "update-folder",
                    (who, id, parent_id, name),
                    Folder,
                    MailReply::Folder
                )
            }
            MailCall::DeleteFolder { who, id } => {
                go!("delete-folder", (who, id), (), |()| MailReply::Unit)
            }
            MailCall::Sync {
                who,
                folder_id,
                state,
                max,
            } => {
                go!(
                    "sync",
                    (who, folder_id, state, max),
                    SyncPage,
                    MailReply::Page
                )
            }
            MailCall::Fetch {
                who,
                item_id,
                part_id,
                offset,
                max,
            } => {
                go!(
                    "fetch",
                    (who, item_id, part_id, offset, max),
                    Chunk,
                    MailReply::Chunk
                )
            }
            MailCall::CreateItem {
                who,
                folder_id,
                content,
            } => {
                go!(
                    "create-item",
                    (who, folder_id, content),
                    ItemSummary,
                    MailReply::Item
                )
            }
            MailCall::ReplaceItem {
                who,
                item_id,
                content,
            } => {
                go!(
                    "replace-item",
                    (who, item_id, content),
                    ItemSummary,
                    MailReply::Item
                )
            }
            MailCall::SetFlags {
                who,
                item_id,
                read,
                flagged,
            } => {
                go!("set-flags", (who, item_id, read, flagged), (), |()| {
                    MailReply::Unit
                })
            }
            MailCall::MoveItem {
                who,
                item_id,
                to_folder_id,
            } => {
                go!(
                    "move-item",
                    (who, item_id, to_folder_id),
                    String,
                    MailReply::Id
                )
            }
            MailCall::DeleteItem { who, item_id } => {
                go!("delete-item", (who, item_id), (), |()| MailReply::Unit)
            }
            MailCall::Send {
                who,
                mime,
                save_copy,
            } => go!("send", (who, mime, save_copy), (), |()| MailReply::Unit),
            MailCall::Search {
                who,
                folder_id,
                query,
                max,
            } => {
                go!(
                    "search",
                    (who, folder_id, query, max),
                    Vec<ItemSummary>,
                    MailReply::Items
                )
            }
            // A sandboxed connector has no background work that could watch anything: its
            // changes come from its own calls, which publish as they go. Not calling in
            // also keeps components built before `watch` existed working.
            MailCall::Watch { .. } => Ok(Ok(MailReply::Unit)),
        }
    }

    /// A `directory` export.
    pub async fn directory(
        &self,
        call: CallCtx,
        d: DirectoryCall,
    ) -> Result<Result<DirectoryReply, Error>, Fault> {
        let tenant = d.domain().to_string();
        match d {
            DirectoryCall::Authenticate { who, password } => self
                .run::<_, (Result<bool, Error>,)>(&tenant, call, "authenticate", (who, password))
                .await
                .map(|(r,)| r.map(DirectoryReply::Authenticated)),
            DirectoryCall::Lookup { who } => self
                .run::<_, (Result<Option<Person>, Error>,)>(&tenant, call, "lookup", (who,))
                .await
                .map(|(r,)| r.map(DirectoryReply::Person)),
            DirectoryCall::Search { domain, query, max } => self
                .run::<_, (Result<Vec<Person>, Error>,)>(
                    &tenant,
                    call,
                    "search",
                    (domain, query, max),
                )
                .await
                .map(|(r,)| r.map(DirectoryReply::People)),
        }
    }
}

/// Turn a wasmtime error into what went wrong, using the limiter flag and the guest's
/// stderr (where Rust writes its panic message) to tell the cases apart.
fn classify(store: &Store<StoreData>, e: wasmtime::Error) -> Fault {
    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return Fault::Busy;
    }
    let stderr = String::from_utf8_lossy(&store.data().stderr.contents()).into_owned();
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        if *trap == wasmtime::Trap::Interrupt {
            return Fault::Deadline;
        }
    }
    if store.data().limiter.hit.load(Ordering::Relaxed) {
        return Fault::Memory;
    }
    if let Some(at) = stderr.find("panicked at") {
        let msg: String = stderr[at..].lines().take(2).collect::<Vec<_>>().join(" ");
        return Fault::Panic(msg);
    }
    Fault::Trap(
        format!("{e:#}")
            .lines()
            .next()
            .unwrap_or("trap")
            .to_string(),
    )
}
