//! The connector against a real Dovecot: folders, full and incremental sync after changes made
//! directly on the server, flags, move, delete, ranged fetch, attachments, create, search,
//! wrong password, unreachable server, a restart mid-sync and a UIDVALIDITY change. Each test
//! has its own server; the connector runs under the SDK's mock host (kv, config, staging).

mod support;

use support::counting;
use support::dovecot::{Dovecot, MASTER_PASSWORD, MASTER_USER, PASSWORD};
use support::http_log;
use support::radicale::{card, event, Radicale};
use support::raw::{message, Raw};
use support::smtp::SmtpSink;
use support::{connector_host, dav_changes};
use switchboard_imap::Imap;
use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::mock::MockHost;
use switchboard_sdk::{Change, Error, FolderKind, MailConnector, Principal};

fn alice() -> Principal {
    Principal::parse("alice@example.com").unwrap()
}

fn host_for(port: u16, condstore: bool) -> MockHost {
    connector_host(port).with_config("condstore", if condstore { "true" } else { "false" })
}

fn raw(d: &Dovecot) -> Raw {
    Raw::login(d.port, "alice@example.com", PASSWORD)
}

fn subjects(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c {
            Change::Added(i) => format!("+{}", i.subject),
            Change::Changed(i) => format!("~{}{}", i.subject, if i.read { " read" } else { "" }),
            Change::Deleted(id) => format!("-{}", id.split('.').nth(1).unwrap_or("?")),
        })
        .collect()
}

#[test]
fn folders_with_kinds_hierarchy_and_names() {
    let d = Dovecot::start();
    let mut r = raw(&d);
    r.ok("CREATE \"Projects/Q1\"");
    r.ok("CREATE \"Entw&APw-rfe\"");
    let host = host_for(d.port, true);
    let folders = host.run(|| Imap::list_folders(&alice())).unwrap();
    let find = |id: &str| {
        folders
            .iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("{id} missing from {folders:?}"))
    };
    assert_eq!(folders[0].id, "INBOX");
    assert_eq!(find("INBOX").kind, FolderKind::Inbox);
    assert_eq!(find("Sent").kind, FolderKind::Sent);
    assert_eq!(find("Drafts").kind, FolderKind::Drafts);
    assert_eq!(find("Trash").kind, FolderKind::Deleted);
    assert_eq!(find("Junk").kind, FolderKind::Junk);
    assert_eq!(find("Archive").kind, FolderKind::UserMail);
    let q1 = find("Projects/Q1");
    assert_eq!(
        (q1.parent_id.as_str(), q1.name.as_str()),
        ("Projects", "Q1")
    );
    assert_eq!(find("Entw&APw-rfe").name, "Entwürfe");
}

fn full_and_incremental(condstore: bool) {
    let d = Dovecot::start();
    let mut r = raw(&d);
    for s in ["one", "two", "three"] {
        r.append("INBOX", "", &message(s, "bob@example.com", None));
    }
    let host = host_for(d.port, condstore);
    host.run(|| {
        let who = alice();
        let p1 = Imap::sync(&who, "INBOX", None, 2).unwrap();
        assert!(p1.more);
        assert_eq!(subjects(&p1.changes), ["+one", "+two"]);
        // Replay-safe: the same state gives the same page and the same next state.
        assert_eq!(Imap::sync(&who, "INBOX", None, 2).unwrap(), p1);
        let p2 = Imap::sync(&who, "INBOX", Some(&p1.state), 10).unwrap();
        assert!(!p2.more);
        assert_eq!(subjects(&p2.changes), ["+three"]);
        let Change::Added(first) = &p1.changes[0] else {
            panic!()
        };
        assert_eq!(first.sender, "bob@example.com");
        assert!(!first.read);
        let idle = Imap::sync(&who, "INBOX", Some(&p2.state), 10).unwrap();
        assert!(idle.changes.is_empty(), "{:?}", idle.changes);

        // Changes made directly on the server by another client.
        r.append("INBOX", "", &message("four", "carol@example.com", None));
        r.ok("SELECT INBOX");
        r.ok("UID STORE 1 +FLAGS (\\Seen)");
        r.ok("UID STORE 2 +FLAGS (\\Deleted)");
        r.ok("UID EXPUNGE 2");
        let p3 = Imap::sync(&who, "INBOX", Some(&idle.state), 10).unwrap();
        assert_eq!(subjects(&p3.changes), ["-2", "~one read", "+four"]);
        assert_eq!(
            Imap::sync(&who, "INBOX", Some(&idle.state), 10).unwrap(),
            p3
        );
        // Paged incremental: one change per page, nothing repeated.
        let mut state = idle.state.clone();
        let mut seen = Vec::new();
        loop {
            let p = Imap::sync(&who, "INBOX", Some(&state), 1).unwrap();
            seen.extend(subjects(&p.changes));
            state = p.state;
            if !p.more {
                break;
            }
        }
        assert_eq!(seen, ["-2", "~one read", "+four"]);
        let after = Imap::sync(&who, "INBOX", Some(&state), 10).unwrap();
        assert!(after.changes.is_empty(), "{:?}", after.changes);
        assert!(matches!(
            Imap::sync(&who, "INBOX", Some("forged"), 10),
            Err(Error::Invalid(_))
        ));
    });
}

#[test]
fn sync_full_and_incremental_with_condstore() {
    full_and_incremental(true);
}

#[test]
fn sync_full_and_incremental_without_condstore() {
    full_and_incremental(false);
}

#[test]
fn flags_move_and_delete_reach_the_server() {
    let d = Dovecot::start();
    let mut r = raw(&d);
    r.append("INBOX", "", &message("keep", "bob@example.com", None));
    r.append("INBOX", "", &message("move me", "bob@example.com", None));
    r.append("INBOX", "", &message("delete me", "bob@example.com", None));
    let host = host_for(d.port, true);
    host.run(|| {
        let who = alice();
        let page = Imap::sync(&who, "INBOX", None, 10).unwrap();
        let ids: Vec<String> = page
            .changes
            .iter()
            .map(|c| match c {
                Change::Added(i) => i.id.clone(),
                _ => panic!("{c:?}"),
            })
            .collect();
        Imap::set_flags(&who, &ids[0], Some(true), Some(true)).unwrap();
        let moved = Imap::move_item(&who, &ids[1], "Archive").unwrap();
        assert!(moved.ends_with(".1.Archive"), "{moved}");
        Imap::delete_item(&who, &ids[2]).unwrap();
        assert!(matches!(
            Imap::delete_item(&who, &ids[2]),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            Imap::set_flags(&who, "1.99.INBOX", Some(true), None),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            Imap::move_item(&who, &ids[0], "Nowhere"),
            Err(Error::NotFound(_))
        ));

        // Parked requests hear about changes made through the connector.
        let events = host.events();
        for key in [
            "mailbox:alice@example.com/INBOX",
            "mailbox:alice@example.com/Archive",
        ] {
            assert!(events.iter().any(|e| e == key), "{key} not in {events:?}");
        }
        let fetched = r.ok("SELECT INBOX");
        assert!(
            fetched.iter().any(|l| l.contains("1 EXISTS")),
            "{fetched:?}"
        );
        let flags = r.ok("UID FETCH 1:* (FLAGS)");
        assert!(
            flags[0].contains("\\Seen") && flags[0].contains("\\Flagged"),
            "{flags:?}"
        );
        let archive = Imap::sync(&who, "Archive", None, 10).unwrap();
        assert_eq!(subjects(&archive.changes), ["+move me"]);
        match &archive.changes[0] {
            Change::Added(i) => assert_eq!(i.id, moved),
            c => panic!("{c:?}"),
        }
        let inbox = Imap::sync(&who, "INBOX", Some(&page.state), 10).unwrap();
        assert_eq!(subjects(&inbox.changes), ["-2", "-3", "~keep read"]);
        Imap::set_flags(&who, &ids[0], Some(false), None).unwrap();
        let again = Imap::sync(&who, "INBOX", Some(&inbox.state), 10).unwrap();
        match &again.changes[..] {
            [Change::Changed(i)] => assert!(!i.read && i.flagged),
            c => panic!("{c:?}"),
        }
    });
}

#[test]
fn fetch_by_ranges_and_attachments() {
    let d = Dovecot::start();
    let mut r = raw(&d);
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let original = message("big", "bob@example.com", Some(("blob.bin", &blob)));
    r.append("INBOX", "", &original);
    let host = host_for(d.port, true);
    host.run(|| {
        let who = alice();
        let page = Imap::sync(&who, "INBOX", None, 10).unwrap();
        let Change::Added(item) = &page.changes[0] else {
            panic!()
        };
        assert_eq!(item.size, original.len() as u64);
        assert_eq!(item.attachments.len(), 1, "{:?}", item.attachments);
        let att = &item.attachments[0];
        assert_eq!(
            (att.part_id.as_str(), att.file_name.as_str()),
            ("2", "blob.bin")
        );
        // Whole message in 64 KiB chunks.
        let mut got = Vec::new();
        loop {
            let c = Imap::fetch(&who, &item.id, None, got.len() as u64, 65_536).unwrap();
            assert_eq!(c.total, original.len() as u64);
            assert!(c.data.len() <= 65_536);
            if c.data.is_empty() {
                break;
            }
            got.extend(c.data);
        }
        assert_eq!(got, original);
        // A range in the middle.
        let c = Imap::fetch(&who, &item.id, None, 100, 50).unwrap();
        assert_eq!(c.data, original[100..150]);
        // The attachment, decoded, in chunks.
        let mut part = Vec::new();
        loop {
            let c = Imap::fetch(&who, &item.id, Some("2"), part.len() as u64, 30_000).unwrap();
            assert_eq!(c.total, blob.len() as u64);
            if c.data.is_empty() {
                break;
            }
            part.extend(c.data);
        }
        assert_eq!(part, blob);
        assert!(matches!(
            Imap::fetch(&who, "1.999.INBOX", None, 0, 10),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            Imap::fetch(&who, "nonsense", None, 0, 10),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            Imap::fetch(&who, &item.id, Some("HEADER"), 0, 10),
            Err(Error::Invalid(_))
        ));
    });
}

#[test]
fn create_item_from_staged_upload_and_search() {
    let d = Dovecot::start();
    let mut r = raw(&d);
    r.append(
        "INBOX",
        "",
        &message("quarterly report", "bob@example.com", None),
    );
    r.append("INBOX", "", &message("lunch", "carol@example.com", None));
    let host = host_for(d.port, true);
    host.run(|| {
        let who = alice();
        let draft = message("draft to send", "alice@example.com", None);
        let upload = Upload::create().unwrap();
        for chunk in draft.chunks(100) {
            upload.append(chunk).unwrap();
        }
        let item = Imap::create_item(&who, "Drafts", upload).unwrap();
        assert_eq!(item.subject, "draft to send");
        assert_eq!(item.folder_id, "Drafts");
        assert_eq!(item.size, draft.len() as u64);
        let c = Imap::fetch(&who, &item.id, None, 0, 1 << 20).unwrap();
        assert_eq!(c.data, draft);

        let hits = Imap::search(&who, Some("INBOX"), "quarterly", 10).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].subject, "quarterly report");
        let everywhere = Imap::search(&who, None, "draft", 10).unwrap();
        assert_eq!(everywhere.len(), 1, "{everywhere:?}");
        assert_eq!(everywhere[0].folder_id, "Drafts");
        assert!(Imap::search(&who, None, "nothing-like-this", 10)
            .unwrap()
            .is_empty());
    });
}

#[test]
fn wrong_password_is_denied_and_unreachable_names_the_server() {
    let d = Dovecot::start();
    let host = MockHost::new()
        .with_config("host", "127.0.0.1")
        .with_config("port", &d.port.to_string())
        .with_config("master_user", MASTER_USER)
        .with_config("master_password", "not-the-password")
        .with_config("tls", "none")
        .with_config("timeout_secs", "10");
    let err = host.run(|| Imap::list_folders(&alice())).unwrap_err();
    assert!(matches!(err, Error::Denied(_)), "{err:?}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let host = host_for(closed, true);
    let err = host.run(|| Imap::list_folders(&alice())).unwrap_err();
    match &err {
        Error::Unavailable(text) => {
            assert!(text.contains(&format!("127.0.0.1:{closed}")), "{text}")
        }
        e => panic!("{e:?}"),
    }
    let err = host_for(d.port, true)
        .run(|| Imap::sync(&alice(), "No Such Folder", None, 10))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

#[test]
fn server_restart_mid_sync_recovers() {
    let mut d = Dovecot::start();
    let mut r = raw(&d);
    for i in 0..5 {
        r.append(
            "INBOX",
            "",
            &message(&format!("m{i}"), "bob@example.com", None),
        );
    }
    drop(r);
    let host = host_for(d.port, true);
    let p1 = host.run(|| Imap::sync(&alice(), "INBOX", None, 2)).unwrap();
    assert!(p1.more);
    // The pooled connection dies with the server; the next call reconnects.
    d.restart();
    let p2 = host
        .run(|| Imap::sync(&alice(), "INBOX", Some(&p1.state), 10))
        .unwrap();
    assert_eq!(subjects(&p2.changes), ["+m2", "+m3", "+m4"]);
    // While it is down: unavailable, and the state still works afterwards.
    d.stop();
    let err = host
        .run(|| Imap::sync(&alice(), "INBOX", Some(&p2.state), 10))
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    d.restart();
    let p3 = host
        .run(|| Imap::sync(&alice(), "INBOX", Some(&p2.state), 10))
        .unwrap();
    assert!(p3.changes.is_empty(), "{:?}", p3.changes);
}

#[test]
fn uidvalidity_change_asks_for_a_full_resync() {
    let d = Dovecot::start();
    let mut r = raw(&d);
    r.ok("CREATE \"Work\"");
    r.append("Work", "", &message("old", "bob@example.com", None));
    let host = host_for(d.port, true);
    let p1 = host.run(|| Imap::sync(&alice(), "Work", None, 10)).unwrap();
    r.ok("DELETE \"Work\"");
    r.ok("CREATE \"Work\"");
    r.append("Work", "", &message("new", "bob@example.com", None));
    let err = host
        .run(|| Imap::sync(&alice(), "Work", Some(&p1.state), 10))
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let fresh = host.run(|| Imap::sync(&alice(), "Work", None, 10)).unwrap();
    assert_eq!(subjects(&fresh.changes), ["+new"]);
}

fn tls_host(d: &Dovecot, port: u16, mode: &str, ca: Option<&str>) -> MockHost {
    let h = MockHost::new()
        .with_config("host", "127.0.0.1")
        .with_config("port", &port.to_string())
        .with_config("master_user", MASTER_USER)
        .with_config("master_password", MASTER_PASSWORD)
        .with_config("timeout_secs", "10")
        .with_config("tls", mode);
    let _ = d;
    match ca {
        Some(ca) => h.with_config("ca_file", ca),
        None => h,
    }
}

#[test]
fn starttls_and_implicit_tls_check_the_certificate() {
    let d = Dovecot::start();
    let mut r = raw(&d);
    r.append("INBOX", "", &message("secure", "bob@example.com", None));
    let ca = d.ca_file();
    for (port, mode) in [(d.port, "starttls"), (d.tls_port, "tls")] {
        let host = tls_host(&d, port, mode, Some(&ca));
        let page = host
            .run(|| Imap::sync(&alice(), "INBOX", None, 10))
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(subjects(&page.changes), ["+secure"], "{mode}");
        // Without trusting the test CA the public roots reject the self-signed certificate.
        let err = tls_host(&d, port, mode, None)
            .run(|| Imap::list_folders(&alice()))
            .unwrap_err();
        match err {
            Error::Unavailable(text) => assert!(text.contains("TLS"), "{mode}: {text}"),
            e => panic!("{mode}: {e:?}"),
        }
    }
}

#[test]
fn a_silent_server_times_out_as_unavailable() {
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
        drop(conn);
    });
    let host = host_for(port, true).with_config("timeout_secs", "1");
    let err = host.run(|| Imap::list_folders(&alice())).unwrap_err();
    match &err {
        Error::Unavailable(text) => {
            assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
            assert!(text.contains("did not answer"), "{text}");
        }
        e => panic!("{e:?}"),
    }
    held.join().unwrap();
}

#[test]
fn send_submits_over_starttls_with_auth_and_keeps_a_copy_in_sent() {
    let d = Dovecot::start();
    let login = format!("alice@example.com*{MASTER_USER}");
    let sink = SmtpSink::start(&login, MASTER_PASSWORD);
    let host = host_for(d.port, true)
        .with_config("smtp_port", &sink.port.to_string())
        .with_config("smtp_tls", "starttls")
        .with_config("ca_file", &sink.ca_file());
    // A body longer than one staging chunk, with lines that need dot-stuffing.
    let mut body = String::new();
    for i in 0..3000 {
        body.push_str(&format!(".line {i} of the report\r\n"));
    }
    let mime = format!(
        "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.com>\r\nCc: carol@example.com\r\nBcc: hidden@example.com\r\nSubject: report\r\n\r\n{body}"
    );
    host.run(|| {
        let upload = Upload::from_bytes(mime.as_bytes()).unwrap();
        Imap::send(&alice(), upload, true).unwrap();
    });
    let got = sink.received();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.from, "alice@example.com");
    assert_eq!(
        m.rcpt,
        ["bob@example.com", "carol@example.com", "hidden@example.com"]
    );
    assert_eq!(m.login.as_deref(), Some(login.as_str()));
    assert!(m.tls);
    let text = String::from_utf8_lossy(&m.data);
    assert!(!text.contains("hidden@example.com"), "Bcc leaked");
    assert!(text.contains("Subject: report"));
    assert!(text.contains(&body), "body changed in transit");
    // The copy in Sent keeps everything, Bcc included, and is marked read.
    host.run(|| {
        let page = Imap::sync(&alice(), "Sent", None, 10).unwrap();
        let Change::Added(item) = &page.changes[..].first().unwrap() else {
            panic!("{:?}", page.changes)
        };
        assert!(item.read);
        let c = Imap::fetch(&alice(), &item.id, None, 0, 1 << 20).unwrap();
        assert_eq!(c.data, mime.as_bytes());
    });
    // No recipients: refused before connecting. Wrong SMTP password: denied.
    host.run(|| {
        let upload = Upload::from_bytes(b"Subject: nobody\r\n\r\nhi\r\n").unwrap();
        assert!(matches!(
            Imap::send(&alice(), upload, false),
            Err(Error::Invalid(_))
        ));
    });
    let wrong = host_for(d.port, true)
        .with_config("smtp_port", &sink.port.to_string())
        .with_config("ca_file", &sink.ca_file())
        .with_config("smtp_password", "wrong");
    wrong.run(|| {
        let upload = Upload::from_bytes(mime.as_bytes()).unwrap();
        let err = Imap::send(&alice(), upload, false).unwrap_err();
        assert!(matches!(err, Error::Denied(_)), "{err:?}");
    });
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn a_server_with_only_imap4rev1_basics_works_through_the_fallbacks() {
    let d = Dovecot::start_minimal();
    let mut r = raw(&d);
    let caps = r.ok("CAPABILITY").join(" ");
    for absent in [
        "CONDSTORE",
        "QRESYNC",
        "MOVE",
        "BINARY",
        "SPECIAL-USE",
        "ENABLE",
    ] {
        assert!(!caps.contains(absent), "{absent} in {caps}");
    }
    r.append("INBOX", "", &message("one", "bob@example.com", None));
    r.append("INBOX", "", &message("two", "bob@example.com", None));
    let host = host_for(d.port, true);
    host.run(|| {
        let who = alice();
        // Kinds from well-known names (no SPECIAL-USE).
        let folders = Imap::list_folders(&who).unwrap();
        let kind = |id: &str| folders.iter().find(|f| f.id == id).map(|f| f.kind);
        assert_eq!(kind("Sent"), Some(FolderKind::Sent));
        assert_eq!(kind("Trash"), Some(FolderKind::Deleted));
        let p1 = Imap::sync(&who, "INBOX", None, 10).unwrap();
        assert_eq!(subjects(&p1.changes), ["+one", "+two"]);
        r.ok("SELECT INBOX");
        r.ok("UID STORE 2 +FLAGS (\\Seen)");
        r.append("INBOX", "", &message("three", "bob@example.com", None));
        let p2 = Imap::sync(&who, "INBOX", Some(&p1.state), 10).unwrap();
        assert_eq!(subjects(&p2.changes), ["~two read", "+three"]);
        // MOVE without the MOVE extension: COPY + \Deleted + UID EXPUNGE.
        let Change::Added(one) = &p1.changes[0] else {
            panic!()
        };
        let moved = Imap::move_item(&who, &one.id, "Archive").unwrap();
        assert!(moved.ends_with(".1.Archive"), "{moved}");
        let p3 = Imap::sync(&who, "INBOX", Some(&p2.state), 10).unwrap();
        assert_eq!(subjects(&p3.changes), ["-1"]);
        let c = Imap::fetch(&who, &moved, None, 0, 1 << 20).unwrap();
        assert_eq!(c.data, message("one", "bob@example.com", None));
    });
    // Attachments decode by ranges without BINARY: regular base64 lines (computed offsets),
    // irregular ones and quoted-printable (decoded from the start).
    let blob: Vec<u8> = (0..100_000u32).map(|i| (i * 13 % 256) as u8).collect();
    r.append(
        "INBOX",
        "",
        &message("regular", "bob@example.com", Some(("r.bin", &blob))),
    );
    let irregular = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&blob[..5000]);
        let mut body = String::new();
        let mut rest = b64.as_str();
        let mut n = 10;
        while !rest.is_empty() {
            let take = n.min(rest.len());
            body.push_str(&rest[..take]);
            body.push_str("\r\n");
            rest = &rest[take..];
            n = if n == 10 { 64 } else { 10 };
        }
        format!(
            "From: bob@example.com\r\nSubject: irregular\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream; name=\"i.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}--b\r\nContent-Type: application/pdf; name=\"q.pdf\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 =\r\nau lait=3D\r\n--b--\r\n"
        )
    };
    r.append("INBOX", "", irregular.as_bytes());
    host.run(|| {
        let who = alice();
        let page = Imap::sync(&who, "INBOX", None, 10).unwrap();
        let item = |subject: &str| -> String {
            page.changes
                .iter()
                .find_map(|c| match c {
                    Change::Added(i) if i.subject == subject => Some(i.id.clone()),
                    _ => None,
                })
                .unwrap()
        };
        let read_all = |id: &str, part: &str, step: u32| -> (Vec<u8>, u64) {
            let mut got = Vec::new();
            loop {
                let c = Imap::fetch(&who, id, Some(part), got.len() as u64, step).unwrap();
                if c.data.is_empty() {
                    return (got, c.total);
                }
                got.extend(c.data);
            }
        };
        let (data, total) = read_all(&item("regular"), "2", 7_000);
        assert_eq!(total, blob.len() as u64);
        assert_eq!(data, blob);
        let c = Imap::fetch(&who, &item("regular"), Some("2"), 50_001, 10).unwrap();
        assert_eq!(c.data, blob[50_001..50_011]);
        let (data, total) = read_all(&item("irregular"), "2", 999);
        assert_eq!((data.as_slice(), total), (&blob[..5000], 5000));
        let (data, total) = read_all(&item("irregular"), "3", 4);
        assert_eq!((data.as_slice(), total), ("Café au lait=".as_bytes(), 14));
    });
}

#[test]
fn folders_are_created_renamed_and_deleted() {
    let d = Dovecot::start();
    let mut r = raw(&d);
    let host = host_for(d.port, true);
    host.run(|| {
        let who = alice();
        let top = Imap::create_folder(&who, "", "Entwürfe 2", FolderKind::UserMail).unwrap();
        assert_eq!(top.id, "Entw&APw-rfe 2");
        assert_eq!(top.name, "Entwürfe 2");
        let child = Imap::create_folder(&who, &top.id, "Q1", FolderKind::UserMail).unwrap();
        assert_eq!(child.id, "Entw&APw-rfe 2/Q1");
        assert!(matches!(
            Imap::create_folder(&who, "", "Entwürfe 2", FolderKind::UserMail),
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            Imap::create_folder(&who, "", "a/b", FolderKind::UserMail),
            Err(Error::Invalid(_))
        ));
        Imap::create_folder(&who, "", "Projects", FolderKind::UserMail).unwrap();
        let moved = Imap::update_folder(&who, &child.id, "Projects", "Q1-2026").unwrap();
        assert_eq!(
            (moved.id.as_str(), moved.parent_id.as_str()),
            ("Projects/Q1-2026", "Projects")
        );
        let listed = Imap::list_folders(&who).unwrap();
        let found = listed.iter().find(|f| f.id == "Projects/Q1-2026").unwrap();
        assert_eq!(
            (found.parent_id.as_str(), found.name.as_str()),
            ("Projects", "Q1-2026")
        );
        Imap::create_folder(&who, &moved.id, "deep", FolderKind::UserMail).unwrap();
        Imap::delete_folder(&who, "Projects").unwrap();
        let listed = Imap::list_folders(&who).unwrap();
        assert!(
            !listed.iter().any(|f| f.id.starts_with("Projects")),
            "{listed:?}"
        );
        assert!(matches!(
            Imap::delete_folder(&who, "INBOX"),
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            Imap::delete_folder(&who, "Nope"),
            Err(Error::NotFound(_))
        ));
    });
    let lines = r.ok("LIST \"\" \"*\"").join("\n");
    assert!(lines.contains("Entw&APw-rfe 2"), "{lines}");
}

#[test]
fn replace_item_stores_the_new_version_and_keeps_flags() {
    let d = Dovecot::start();
    let mut r = raw(&d);
    r.append(
        "Drafts",
        "\\Seen",
        &message("draft v1", "alice@example.com", None),
    );
    let host = host_for(d.port, true);
    host.run(|| {
        let who = alice();
        let p1 = Imap::sync(&who, "Drafts", None, 10).unwrap();
        let Change::Added(old) = &p1.changes[0] else {
            panic!()
        };
        let v2 = message("draft v2", "alice@example.com", None);
        let new = Imap::replace_item(&who, &old.id, Upload::from_bytes(&v2).unwrap()).unwrap();
        assert_eq!(new.subject, "draft v2");
        assert!(new.read);
        assert_ne!(new.id, old.id);
        let p2 = Imap::sync(&who, "Drafts", Some(&p1.state), 10).unwrap();
        assert_eq!(subjects(&p2.changes), ["-1", "+draft v2"]);
    });
}

#[test]
fn the_pool_keeps_to_its_connection_limit() {
    // Dovecot itself refuses a second connection of the same user from the same address, so
    // any call that opened one more than the pool allows would fail.
    let d = Dovecot::start_with("protocol imap {\n  mail_max_userip_connections = 1\n}\n");
    {
        let mut r = raw(&d);
        for i in 0..3 {
            r.append(
                "INBOX",
                "",
                &message(&format!("m{i}"), "bob@example.com", None),
            );
        }
    }
    let port = d.port;
    let workers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let host = host_for(port, true).with_config("max_connections", "1");
                host.run(|| {
                    for _ in 0..5 {
                        let page = Imap::sync(&alice(), "INBOX", None, 10).unwrap();
                        assert_eq!(page.changes.len(), 3);
                    }
                })
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    // Over the server's limit is "try later", not "wrong password": the pool's idle
    // connection holds the one slot, and other settings (here an unused CA file) mean
    // another pool.
    let err = host_for(port, true)
        .with_config("ca_file", "/other/pool")
        .run(|| Imap::list_folders(&alice()))
        .unwrap_err();
    match err {
        Error::Unavailable(text) => assert!(text.contains("[LIMIT]"), "{text}"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn calendars_and_contacts_from_caldav_and_carddav() {
    let d = Dovecot::start();
    let dav = Radicale::start();
    let home = "/alice@example.com/";
    // Alice's own client sets up a calendar, a task list and an address book.
    assert_eq!(dav.alice("PROPFIND", home, &[("Depth", "0")], b""), 207);
    let mkcal = |path: &str, comp: &str, name: &str| {
        let body = format!("<?xml version=\"1.0\"?><C:mkcalendar xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><D:set><D:prop><D:displayname>{name}</D:displayname><C:supported-calendar-component-set><C:comp name=\"{comp}\"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>");
        assert_eq!(
            dav.alice("MKCALENDAR", path, &[], body.as_bytes()),
            201,
            "{path}"
        );
    };
    mkcal("/alice@example.com/cal/", "VEVENT", "Work");
    mkcal("/alice@example.com/todo/", "VTODO", "Chores");
    let mkbook = "<?xml version=\"1.0\"?><D:mkcol xmlns:D=\"DAV:\" xmlns:CR=\"urn:ietf:params:xml:ns:carddav\"><D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype><D:displayname>People</D:displayname></D:prop></D:set></D:mkcol>";
    assert_eq!(
        dav.alice("MKCOL", "/alice@example.com/book/", &[], mkbook.as_bytes()),
        201
    );
    let put = |path: &str, body: &[u8]| {
        dav.alice("PUT", path, &[("Content-Type", "text/calendar")], body)
    };
    assert_eq!(
        put("/alice@example.com/cal/e1.ics", &event("e1", "Standup")),
        201
    );
    assert_eq!(
        put("/alice@example.com/cal/e2.ics", &event("e2", "Review")),
        201
    );
    assert_eq!(
        dav.alice(
            "PUT",
            "/alice@example.com/book/c1.vcf",
            &[("Content-Type", "text/vcard")],
            &card("c1", "Carol Example")
        ),
        201
    );
    let host =
        host_for(d.port, true).with_config("dav_url", &format!("http://127.0.0.1:{}", dav.port));
    host.run(|| {
        let who = alice();
        let folders = Imap::list_folders(&who).unwrap();
        let kind = |id: &str| {
            folders
                .iter()
                .find(|f| f.id == id)
                .map(|f| (f.kind, f.name.clone()))
        };
        assert_eq!(kind("INBOX").map(|k| k.0), Some(FolderKind::Inbox));
        assert_eq!(
            kind("dav:/alice%40example.com/cal/"),
            Some((FolderKind::Calendar, "Work".into()))
        );
        assert_eq!(
            kind("dav:/alice%40example.com/todo/"),
            Some((FolderKind::Tasks, "Chores".into()))
        );
        assert_eq!(
            kind("dav:/alice%40example.com/book/"),
            Some((FolderKind::Contacts, "People".into()))
        );

        let cal = "dav:/alice%40example.com/cal/";
        let p1 = Imap::sync(&who, cal, None, 1).unwrap();
        assert!(p1.more);
        assert_eq!(Imap::sync(&who, cal, None, 1).unwrap(), p1);
        let p2 = Imap::sync(&who, cal, Some(&p1.state), 10).unwrap();
        let mut all: Vec<String> = p1
            .changes
            .iter()
            .chain(&p2.changes)
            .map(|c| match c {
                Change::Added(i) => i.subject.clone(),
                c => panic!("{c:?}"),
            })
            .collect();
        all.sort();
        assert_eq!(all, ["Review", "Standup"]);
        let Change::Added(first) = &p1.changes[0] else {
            panic!()
        };
        assert_eq!(first.class, switchboard_sdk::ItemClass::Calendar);
        assert_eq!(first.sender, "bob@example.com");
        let c = Imap::fetch(&who, &first.id, None, 0, 1 << 20).unwrap();
        assert!(String::from_utf8_lossy(&c.data).contains("BEGIN:VEVENT"));
        assert_eq!(c.total, c.data.len() as u64);

        // Changes on the server: one edited, one deleted, one new.
        assert!(matches!(
            put(
                "/alice@example.com/cal/e1.ics",
                &event("e1", "Standup (moved)")
            ),
            201 | 204
        ));
        assert!(matches!(
            dav.alice("DELETE", "/alice@example.com/cal/e2.ics", &[], b""),
            200 | 204
        ));
        assert_eq!(
            put("/alice@example.com/cal/e3.ics", &event("e3", "Retro")),
            201
        );
        let p3 = Imap::sync(&who, cal, Some(&p2.state), 10).unwrap();
        assert_eq!(
            p3.changes[0],
            Change::Deleted("dav:/alice%40example.com/cal/e2.ics".into())
        );
        assert_eq!(
            subjects(&p3.changes[1..]),
            ["~Standup (moved) read", "+Retro"]
        );
        let idle = Imap::sync(&who, cal, Some(&p3.state), 10).unwrap();
        assert!(idle.changes.is_empty(), "{:?}", idle.changes);

        // Through the connector: create, replace, delete.
        let created = Imap::create_item(
            &who,
            cal,
            Upload::from_bytes(&event("e4", "Planning")).unwrap(),
        )
        .unwrap();
        assert_eq!(created.subject, "Planning");
        let replaced = Imap::replace_item(
            &who,
            &created.id,
            Upload::from_bytes(&event("e4", "Planning v2")).unwrap(),
        )
        .unwrap();
        assert_eq!(replaced.id, created.id);
        let p4 = Imap::sync(&who, cal, Some(&idle.state), 10).unwrap();
        assert_eq!(subjects(&p4.changes), ["+Planning v2"]);
        Imap::delete_item(&who, &created.id).unwrap();
        assert!(matches!(
            Imap::delete_item(&who, &created.id),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            Imap::set_flags(&who, &first.id, Some(true), None),
            Err(Error::Denied(_))
        ));
        // The DAV account may read everyone's collections; a client may only reach its own.
        for other in [
            "dav:/bob%40example.com/cal/",
            "dav:/alice%40example.com/../bob%40example.com/cal/",
        ] {
            assert!(
                matches!(Imap::sync(&who, other, None, 10), Err(Error::Denied(_))),
                "{other}"
            );
        }
        assert!(matches!(
            Imap::fetch(&who, "dav:/bob%40example.com/cal/x.ics", None, 0, 10),
            Err(Error::Denied(_))
        ));

        let book = Imap::sync(&who, "dav:/alice%40example.com/book/", None, 10).unwrap();
        match &book.changes[..] {
            [Change::Added(c)] => {
                assert_eq!(c.class, switchboard_sdk::ItemClass::Contact);
                assert_eq!(c.subject, "Carol Example");
            }
            c => panic!("{c:?}"),
        }
    });
    // A DAV server that is down leaves mail usable.
    drop(dav);
    let folders = host.run(|| Imap::list_folders(&alice())).unwrap();
    assert!(folders.iter().any(|f| f.id == "INBOX"));
    assert!(!folders.iter().any(|f| f.id.starts_with("dav:")));
}

#[test]
fn dav_sync_checks_the_sync_token_and_reports_changes_with_sync_collection() {
    let dav = Radicale::start();
    let mkcal = "<?xml version=\"1.0\"?><C:mkcalendar xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><D:set><D:prop><D:displayname>Work</D:displayname></D:prop></D:set></C:mkcalendar>";
    assert_eq!(
        dav.alice(
            "MKCALENDAR",
            "/alice@example.com/cal/",
            &[],
            mkcal.as_bytes()
        ),
        201
    );
    let put = |name: &str, summary: &str| {
        dav.alice(
            "PUT",
            &format!("/alice@example.com/cal/{name}.ics"),
            &[("Content-Type", "text/calendar")],
            &event(name, summary),
        )
    };
    assert_eq!(put("e1", "Standup"), 201);
    assert_eq!(put("e2", "Review"), 201);
    // The connector talks to Radicale through a proxy that logs every request.
    let log = http_log::start(dav.port);
    let host = host_for(1, true).with_config("dav_url", &format!("http://127.0.0.1:{}", log.port));
    let cal = "dav:/alice%40example.com/cal/";
    let path = "/alice%40example.com/cal/";
    host.run(|| {
        let who = alice();
        let first = Imap::sync(&who, cal, None, 10).unwrap();
        assert_eq!(dav_changes(&first.changes), ["+Review", "+Standup"]);
        let requests = log.take();
        assert_eq!(requests[0], format!("PROPFIND {path} 1"));
        assert_eq!(requests.len(), 3, "{requests:?}"); // the listing and two GETs

        // Nothing changed: one PROPFIND Depth 0, the same state back.
        let idle = Imap::sync(&who, cal, Some(&first.state), 10).unwrap();
        assert!(idle.changes.is_empty() && !idle.more);
        assert_eq!(idle.state, first.state);
        assert_eq!(log.take(), [format!("PROPFIND {path} 0")]);

        // Changes made directly on Radicale: one edited, one deleted, one new.
        assert!(matches!(put("e1", "Standup (moved)"), 201 | 204));
        assert!(matches!(
            dav.alice("DELETE", "/alice@example.com/cal/e2.ics", &[], b""),
            200 | 204
        ));
        assert_eq!(put("e3", "Retro"), 201);
        let changed = Imap::sync(&who, cal, Some(&first.state), 10).unwrap();
        assert_eq!(
            dav_changes(&changed.changes),
            ["+Retro", "-e2.ics", "~Standup (moved)"]
        );
        let requests = log.take();
        assert_eq!(
            requests[..2],
            [format!("PROPFIND {path} 0"), format!("REPORT {path}")]
        );
        assert_eq!(requests.len(), 4, "{requests:?}"); // + GET of e1 and e3, no listing
        assert!(
            requests[2..].iter().all(|r| r.starts_with("GET ")),
            "{requests:?}"
        );
        // Replay-safe: the same state again gives the same page and next state.
        assert_eq!(
            Imap::sync(&who, cal, Some(&first.state), 10).unwrap(),
            changed
        );
        log.take();
        let idle = Imap::sync(&who, cal, Some(&changed.state), 10).unwrap();
        assert!(idle.changes.is_empty());
        assert_eq!(log.take().len(), 1);

        // More changes than fit a page: the rest comes on the next sync, nothing twice.
        assert_eq!(put("e4", "Planning"), 201);
        assert_eq!(put("e5", "Demo"), 201);
        let p1 = Imap::sync(&who, cal, Some(&idle.state), 1).unwrap();
        assert!(p1.more);
        let p2 = Imap::sync(&who, cal, Some(&p1.state), 10).unwrap();
        assert!(!p2.more);
        let mut both = p1.changes.clone();
        both.extend(p2.changes.clone());
        assert_eq!(dav_changes(&both), ["+Demo", "+Planning"]);
        log.take();
        let idle = Imap::sync(&who, cal, Some(&p2.state), 10).unwrap();
        assert!(idle.changes.is_empty());
        assert_eq!(log.take(), [format!("PROPFIND {path} 0")]);

        // A token the server no longer knows: the report is refused and the ETag listing
        // gives the answer.
        dav.forget_sync_tokens();
        assert!(matches!(
            dav.alice("DELETE", "/alice@example.com/cal/e3.ics", &[], b""),
            200 | 204
        ));
        let after = Imap::sync(&who, cal, Some(&idle.state), 10).unwrap();
        assert_eq!(dav_changes(&after.changes), ["-e3.ics"]);
        assert_eq!(
            log.take(),
            [
                format!("PROPFIND {path} 0"),
                format!("REPORT {path}"),
                format!("PROPFIND {path} 1")
            ]
        );
        // The listing's own token is usable again.
        let idle = Imap::sync(&who, cal, Some(&after.state), 10).unwrap();
        assert!(idle.changes.is_empty());
        assert_eq!(log.take(), [format!("PROPFIND {path} 0")]);

        // Two edits, one page of one, then both edits undone on the server (Radicale's CTag
        // is a hash of the members' ETags, so it is the old one again). The client holds
        // one edited event and must get it back as it was.
        assert!(matches!(put("e1", "Standup (edited)"), 201 | 204));
        assert!(matches!(put("e4", "Planning (edited)"), 201 | 204));
        let part = Imap::sync(&who, cal, Some(&idle.state), 1).unwrap();
        assert!(part.more);
        let Change::Changed(edited) = &part.changes[0] else {
            panic!("{:?}", part.changes)
        };
        let (name, before) = if edited.id.ends_with("e1.ics") {
            ("e1", "Standup (moved)")
        } else {
            ("e4", "Planning")
        };
        assert!(matches!(put("e1", "Standup (moved)"), 201 | 204));
        assert!(matches!(put("e4", "Planning"), 201 | 204));
        let back = Imap::sync(&who, cal, Some(&part.state), 10).unwrap();
        assert_eq!(dav_changes(&back.changes), [format!("~{before}")], "{name}");
    });
}

#[test]
fn a_second_devices_state_survives_the_first_ones_churn() {
    let d = Dovecot::start();
    let mut r = raw(&d);
    r.append("INBOX", "", &message("first", "bob@example.com", None));
    let host = host_for(d.port, true);
    host.run(|| {
        let who = alice();
        let tablet = Imap::sync(&who, "INBOX", None, 10).unwrap();
        let mut phone = tablet.state.clone();
        for i in 0..20 {
            r.append(
                "INBOX",
                "",
                &message(&format!("n{i}"), "bob@example.com", None),
            );
            phone = Imap::sync(&who, "INBOX", Some(&phone), 10).unwrap().state;
        }
        // Twenty newer records later, the tablet's token still works.
        let caught_up = Imap::sync(&who, "INBOX", Some(&tablet.state), 100).unwrap();
        assert_eq!(caught_up.changes.len(), 20);
    });
}

/// Command names as the proxy saw them (`UID FETCH`, `EXAMINE`…).
fn verbs(commands: &[String]) -> Vec<String> {
    commands
        .iter()
        .map(|c| {
            let mut words = c.split_whitespace().map(str::to_ascii_uppercase);
            match words.next() {
                Some(u) if u == "UID" => format!("UID {}", words.next().unwrap_or_default()),
                Some(v) => v,
                None => String::new(),
            }
        })
        .collect()
}

fn sync_round_trips(condstore: bool) {
    let d = Dovecot::start();
    let mut r = raw(&d);
    for s in ["one", "two", "three"] {
        r.append("INBOX", "", &message(s, "bob@example.com", None));
    }
    let proxy = counting::start(d.port);
    let host = host_for(proxy.port, condstore);
    host.run(|| {
        let who = alice();
        let full = Imap::sync(&who, "INBOX", None, 10).unwrap();
        assert_eq!(full.changes.len(), 3);
        let opened = proxy.take();
        assert!(
            opened
                .iter()
                .any(|c| c.starts_with("AUTHENTICATE") || c.starts_with("LOGIN")),
            "{opened:?}"
        );

        // Nothing changed: the pooled connection is reused (no second login), and with
        // CONDSTORE an unchanged HIGHESTMODSEQ answers from one EXAMINE; without it, the UID
        // and flag listing is diffed.
        let mut state = full.state;
        for _ in 0..3 {
            let idle = Imap::sync(&who, "INBOX", Some(&state), 10).unwrap();
            assert!(idle.changes.is_empty(), "{:?}", idle.changes);
            state = idle.state;
            let sent = proxy.take();
            if condstore {
                assert_eq!(verbs(&sent), ["EXAMINE"], "{sent:?}");
            } else {
                assert_eq!(verbs(&sent), ["EXAMINE", "UID FETCH"], "{sent:?}");
                assert!(sent[1].contains("1:* (UID FLAGS)"), "{sent:?}");
            }
        }

        // One flag changed by another client: with CONDSTORE only what changed since the
        // token's modseq is fetched, and no search for new UIDs when UIDNEXT says there are
        // none; then the summary of the changed message.
        r.ok("SELECT INBOX");
        r.ok("UID STORE 2 +FLAGS (\\Seen)");
        let page = Imap::sync(&who, "INBOX", Some(&state), 10).unwrap();
        assert_eq!(subjects(&page.changes), ["~two read"]);
        let sent = proxy.take();
        assert_eq!(
            verbs(&sent),
            ["EXAMINE", "UID FETCH", "UID FETCH"],
            "{sent:?}"
        );
        if condstore {
            assert!(sent[1].contains("CHANGEDSINCE"), "{sent:?}");
        } else {
            assert!(sent[1].contains("1:* (UID FLAGS)"), "{sent:?}");
        }
        assert!(sent[2].starts_with("UID FETCH 2 "), "{sent:?}");

        // A new message: found (by a search above the last UID with CONDSTORE).
        r.append("INBOX", "", &message("four", "carol@example.com", None));
        let page = Imap::sync(&who, "INBOX", Some(&page.state), 10).unwrap();
        assert_eq!(subjects(&page.changes), ["+four"]);
        let sent = proxy.take();
        if condstore {
            assert_eq!(
                verbs(&sent),
                ["EXAMINE", "UID FETCH", "UID SEARCH", "UID FETCH"],
                "{sent:?}"
            );
        } else {
            assert_eq!(
                verbs(&sent),
                ["EXAMINE", "UID FETCH", "UID FETCH"],
                "{sent:?}"
            );
        }
    });
}

#[test]
fn incremental_sync_round_trips_with_condstore() {
    sync_round_trips(true);
}

#[test]
fn incremental_sync_round_trips_without_condstore() {
    sync_round_trips(false);
}

#[test]
fn login_as_the_user_with_the_password_from_the_request() {
    let d = Dovecot::start();
    raw(&d).append("INBOX", "", &message("mine", "bob@example.com", None));
    let as_user = || {
        MockHost::new()
            .with_config("host", "127.0.0.1")
            .with_config("port", &d.port.to_string())
            .with_config("tls", "none")
            .with_config("login", "user")
    };
    // The password the host passes on (the core does so only when the admin granted it).
    let host = as_user().with_password("alice@example.com", PASSWORD);
    let page = host
        .run(|| Imap::sync(&alice(), "INBOX", None, 100))
        .unwrap();
    assert_eq!(subjects(&page.changes), ["+mine"]);
    // No password on the request: a clear refusal, not a login attempt with an empty one.
    match as_user().run(|| Imap::list_folders(&alice())) {
        Err(Error::Denied(t)) => assert!(t.contains("pass_password"), "{t}"),
        other => panic!("expected denied, got {other:?}"),
    }
    // The user's own password must be the right one.
    match as_user()
        .with_password("alice@example.com", "wrong")
        .run(|| Imap::list_folders(&alice()))
    {
        Err(Error::Denied(t)) => {
            assert!(t.contains("refused the login of alice@example.com"), "{t}")
        }
        other => panic!("expected denied, got {other:?}"),
    }
    // A setting the connector does not know is refused by name.
    match as_user()
        .with_config("login", "sometimes")
        .run(|| Imap::list_folders(&alice()))
    {
        Err(Error::Internal(t)) => assert!(
            t.contains("login: \"sometimes\" is not master or user"),
            "{t}"
        ),
        other => panic!("expected a config error, got {other:?}"),
    }
}
