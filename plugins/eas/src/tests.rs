//! End-to-end tests of the plugin against the mock host: requests in, responses out.

use super::*;
use switchboard_sdk::mock::MockHost;
use switchboard_sdk::Principal;

pub(crate) fn request(method: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
    Request {
        method: method.into(),
        path: "/Microsoft-Server-ActiveSync".into(),
        query: query.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect(),
        principal: Principal::parse("alice@example.com"),
        peer: "192.0.2.1:40000".into(),
        body: body.to_vec(),
        body_complete: true,
    }
}

pub(crate) fn response(o: Outcome) -> Response {
    match o {
        Outcome::Reply(r) => r,
        Outcome::Park(p) => panic!("parked: {p:?}"),
    }
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn options_needs_no_query() {
    let r = response(MockHost::new().handle::<Eas>(request("OPTIONS", "", &[], b"")));
    assert_eq!(r.status, 200);
    assert_eq!(
        header(&r, "ms-asprotocolversions"),
        Some("12.1,14.0,14.1,16.0,16.1")
    );
}

#[test]
fn http_level_refusals() {
    let host = MockHost::new();
    let mut anon = request("POST", "Cmd=Sync&DeviceId=A&DeviceType=x", &[], b"");
    anon.principal = None;
    assert_eq!(response(host.handle::<Eas>(anon)).status, 401);
    let r = response(host.handle::<Eas>(request("GET", "", &[], b"")));
    assert_eq!(r.status, 405);
    let r = response(host.handle::<Eas>(request(
        "POST",
        "Cmd=Nope&DeviceId=A&DeviceType=x",
        &[],
        b"",
    )));
    assert_eq!(r.status, 400);
    let r = response(host.handle::<Eas>(request(
        "POST",
        "Cmd=Sync&DeviceId=A&DeviceType=x",
        &[("MS-ASProtocolVersion", "2.5")],
        b"",
    )));
    assert_eq!(r.status, 400);
    assert_eq!(
        header(&r, "ms-asprotocolversions"),
        Some("12.1,14.0,14.1,16.0,16.1")
    );
}

#[test]
fn unprovisioned_12_1_device_gets_449() {
    let r = response(MockHost::new().handle::<Eas>(request(
        "POST",
        "Cmd=FolderSync&DeviceId=A&DeviceType=x",
        &[("MS-ASProtocolVersion", "12.1")],
        b"",
    )));
    assert_eq!(r.status, 449);
}

#[test]
fn redirect_setting_answers_451() {
    let host = MockHost::new().with_config(
        "redirect_url",
        "https://mail2.example.com/Microsoft-Server-ActiveSync",
    );
    let r = response(host.handle::<Eas>(request(
        "POST",
        "Cmd=Sync&DeviceId=A&DeviceType=x",
        &[],
        b"",
    )));
    assert_eq!(r.status, 451);
    assert_eq!(
        header(&r, "x-ms-location"),
        Some("https://mail2.example.com/Microsoft-Server-ActiveSync")
    );
}

#[test]
fn wiped_device_is_blocked() {
    let host = MockHost::new();
    host.run(|| switchboard_sdk::host::kv::set("wipe/alice@example.com/A", b"done").unwrap());
    let r = response(host.handle::<Eas>(request(
        "POST",
        "Cmd=Provision&DeviceId=A&DeviceType=x",
        &[("MS-ASProtocolVersion", "14.1")],
        b"",
    )));
    assert_eq!(r.status, 403);
}

/// Every command, every version, hostile bodies: an HTTP status or an EAS status, never a
/// panic (a panic fails this test).
#[test]
fn hostile_bodies_for_every_command() {
    use switchboard_wbxml::{element, tags::airsync as a, tags::folderhierarchy as fh};
    let valid = element!(
        a::Sync[element!(
            a::Collections[element!(a::Collection [
                element!(a::SyncKey = "0"),
                element!(a::CollectionId = "1"),
                element!(a::Commands [element!(a::Fetch [element!(a::ServerId = "x")])]),
            ])]
        )]
    )
    .to_wbxml()
    .unwrap();
    let other = element!(fh::FolderSync[element!(fh::SyncKey = "0")])
        .to_wbxml()
        .unwrap();
    let mut bodies: Vec<Vec<u8>> = vec![
        vec![],
        b"\x00\x00\x00".to_vec(),
        b"not wbxml at all".to_vec(),
        valid[..valid.len() / 2].to_vec(),
        other,
        vec![0x03, 0x01, 0x6a, 0x00, 0x00, 0x1f, 0x45, 0x01],
    ];
    // Deterministic mutations of a valid document.
    let mut seed: u32 = 0x1234_5678;
    for _ in 0..24 {
        let mut b = valid.clone();
        for _ in 0..3 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let i = (seed as usize >> 8) % b.len();
            b[i] = (seed >> 24) as u8;
        }
        bodies.push(b);
    }
    for version in ["12.1", "14.1", "16.1"] {
        let phone = crate::testkit::Phone::new(version);
        for cmd in http::command::SERVED {
            for body in &bodies {
                let r = phone.post(cmd.name(), "", body);
                assert!(
                    matches!(
                        r.status,
                        200 | 400 | 403 | 404 | 413 | 449 | 500 | 501 | 503
                    ),
                    "{version} {} -> {}",
                    cmd.name(),
                    r.status
                );
            }
        }
    }
}

/// The base64 query form carries version, device and policy key: a provisioned device works
/// through it exactly as through the plain form.
#[test]
fn base64_query_end_to_end() {
    use base64::Engine as _;
    use switchboard_wbxml::{decode, element, tags::folderhierarchy as fh};
    let phone = crate::testkit::Phone::new("16.1");
    let key = phone.key.unwrap();
    let mut q = vec![161u8, 9, 0x09, 0x04, 4, b'D', b'E', b'V', b'1', 4];
    q.extend_from_slice(&key.to_le_bytes());
    q.push(6);
    q.extend_from_slice(b"iPhone");
    let query = base64::engine::general_purpose::STANDARD.encode(&q);
    let body = element!(fh::FolderSync[element!(fh::SyncKey = "0")])
        .to_wbxml()
        .unwrap();
    let r = response(
        phone
            .host
            .handle::<Eas>(request("POST", &query, &[], &body)),
    );
    assert_eq!(r.status, 200);
    let d = decode(&r.body_bytes()).unwrap();
    assert_eq!(d.child_text("Status"), Some("1"));
    // The same with a stale key in the encoded field: 144.
    let mut stale = q.clone();
    stale[10] ^= 0xff;
    let query = base64::engine::general_purpose::STANDARD.encode(&stale);
    let r = response(
        phone
            .host
            .handle::<Eas>(request("POST", &query, &[], &body)),
    );
    assert_eq!(
        decode(&r.body_bytes()).unwrap().child_text("Status"),
        Some("144")
    );
}

#[test]
fn devices_are_recorded_even_without_provisioning() {
    let host = MockHost::new().with_config("require_provisioning", "false");
    let r = response(host.handle::<Eas>(request(
        "POST",
        "Cmd=Settings&DeviceId=NOPROV&DeviceType=Android",
        &[("MS-ASProtocolVersion", "14.1")],
        b"",
    )));
    assert_eq!(r.status, 200);
    let rec: state::Device =
        serde_json::from_slice(&host.kv_get("dev/alice@example.com/NOPROV").unwrap()).unwrap();
    assert_eq!(rec.device_type, "Android");
    assert_eq!(rec.policy_key, None);
}

/// Byte-level requests and answers, in the shapes of the [MS-ASCMD] examples, for 14.1 and 16.1.
#[test]
fn spec_shaped_bytes_ping_and_sync() {
    for version in ["14.1", "16.1"] {
        let phone = crate::testkit::Phone::new(version);
        // FolderSync first so folder ids exist.
        let fs = [
            0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, b'0', 0x00, 0x01, 0x01,
        ];
        assert_eq!(phone.post("FolderSync", "", &fs).status, 200);

        // <Ping><HeartbeatInterval>30</HeartbeatInterval><Folders><Folder><Id>1</Id>
        // <Class>Email</Class></Folder></Folders></Ping>: out of range.
        let ping = |hb: &[u8]| {
            let mut b = vec![0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x48, 0x03];
            b.extend_from_slice(hb);
            b.extend_from_slice(&[
                0x00, 0x01, 0x49, 0x4A, 0x4B, 0x03, b'1', 0x00, 0x01, 0x4C, 0x03,
            ]);
            b.extend_from_slice(b"Email");
            b.extend_from_slice(&[0x00, 0x01, 0x01, 0x01, 0x01]);
            b
        };
        let r = phone.post("Ping", "", &ping(b"30"));
        // <Ping><Status>5</Status><HeartbeatInterval>60</HeartbeatInterval></Ping>
        assert_eq!(
            r.body_bytes(),
            [
                0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x47, 0x03, b'5', 0x00, 0x01, 0x48, 0x03,
                b'6', b'0', 0x00, 0x01, 0x01
            ]
        );
        // In range: parked.
        let key = phone.key.unwrap().to_string();
        let out = phone.host.handle::<Eas>(request(
            "POST",
            "Cmd=Ping&User=alice&DeviceId=DEV1&DeviceType=iPhone",
            &[("MS-ASProtocolVersion", version), ("X-MS-PolicyKey", &key)],
            &ping(b"480"),
        ));
        assert!(matches!(out, Outcome::Park(_)), "{out:?}");

        // <Sync><Collections><Collection><SyncKey>0</SyncKey><CollectionId>1</CollectionId>
        // </Collection></Collections></Sync>
        let sync = [
            0x03, 0x01, 0x6A, 0x00, 0x45, 0x5C, 0x4F, 0x4B, 0x03, b'0', 0x00, 0x01, 0x52, 0x03,
            b'1', 0x00, 0x01, 0x01, 0x01, 0x01,
        ];
        let body = phone.post("Sync", "", &sync).body_bytes();
        // <Sync><Collections><Collection><SyncKey>…</SyncKey><CollectionId>1</CollectionId>
        // <Status>1</Status></Collection></Collections></Sync>
        assert_eq!(
            &body[..9],
            &[0x03, 0x01, 0x6A, 0x00, 0x45, 0x5C, 0x4F, 0x4B, 0x03]
        );
        assert_eq!(
            &body[body.len() - 15..],
            &[
                0x00, 0x01, 0x52, 0x03, b'1', 0x00, 0x01, 0x4E, 0x03, b'1', 0x00, 0x01, 0x01, 0x01,
                0x01
            ][..]
        );
    }
}

#[test]
fn wrong_code_page_is_invalid_wbxml() {
    // SWITCH_PAGE to page 31 (no such ActiveSync page), then a tag.
    let body = [0x03, 0x01, 0x6A, 0x00, 0x00, 0x1F, 0x45, 0x01];
    let p = crate::testkit::Phone::new("14.1");
    let r = p.post("FolderSync", "", &body);
    let d = switchboard_wbxml::decode(&r.body_bytes()).unwrap();
    assert_eq!(
        d.to_string(),
        r#"<FolderSync xmlns="FolderHierarchy:"><Status>102</Status></FolderSync>"#
    );
    let p = crate::testkit::Phone::new("12.1");
    assert_eq!(p.post("FolderSync", "", &body).status, 400);
    // A known page but a token it does not define (AirSync 0x11 is unassigned).
    let body = [0x03, 0x01, 0x6A, 0x00, 0x00, 0x00, 0x51, 0x01];
    assert_eq!(p.post("Sync", "", &body).status, 400);
}
