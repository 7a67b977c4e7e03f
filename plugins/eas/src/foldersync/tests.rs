//! FolderSync and folder changes against the in-memory store.

use switchboard_sdk::FolderKind;
use switchboard_wbxml::{element, tags::folderhierarchy as fh, Element};

use crate::testkit::{MemStore, Phone};

fn folder_sync(key: &str) -> Element {
    element!(fh::FolderSync[element!(fh::SyncKey = key)])
}

fn adds(d: &Element) -> Vec<(String, String, String, String)> {
    d.child("Changes")
        .map(|c| {
            c.children_named("Add")
                .map(|a| {
                    let t = |n| a.child_text(n).unwrap_or_default().to_string();
                    (t("ServerId"), t("ParentId"), t("DisplayName"), t("Type"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn key(d: &Element) -> String {
    d.child_text("SyncKey").unwrap().to_string()
}

#[test]
fn initial_sync_lists_every_folder_with_types() {
    for v in ["14.1", "16.1"] {
        let phone = Phone::new(v);
        let d = phone.cmd("FolderSync", &folder_sync("0"));
        assert_eq!(d.child_text("Status"), Some("1"));
        let a = adds(&d);
        assert_eq!(a.len(), 6);
        let ty = |name: &str| a.iter().find(|x| x.2 == name).unwrap().3.clone();
        assert_eq!(ty("INBOX"), "2");
        assert_eq!(ty("Drafts"), "3");
        assert_eq!(ty("Trash"), "4");
        assert_eq!(ty("Sent"), "5");
        assert_eq!(ty("Calendar"), "8");
        assert_eq!(ty("Contacts"), "9");
        assert!(a.iter().all(|x| x.1 == "0"));
        assert_eq!(
            d.child("Changes").and_then(|c| c.child_text("Count")),
            Some("6")
        );
        // Nothing changed: same key, Count 0.
        let k = key(&d);
        let d2 = phone.cmd("FolderSync", &folder_sync(&k));
        assert_eq!(key(&d2), k);
        assert_eq!(
            d2.child("Changes").and_then(|c| c.child_text("Count")),
            Some("0")
        );
    }
}

#[test]
fn incremental_changes_and_replay_of_a_lost_answer() {
    let phone = Phone::new("14.1");
    let k1 = key(&phone.cmd("FolderSync", &folder_sync("0")));
    phone.store(|| MemStore::add_folder("INBOX/Projects", "INBOX", FolderKind::UserMail));
    let d = phone.cmd("FolderSync", &folder_sync(&k1));
    let k2 = key(&d);
    assert_ne!(k1, k2);
    let a = adds(&d);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].2, "Projects");
    assert_eq!(a[0].3, "12");
    let inbox_id = adds(&phone.cmd("FolderSync", &folder_sync("0")))
        .into_iter()
        .find(|x| x.2 == "INBOX")
        .unwrap()
        .0;
    assert_eq!(a[0].1, inbox_id, "child of INBOX");
    // Note: the FolderSync 0 above reset the state; start again from there.
    let k = key(&phone.cmd("FolderSync", &folder_sync("0")));
    phone.store(|| MemStore::add_folder("Archive", "", FolderKind::UserMail));
    let d = phone.cmd("FolderSync", &folder_sync(&k));
    let next = key(&d);
    // The answer was lost: the client asks again with the old key and gets the same change.
    let again = phone.cmd("FolderSync", &folder_sync(&k));
    assert_eq!(adds(&again), adds(&d));
    assert_eq!(key(&again), next);
    // Moving on with the new key: nothing more.
    let d = phone.cmd("FolderSync", &folder_sync(&next));
    assert_eq!(
        d.child("Changes").and_then(|c| c.child_text("Count")),
        Some("0")
    );
}

#[test]
fn forged_and_stale_keys_get_status_9() {
    let phone = Phone::new("16.1");
    for k in ["1", "deadbeef-1", "garbage", ""] {
        let d = phone.cmd("FolderSync", &folder_sync(k));
        assert_eq!(d.child_text("Status"), Some("9"), "{k}");
        assert!(d.child("SyncKey").is_none());
    }
    let k1 = key(&phone.cmd("FolderSync", &folder_sync("0")));
    phone.store(|| MemStore::add_folder("A", "", FolderKind::UserMail));
    let k2 = key(&phone.cmd("FolderSync", &folder_sync(&k1)));
    phone.store(|| MemStore::add_folder("B", "", FolderKind::UserMail));
    let _k3 = key(&phone.cmd("FolderSync", &folder_sync(&k2)));
    // k1 is two answers old now.
    let d = phone.cmd("FolderSync", &folder_sync(&k1));
    assert_eq!(d.child_text("Status"), Some("9"));
}

#[test]
fn create_update_delete_folders() {
    let phone = Phone::new("14.1");
    let k = key(&phone.cmd("FolderSync", &folder_sync("0")));
    let d = phone.cmd(
        "FolderCreate",
        &element!(fh::FolderCreate [
            element!(fh::SyncKey = k.as_str()),
            element!(fh::ParentId = "0"),
            element!(fh::DisplayName = "Receipts"),
            element!(fh::Type = "12"),
        ]),
    );
    assert_eq!(d.child_text("Status"), Some("1"), "{d}");
    let id = d.child_text("ServerId").unwrap().to_string();
    let k = key(&d);
    // The device made the change itself: FolderSync does not echo it.
    let d = phone.cmd("FolderSync", &folder_sync(&k));
    assert_eq!(
        d.child("Changes").and_then(|c| c.child_text("Count")),
        Some("0")
    );
    let k = key(&d);
    // Same name again: exists.
    let dup = phone.cmd(
        "FolderCreate",
        &element!(fh::FolderCreate [
            element!(fh::SyncKey = k.as_str()),
            element!(fh::ParentId = "0"),
            element!(fh::DisplayName = "Receipts"),
            element!(fh::Type = "12"),
        ]),
    );
    assert_eq!(dup.child_text("Status"), Some("2"));
    // Rename.
    let d = phone.cmd(
        "FolderUpdate",
        &element!(fh::FolderUpdate [
            element!(fh::SyncKey = k.as_str()),
            element!(fh::ServerId = id.as_str()),
            element!(fh::ParentId = "0"),
            element!(fh::DisplayName = "Bills"),
        ]),
    );
    assert_eq!(d.child_text("Status"), Some("1"), "{d}");
    let k = key(&d);
    assert!(phone
        .store(MemStore::list)
        .iter()
        .any(|f| f.name == "Bills"));
    // Default folders cannot be renamed or deleted.
    let inbox = adds(&phone.cmd("FolderSync", &folder_sync("0")))
        .into_iter()
        .find(|x| x.2 == "INBOX")
        .unwrap()
        .0;
    let _ = k;
    let k = key(&phone.cmd("FolderSync", &folder_sync("0")));
    let d = phone.cmd(
        "FolderDelete",
        &element!(fh::FolderDelete [element!(fh::SyncKey = k.as_str()), element!(fh::ServerId = inbox.as_str())]),
    );
    assert_eq!(d.child_text("Status"), Some("3"));
    let d = phone.cmd(
        "FolderDelete",
        &element!(fh::FolderDelete [element!(fh::SyncKey = k.as_str()), element!(fh::ServerId = id.as_str())]),
    );
    assert_eq!(d.child_text("Status"), Some("1"));
    let k2 = key(&d);
    let d = phone.cmd("FolderSync", &folder_sync(&k2));
    assert_eq!(
        d.child("Changes").and_then(|c| c.child_text("Count")),
        Some("0")
    );
    // A stale key for a mutation: 9; an unknown folder: 4; a bad type: 12.
    let d = phone.cmd(
        "FolderDelete",
        &element!(fh::FolderDelete [element!(fh::SyncKey = k.as_str()), element!(fh::ServerId = id.as_str())]),
    );
    assert_eq!(d.child_text("Status"), Some("9"));
    let d = phone.cmd(
        "FolderDelete",
        &element!(fh::FolderDelete [element!(fh::SyncKey = k2.as_str()), element!(fh::ServerId = "999")]),
    );
    assert_eq!(d.child_text("Status"), Some("4"));
    let d = phone.cmd(
        "FolderCreate",
        &element!(fh::FolderCreate [
            element!(fh::SyncKey = k2.as_str()),
            element!(fh::ParentId = "0"),
            element!(fh::DisplayName = "X"),
            element!(fh::Type = "2"),
        ]),
    );
    assert_eq!(d.child_text("Status"), Some("12"));
}

#[test]
fn backend_down_is_status_6_and_bad_body_is_102() {
    let phone = Phone::new("14.1");
    let broken = switchboard_sdk::mock::MockHost::new();
    // A host with no connector: every mailstore call is `unavailable`.
    let key = crate::provision::tests::provision(&broken, "14.1");
    let p = Phone {
        host: broken,
        store: switchboard_sdk::mock::MockHost::new(),
        version: "14.1",
        key: Some(key),
    };
    let d = p.cmd("FolderSync", &folder_sync("0"));
    assert_eq!(d.child_text("Status"), Some("6"));
    let r = phone.post(
        "FolderSync",
        "",
        &[0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56],
    );
    let d = switchboard_wbxml::decode(&r.body_bytes()).unwrap();
    assert_eq!(d.child_text("Status"), Some("102"));
}

#[test]
fn spec_bytes_folder_sync_request() {
    // <FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync> as a phone sends
    // it: WBXML 1.3, public id 1, UTF-8, no string table, page 7, tags with content, STR_I.
    let bytes = [
        0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, b'0', 0x00, 0x01, 0x01,
    ];
    for v in ["14.1", "16.1"] {
        let phone = Phone::new(v);
        let r = phone.post("FolderSync", "", &bytes);
        assert_eq!(r.status, 200);
        let body = r.body_bytes();
        // The answer starts with the same header and page, then FolderSync / Status 1.
        assert_eq!(
            &body[..8],
            &[0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x4C]
        );
        assert_eq!(&body[8..11], &[0x03, b'1', 0x00]);
    }
}
