//! The store against the SDK's mock host: folders, items of every class, real MIME, flags,
//! moves, deletes, sync errors, delivery and search.

mod common;

use common::{alice, bob, fixture, Env, Replica};
use switchboard_local::Local;
use switchboard_sdk::mock::MockHost;
use switchboard_sdk::{Change, Error, FolderKind, ItemClass, MailConnector, Principal};

#[test]
fn standard_folders_are_created_on_first_use_once() {
    let env = Env::new();
    let a = alice();
    let names = |env: &Env| -> Vec<(String, FolderKind)> {
        env.run(|| Local::list_folders(&a))
            .unwrap()
            .into_iter()
            .map(|f| (f.name, f.kind))
            .collect()
    };
    let first = names(&env);
    let expected = [
        ("Inbox", FolderKind::Inbox),
        ("Drafts", FolderKind::Drafts),
        ("Sent Items", FolderKind::Sent),
        ("Deleted Items", FolderKind::Deleted),
        ("Junk", FolderKind::Junk),
        ("Outbox", FolderKind::Outbox),
        ("Calendar", FolderKind::Calendar),
        ("Contacts", FolderKind::Contacts),
        ("Tasks", FolderKind::Tasks),
        ("Notes", FolderKind::Notes),
    ];
    assert_eq!(
        first,
        expected
            .iter()
            .map(|(n, k)| (n.to_string(), *k))
            .collect::<Vec<_>>()
    );
    assert_eq!(names(&env), first);
    // Another user's mailbox is separate.
    env.create(&alice(), "inbox", &fixture("nonascii.eml"))
        .unwrap();
    let bob_inbox = env.contents(&bob(), "inbox");
    assert!(bob_inbox.is_empty());
}

#[test]
fn user_folders_nest_move_rename_and_delete_recursively() {
    let env = Env::new();
    let a = alice();
    let projects = env
        .run(|| Local::create_folder(&a, "", "Projects", FolderKind::UserMail))
        .unwrap();
    let apollo = env
        .run(|| Local::create_folder(&a, &projects.id, "Apollo", FolderKind::UserMail))
        .unwrap();
    assert_eq!(apollo.parent_id, projects.id);
    let deep = env
        .run(|| Local::create_folder(&a, &apollo.id, "Deep", FolderKind::UserMail))
        .unwrap();
    let item = env
        .create(&a, &deep.id, &fixture("attachment.eml"))
        .unwrap();
    let kept = env
        .create(&a, &apollo.id, &fixture("alternative.eml"))
        .unwrap();
    let kept = env.run(|| Local::move_item(&a, &kept.id, "inbox")).unwrap();

    // Errors: duplicate sibling name, cycles, standard folders, standard kinds.
    let dup = env.run(|| Local::create_folder(&a, &projects.id, "apollo", FolderKind::UserMail));
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
    let cycle = env.run(|| Local::update_folder(&a, &projects.id, &deep.id, "Projects"));
    assert!(matches!(cycle, Err(Error::Invalid(_))), "{cycle:?}");
    let std = env.run(|| Local::delete_folder(&a, "inbox"));
    assert!(matches!(std, Err(Error::Denied(_))), "{std:?}");
    let kind = env.run(|| Local::create_folder(&a, "", "Inbox 2", FolderKind::Inbox));
    assert!(matches!(kind, Err(Error::Invalid(_))), "{kind:?}");
    let nowhere = env.run(|| Local::create_folder(&a, "u999", "X", FolderKind::UserMail));
    assert!(matches!(nowhere, Err(Error::NotFound(_))), "{nowhere:?}");

    // Rename and move Apollo to the top level.
    let moved = env
        .run(|| Local::update_folder(&a, &apollo.id, "", "Apollo (done)"))
        .unwrap();
    assert_eq!(
        (moved.parent_id.as_str(), moved.name.as_str()),
        ("", "Apollo (done)")
    );

    env.run(|| Local::delete_folder(&a, &apollo.id)).unwrap();
    let left: Vec<String> = env
        .run(|| Local::list_folders(&a))
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert!(left.contains(&projects.id));
    assert!(
        !left.contains(&apollo.id) && !left.contains(&deep.id),
        "{left:?}"
    );
    let gone = env.run(|| Local::fetch(&a, &item.id, None, 0, 10));
    assert!(matches!(gone, Err(Error::NotFound(_))), "{gone:?}");
    let sync = env.run(|| Local::sync(&a, &deep.id, None, 10));
    assert!(matches!(sync, Err(Error::NotFound(_))), "{sync:?}");
    // Their keys are gone too; the item moved out before keeps its content.
    assert_eq!(
        env.host
            .kv_get(&format!("m/alice@example.com/c/{}", deep.id)),
        None
    );
    assert_eq!(
        env.host
            .kv_get(&format!("m/alice@example.com/l/{}/{:016x}", deep.id, 1)),
        None
    );
    let content = env.fetch_all(&a, &kept, None, 4096).unwrap();
    assert_eq!(content, fixture("alternative.eml"));
}

#[test]
fn real_messages_are_parsed() {
    let env = Env::new();
    let a = alice();

    let alt = env
        .create(&a, "inbox", &fixture("alternative.eml"))
        .unwrap();
    assert_eq!(alt.subject, "Lunch on Thursday?");
    assert_eq!(alt.sender, "Carol Jones <carol@example.com>");
    assert_eq!(alt.timestamp_ms, 1_772_525_698_000);
    assert_eq!(alt.class, ItemClass::Email);
    assert!(alt.attachments.is_empty(), "{:?}", alt.attachments);
    assert!(!alt.read);

    let att = env.create(&a, "inbox", &fixture("attachment.eml")).unwrap();
    assert_eq!(att.subject, "Q1 report");
    assert_eq!(att.sender, "Dave Miller <dave@example.org>");
    let names: Vec<(&str, &str)> = att
        .attachments
        .iter()
        .map(|x| (x.file_name.as_str(), x.content_type.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("Q1 report.pdf", "application/pdf"),
            ("numbers.csv", "text/csv")
        ]
    );
    let pdf = fixture("attachment.pdf.bin");
    assert_eq!(att.attachments[0].size, pdf.len() as u64);
    assert_eq!(env.fetch_all(&a, &att.id, Some("1"), 1000).unwrap(), pdf);
    assert_eq!(
        env.fetch_all(&a, &att.id, Some("2"), 7).unwrap(),
        b"quarter,revenue\r\nQ1,1234567"
    );
    // A range from the middle of the decoded attachment.
    let mid = env
        .run(|| Local::fetch(&a, &att.id, Some("1"), 100, 50))
        .unwrap();
    assert_eq!(mid.data, &pdf[100..150]);
    assert_eq!(mid.total, pdf.len() as u64);
    let bad = env.run(|| Local::fetch(&a, &att.id, Some("3"), 0, 10));
    assert!(matches!(bad, Err(Error::NotFound(_))), "{bad:?}");

    let intl = env.create(&a, "inbox", &fixture("nonascii.eml")).unwrap();
    assert_eq!(intl.subject, "Grüße aus Köln — 日本");
    assert_eq!(intl.sender, "Jürgen Müller <juergen@example.de>");

    let fwd = env.create(&a, "inbox", &fixture("forwarded.eml")).unwrap();
    assert_eq!(fwd.subject, "Fwd: Contract draft");
    assert_eq!(fwd.attachments.len(), 1, "{:?}", fwd.attachments);
    assert_eq!(fwd.attachments[0].file_name, "Contract draft.eml");
    assert_eq!(fwd.attachments[0].content_type, "message/rfc822");
    let inner = env.fetch_all(&a, &fwd.id, Some("1"), 64).unwrap();
    assert!(
        inner.starts_with(b"From: Erin <erin@example.net>"),
        "{}",
        String::from_utf8_lossy(&inner)
    );
    assert!(
        inner.ends_with(b"--fwd-inner--"),
        "{}",
        String::from_utf8_lossy(&inner)
    );
    assert_eq!(fwd.attachments[0].size, inner.len() as u64);

    // Verbatim storage: every byte comes back, in any piece size.
    for (item, name) in [
        (&alt, "alternative.eml"),
        (&att, "attachment.eml"),
        (&fwd, "forwarded.eml"),
    ] {
        assert_eq!(
            env.fetch_all(&a, &item.id, None, 333).unwrap(),
            fixture(name)
        );
    }
}

#[test]
fn garbage_is_stored_and_listed_with_an_empty_subject() {
    let env = Env::new();
    let a = alice();
    for junk in [
        &b""[..],
        b"\x00\x01\xff\xfe",
        b"no header at all",
        b"Subject",
    ] {
        let s = env.create(&a, "inbox", junk).unwrap();
        assert_eq!(s.subject, "");
        assert_eq!(s.size, junk.len() as u64);
        assert_eq!(env.fetch_all(&a, &s.id, None, 3).unwrap(), junk);
    }
    assert_eq!(env.contents(&a, "inbox").len(), 4);
}

#[test]
fn other_classes_follow_the_folder_kind() {
    let env = Env::new();
    let a = alice();
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:standup-1\r\nSUMMARY:Standup\r\nORGANIZER:mailto:bob@example.com\r\nDTSTART:20260302T090000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE\r\nEXDATE:20260304T090000Z\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:standup-1\r\nRECURRENCE-ID:20260309T090000Z\r\nSUMMARY:Standup (moved)\r\nDTSTART:20260309T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let ev = env.create(&a, "calendar", ics.as_bytes()).unwrap();
    assert_eq!(
        (
            ev.class,
            ev.subject.as_str(),
            ev.sender.as_str(),
            ev.timestamp_ms
        ),
        (
            ItemClass::Calendar,
            "Standup",
            "bob@example.com",
            1_772_442_000_000
        )
    );
    assert_eq!(
        env.fetch_all(&a, &ev.id, None, 50).unwrap(),
        ics.as_bytes(),
        "kept verbatim"
    );

    let vcf =
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Erin Example\r\nEMAIL:erin@example.net\r\nEND:VCARD\r\n";
    let c = env.create(&a, "contacts", vcf.as_bytes()).unwrap();
    assert_eq!(
        (c.class, c.subject.as_str(), c.sender.as_str()),
        (ItemClass::Contact, "Erin Example", "erin@example.net")
    );

    let todo = "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nSUMMARY:File taxes\r\nDUE:20260415T000000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    let t = env.create(&a, "tasks", todo.as_bytes()).unwrap();
    assert_eq!(
        (t.class, t.subject.as_str()),
        (ItemClass::Task, "File taxes")
    );

    let n = env
        .create(&a, "notes", b"\n  Shopping list\nmilk\n")
        .unwrap();
    assert_eq!(
        (n.class, n.subject.as_str()),
        (ItemClass::Note, "Shopping list")
    );

    let cal = env
        .run(|| Local::create_folder(&a, "calendar", "Team", FolderKind::UserCalendar))
        .unwrap();
    let ev2 = env.create(&a, &cal.id, ics.as_bytes()).unwrap();
    assert_eq!(ev2.class, ItemClass::Calendar);
    // Moved items keep their class.
    let moved = env
        .run(|| Local::move_item(&a, &ev2.id, "deleted"))
        .unwrap();
    assert_eq!(
        env.contents(&a, "deleted")[&moved].class,
        ItemClass::Calendar
    );
}

#[test]
fn flags_replace_move_and_delete_are_changes() {
    let env = Env::new();
    let a = alice();
    let mut r = Replica::default();
    let x = env
        .create(&a, "inbox", &fixture("alternative.eml"))
        .unwrap();
    let y = env.create(&a, "inbox", &fixture("nonascii.eml")).unwrap();
    r.sync_to_end(&env, &a, "inbox", 10);
    assert_eq!(r.items.len(), 2);
    let s1 = r.state.clone().unwrap();

    env.run(|| Local::set_flags(&a, &x.id, Some(true), None))
        .unwrap();
    env.run(|| Local::set_flags(&a, &x.id, None, Some(true)))
        .unwrap();
    let page = env.run(|| Local::sync(&a, "inbox", Some(&s1), 10)).unwrap();
    assert_eq!(
        page.changes.len(),
        1,
        "two flag changes, one entry: {:?}",
        page.changes
    );
    match &page.changes[0] {
        Change::Changed(s) => assert!(s.read && s.flagged && s.id == x.id),
        other => panic!("{other:?}"),
    }
    // Setting a flag to what it is records nothing.
    env.run(|| Local::set_flags(&a, &x.id, Some(true), Some(true)))
        .unwrap();
    let again = env.run(|| Local::sync(&a, "inbox", Some(&s1), 10)).unwrap();
    assert_eq!(
        again, page,
        "replay-safe: the same state gives the same page"
    );
    r.apply(&page.changes);
    r.state = Some(page.state);

    let replaced = env.replace(&a, &y.id, &fixture("attachment.eml")).unwrap();
    assert_eq!(
        (replaced.id.as_str(), replaced.subject.as_str()),
        (y.id.as_str(), "Q1 report")
    );
    assert_eq!(
        env.fetch_all(&a, &y.id, None, 1000).unwrap(),
        fixture("attachment.eml")
    );

    let new_id = env.run(|| Local::move_item(&a, &x.id, "junk")).unwrap();
    assert_ne!(new_id, x.id);
    assert!(
        env.contents(&a, "junk")[&new_id].read,
        "flags travel with a move"
    );
    assert_eq!(
        env.fetch_all(&a, &new_id, None, 1000).unwrap(),
        fixture("alternative.eml")
    );
    let old = env.run(|| Local::fetch(&a, &x.id, None, 0, 1));
    assert!(matches!(old, Err(Error::NotFound(_))));
    r.sync_to_end(&env, &a, "inbox", 10);
    assert_eq!(r.items.keys().collect::<Vec<_>>(), [&y.id]);
    assert_eq!(r.items[&y.id].subject, "Q1 report");

    env.run(|| Local::delete_item(&a, &y.id)).unwrap();
    let twice = env.run(|| Local::delete_item(&a, &y.id));
    assert!(matches!(twice, Err(Error::NotFound(_))), "{twice:?}");
    r.sync_to_end(&env, &a, "inbox", 10);
    assert!(r.items.is_empty());
}

#[test]
fn added_and_deleted_between_syncs_is_never_seen() {
    let env = Env::new();
    let a = alice();
    let mut r = Replica::default();
    r.sync_to_end(&env, &a, "inbox", 5);
    let s = env.create(&a, "inbox", b"Subject: brief\r\n\r\nx").unwrap();
    env.run(|| Local::set_flags(&a, &s.id, Some(true), None))
        .unwrap();
    env.run(|| Local::delete_item(&a, &s.id)).unwrap();
    let page = env
        .run(|| Local::sync(&a, "inbox", r.state.as_deref(), 5))
        .unwrap();
    assert!(page.changes.is_empty(), "{:?}", page.changes);
    assert!(!page.more);
}

#[test]
fn bad_states_are_refused() {
    let env = Env::new();
    let a = alice();
    env.create(&a, "inbox", b"Subject: one\r\n\r\n").unwrap();
    let page = env.run(|| Local::sync(&a, "inbox", None, 10)).unwrap();
    let (seq, check) = page.state.split_once('-').unwrap();
    let future = format!("{}-{check}", seq.parse::<u64>().unwrap() + 5);
    for bad in ["", "garbage", "1", "1-zzzzzzzz", &future] {
        let r = env.run(|| Local::sync(&a, "inbox", Some(bad), 10));
        assert!(matches!(r, Err(Error::Invalid(_))), "{bad:?}: {r:?}");
    }
    // A real state of another folder or another user.
    let r = env.run(|| Local::sync(&a, "drafts", Some(&page.state), 10));
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    let r = env.run(|| Local::sync(&bob(), "inbox", Some(&page.state), 10));
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    // A state from the future, properly checked, issued by nobody.
    let forged = switchboard_local::state::encode("alice@example.com", "inbox", 1000);
    let r = env.run(|| Local::sync(&a, "inbox", Some(&forged), 10));
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    let r = env.run(|| Local::sync(&a, "nope", None, 10));
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
}

const MEMO: &str = "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.com>, carol@example.com\r\nCc: alice@example.com\r\nBcc: dave@example.com\r\nSubject: Team memo\r\nDate: Tue, 10 Mar 2026 10:00:00 +0000\r\n\r\nThe memo.\r\n";

#[test]
fn send_delivers_to_local_mailboxes_without_bcc() {
    let env = Env::new();
    let a = alice();
    env.send(&a, MEMO.as_bytes(), true).unwrap();
    let expected_copy = MEMO.replace("Bcc: dave@example.com\r\n", "");
    for user in ["alice", "bob", "carol", "dave"] {
        let who = Principal::parse(&format!("{user}@example.com")).unwrap();
        let inbox = env.contents(&who, "inbox");
        assert_eq!(inbox.len(), 1, "{user}");
        let item = inbox.values().next().unwrap();
        assert_eq!((item.subject.as_str(), item.read), ("Team memo", false));
        assert_eq!(
            env.fetch_all(&who, &item.id, None, 1000).unwrap(),
            expected_copy.as_bytes(),
            "{user} gets the copy without Bcc"
        );
    }
    let sent = env.contents(&a, "sent");
    let copy = sent.values().next().unwrap();
    assert!(copy.read);
    assert_eq!(
        env.fetch_all(&a, &copy.id, None, 1000).unwrap(),
        MEMO.as_bytes()
    );
    let events = env.host.events();
    for key in [
        "mailbox:bob@example.com/inbox",
        "mailbox:dave@example.com/inbox",
        "mailbox:alice@example.com/sent",
    ] {
        assert!(events.iter().any(|e| e == key), "{key} in {events:?}");
    }
}

#[test]
fn send_to_a_foreign_recipient_delivers_nothing() {
    let env = Env::new();
    let a = alice();
    let msg =
        "From: alice@example.com\r\nTo: bob@example.com, x@elsewhere.org\r\nSubject: s\r\n\r\nb";
    let r = env.send(&a, msg.as_bytes(), true);
    match r {
        Err(Error::Unavailable(t)) => assert!(t.contains("x@elsewhere.org"), "{t}"),
        other => panic!("{other:?}"),
    }
    assert!(env.contents(&bob(), "inbox").is_empty());
    assert!(env.contents(&a, "sent").is_empty());
    let none = env.send(&a, b"Subject: nobody\r\n\r\nx", false);
    assert!(matches!(none, Err(Error::Invalid(_))), "{none:?}");

    // With the domain configured as local, it is delivered.
    let env = Env::with(MockHost::new().with_config("local_domains", "other.net, elsewhere.org"));
    env.send(&a, msg.as_bytes(), false).unwrap();
    let x = Principal::parse("x@elsewhere.org").unwrap();
    assert_eq!(env.contents(&x, "inbox").len(), 1);
    assert!(env.contents(&a, "sent").is_empty(), "no copy unless asked");
}

#[test]
fn search_matches_subject_sender_and_small_bodies_newest_first() {
    let env = Env::new();
    let a = alice();
    let alt = env
        .create(&a, "inbox", &fixture("alternative.eml"))
        .unwrap();
    let att = env.create(&a, "inbox", &fixture("attachment.eml")).unwrap();
    let intl = env.create(&a, "inbox", &fixture("nonascii.eml")).unwrap();
    let folder = env
        .run(|| Local::create_folder(&a, "", "Archive", FolderKind::UserMail))
        .unwrap();
    let fwd = env
        .create(&a, &folder.id, &fixture("forwarded.eml"))
        .unwrap();
    let ids = |q: &str, f: Option<&str>| -> Vec<String> {
        env.run(|| Local::search(&a, f, q, 10))
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    assert_eq!(ids("lunch", None), vec![alt.id.clone()]);
    assert_eq!(ids("dave@example.org", None), vec![att.id.clone()]);
    assert_eq!(
        ids("rhabarberkuchen", None),
        vec![intl.id.clone()],
        "body text"
    );
    assert_eq!(ids("KÖLN", None), vec![intl.id.clone()]);
    assert_eq!(ids("contract", None), vec![fwd.id.clone()]);
    assert!(ids("contract", Some("inbox")).is_empty());
    // Newest first: fwd (9 Mar) > intl (6 Mar) > att (4 Mar) > alt (3 Mar).
    assert_eq!(
        ids("", None),
        [
            fwd.id.clone(),
            intl.id.clone(),
            att.id.clone(),
            alt.id.clone()
        ]
    );
    assert_eq!(env.run(|| Local::search(&a, None, "", 2)).unwrap().len(), 2);
}
