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
