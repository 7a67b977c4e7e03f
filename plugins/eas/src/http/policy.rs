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

/// What the server expects of devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The `require_provisioning` setting.
    pub require: bool,
    /// Fingerprint of the current policy ([`crate::provision::Policy::fingerprint`]).
    pub policy_hash: u32,
}

/// Decide.
pub fn check(
    command: Command,
    version: Version,
    presented: Option<u32>,
    device: Option<&Device>,
    wipe: Option<Wipe>,
    expect: Expect,
) -> Gate {
    let require = expect.require;
    match wipe {
        Some(Wipe::Done) => return Gate::Blocked,
        Some(Wipe::AccountOnly) if version < Version::V16_1 => return Gate::Blocked,
        Some(Wipe::Full | Wipe::AccountOnly | Wipe::Sent | Wipe::AccountSent) => {
            return if command == Command::Provision {
                Gate::Pass
            } else if matches!(wipe, Some(Wipe::Sent | Wipe::AccountSent)) {
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
    match device {
        Some(d) if d.policy_key == Some(key) && d.policy_hash != expect.policy_hash => {
            Gate::Provision(Refusal(common::POLICY_REFRESH))
        }
        Some(d) if d.policy_key == Some(key) => Gate::Pass,
        _ => Gate::Provision(Refusal(common::INVALID_POLICY_KEY)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(key: u32) -> Device {
        Device {
            policy_key: Some(key),
            policy_hash: 9,
            ..Device::default()
        }
    }

    const T: Expect = Expect {
        require: true,
        policy_hash: 9,
    };
    const F: Expect = Expect {
        require: false,
        policy_hash: 9,
    };

    #[test]
    fn changed_policy_asks_for_a_refresh() {
        let d = dev(7);
        let changed = Expect {
            require: true,
            policy_hash: 10,
        };
        let g = check(
            Command::Sync,
            Version::V14_1,
            Some(7),
            Some(&d),
            None,
            changed,
        );
        assert_eq!(g, Gate::Provision(Refusal(143)));
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
                check(c, Version::V14_1, Some(7), Some(&d), None, T),
                Gate::Pass
            );
        }
    }

    #[test]
    fn missing_and_stale_keys_send_the_device_to_provision() {
        let d = dev(7);
        let g = check(Command::Sync, Version::V14_1, None, Some(&d), None, T);
        assert_eq!(g, Gate::Provision(Refusal(142)));
        let g = check(Command::Sync, Version::V16_1, Some(8), Some(&d), None, T);
        assert_eq!(g, Gate::Provision(Refusal(144)));
        let g = check(Command::FolderSync, Version::V14_0, Some(8), None, None, T);
        assert_eq!(g, Gate::Provision(Refusal(144)));
        // 12.1 learns it through HTTP 449, newer versions through the command's Status.
        assert_eq!(Refusal(142).wire(Version::V12_1), Wire::Http449);
        assert_eq!(Refusal(142).wire(Version::V14_1), Wire::Status(142));
        // Provision and Ping need no key; a server without the requirement lets all pass.
        assert_eq!(
            check(Command::Provision, Version::V14_1, None, None, None, T),
            Gate::Pass
        );
        assert_eq!(
            check(Command::Ping, Version::V14_1, None, None, None, T),
            Gate::Pass
        );
        assert_eq!(
            check(Command::Sync, Version::V14_1, None, None, None, F),
            Gate::Pass
        );
    }

    #[test]
    fn wipe_states() {
        let d = dev(7);
        let v = Version::V14_1;
        let g = check(Command::Sync, v, Some(7), Some(&d), Some(Wipe::Full), T);
        assert_eq!(g, Gate::Provision(Refusal(140)));
        // Even a device that never sent a key, and even when provisioning is not required.
        let g = check(Command::Ping, v, None, None, Some(Wipe::Full), F);
        assert_eq!(g, Gate::Provision(Refusal(140)));
        assert_eq!(
            check(Command::Provision, v, None, None, Some(Wipe::Full), T),
            Gate::Pass
        );
        assert_eq!(
            check(Command::Provision, v, None, None, Some(Wipe::Sent), T),
            Gate::Pass
        );
        assert_eq!(
            check(Command::Sync, v, Some(7), Some(&d), Some(Wipe::Sent), T),
            Gate::Blocked
        );
        assert_eq!(
            check(Command::Provision, v, None, None, Some(Wipe::Done), T),
            Gate::Blocked
        );
        // Account-only wipes exist from 16.1; older devices are blocked, never fully wiped.
        let g = check(
            Command::Provision,
            v,
            None,
            None,
            Some(Wipe::AccountOnly),
            T,
        );
        assert_eq!(g, Gate::Blocked);
        let g = check(
            Command::Sync,
            Version::V16_1,
            Some(7),
            Some(&d),
            Some(Wipe::AccountOnly),
            T,
        );
        assert_eq!(g, Gate::Provision(Refusal(140)));
    }
}
