//! Sync end to end against the in-memory store: windows, replays, client changes, echoes,
//! bodies, long-polls and bad input.

use switchboard_sdk::http::Outcome;
use switchboard_wbxml::{
    decode, element, tags::airsync as a, tags::airsyncbase as asb, tags::contacts as ct,
    tags::email as em, tags::folderhierarchy as fh, Element,
};

use crate::testkit::{MemStore, Phone};
use crate::tests::{request, response};
use crate::Eas;

const MAIL: &str = "From: Bob <bob@example.com>\r\nTo: Alice <alice@example.com>\r\nSubject: Lunch?\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nShall we have lunch at noon? There is a new place.\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Shall we have <b>lunch</b> at noon?</p>\r\n--b--\r\n";

/// Folder ids by name after a FolderSync from 0.
fn folder_ids(phone: &Phone) -> std::collections::HashMap<String, String> {
    let d = phone.cmd(
        "FolderSync",
        &element!(fh::FolderSync[element!(fh::SyncKey = "0")]),
    );
    d.child("Changes")
        .unwrap()
        .children_named("Add")
        .map(|a| {
            (
                a.child_text("DisplayName").unwrap().to_string(),
                a.child_text("ServerId").unwrap().to_string(),
            )
        })
        .collect()
}

fn sync_doc(key: &str, id: &str, extra: Vec<Element>) -> Element {
    let mut col =
        element!(a::Collection [element!(a::SyncKey = key), element!(a::CollectionId = id)]);
    for e in extra {
        col.push(e);
    }
    element!(a::Sync[element!(a::Collections[col])])
}

fn col(d: &Element) -> &Element {
    d.child("Collections")
        .and_then(|c| c.child("Collection"))
        .expect("Collection")
}

fn key(d: &Element) -> String {
    col(d).child_text("SyncKey").unwrap().to_string()
}

fn commands(d: &Element, name: &str) -> Vec<Element> {
    col(d)
        .child("Commands")
        .map(|c| c.children_named(name).cloned().collect())
        .unwrap_or_default()
}

fn html_options(trunc: &str) -> Element {
    element!(a::Options [
        element!(a::FilterType = "0"),
        element!(asb::BodyPreference [element!(asb::Type = "2"), element!(asb::TruncationSize = trunc)]),
    ])
}

fn start(phone: &Phone, id: &str) -> String {
    let d = phone.cmd("Sync", &sync_doc("0", id, vec![]));
    assert_eq!(col(&d).child_text("Status"), Some("1"));
    assert!(col(&d).child("Commands").is_none());
    key(&d)
}

fn deliver(phone: &Phone, n: usize) {
    phone.store(|| {
        for i in 0..n {
            MemStore::deliver(
                "INBOX",
                &format!("m{i}"),
                "Lunch?",
                MAIL,
                1_700_000_000_000 + i as i64,
            );
        }
    });
}

#[test]
fn windowed_initial_sync_with_html_bodies() {
    for v in ["14.1", "16.1"] {
        let phone = Phone::new(v);
        let inbox = folder_ids(&phone)["INBOX"].clone();
        let k1 = start(&phone, &inbox);
        deliver(&phone, 3);
        let d = phone.cmd(
            "Sync",
            &sync_doc(
                &k1,
                &inbox,
                vec![element!(a::WindowSize = "2"), html_options("20")],
            ),
        );
        let adds = commands(&d, "Add");
        assert_eq!(adds.len(), 2);
        assert!(col(&d).child("MoreAvailable").is_some());
        let data = adds[0].child("ApplicationData").unwrap();
        assert_eq!(data.child_text("Subject"), Some("Lunch?"));
        assert_eq!(data.child_text("From"), Some("Bob <bob@example.com>"));
        assert_eq!(data.child_text("To"), Some("Alice <alice@example.com>"));
        assert_eq!(data.child_text("DisplayTo"), Some("Alice"));
        assert_eq!(
            data.child_text("DateReceived"),
            Some("2023-11-14T22:13:20.000Z")
        );
        assert_eq!(data.child_text("Read"), Some("0"));
        let body = data.child("Body").unwrap();
        assert_eq!(body.child_text("Type"), Some("2"));
        assert_eq!(body.child_text("Truncated"), Some("1"));
        assert_eq!(body.child_text("Data"), Some("<p>Shall we have <b>"));
        assert_eq!(adds[0].child_text("ServerId"), Some("m0"));
        let k2 = key(&d);
        let d = phone.cmd(
            "Sync",
            &sync_doc(&k2, &inbox, vec![element!(a::WindowSize = "2")]),
        );
        assert_eq!(commands(&d, "Add").len(), 1);
        assert!(col(&d).child("MoreAvailable").is_none());
        let k3 = key(&d);
        // Nothing new: the empty Sync response (HTTP 200, no body).
        let r = phone.post(
            "Sync",
            "",
            &sync_doc(&k3, &inbox, vec![]).to_wbxml().unwrap(),
        );
        assert_eq!(r.status, 200);
        assert!(r.body_bytes().is_empty());
        // Both Wait and HeartbeatInterval: Status 4.
        let mut both = sync_doc(&k3, &inbox, vec![]);
        both.push(element!(a::Wait = "5"));
        both.push(element!(a::HeartbeatInterval = "300"));
        assert_eq!(phone.cmd("Sync", &both).child_text("Status"), Some("4"));
    }
}

#[test]
fn a_lost_answer_is_replayed_and_forged_keys_get_status_3() {
    let phone = Phone::new("14.1");
    let inbox = folder_ids(&phone)["INBOX"].clone();
    let k1 = start(&phone, &inbox);
    deliver(&phone, 2);
    let first = phone.cmd("Sync", &sync_doc(&k1, &inbox, vec![]));
    let k2 = key(&first);
    // The client did not get it and asks again with k1: the same items, the same new key.
    let again = phone.cmd("Sync", &sync_doc(&k1, &inbox, vec![]));
    assert_eq!(key(&again), k2);
    assert_eq!(commands(&again, "Add").len(), 2);
    // k2 works; k1 is now two keys old after another change.
    deliver(&phone, 1);
    let d = phone.cmd("Sync", &sync_doc(&k2, &inbox, vec![]));
    let k3 = key(&d);
    assert_ne!(k3, k2);
    let r = phone.post(
        "Sync",
        "",
        &sync_doc(&k3, &inbox, vec![]).to_wbxml().unwrap(),
    );
    assert_eq!(
        (r.status, r.body_bytes().len()),
        (200, 0),
        "nothing new: empty response"
    );
    for bad in [k1.as_str(), "deadbeef-1", "17", "x"] {
        let d = phone.cmd("Sync", &sync_doc(bad, &inbox, vec![]));
        assert_eq!(col(&d).child_text("Status"), Some("3"), "{bad}");
        assert_eq!(col(&d).child_text("SyncKey"), Some("0"));
    }
    // A collection that is not in the hierarchy: 12.
    let d = phone.cmd("Sync", &sync_doc(&k3, "999", vec![]));
    assert_eq!(col(&d).child_text("Status"), Some("12"));
}

#[test]
fn client_changes_are_applied_and_not_echoed() {
    let phone = Phone::new("16.1");
    let ids = folder_ids(&phone);
    let inbox = ids["INBOX"].clone();
    let k = start(&phone, &inbox);
    deliver(&phone, 3);
    let k = key(&phone.cmd("Sync", &sync_doc(&k, &inbox, vec![])));
    let cmds = element!(a::Commands [
        element!(a::Change [
            element!(a::ServerId = "m0"),
            element!(a::ApplicationData [
                element!(em::Read = "1"),
                element!(em::Flag [element!(em::FlagStatus = "2")]),
            ]),
        ]),
        element!(a::Delete [element!(a::ServerId = "m1")]),
        element!(a::Fetch [element!(a::ServerId = "m2")]),
        element!(a::Change [element!(a::ServerId = "nope"), element!(a::ApplicationData [element!(em::Read = "1")])]),
    ]);
    let d = phone.cmd(
        "Sync",
        &sync_doc(&k, &inbox, vec![html_options("10"), cmds]),
    );
    let responses = col(&d).child("Responses").expect("Responses");
    // The fetch comes whole (no truncation), the unknown item fails with 8, the rest is silent.
    let fetch = responses.child("Fetch").unwrap();
    assert_eq!(fetch.child_text("Status"), Some("1"));
    let body = fetch
        .child("ApplicationData")
        .and_then(|a| a.child("Body"))
        .unwrap();
    assert!(body.child("Truncated").is_none());
    assert_eq!(
        body.child_text("Data"),
        Some("<p>Shall we have <b>lunch</b> at noon?</p>")
    );
    let failed: Vec<_> = responses.children_named("Change").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].child_text("Status"), Some("8"));
    // The store saw the changes: m0 read and flagged, m1 moved to Trash.
    let inbox_items = phone.store(|| MemStore::items("INBOX"));
    let m0 = inbox_items.iter().find(|s| s.summary.id == "m0").unwrap();
    assert!(m0.summary.read && m0.summary.flagged);
    assert!(!inbox_items.iter().any(|s| s.summary.id == "m1"));
    assert_eq!(phone.store(|| MemStore::items("Trash")).len(), 1);
    // The next sync does not echo them back: nothing to say, the empty response.
    let k = key(&d);
    let r = phone.post(
        "Sync",
        "",
        &sync_doc(&k, &inbox, vec![]).to_wbxml().unwrap(),
    );
    assert!(r.body_bytes().is_empty(), "{r:?}");
    // A change made elsewhere does come through, as flags only.
    phone.store(|| {
        use switchboard_sdk::MailConnector;
        let who = switchboard_sdk::Principal::parse("alice@example.com").unwrap();
        MemStore::set_flags(&who, "m2", Some(true), None).unwrap();
    });
    let d = phone.cmd("Sync", &sync_doc(&k, &inbox, vec![]));
    let ch = commands(&d, "Change");
    assert_eq!(ch.len(), 1);
    let data = ch[0].child("ApplicationData").unwrap();
    assert_eq!(data.child_text("Read"), Some("1"));
    assert!(data.child("Body").is_none());
}

#[test]
fn contacts_added_on_the_phone_are_stored_once() {
    let phone = Phone::new("14.1");
    let contacts = folder_ids(&phone)["Contacts"].clone();
    let k = start(&phone, &contacts);
    let add = element!(
        a::Commands[element!(a::Add [
            element!(a::ClientId = "c-1"),
            element!(a::ApplicationData [
                element!(ct::FirstName = "Carol"),
                element!(ct::LastName = "Jones"),
                element!(ct::Email1Address = "carol@example.com"),
            ]),
        ])]
    );
    let d = phone.cmd("Sync", &sync_doc(&k, &contacts, vec![add.clone()]));
    let r = col(&d)
        .child("Responses")
        .and_then(|r| r.child("Add"))
        .unwrap();
    assert_eq!(r.child_text("Status"), Some("1"));
    let sid = r.child_text("ServerId").unwrap().to_string();
    // Replayed (lost answer): same ServerId, nothing created twice.
    let d2 = phone.cmd("Sync", &sync_doc(&k, &contacts, vec![add]));
    let r2 = col(&d2)
        .child("Responses")
        .and_then(|r| r.child("Add"))
        .unwrap();
    assert_eq!(r2.child_text("ServerId"), Some(sid.as_str()));
    let stored = phone.store(|| MemStore::items("Contacts"));
    assert_eq!(stored.len(), 1);
    let vcard = String::from_utf8_lossy(&stored[0].content).to_string();
    assert!(
        vcard.contains("FN:Carol Jones") && vcard.contains("EMAIL;TYPE=INTERNET:carol@example.com")
    );
    // Not echoed as an Add; a contact added elsewhere is sent with its fields.
    phone.store(|| {
        MemStore::deliver(
            "Contacts",
            "v2",
            "",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Dan Smith\r\nN:Smith;Dan;;;\r\nTEL;TYPE=CELL:+1 555 0100\r\nEND:VCARD\r\n",
            0,
        )
    });
    let d = phone.cmd("Sync", &sync_doc(&key(&d2), &contacts, vec![]));
    let adds = commands(&d, "Add");
    assert_eq!(adds.len(), 1, "{d}");
    let data = adds[0].child("ApplicationData").unwrap();
    assert_eq!(data.child_text("LastName"), Some("Smith"));
    assert_eq!(data.child_text("MobilePhoneNumber"), Some("+1 555 0100"));
}

#[test]
fn filter_type_hides_old_mail() {
    let phone = Phone::new("14.1");
    let inbox = folder_ids(&phone)["INBOX"].clone();
    let k = start(&phone, &inbox);
    let now = crate::time::now_ms();
    phone.store(|| {
        MemStore::deliver("INBOX", "old", "old", MAIL, now - 40 * 86_400_000);
        MemStore::deliver("INBOX", "new", "new", MAIL, now);
    });
    let opts = element!(a::Options[element!(a::FilterType = "3")]);
    let d = phone.cmd("Sync", &sync_doc(&k, &inbox, vec![opts]));
    let adds = commands(&d, "Add");
    assert_eq!(adds.len(), 1);
    assert_eq!(adds[0].child_text("ServerId"), Some("new"));
}

#[test]
fn empty_and_partial_requests_use_the_cache() {
    let phone = Phone::new("14.1");
    // No cache yet: 13.
    let r = phone.post("Sync", "", b"");
    let d = decode(&r.body_bytes()).unwrap();
    assert_eq!(d.child_text("Status"), Some("13"));
    let inbox = folder_ids(&phone)["INBOX"].clone();
    let k = start(&phone, &inbox);
    deliver(&phone, 1);
    let _ = phone.cmd("Sync", &sync_doc(&k, &inbox, vec![]));
    deliver(&phone, 1);
    // An empty body repeats the last request with the keys of the last answer.
    let r = phone.post("Sync", "", b"");
    assert_eq!(r.status, 200);
    let d = decode(&r.body_bytes()).unwrap();
    assert_eq!(col(&d).child_text("Status"), Some("1"));
    assert_eq!(commands(&d, "Add").len(), 1, "only the new message: {d}");
}

#[test]
fn wait_bounds_and_parking() {
    let phone = Phone::new("14.1");
    let inbox = folder_ids(&phone)["INBOX"].clone();
    let k = start(&phone, &inbox);
    let mut doc = sync_doc(&k, &inbox, vec![]);
    doc.push(element!(a::HeartbeatInterval = "30"));
    let d = phone.cmd("Sync", &doc);
    assert_eq!(d.child_text("Status"), Some("14"));
    assert_eq!(d.child_text("Limit"), Some("60"));
    let mut doc = sync_doc(&k, &inbox, vec![]);
    doc.push(element!(a::Wait = "90"));
    let d = phone.cmd("Sync", &doc);
    assert_eq!(d.child_text("Limit"), Some("59"));

    // Settle: the first sync from a new key fixes the connector state (a new key).
    let k = key(&phone.cmd("Sync", &sync_doc(&k, &inbox, vec![])));
    let mut doc = sync_doc(&k, &inbox, vec![]);
    doc.push(element!(a::Wait = "5"));
    let q = "Cmd=Sync&User=alice&DeviceId=DEV1&DeviceType=iPhone";
    let key = phone.key.unwrap().to_string();
    let out = phone.host.handle::<Eas>(request(
        "POST",
        q,
        &[("MS-ASProtocolVersion", "14.1"), ("X-MS-PolicyKey", &key)],
        &doc.to_wbxml().unwrap(),
    ));
    let Outcome::Park(p) = out else {
        panic!("expected park: {out:?}")
    };
    assert_eq!(p.timeout_ms, 300_000);
    assert_eq!(p.group.as_deref(), Some("eas/alice@example.com/DEV1"));
    assert!(p
        .watch
        .contains(&"mailbox:alice@example.com/INBOX".to_string()));
    assert_eq!(p.on_timeout.status, 200);
    assert!(p.on_timeout.body_bytes().is_empty());
    deliver(&phone, 1);
    let r = response(
        phone
            .host
            .resume::<Eas>(p.state, vec!["mailbox:alice@example.com/INBOX".into()]),
    );
    let d = decode(&r.body_bytes()).unwrap();
    assert_eq!(commands(&d, "Add").len(), 1);
}

#[test]
fn twelve_one_names_the_class_and_bad_bodies_fail_cleanly() {
    let phone = Phone::new("12.1");
    let inbox = folder_ids(&phone)["INBOX"].clone();
    let d = phone.cmd("Sync", &sync_doc("0", &inbox, vec![]));
    assert_eq!(col(&d).child_text("Class"), Some("Email"));
    // Truncated WBXML on 12.1: HTTP 400.
    let bytes = sync_doc("0", &inbox, vec![]).to_wbxml().unwrap();
    assert_eq!(
        phone.post("Sync", "", &bytes[..bytes.len() - 2]).status,
        400
    );
    // A wrong code page token in the middle: 400 as well, never a panic.
    let mut bad = bytes.clone();
    bad[5] = 0x3f;
    assert_eq!(phone.post("Sync", "", &bad).status, 400);
    // On 14.1: Status 102 / 4.
    let p = Phone::new("14.1");
    let r = p.post("Sync", "", &bytes[..bytes.len() - 2]);
    assert_eq!(
        decode(&r.body_bytes()).unwrap().child_text("Status"),
        Some("102")
    );
    let no_id = element!(
        a::Sync[element!(a::Collections[element!(a::Collection[element!(a::SyncKey = "0")])])]
    );
    assert_eq!(p.cmd("Sync", &no_id).child_text("Status"), Some("4"));
}

#[test]
fn move_items_and_no_echo_in_either_folder() {
    use switchboard_wbxml::tags::moves as mv;
    let phone = Phone::new("14.1");
    let ids = folder_ids(&phone);
    let (inbox, trash) = (ids["INBOX"].clone(), ids["Trash"].clone());
    let ki = start(&phone, &inbox);
    let kt = start(&phone, &trash);
    deliver(&phone, 2);
    let ki = key(&phone.cmd("Sync", &sync_doc(&ki, &inbox, vec![])));
    let kt = key(&phone.cmd("Sync", &sync_doc(&kt, &trash, vec![])));
    let doc = element!(mv::MoveItems [
        element!(mv::Move [element!(mv::SrcMsgId = "m0"), element!(mv::SrcFldId = inbox.as_str()), element!(mv::DstFldId = trash.as_str())]),
        element!(mv::Move [element!(mv::SrcMsgId = "zz"), element!(mv::SrcFldId = inbox.as_str()), element!(mv::DstFldId = trash.as_str())]),
        element!(mv::Move [element!(mv::SrcMsgId = "m1"), element!(mv::SrcFldId = inbox.as_str()), element!(mv::DstFldId = "999")]),
        element!(mv::Move [element!(mv::SrcMsgId = "m1"), element!(mv::SrcFldId = inbox.as_str()), element!(mv::DstFldId = inbox.as_str())]),
    ]);
    let d = phone.cmd("MoveItems", &doc);
    let rs: Vec<_> = d.children_named("Response").collect();
    assert_eq!(rs[0].child_text("Status"), Some("3"));
    assert_eq!(rs[0].child_text("DstMsgId"), Some("Trash-m0"));
    assert_eq!(rs[1].child_text("Status"), Some("1"));
    assert_eq!(rs[2].child_text("Status"), Some("2"));
    assert_eq!(rs[3].child_text("Status"), Some("4"));
    let d = phone.cmd("Sync", &sync_doc(&ki, &inbox, vec![]));
    assert!(col(&d).child("Commands").is_none(), "{d}");
    let d = phone.cmd("Sync", &sync_doc(&kt, &trash, vec![]));
    assert!(col(&d).child("Commands").is_none(), "{d}");
}

#[test]
fn get_item_estimate_counts_without_moving_the_key() {
    use switchboard_wbxml::tags::getitemestimate as ge;
    let phone = Phone::new("16.1");
    let inbox = folder_ids(&phone)["INBOX"].clone();
    let k = start(&phone, &inbox);
    deliver(&phone, 3);
    let est = |key: &str, id: &str| {
        element!(
            ge::GetItemEstimate[element!(
                ge::Collections[element!(ge::Collection [
                    element!(a::SyncKey = key),
                    element!(ge::CollectionId = id),
                    element!(a::Options [element!(a::FilterType = "0")]),
                ])]
            )]
        )
    };
    let d = phone.cmd("GetItemEstimate", &est(&k, &inbox));
    let r = d.child("Response").unwrap();
    assert_eq!(r.child_text("Status"), Some("1"));
    assert_eq!(
        r.child("Collection").and_then(|c| c.child_text("Estimate")),
        Some("3")
    );
    // Still three: the estimate did not consume anything.
    let d = phone.cmd("GetItemEstimate", &est(&k, &inbox));
    assert_eq!(
        d.child("Response")
            .and_then(|r| r.child("Collection"))
            .and_then(|c| c.child_text("Estimate")),
        Some("3")
    );
    for (key, id, code) in [
        ("0", inbox.as_str(), "3"),
        ("bogus", inbox.as_str(), "4"),
        (k.as_str(), "999", "2"),
    ] {
        let d = phone.cmd("GetItemEstimate", &est(key, id));
        assert_eq!(
            d.child("Response").and_then(|r| r.child_text("Status")),
            Some(code),
            "{key} {id}"
        );
    }
    assert_eq!(
        commands(&phone.cmd("Sync", &sync_doc(&k, &inbox, vec![])), "Add").len(),
        3
    );
}

#[test]
fn calendar_events_both_ways() {
    use switchboard_wbxml::tags::calendar as cal;
    let phone = Phone::new("16.1");
    let calendar = folder_ids(&phone)["Calendar"].clone();
    let k = start(&phone, &calendar);
    phone.store(|| {
        MemStore::deliver(
            "Calendar",
            "e1",
            "",
            crate::item::calendar::tests::INVITE,
            1,
        )
    });
    let add = element!(
        a::Commands[element!(a::Add [
            element!(a::ClientId = "n1"),
            element!(a::ApplicationData [
                element!(cal::Timezone = "AAAA"),
                element!(cal::AllDayEvent = "0"),
                element!(cal::StartTime = "20231201T090000Z"),
                element!(cal::EndTime = "20231201T100000Z"),
                element!(cal::Subject = "Dentist"),
                element!(cal::Reminder = "30"),
            ]),
        ])]
    );
    let d = phone.cmd("Sync", &sync_doc(&k, &calendar, vec![add]));
    let adds = commands(&d, "Add");
    assert_eq!(adds.len(), 1, "only the server's event: {d}");
    let data = adds[0].child("ApplicationData").unwrap();
    assert_eq!(data.child_text("StartTime"), Some("20231114T090000Z"));
    assert_eq!(data.child_text("Subject"), Some("Planning, Q4"));
    let r = col(&d)
        .child("Responses")
        .and_then(|r| r.child("Add"))
        .unwrap();
    assert_eq!(r.child_text("Status"), Some("1"));
    let stored = phone.store(|| MemStore::items("Calendar"));
    let dentist = stored
        .iter()
        .map(|s| String::from_utf8_lossy(&s.content).to_string())
        .find(|c| c.contains("SUMMARY:Dentist"))
        .expect("stored");
    assert!(dentist.contains("DTSTART:20231201T090000Z") && dentist.contains("TRIGGER:-PT30M"));
}

#[test]
fn drafts_on_16_1_are_stored_edited_and_sent() {
    use switchboard_wbxml::tags::email2 as em2;
    let phone = Phone::new("16.1");
    let drafts = folder_ids(&phone)["Drafts"].clone();
    let k = start(&phone, &drafts);
    let add = element!(
        a::Commands[element!(a::Add [
            element!(a::ClientId = "d1"),
            element!(a::ApplicationData [
                element!(em::To = "bob@example.com"),
                element!(em::Subject = "Draft"),
                element!(asb::Body [element!(asb::Type = "1"), element!(asb::Data = "first")]),
            ]),
        ])]
    );
    let d = phone.cmd("Sync", &sync_doc(&k, &drafts, vec![add]));
    let sid = col(&d)
        .child("Responses")
        .and_then(|r| r.child("Add"))
        .and_then(|a| a.child_text("ServerId"))
        .unwrap()
        .to_string();
    assert_eq!(phone.store(|| MemStore::items("Drafts")).len(), 1);
    let send = element!(
        a::Commands[element!(a::Change [
            element!(a::ServerId = sid.as_str()),
            element!(a::ApplicationData [
                element!(em::To = "bob@example.com"),
                element!(em::Subject = "Final"),
                element!(asb::Body [element!(asb::Type = "1"), element!(asb::Data = "second")]),
                element!(em2::Send),
            ]),
        ])]
    );
    let d = phone.cmd("Sync", &sync_doc(&key(&d), &drafts, vec![send]));
    assert!(col(&d).child("Responses").is_none(), "{d}");
    let sent = phone.store(MemStore::sent);
    assert_eq!(sent.len(), 1);
    let m = crate::mime::parse(sent[0].as_bytes());
    assert_eq!(m.header("subject"), Some("Final"));
    assert_eq!(m.text.as_deref(), Some("second"));
    assert!(phone.store(|| MemStore::items("Drafts")).is_empty());
    // On 14.1 a draft Add is refused (conversion error), nothing stored.
    let old = Phone::new("14.1");
    let drafts = folder_ids(&old)["Drafts"].clone();
    let k = start(&old, &drafts);
    let add = element!(
        a::Commands[element!(a::Add [element!(a::ClientId = "d1"), element!(a::ApplicationData [element!(em::Subject = "x")])])]
    );
    let d = old.cmd("Sync", &sync_doc(&k, &drafts, vec![add]));
    assert_eq!(
        col(&d)
            .child("Responses")
            .and_then(|r| r.child("Add"))
            .and_then(|a| a.child_text("Status")),
        Some("6")
    );
}

#[test]
fn meetings_made_on_a_16_1_phone_invite_their_attendees() {
    use switchboard_wbxml::tags::calendar as cal;
    let phone = Phone::new("16.1");
    let calendar = folder_ids(&phone)["Calendar"].clone();
    let k = start(&phone, &calendar);
    let add = element!(
        a::Commands[element!(a::Add [
            element!(a::ClientId = "m1"),
            element!(a::ApplicationData [
                element!(cal::StartTime = "20231201T090000Z"),
                element!(cal::EndTime = "20231201T100000Z"),
                element!(cal::Subject = "Review"),
                element!(cal::Attendees [element!(cal::Attendee [
                    element!(cal::Email = "bob@example.com"),
                    element!(cal::Name = "Bob"),
                    element!(cal::AttendeeType = "1"),
                ])]),
            ]),
        ])]
    );
    let d = phone.cmd("Sync", &sync_doc(&k, &calendar, vec![add]));
    assert!(col(&d).child("Responses").is_some());
    let sent = phone.store(MemStore::sent);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains("To: bob@example.com") && sent[0].contains("METHOD:REQUEST"));
    assert!(sent[0].contains("ORGANIZER:mailto:alice@example.com"));
    let stored = phone.store(|| MemStore::items("Calendar"));
    assert!(String::from_utf8_lossy(&stored[0].content).contains("ATTENDEE;CN=\"Bob\""));
}

#[test]
fn filtered_pages_are_skipped_not_answered_empty() {
    let phone = Phone::new("14.1");
    let inbox = folder_ids(&phone)["INBOX"].clone();
    let k = start(&phone, &inbox);
    let now = crate::time::now_ms();
    phone.store(|| {
        for i in 0..30 {
            MemStore::deliver(
                "INBOX",
                &format!("old{i}"),
                "old",
                MAIL,
                now - 60 * 86_400_000,
            );
        }
        MemStore::deliver("INBOX", "fresh", "fresh", MAIL, now);
    });
    let opts = element!(a::Options[element!(a::FilterType = "3")]);
    let d = phone.cmd(
        "Sync",
        &sync_doc(&k, &inbox, vec![element!(a::WindowSize = "5"), opts]),
    );
    let adds = commands(&d, "Add");
    assert_eq!(adds.len(), 1, "{d}");
    assert_eq!(adds[0].child_text("ServerId"), Some("fresh"));
    assert!(col(&d).child("MoreAvailable").is_none());
}

#[test]
fn mail_leaving_the_filter_window_is_soft_deleted() {
    let phone = Phone::new("14.1");
    let inbox = folder_ids(&phone)["INBOX"].clone();
    let k = start(&phone, &inbox);
    let now = crate::time::now_ms();
    phone.store(|| {
        MemStore::deliver("INBOX", "three-days", "a", MAIL, now - 3 * 86_400_000);
        MemStore::deliver("INBOX", "today", "b", MAIL, now);
    });
    let week = element!(a::Options[element!(a::FilterType = "3")]);
    let d = phone.cmd("Sync", &sync_doc(&k, &inbox, vec![week]));
    assert_eq!(commands(&d, "Add").len(), 2);
    // The window narrows to one day: the three-day-old message leaves the phone.
    let day = element!(a::Options[element!(a::FilterType = "1")]);
    let d = phone.cmd("Sync", &sync_doc(&key(&d), &inbox, vec![day]));
    let soft = commands(&d, "SoftDelete");
    assert_eq!(soft.len(), 1, "{d}");
    assert_eq!(soft[0].child_text("ServerId"), Some("three-days"));
    // Once only.
    let day = element!(a::Options[element!(a::FilterType = "1")]);
    let r = phone.post(
        "Sync",
        "",
        &sync_doc(&key(&d), &inbox, vec![day]).to_wbxml().unwrap(),
    );
    assert!(r.body_bytes().is_empty());
}

#[test]
fn calendar_filter_hides_old_single_events() {
    let phone = Phone::new("14.1");
    let calendar = folder_ids(&phone)["Calendar"].clone();
    let k = start(&phone, &calendar);
    let old = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:old\r\nDTSTART:20100101T090000Z\r\nDTEND:20100101T100000Z\r\nSUMMARY:Long ago\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let weekly_old = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:weekly\r\nDTSTART:20100101T090000Z\r\nDTEND:20100101T100000Z\r\nRRULE:FREQ=WEEKLY\r\nSUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    phone.store(|| {
        MemStore::deliver("Calendar", "e-old", "", old, 1);
        MemStore::deliver("Calendar", "e-weekly", "", weekly_old, 1);
    });
    let opts = element!(a::Options[element!(a::FilterType = "5")]);
    let d = phone.cmd("Sync", &sync_doc(&k, &calendar, vec![opts]));
    let adds = commands(&d, "Add");
    assert_eq!(adds.len(), 1, "{d}");
    assert_eq!(adds[0].child_text("ServerId"), Some("e-weekly"));
}

#[test]
fn contact_changes_keep_what_the_phone_never_saw() {
    let phone = Phone::new("14.1");
    let contacts = folder_ids(&phone)["Contacts"].clone();
    let k = start(&phone, &contacts);
    phone.store(|| {
        MemStore::deliver(
            "Contacts",
            "c1",
            "",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1-uid\r\nFN:Eve Old\r\nN:Old;Eve;;;\r\nADR;TYPE=HOME:;;1 Main St;Town;;12345;US\r\nX-SKYPE:eve\r\nEND:VCARD\r\n",
            1,
        )
    });
    let k = key(&phone.cmd("Sync", &sync_doc(&k, &contacts, vec![])));
    let change = element!(
        a::Commands[element!(a::Change [
            element!(a::ServerId = "c1"),
            // A phone sends back every field it shows (the address too), not what it never saw.
        element!(a::ApplicationData [
            element!(ct::FirstName = "Eve"),
            element!(ct::LastName = "New"),
            element!(ct::HomeAddressStreet = "1 Main St"),
            element!(ct::HomeAddressCity = "Town"),
            element!(ct::HomeAddressPostalCode = "12345"),
            element!(ct::HomeAddressCountry = "US"),
        ]),
        ])]
    );
    let d = phone.cmd("Sync", &sync_doc(&k, &contacts, vec![change]));
    assert!(col(&d).child("Responses").is_none(), "{d}");
    let stored = phone.store(|| MemStore::items("Contacts"));
    let v = String::from_utf8_lossy(&stored[0].content).to_string();
    assert!(
        v.contains("N:New;Eve;;;") && v.contains("UID:c1-uid"),
        "{v}"
    );
    assert!(
        v.contains("ADR;TYPE=HOME:;;1 Main St;Town;;12345;US") && v.contains("X-SKYPE:eve"),
        "{v}"
    );
}

#[test]
fn changes_to_contacts_and_events_larger_than_the_parse_cap_are_refused() {
    use switchboard_wbxml::tags::calendar as cal;
    let phone = Phone::new("14.1");
    let ids = folder_ids(&phone);
    let big = "A".repeat(crate::item::PARSE_CAP as usize + 1000);
    for (folder, class_tag, stored) in [
        (
            "Contacts",
            element!(ct::FirstName = "Eve"),
            format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:big\r\nFN:Eve\r\nNOTE:x\r\nX-BLOB:{big}\r\nEND:VCARD\r\n"),
        ),
        (
            "Calendar",
            element!(cal::Subject = "Renamed"),
            format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:big\r\nDTSTART:20231114T090000Z\r\nDTEND:20231114T100000Z\r\nSUMMARY:Old\r\nX-BLOB:{big}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"),
        ),
    ] {
        let id = ids[folder].clone();
        let k = start(&phone, &id);
        phone.store(|| MemStore::deliver(folder, "big1", "", &stored, 1));
        let k = key(&phone.cmd("Sync", &sync_doc(&k, &id, vec![])));
        let change = element!(a::Commands[element!(a::Change [
            element!(a::ServerId = "big1"),
            element!(a::ApplicationData [class_tag]),
        ])]);
        let d = phone.cmd("Sync", &sync_doc(&k, &id, vec![change]));
        let answer = col(&d)
            .child("Responses")
            .and_then(|r| r.child("Change"))
            .unwrap_or_else(|| panic!("no Change response in {d}"));
        assert_eq!(answer.child_text("ServerId"), Some("big1"));
        assert_eq!(answer.child_text("Status"), Some("6"), "{folder}: {d}");
        let items = phone.store(|| MemStore::items(folder));
        let kept = items.iter().find(|i| i.summary.id == "big1").unwrap();
        assert_eq!(kept.content, stored.as_bytes(), "{folder} was rewritten");
    }
}
