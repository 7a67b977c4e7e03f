//! Property tests: the parsers of untrusted text (MIME, HTML, iCalendar, vCard, query
//! values, sync keys) take anything without panicking.

use proptest::prelude::*;

/// Text rich in the characters the parsers split on, plus multi-byte ones.
fn texty() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\r\n".to_string()),
            Just(":".to_string()),
            Just(";".to_string()),
            Just("=?utf-8?B?".to_string()),
            Just("?=".to_string()),
            Just("<style>".to_string()),
            Just("</style>".to_string()),
            Just("<".to_string()),
            Just(">".to_string()),
            Just("BEGIN:VEVENT\r\n".to_string()),
            Just("END:VEVENT\r\n".to_string()),
            Just("BEGIN:VCALENDAR\r\n".to_string()),
            Just("RRULE:FREQ=WEEKLY;BYDAY=".to_string()),
            Just("DTSTART;TZID=X:".to_string()),
            Just("--b\r\n".to_string()),
            Just("Content-Type: multipart/mixed; boundary=b\r\n".to_string()),
            Just("=".to_string()),
            Just("é".to_string()),
            Just("€".to_string()),
            Just("\u{1F600}".to_string()),
            "[a-zA-Z0-9 ]{0,6}",
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn mime_never_panics(s in texty()) {
        let m = crate::mime::parse(s.as_bytes());
        let _ = m.plain();
        let _ = m.html_body();
        let _ = crate::mime::strip_html(&s);
        let _ = crate::mime::decode_words(&s);
        let mut t = s.clone();
        let _ = crate::mime::truncate(&mut t, s.len() / 2);
    }

    #[test]
    fn calendar_and_contacts_never_panic(s in texty()) {
        let _ = crate::item::calendar::application_data(&s, "a@b.c", crate::http::Version::V16_1);
        let _ = crate::item::calendar::meeting_request(&s, crate::http::Version::V14_1);
        let _ = crate::item::calendar::reply(&s, "a@b.c", 1);
        let _ = crate::item::calendar::invitation(&s, "a@b.c");
        let _ = crate::item::contact::application_data(&s);
        let _ = crate::item::task::application_data(&s);
        let _ = crate::time::parse(&s);
    }

    #[test]
    fn query_values_never_panic(s in "[ -~]{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        use base64::Engine as _;
        let _ = crate::http::query::parse(&s, &[]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let _ = crate::http::query::parse(&b64, &[]);
        let _ = crate::synckey::parse(&s);
        let _ = crate::ids::parse_file_reference(&s);
    }
}

mod commands {
    use proptest::prelude::*;
    use switchboard_wbxml::{
        element, tags::airsync as a, tags::airsyncbase as asb, tags::composemail as cm,
        tags::folderhierarchy as fh, tags::getitemestimate as ge, tags::itemoperations as io,
        tags::moves as mv, tags::ping as p, tags::search as s, tags::settings as st, Element,
    };

    use crate::testkit::{MemStore, Phone};

    fn docs(v: &str) -> Vec<(&'static str, Element)> {
        vec![
            (
                "FolderSync",
                element!(fh::FolderSync[element!(fh::SyncKey = v)]),
            ),
            (
                "FolderCreate",
                element!(fh::FolderCreate [
                    element!(fh::SyncKey = v), element!(fh::ParentId = v),
                    element!(fh::DisplayName = v), element!(fh::Type = v),
                ]),
            ),
            (
                "Sync",
                element!(a::Sync [element!(a::Collections [element!(a::Collection [
                element!(a::SyncKey = v), element!(a::CollectionId = v),
                element!(a::WindowSize = v),
                element!(a::Options [element!(a::FilterType = v),
                    element!(asb::BodyPreference [element!(asb::Type = v), element!(asb::TruncationSize = v)])]),
                element!(a::Commands [
                    element!(a::Change [element!(a::ServerId = v), element!(a::ApplicationData)]),
                    element!(a::Delete [element!(a::ServerId = v)]),
                    element!(a::Fetch [element!(a::ServerId = v)]),
                    element!(a::Add [element!(a::ClientId = v), element!(a::ApplicationData)]),
                ]),
            ])]), element!(a::HeartbeatInterval = v)]),
            ),
            (
                "Ping",
                element!(p::Ping [element!(p::HeartbeatInterval = v),
                element!(p::Folders [element!(p::Folder [element!(p::Id = v), element!(p::Class = v)])])]),
            ),
            (
                "GetItemEstimate",
                element!(
                    ge::GetItemEstimate[element!(
                        ge::Collections[element!(ge::Collection [
                element!(a::SyncKey = v), element!(ge::CollectionId = v)])]
                    )]
                ),
            ),
            (
                "ItemOperations",
                element!(io::ItemOperations [
                    element!(io::Fetch [element!(io::Store = "Mailbox"), element!(a::ServerId = v)]),
                    element!(io::Fetch [element!(io::Store = "Mailbox"), element!(asb::FileReference = v),
                        element!(io::Options [element!(io::Range = v)])]),
                    element!(io::EmptyFolderContents [element!(a::CollectionId = v)]),
                ]),
            ),
            (
                "MoveItems",
                element!(
                    mv::MoveItems[element!(mv::Move [
                element!(mv::SrcMsgId = v), element!(mv::SrcFldId = v), element!(mv::DstFldId = v)])]
                ),
            ),
            (
                "Search",
                element!(
                    s::Search[element!(s::Store [element!(s::Name = "Mailbox"),
                element!(s::Query [element!(s::And [element!(s::FreeText = v)])]),
                element!(s::Options [element!(s::Range = v)])])]
                ),
            ),
            (
                "Settings",
                element!(
                    st::Settings[element!(
                        st::Oof[element!(st::Set [
                element!(st::OofState = v), element!(st::StartTime = v)])]
                    )]
                ),
            ),
            (
                "SendMail",
                element!(cm::SendMail [element!(cm::ClientId = v), element!(cm::Mime = v)]),
            ),
            (
                "SmartReply",
                element!(cm::SmartReply [element!(cm::ClientId = v),
                element!(cm::Source [element!(cm::ItemId = v)]), element!(cm::Mime = v)]),
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_field_values_never_panic(v in "[ -~]{0,12}|0|1|[0-9a-f]{8}-[0-9]") {
            let phone = Phone::new("16.1");
            phone.store(|| MemStore::deliver("INBOX", "m1", "s", "Subject: s\r\n\r\nx", 1));
            for (cmd, doc) in docs(&v) {
                let r = phone.post(cmd, "", &doc.to_wbxml().unwrap());
                prop_assert!(matches!(r.status, 200 | 400 | 403 | 404 | 413 | 449 | 500 | 501 | 503), "{} {}", cmd, r.status);
            }
        }
    }
}
