//! WebAssembly glue: wit-bindgen bindings for the four worlds and the host imports, and the
//! conversions between their generated types and the SDK's own. Hidden from the docs; plugin
//! authors use [`crate::export_wasm!`] and [`crate::host`].
//!
//! The generated types and the SDK types have the same shape field for field (both follow the
//! WIT), so conversions go through postcard rather than hundreds of lines of hand-written
//! field copies; a mismatch would fail loudly in the tests that run every example through the
//! real host.

use serde::{de::DeserializeOwned, Serialize};

use crate::abi::{encode, MailCall};

/// Generated bindings. Each export world has its own module with its own export macro; host
/// imports are generated from small glue worlds that never clash with an export (wit-bindgen
/// drops the imports a plugin does not use).
#[allow(unsafe_code, missing_docs, missing_debug_implementations, clippy::all)]
pub mod bindings {
    /// Imports every world has or that no world exports.
    pub mod common {
        wit_bindgen::generate!({
            inline: "
                package switchboard:sdk-glue;
                world common {
                    import switchboard:plugin/log@0.1.0;
                    import switchboard:plugin/config@0.1.0;
                    import switchboard:plugin/kv@0.1.0;
                    import switchboard:plugin/events@0.1.0;
                    import switchboard:plugin/outbound@0.1.0;
                    import switchboard:plugin/request-body@0.1.0;
                    import switchboard:plugin/sip-transport@0.1.0;
                    import switchboard:plugin/sip-auth@0.1.0;
                    import switchboard:plugin/staging@0.1.0;
                    import switchboard:plugin/credentials@0.1.0;
                }
            ",
            world: "switchboard:sdk-glue/common",
            generate_all,
            additional_derives: [serde::Serialize, serde::Deserialize],
            runtime_path: "::switchboard_sdk::__wit_bindgen::rt",
        });
    }
    /// The mailstore import (frontends).
    pub mod mail_import {
        wit_bindgen::generate!({
            inline: "
                package switchboard:sdk-glue;
                world mail-import { import switchboard:plugin/mailstore@0.1.0; }
            ",
            world: "switchboard:sdk-glue/mail-import",
            generate_all,
            additional_derives: [serde::Serialize, serde::Deserialize],
            runtime_path: "::switchboard_sdk::__wit_bindgen::rt",
        });
    }
    /// The directory import (frontends).
    pub mod directory_import {
        wit_bindgen::generate!({
            inline: "
                package switchboard:sdk-glue;
                world directory-import { import switchboard:plugin/directory@0.1.0; }
            ",
            world: "switchboard:sdk-glue/directory-import",
            generate_all,
            additional_derives: [serde::Serialize, serde::Deserialize],
            runtime_path: "::switchboard_sdk::__wit_bindgen::rt",
        });
    }
    /// `http-frontend` exports.
    pub mod http {
        wit_bindgen::generate!({
            world: "switchboard:plugin/http-frontend@0.1.0",
            additional_derives: [serde::Serialize, serde::Deserialize],
            pub_export_macro: true,
            export_macro_name: "export_http",
            default_bindings_module: "::switchboard_sdk::wasm::bindings::http",
            runtime_path: "::switchboard_sdk::__wit_bindgen::rt",
        });
    }
    /// `sip-frontend` exports.
    pub mod sip {
        wit_bindgen::generate!({
            world: "switchboard:plugin/sip-frontend@0.1.0",
            additional_derives: [serde::Serialize, serde::Deserialize],
            pub_export_macro: true,
            export_macro_name: "export_sip",
            default_bindings_module: "::switchboard_sdk::wasm::bindings::sip",
            runtime_path: "::switchboard_sdk::__wit_bindgen::rt",
        });
    }
    /// `mail-connector` exports.
    pub mod mail {
        wit_bindgen::generate!({
            world: "switchboard:plugin/mail-connector@0.1.0",
            additional_derives: [serde::Serialize, serde::Deserialize],
            pub_export_macro: true,
            export_macro_name: "export_mail",
            default_bindings_module: "::switchboard_sdk::wasm::bindings::mail",
            runtime_path: "::switchboard_sdk::__wit_bindgen::rt",
        });
    }
    /// `directory-connector` exports.
    pub mod directory {
        wit_bindgen::generate!({
            world: "switchboard:plugin/directory-connector@0.1.0",
            additional_derives: [serde::Serialize, serde::Deserialize],
            pub_export_macro: true,
            export_macro_name: "export_directory",
            default_bindings_module: "::switchboard_sdk::wasm::bindings::directory",
            runtime_path: "::switchboard_sdk::__wit_bindgen::rt",
        });
    }
}

/// Reinterpret a value as the same-shaped type from another module (see the module docs).
pub fn convert<A: Serialize, B: DeserializeOwned>(value: &A) -> B {
    match postcard::from_bytes(&encode(value)) {
        Ok(v) => v,
        Err(e) => panic!(
            "switchboard-sdk: {} and {} differ in shape: {e}",
            std::any::type_name::<A>(),
            std::any::type_name::<B>()
        ),
    }
}

use bindings::common::switchboard::plugin as common;
use bindings::common::switchboard::plugin::staging;
use bindings::directory_import::switchboard::plugin::directory as dir_import;
use bindings::mail_import::switchboard::plugin::mailstore as mail_import;

// One small function per import, called directly from `crate::host`: a plugin's component
// then imports only the interfaces it really calls (wit-component drops the rest), so a
// connector never appears to import frontend-only interfaces and vice versa. Each returns the
// SDK's own type; the common interfaces' values (strings, byte lists, numbers) need no
// conversion but the error, which is copied variant by variant.

use crate::types::{Error, Result};

fn error(e: common::types::Error) -> Error {
    use common::types::Error as E;
    match e {
        E::NotFound(m) => Error::NotFound(m),
        E::Denied(m) => Error::Denied(m),
        E::Invalid(m) => Error::Invalid(m),
        E::Conflict(m) => Error::Conflict(m),
        E::Unavailable(m) => Error::Unavailable(m),
        E::Quota(m) => Error::Quota(m),
        E::Internal(m) => Error::Internal(m),
    }
}

/// A common import's answer with the SDK's error.
fn ok<T>(r: std::result::Result<T, common::types::Error>) -> Result<T> {
    r.map_err(error)
}

pub(crate) fn log_write(level: crate::types::Level, message: &str) {
    use common::log::Level as L;
    let level = match level {
        crate::types::Level::Trace => L::Trace,
        crate::types::Level::Debug => L::Debug,
        crate::types::Level::Info => L::Info,
        crate::types::Level::Warn => L::Warn,
        crate::types::Level::Error => L::Error,
    };
    common::log::write(level, message);
}
pub(crate) fn config_get(key: &str) -> Option<String> {
    common::config::get(key)
}
pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>> {
    ok(common::kv::get(key))
}
pub(crate) fn kv_set(key: &str, value: &[u8]) -> Result<()> {
    ok(common::kv::set(key, value))
}
pub(crate) fn kv_delete(key: &str) -> Result<bool> {
    ok(common::kv::delete(key))
}
pub(crate) fn kv_scan(
    prefix: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<(String, Vec<u8>)>> {
    ok(common::kv::scan(prefix, after, limit))
}
pub(crate) fn kv_cas(key: &str, expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool> {
    ok(common::kv::compare_and_swap(key, expected, new))
}
pub(crate) fn kv_commit(
    checks: &[(String, Option<Vec<u8>>)],
    writes: &[(String, Option<Vec<u8>>)],
) -> Result<bool> {
    ok(common::kv::commit(checks, writes))
}
pub(crate) fn events_publish(key: &str) -> Result<()> {
    ok(common::events::publish(key))
}
pub(crate) fn outbound_connect(host: &str, port: u16, tls: bool) -> Result<u32> {
    ok(common::outbound::connect(host, port, tls))
}
pub(crate) fn outbound_read(conn: u32, max: u32) -> Result<Vec<u8>> {
    ok(common::outbound::read(conn, max))
}
pub(crate) fn outbound_write(conn: u32, data: &[u8]) -> Result<()> {
    ok(common::outbound::write(conn, data))
}
pub(crate) fn outbound_close(conn: u32) {
    common::outbound::close(conn);
}
pub(crate) fn request_body_read(max: u32) -> Result<Vec<u8>> {
    ok(common::request_body::read(max))
}
pub(crate) fn sip_send_flow(flow: u64, message: &[u8]) -> Result<()> {
    ok(common::sip_transport::send_flow(flow, message))
}
pub(crate) fn sip_send_to(transport: &str, target: &str, message: &[u8]) -> Result<()> {
    ok(common::sip_transport::send_to(transport, target, message))
}
pub(crate) fn sip_relay_to(transport: &str, target: &str, message: &[u8]) -> Result<()> {
    ok(common::sip_transport::relay_to(transport, target, message))
}
pub(crate) fn sip_verify_digest(
    method: &str,
    authorization: &str,
    realm: &str,
    source: &str,
) -> Result<Option<crate::types::Principal>> {
    ok(common::sip_auth::verify_digest(
        method,
        authorization,
        realm,
        source,
    ))
    .map(|p| {
        p.map(|p| crate::types::Principal {
            user: p.user,
            domain: p.domain,
        })
    })
}
pub(crate) fn sip_challenge(realm: &str, stale: bool) -> String {
    common::sip_auth::challenge(realm, stale)
}
pub(crate) fn staging_create() -> Result<u32> {
    ok(staging::create())
}
pub(crate) fn staging_append(upload: u32, data: &[u8]) -> Result<()> {
    ok(staging::append(upload, data))
}
pub(crate) fn staging_read(upload: u32, offset: u64, max: u32) -> Result<Vec<u8>> {
    ok(staging::read(upload, offset, max))
}
pub(crate) fn staging_size(upload: u32) -> Result<u64> {
    ok(staging::size(upload))
}
pub(crate) fn credentials_password(who: &crate::types::Principal) -> Option<String> {
    common::credentials::password(&convert(who))
}
pub(crate) fn files_dir(name: &str) -> Option<String> {
    Some(format!("/{name}"))
}
pub(crate) fn directory(call: crate::abi::DirectoryCall) -> Result<crate::abi::DirectoryReply> {
    use crate::abi::{DirectoryCall, DirectoryReply};
    match call {
        DirectoryCall::Authenticate { who, password } => {
            dir_import::authenticate(&convert(&who), &password)
                .map(DirectoryReply::Authenticated)
                .map_err(|e| convert(&e))
        }
        DirectoryCall::Lookup { who } => dir_import::lookup(&convert(&who))
            .map(|p| DirectoryReply::Person(convert(&p)))
            .map_err(|e| convert(&e)),
        DirectoryCall::Search { domain, query, max } => dir_import::search(&domain, &query, max)
            .map(|p| DirectoryReply::People(convert(&p)))
            .map_err(|e| convert(&e)),
    }
}

pub(crate) fn mail(call: MailCall) -> Result<crate::abi::MailReply> {
    use crate::abi::MailReply as R;
    fn done<T: Serialize>(
        r: std::result::Result<T, mail_import::Error>,
        wrap: impl FnOnce(T) -> R,
    ) -> Result<R> {
        r.map(wrap).map_err(|e| convert(&e))
    }
    match call {
        MailCall::ListFolders { who } => done(mail_import::list_folders(&convert(&who)), |f| {
            R::Folders(convert(&f))
        }),
        MailCall::CreateFolder {
            who,
            parent_id,
            name,
            kind,
        } => done(
            mail_import::create_folder(&convert(&who), &parent_id, &name, convert(&kind)),
            |f| R::Folder(convert(&f)),
        ),
        MailCall::UpdateFolder {
            who,
            id,
            parent_id,
            name,
        } => done(
            mail_import::update_folder(&convert(&who), &id, &parent_id, &name),
            |f| R::Folder(convert(&f)),
        ),
        MailCall::DeleteFolder { who, id } => {
            done(mail_import::delete_folder(&convert(&who), &id), |_| R::Unit)
        }
        MailCall::Sync {
            who,
            folder_id,
            state,
            max,
        } => done(
            mail_import::sync(&convert(&who), &folder_id, state.as_deref(), max),
            |p| R::Page(convert(&p)),
        ),
        MailCall::Fetch {
            who,
            item_id,
            part_id,
            offset,
            max,
        } => done(
            mail_import::fetch(&convert(&who), &item_id, part_id.as_deref(), offset, max),
            |c| R::Chunk(convert(&c)),
        ),
        MailCall::CreateItem {
            who,
            folder_id,
            content,
        } => done(
            mail_import::create_item(&convert(&who), &folder_id, content),
            |i| R::Item(convert(&i)),
        ),
        MailCall::ReplaceItem {
            who,
            item_id,
            content,
        } => done(
            mail_import::replace_item(&convert(&who), &item_id, content),
            |i| R::Item(convert(&i)),
        ),
        MailCall::SetFlags {
            who,
            item_id,
            read,
            flagged,
        } => done(
            mail_import::set_flags(&convert(&who), &item_id, read, flagged),
            |_| R::Unit,
        ),
        MailCall::MoveItem {
            who,
            item_id,
            to_folder_id,
        } => done(
            mail_import::move_item(&convert(&who), &item_id, &to_folder_id),
            R::Id,
        ),
        MailCall::DeleteItem { who, item_id } => {
            done(mail_import::delete_item(&convert(&who), &item_id), |_| {
                R::Unit
            })
        }
        MailCall::Send {
            who,
            mime,
            save_copy,
        } => done(mail_import::send(&convert(&who), mime, save_copy), |_| {
            R::Unit
        }),
        MailCall::Search {
            who,
            folder_id,
            query,
            max,
        } => done(
            mail_import::search(&convert(&who), folder_id.as_deref(), &query, max),
            |i| R::Items(convert(&i)),
        ),
        MailCall::Watch {
            who,
            folder_ids,
            timeout_ms,
        } => done(
            mail_import::watch(&convert(&who), &folder_ids, timeout_ms),
            |_| R::Unit,
        ),
    }
}

// The HTTP hot path converts field by field (every request crosses here twice); the rest of
// the types go through `convert`.
use bindings::http::exports::switchboard::plugin::http_handler as h;

/// The request as the SDK type.
pub fn request_from(r: h::Request) -> crate::http::Request {
    crate::http::Request {
        method: r.method,
        path: r.path,
        query: r.query,
        headers: r.headers,
        principal: r.principal.map(|p| crate::Principal {
            user: p.user,
            domain: p.domain,
        }),
        peer: r.peer,
        body: r.body,
        body_complete: r.body_complete,
    }
}

fn principal_to(p: crate::Principal) -> h::Principal {
    h::Principal {
        user: p.user,
        domain: p.domain,
    }
}

fn item_to(r: crate::http::ItemRef) -> h::ItemRef {
    h::ItemRef {
        who: principal_to(r.who),
        item_id: r.item_id,
        part_id: r.part_id,
    }
}

fn response_to(r: crate::http::Response) -> h::Response {
    use crate::http::BodyPart;
    h::Response {
        status: r.status,
        headers: r.headers,
        body: r
            .body
            .into_iter()
            .map(|p| match p {
                BodyPart::Bytes(b) => h::BodyPart::Bytes(b),
                BodyPart::Item(i) => h::BodyPart::Item(item_to(i)),
                BodyPart::ItemBase64(i) => h::BodyPart::ItemBase64(item_to(i)),
            })
            .collect(),
    }
}

/// The outcome as the generated type.
pub fn outcome_to(o: crate::http::Outcome) -> h::Outcome {
    match o {
        crate::http::Outcome::Reply(r) => h::Outcome::Reply(response_to(r)),
        crate::http::Outcome::Park(p) => h::Outcome::Park(h::Park {
            watch: p.watch,
            timeout_ms: p.timeout_ms,
            state: p.state,
            on_timeout: response_to(p.on_timeout),
            group: p.group,
        }),
    }
}

/// A SIP message's origin as the SDK type (every SIP message crosses here).
pub fn origin_from(
    o: bindings::sip::exports::switchboard::plugin::sip_handler::Origin,
) -> crate::sip::Origin {
    crate::sip::Origin {
        transport: o.transport,
        peer: o.peer,
        local: o.local,
        flow: o.flow,
    }
}
