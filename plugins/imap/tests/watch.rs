//! Watches for parked Pings against a real Dovecot: mail delivered, flags changed and mail
//! filed into another folder by another client publish `mailbox:` events from the connector's
//! background task (IDLE on the Inbox, STATUS polls elsewhere; NOOP polls on a server without
//! IDLE), and a watch nobody extends ends at its deadline. The connector runs under the SDK's
//! mock host, whose background publisher records what is published.

mod support;

use std::time::{Duration, Instant};

use support::connector_host;
use support::dovecot::{Dovecot, PASSWORD};
use support::raw::{message, Raw};
use switchboard_imap::{watch, Imap};
use switchboard_sdk::mock::MockHost;
use switchboard_sdk::{MailConnector, Principal};

fn alice() -> Principal {
    Principal::parse("alice@example.com").unwrap()
}

fn host_for(port: u16, idle: bool) -> MockHost {
    connector_host(port)
        .with_config("idle", if idle { "true" } else { "false" })
        .with_config("watch_poll_secs", "1")
}

/// Wait (bounded) until `host` has published `key` through its background publisher `n`
/// times in all.
fn wait_for(host: &MockHost, key: &str, n: usize) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = host.background_events();
        if seen.iter().filter(|k| *k == key).count() >= n || Instant::now() > until {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait (bounded) until the watch task has its IDLE (or first poll) running: the server
/// lists the watch's session among alice's.
fn wait_until_watching(d: &Dovecot) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        let log = d.log();
        if log.contains("IDLE") || log.matches("Login: user=<alice@example.com").count() >= 2 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn inbox_archive() -> Vec<String> {
    vec!["INBOX".to_string(), "Archive".to_string()]
}

#[test]
fn idle_and_status_polls_publish_changes_made_by_other_clients() {
    let d = Dovecot::start();
    let mut r = Raw::login(d.port, "alice@example.com", PASSWORD);
    r.append("INBOX", "", &message("old", "bob@example.com", None));
    let host = host_for(d.port, true);
    host.run(|| Imap::watch(&alice(), &inbox_archive(), 60_000))
        .unwrap();
    assert_eq!(watch::active(), 1);
    wait_until_watching(&d);
    // Give the STATUS baseline of Archive a moment; a change before it would only be missed,
    // never invented, and the assertions below would then time out and fail loudly.
    std::thread::sleep(Duration::from_millis(300));

    r.append("INBOX", "", &message("new", "bob@example.com", None));
    let seen = wait_for(&host, "mailbox:alice@example.com/INBOX", 1);
    assert!(
        seen.contains(&"mailbox:alice@example.com/INBOX".to_string()),
        "{seen:?}"
    );

    r.ok("SELECT INBOX");
    r.ok("STORE 1 +FLAGS (\\Seen)");
    let seen = wait_for(&host, "mailbox:alice@example.com/INBOX", 2);
    assert!(
        seen.iter()
            .filter(|k| *k == "mailbox:alice@example.com/INBOX")
            .count()
            >= 2,
        "a flag change was not published: {seen:?}"
    );

    r.append("Archive", "", &message("filed", "bob@example.com", None));
    let seen = wait_for(&host, "mailbox:alice@example.com/Archive", 1);
    assert!(
        seen.contains(&"mailbox:alice@example.com/Archive".to_string()),
        "{seen:?}"
    );
    // A folder nobody watches is never announced.
    r.append("Sent", "", &message("sent", "alice@example.com", None));
    std::thread::sleep(Duration::from_millis(1500));
    let seen = host.background_events();
    assert!(
        !seen.iter().any(|k| k.ends_with("/Sent")),
        "unwatched folder announced: {seen:?}"
    );

    // A second Ping of the same user extends the watch instead of opening another one.
    host.run(|| Imap::watch(&alice(), &["Sent".to_string()], 60_000))
        .unwrap();
    assert_eq!(watch::active(), 1);
}

#[test]
fn a_server_without_idle_is_polled_with_noop() {
    let d = Dovecot::start_with("imap_capability = IMAP4rev1 SASL-IR LITERAL+ UIDPLUS\n");
    let mut r = Raw::login(d.port, "alice@example.com", PASSWORD);
    assert!(!r.ok("CAPABILITY").join(" ").contains("IDLE"));
    let host = host_for(d.port, true);
    host.run(|| Imap::watch(&alice(), &["INBOX".to_string()], 60_000))
        .unwrap();
    wait_until_watching(&d);
    std::thread::sleep(Duration::from_millis(300));
    r.append("INBOX", "", &message("new", "bob@example.com", None));
    let seen = wait_for(&host, "mailbox:alice@example.com/INBOX", 1);
    assert!(
        seen.contains(&"mailbox:alice@example.com/INBOX".to_string()),
        "{seen:?}"
    );
}

#[test]
fn a_watch_ends_at_its_deadline_and_dav_folders_are_not_watched() {
    let d = Dovecot::start();
    let mut r = Raw::login(d.port, "alice@example.com", PASSWORD);
    let host = host_for(d.port, true);
    host.run(|| Imap::watch(&alice(), &["dav:/alice/calendar/".to_string()], 60_000))
        .unwrap();
    assert_eq!(watch::active(), 0, "a DAV folder started a watch");

    host.run(|| Imap::watch(&alice(), &["INBOX".to_string()], 1_000))
        .unwrap();
    assert_eq!(watch::active(), 1);
    let until = Instant::now() + Duration::from_secs(20);
    while watch::active() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(watch::active(), 0, "the watch outlived its deadline");
    r.append("INBOX", "", &message("late", "bob@example.com", None));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        host.background_events().is_empty(),
        "published after the deadline: {:?}",
        host.background_events()
    );

    // Watching off: nothing starts.
    let off = host_for(d.port, true).with_config("max_watchers", "0");
    off.run(|| Imap::watch(&alice(), &["INBOX".to_string()], 60_000))
        .unwrap();
    assert_eq!(watch::active(), 0);
}
