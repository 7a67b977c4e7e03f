//! The SIP message parser, every typed accessor, the serializer and PIDF must never panic on
//! any input, and whatever parses must re-serialize to something that parses to the same model.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_sip_proto::{pidf::Presence, Message};

fuzz_target!(|data: &[u8]| {
    let _ = Presence::parse(data);
    let Ok(m) = Message::parse(data) else { return };
    let _ = m.validate_request();
    let _ = m.validate_response();
    let _ = m.request_uri().map(|u| u.to_string());
    for v in m.via().flatten() {
        let _ = (v.branch(), v.received(), v.rport(), v.host.to_string());
    }
    for na in [m.from(), m.to()].into_iter().flatten() {
        if let Some(s) = na.uri.as_sip() {
            let _ = (s.aor(), s.equivalent(s), s.user_decoded(), s.to_string());
        }
    }
    let _ = (m.call_id(), m.cseq(), m.max_forwards());
    if let Ok(cs) = m.contacts() {
        for c in cs.iter().filter_map(|c| c.addr()) {
            let _ = (c.expires(), c.q(), c.sip_instance(), c.reg_id());
        }
    }
    let _ = (
        m.expires(),
        m.content_type(),
        m.event(),
        m.subscription_state(),
    );
    let _ = (
        m.sip_etag(),
        m.sip_if_match(),
        m.route(),
        m.record_route(),
        m.path(),
    );
    let _ = (m.supported(), m.require(), m.allow(), m.accept());
    let _ = Message::response_to(&m, 200, "OK").map(|r| r.to_bytes());

    let out = m.to_bytes();
    let again = Message::parse(&out).expect("serialized message must re-parse");
    let mut a = m.clone();
    let mut b = again.clone();
    a.remove_headers("Content-Length");
    b.remove_headers("Content-Length");
    assert_eq!(a, b, "model changed by serialize/parse");
    assert_eq!(again.to_bytes(), out, "serializer not idempotent");
});
