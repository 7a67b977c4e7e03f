//! The IMAP connector behind the ActiveSync frontend, end to end through the real server: a
//! domain (`scalix.test`) routed to the native `switchboard-imap` connector (built and
//! installed beside its manifest, as an admin would), the built-in ActiveSync plugin, a
//! provisioned phone speaking WBXML over HTTP with Basic auth, and a throwaway Dovecot (plus an
//! aiosmtpd submission server relaying into Dovecot's LMTP) behind it.
//!
//! Covered: FolderSync, Sync of an Inbox seeded on Dovecot, changes made directly on Dovecot
//! (APPEND, flag, expunge) in the next incremental Sync, a phone's flag change and delete
//! reaching Dovecot (and not echoed back), SendMail arriving at the SMTP server, in the
//! recipient's Dovecot INBOX and in Sent, Dovecot restarted between two Syncs and stopped
//! during one, a wrong user password (core: 401), a wrong service password and an unreachable
//! IMAP server (the connector's `denied` / `unavailable` in their EAS/HTTP forms); calendar
//! and contacts through a real Radicale (CalDAV/CardDAV) both ways.
//!
//! Needs `dovecot-imapd`, `dovecot-lmtpd`, `python3-aiosmtpd` and `radicale` (Debian;
//! `.ci/run` installs them), like the connector's own tests whose harness this includes.

mod support;

#[allow(unused_imports)]
#[path = "../../plugins/imap/tests/support/mod.rs"]
mod imap_support;

#[allow(dead_code)]
mod eas_imap_support;

use std::path::Path;

use anyhow::{ensure, Context, Result};
use eas_imap_support::{config, imap_settings, server_id, uid, Phone, ALICE, BOB};
use imap_support::dovecot::{Dovecot, MASTER_PASSWORD, MASTER_USER, PASSWORD};
use imap_support::radicale::{card, event, Radicale};
use imap_support::raw::Raw;
use imap_support::smtp::SmtpSink;
use support::TestServer;
use switchboard_wbxml::tags::{
    airsync as a, calendar as cal, composemail as cm, contacts as ct, email as em,
    folderhierarchy as fh, ping as pg,
};
use switchboard_wbxml::{element, Element};

/// [`eas_imap_support::server`] with a debug build of the connector.
async fn server(root: &Path, settings: &str) -> Result<TestServer> {
    eas_imap_support::server(root, settings, false).await
}

/// A small message as delivered by another client.
fn message(subject: &str, from: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {ALICE}\r\nSubject: {subject}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{}@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, this is {subject}.\r\n",
        subject.replace(' ', ".")
    )
    .into_bytes()
}

fn raw(d: &Dovecot, user: &str) -> Raw {
    Raw::login(d.port, user, PASSWORD)
}

/// Messages in `mailbox` on Dovecot.
fn count(r: &mut Raw, mailbox: &str) -> Result<u32> {
    let lines = r.ok(&format!("STATUS \"{mailbox}\" (MESSAGES)"));
    lines
        .iter()
        .find_map(|l| l.split("MESSAGES ").nth(1))
        .and_then(|n| n.trim_end_matches(')').trim().parse().ok())
        .with_context(|| format!("no MESSAGES in {lines:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_sync_server_side_changes_and_phone_changes() -> Result<()> {
    let d = Dovecot::start();
    let mut r = raw(&d, ALICE);
    r.ok("CREATE \"Projects\"");
    for s in ["one", "two", "three"] {
        r.append("INBOX", "", &message(s, "bob@scalix.test"));
    }
    let root = tempfile::tempdir()?;
    let server = server(root.path(), &imap_settings(d.port)).await?;
    let mut phone = Phone::new(&server, ALICE, PASSWORD, "DEV1");
    phone.provision().await?;

    // FolderSync: Dovecot's mailboxes with their EAS types.
    let folders = phone.folders().await?;
    for (kind, name) in [(2, "INBOX"), (3, "Drafts"), (4, "Trash"), (5, "Sent")] {
        ensure!(
            folders.iter().any(|f| f.2 == kind && f.1 == name),
            "no {name} of type {kind} in {folders:?}"
        );
    }
    ensure!(
        folders.iter().any(|f| f.1 == "Projects" && f.2 == 12),
        "user folder missing: {folders:?}"
    );
    let inbox = phone.folder(2).await?;

    // Initial Sync: the three seeded messages.
    let first = phone.sync("0", &inbox, vec![]).await?;
    ensure!(first.status == "1" && first.adds.is_empty(), "{first:?}");
    let (key, all) = phone.sync_all(&first.key, &inbox).await?;
    ensure!(all.subjects() == ["one", "two", "three"], "{all:?}");
    let data = all.adds[0]
        .child("ApplicationData")
        .context("ApplicationData")?;
    ensure!(data.child_text("Read") == Some("0"), "{data}");
    ensure!(
        data.child_text("From")
            .is_some_and(|f| f.contains("bob@scalix.test")),
        "{data}"
    );
    let ids: Vec<String> = all.adds.iter().map(server_id).collect();
    ensure!(
        ids.iter().map(|i| uid(i)).collect::<Vec<_>>() == ["1", "2", "3"],
        "{ids:?}"
    );
    // Nothing new: the empty answer, same key.
    let idle = phone.sync(&key, &inbox, vec![]).await?;
    ensure!(
        idle.adds.is_empty() && idle.changes.is_empty() && idle.deletes.is_empty(),
        "{idle:?}"
    );

    // Changes made directly on Dovecot by another client.
    let four = r.append("INBOX", "", &message("four", "carol@scalix.test"));
    r.ok("SELECT INBOX");
    r.ok("UID STORE 1 +FLAGS (\\Seen)");
    r.ok("UID STORE 2 +FLAGS (\\Deleted)");
    r.ok("UID EXPUNGE 2");
    let (key, changed) = phone.sync_all(&idle.key, &inbox).await?;
    ensure!(changed.subjects() == ["four"], "{changed:?}");
    ensure!(
        changed.deletes.iter().map(|i| uid(i)).collect::<Vec<_>>() == ["2"],
        "{changed:?}"
    );
    ensure!(changed.changes.len() == 1, "{changed:?}");
    let read = &changed.changes[0];
    ensure!(uid(&server_id(read)) == "1", "{read}");
    ensure!(
        read.child("ApplicationData")
            .and_then(|a| a.child_text("Read"))
            == Some("1"),
        "{read}"
    );
    let four_id = server_id(&changed.adds[0]);
    ensure!(uid(&four_id) == four.to_string(), "{four_id}");

    // The phone marks "three" read and flagged, and deletes "four" (to Deleted Items).
    let commands = element!(a::Commands [
        element!(a::Change [
            element!(a::ServerId = ids[2].clone()),
            element!(a::ApplicationData [
                element!(em::Read = "1"),
                element!(em::Flag [element!(em::FlagStatus = "2")]),
            ]),
        ]),
        element!(a::Delete [element!(a::ServerId = four_id.clone())]),
    ]);
    let answer = phone
        .sync(
            &key,
            &inbox,
            vec![
                element!(a::DeletesAsMoves = "1"),
                element!(a::GetChanges = "0"),
                commands,
            ],
        )
        .await?;
    ensure!(answer.status == "1", "{answer:?}");
    let flags = r.ok("UID FETCH 3 (FLAGS)");
    ensure!(
        flags[0].contains("\\Seen") && flags[0].contains("\\Flagged"),
        "{flags:?}"
    );
    let left = r.ok("UID SEARCH ALL");
    ensure!(left[0].trim_end() == "* SEARCH 1 3", "{left:?}");
    ensure!(count(&mut r, "Trash")? == 1, "not moved to Trash");
    // The phone's own changes are not echoed back to it.
    let after = phone.sync(&answer.key, &inbox, vec![]).await?;
    ensure!(
        after.adds.is_empty() && after.changes.is_empty() && after.deletes.is_empty(),
        "echoed: {after:?}"
    );
    // Deleted Items shows the moved message.
    let trash = phone.folder(4).await?;
    let t0 = phone.sync("0", &trash, vec![]).await?;
    let (_, t) = phone.sync_all(&t0.key, &trash).await?;
    ensure!(t.subjects() == ["four"], "{t:?}");
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_mail_reaches_the_recipient_and_sent() -> Result<()> {
    let d = Dovecot::start();
    let login = format!("{ALICE}*{MASTER_USER}");
    let sink = SmtpSink::start_relaying(&login, MASTER_PASSWORD, Some(&d.lmtp_socket()));
    let settings = format!(
        "{}, smtp_port = {}, smtp_tls = \"starttls\", ca_file = {:?}",
        imap_settings(d.port),
        sink.port,
        sink.ca_file()
    );
    let root = tempfile::tempdir()?;
    let server = server(root.path(), &settings).await?;
    let mut phone = Phone::new(&server, ALICE, PASSWORD, "DEV2");
    phone.provision().await?;

    let mime = format!(
        "From: Alice <{ALICE}>\r\nTo: Bob <{BOB}>\r\nSubject: Quarterly numbers\r\nMessage-ID: <q1@scalix.test>\r\nDate: Mon, 30 Nov 2026 11:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHere they are.\r\n.\r\nA line with a dot.\r\n"
    );
    let send = element!(cm::SendMail [
        element!(cm::ClientId = "send-1"),
        element!(cm::SaveInSentItems),
        Element::new(cm::Mime).with_opaque(mime.as_bytes().to_vec()),
    ]);
    let r = phone.post("SendMail", &send.to_wbxml()?).await?;
    ensure!(
        r.status == 200 && r.body.is_empty(),
        "SendMail: {} {}",
        r.status,
        r.text()
    );

    // Submitted once, over STARTTLS with the service login, envelope from Alice to Bob.
    let got = sink.received();
    ensure!(got.len() == 1, "{got:?}");
    ensure!(got[0].from == ALICE && got[0].rcpt == [BOB], "{got:?}");
    ensure!(got[0].tls && got[0].login.as_deref() == Some(login.as_str()));
    ensure!(
        String::from_utf8_lossy(&got[0].data).contains("A line with a dot."),
        "body"
    );
    // In Bob's INBOX on Dovecot (through LMTP) and in Alice's Sent.
    let mut bob = raw(&d, BOB);
    ensure!(count(&mut bob, "INBOX")? == 1, "not delivered\n{}", d.log());
    bob.ok("SELECT INBOX");
    let subject = bob.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    ensure!(
        subject.iter().any(|l| l.contains("Quarterly numbers")),
        "{subject:?}"
    );
    let mut alice = raw(&d, ALICE);
    ensure!(count(&mut alice, "Sent")? == 1, "no copy in Sent");
    let sent = phone.folder(5).await?;
    let k = phone.sync("0", &sent, vec![]).await?;
    let (_, page) = phone.sync_all(&k.key, &sent).await?;
    ensure!(page.subjects() == ["Quarterly numbers"], "{page:?}");
    let read = page.adds[0]
        .child("ApplicationData")
        .and_then(|a| a.child_text("Read"));
    ensure!(read == Some("1"), "the copy in Sent is read");

    // The same ClientId again: not sent twice (Status 118).
    let again = phone.cmd("SendMail", &send).await?.context("no answer")?;
    ensure!(again.child_text("Status") == Some("118"), "{again}");
    ensure!(sink.received().len() == 1);
    server.shutdown().await;
    Ok(())
}

/// The ServerId a Sync answer gave the phone's Add `client_id`, with its Status.
fn added(answer: &Element, client_id: &str) -> Result<String> {
    let r = answer
        .child("Collections")
        .and_then(|c| c.child("Collection"))
        .and_then(|c| c.child("Responses"))
        .into_iter()
        .flat_map(|r| r.children_named("Add"))
        .find(|a| a.child_text("ClientId") == Some(client_id))
        .with_context(|| format!("no Add response for {client_id}: {answer}"))?;
    ensure!(r.child_text("Status") == Some("1"), "{r}");
    Ok(r.child_text("ServerId").context("ServerId")?.to_string())
}

/// Every resource in a DAV collection, as `alice@scalix.test`.
fn dav_bodies(dav: &Radicale, collection: &str) -> Result<Vec<String>> {
    let (status, listing) = dav.http(
        ALICE,
        PASSWORD,
        "PROPFIND",
        collection,
        &[("Depth", "1")],
        b"",
    );
    ensure!(status == 207, "PROPFIND {collection}: {status}");
    let mut out = Vec::new();
    // `<href>` with whatever namespace prefix the server uses: the text after each `href>`
    // up to the next `<`, when it names a member of the collection.
    let mut hrefs: Vec<String> = listing
        .split("href>")
        .filter_map(|h| h.split('<').next())
        .map(|h| h.replace("%40", "@"))
        .filter(|h| h.starts_with(collection) && h.len() > collection.len())
        .collect();
    hrefs.dedup();
    for href in hrefs {
        let (status, body) = dav.http(ALICE, PASSWORD, "GET", &href, &[], b"");
        ensure!(status == 200, "GET {href}: {status}");
        out.push(body);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_and_contacts_round_trip_through_radicale() -> Result<()> {
    let d = Dovecot::start();
    let dav = Radicale::start();
    let home = "/alice@scalix.test/";
    let (st, _) = dav.http(ALICE, PASSWORD, "PROPFIND", home, &[("Depth", "0")], b"");
    ensure!(st == 207, "home: {st}");
    let mkcal = "<?xml version=\"1.0\"?><C:mkcalendar xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><D:set><D:prop><D:displayname>Work</D:displayname><C:supported-calendar-component-set><C:comp name=\"VEVENT\"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>";
    let (st, _) = dav.http(
        ALICE,
        PASSWORD,
        "MKCALENDAR",
        "/alice@scalix.test/cal/",
        &[],
        mkcal.as_bytes(),
    );
    ensure!(st == 201, "MKCALENDAR: {st}");
    let mkbook = "<?xml version=\"1.0\"?><D:mkcol xmlns:D=\"DAV:\" xmlns:CR=\"urn:ietf:params:xml:ns:carddav\"><D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype><D:displayname>People</D:displayname></D:prop></D:set></D:mkcol>";
    let (st, _) = dav.http(
        ALICE,
        PASSWORD,
        "MKCOL",
        "/alice@scalix.test/book/",
        &[],
        mkbook.as_bytes(),
    );
    ensure!(st == 201, "MKCOL: {st}");
    let (st, _) = dav.http(
        ALICE,
        PASSWORD,
        "PUT",
        "/alice@scalix.test/cal/e1.ics",
        &[("Content-Type", "text/calendar")],
        &event("e1", "Standup"),
    );
    ensure!(st == 201, "PUT event: {st}");
    let (st, _) = dav.http(
        ALICE,
        PASSWORD,
        "PUT",
        "/alice@scalix.test/book/c1.vcf",
        &[("Content-Type", "text/vcard")],
        &card("c1", "Carol Example"),
    );
    ensure!(st == 201, "PUT card: {st}");

    let settings = format!(
        "{}, dav_url = \"http://127.0.0.1:{}\"",
        imap_settings(d.port),
        dav.port
    );
    let root = tempfile::tempdir()?;
    let server = server(root.path(), &settings).await?;
    let mut phone = Phone::new(&server, ALICE, PASSWORD, "DEV7");
    phone.provision().await?;
    let folders = phone.folders().await?;
    ensure!(
        folders.iter().any(|f| f.1 == "Work" && f.2 == 8)
            && folders.iter().any(|f| f.1 == "People" && f.2 == 9)
            && folders.iter().any(|f| f.2 == 2),
        "{folders:?}"
    );

    // Calendar: Radicale's event reaches the phone; the phone's new event and its edit of
    // the existing one reach Radicale.
    let cal = phone.folder(8).await?;
    let k = phone.sync("0", &cal, vec![]).await?;
    let (key, page) = phone.sync_all(&k.key, &cal).await?;
    ensure!(page.subjects() == ["Standup"], "{page:?}");
    let standup = page.adds[0].clone();
    ensure!(
        standup
            .child("ApplicationData")
            .and_then(|a| a.child_text("StartTime"))
            == Some("20261201T100000Z"),
        "{standup}"
    );
    let commands = element!(a::Commands [
        element!(a::Add [
            element!(a::ClientId = "n1"),
            element!(a::ApplicationData [
                element!(cal::AllDayEvent = "0"),
                element!(cal::StartTime = "20261203T090000Z"),
                element!(cal::EndTime = "20261203T100000Z"),
                element!(cal::Subject = "Dentist"),
            ]),
        ]),
        element!(a::Change [
            element!(a::ServerId = server_id(&standup)),
            element!(a::ApplicationData [
                element!(cal::AllDayEvent = "0"),
                element!(cal::StartTime = "20261201T103000Z"),
                element!(cal::EndTime = "20261201T110000Z"),
                element!(cal::Subject = "Standup (moved)"),
            ]),
        ]),
    ]);
    let mut col = element!(a::Collection [
        element!(a::SyncKey = key.clone()),
        element!(a::CollectionId = cal.clone()),
        element!(a::GetChanges = "0"),
    ]);
    col.push(commands);
    let answer = phone
        .cmd("Sync", &element!(a::Sync[element!(a::Collections[col])]))
        .await?
        .context("empty Sync answer")?;
    added(&answer, "n1")?;
    let events = dav_bodies(&dav, "/alice@scalix.test/cal/")?;
    ensure!(events.len() == 2, "{events:?}");
    ensure!(
        events
            .iter()
            .any(|e| e.contains("SUMMARY:Dentist") && e.contains("20261203T090000Z")),
        "{events:?}"
    );
    ensure!(
        events
            .iter()
            .any(|e| e.contains("SUMMARY:Standup (moved)") && e.contains("UID:e1")),
        "{events:?}"
    );

    // Contacts: Radicale's card reaches the phone, the phone's new contact reaches Radicale.
    let book = phone.folder(9).await?;
    let k = phone.sync("0", &book, vec![]).await?;
    let (key, page) = phone.sync_all(&k.key, &book).await?;
    ensure!(page.adds.len() == 1, "{page:?}");
    ensure!(
        page.adds[0].to_string().contains("Carol"),
        "{}",
        page.adds[0]
    );
    let mut col = element!(a::Collection [
        element!(a::SyncKey = key),
        element!(a::CollectionId = book.clone()),
        element!(a::GetChanges = "0"),
    ]);
    col.push(element!(
        a::Commands[element!(a::Add [
            element!(a::ClientId = "c2"),
            element!(a::ApplicationData [
                element!(ct::FirstName = "Dave"),
                element!(ct::LastName = "Phone"),
                element!(ct::FileAs = "Phone, Dave"),
                element!(ct::Email1Address = "dave@scalix.test"),
            ]),
        ])]
    ));
    let answer = phone
        .cmd("Sync", &element!(a::Sync[element!(a::Collections[col])]))
        .await?
        .context("empty Sync answer")?;
    added(&answer, "c2")?;
    let cards = dav_bodies(&dav, "/alice@scalix.test/book/")?;
    ensure!(
        cards
            .iter()
            .any(|c| c.contains("Dave") && c.contains("dave@scalix.test")),
        "{cards:?}"
    );
    server.shutdown().await;
    Ok(())
}

fn ping_doc(folder: &str) -> Element {
    element!(pg::Ping [
        element!(pg::HeartbeatInterval = "120"),
        element!(pg::Folders [element!(pg::Folder [
            element!(pg::Id = folder),
            element!(pg::Class = "Email"),
        ])]),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_sees_server_side_mail_and_wakes_on_changes_through_switchboard() -> Result<()> {
    let d = Dovecot::start();
    let mut r = raw(&d, ALICE);
    r.append("INBOX", "", &message("first", BOB));
    let root = tempfile::tempdir()?;
    let server = server(root.path(), &imap_settings(d.port)).await?;
    let mut a = Phone::new(&server, ALICE, PASSWORD, "PHONEA");
    let mut b = Phone::new(&server, ALICE, PASSWORD, "PHONEB");
    a.provision().await?;
    b.provision().await?;
    let inbox = a.folder(2).await?;
    ensure!(b.folder(2).await? == inbox);
    let ka = a.sync("0", &inbox, vec![]).await?;
    let (ka, _) = a.sync_all(&ka.key, &inbox).await?;
    let kb = b.sync("0", &inbox, vec![]).await?;
    let (kb, seen) = b.sync_all(&kb.key, &inbox).await?;
    let first = server_id(&seen.adds[0]);

    // Mail delivered straight to Dovecot is found when a Ping starts (checked before parking).
    r.append("INBOX", "", &message("second", BOB));
    let pong = a
        .cmd("Ping", &ping_doc(&inbox))
        .await?
        .context("empty Ping")?;
    ensure!(pong.child_text("Status") == Some("2"), "{pong}");
    let (ka, got) = a.sync_all(&ka, &inbox).await?;
    ensure!(got.subjects() == ["second"], "{got:?}");
    let (kb, _) = b.sync_all(&kb, &inbox).await?;

    // A parked Ping wakes when another device changes the folder through Switchboard (the
    // connector publishes the change); the read below is bounded by the client's timeout.
    let parked_phone = a.clone();
    let doc = ping_doc(&inbox);
    let parked = tokio::spawn(async move { parked_phone.cmd("Ping", &doc).await });
    // Give the Ping time to park (bounded; the wake-up below is what is asserted).
    for _ in 0..50 {
        let status = support::admin(server.admin_addr(), "GET", "/admin/status").await;
        let v: serde_json::Value = serde_json::from_slice(&status.body)?;
        if v["parked_requests"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let change = element!(
        a::Commands[element!(a::Change [
            element!(a::ServerId = first.clone()),
            element!(a::ApplicationData [element!(em::Read = "1")]),
        ])]
    );
    let answer = b
        .sync(&kb, &inbox, vec![element!(a::GetChanges = "0"), change])
        .await?;
    ensure!(answer.status == "1", "{answer:?}");
    let woke = parked.await??.context("empty Ping")?;
    ensure!(woke.child_text("Status") == Some("2"), "{woke}");
    let (_, got) = a.sync_all(&ka, &inbox).await?;
    ensure!(
        got.changes.len() == 1 && server_id(&got.changes[0]) == first,
        "{got:?}"
    );
    server.shutdown().await;
    Ok(())
}

/// Wait (bounded) until `n` requests are parked in the server.
async fn wait_parked(server: &TestServer, n: u64) -> Result<()> {
    for _ in 0..100 {
        let status = support::admin(server.admin_addr(), "GET", "/admin/status").await;
        let v: serde_json::Value = serde_json::from_slice(&status.body)?;
        if v["parked_requests"] == n {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("{n} requests never parked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_ping_wakes_when_mail_reaches_dovecot_directly() -> Result<()> {
    // Mail delivered to the IMAP server by anyone else (here a plain IMAP APPEND) wakes the
    // parked Ping through the connector's IDLE watch, long before its 120 s heartbeat.
    let d = Dovecot::start();
    let mut r = raw(&d, ALICE);
    r.append("INBOX", "", &message("first", BOB));
    let root = tempfile::tempdir()?;
    // Folders other than the Inbox are looked at every watch_poll_secs.
    let settings = format!("{}, watch_poll_secs = 2", imap_settings(d.port));
    let server = server(root.path(), &settings).await?;
    let mut a = Phone::new(&server, ALICE, PASSWORD, "PHONEA");
    a.provision().await?;
    let inbox = a.folder(2).await?;
    let archive = a.folder_named("Archive").await?;
    let ka = a.sync("0", &inbox, vec![]).await?;
    let (ka, _) = a.sync_all(&ka.key, &inbox).await?;
    let kr = a.sync("0", &archive, vec![]).await?;
    let (kr, _) = a.sync_all(&kr.key, &archive).await?;

    let both = element!(pg::Ping [
        element!(pg::HeartbeatInterval = "120"),
        element!(pg::Folders [
            element!(pg::Folder [element!(pg::Id = inbox.clone()), element!(pg::Class = "Email")]),
            element!(pg::Folder [element!(pg::Id = archive.clone()), element!(pg::Class = "Email")]),
        ]),
    ]);
    let phone = a.clone();
    let doc = both.clone();
    let parked = tokio::spawn(async move { phone.cmd("Ping", &doc).await });
    wait_parked(&server, 1).await?;
    let asked = std::time::Instant::now();
    r.append("INBOX", "", &message("second", BOB));
    let woke = tokio::time::timeout(std::time::Duration::from_secs(60), parked)
        .await
        .context("the Ping did not wake on mail delivered to Dovecot")???
        .context("empty Ping")?;
    ensure!(woke.child_text("Status") == Some("2"), "{woke}");
    let folders: Vec<String> = woke
        .child_tag(pg::Folders)
        .map(|f| {
            f.children_tagged(pg::Folder)
                .filter_map(|e| e.text().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ensure!(folders == [inbox.clone()], "{woke}");
    eprintln!("woke {:?} after the delivery", asked.elapsed());
    let (_, got) = a.sync_all(&ka, &inbox).await?;
    ensure!(got.subjects() == ["second"], "{got:?}");

    // A folder other than the Inbox is watched too (a STATUS poll on the same connection).
    let phone = a.clone();
    let parked = tokio::spawn(async move { phone.cmd("Ping", &both).await });
    wait_parked(&server, 1).await?;
    r.append("Archive", "", &message("filed", BOB));
    let woke = tokio::time::timeout(std::time::Duration::from_secs(90), parked)
        .await
        .context("the Ping did not wake on mail filed into Archive")???
        .context("empty Ping")?;
    ensure!(woke.child_text("Status") == Some("2"), "{woke}");
    let (_, got) = a.sync_all(&kr, &archive).await?;
    ensure!(got.subjects() == ["filed"], "{got:?}");
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_domain_settings_and_the_users_own_password() -> Result<()> {
    // One connector, two customers: scalix.test logs in with the service account (the
    // plugin's settings); example.com has domain_settings that log every user in with their
    // own password, which the core passes on because the admin set pass_password.
    let d = Dovecot::start();
    let mut r = raw(&d, "alice@example.com");
    r.append("INBOX", "", &message("for example.com", BOB));
    let mut s = raw(&d, ALICE);
    s.append("INBOX", "", &message("for scalix.test", BOB));
    let root = tempfile::tempdir()?;
    let manifest = eas_imap_support::imap_manifest(root.path(), false);
    let cfg = eas_imap_support::config(&manifest, &imap_settings(d.port)).replace(
        "domains = [\"scalix.test\"]",
        "domains = [\"scalix.test\", \"example.com\"]\npass_password = true",
    ) + "\n[plugins.imap.domain_settings.\"example.com\"]\nlogin = \"user\"\nmaster_password = \"not-used\"\n";
    let server = TestServer::start(&cfg).await;
    let storage = &server.server().shared.storage;
    storage.add_domain("scalix.test").await?;
    // example.com is the test server's demo domain already.
    // Alice of scalix.test has another password in Switchboard than on Dovecot: only the
    // service account can open her mailbox. Alice of example.com has the same one, and her
    // domain's master password is wrong: only her own login can open hers.
    storage.add_user(ALICE, "switchboard-only", None).await?;
    // alice@example.com is the test server's demo user: give her Dovecot's password.
    storage.set_password("alice@example.com", PASSWORD).await?;

    for (user, password, subject) in [
        ("alice@example.com", PASSWORD, "for example.com"),
        (ALICE, "switchboard-only", "for scalix.test"),
    ] {
        let mut phone = Phone::new(&server, user, password, "PHONE1");
        phone.provision().await?;
        let inbox = phone.folder(2).await?;
        let k = phone.sync("0", &inbox, vec![]).await?;
        let (_, got) = phone.sync_all(&k.key, &inbox).await?;
        ensure!(got.subjects() == [subject], "{user}: {got:?}");
    }
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_restarted_between_syncs_and_stopped_during_one() -> Result<()> {
    let mut d = Dovecot::start();
    let mut r = raw(&d, ALICE);
    for i in 0..3 {
        r.append("INBOX", "", &message(&format!("m{i}"), BOB));
    }
    drop(r);
    let root = tempfile::tempdir()?;
    let server = server(root.path(), &imap_settings(d.port)).await?;
    let mut phone = Phone::new(&server, ALICE, PASSWORD, "DEV3");
    phone.provision().await?;
    let inbox = phone.folder(2).await?;
    let k0 = phone.sync("0", &inbox, vec![]).await?;
    // A window of 2: the phone is mid-sync when the server goes away.
    let p1 = phone
        .sync(&k0.key, &inbox, vec![element!(a::WindowSize = "2")])
        .await?;
    ensure!(p1.more && p1.subjects() == ["m0", "m1"], "{p1:?}");

    // Restart: the connector's pooled connection is dead; the next Sync reconnects.
    d.restart();
    raw(&d, ALICE).append("INBOX", "", &message("after restart", BOB));
    let (key, rest) = phone.sync_all(&p1.key, &inbox).await?;
    ensure!(rest.subjects() == ["m2", "after restart"], "{rest:?}");

    // Stopped: FolderSync answers its server-error Status 6, Sync its Status 5 (the phone
    // retries later); no crash, and the phone's key still works once the server is back.
    d.stop();
    let fs = folder_sync_status(&phone).await?;
    ensure!(fs == "6", "FolderSync while down: Status {fs}");
    let down = phone.sync(&key, &inbox, vec![]).await?;
    ensure!(down.status == "5", "Sync while down: {down:?}");
    d.restart();
    raw(&d, ALICE).append("INBOX", "", &message("back again", BOB));
    let (_, back) = phone.sync_all(&key, &inbox).await?;
    ensure!(back.subjects() == ["back again"], "{back:?}");
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_unreachable_server() -> Result<()> {
    let d = Dovecot::start();
    let root = tempfile::tempdir()?;
    // The connector's service password is wrong.
    let settings = imap_settings(d.port).replace(MASTER_PASSWORD, "wrong-master");
    let server = server(root.path(), &settings).await?;

    // The user's own password is checked by the core: 401, the plugin never sees it.
    let wrong = Phone::new(&server, ALICE, "not-the-password", "DEV4");
    let r = wrong.post("FolderSync", b"").await?;
    ensure!(r.status == 401, "wrong password: {}", r.status);
    ensure!(r.header("www-authenticate").is_some());
    // A Dovecot user the core does not know: 401 too.
    let stranger = Phone::new(&server, BOB, PASSWORD, "DEV4");
    ensure!(stranger.post("FolderSync", b"").await?.status == 401);

    // Dovecot refuses the service (master) login and the connector says `denied`: FolderSync
    // answers its Status 6 (server error).
    let mut phone = Phone::new(&server, ALICE, PASSWORD, "DEV5");
    phone.provision().await?;
    let fs = folder_sync_status(&phone).await?;
    ensure!(fs == "6", "service login refused: FolderSync Status {fs}");

    // Reloaded to a port nothing listens on (`unavailable`): the same answer, promptly.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    server.write_config(&config(
        &root.path().join("imap/plugin.toml"),
        &imap_settings(closed),
    ));
    server.server().shared.reload().await?;
    let fs = folder_sync_status(&phone).await?;
    ensure!(fs == "6", "unreachable: FolderSync Status {fs}");
    // The server itself is fine.
    let health = support::admin(server.admin_addr(), "GET", "/healthz").await;
    ensure!(health.status == 200);
    server.shutdown().await;
    Ok(())
}

/// The Status of a FolderSync from 0.
async fn folder_sync_status(phone: &Phone) -> Result<String> {
    let d = phone
        .cmd(
            "FolderSync",
            &element!(fh::FolderSync[element!(fh::SyncKey = "0")]),
        )
        .await?
        .context("empty FolderSync")?;
    Ok(d.child_text("Status").unwrap_or_default().to_string())
}
