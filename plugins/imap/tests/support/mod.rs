//! Test support: a throwaway Dovecot per test and a raw IMAP client for changing the mailbox
//! behind the connector's back. No mocks: every test talks to a real IMAP server.

#![allow(dead_code)] // each test binary uses its own subset

pub mod counting;
pub mod dovecot;
pub mod http_log;
pub mod proxy;
pub mod radicale;
pub mod raw;
pub mod smtp;

use switchboard_sdk::mock::MockHost;
use switchboard_sdk::Change;

/// A mock host with the connector's settings for an IMAP server on loopback `port`: plain
/// IMAP, the test service account, a 10 s limit. Tests add what they vary.
pub fn connector_host(port: u16) -> MockHost {
    MockHost::new()
        .with_config("host", "127.0.0.1")
        .with_config("port", &port.to_string())
        .with_config("master_user", dovecot::MASTER_USER)
        .with_config("master_password", dovecot::MASTER_PASSWORD)
        .with_config("timeout_secs", "10")
        .with_config("tls", "none")
}

/// `Added`/`Changed`/`Deleted` of DAV changes as `+subject`, `~subject`, `-file`, sorted.
pub fn dav_changes(changes: &[Change]) -> Vec<String> {
    let mut out: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Change::Added(i) => format!("+{}", i.subject),
            Change::Changed(i) => format!("~{}", i.subject),
            Change::Deleted(id) => format!("-{}", id.rsplit('/').next().unwrap_or("?")),
        })
        .collect();
    out.sort();
    out
}
