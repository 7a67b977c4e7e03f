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
