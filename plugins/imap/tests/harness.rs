//! The Dovecot harness itself: it starts, takes logins (direct and master user), stores
//! messages, refuses a wrong password, and restarts with its mail intact.

mod support;

use support::dovecot::{Dovecot, MASTER_PASSWORD, MASTER_USER, PASSWORD};
use support::raw::{message, Raw};

#[test]
fn dovecot_starts_stores_and_restarts() {
    let mut d = Dovecot::start();
    let mut alice = Raw::login(d.port, "alice@example.com", PASSWORD);
    let list = alice.ok("LIST \"\" \"*\" RETURN (SPECIAL-USE)");
    assert!(
        list.iter()
            .any(|l| l.contains("\\Sent") && l.contains("Sent")),
        "{list:?}"
    );
    let uid = alice.append("INBOX", "", &message("first", "bob@example.com", None));
    assert_eq!(uid, 1);
    let uid = alice.append(
        "INBOX",
        "\\Seen",
        &message("second", "bob@example.com", Some(("a.bin", b"0123456789"))),
    );
    assert_eq!(uid, 2);
    drop(alice);

    let mut master = Raw::login(
        d.port,
        &format!("alice@example.com*{MASTER_USER}"),
        MASTER_PASSWORD,
    );
    let status = master.ok("STATUS INBOX (MESSAGES)");
    assert!(status[0].contains("MESSAGES 2"), "{status:?}");
    drop(master);

    let mut bad = Raw::connect(d.port);
    let refused = bad.cmd("LOGIN \"alice@example.com\" \"wrong\"");
    assert!(refused.last().unwrap().contains(" NO "), "{refused:?}");

    d.restart();
    let mut again = Raw::login(d.port, "alice@example.com", PASSWORD);
    let status = again.ok("STATUS INBOX (MESSAGES)");
    assert!(status[0].contains("MESSAGES 2"), "{status:?}\n{}", d.log());
}
