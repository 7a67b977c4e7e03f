//! Status values: the common `Status` codes of [MS-ASCMD] 2.2.2 (protocol 14.0 and later,
//! valid in any command's response) and how host errors map onto them and onto HTTP.

use switchboard_sdk::Error as HostError;

/// Common status codes ([MS-ASCMD] 2.2.2), the ones this server sends.
pub mod common {
    /// The body is not what the command expects.
    pub const INVALID_CONTENT: u8 = 101;
    /// The body is not valid WBXML.
    pub const INVALID_WBXML: u8 = 102;
    /// The WBXML decodes but is not the command's schema.
    pub const INVALID_XML: u8 = 103;
    /// A MIME message could not be parsed.
    pub const INVALID_MIME: u8 = 107;
    /// The device id is missing or malformed.
    pub const DEVICE_ID_INVALID: u8 = 108;
    /// Server error; do not retry blindly.
    pub const SERVER_ERROR: u8 = 110;
    /// Transient server error; retry later.
    pub const SERVER_ERROR_RETRY_LATER: u8 = 111;
    /// The mailbox is over quota.
    pub const MAILBOX_QUOTA_EXCEEDED: u8 = 113;
    /// The mailbox server is offline.
    pub const MAILBOX_SERVER_OFFLINE: u8 = 114;
    /// Sending failed.
    pub const MAIL_SUBMISSION_FAILED: u8 = 120;
    /// The device is blocked for this user.
    pub const DEVICE_BLOCKED: u8 = 129;
    /// Access denied.
    pub const ACCESS_DENIED: u8 = 130;
    /// The sync state is gone (the client must start over).
    pub const SYNC_STATE_NOT_FOUND: u8 = 132;
    /// The command is not supported.
    pub const COMMAND_NOT_SUPPORTED: u8 = 137;
    /// The protocol version is not supported for this command.
    pub const VERSION_NOT_SUPPORTED: u8 = 138;
    /// The device must wipe itself (send Provision to receive the wipe).
    pub const REMOTE_WIPE_REQUESTED: u8 = 140;
    /// The device sent no policy key: Provision first.
    pub const DEVICE_NOT_PROVISIONED: u8 = 142;
    /// The policy changed: Provision again.
    pub const POLICY_REFRESH: u8 = 143;
    /// The policy key is not the current one: Provision again.
    pub const INVALID_POLICY_KEY: u8 = 144;
    /// The item does not exist.
    pub const ITEM_NOT_FOUND: u8 = 150;
}

/// How a host (connector, kv) error is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    /// HTTP status when the error ends the request outright (12.1, or no command body).
    pub http: u16,
    /// The common status for 14.0+ command responses.
    pub status: u8,
}

/// Map a host error: not-found → 150, denied → 130 / 403, quota → 113 / 507, unavailable →
/// 111 / 503, invalid → 101 / 400, conflict and internal → 110 / 500.
pub fn map_host_error(e: &HostError) -> Mapped {
    let (http, status) = match e {
        HostError::NotFound(_) => (404, common::ITEM_NOT_FOUND),
        HostError::Denied(_) => (403, common::ACCESS_DENIED),
        HostError::Invalid(_) => (400, common::INVALID_CONTENT),
        HostError::Conflict(_) => (500, common::SERVER_ERROR_RETRY_LATER),
        HostError::Unavailable(_) => (503, common::SERVER_ERROR_RETRY_LATER),
        HostError::Quota(_) => (507, common::MAILBOX_QUOTA_EXCEEDED),
        HostError::Internal(_) => (500, common::SERVER_ERROR),
    };
    Mapped { http, status }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_map_to_wire_forms() {
        let m = map_host_error(&HostError::Unavailable("imap down".into()));
        assert_eq!((m.http, m.status), (503, 111));
        let m = map_host_error(&HostError::NotFound("x".into()));
        assert_eq!((m.http, m.status), (404, 150));
        let m = map_host_error(&HostError::Quota("x".into()));
        assert_eq!((m.http, m.status), (507, 113));
    }
}
