//! Native plugins: shared libraries built with `export_native!`, loaded with libloading, and
//! built-in plugins (crates linked into this binary, `manifest = "builtin:NAME"`), which take
//! the same path minus `dlopen`: same stamp checks, same call path, same host capabilities.
//! They run inside the server process with its privileges — trusted code, no sandbox, no
//! memory cap, and a deadline that can only stop *waiting* for them (the thread runs on).
//! What the host can still do: check the ABI stamp before calling anything, catch panics at
//! the boundary, and answer host calls with the same capability checks as for WebAssembly.

use std::ffi::c_void;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard_sdk::abi::{
    self, CallStatus, HostCall, PluginCall, PluginEntry, WriteFn, ABI_VERSION,
};

use super::caps::CallCtx;
use super::manifest::World;
use super::{Fault, PluginError};

/// A loaded native plugin.
pub struct NativePlugin {
    // Keeps the code mapped for as long as `entry` may be called (`None`: built in, so the
    // code is part of this binary).
    _lib: Option<libloading::Library>,
    entry: &'static PluginEntry,
    deadline: Duration,
}

impl std::fmt::Debug for NativePlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativePlugin")
            .field("abi", &self.entry.abi_version)
            .finish()
    }
}

/// The stamp of a native library, read without calling into it beyond the entry symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// ABI version.
    pub abi: u32,
    /// World name, if known.
    pub world: Option<&'static str>,
    /// SDK version.
    pub sdk: semver::Version,
}

impl NativePlugin {
    /// The stamp of the library at `path`, whatever its world.
    pub fn stamp(path: &Path) -> Result<Stamp, PluginError> {
        Self::open(path).map(|(_, _, stamp)| stamp)
    }

    /// Load `path` and check its ABI stamp and world.
    pub fn load(
        path: &Path,
        world: World,
        deadline: Duration,
    ) -> Result<(NativePlugin, Stamp), PluginError> {
        let (lib, entry, stamp) = Self::open(path)?;
        Self::accept(Some(lib), entry, stamp, world, deadline, "the library")
    }

    /// A plugin linked into this binary: `entry` is what its `export_native!(…, builtin)`
    /// returns. Checked exactly like a library's entry (ABI version first, then world and SDK).
    pub fn builtin(
        name: &str,
        entry: &'static PluginEntry,
        world: World,
        deadline: Duration,
    ) -> Result<(NativePlugin, Stamp), PluginError> {
        // SAFETY: a reference to a static of this very binary.
        #[allow(unsafe_code)]
        let (entry, stamp) =
            unsafe { Self::check_entry(entry, &format!("built-in plugin {name}")) }?;
        Self::accept(None, entry, stamp, world, deadline, "the built-in crate")
    }

    fn accept(
        lib: Option<libloading::Library>,
        entry: &'static PluginEntry,
        stamp: Stamp,
        world: World,
        deadline: Duration,
        what: &str,
    ) -> Result<(NativePlugin, Stamp), PluginError> {
        if stamp.world != Some(world.as_str()) {
            return Err(PluginError::WorldMismatch(format!(
                "{what} implements {}, the manifest says {world}",
                stamp.world.unwrap_or("an unknown world")
            )));
        }
        if !super::manifest::sdk_compatible(&stamp.sdk) {
            return Err(PluginError::Native(format!(
                "{what} was built with SDK {}, which this server (SDK {}) cannot load",
                stamp.sdk,
                super::manifest::HOST_SDK_VERSION
            )));
        }
        Ok((
            NativePlugin {
                _lib: lib,
                entry,
                deadline,
            },
            stamp,
        ))
    }

    /// Load the library and read its stamp (the ABI version first).
    #[allow(unsafe_code)]
    fn open(
        path: &Path,
    ) -> Result<(libloading::Library, &'static PluginEntry, Stamp), PluginError> {
        // SAFETY: loading a library runs its initialisers; native plugins are trusted code by
        // definition (the docs and `plugin inspect` say so), the admin configured this path.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| PluginError::Native(format!("cannot load {}: {e}", path.display())))?;
        // SAFETY: the symbol is declared by `export_native!` as
        // `extern "C" fn() -> *const PluginEntry`; a library without it fails here.
        let entry_fn: libloading::Symbol<'_, extern "C" fn() -> *const PluginEntry> =
            unsafe { lib.get(abi::ENTRY_SYMBOL) }.map_err(|_| {
                PluginError::Native(format!(
                    "{} is not a Switchboard plugin (no switchboard_plugin_entry symbol; build it with switchboard_sdk::export_native!)",
                    path.display()
                ))
            })?;
        let ptr = entry_fn();
        if ptr.is_null() {
            return Err(PluginError::Native(
                "switchboard_plugin_entry returned null".into(),
            ));
        }
        // SAFETY: non-null pointer to a static in the library, which stays loaded as long as
        // the returned `Library`.
        let (entry, stamp) = unsafe { Self::check_entry(ptr, &path.display().to_string()) }?;
        Ok((lib, entry, stamp))
    }

    /// Check an entry's ABI version (read first: it is the first field of every ABI revision,
    /// so it is safe to read before we know the rest of the layout matches) and read its stamp.
    ///
    /// # Safety
    /// `ptr` is non-null and points at a static that outlives every use of the result.
    #[allow(unsafe_code)]
    unsafe fn check_entry(
        ptr: *const PluginEntry,
        what: &str,
    ) -> Result<(&'static PluginEntry, Stamp), PluginError> {
        // SAFETY: per the contract; the first field is a `u32` in every ABI revision.
        let abi_version = unsafe { std::ptr::read(ptr as *const u32) };
        if abi_version != ABI_VERSION {
            return Err(PluginError::Native(format!(
                "{what} uses native ABI {abi_version}; this server speaks ABI {ABI_VERSION} (rebuild the plugin with a matching switchboard-sdk)"
            )));
        }
        // SAFETY: the ABI versions match, so the layout is `PluginEntry`; it lives as long as
        // the caller promised.
        let entry: &'static PluginEntry = unsafe { &*ptr };
        let [major, minor, patch] = entry.sdk_version;
        let stamp = Stamp {
            abi: abi_version,
            world: abi::world_name(entry.world),
            sdk: semver::Version::new(major as u64, minor as u64, patch as u64),
        };
        Ok((entry, stamp))
    }

    /// Run one call on a blocking thread; host calls made by the plugin are answered on that
    /// thread by blocking on the runtime.
    pub async fn call<R: serde::de::DeserializeOwned + Send + 'static>(
        self: &Arc<Self>,
        ctx: CallCtx,
        call: PluginCall,
    ) -> Result<R, Fault> {
        let handle = tokio::runtime::Handle::current();
        let answer = if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            // Run on this worker, which hands its other tasks to the rest of the pool while
            // the plugin blocks: no thread hop (a hop costs tens of microseconds per call).
            // The deadline cannot stop native code; the docs say so.
            tokio::task::block_in_place(|| self.call_blocking(ctx, handle.clone(), call))
        } else {
            let me = self.clone();
            let job = tokio::task::spawn_blocking(move || me.call_blocking(ctx, handle, call));
            match tokio::time::timeout(self.deadline, job).await {
                Err(_) => Err(Fault::Deadline),
                Ok(Err(e)) => Err(Fault::Panic(format!("native call thread failed: {e}"))),
                Ok(Ok(r)) => r,
            }
        };
        abi::decode(&answer?)
            .map_err(|e| Fault::Abi(format!("undecodable answer from the plugin: {e}")))
    }

    /// Run one call on the calling thread (host calls block on `handle`); for benchmarks and
    /// callers already on a blocking thread. Returns the encoded answer.
    pub fn call_now(
        &self,
        ctx: CallCtx,
        handle: tokio::runtime::Handle,
        call: PluginCall,
    ) -> Result<Vec<u8>, Fault> {
        self.call_blocking(ctx, handle, call)
    }

    #[allow(unsafe_code)]
    fn call_blocking(
        &self,
        ctx: CallCtx,
        handle: tokio::runtime::Handle,
        call: PluginCall,
    ) -> Result<Vec<u8>, Fault> {
        let encoded = abi::encode(&call);
        let mut env = HostEnv { ctx, handle };
        let mut out: Vec<u8> = Vec::new();
        // SAFETY: `call` is the plugin's entry point per the checked ABI; every pointer we pass
        // lives until it returns (`env`, `encoded`, `out`).
        let status = unsafe {
            (self.entry.call)(
                &mut env as *mut HostEnv as *mut c_void,
                host_fn,
                encoded.as_ptr(),
                encoded.len(),
                &mut out as *mut Vec<u8> as *mut c_void,
                abi::write_to_vec as WriteFn,
            )
        };
        match status {
            s if s == CallStatus::Ok as u32 => Ok(out),
            s if s == CallStatus::Panicked as u32 => {
                Err(Fault::Panic(String::from_utf8_lossy(&out).into_owned()))
            }
            _ => Err(Fault::Abi(String::from_utf8_lossy(&out).into_owned())),
        }
    }
}

struct HostEnv {
    ctx: CallCtx,
    handle: tokio::runtime::Handle,
}

#[allow(unsafe_code)]
unsafe extern "C" fn host_fn(
    host: *mut c_void,
    call: *const u8,
    call_len: usize,
    out: *mut c_void,
    write: WriteFn,
) {
    // SAFETY: `host` is the `HostEnv` passed to this very call (see `call_blocking`), and
    // `call`/`call_len` describe the plugin's buffer for the duration of this function.
    let (env, bytes) = unsafe {
        (
            &*(host as *const HostEnv),
            std::slice::from_raw_parts(call, call_len),
        )
    };
    let answer = match abi::decode::<HostCall>(bytes) {
        // We are on a blocking-pool thread, so blocking on the runtime is allowed here.
        Ok(call) => env.handle.block_on(env.ctx.dispatch(call)),
        Err(e) => {
            tracing::warn!(plugin = %env.ctx.info.name, "undecodable host call: {e}");
            Vec::new()
        }
    };
    // SAFETY: `out`/`write` are the plugin's pair for this call.
    unsafe { abi::write_out(out, write, &answer) };
}
