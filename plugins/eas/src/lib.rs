//! # Exchange ActiveSync frontend
//!
//! Serves `/Microsoft-Server-ActiveSync` for phones (iOS Mail, Gmail, Outlook for
//! iOS/Android, Samsung Email…) speaking protocol 12.1, 14.0, 14.1, 16.0 or 16.1. Mail,
//! calendars and contacts come from the host's `mailstore` (routed by the core to the user's
//! connector), people from `directory`; per-device state lives in kv (layout in [`state`]).
//!
//! Layers, each sans-IO and unit-tested on bytes:
//!
//! - [`http`] — the query value (plain and base64), versions, OPTIONS, the policy gate and
//!   HTTP-level answers;
//! - [`state`] — kv keys and device records;
//! - [`status`] — common status codes and the mapping of host errors;
//! - [`wire`] — bounded body reading, WBXML decode/encode, command-level error answers;
//! - [`provision`] — policy download/acknowledgement and remote wipe;
//! - [`synckey`] — sync keys that a forged or stale key can never match;
//! - [`folders`], [`foldersync`] — the hierarchy: short ids, EAS types, FolderSync with
//!   replayable answers, FolderCreate/Update/Delete;
//! - [`mime`], [`time`], [`ids`], [`people`], [`item`] — messages, dates, ServerIds and
//!   FileReferences, directory people, and items as phones see them (mail, bodies, contacts,
//!   calendar, tasks, notes, drafts);
//! - [`sync`] (Sync), [`ping`] (Ping, parked), [`estimate`] (GetItemEstimate),
//!   [`itemops`] (ItemOperations, GetAttachment), [`compose`] (SendMail, SmartReply,
//!   SmartForward), [`moveitems`], [`search`], [`settings`], [`resolve`]
//!   (ResolveRecipients, ValidateCert), [`meeting`] (MeetingResponse) — the commands.
//!
//! Every command handler takes the parsed request and answers with a [`Response`] (or parks);
//! host errors map to the command's status or an HTTP code ([`status`]), never a panic.

pub mod compose;
pub mod estimate;
pub mod folders;
pub mod foldersync;
pub mod http;
pub mod ids;
pub mod item;
pub mod itemops;
pub mod meeting;
pub mod mime;
pub mod moveitems;
pub mod people;
pub mod ping;
pub mod provision;
pub mod resolve;
pub mod search;
pub mod settings;
pub mod state;
pub mod status;
pub mod sync;
pub mod synckey;
pub mod time;
pub mod wire;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testkit;

use switchboard_sdk::http::{Outcome, Request, Response};
use switchboard_sdk::{host, HttpFrontend};

use http::policy::{self, Gate, Wire};
use http::query::{self, QueryError};
use http::{Command, Version};
use state::{Device, DeviceKey};

/// The plugin.
#[derive(Debug)]
pub struct Eas;

/// The newest version, assumed when a plain query comes without `MS-ASProtocolVersion`.
const DEFAULT_VERSION: Version = Version::V14_1;

/// Everything a command handler needs about the request.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Who and which device.
    pub dk: DeviceKey,
    /// The negotiated protocol version.
    pub version: Version,
    /// The parsed query.
    pub query: query::EasQuery,
}

impl Ctx {
    /// The context of a parked request being resumed (no query: only what the state kept).
    pub fn resumed(
        who: switchboard_sdk::Principal,
        device_id: String,
        device_type: String,
        version: Version,
    ) -> Ctx {
        Ctx {
            dk: DeviceKey {
                who,
                device_id: device_id.clone(),
            },
            version,
            query: query::EasQuery {
                form: query::QueryForm::Plain,
                command: Command::Sync,
                version: Some(version),
                device_id,
                device_type,
                user: None,
                policy_key: None,
                locale: None,
                params: query::CommandParams::default(),
            },
        }
    }
}

fn setting_bool(key: &str, default: bool) -> bool {
    match host::config::get(key) {
        Some(v) => matches!(v.trim(), "true" | "1" | "yes"),
        None => default,
    }
}

fn reply(r: Response) -> Outcome {
    Outcome::Reply(r)
}

impl HttpFrontend for Eas {
    fn handle(req: Request) -> Outcome {
        if let Some(url) = host::config::get("redirect_url").filter(|u| !u.trim().is_empty()) {
            return reply(http::redirect(url.trim()));
        }
        match req.method.as_str() {
            "OPTIONS" => return reply(http::options::response()),
            "POST" => {}
            _ => return reply(http::empty(405).with_header("allow", "OPTIONS,POST")),
        }
        let Some(who) = req.principal.clone() else {
            return reply(http::unauthorized());
        };
        let q = match query::parse(&req.query, &req.headers) {
            Ok(q) => q,
            Err(e @ QueryError::UnsupportedVersion(_)) => {
                return reply(http::unsupported_version(&e.to_string()))
            }
            Err(e) => return reply(http::bad_request(&e.to_string())),
        };
        let ctx = Ctx {
            dk: DeviceKey {
                who,
                device_id: q.device_id.clone(),
            },
            version: q.version.unwrap_or(DEFAULT_VERSION),
            query: q,
        };
        match dispatch(&ctx, &req) {
            Ok(o) => o,
            Err(e) => failed(ctx.query.command, &ctx.dk, &e),
        }
    }

    fn resume(state: Vec<u8>, fired: Vec<String>) -> Outcome {
        let parsed: Option<(String, serde_json::Value)> = serde_json::from_slice(&state).ok();
        let result = match parsed {
            Some((kind, v)) if kind == "sync" => match serde_json::from_value(v) {
                Ok(p) => sync::resume(p),
                Err(_) => return reply(http::empty(500)),
            },
            Some((kind, v)) if kind == "ping" => match serde_json::from_value(v) {
                Ok(p) => return reply(ping::resume_with(p, &fired)),
                Err(_) => return reply(http::empty(500)),
            },
            _ => return reply(http::empty(500)),
        };
        result.unwrap_or_else(|e| {
            host::log::warn(&format!("eas: resuming a parked request failed: {e}"));
            reply(http::unavailable())
        })
    }
}

/// A host error that ended a command: logged, answered with its HTTP form.
fn failed(command: Command, dk: &DeviceKey, e: &switchboard_sdk::Error) -> Outcome {
    host::log::warn(&format!(
        "eas: {} for {} device {} failed: {e}",
        command.name(),
        dk.who.address(),
        dk.device_id
    ));
    let m = status::map_host_error(e);
    reply(match m.http {
        503 => http::unavailable(),
        code => http::empty(code),
    })
}

/// Gate the request on the device's policy state, then run the command.
fn dispatch(ctx: &Ctx, req: &Request) -> switchboard_sdk::Result<Outcome> {
    let device: Option<Device> = state::load(&ctx.dk.device())?;
    let wipe = state::wipe_state(&ctx.dk)?;
    let expect = policy::Expect {
        require: setting_bool("require_provisioning", true),
        policy_hash: provision::Policy::from_config().fingerprint(),
    };
    let gate = policy::check(
        ctx.query.command,
        ctx.version,
        ctx.query.policy_key,
        device.as_ref(),
        wipe,
        expect,
    );
    match gate {
        Gate::Pass => {}
        Gate::Blocked => return Ok(reply(http::empty(403))),
        Gate::Provision(refusal) => {
            return Ok(reply(match refusal.wire(ctx.version) {
                Wire::Http449 => http::need_provision(),
                Wire::Status(code) => wire::status_only(ctx.query.command, code, 449),
            }))
        }
    }
    // A device seen for the first time (provisioning not required) is recorded, so admins
    // can list, wipe and remove it like any other.
    let device = match device {
        None if ctx.query.command != Command::Provision => {
            let d = Device {
                device_type: ctx.query.device_type.clone(),
                version: ctx.version.to_string(),
                ..Device::default()
            };
            state::store(&ctx.dk.device(), &d)?;
            Some(d)
        }
        d => d,
    };
    commands::run(ctx, req, device)
}

mod commands {
    //! Command dispatch (filled in as the command layers land).
    use super::*;

    /// Run the command.
    pub fn run(
        ctx: &Ctx,
        req: &Request,
        device: Option<Device>,
    ) -> switchboard_sdk::Result<Outcome> {
        Ok(match ctx.query.command {
            Command::Provision => reply(provision::handle(ctx, req, device)?),
            Command::FolderSync => reply(foldersync::sync(ctx, req)?),
            Command::Sync => sync::handle(ctx, req)?,
            Command::Ping => ping::handle(ctx, req)?,
            Command::ItemOperations => reply(itemops::handle(ctx, req)?),
            Command::MoveItems => reply(moveitems::handle(ctx, req)?),
            Command::Search => reply(search::handle(ctx, req)?),
            Command::MeetingResponse => reply(meeting::handle(ctx, req)?),
            Command::Settings => reply(settings::handle(ctx, req)?),
            Command::ResolveRecipients => reply(resolve::handle(ctx, req)?),
            Command::ValidateCert => reply(resolve::validate_cert(ctx, req)?),
            Command::GetItemEstimate => reply(estimate::handle(ctx, req)?),
            Command::GetAttachment => reply(itemops::get_attachment(ctx)?),
            Command::SendMail | Command::SmartReply | Command::SmartForward => {
                reply(compose::handle(ctx, req)?)
            }
            Command::FolderCreate => reply(foldersync::create(ctx, req)?),
            Command::FolderUpdate => reply(foldersync::update(ctx, req)?),
            Command::FolderDelete => reply(foldersync::delete(ctx, req)?),
            other => reply(wire::status_only(
                other,
                status::common::COMMAND_NOT_SUPPORTED,
                501,
            )),
        })
    }
}

switchboard_sdk::export_wasm!(http_frontend: Eas);
switchboard_sdk::export_native!(http_frontend: Eas);

#[cfg(test)]
mod tests;
