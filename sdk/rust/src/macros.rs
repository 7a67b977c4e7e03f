//! The two export macros. Both are always defined and each expands to nothing on the other
//! kind of target, so a plugin lists both and builds either way.

/// Export macro for WebAssembly: `export_wasm!(http_frontend: MyPlugin)`; the world is one
/// of `http_frontend`, `sip_frontend`, `mail_connector`, `directory_connector`. Expands to
/// nothing on other targets, so it sits beside [`export_native!`](crate::export_native!) in the same file.
#[macro_export]
macro_rules! export_wasm {
    (http_frontend: $plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::wasm::bindings::http::exports::switchboard::plugin::http_handler as __h;
            struct __SwitchboardWasm;
            impl __h::Guest for __SwitchboardWasm {
                fn handle(req: __h::Request) -> __h::Outcome {
                    let req = $crate::wasm::request_from(req);
                    $crate::wasm::outcome_to(<$plugin as $crate::HttpFrontend>::handle(req))
                }
                fn resume(state: Vec<u8>, fired: Vec<String>) -> __h::Outcome {
                    $crate::wasm::outcome_to(<$plugin as $crate::HttpFrontend>::resume(
                        state, fired,
                    ))
                }
            }
            $crate::wasm::bindings::http::export_http!(
                __SwitchboardWasm with_types_in $crate::wasm::bindings::http
            );
        };
    };
    (sip_frontend: $plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::wasm::bindings::sip::exports::switchboard::plugin::sip_handler as __h;
            struct __SwitchboardWasm;
            impl __h::Guest for __SwitchboardWasm {
                fn handle(message: Vec<u8>, origin: __h::Origin) {
                    <$plugin as $crate::SipFrontend>::handle(
                        message,
                        $crate::wasm::origin_from(origin),
                    )
                }
            }
            $crate::wasm::bindings::sip::export_sip!(
                __SwitchboardWasm with_types_in $crate::wasm::bindings::sip
            );
        };
    };
    (mail_connector: $plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            $crate::__mail_connector_glue!($plugin);
        };
    };
    (directory_connector: $plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::wasm::bindings::directory::exports::switchboard::plugin::directory as __d;
            use $crate::wasm::convert as __c;
            struct __SwitchboardWasm;
            impl __d::Guest for __SwitchboardWasm {
                fn authenticate(who: __d::Principal, password: String) -> Result<bool, __d::Error> {
                    <$plugin as $crate::DirectoryConnector>::authenticate(&__c(&who), &password)
                        .map_err(|e| __c(&e))
                }
                fn lookup(who: __d::Principal) -> Result<Option<__d::Person>, __d::Error> {
                    <$plugin as $crate::DirectoryConnector>::lookup(&__c(&who))
                        .map(|p| __c(&p))
                        .map_err(|e| __c(&e))
                }
                fn search(
                    domain: String,
                    query: String,
                    max: u32,
                ) -> Result<Vec<__d::Person>, __d::Error> {
                    <$plugin as $crate::DirectoryConnector>::search(&domain, &query, max)
                        .map(|p| __c(&p))
                        .map_err(|e| __c(&e))
                }
            }
            $crate::wasm::bindings::directory::export_directory!(
                __SwitchboardWasm with_types_in $crate::wasm::bindings::directory
            );
        };
    };
}

/// The `mail-connector` export glue: each WIT function becomes a [`MailCall`] run through
/// [`$crate::dispatch_mail`], so the native and WebAssembly builds share one dispatch.
#[doc(hidden)]
#[macro_export]
macro_rules! __mail_connector_glue {
    ($plugin:ty) => {
        use $crate::abi::{MailCall as __M, MailReply as __R};
        use $crate::wasm::bindings::mail::exports::switchboard::plugin::mailstore as __m;
        use $crate::wasm::convert as __c;
        struct __SwitchboardWasm;
        fn __go<W: $crate::__private::DeserializeOwned>(
            call: __M,
            pick: fn(__R) -> Option<W>,
        ) -> Result<W, __m::Error> {
            match $crate::dispatch_mail::<$plugin>(call) {
                Ok(reply) => pick(reply).ok_or_else(|| {
                    __m::Error::Internal("connector answered with the wrong kind of reply".into())
                }),
                Err(e) => Err(__c(&e)),
            }
        }
        impl __m::Guest for __SwitchboardWasm {
            fn list_folders(who: __m::Principal) -> Result<Vec<__m::Folder>, __m::Error> {
                __go(__M::ListFolders { who: __c(&who) }, |r| match r {
                    __R::Folders(f) => Some(__c(&f)),
                    _ => None,
                })
            }
            fn create_folder(who: __m::Principal, parent_id: String, name: String, kind: __m::FolderKind) -> Result<__m::Folder, __m::Error> {
                __go(__M::CreateFolder { who: __c(&who), parent_id, name, kind: __c(&kind) }, |r| match r {
                    __R::Folder(f) => Some(__c(&f)),
                    _ => None,
                })
            }
            fn update_folder(who: __m::Principal, id: String, parent_id: String, name: String) -> Result<__m::Folder, __m::Error> {
                __go(__M::UpdateFolder { who: __c(&who), id, parent_id, name }, |r| match r {
                    __R::Folder(f) => Some(__c(&f)),
                    _ => None,
                })
            }
            fn delete_folder(who: __m::Principal, id: String) -> Result<(), __m::Error> {
                __go(__M::DeleteFolder { who: __c(&who), id }, |r| matches!(r, __R::Unit).then_some(()))
            }
            fn sync(who: __m::Principal, folder_id: String, state: Option<String>, max: u32) -> Result<__m::SyncPage, __m::Error> {
                __go(__M::Sync { who: __c(&who), folder_id, state, max }, |r| match r {
                    __R::Page(p) => Some(__c(&p)),
                    _ => None,
                })
            }
            fn fetch(who: __m::Principal, item_id: String, part_id: Option<String>, offset: u64, max: u32) -> Result<__m::Chunk, __m::Error> {
                __go(__M::Fetch { who: __c(&who), item_id, part_id, offset, max }, |r| match r {
                    __R::Chunk(c) => Some(__c(&c)),
                    _ => None,
                })
            }
            fn create_item(who: __m::Principal, folder_id: String, content: u32) -> Result<__m::ItemSummary, __m::Error> {
                __go(__M::CreateItem { who: __c(&who), folder_id, content }, |r| match r {
                    __R::Item(i) => Some(__c(&i)),
                    _ => None,
                })
            }
            fn replace_item(who: __m::Principal, item_id: String, content: u32) -> Result<__m::ItemSummary, __m::Error> {
                __go(__M::ReplaceItem { who: __c(&who), item_id, content }, |r| match r {
                    __R::Item(i) => Some(__c(&i)),
                    _ => None,
                })
            }
            fn set_flags(who: __m::Principal, item_id: String, read: Option<bool>, flagged: Option<bool>) -> Result<(), __m::Error> {
                __go(__M::SetFlags { who: __c(&who), item_id, read, flagged }, |r| matches!(r, __R::Unit).then_some(()))
            }
            fn move_item(who: __m::Principal, item_id: String, to_folder_id: String) -> Result<String, __m::Error> {
                __go(__M::MoveItem { who: __c(&who), item_id, to_folder_id }, |r| match r {
                    __R::Id(i) => Some(i),
                    _ => None,
                })
            }
            fn delete_item(who: __m::Principal, item_id: String) -> Result<(), __m::Error> {
                __go(__M::DeleteItem { who: __c(&who), item_id }, |r| matches!(r, __R::Unit).then_some(()))
            }
            fn send(who: __m::Principal, mime: u32, save_copy: bool) -> Result<(), __m::Error> {
                __go(__M::Send { who: __c(&who), mime, save_copy }, |r| matches!(r, __R::Unit).then_some(()))
            }
            fn search(who: __m::Principal, folder_id: Option<String>, query: String, max: u32) -> Result<Vec<__m::ItemSummary>, __m::Error> {
                __go(__M::Search { who: __c(&who), folder_id, query, max }, |r| match r {
                    __R::Items(i) => Some(__c(&i)),
                    _ => None,
                })
            }
            fn watch(who: __m::Principal, folder_ids: Vec<String>, timeout_ms: u32) -> Result<(), __m::Error> {
                __go(__M::Watch { who: __c(&who), folder_ids, timeout_ms }, |r| matches!(r, __R::Unit).then_some(()))
            }
        }
        $crate::wasm::bindings::mail::export_mail!(
            __SwitchboardWasm with_types_in $crate::wasm::bindings::mail
        );
    };
}

/// Export macro for native builds: `export_native!(http_frontend: MyPlugin)` emits the C-ABI
/// entry point (`switchboard_plugin_entry`) with the ABI and SDK version stamp. Expands to
/// nothing when building for WebAssembly, so it sits beside [`export_wasm!`](crate::export_wasm!).
///
/// Build the crate as a `cdylib` for the host target to get a `.so` / `.dylib` / `.dll`.
/// Native plugins run unsandboxed inside the server: only load code you trust.
///
/// **Built into the server.** `export_native!(mail_connector: MyPlugin, builtin)` emits
/// `pub fn builtin_entry() -> &'static PluginEntry` instead of the C symbol: the same stamped
/// entry, for a host that links the crate as an rlib and loads it without `dlopen` (the
/// Switchboard binary's `builtin:NAME` plugins). Several such crates link into one binary
/// without clashing, since none exports the C symbol. A first-party plugin lists both forms
/// and lets a cargo feature drop the C symbol when it is linked in:
///
/// ```ignore
/// switchboard_sdk::export_native!(mail_connector: Local, builtin);
/// #[cfg(not(feature = "builtin"))]
/// switchboard_sdk::export_native!(mail_connector: Local);
/// ```
#[macro_export]
macro_rules! export_native {
    ($world:ident: $plugin:ty) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            $crate::__native_entry!($world: $plugin);
            #[allow(unsafe_code)]
            #[unsafe(no_mangle)]
            extern "C" fn switchboard_plugin_entry() -> *const $crate::abi::PluginEntry {
                &__SWITCHBOARD_ENTRY
            }
        };
    };
    ($world:ident: $plugin:ty, builtin) => {
        /// This plugin's stamped native entry, for a host that links the crate in (see
        /// `switchboard_sdk::export_native!`).
        #[cfg(not(target_arch = "wasm32"))]
        pub fn builtin_entry() -> &'static $crate::abi::PluginEntry {
            $crate::__native_entry!($world: $plugin);
            &__SWITCHBOARD_ENTRY
        }
    };
}

/// The stamped `PluginEntry` static shared by both forms of [`export_native!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __native_entry {
    ($world:ident: $plugin:ty) => {
        #[allow(unsafe_code)]
        unsafe extern "C" fn __switchboard_call(
            host: *mut ::core::ffi::c_void,
            host_fn: $crate::abi::HostFn,
            call: *const u8,
            call_len: usize,
            out: *mut ::core::ffi::c_void,
            write: $crate::abi::WriteFn,
        ) -> u32 {
            // SAFETY: forwarded unchanged from the host, per the ABI contract.
            unsafe {
                $crate::native::entry_call(
                    host,
                    host_fn,
                    call,
                    call_len,
                    out,
                    write,
                    $crate::native::dispatch::$world::<$plugin>,
                )
            }
        }
        static __SWITCHBOARD_ENTRY: $crate::abi::PluginEntry = $crate::abi::PluginEntry {
            abi_version: $crate::abi::ABI_VERSION,
            world: $crate::native::world::$world,
            sdk_version: $crate::abi::SDK_VERSION,
            call: __switchboard_call,
        };
    };
}
