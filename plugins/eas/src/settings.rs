//! Settings ([MS-ASCMD] 2.2.1.18): out-of-office get/set, DeviceInformation,
//! UserInformation and DevicePassword.
//!
//! Out-of-office settings are kept per user in kv (`oof/{user@domain}`) so every device of
//! the user sees what was set; the host has no interface yet through which a mail backend
//! would send the automatic replies, so they are stored, not acted on (logged once when
//! enabled).

use serde::{Deserialize, Serialize};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{host, Result};
use switchboard_wbxml::{tags::settings as st, Element};

use crate::http::Version;
use crate::provision;
use crate::state::{self, Device};
use crate::wire;
use crate::Ctx;

/// Settings status values ([MS-ASCMD] 2.2.3.177.14).
pub mod status {
    /// Success.
    pub const OK: u8 = 1;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u8 = 2;
    /// Access denied.
    pub const DENIED: u8 = 3;
    /// Server unavailable.
    pub const UNAVAILABLE: u8 = 4;
    /// Invalid arguments.
    pub const INVALID: u8 = 5;
    /// Conflicting arguments.
    pub const CONFLICT: u8 = 6;
}

/// One audience's out-of-office message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OofMessage {
    /// `AppliesToInternal`, `AppliesToExternalKnown` or `AppliesToExternalUnknown`.
    pub audience: String,
    /// Enabled.
    pub enabled: bool,
    /// The reply text.
    pub reply: String,
    /// `Text` or `HTML`.
    pub body_type: String,
}

/// The stored out-of-office state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Oof {
    /// 0 disabled, 1 global, 2 time-based.
    pub state: u8,
    /// Start (time-based), as sent.
    pub start: Option<String>,
    /// End (time-based), as sent.
    pub end: Option<String>,
    /// Messages.
    pub messages: Vec<OofMessage>,
}

fn oof_key(ctx: &Ctx) -> String {
    format!("oof/{}", ctx.dk.who.address())
}

/// Handle Settings.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Response> {
    let doc = match wire::decode_body(req, st::Settings) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(top(status::PROTOCOL_ERROR)),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let mut out = Element::new(st::Settings).with_text_child(st::Status, status::OK.to_string());
    for part in doc.elements().take(10) {
        let el = if part.tag == st::Oof {
            oof(ctx, part)?
        } else if part.tag == st::DeviceInformation {
            device_information(ctx, part)?
        } else if part.tag == st::UserInformation {
            user_information(ctx)
        } else if part.tag == st::RightsManagementInformation {
            // No IRM templates on this server.
            Element::new(st::RightsManagementInformation)
                .with_text_child(st::Status, status::OK.to_string())
                .with(Element::new(st::Get).with(Element::new(
                    switchboard_wbxml::tags::rightsmanagement::RightsManagementTemplates,
                )))
        } else if part.tag == st::DevicePassword {
            // The recovery password is not kept (PasswordRecoveryEnabled is 0).
            Element::new(st::DevicePassword).with_text_child(st::Status, status::OK.to_string())
        } else {
            Element::new(part.tag).with_text_child(st::Status, status::PROTOCOL_ERROR.to_string())
        };
        out.push(el);
    }
    Ok(wire::respond(&out))
}

fn top(code: u8) -> Response {
    wire::respond(&Element::new(st::Settings).with_text_child(st::Status, code.to_string()))
}

fn oof(ctx: &Ctx, part: &Element) -> Result<Element> {
    let key = oof_key(ctx);
    if let Some(set) = part.child_tag(st::Set) {
        let state: u8 = match wire::text(set, "OofState").map(str::parse::<u8>) {
            Some(Ok(s @ 0..=2)) => s,
            _ => {
                return Ok(
                    Element::new(st::Oof).with_text_child(st::Status, status::INVALID.to_string())
                )
            }
        };
        let mut messages = Vec::new();
        for m in part_messages(set) {
            messages.push(m);
        }
        let oof = Oof {
            state,
            start: wire::text(set, "StartTime").map(str::to_string),
            end: wire::text(set, "EndTime").map(str::to_string),
            messages,
        };
        if state == 2 && (oof.start.is_none() || oof.end.is_none()) {
            return Ok(
                Element::new(st::Oof).with_text_child(st::Status, status::CONFLICT.to_string())
            );
        }
        state::store(&key, &oof)?;
        if state != 0 {
            host::log::info(&format!(
                "eas: {} enabled out-of-office (stored; automatic replies need backend support)",
                ctx.dk.who.address()
            ));
        }
        return Ok(Element::new(st::Oof).with_text_child(st::Status, status::OK.to_string()));
    }
    let body_type = part
        .child_tag(st::Get)
        .and_then(|g| g.child_text("BodyType"))
        .unwrap_or("Text")
        .trim()
        .to_string();
    let oof: Oof = state::load(&key)?.unwrap_or_default();
    let mut get = Element::new(st::Get).with_text_child(st::OofState, oof.state.to_string());
    if oof.state == 2 {
        if let (Some(s), Some(e)) = (&oof.start, &oof.end) {
            get.push(Element::text_element(st::StartTime, s.clone()));
            get.push(Element::text_element(st::EndTime, e.clone()));
        }
    }
    for audience in [
        "AppliesToInternal",
        "AppliesToExternalKnown",
        "AppliesToExternalUnknown",
    ] {
        let m = oof.messages.iter().find(|m| m.audience == audience);
        let tag = match audience {
            "AppliesToInternal" => st::AppliesToInternal,
            "AppliesToExternalKnown" => st::AppliesToExternalKnown,
            _ => st::AppliesToExternalUnknown,
        };
        let mut msg = Element::new(st::OofMessage)
            .with(Element::new(tag))
            .with_text_child(
                st::Enabled,
                if m.is_some_and(|m| m.enabled) {
                    "1"
                } else {
                    "0"
                },
            );
        if let Some(m) = m {
            let text = if body_type.eq_ignore_ascii_case("HTML") && m.body_type != "HTML" {
                format!(
                    "<html><body>{}</body></html>",
                    m.reply.replace('&', "&amp;").replace('<', "&lt;")
                )
            } else if !body_type.eq_ignore_ascii_case("HTML") && m.body_type == "HTML" {
                crate::mime::strip_html(&m.reply)
            } else {
                m.reply.clone()
            };
            msg.push(Element::text_element(st::ReplyMessage, text));
            msg.push(Element::text_element(st::BodyType, body_type.clone()));
        }
        get.push(msg);
    }
    Ok(Element::new(st::Oof)
        .with_text_child(st::Status, status::OK.to_string())
        .with(get))
}

fn part_messages(set: &Element) -> Vec<OofMessage> {
    set.children_tagged(st::OofMessage)
        .take(3)
        .filter_map(|m| {
            let audience = m
                .elements()
                .find(|e| e.name().starts_with("AppliesTo"))?
                .name()
                .to_string();
            Some(OofMessage {
                audience,
                enabled: m.child_text("Enabled").map(str::trim) == Some("1"),
                reply: m
                    .child_text("ReplyMessage")
                    .unwrap_or("")
                    .chars()
                    .take(8000)
                    .collect(),
                body_type: m
                    .child_text("BodyType")
                    .unwrap_or("Text")
                    .trim()
                    .to_string(),
            })
        })
        .collect()
}

fn device_information(ctx: &Ctx, part: &Element) -> Result<Element> {
    let key = ctx.dk.device();
    let mut dev: Device = state::load(&key)?.unwrap_or_default();
    provision::store_device_information(&mut dev, part);
    state::store(&key, &dev)?;
    Ok(Element::new(st::DeviceInformation).with_text_child(st::Status, status::OK.to_string()))
}

fn user_information(ctx: &Ctx) -> Element {
    let who = &ctx.dk.who;
    let address = who.address();
    let name = match host::directory::lookup(who) {
        Ok(Some(p)) if !p.display_name.is_empty() => p.display_name,
        _ => who.user.clone(),
    };
    let get = if ctx.version >= Version::V14_1 {
        Element::new(st::Get).with(
            Element::new(st::Accounts).with(
                Element::new(st::Account)
                    .with_text_child(st::UserDisplayName, name)
                    .with(
                        Element::new(st::EmailAddresses)
                            .with_text_child(st::SmtpAddress, address.clone())
                            .with_text_child(st::PrimarySmtpAddress, address),
                    ),
            ),
        )
    } else {
        Element::new(st::Get)
            .with(Element::new(st::EmailAddresses).with_text_child(st::SmtpAddress, address))
    };
    Element::new(st::UserInformation)
        .with_text_child(st::Status, status::OK.to_string())
        .with(get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_wbxml::element;

    #[test]
    fn oof_round_trip_user_and_device_information() {
        let phone = crate::search::tests::phone_with_directory("14.1");
        let set = element!(
            st::Settings[element!(
                st::Oof[element!(st::Set [
                    element!(st::OofState = "1"),
                    element!(st::OofMessage [
                        element!(st::AppliesToInternal),
                        element!(st::Enabled = "1"),
                        element!(st::ReplyMessage = "Away until Monday"),
                        element!(st::BodyType = "Text"),
                    ]),
                ])]
            )]
        );
        let d = phone.cmd("Settings", &set);
        assert_eq!(d.child_text("Status"), Some("1"));
        assert_eq!(
            d.child("Oof").and_then(|o| o.child_text("Status")),
            Some("1")
        );
        let get = element!(st::Settings [
            element!(st::Oof [element!(st::Get [element!(st::BodyType = "Text")])]),
            element!(st::UserInformation [element!(st::Get)]),
            element!(st::DeviceInformation [element!(st::Set [element!(st::Model = "Pixel 8"), element!(st::OS = "Android 14")])]),
        ]);
        let d = phone.cmd("Settings", &get);
        let g = d.child("Oof").and_then(|o| o.child("Get")).unwrap();
        assert_eq!(g.child_text("OofState"), Some("1"));
        let internal = g.children_named("OofMessage").next().unwrap();
        assert_eq!(internal.child_text("Enabled"), Some("1"));
        assert_eq!(
            internal.child_text("ReplyMessage"),
            Some("Away until Monday")
        );
        let acct = d
            .child("UserInformation")
            .and_then(|u| u.child("Get"))
            .and_then(|g| g.child("Accounts"))
            .and_then(|a| a.child("Account"))
            .unwrap();
        assert_eq!(acct.child_text("UserDisplayName"), Some("Alice Example"));
        assert_eq!(
            acct.child("EmailAddresses")
                .and_then(|e| e.child_text("PrimarySmtpAddress")),
            Some("alice@example.com")
        );
        assert_eq!(
            d.child("DeviceInformation")
                .and_then(|x| x.child_text("Status")),
            Some("1")
        );
        let rec: crate::state::Device =
            serde_json::from_slice(&phone.host.kv_get("dev/alice@example.com/DEV1").unwrap())
                .unwrap();
        assert_eq!(rec.info.get("Model").map(String::as_str), Some("Pixel 8"));
        // Time-based without times: conflicting arguments.
        let bad = element!(
            st::Settings[element!(st::Oof[element!(st::Set[element!(st::OofState = "2")])])]
        );
        assert_eq!(
            phone
                .cmd("Settings", &bad)
                .child("Oof")
                .and_then(|o| o.child_text("Status")),
            Some("6")
        );
    }

    #[test]
    fn user_information_on_12_1_lists_addresses() {
        let phone = crate::search::tests::phone_with_directory("12.1");
        let d = phone.cmd(
            "Settings",
            &element!(st::Settings[element!(st::UserInformation[element!(st::Get)])]),
        );
        let g = d
            .child("UserInformation")
            .and_then(|u| u.child("Get"))
            .unwrap();
        assert_eq!(
            g.child("EmailAddresses")
                .and_then(|e| e.child_text("SmtpAddress")),
            Some("alice@example.com")
        );
    }
}
