//! Provision ([MS-ASPROV]): the two-phase policy download and acknowledgement, and remote
//! wipe.
//!
//! 1. *Download*: the device asks for `MS-EAS-Provisioning-WBXML`; the server answers with the
//!    `EASProvisionDoc` and a temporary policy key (stored as the device's `pending_key`).
//! 2. *Acknowledge*: the device echoes the temporary key with its apply status; the server
//!    answers with the final key, which every later command must present (`policy_key`).
//!
//! A pending wipe ([`crate::state`]) replaces the policy with a `RemoteWipe` (or, for 16.1,
//! `AccountOnlyRemoteWipe`) directive; the device's acknowledgement marks the wipe done.
//! `settings:DeviceInformation` sent with the request (14.1+) is stored on the device record.
//!
//! Keys are derived, not random (WebAssembly plugins get no entropy they can rely on): a
//! 32-bit FNV-1a of the user, device and a per-device counter, never 0. They are not secrets —
//! the key proves the device applied the policy, the core's authentication guards access.

use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{host, Result};
use switchboard_wbxml::{tags::provision as p, tags::settings as s, Element};

use crate::http::Version;
use crate::state::{self, Device, DeviceKey, Wipe};
use crate::wire;
use crate::Ctx;

/// The policy type of protocol 12.0 and later.
pub const POLICY_TYPE: &str = "MS-EAS-Provisioning-WBXML";

/// The policy the server hands out; defaults are permissive (no password required), the
/// admin tightens them with `policy_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A device password is required.
    pub password_required: bool,
    /// Minimum password length (with `password_required`).
    pub min_password_length: u32,
    /// Letters and digits required.
    pub alphanumeric_password: bool,
    /// Simple passwords (1234) allowed.
    pub allow_simple_password: bool,
    /// Seconds of inactivity before the device locks (0: not enforced).
    pub max_inactivity_lock_secs: u32,
    /// Failed unlocks before the device wipes itself (0: not enforced).
    pub max_failed_attempts: u32,
    /// Device encryption required.
    pub require_encryption: bool,
    /// Largest attachment the device downloads, bytes (0: no limit).
    pub max_attachment_size: u64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            password_required: false,
            min_password_length: 4,
            alphanumeric_password: false,
            allow_simple_password: true,
            max_inactivity_lock_secs: 0,
            max_failed_attempts: 0,
            require_encryption: false,
            max_attachment_size: 0,
        }
    }
}

fn setting<T: std::str::FromStr>(key: &str) -> Option<T> {
    host::config::get(key).and_then(|v| v.trim().parse().ok())
}

fn flag(key: &str) -> Option<bool> {
    host::config::get(key).map(|v| matches!(v.trim(), "true" | "1" | "yes"))
}

impl Policy {
    /// The policy from the plugin's `policy_*` settings, defaults where unset.
    pub fn from_config() -> Policy {
        let d = Policy::default();
        Policy {
            password_required: flag("policy_password_required").unwrap_or(d.password_required),
            min_password_length: setting("policy_min_password_length")
                .unwrap_or(d.min_password_length),
            alphanumeric_password: flag("policy_alphanumeric_password")
                .unwrap_or(d.alphanumeric_password),
            allow_simple_password: flag("policy_allow_simple_password")
                .unwrap_or(d.allow_simple_password),
            max_inactivity_lock_secs: setting("policy_max_inactivity_lock_secs")
                .unwrap_or(d.max_inactivity_lock_secs),
            max_failed_attempts: setting("policy_max_failed_attempts")
                .unwrap_or(d.max_failed_attempts),
            require_encryption: flag("policy_require_encryption").unwrap_or(d.require_encryption),
            max_attachment_size: setting("policy_max_attachment_size")
                .unwrap_or(d.max_attachment_size),
        }
    }

    /// A fingerprint that changes whenever the policy does (devices holding an older one
    /// are asked to provision again).
    pub fn fingerprint(&self) -> u32 {
        fnv(format!("{self:?}").as_bytes())
    }

    /// The `EASProvisionDoc` ([MS-ASPROV] 2.2.2.28), elements in schema order.
    pub fn document(&self) -> Element {
        let b = |v: bool| if v { "1" } else { "0" };
        let n = |v: u32| v.to_string();
        let mut doc = Element::new(p::EASProvisionDoc)
            .with_text_child(p::DevicePasswordEnabled, b(self.password_required))
            .with_text_child(
                p::AlphanumericDevicePasswordRequired,
                b(self.alphanumeric_password),
            )
            .with_text_child(p::PasswordRecoveryEnabled, "0")
            .with_text_child(p::RequireStorageCardEncryption, b(self.require_encryption))
            .with_text_child(p::AttachmentsEnabled, "1")
            .with_text_child(p::MinDevicePasswordLength, n(self.min_password_length));
        doc.push(if self.max_inactivity_lock_secs > 0 {
            Element::text_element(
                p::MaxInactivityTimeDeviceLock,
                n(self.max_inactivity_lock_secs),
            )
        } else {
            Element::new(p::MaxInactivityTimeDeviceLock)
        });
        doc.push(if self.max_failed_attempts > 0 {
            Element::text_element(
                p::MaxDevicePasswordFailedAttempts,
                n(self.max_failed_attempts),
            )
        } else {
            Element::new(p::MaxDevicePasswordFailedAttempts)
        });
        doc.push(if self.max_attachment_size > 0 {
            Element::text_element(p::MaxAttachmentSize, self.max_attachment_size.to_string())
        } else {
            Element::new(p::MaxAttachmentSize)
        });
        doc.with_text_child(p::AllowSimpleDevicePassword, b(self.allow_simple_password))
            .with(Element::new(p::DevicePasswordExpiration))
            .with_text_child(p::DevicePasswordHistory, "0")
            .with_text_child(p::AllowStorageCard, "1")
            .with_text_child(p::AllowCamera, "1")
            .with_text_child(p::RequireDeviceEncryption, b(self.require_encryption))
            .with_text_child(p::AllowUnsignedApplications, "1")
            .with_text_child(p::AllowUnsignedInstallationPackages, "1")
            .with_text_child(p::MinDevicePasswordComplexCharacters, "1")
            .with_text_child(p::AllowWiFi, "1")
            .with_text_child(p::AllowTextMessaging, "1")
            .with_text_child(p::AllowPOPIMAPEmail, "1")
            .with_text_child(p::AllowBluetooth, "2")
            .with_text_child(p::AllowIrDA, "1")
            .with_text_child(p::RequireManualSyncWhenRoaming, "0")
            .with_text_child(p::AllowDesktopSync, "1")
            .with_text_child(p::MaxCalendarAgeFilter, "0")
            .with_text_child(p::AllowHTMLEmail, "1")
            .with_text_child(p::MaxEmailAgeFilter, "0")
            .with_text_child(p::MaxEmailBodyTruncationSize, "-1")
            .with_text_child(p::MaxEmailHTMLBodyTruncationSize, "-1")
            .with_text_child(p::RequireSignedSMIMEMessages, "0")
            .with_text_child(p::RequireEncryptedSMIMEMessages, "0")
            .with_text_child(p::RequireSignedSMIMEAlgorithm, "0")
            .with_text_child(p::RequireEncryptionSMIMEAlgorithm, "0")
            .with_text_child(p::AllowSMIMEEncryptionAlgorithmNegotiation, "2")
            .with_text_child(p::AllowSMIMESoftCerts, "1")
            .with_text_child(p::AllowBrowser, "1")
            .with_text_child(p::AllowConsumerEmail, "1")
            .with_text_child(p::AllowRemoteDesktop, "1")
            .with_text_child(p::AllowInternetSharing, "1")
            .with(Element::new(p::UnapprovedInROMApplicationList))
            .with(Element::new(p::ApprovedApplicationList))
    }
}

/// 32-bit FNV-1a.
pub fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The next policy key of a device: never 0, never the previous one.
pub fn next_key(dk: &DeviceKey, dev: &mut Device) -> u32 {
    loop {
        dev.keys_issued = dev.keys_issued.wrapping_add(1);
        let seed = format!(
            "{}\n{}\n{}\n{:?}",
            dk.who.address(),
            dk.device_id,
            dev.keys_issued,
            dev.policy_key
        );
        let key = fnv(seed.as_bytes());
        if key != 0 && Some(key) != dev.policy_key && Some(key) != dev.pending_key {
            return key;
        }
    }
}

/// Provision status values ([MS-ASPROV] 2.2.2.54.2 and .1).
mod status {
    pub const OK: &str = "1";
    pub const PROTOCOL_ERROR: &str = "2";
    pub const UNKNOWN_POLICY_TYPE: &str = "3";
    pub const WRONG_POLICY_KEY: &str = "5";
}

/// Handle a Provision request.
pub fn handle(ctx: &Ctx, req: &Request, device: Option<Device>) -> Result<Response> {
    let doc = match wire::decode_body(req, p::Provision) {
        Ok(Some(doc)) => doc,
        // An empty body asks for the policy like an initial request without a type.
        Ok(None) => Element::new(p::Provision),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let dk = &ctx.dk;
    let mut dev = device.unwrap_or_default();
    dev.device_type.clone_from(&ctx.query.device_type);
    dev.version = ctx.version.to_string();
    let mut out = Element::new(p::Provision);

    if let Some(info) = doc.child_tag(s::DeviceInformation) {
        store_device_information(&mut dev, info);
        if ctx.version >= Version::V14_1 {
            out.push(Element::new(s::DeviceInformation).with_text_child(s::Status, "1"));
        }
    }

    // Acknowledgement of a wipe directive.
    let wipe_ack = doc
        .child_tag(p::RemoteWipe)
        .or_else(|| doc.child_tag(p::AccountOnlyRemoteWipe));
    if let Some(ack) = wipe_ack {
        let ok = wire::text(ack, "Status") == Some("1");
        let wipe = state::wipe_state(dk)?;
        out.push(Element::text_element(p::Status, status::OK));
        if matches!(wipe, Some(Wipe::Sent | Wipe::AccountSent)) {
            if ok {
                host::kv::set(&dk.wipe(), Wipe::Done.as_bytes())?;
                host::log::info(&format!(
                    "eas: device {} of {} acknowledged the remote wipe",
                    dk.device_id,
                    dk.who.address()
                ));
            } else {
                // Failed: repeat the directive ([MS-ASPROV] 3.2.5.1.2.2).
                out.push(wipe_directive(wipe == Some(Wipe::AccountSent)));
            }
        }
        state::store(&dk.device(), &dev)?;
        return Ok(wire::respond(&out));
    }

    // A pending wipe replaces the policy.
    match state::wipe_state(dk)? {
        Some(w @ (Wipe::Full | Wipe::Sent)) => {
            let _ = w;
            host::kv::set(&dk.wipe(), Wipe::Sent.as_bytes())?;
            out.push(Element::text_element(p::Status, status::OK));
            out.push(wipe_directive(false));
            state::store(&dk.device(), &dev)?;
            return Ok(wire::respond(&out));
        }
        Some(Wipe::AccountOnly | Wipe::AccountSent) => {
            host::kv::set(&dk.wipe(), Wipe::AccountSent.as_bytes())?;
            out.push(Element::text_element(p::Status, status::OK));
            out.push(wipe_directive(true));
            state::store(&dk.device(), &dev)?;
            return Ok(wire::respond(&out));
        }
        Some(Wipe::Done) | None => {}
    }

    let Some(policy_req) = doc
        .child_tag(p::Policies)
        .and_then(|ps| ps.child_tag(p::Policy))
    else {
        out.push(Element::text_element(p::Status, status::PROTOCOL_ERROR));
        return Ok(wire::respond(&out));
    };
    let policy_type = wire::text(policy_req, "PolicyType").unwrap_or(POLICY_TYPE);
    out.push(Element::text_element(p::Status, status::OK));
    let policy = Policy::from_config();
    let mut answer = Element::new(p::Policy).with_text_child(p::PolicyType, policy_type);
    if policy_type != POLICY_TYPE {
        answer.push(Element::text_element(
            p::Status,
            status::UNKNOWN_POLICY_TYPE,
        ));
        out.push(Element::new(p::Policies).with(answer));
        return Ok(wire::respond(&out));
    }

    match policy_req.child_tag(p::PolicyKey) {
        // Phase 2: acknowledgement.
        Some(key_el) => {
            let presented = key_el.text().and_then(|k| k.trim().parse::<u32>().ok());
            let applied = wire::text(policy_req, "Status").unwrap_or("1");
            let final_key = match presented {
                Some(k) if dev.pending_key == Some(k) => {
                    let key = next_key(dk, &mut dev);
                    dev.policy_key = Some(key);
                    dev.pending_key = None;
                    dev.acked_from = Some(k);
                    dev.policy_hash = policy.fingerprint();
                    Some(key)
                }
                // The same acknowledgement again (the answer was lost): the same final key.
                Some(k) if dev.acked_from == Some(k) && dev.policy_key.is_some() => dev.policy_key,
                _ => None,
            };
            match final_key {
                Some(key) => {
                    if applied != "1" {
                        host::log::info(&format!(
                            "eas: device {} of {} applied the policy partially (status {applied})",
                            dk.device_id,
                            dk.who.address()
                        ));
                    }
                    answer.push(Element::text_element(p::Status, status::OK));
                    answer.push(Element::text_element(p::PolicyKey, key.to_string()));
                }
                None => answer.push(Element::text_element(p::Status, status::WRONG_POLICY_KEY)),
            }
        }
        // Phase 1: download.
        None => {
            let temp = next_key(dk, &mut dev);
            dev.pending_key = Some(temp);
            answer.push(Element::text_element(p::Status, status::OK));
            answer.push(Element::text_element(p::PolicyKey, temp.to_string()));
            answer.push(Element::new(p::Data).with(policy.document()));
        }
    }
    out.push(Element::new(p::Policies).with(answer));
    state::store(&dk.device(), &dev)?;
    Ok(wire::respond(&out))
}

fn wipe_directive(account_only: bool) -> Element {
    Element::new(if account_only {
        p::AccountOnlyRemoteWipe
    } else {
        p::RemoteWipe
    })
}

/// Keep `DeviceInformation/Set/*` (Model, IMEI, FriendlyName, OS, OSLanguage, PhoneNumber,
/// UserAgent, EnableOutboundSMS, MobileOperator), bounded.
pub fn store_device_information(dev: &mut Device, info: &Element) {
    let set = info.child_tag(s::Set).unwrap_or(info);
    for e in set.elements().take(16) {
        if let Some(v) = e.text() {
            dev.info
                .insert(e.name().to_string(), v.chars().take(256).collect());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
