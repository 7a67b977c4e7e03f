//! The policy gate: may this device run this command now? ([MS-ASPROV] 3.2.5.1,
//! [MS-ASCMD] 2.2.2.) Pure: the caller reads the device record and the wipe flag.
//!
//! - A pending remote wipe sends every command but Provision back to Provision, which carries
//!   the wipe directive.
//! - Without the acknowledged policy key (none sent: *not provisioned*; another one: *invalid
//!   key*) the device is sent to Provision.
//!
//! "Sent to Provision" is HTTP 449 for protocol 12.1 and the command's `Status` 140/142/144
//! from 14.0 ([`Refusal::wire`]).

use super::command::Command;
use super::version::Version;
use crate::state::{Device, Wipe};
use crate::status::common;

/// The gate's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Run the command.
    Pass,
    /// Refuse; the device must provision first.
    Provision(Refusal),
    /// Refuse with HTTP 403: the device was wiped, or an account-only wipe is pending for a
    /// device whose protocol cannot do one.
    Blocked,
}

/// Why the device must provision: a common status code (140, 142 or 144).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub u8);

/// How a refusal goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// HTTP 449 "Retry after sending a PROVISION command" (12.1).
    Http449,
    /// A command response whose `Status` is this code (14.0 and later).
    Status(u8),
}

impl Refusal {
    /// The wire form for a protocol version.
    pub fn wire(self, version: Version) -> Wire {
        if version.has_common_status() {
            Wire::Status(self.0)
        } else {
            Wire::Http449
        }
    }
}

/// Decide. `require` is the `require_provisioning` setting.
pub fn check(
    command: Command,
    version: Version,
    presented: Option<u32>,
    device: Option<&Device>,
    wipe: Option<Wipe>,
    require: bool,
) -> Gate {
    match wipe {
        Some(Wipe::Done) => return Gate::Blocked,
        Some(Wipe::AccountOnly) if version < Version::V16_1 => return Gate::Blocked,
        Some(Wipe::Full | Wipe::AccountOnly | Wipe::Sent) => {
            return if command == Command::Provision {
                Gate::Pass
            } else if wipe == Some(Wipe::Sent) {
                Gate::Blocked
            } else {
                Gate::Provision(Refusal(common::REMOTE_WIPE_REQUESTED))
            };
        }
        None => {}
    }
    if !command.needs_policy() || !require {
        return Gate::Pass;
    }
    let Some(key) = presented else {
        return Gate::Provision(Refusal(common::DEVICE_NOT_PROVISIONED));
    };
    match device.and_then(|d| d.policy_key) {
        Some(current) if current == key => Gate::Pass,
        _ => Gate::Provision(Refusal(common::INVALID_POLICY_KEY)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(key: u32) -> Device {
        Device {
            policy_key: Some(key),
            ..Device::default()
        }
    }

    #[test]
    fn provisioned_device_passes() {
        let d = dev(7);
        for c in [
            Command::Sync,
            Command::FolderSync,
            Command::Ping,
            Command::Provision,
        ] {
            assert_eq!(
                check(c, Version::V14_1, Some(7), Some(&d), None, true),
                Gate::Pass
            );
        }
    }

    #[test]
    fn missing_and_stale_keys_send_the_device_to_provision() {
        let d = dev(7);
        let g = check(Command::Sync, Version::V14_1, None, Some(&d), None, true);
        assert_eq!(g, Gate::Provision(Refusal(142)));
        let g = check(Command::Sync, Version::V16_1, Some(8), Some(&d), None, true);
        assert_eq!(g, Gate::Provision(Refusal(144)));
        let g = check(
            Command::FolderSync,
            Version::V14_0,
            Some(8),
            None,
            None,
            true,
        );
        assert_eq!(g, Gate::Provision(Refusal(144)));
        // 12.1 learns it through HTTP 449, newer versions through the command's Status.
        assert_eq!(Refusal(142).wire(Version::V12_1), Wire::Http449);
        assert_eq!(Refusal(142).wire(Version::V14_1), Wire::Status(142));
        // Provision and Ping need no key; a server without the requirement lets all pass.
        assert_eq!(
            check(Command::Provision, Version::V14_1, None, None, None, true),
            Gate::Pass
        );
        assert_eq!(
            check(Command::Ping, Version::V14_1, None, None, None, true),
            Gate::Pass
        );
        assert_eq!(
            check(Command::Sync, Version::V14_1, None, None, None, false),
            Gate::Pass
        );
    }

    #[test]
    fn wipe_states() {
        let d = dev(7);
        let v = Version::V14_1;
        let g = check(Command::Sync, v, Some(7), Some(&d), Some(Wipe::Full), true);
        assert_eq!(g, Gate::Provision(Refusal(140)));
        // Even a device that never sent a key, and even when provisioning is not required.
        let g = check(Command::Ping, v, None, None, Some(Wipe::Full), false);
        assert_eq!(g, Gate::Provision(Refusal(140)));
        assert_eq!(
            check(Command::Provision, v, None, None, Some(Wipe::Full), true),
            Gate::Pass
        );
        assert_eq!(
            check(Command::Provision, v, None, None, Some(Wipe::Sent), true),
            Gate::Pass
        );
        assert_eq!(
            check(Command::Sync, v, Some(7), Some(&d), Some(Wipe::Sent), true),
            Gate::Blocked
        );
        assert_eq!(
            check(Command::Provision, v, None, None, Some(Wipe::Done), true),
            Gate::Blocked
        );
        // Account-only wipes exist from 16.1; older devices are blocked, never fully wiped.
        let g = check(
            Command::Provision,
            v,
            None,
            None,
            Some(Wipe::AccountOnly),
            true,
        );
        assert_eq!(g, Gate::Blocked);
        let g = check(
            Command::Sync,
            Version::V16_1,
            Some(7),
            Some(&d),
            Some(Wipe::AccountOnly),
            true,
        );
        assert_eq!(g, Gate::Provision(Refusal(140)));
    }
}
