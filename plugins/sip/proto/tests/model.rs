//! What the typed accessors, URIs, builder and PIDF give for the RFCs' own examples.

use std::borrow::Cow;
use std::net::Ipv4Addr;
use std::path::Path;

use switchboard_sip_proto::pidf::{self, Basic, Presence};
use switchboard_sip_proto::{Contact, Error, Host, Message, Method, SipUri, StartLine, Uri};

fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    let raw = std::fs::read(&path).unwrap();
    let mut out = Vec::new();
    for b in raw {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[test]
fn wsinv_short_tortuous_invite() {
    let bytes = fixture("rfc4475/wsinv.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.method(), Some(&Method::Invite));
    let uri = m.request_uri().unwrap();
    let sip = uri.as_sip().unwrap();
    assert_eq!(sip.user, Some("vivekg"));
    assert_eq!(sip.host, Host::Name("chair-dnrc.example.com"));
    assert!(sip.params.contains("unknownparam"));

    let to = m.to().unwrap();
    assert_eq!(to.tag(), Some("1918181833n"));
    assert_eq!(to.display, None);
    let from = m.from().unwrap();
    assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(m.call_id().unwrap(), "wsinv.ndaksdj@192.0.2.1");
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, &cseq.method), (9, &Method::Invite));
    assert_eq!(m.header("Subject"), Some(""));
    assert_eq!(
        m.header("newfangledheader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(m.header("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));

    let vias: Vec<_> = m.via().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].transport, "UDP");
    assert_eq!(vias[0].host, Host::Ipv4(Ipv4Addr::new(192, 0, 2, 2)));
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[1].host, Host::Name("spindle.example.com"));
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert!(vias[2].has_rfc3261_branch());

    let route = m.route().unwrap();
    assert_eq!(route.len(), 1);
    assert!(route[0].uri.as_sip().unwrap().lr());

    let contacts = m.contacts().unwrap();
    let c = contacts[0].addr().unwrap();
    assert_eq!(c.display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(c.q(), Some(0.33));
    assert_eq!(c.params.value("newparam"), Some("newvalue"));
    assert!(c.params.contains("secondparam"));

    assert!(m.content_type().unwrap().unwrap().is("application", "sdp"));
    assert_eq!(m.content_length(), Some(150));
    assert_eq!(m.body().len(), 150);
    assert!(m.body().starts_with(b"v=0\r\n"));
    // Names normalised, in order.
    let names: Vec<_> = m.headers().iter().map(|h| h.name()).collect();
    assert_eq!(&names[..4], ["To", "From", "Max-Forwards", "Call-ID"]);
    // The unfolded header values own their text; the others borrow from the input.
    m.validate_request().unwrap();
}

#[test]
fn escapes_compare_decoded() {
    let bytes = fixture("rfc4475/esc01.sip");
    let m = Message::parse(&bytes).unwrap();
    let to = m.to().unwrap();
    let plain = SipUri::parse("sip:user@example.com").unwrap();
    assert!(to.uri.as_sip().unwrap().equivalent(&plain));
    assert_eq!(to.uri.as_sip().unwrap().aor(), "sip:user@example.com");
    let from = m.from().unwrap();
    assert_eq!(
        from.uri.as_sip().unwrap().user_decoded().unwrap().as_ref(),
        b"I have spaces"
    );
    let ruri = m.request_uri().unwrap();
    assert_eq!(
        ruri.as_sip().unwrap().user_decoded().unwrap().as_ref(),
        b"sips:user@example.com"
    );
    let contacts = m.contacts().unwrap();
    let c = contacts[0].addr().unwrap().uri.as_sip().unwrap().clone();
    assert_eq!(c.user_decoded().unwrap().as_ref(), b"caller");

    let bytes = fixture("rfc4475/escnull.sip");
    let m = Message::parse(&bytes).unwrap();
    let contacts = m.contacts().unwrap();
    let users: Vec<Vec<u8>> = contacts
        .iter()
        .map(|c| {
            c.addr()
                .unwrap()
                .uri
                .as_sip()
                .unwrap()
                .user_decoded()
                .unwrap()
                .into_owned()
        })
        .collect();
    assert_eq!(users, [vec![0u8], vec![0, 0]]);
    assert_eq!(
        m.to().unwrap().uri.as_sip().unwrap().aor(),
        "sip:null-%00-null@example.com"
    );
}

#[test]
fn extension_method_and_header() {
    let bytes = fixture("rfc4475/esc02.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(
        m.method(),
        Some(&Method::Extension(Cow::Borrowed("RE%47IST%45R")))
    );
    assert_eq!(m.contacts().unwrap().len(), 2);
    assert_eq!(
        m.header("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
    m.validate_request().unwrap();
}

#[test]
fn semicolon_in_user_part_and_folded_accept_list() {
    let bytes = fixture("rfc4475/semiuri.sip");
    let m = Message::parse(&bytes).unwrap();
    let uri = m.request_uri().unwrap();
    let sip = uri.as_sip().unwrap();
    assert_eq!(sip.user, Some("user;par=u%40example.net"));
    assert_eq!(sip.host, Host::Name("example.com"));
    assert!(sip.params.is_empty());
    let accept = m.accept().unwrap();
    assert_eq!(accept.len(), 6);
    assert!(accept[5].is("message", "sipfrag"));
}

#[test]
fn every_via_spelling_is_a_via() {
    let bytes = fixture("rfc4475/longreq.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.via().count(), 34);
    assert_eq!(m.top_via().unwrap().host, Host::Name("sip33.example.com"));
    let transports = fixture("rfc4475/transports.sip");
    let m = Message::parse(&transports).unwrap();
    let t: Vec<_> = m.via().map(|v| v.unwrap().transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

#[test]
fn datagram_with_trailing_request_keeps_only_the_first() {
    let bytes = fixture("rfc4475/dblreq.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(m.body().is_empty());
    assert_eq!(
        m.call_id().unwrap(),
        "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    );
}

#[test]
fn empty_reason_phrase_and_unknown_schemes() {
    let bytes = fixture("rfc4475/noreason.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!((m.status(), m.reason()), (Some(100), Some("")));
    let bytes = fixture("rfc4475/unkscm.sip");
    let m = Message::parse(&bytes).unwrap();
    assert!(matches!(
        m.request_uri(),
        Some(Uri::Other {
            scheme: "nobodyKnowsThisScheme",
            ..
        })
    ));
    let bytes = fixture("rfc4475/badvers.sip");
    let e = Message::parse(&bytes).unwrap_err();
    assert_eq!(e.status_code(), 505);
}

#[test]
fn register_and_outbound_contact() {
    let bytes = fixture("messages/rfc5626-register.sip");
    let m = Message::parse(&bytes).unwrap();
    let contacts = m.contacts().unwrap();
    let c = contacts[0].addr().unwrap();
    assert_eq!(
        c.sip_instance(),
        Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>")
    );
    assert_eq!(c.reg_id(), Some(1));
    let uri = c.uri.as_sip().unwrap();
    assert!(uri.ob());
    assert_eq!(uri.transport(), Some("udp"));
    assert_eq!(m.supported().unwrap(), ["path", "outbound"]);

    let bytes = fixture("messages/rfc3261-24.1-register.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.expires().unwrap(), Some(7200));
    assert_eq!(
        m.to().unwrap().uri.as_sip().unwrap().aor(),
        "sip:bob@biloxi.com"
    );

    // Contact: * (remove all bindings) and saturating expires.
    let raw =
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\n\
CSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\n\r\n";
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.contacts().unwrap(), [Contact::Star]);
    assert_eq!(m.expires().unwrap(), Some(0));
    let bytes = fixture("rfc4475/scalar02.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.expires().unwrap(), Some(u32::MAX));
    assert_eq!(
        m.contacts().unwrap()[0].addr().unwrap().expires(),
        Some(u32::MAX)
    );
}

#[test]
fn response_via_received() {
    let bytes = fixture("messages/rfc3261-4-invite-200.sip");
    let m = Message::parse(&bytes).unwrap();
    let vias: Vec<_> = m.via().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[2].received(), Some("192.0.2.1"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK776asdhds"));
    m.validate_response().unwrap();
}

#[test]
fn message_publish_subscribe_notify() {
    let bytes = fixture("messages/rfc3428-4-message.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.method(), Some(&Method::Message));
    assert_eq!(m.body(), b"Watson, come here.");
    assert!(m.content_type().unwrap().unwrap().is("text", "plain"));

    let bytes = fixture("messages/rfc3903-publish.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.event().unwrap().unwrap().package, "presence");
    assert_eq!(m.sip_if_match().unwrap(), None);
    let doc = Presence::parse(m.body()).unwrap();
    assert_eq!(doc.entity, "sip:presentity@example.com");
    assert_eq!(doc.basic(), Some(Basic::Open));
    assert_eq!(doc.tuples[0].id, "mobile-im");
    assert_eq!(doc.tuples[0].priority, Some(0.8));

    let bytes = fixture("messages/rfc3903-publish-200.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.sip_etag().unwrap(), Some("dx200xyz"));
    let bytes = fixture("messages/rfc3903-publish-refresh.sip");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.sip_if_match().unwrap(), Some("dx200xyz"));
    assert!(m.body().is_empty());

    let bytes = fixture("messages/rfc3856-notify.sip");
    let m = Message::parse(&bytes).unwrap();
    let state = m.subscription_state().unwrap().unwrap();
    assert_eq!((state.state, state.expires()), ("active", Some(599)));
    let doc = Presence::parse(m.body()).unwrap();
    assert_eq!(doc.tuples[0].contact.as_deref(), Some("tel:+09012345678"));

    let raw = b"NOTIFY sip:w@example.com SIP/2.0\r\nEvent: presence;id=7\r\n\
Subscription-State: terminated;reason=timeout;retry-after=30\r\n\r\n";
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.event().unwrap().unwrap().id(), Some("7"));
    let s = m.subscription_state().unwrap().unwrap();
    assert_eq!((s.reason(), s.retry_after()), (Some("timeout"), Some(30)));
    // Compact forms: o = Event, u = Allow-Events.
    let raw = b"NOTIFY sip:w@example.com SIP/2.0\r\no: reg\r\nu: presence, reg\r\n\r\n";
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.event().unwrap().unwrap().package, "reg");
    assert_eq!(
        m.values("Allow-Events").collect::<Vec<_>>(),
        ["presence", "reg"]
    );
}

#[test]
fn uri_comparison_examples_of_rfc3261_19_1_4() {
    let eq = |a: &str, b: &str| {
        SipUri::parse(a)
            .unwrap()
            .equivalent(&SipUri::parse(b).unwrap())
    };
    assert!(eq(
        "sip:%61lice@atlanta.com;transport=TCP",
        "sip:alice@AtLanTa.CoM;Transport=tcp"
    ));
    assert!(eq(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com;newparam=5"
    ));
    assert!(eq(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com;security=on"
    ));
    assert!(eq(
        "sip:carol@chicago.com;newparam=5",
        "sip:carol@chicago.com;security=on"
    ));
    assert!(eq(
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
    ));
    assert!(eq(
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
    ));

    assert!(!eq(
        "SIP:ALICE@AtLanTa.CoM;Transport=udp",
        "sip:alice@AtLanTa.CoM;Transport=UDP"
    ));
    assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
    assert!(!eq(
        "sip:bob@biloxi.com",
        "sip:bob@biloxi.com;transport=udp"
    ));
    assert!(!eq(
        "sip:bob@biloxi.com",
        "sip:bob@biloxi.com:6000;transport=tcp"
    ));
    assert!(!eq(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com?Subject=next%20meeting"
    ));
    assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
    assert!(!eq(
        "sip:carol@chicago.com;security=on",
        "sip:carol@chicago.com;security=off"
    ));
    assert!(!eq("sips:bob@biloxi.com", "sip:bob@biloxi.com"));
}

#[test]
fn uri_parts() {
    let u = SipUri::parse("sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr?h=v").unwrap();
    assert!(u.secure);
    assert_eq!(u.password, Some("secret"));
    assert_eq!(u.host, Host::Ipv6("2001:db8::1".parse().unwrap()));
    assert_eq!(u.port, Some(5061));
    assert_eq!(u.transport(), Some("tls"));
    assert!(u.lr());
    assert_eq!(u.headers, Some("h=v"));
    assert_eq!(
        u.to_string(),
        "sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr?h=v"
    );
    assert_eq!(u.aor(), "sips:alice@[2001:db8::1]:5061");
    for bad in [
        "sip:",
        "sip:@example.com",
        "sip:a@",
        "sip:a@exa mple.com",
        "sip:a@example.com:99999",
        "sip:a@example.com:",
        "sip:a@[::1",
        "sip:a@-bad.example.com",
        "sip:a@example.com;;lr",
        "sip:a%4@example.com",
        "sip:a@256.1.1.1",
        "<sip:a@example.com>",
    ] {
        assert!(SipUri::parse(bad).is_err(), "{bad} should not parse");
    }
    assert!(matches!(
        Uri::parse("tel:+1-201-555-0123"),
        Ok(Uri::Tel("+1-201-555-0123"))
    ));
    assert_eq!(
        Uri::parse("sip:a@b c").unwrap_err().to_string(),
        "Bad URI: whitespace, control character, quote or angle bracket in URI"
    );
}

#[test]
fn response_for_request() {
    let bytes = fixture("messages/rfc3428-4-message.sip");
    let req = Message::parse(&bytes).unwrap();
    let resp = Message::response_to(&req, 200, "OK").unwrap();
    assert_eq!(resp.status(), Some(200));
    let to = resp.to().unwrap();
    let tag = to.tag().unwrap().to_owned();
    assert_eq!(tag.len(), 16);
    // Deterministic: a retransmission gets the same tag.
    let again = Message::response_to(&req, 200, "OK").unwrap();
    assert_eq!(again.to().unwrap().tag(), Some(tag.as_str()));
    assert_eq!(resp.from().unwrap().tag(), Some("49583"));
    assert_eq!(resp.call_id().unwrap(), "asd88asd77a@1.2.3.4");
    assert_eq!(resp.cseq().unwrap().method, Method::Message);
    assert_eq!(resp.top_via().unwrap().branch(), Some("z9hG4bK776sgdkse"));
    resp.validate_response().unwrap();
    let text = String::from_utf8(resp.to_bytes()).unwrap();
    assert_eq!(
        text,
        format!(
            "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/TCP user1pc.domain.com;branch=z9hG4bK776sgdkse\r\n\
From: sip:user1@domain.com;tag=49583\r\n\
To: sip:user2@domain.com;tag={tag}\r\n\
Call-ID: asd88asd77a@1.2.3.4\r\n\
CSeq: 1 MESSAGE\r\n\
Content-Length: 0\r\n\r\n"
        )
    );
    // 100 Trying gets no tag; an existing tag is kept.
    let trying = Message::response_to(&req, 100, "Trying").unwrap();
    assert_eq!(trying.to().unwrap().tag(), None);
    let bytes = fixture("messages/rfc3903-publish-refresh.sip");
    let req = Message::parse(&bytes).unwrap();
    let mine =
        Message::response_to_with_tag(&req, 412, "Conditional Request Failed", "abc").unwrap();
    assert_eq!(mine.to().unwrap().tag(), Some("abc"));
    // Not for responses.
    assert_eq!(
        Message::response_to(&mine, 200, "OK").unwrap_err(),
        Error::NotARequest
    );
}

#[test]
fn build_a_message_request() {
    let mut m = Message::request(Method::Message, "sip:bob@example.com").unwrap();
    m.push_header("Via", "SIP/2.0/TLS proxy.example.com;branch=z9hG4bKa1")
        .unwrap();
    m.push_header("max-forwards", "70").unwrap();
    m.push_header("f", "<sip:alice@example.com>;tag=77")
        .unwrap();
    m.push_header("To", "<sip:bob@example.com>").unwrap();
    m.push_header("Call-ID", "c1@example.com").unwrap();
    m.push_header("CSeq", "1 MESSAGE").unwrap();
    m.set_body(Some("text/plain;charset=UTF-8"), &b"hello \xc3\xa9"[..])
        .unwrap();
    m.push_via("SIP/2.0/UDP edge.example.com;branch=z9hG4bKb2;rport")
        .unwrap();
    m.validate_request().unwrap();
    let bytes = m.to_bytes();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        "MESSAGE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bKb2;rport\r\n\
Via: SIP/2.0/TLS proxy.example.com;branch=z9hG4bKa1\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=77\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c1@example.com\r\n\
CSeq: 1 MESSAGE\r\n\
Content-Type: text/plain;charset=UTF-8\r\n\
Content-Length: 8\r\n\r\nhello \u{e9}"
    );
    let parsed = Message::parse(&bytes).unwrap();
    assert_eq!(parsed, m);
    assert_eq!(m.top_via().unwrap().rport(), Some(None));
    let popped = m.pop_via().unwrap();
    assert_eq!(
        popped.value(),
        "SIP/2.0/UDP edge.example.com;branch=z9hG4bKb2;rport"
    );
    assert_eq!(m.via().count(), 1);
    assert_eq!(m.remove_headers("From"), 1);
    assert_eq!(
        m.validate_request().unwrap_err().to_string(),
        "Missing From header"
    );

    // Header injection and bad input are refused.
    assert_eq!(
        m.push_header("X-Evil", "a\r\nVia: forged")
            .unwrap_err()
            .to_string(),
        "Bad header value: control characters"
    );
    assert!(m.push_header("Bad Name", "x").is_err());
    assert!(Message::request(Method::Invite, "sip:a@b.example.com?x=y").is_err());
    assert!(Message::request(Method::Extension("BAD METHOD".into()), "sip:a@example.com").is_err());
    assert!(Message::response(700, "Nope").is_err());
    assert!(Message::response(200, "OK\r\n").is_err());
    // A list value is split like the parser does.
    m.push_header("Supported", "path, outbound").unwrap();
    assert_eq!(m.supported().unwrap(), ["path", "outbound"]);
    m.set_header("Supported", "gruu").unwrap();
    assert_eq!(m.supported().unwrap(), ["gruu"]);
}

#[test]
fn start_lines() {
    let m = Message::parse(b"\r\n\r\nOPTIONS sip:a@example.com SIP/2.0\r\n\r\n").unwrap();
    assert!(matches!(m.start_line(), StartLine::Request { .. }));
    // Bare LF line ends are tolerated.
    let m = Message::parse(b"SIP/2.0 486 Busy Here\nVia: SIP/2.0/UDP h.example.com\n\n").unwrap();
    assert_eq!(m.reason(), Some("Busy Here"));
    // A non-UTF-8 reason phrase is replaced, not refused; so are extension headers' values.
    let m = Message::parse(b"SIP/2.0 200 \xffK\r\nX-Vendor: caf\xe9\r\n\r\n").unwrap();
    assert_eq!(m.reason(), Some("\u{fffd}K"));
    assert_eq!(m.header("x-vendor"), Some("caf\u{fffd}"));
    for (raw, err) in [
        (
            &b"INVITE sip:a@example.com SIP/2.0"[..],
            "Headers are not terminated by an empty line",
        ),
        (
            b"INVITE sip:a@example.com SIP/2.0\r\nTo: x\r\n",
            "Headers are not terminated by an empty line",
        ),
        (
            b"INVITE sip:a@example.com HTTP/1.1\r\n\r\n",
            "Bad start line: bad SIP version",
        ),
        (
            b"invite\r\n\r\n",
            "Bad start line: request line is not Method SP Request-URI SP SIP-Version",
        ),
        (
            b"SIP/2.0\r\n\r\n",
            "Bad start line: status line has no status code",
        ),
    ] {
        assert_eq!(Message::parse(raw).unwrap_err().to_string(), err);
    }
}

#[test]
fn into_owned_outlives_the_buffer() {
    let owned = {
        let bytes = fixture("messages/rfc3428-4-message.sip");
        Message::parse(&bytes).unwrap().into_owned()
    };
    assert_eq!(owned.body(), b"Watson, come here.");
    assert_eq!(owned.from().unwrap().tag(), Some("49583"));
}

#[test]
fn pidf_rfc3863_example() {
    let xml = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rfc3863-example.xml"),
    )
    .unwrap();
    let doc = Presence::parse(&xml).unwrap();
    assert_eq!(doc.entity, "pres:someone@example.com");
    assert_eq!(doc.tuples.len(), 2);
    let t = &doc.tuples[0];
    assert_eq!(t.id, "bs35r9");
    assert_eq!(t.basic, Some(Basic::Open));
    assert_eq!(t.contact.as_deref(), Some("im:someone@mobilecarrier.net"));
    assert_eq!(t.priority, Some(0.8));
    assert_eq!(t.notes.len(), 2);
    assert_eq!(t.notes[0].text, "Don't Disturb Please!");
    assert_eq!(t.notes[0].lang.as_deref(), Some("en"));
    assert_eq!(t.timestamp.as_deref(), Some("2001-10-27T16:49:29Z"));
    assert_eq!(doc.notes[0].text, "I'll be in Tokyo next week");
    // Serialize → parse is identity.
    assert_eq!(Presence::parse(doc.to_xml().as_bytes()).unwrap(), doc);
}

#[test]
fn pidf_build_and_errors() {
    let doc = Presence::simple(
        "sip:alice@example.com",
        "t1",
        Basic::Closed,
        Some("Out <& about>"),
    );
    let xml = doc.to_xml();
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@example.com\">\n  \
<tuple id=\"t1\">\n    <status><basic>closed</basic></status>\n    \
<note>Out &lt;&amp; about&gt;</note>\n  </tuple>\n</presence>\n"
    );
    let back = Presence::parse(xml.as_bytes()).unwrap();
    assert_eq!(back, doc);
    assert_eq!(back.basic(), Some(Basic::Closed));
    // Prefixed PIDF namespace works; other namespaces' <basic> do not count.
    let prefixed = br#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:x" entity="pres:a@b">
<p:tuple id="a"><p:status><x:basic>closed</x:basic><p:basic>open</p:basic></p:status></p:tuple></p:presence>"#;
    assert_eq!(
        Presence::parse(prefixed).unwrap().basic(),
        Some(Basic::Open)
    );
    for (xml, err) in [
        (&b"<presence entity=\"x\"/>"[..], "PIDF: root element is not <presence> in urn:ietf:params:xml:ns:pidf"),
        (b"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"/>", "PIDF: <presence> has no entity attribute"),
        (
            b"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"x\"><tuple/></presence>",
            "PIDF: <tuple> has no id attribute",
        ),
        (
            b"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"x\"><tuple id=\"a\"><status><basic>away</basic></status></tuple></presence>",
            "PIDF: <basic> is \"away\", not open or closed",
        ),
    ] {
        assert_eq!(Presence::parse(xml).unwrap_err().to_string(), err);
    }
    assert!(matches!(
        Presence::parse(
            b"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"x\"><tuple id=\"a\">"
        ),
        Err(pidf::PidfError::Xml { .. })
    ));
    assert_eq!(pidf::CONTENT_TYPE, "application/pidf+xml");
}
