//! Native glue: the C-ABI entry point behind [`crate::export_native!`] and the per-thread
//! "current host" that [`crate::host`] calls go to. Hidden from the docs.

use std::cell::RefCell;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use crate::abi::{self, CallStatus, HostCall, HostFn, PluginCall, WriteFn};

/// Something that answers host calls in-process: the mock host, or a host embedding a plugin
/// directly (benchmarks). The answer is postcard-encoded as [`HostCall`] documents per case.
pub trait HostApi {
    /// Answer one call.
    fn call(&self, call: HostCall) -> Vec<u8>;
}

#[derive(Clone)]
enum Current {
    Ffi { host: *mut c_void, host_fn: HostFn },
    Api(Rc<dyn HostApi>),
}

thread_local! {
    // A stack, so a host that calls a plugin from inside a host call (a frontend's mailstore
    // call routed to a native connector on the same thread) restores the outer host after.
    static CURRENT: RefCell<Vec<Current>> = const { RefCell::new(Vec::new()) };
}

struct Restore;
impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().pop());
    }
}

fn with_current<R>(current: Current, f: impl FnOnce() -> R) -> R {
    CURRENT.with(|c| c.borrow_mut().push(current));
    let _restore = Restore;
    f()
}

/// Run `f` with `api` answering every [`crate::host`] call made on this thread.
pub fn with_host<R>(api: Rc<dyn HostApi>, f: impl FnOnce() -> R) -> R {
    with_current(Current::Api(api), f)
}

/// Send a host call to the current host; `None` when there is none (called outside a plugin
/// call) or the host is gone.
pub(crate) fn host_call(call: HostCall) -> Option<Vec<u8>> {
    let current = CURRENT.with(|c| c.borrow().last().cloned())?;
    match current {
        Current::Api(api) => Some(api.call(call)),
        Current::Ffi { host, host_fn } => {
            let encoded = abi::encode(&call);
            let mut out: Vec<u8> = Vec::new();
            #[allow(unsafe_code)]
            // SAFETY: `host`/`host_fn` were handed to us by the host for the duration of the
            // current call, which is still running (we are inside it on this thread).
            unsafe {
                host_fn(
                    host,
                    encoded.as_ptr(),
                    encoded.len(),
                    &mut out as *mut Vec<u8> as *mut c_void,
                    abi::write_to_vec,
                )
            };
            Some(out)
        }
    }
}

/// Decode a call, run it through `dispatch` with the host installed, catch panics, and write
/// the answer. Used by [`crate::export_native!`].
///
/// # Safety
/// The arguments must be those the host passed to the plugin's [`abi::CallFn`].
#[allow(unsafe_code)]
pub unsafe fn entry_call(
    host: *mut c_void,
    host_fn: HostFn,
    call: *const u8,
    call_len: usize,
    out: *mut c_void,
    write: WriteFn,
    dispatch: fn(PluginCall) -> Option<Vec<u8>>,
) -> u32 {
    // SAFETY: the host guarantees `call` points to `call_len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(call, call_len) };
    let reply = |status: CallStatus, body: &[u8]| {
        // SAFETY: `out`/`write` come from the host for this call.
        unsafe { abi::write_out(out, write, body) };
        status as u32
    };
    let decoded: PluginCall = match abi::decode(bytes) {
        Ok(c) => c,
        Err(e) => {
            return reply(
                CallStatus::BadCall,
                format!("undecodable call: {e}").as_bytes(),
            )
        }
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        with_current(Current::Ffi { host, host_fn }, || dispatch(decoded))
    }));
    match result {
        Ok(Some(answer)) => reply(CallStatus::Ok, &answer),
        Ok(None) => reply(
            CallStatus::BadCall,
            b"this plugin does not implement the called world",
        ),
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic with a non-string payload".into());
            reply(CallStatus::Panicked, text.as_bytes())
        }
    }
}

/// Per-world dispatchers from a [`PluginCall`] to the plugin's trait.
pub mod dispatch {
    use crate::abi::{encode, PluginCall};

    /// `http-frontend`.
    pub fn http_frontend<T: crate::HttpFrontend>(call: PluginCall) -> Option<Vec<u8>> {
        match call {
            PluginCall::HttpHandle(req) => Some(encode(&T::handle(req))),
            PluginCall::HttpResume { state, fired } => Some(encode(&T::resume(state, fired))),
            _ => None,
        }
    }

    /// `sip-frontend`.
    pub fn sip_frontend<T: crate::SipFrontend>(call: PluginCall) -> Option<Vec<u8>> {
        match call {
            PluginCall::SipHandle { message, origin } => {
                T::handle(message, origin);
                Some(encode(&()))
            }
            _ => None,
        }
    }

    /// `mail-connector`.
    pub fn mail_connector<T: crate::MailConnector>(call: PluginCall) -> Option<Vec<u8>> {
        match call {
            PluginCall::Mail(c) => Some(encode(&crate::dispatch_mail::<T>(c))),
            _ => None,
        }
    }

    /// `directory-connector`.
    pub fn directory_connector<T: crate::DirectoryConnector>(call: PluginCall) -> Option<Vec<u8>> {
        match call {
            PluginCall::Directory(c) => Some(encode(&crate::dispatch_directory::<T>(c))),
            _ => None,
        }
    }
}

/// World codes for [`abi::PluginEntry::world`], named like the macro's world keywords.
#[allow(non_upper_case_globals)]
pub mod world {
    /// `http-frontend`
    pub const http_frontend: u32 = 1;
    /// `sip-frontend`
    pub const sip_frontend: u32 = 2;
    /// `mail-connector`
    pub const mail_connector: u32 = 3;
    /// `directory-connector`
    pub const directory_connector: u32 = 4;
}
