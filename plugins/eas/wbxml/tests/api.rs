//! The builder/accessor API, the streaming encoder's rules, tag lookups and Display.

use switchboard_wbxml::{
    decode, element, encode, page, page_named,
    tags::{airsync, airsyncbase, composemail, email, folderhierarchy as fh, ping, settings},
    Element, EncodeError, Encoder, Node, Tag, HEADER,
};

#[test]
fn tag_lookups_both_ways() {
    assert_eq!(Tag::named("AirSync", "Sync"), Some(airsync::Sync));
    assert_eq!(Tag::named("AirSync:", "Sync"), Some(airsync::Sync));
    assert_eq!(Tag::from_token(17, 0x0A), Some(airsyncbase::Body));
    assert_eq!(airsyncbase::Body.name(), "Body");
    assert_eq!(airsyncbase::Body.namespace(), "AirSyncBase:");
    assert_eq!(airsyncbase::Body.to_string(), "AirSyncBase:Body");
    assert_eq!(Tag::named("AirSync", "Nope"), None);
    assert_eq!(Tag::named("Nope", "Sync"), None);
    assert_eq!(Tag::from_token(0, 0x11), None);
    assert_eq!(Tag::from_token(25, 0x05), None);
    assert_eq!(page(7).unwrap().name(), "FolderHierarchy");
    assert_eq!(page_named("Email2").unwrap().number(), 22);
    assert!(page(3).unwrap().tags().is_empty());
}

#[test]
fn spot_checks_against_the_spec_tables() {
    // A few tokens per page, read off [MS-ASWBXML] 2.1.2.1.x.
    let cases: &[(&str, &str, u8)] = &[
        ("AirSync", "Sync", 0x05),
        ("AirSync", "Class", 0x10),
        ("AirSync", "CollectionId", 0x12),
        ("AirSync", "ApplicationData", 0x1D),
        ("AirSync", "HeartbeatInterval", 0x29),
        ("Contacts", "FileAs", 0x1E),
        ("Contacts", "FirstName", 0x1F),
        ("Contacts", "LastName", 0x29),
        ("Contacts", "WeightedRank", 0x3E),
        ("Email", "DateReceived", 0x0F),
        ("Email", "Cc", 0x17),
        ("Email", "DisallowNewTimeProposal", 0x3F),
        ("Calendar", "UID", 0x28),
        ("Calendar", "ClientUid", 0x3C),
        ("Move", "DstMsgId", 0x0C),
        ("GetItemEstimate", "Estimate", 0x0C),
        ("FolderHierarchy", "DisplayName", 0x07),
        ("FolderHierarchy", "FolderSync", 0x16),
        ("FolderHierarchy", "Count", 0x17),
        ("MeetingResponse", "UserResponse", 0x0C),
        ("MeetingResponse", "SendResponse", 0x12),
        ("Tasks", "Categories", 0x08),
        ("Tasks", "FirstDayOfWeek", 0x26),
        ("ResolveRecipients", "MaxPictures", 0x1D),
        ("ValidateCert", "Status", 0x0A),
        ("Contacts2", "MMS", 0x0E),
        ("Ping", "MaxFolders", 0x0D),
        ("Provision", "EASProvisionDoc", 0x0D),
        ("Provision", "Hash", 0x3A),
        ("Search", "MaxPictures", 0x23),
        ("GAL", "Data", 0x12),
        ("AirSyncBase", "Body", 0x0A),
        ("AirSyncBase", "NativeBodyType", 0x16),
        ("AirSyncBase", "BodyPart", 0x1A),
        ("Settings", "RightsManagementInformation", 0x2B),
        ("DocumentLibrary", "ContentType", 0x0C),
        ("ItemOperations", "MoveAlways", 0x19),
        ("ComposeMail", "AccountId", 0x13),
        ("Email2", "MeetingMessageType", 0x13),
        ("Notes", "Category", 0x09),
        ("RightsManagement", "RemoveRightsManagementProtection", 0x18),
    ];
    for &(p, name, token) in cases {
        let tag = Tag::named(p, name).unwrap_or_else(|| panic!("{p}:{name} missing"));
        assert_eq!(tag.token(), token, "{p}:{name}");
    }
    let sizes: Vec<usize> = switchboard_wbxml::pages()
        .iter()
        .map(|p| p.tags().len())
        .collect();
    assert_eq!(sizes.len(), 25);
}

#[test]
fn accessors() {
    let sync = element!(airsync::Sync [
        element!(airsync::Collections [
            element!(airsync::Collection [
                element!(airsync::SyncKey = "5"),
                element!(airsync::CollectionId = "1"),
                element!(airsync::Status = "1"),
            ]),
            element!(airsync::Collection [
                element!(airsync::SyncKey = "7"),
                element!(airsync::CollectionId = "2"),
                element!(airsyncbase::Status = "3"),
            ]),
        ]),
        element!(airsync::Wait = "5"),
    ]);
    let collections = sync.child("Collections").unwrap();
    let ids: Vec<_> = collections
        .children_named("Collection")
        .filter_map(|c| c.child_text("CollectionId"))
        .collect();
    assert_eq!(ids, ["1", "2"]);
    let second = collections
        .children_tagged(airsync::Collection)
        .nth(1)
        .unwrap();
    assert_eq!(second.child_tag(airsync::Status), None);
    assert_eq!(
        second.child_tag(airsyncbase::Status).unwrap().text(),
        Some("3")
    );
    assert_eq!(second.child_text("Status"), Some("3"));
    assert_eq!(sync.child("Nope"), None);
    assert_eq!(sync.text(), None);
    assert_eq!(Element::new(airsync::GetChanges).text(), Some(""));
    assert!(sync.is(airsync::Sync));

    let data = Element::new(composemail::Mime).with_opaque(b"MIME\0".to_vec());
    assert_eq!(data.opaque(), Some(&b"MIME\0"[..]));
    assert_eq!(data.text(), None);
    let mut built = Element::new(ping::Ping).with_text_child(ping::HeartbeatInterval, "60");
    built.push(Element::new(ping::Folders));
    assert_eq!(built.child_text("HeartbeatInterval"), Some("60"));
    assert_eq!(built.elements().count(), 2);
}

#[test]
fn display_compact_and_escaped() {
    let e = element!(email::Subject = "a < b & c > d\u{1}");
    assert_eq!(
        e.to_string(),
        r#"<Subject xmlns="Email:">a &lt; b &amp; c &gt; d&#x1;</Subject>"#
    );
    let sync = element!(airsync::Sync [
        element!(airsync::GetChanges),
        element!(airsyncbase::Body [element!(airsyncbase::Type = "1")]),
        Node::Opaque((0u8..40).collect()),
    ]);
    assert_eq!(
        sync.to_string(),
        "<Sync xmlns=\"AirSync:\"><GetChanges/><Body xmlns=\"AirSyncBase:\"><Type>1</Type></Body>\
         [opaque 40 bytes: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 \
         18 19 1a 1b 1c 1d 1e 1f …]</Sync>"
    );
}

#[test]
fn encoder_switches_pages_only_when_needed_and_writes_empty_elements_bare() {
    let mut enc = Encoder::new(Vec::new()).unwrap();
    enc.start(settings::Settings).unwrap(); // page 18: switch
    enc.start(settings::DeviceInformation).unwrap();
    enc.start(settings::Set).unwrap();
    enc.text_element(settings::Model, "X").unwrap(); // same page: no switch
    enc.empty_element(settings::OS).unwrap(); // empty: no content bit, no END
    enc.end().unwrap();
    enc.end().unwrap();
    enc.end().unwrap();
    let bytes = enc.finish().unwrap();
    assert_eq!(
        bytes,
        [
            0x03, 0x01, 0x6A, 0x00, // header
            0x00, 0x12, 0x45, // SWITCH_PAGE 18, Settings
            0x56, 0x48, // DeviceInformation, Set
            0x57, 0x03, b'X', 0x00, 0x01, // Model "X"
            0x1A, // OS, empty
            0x01, 0x01, 0x01,
        ]
    );
    assert_eq!(decode(&bytes).unwrap().to_string(), "<Settings xmlns=\"Settings:\"><DeviceInformation><Set><Model>X</Model><OS/></Set></DeviceInformation></Settings>");
}

#[test]
fn encoder_rejects_misuse() {
    let mut enc = Encoder::new(Vec::new()).unwrap();
    assert!(matches!(enc.end(), Err(EncodeError::UnbalancedEnd)));
    assert!(matches!(
        enc.text("x"),
        Err(EncodeError::ContentOutsideRoot)
    ));
    assert!(matches!(
        enc.opaque(b"x"),
        Err(EncodeError::ContentOutsideRoot)
    ));
    enc.start(fh::FolderSync).unwrap();
    assert!(matches!(enc.text("a\0b"), Err(EncodeError::NulInText)));
    enc.start(fh::SyncKey).unwrap();
    assert_eq!(enc.depth(), 2);
    let err = Encoder::new(Vec::new()).unwrap().finish().unwrap_err();
    assert_eq!(err.to_string(), "finish() without a root element");
    let mut open = Encoder::new(Vec::new()).unwrap();
    open.start(fh::FolderSync).unwrap();
    open.start(fh::SyncKey).unwrap();
    assert_eq!(
        open.finish().unwrap_err().to_string(),
        "finish() with 2 element(s) still open, innermost <FolderHierarchy:SyncKey>"
    );
    let mut two = Encoder::new(Vec::new()).unwrap();
    two.empty_element(fh::FolderSync).unwrap();
    assert_eq!(
        two.start(fh::FolderSync).unwrap_err().to_string(),
        "<FolderHierarchy:FolderSync> would be a second root element"
    );
    assert!(matches!(
        encode(&Element::text_element(email::Subject, "nul\0")),
        Err(EncodeError::NulInText)
    ));
}

#[test]
fn encoder_streams_to_any_writer() {
    // A writer that fails: the error surfaces, nothing panics.
    #[derive(Debug)]
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    assert_eq!(
        Encoder::new(Broken).unwrap_err().to_string(),
        "write failed: disk on fire"
    );
    // A large body written incrementally.
    let mut enc = Encoder::new(Vec::new()).unwrap();
    enc.start(airsync::Sync).unwrap();
    enc.start(airsync::Collections).unwrap();
    for i in 0..1000 {
        enc.start(airsync::Collection).unwrap();
        enc.text_element(airsync::CollectionId, &i.to_string())
            .unwrap();
        enc.end().unwrap();
    }
    enc.end().unwrap();
    enc.end().unwrap();
    let bytes = enc.finish().unwrap();
    assert_eq!(&bytes[..4], HEADER);
    let tree = decode(&bytes).unwrap();
    assert_eq!(tree.child("Collections").unwrap().elements().count(), 1000);
}
