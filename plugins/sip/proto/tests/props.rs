//! Property tests: build → serialize → parse is the identity; parsing arbitrary or mutated
//! bytes never panics, and whatever parses re-serializes to the same model.

use std::borrow::Cow;

use proptest::prelude::*;
use switchboard_sip_proto::pidf::{Basic, Note, Presence, Tuple};
use switchboard_sip_proto::{Message, Method};

const SEED: &[u8] = b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n\
TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
MaX-fOrWaRdS: 0068\r\nCall-ID: wsinv.ndaksdj@192.0.2.1\r\nContent-Length   : 4\r\n\
cseq: 0009\r\n  INVITE\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n\
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n\
  secondparam ; q = 0.33\r\nv: SIP/2.0/TCP [2001:db8::1]:5061;rport;received=192.0.2.1, \
SIP/2.0/UDP a.example.com;branch=z9hG4bKx\r\nRoute: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Event: presence;id=1\r\nSubscription-State: active;expires=60\r\nExpires: 60\r\n\
Content-Type: application/pidf+xml\r\nSupported: path, outbound\r\nAllow: INVITE, MESSAGE\r\n\
Accept: text/plain, */*\r\nSIP-If-Match: abc\r\n\r\nbody";

/// Run every accessor; none may panic (errors are fine).
fn exercise(m: &Message<'_>) {
    let _ = m.validate_request();
    let _ = m.validate_response();
    let _ = m.request_uri().map(|u| u.to_string());
    for v in m.via().flatten() {
        let _ = (v.branch(), v.received(), v.rport(), v.host.to_string());
    }
    if let Ok(f) = m.from() {
        if let Some(s) = f.uri.as_sip() {
            let _ = (s.aor(), s.equivalent(s), s.user_decoded(), s.to_string());
        }
    }
    let _ = m.to();
    let _ = m.call_id();
    let _ = m.cseq();
    let _ = m.max_forwards();
    if let Ok(cs) = m.contacts() {
        for c in cs.iter().filter_map(|c| c.addr()) {
            let _ = (c.expires(), c.q(), c.sip_instance(), c.reg_id(), c.tag());
        }
    }
    let _ = (
        m.expires(),
        m.min_expires(),
        m.content_type(),
        m.content_length(),
    );
    let _ = (
        m.event(),
        m.subscription_state(),
        m.sip_etag(),
        m.sip_if_match(),
    );
    let _ = (m.route(), m.record_route(), m.path());
    let _ = (m.supported(), m.require(), m.allow(), m.accept());
    let _ = Message::response_to(m, 200, "OK");
    let _ = Presence::parse(m.body());
}

fn strip(m: &Message<'_>) -> Message<'static> {
    let mut m = m.clone().into_owned();
    m.remove_headers("Content-Length");
    m
}

/// Whatever parses serializes to something that parses to the same model.
fn assert_reparses(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(m) = Message::parse(bytes) {
        exercise(&m);
        let out = m.to_bytes();
        let again = Message::parse(&out);
        prop_assert!(
            again.is_ok(),
            "re-parse failed: {:?}\n{}",
            again,
            String::from_utf8_lossy(&out)
        );
        let again = again.unwrap();
        prop_assert_eq!(strip(&m), strip(&again));
        prop_assert_eq!(again.to_bytes(), out);
    }
    Ok(())
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,8}".prop_filter("no bare %-escape issues", |_| true)
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,6}[a-z0-9](\\.[a-z][a-z0-9]{0,6}){0,2}",
        (0u8..=255, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("[2001:db8::7]".to_owned()),
    ]
}

fn user() -> impl Strategy<Value = String> {
    "([a-zA-Z0-9_.!~*'()&=+$,;?/-]|%[0-9A-F]{2}){1,10}"
}

fn sip_uri() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        prop::option::of(user()),
        host(),
        prop::option::of(1u16..),
        prop::collection::vec(
            (
                "[a-z][a-z0-9-]{0,6}",
                prop::option::of("[a-zA-Z0-9.-]{1,6}"),
            ),
            0..3,
        ),
    )
        .prop_map(|(secure, user, host, port, params)| {
            let mut s = String::from(if secure { "sips:" } else { "sip:" });
            if let Some(u) = user {
                s.push_str(&u);
                s.push('@');
            }
            s.push_str(&host);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            for (n, v) in params {
                s.push(';');
                s.push_str(&n);
                if let Some(v) = v {
                    s.push('=');
                    s.push_str(&v);
                }
            }
            s
        })
}

fn display() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        "[A-Za-z][A-Za-z0-9]{0,8}( [A-Za-z0-9]{1,8}){0,2}",
        // Quoted, with escaped quotes and backslashes and non-ASCII text.
        "([a-zA-Z ,;<>]|\\\\\"|\\\\\\\\|é|日本){0,12}".prop_map(|s| format!("\"{s}\"")),
    ])
}

fn name_addr(tag: Option<String>) -> impl Strategy<Value = String> {
    (display(), sip_uri()).prop_map(move |(d, u)| {
        let mut s = match d {
            Some(d) => format!("{d} <{u}>"),
            None => format!("<{u}>"),
        };
        if let Some(t) = &tag {
            s.push_str(";tag=");
            s.push_str(t);
        }
        s
    })
}

fn method() -> impl Strategy<Value = Method<'static>> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Register),
        Just(Method::Message),
        Just(Method::Subscribe),
        Just(Method::Notify),
        Just(Method::Publish),
        Just(Method::Options),
        "[A-Z][A-Z0-9_-]{2,10}".prop_map(|m| Method::parse(&m).unwrap().into_owned()),
    ]
}

#[derive(Debug, Clone)]
struct Spec {
    method: Method<'static>,
    uri: String,
    response: Option<(u16, String)>,
    vias: Vec<(String, String, Option<u16>, String)>,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
    extra: Vec<(String, String)>,
    contacts: Vec<String>,
    body: Vec<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        method(),
        sip_uri(),
        prop::option::of((100u16..=699, "[A-Za-z][A-Za-z é]{0,15}[a-z]")),
        prop::collection::vec(
            (
                prop_oneof!["UDP", "TCP", "TLS", "WS"],
                host(),
                prop::option::of(1u16..),
                token(),
            ),
            1..4,
        ),
        (token(), name_addr(None)),
        (
            name_addr(None),
            "[a-zA-Z0-9.-]{1,12}(@[a-z0-9.]{1,10})?",
            0u32..(1 << 31),
        ),
        prop::collection::vec(("X-[A-Za-z0-9-]{1,8}", "[!-~]([ -~]{0,20}[!-~])?"), 0..4),
        prop::collection::vec(name_addr(None), 0..3),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(
                method,
                uri,
                response,
                vias,
                (tag, from),
                (to, call_id, cseq),
                extra,
                contacts,
                body,
            )| Spec {
                method,
                uri,
                response,
                vias,
                from: format!("{from};tag={tag}"),
                to,
                call_id,
                cseq,
                extra,
                contacts,
                body,
            },
        )
}

fn build(s: &Spec) -> Message<'_> {
    let mut m = match &s.response {
        None => Message::request(s.method.clone(), s.uri.as_str()).unwrap(),
        Some((code, reason)) => Message::response(*code, reason.as_str()).unwrap(),
    };
    for (t, h, p, b) in &s.vias {
        let port = p.map(|p| format!(":{p}")).unwrap_or_default();
        m.push_header("Via", format!("SIP/2.0/{t} {h}{port};branch=z9hG4bK{b}"))
            .unwrap();
    }
    m.push_header("From", s.from.as_str()).unwrap();
    m.push_header("To", s.to.as_str()).unwrap();
    m.push_header("Call-ID", s.call_id.as_str()).unwrap();
    m.push_header("CSeq", format!("{} {}", s.cseq, s.method))
        .unwrap();
    m.push_header("Max-Forwards", "70").unwrap();
    for (n, v) in &s.extra {
        m.push_header(n.as_str(), v.as_str()).unwrap();
    }
    if !s.contacts.is_empty() {
        m.push_header("Contact", s.contacts.join(", ")).unwrap();
    }
    m.set_body(Some("application/octet-stream"), Cow::Borrowed(&s.body[..]))
        .unwrap();
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn build_serialize_parse_is_identity(s in spec()) {
        let built = build(&s);
        let bytes = built.to_bytes();
        let parsed = Message::parse(&bytes);
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, String::from_utf8_lossy(&bytes));
        let parsed = parsed.unwrap();
        prop_assert_eq!(&parsed, &built);
        prop_assert_eq!(&parsed.to_bytes(), &bytes);
        // And the typed view sees what was put in.
        if s.response.is_none() {
            prop_assert_eq!(parsed.validate_request(), Ok(()));
        } else {
            prop_assert_eq!(parsed.validate_response(), Ok(()));
        }
        prop_assert_eq!(parsed.via().count(), s.vias.len());
        prop_assert_eq!(parsed.contacts().unwrap().len(), s.contacts.len());
        prop_assert_eq!(parsed.cseq().unwrap().seq, s.cseq);
        prop_assert_eq!(parsed.body(), &s.body[..]);
        let from = parsed.from().unwrap();
        prop_assert!(from.tag().is_some());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        assert_reparses(&bytes)?;
    }

    #[test]
    fn sip_like_lines_never_panic(lines in prop::collection::vec(
        prop_oneof![
            Just("INVITE sip:a@b.example.com SIP/2.0".to_owned()),
            Just("SIP/2.0 200 OK".to_owned()),
            Just(String::new()),
            "[A-Za-z-]{1,12} ?: ?[ -~]{0,40}",
            "[ \t][ -~]{0,20}",
            "(v|m|Via|Contact|Route|To|From|CSeq|Max-Forwards|Content-Length|l|Event|Expires): ?[ -~]{0,40}",
        ],
        1..12,
    ), crlf in any::<bool>()) {
        let sep = if crlf { "\r\n" } else { "\n" };
        let text = lines.join(sep) + sep + sep;
        assert_reparses(text.as_bytes())?;
    }

    #[test]
    fn mutated_messages_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut bytes = SEED.to_vec();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        assert_reparses(&bytes)?;
    }

    #[test]
    fn pidf_build_parse_is_identity(
        entity in "pres:[a-z]{1,8}@[a-z]{1,8}\\.example",
        tuples in prop::collection::vec(
            ("[a-z][a-z0-9]{0,8}", prop::option::of(any::<bool>()), prop::option::of("[ -~]{1,20}"),
             prop::collection::vec(("[ -~é]{0,20}", prop::option::of("[a-z]{2}")), 0..3)),
            0..3,
        ),
    ) {
        let doc = Presence {
            entity,
            tuples: tuples
                .into_iter()
                .map(|(id, open, contact, notes)| Tuple {
                    id,
                    basic: open.map(|o| if o { Basic::Open } else { Basic::Closed }),
                    contact: contact.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()),
                    priority: None,
                    notes: notes
                        .into_iter()
                        .map(|(text, lang)| Note { text: text.trim().to_owned(), lang })
                        .collect(),
                    timestamp: None,
                })
                .collect(),
            notes: Vec::new(),
        };
        let xml = doc.to_xml();
        let back = Presence::parse(xml.as_bytes());
        prop_assert!(back.is_ok(), "{:?}\n{}", back, xml);
        prop_assert_eq!(back.unwrap(), doc);
    }

    #[test]
    fn pidf_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Presence::parse(&bytes);
    }
}
