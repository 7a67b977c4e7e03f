//! End-to-end flows against the mock host, on messages shaped like the RFCs' examples
//! (RFC 3261 §24.1 REGISTER, RFC 3428 §4 MESSAGE, RFC 3856/3903 PUBLISH and SUBSCRIBE).
//!
//! Time is passed in (`handle_at`), never read from the clock.

use switchboard_sdk::mock::MockHost;
use switchboard_sdk::sip::Origin;
use switchboard_sdk::{Error, Principal};
use switchboard_sip::txn::handle_at;
use switchboard_sip_proto::Message;

const T0: u64 = 1_700_000_000;

/// A host whose digest check accepts `response="good"` for any user (in the realm's domain),
/// says stale for `response="stale"` and refuses anything else.
fn host() -> MockHost {
    MockHost::new().with_digest_verifier(|c| {
        let user = c
            .authorization
            .split("username=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        if c.authorization.contains("response=\"stale\"") {
            return Err(Error::Conflict("stale".into()));
        }
        if c.authorization.contains("response=\"good\"") && c.source == "127.0.0.1" {
            return Ok(Some(Principal {
                user: user.into(),
                domain: c.realm.into(),
            }));
        }
        Ok(None)
    })
}

fn udp(port: u16) -> Origin {
    Origin {
        transport: "udp".into(),
        peer: format!("127.0.0.1:{port}"),
        local: "127.0.0.1:5060".into(),
        flow: None,
    }
}

fn tcp(port: u16, flow: u64) -> Origin {
    Origin {
        transport: "tcp".into(),
        peer: format!("127.0.0.1:{port}"),
        local: "127.0.0.1:5060".into(),
        flow: Some(flow),
    }
}

/// Everything sent since `from`, as (destination, text).
fn sent_since(h: &MockHost, from: usize) -> Vec<(String, String)> {
    h.sip_sent()
        .into_iter()
        .skip(from)
        .map(|(to, b)| (to, String::from_utf8_lossy(&b).into_owned()))
        .collect()
}

fn status_line(text: &str) -> &str {
    text.split("\r\n").next().unwrap_or("")
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

fn auth(user: &str, domain: &str, uri: &str, response: &str, proxy: bool) -> String {
    let name = if proxy {
        "Proxy-Authorization"
    } else {
        "Authorization"
    };
    format!(
        "{name}: Digest username=\"{user}\", realm=\"{domain}\", nonce=\"mock-nonce-1\", uri=\"{uri}\", response=\"{response}\"\r\n"
    )
}

fn register(user: &str, contact: &str, branch: &str, cseq: u32, extra: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:biloxi.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@biloxi.com>\r\n\
         From: <sip:{user}@biloxi.com>;tag=456248\r\n\
         Call-ID: reg-{user}@998sdasdh09\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: {contact}\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Alice registers her UDP contact 127.0.0.1:5080 (`branch` names the REGISTER).
fn register_alice(h: &MockHost, branch: &str) {
    register_ok(
        h,
        "alice",
        "<sip:alice@127.0.0.1:5080>",
        &udp(5080),
        branch,
        1,
    );
}

fn register_ok(h: &MockHost, user: &str, contact: &str, origin: &Origin, branch: &str, cseq: u32) {
    let n = h.sip_sent().len();
    let a = auth(user, "biloxi.com", "sip:biloxi.com", "good", false);
    h.run(|| handle_at(&register(user, contact, branch, cseq, &a), origin, T0));
    let out = sent_since(h, n);
    assert!(
        out.iter().any(|(_, t)| status_line(t) == "SIP/2.0 200 OK"),
        "{out:#?}"
    );
}

fn message(from: &str, to: &str, branch: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "MESSAGE sip:{to}@biloxi.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP user1pc.biloxi.com;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: sip:{from}@biloxi.com;tag=49583\r\n\
         To: sip:{to}@biloxi.com\r\n\
         Call-ID: asd88asd77a-{branch}@1.2.3.4\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         {extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn malformed_requests_get_400_with_the_precise_reason() {
    let h = host();
    let no_call_id = b"OPTIONS sip:biloxi.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc.biloxi.com;branch=z9hG4bK1\r\n\
        Max-Forwards: 70\r\nTo: <sip:biloxi.com>\r\nFrom: <sip:a@biloxi.com>;tag=1\r\n\
        CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    h.run(|| handle_at(no_call_id, &udp(5070), T0));
    let bad_line = b"OPTIONS sip:biloxi.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc.biloxi.com;branch=z9hG4bK2\r\n\
        Max-Forwards: 70\r\nTo: <sip:biloxi.com>\r\nFrom: <sip:a@biloxi.com>;tag=1\r\n\
        Call-ID: x\r\nCSeq: 1 OPTIONS\r\nthis line has no colon\r\nContent-Length: 0\r\n\r\n";
    h.run(|| handle_at(bad_line, &udp(5070), T0));
    let mismatch = b"OPTIONS sip:biloxi.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc.biloxi.com;branch=z9hG4bK3\r\n\
        Max-Forwards: 70\r\nTo: <sip:biloxi.com>\r\nFrom: <sip:a@biloxi.com>;tag=1\r\n\
        Call-ID: y\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    h.run(|| handle_at(mismatch, &udp(5070), T0));
    let out = sent_since(&h, 0);
    let lines: Vec<&str> = out.iter().map(|(_, t)| status_line(t)).collect();
    assert_eq!(
        lines,
        [
            "SIP/2.0 400 Missing Call-ID header",
            "SIP/2.0 400 Bad header line at byte 181: no colon",
            "SIP/2.0 400 CSeq method INVITE does not match request method OPTIONS",
        ]
    );
    assert!(out.iter().all(|(to, _)| to == "udp:127.0.0.1:5070"));
    // Every final response carries a To tag (RFC 3261 §8.2.6.2), the same for a
    // retransmission of the request: also the answer to a request too broken to parse.
    let to_of = |t: &str| {
        t.split("\r\n")
            .find_map(|l| l.strip_prefix("To: "))
            .map(str::to_string)
            .unwrap_or_default()
    };
    for (_, t) in &out {
        assert!(to_of(t).contains(";tag="), "{t}");
    }
    h.run(|| handle_at(bad_line, &udp(5070), T0));
    let again = sent_since(&h, out.len());
    assert_eq!(to_of(&again[0].1), to_of(&out[1].1));
}

#[test]
fn unknown_methods_get_405_with_allow_and_hops_483() {
    let h = host();
    let info = b"INFO sip:bob@biloxi.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc.biloxi.com;branch=z9hG4bK9\r\nMax-Forwards: 70\r\n\
        To: <sip:bob@biloxi.com>\r\nFrom: <sip:a@biloxi.com>;tag=1\r\nCall-ID: i\r\n\
        CSeq: 1 INFO\r\nContent-Length: 0\r\n\r\n";
    h.run(|| handle_at(info, &udp(5070), T0));
    let out = sent_since(&h, 0);
    assert_eq!(status_line(&out[0].1), "SIP/2.0 405 Method Not Allowed");
    let allow: Vec<&str> = out[0]
        .1
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("Allow: "))
        .collect();
    assert_eq!(
        allow,
        [
            "REGISTER",
            "MESSAGE",
            "SUBSCRIBE",
            "PUBLISH",
            "OPTIONS",
            "ACK"
        ]
    );
    let hops = String::from_utf8(message("alice", "bob", "mf0", "hi", ""))
        .unwrap()
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    h.run(|| handle_at(hops.as_bytes(), &udp(5070), T0));
    assert_eq!(
        status_line(&sent_since(&h, 1)[0].1),
        "SIP/2.0 483 Too Many Hops"
    );
    let req = b"OPTIONS sip:biloxi.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc.biloxi.com;branch=z9hG4bKr\r\nMax-Forwards: 70\r\n\
        To: <sip:biloxi.com>\r\nFrom: <sip:a@biloxi.com>;tag=1\r\nCall-ID: r\r\n\
        CSeq: 1 OPTIONS\r\nRequire: 100rel\r\nContent-Length: 0\r\n\r\n";
    h.run(|| handle_at(req, &udp(5070), T0));
    let out = sent_since(&h, 2);
    assert_eq!(status_line(&out[0].1), "SIP/2.0 420 Bad Extension");
    assert_eq!(header(&out[0].1, "Unsupported"), Some("100rel"));
}

#[test]
fn register_challenges_then_binds_with_received_and_rport() {
    let h = host();
    let origin = udp(5071);
    h.run(|| {
        handle_at(
            &register("bob", "<sip:bob@127.0.0.1:5071>", "a1", 1, ""),
            &origin,
            T0,
        )
    });
    let out = sent_since(&h, 0);
    assert_eq!(status_line(&out[0].1), "SIP/2.0 401 Unauthorized");
    assert!(header(&out[0].1, "WWW-Authenticate")
        .unwrap()
        .starts_with("Digest realm=\"biloxi.com\""));
    // Wrong password: challenged again. Stale: challenged with stale=true.
    let bad = auth("bob", "biloxi.com", "sip:biloxi.com", "bad", false);
    h.run(|| {
        handle_at(
            &register("bob", "<sip:bob@127.0.0.1:5071>", "a2", 2, &bad),
            &origin,
            T0,
        )
    });
    let stale = auth("bob", "biloxi.com", "sip:biloxi.com", "stale", false);
    h.run(|| {
        handle_at(
            &register("bob", "<sip:bob@127.0.0.1:5071>", "a3", 3, &stale),
            &origin,
            T0,
        )
    });
    let out = sent_since(&h, 1);
    assert_eq!(status_line(&out[0].1), "SIP/2.0 401 Unauthorized");
    assert!(header(&out[1].1, "WWW-Authenticate")
        .unwrap()
        .ends_with("stale=true"));
    // Someone else's credentials.
    let carol = auth("carol", "biloxi.com", "sip:biloxi.com", "good", false);
    h.run(|| {
        handle_at(
            &register("bob", "<sip:bob@127.0.0.1:5071>", "a4", 4, &carol),
            &origin,
            T0,
        )
    });
    assert_eq!(
        status_line(&sent_since(&h, 3)[0].1),
        "SIP/2.0 403 Forbidden (credentials of carol@biloxi.com cannot act for bob@biloxi.com)"
    );
    register_ok(
        &h,
        "bob",
        "<sip:bob@127.0.0.1:5071>;expires=7200",
        &origin,
        "a5",
        5,
    );
    let ok = &sent_since(&h, 4)[0].1;
    assert_eq!(
        header(ok, "Via"),
        Some("SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKa5;rport=5071;received=127.0.0.1")
    );
    // Capped at max_expires.
    assert_eq!(
        header(ok, "Contact"),
        Some("<sip:bob@127.0.0.1:5071>;expires=3600")
    );
    assert!(header(ok, "To").unwrap().contains(";tag="));
}

#[test]
fn expiry_rules_several_contacts_and_unregister() {
    let h = host();
    let a = auth("bob", "biloxi.com", "sip:biloxi.com", "good", false);
    h.run(|| {
        handle_at(
            &register(
                "bob",
                "<sip:bob@127.0.0.1:5072>",
                "b1",
                1,
                &format!("Expires: 30\r\n{a}"),
            ),
            &udp(5072),
            T0,
        )
    });
    let out = sent_since(&h, 0);
    assert_eq!(status_line(&out[0].1), "SIP/2.0 423 Interval Too Brief");
    assert_eq!(header(&out[0].1, "Min-Expires"), Some("60"));

    register_ok(
        &h,
        "bob",
        "<sip:bob@127.0.0.1:5072>;expires=600",
        &udp(5072),
        "b2",
        2,
    );
    register_ok(
        &h,
        "bob",
        "<sip:bob@127.0.0.1:5073>;expires=120",
        &udp(5073),
        "b3",
        3,
    );
    let contacts = h.run(|| switchboard_sip::im::contacts("bob@biloxi.com", T0).unwrap());
    assert_eq!(contacts.len(), 2);
    // The shorter one lapses.
    let later = h.run(|| switchboard_sip::im::contacts("bob@biloxi.com", T0 + 200).unwrap());
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].uri, "sip:bob@127.0.0.1:5072");
    // Expires: 0 removes one; `*` removes all.
    register_ok(
        &h,
        "bob",
        "<sip:bob@127.0.0.1:5072>;expires=0",
        &udp(5072),
        "b4",
        4,
    );
    assert_eq!(
        h.run(|| switchboard_sip::im::contacts("bob@biloxi.com", T0).unwrap())
            .len(),
        1
    );
    let n = h.sip_sent().len();
    h.run(|| {
        handle_at(
            &register("bob", "*", "b5", 5, &format!("Expires: 0\r\n{a}")),
            &udp(5072),
            T0,
        )
    });
    assert_eq!(status_line(&sent_since(&h, n)[0].1), "SIP/2.0 200 OK");
    assert!(h
        .run(|| switchboard_sip::im::contacts("bob@biloxi.com", T0).unwrap())
        .is_empty());
    h.run(|| handle_at(&register("bob", "*", "b6", 6, &a), &udp(5072), T0));
    assert_eq!(
        status_line(&sent_since(&h, n + 1)[0].1),
        "SIP/2.0 400 Bad Request (Contact: * needs Expires: 0 and no other Contact)"
    );
}

#[test]
fn udp_retransmissions_are_answered_from_the_cache() {
    let h = host();
    let a = auth("bob", "biloxi.com", "sip:biloxi.com", "good", false);
    let req = register("bob", "<sip:bob@127.0.0.1:5074>", "rt", 1, &a);
    h.run(|| handle_at(&req, &udp(5074), T0));
    let reg = h.kv_get("reg/bob@biloxi.com").unwrap();
    // The retransmission arrives after the binding changed: the cached answer is resent,
    // the request is not applied again.
    h.run(|| {
        handle_at(
            &register("bob", "<sip:bob@127.0.0.1:5075>", "x", 2, &a),
            &udp(5075),
            T0,
        )
    });
    let changed = h.kv_get("reg/bob@biloxi.com").unwrap();
    assert_ne!(reg, changed);
    h.run(|| handle_at(&req, &udp(5074), T0 + 5));
    let out = sent_since(&h, 0);
    assert_eq!(out[2].1, out[0].1);
    assert_eq!(h.kv_get("reg/bob@biloxi.com").unwrap(), changed);
    // After timer J the request is processed anew.
    h.run(|| handle_at(&req, &udp(5074), T0 + 40));
    assert_ne!(sent_since(&h, 3)[0].1, out[0].1);
}

#[test]
fn message_forks_to_every_contact_and_answers_202() {
    let h = host();
    register_alice(&h, "m1");
    register_ok(&h, "bob", "<sip:bob@127.0.0.1:5081>", &udp(5081), "m2", 1);
    register_ok(
        &h,
        "bob",
        "<sip:bob@127.0.0.1:5082;transport=tcp>",
        &tcp(5082, 7),
        "m3",
        2,
    );
    let n = h.sip_sent().len();
    // From alice's registered address: no challenge.
    h.run(|| {
        handle_at(
            &message("alice", "bob", "m4", "Watson, come here.", ""),
            &udp(5080),
            T0,
        )
    });
    let all = sent_since(&h, n);
    let dests: Vec<&str> = all.iter().map(|(d, _)| d.as_str()).collect();
    // The sender's 202 first, then one fork per contact.
    assert_eq!(
        dests,
        ["udp:127.0.0.1:5080", "udp:127.0.0.1:5081", "flow:7"]
    );
    assert_eq!(status_line(&all[0].1), "SIP/2.0 202 Accepted");
    // The UDP fork is relayed (the core consumes its 2xx); the 202 and the flow are not.
    let relayed: Vec<bool> = (n..n + 3).map(|i| h.sip_relayed(i)).collect();
    assert_eq!(relayed, [false, true, false]);
    let out = all[1..].to_vec();
    for (_, fork) in &out[..2] {
        assert!(fork.ends_with("\r\n\r\nWatson, come here."), "{fork}");
        assert_eq!(header(fork, "From"), Some("sip:alice@biloxi.com;tag=49583"));
        assert_eq!(header(fork, "Max-Forwards"), Some("69"));
    }
    assert!(status_line(&out[0].1).starts_with("MESSAGE sip:bob@127.0.0.1:5081 SIP/2.0"));
    assert!(header(&out[1].1, "Via")
        .unwrap()
        .starts_with("SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK"));
    // Answers the core hands over anyway (over a stream, or late) are consumed silently.
    let answer = out[0].1.replace(status_line(&out[0].1), "SIP/2.0 200 OK");
    let answer = answer
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("Content-Length: 18", "Content-Length: 0")
        + "\r\n\r\n";
    let m = h.sip_sent().len();
    h.run(|| handle_at(answer.as_bytes(), &udp(5081), T0));
    assert_eq!(h.sip_sent().len(), m);
    assert!(h.events().contains(&"im:bob@biloxi.com".to_string()));
}

#[test]
fn a_retransmitted_message_gets_the_same_202_and_is_not_forked_again() {
    let h = host();
    register_alice(&h, "r1");
    register_ok(&h, "bob", "<sip:bob@127.0.0.1:5081>", &udp(5081), "r2", 1);
    let n = h.sip_sent().len();
    let req = message("alice", "bob", "r3", "once", "");
    h.run(|| handle_at(&req, &udp(5080), T0));
    let first = sent_since(&h, n);
    assert_eq!(first.len(), 2, "202 and one fork: {first:?}");
    // The cache keeps the status only (the 202 is built again from the retransmission).
    let cached = h
        .kv_get("txn/z9hG4bKr3|user1pc.biloxi.com|MESSAGE")
        .expect("cached");
    assert!(cached.len() < 40, "{:?}", String::from_utf8_lossy(&cached));
    h.run(|| handle_at(&req, &udp(5080), T0 + 1));
    let again = sent_since(&h, n + 2);
    assert_eq!(again.len(), 1, "no second fork: {again:?}");
    assert_eq!(
        again[0], first[0],
        "the same 202, byte for byte, to the same place"
    );
    // After timer J it is a new request.
    h.run(|| handle_at(&req, &udp(5080), T0 + 40));
    assert_eq!(sent_since(&h, n + 3).len(), 2);
}

#[test]
fn message_from_elsewhere_needs_proxy_auth_and_hosted_domains() {
    let h = host().with_config("domains", "biloxi.com");
    register_ok(&h, "bob", "<sip:bob@127.0.0.1:5081>", &udp(5081), "p1", 1);
    let n = h.sip_sent().len();
    h.run(|| handle_at(&message("alice", "bob", "p2", "hi", ""), &udp(5099), T0));
    let out = sent_since(&h, n);
    assert_eq!(
        status_line(&out[0].1),
        "SIP/2.0 407 Proxy Authentication Required"
    );
    assert!(header(&out[0].1, "Proxy-Authenticate").is_some());
    let a = auth("alice", "biloxi.com", "sip:bob@biloxi.com", "good", true);
    h.run(|| handle_at(&message("alice", "bob", "p3", "hi", &a), &udp(5099), T0));
    let out = sent_since(&h, n + 1);
    assert_eq!(status_line(&out[0].1), "SIP/2.0 202 Accepted");
    assert!(out[1]
        .1
        .starts_with("MESSAGE sip:bob@127.0.0.1:5081 SIP/2.0"));
    // Another domain: refused with the reason.
    let other = String::from_utf8(message("alice", "bob", "p4", "hi", &a))
        .unwrap()
        .replace(
            "MESSAGE sip:bob@biloxi.com",
            "MESSAGE sip:bob@atlanta.example.com",
        )
        .replace(
            "uri=\"sip:bob@biloxi.com\"",
            "uri=\"sip:bob@atlanta.example.com\"",
        );
    h.run(|| handle_at(other.as_bytes(), &udp(5099), T0));
    assert_eq!(
        status_line(&sent_since(&h, n + 3)[0].1),
        "SIP/2.0 403 Forbidden (domain atlanta.example.com is not served here; no federation)"
    );
    // Unknown user of a hosted domain, nothing to queue for.
    let nobody = String::from_utf8(message("alice", "nobody", "p5", "hi", &a))
        .unwrap()
        .replace(
            "uri=\"sip:bob@biloxi.com\"",
            "uri=\"sip:nobody@biloxi.com\"",
        );
    h.run(|| handle_at(nobody.as_bytes(), &udp(5099), T0));
    assert_eq!(
        status_line(&sent_since(&h, n + 4)[0].1),
        "SIP/2.0 404 Not Found (no user nobody@biloxi.com)"
    );
    // Too big.
    let big = "x".repeat(20_000);
    h.run(|| handle_at(&message("alice", "bob", "p6", &big, &a), &udp(5099), T0));
    assert!(status_line(&sent_since(&h, n + 5)[0].1).starts_with("SIP/2.0 413 "));
}

#[test]
fn offline_messages_are_delivered_on_register_until_acknowledged() {
    let h = host();
    register_alice(&h, "o1");
    register_ok(
        &h,
        "bob",
        "<sip:bob@127.0.0.1:5081>;expires=60",
        &udp(5081),
        "o2",
        1,
    );
    let later = T0 + 100; // bob's registration has lapsed
    let n = h.sip_sent().len();
    for (i, text) in ["first", "second"].iter().enumerate() {
        h.run(|| {
            handle_at(
                &message("alice", "bob", &format!("o3{i}"), text, ""),
                &udp(5080),
                later,
            )
        });
    }
    let out = sent_since(&h, n);
    assert_eq!(out.len(), 2);
    assert!(out
        .iter()
        .all(|(d, t)| d == "udp:127.0.0.1:5080" && status_line(t) == "SIP/2.0 202 Accepted"));
    let queued = h.run(|| switchboard_sip::im::queued("bob@biloxi.com").unwrap());
    assert_eq!(queued.len(), 2);

    // bob registers again: both delivered, in order.
    let a = auth("bob", "biloxi.com", "sip:biloxi.com", "good", false);
    let n = h.sip_sent().len();
    h.run(|| {
        handle_at(
            &register("bob", "<sip:bob@127.0.0.1:5081>", "o4", 2, &a),
            &udp(5081),
            later,
        )
    });
    let out = sent_since(&h, n);
    // The 200 first, then the queue.
    assert_eq!(status_line(&out[0].1), "SIP/2.0 200 OK");
    let bodies: Vec<&str> = out
        .iter()
        .filter(|(_, t)| t.starts_with("MESSAGE "))
        .map(|(_, t)| t.split("\r\n\r\n").nth(1).unwrap())
        .collect();
    assert_eq!(bodies, ["first", "second"]);
    // bob acknowledges only the first; the second is sent again on his next REGISTER.
    let first = &out.iter().find(|(_, t)| t.ends_with("first")).unwrap().1;
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=b0b\r\nCall-ID: {}\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        header(first, "Via").unwrap(),
        header(first, "From").unwrap(),
        header(first, "To").unwrap(),
        header(first, "Call-ID").unwrap()
    );
    h.run(|| handle_at(ok.as_bytes(), &udp(5081), later));
    let left = h.run(|| switchboard_sip::im::queued("bob@biloxi.com").unwrap());
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].body, b"second");
    let n = h.sip_sent().len();
    h.run(|| {
        handle_at(
            &register("bob", "<sip:bob@127.0.0.1:5081>", "o5", 3, &a),
            &udp(5081),
            later,
        )
    });
    let again: Vec<String> = sent_since(&h, n)
        .into_iter()
        .filter(|(_, t)| t.starts_with("MESSAGE "))
        .map(|(_, t)| t)
        .collect();
    assert_eq!(again.len(), 1);
    assert!(again[0].ends_with("second"));
    // Same Call-ID as the first attempt, so the recipient can spot the repeat.
    assert_eq!(
        header(&again[0], "Call-ID").map(str::to_string),
        Some(left[0].call_id.clone())
    );
}

fn subscribe(watcher: &str, target: &str, branch: &str, extra: &str) -> Vec<u8> {
    format!(
        "SUBSCRIBE sip:{target}@biloxi.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP watcherhost.biloxi.com;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{target}@biloxi.com>\r\n\
         From: <sip:{watcher}@biloxi.com>;tag=xfg9\r\n\
         Call-ID: sub-{branch}@watcherhost.biloxi.com\r\n\
         CSeq: 17766 SUBSCRIBE\r\n\
         Event: presence\r\n\
         Accept: application/pidf+xml\r\n\
         Contact: <sip:{watcher}@127.0.0.1:5090;transport=tcp>\r\n\
         Expires: 600\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

const PIDF_OPEN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"pres:alice@biloxi.com\">\n\
<tuple id=\"mobile-im\"><status><basic>open</basic></status></tuple>\n</presence>";

fn publish(branch: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "PUBLISH sip:alice@biloxi.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP pua.biloxi.com;branch=z9hG4bK{branch}\r\n\
         To: <sip:alice@biloxi.com>\r\n\
         From: <sip:alice@biloxi.com>;tag=1234wxyz\r\n\
         Call-ID: 81818181@pua.biloxi.com\r\n\
         CSeq: 1 PUBLISH\r\n\
         Max-Forwards: 70\r\n\
         Expires: 3600\r\n\
         Event: presence\r\n\
         Content-Type: application/pidf+xml\r\n\
         {extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn subscribe_notify_and_publish() {
    let h = host();
    register_alice(&h, "s1");
    register_ok(
        &h,
        "bob",
        "<sip:bob@127.0.0.1:5090;transport=tcp>",
        &tcp(5090, 9),
        "s2",
        1,
    );
    let n = h.sip_sent().len();
    h.run(|| handle_at(&subscribe("bob", "alice", "s3", ""), &tcp(5090, 9), T0));
    let out = sent_since(&h, n);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(status_line(&out[0].1), "SIP/2.0 200 OK");
    assert_eq!(header(&out[0].1, "Expires"), Some("600"));
    let to = header(&out[0].1, "To").unwrap();
    let tag = to.split(";tag=").nth(1).unwrap();
    assert_eq!(tag.len(), 32);
    let notify = &out[1].1;
    assert_eq!(out[1].0, "flow:9");
    assert!(notify.starts_with("NOTIFY sip:bob@127.0.0.1:5090;transport=tcp SIP/2.0\r\n"));
    assert_eq!(
        header(notify, "Subscription-State"),
        Some("active;expires=600")
    );
    assert_eq!(
        header(notify, "From"),
        Some(format!("<sip:alice@biloxi.com>;tag={tag}").as_str())
    );
    assert!(notify.contains("<basic>closed</basic>"), "{notify}");

    // alice publishes: 200 with an ETag, bob is notified.
    let n = h.sip_sent().len();
    h.run(|| handle_at(&publish("s4", PIDF_OPEN, ""), &udp(5080), T0 + 1));
    let out = sent_since(&h, n);
    // The 200 goes out before the NOTIFY it causes.
    let ok = &out[0].1;
    assert_eq!(status_line(ok), "SIP/2.0 200 OK");
    assert!(out[1].1.starts_with("NOTIFY "));
    let etag = header(ok, "SIP-ETag").unwrap().to_string();
    let notify = &out.iter().find(|(_, t)| t.starts_with("NOTIFY")).unwrap().1;
    assert!(notify.contains("<basic>open</basic>"), "{notify}");
    assert_eq!(header(notify, "CSeq"), Some("2 NOTIFY"));

    // Refresh with an unknown ETag: 412. With the right one: a new ETag, no NOTIFY.
    let n = h.sip_sent().len();
    h.run(|| {
        handle_at(
            &publish("s5", "", "SIP-If-Match: nope\r\n"),
            &udp(5080),
            T0 + 2,
        )
    });
    assert_eq!(
        status_line(&sent_since(&h, n)[0].1),
        "SIP/2.0 412 Conditional Request Failed"
    );
    let m = format!("SIP-If-Match: {etag}\r\n");
    h.run(|| handle_at(&publish("s6", "", &m), &udp(5080), T0 + 3));
    let out = sent_since(&h, n + 1);
    assert_eq!(out.len(), 1);
    assert_ne!(header(&out[0].1, "SIP-ETag"), Some(etag.as_str()));

    // Unknown event package: 489.
    let dialog = String::from_utf8(publish("s7", PIDF_OPEN, ""))
        .unwrap()
        .replace("Event: presence", "Event: dialog");
    h.run(|| handle_at(dialog.as_bytes(), &udp(5080), T0 + 4));
    assert_eq!(
        status_line(&sent_since(&h, n + 2)[0].1),
        "SIP/2.0 489 Bad Event (only presence, not dialog)"
    );

    // Someone else who learnt the dialog ids cannot take it over: a wrong From tag is 481,
    // the right one from an address that is not bob's registration is challenged (407).
    let hijack = |branch: &str, from_tag: &str| {
        String::from_utf8(subscribe("bob", "alice", branch, ""))
            .unwrap()
            .replace(
                "To: <sip:alice@biloxi.com>",
                &format!("To: <sip:alice@biloxi.com>;tag={tag}"),
            )
            .replace(&format!("Call-ID: sub-{branch}@"), "Call-ID: sub-s3@")
            .replace("CSeq: 17766", "CSeq: 17800")
            .replace(";tag=xfg9", &format!(";tag={from_tag}"))
    };
    let n = h.sip_sent().len();
    h.run(|| handle_at(hijack("h1", "evil").as_bytes(), &udp(6666), T0 + 4));
    assert_eq!(
        status_line(&sent_since(&h, n)[0].1),
        "SIP/2.0 481 Subscription Does Not Exist"
    );
    h.run(|| handle_at(hijack("h2", "xfg9").as_bytes(), &udp(6666), T0 + 4));
    assert!(
        status_line(&sent_since(&h, n + 1)[0].1).starts_with("SIP/2.0 407"),
        "{:?}",
        sent_since(&h, n + 1)
    );

    // bob unsubscribes in the dialog: 200 and a final NOTIFY.
    let unsub = String::from_utf8(subscribe("bob", "alice", "s8", ""))
        .unwrap()
        .replace(
            "To: <sip:alice@biloxi.com>",
            &format!("To: <sip:alice@biloxi.com>;tag={tag}"),
        )
        .replace("Call-ID: sub-s8@", "Call-ID: sub-s3@")
        .replace("CSeq: 17766", "CSeq: 17767")
        .replace("Expires: 600", "Expires: 0");
    let n = h.sip_sent().len();
    h.run(|| handle_at(unsub.as_bytes(), &tcp(5090, 9), T0 + 5));
    let out = sent_since(&h, n);
    assert_eq!(status_line(&out[0].1), "SIP/2.0 200 OK");
    assert_eq!(
        header(&out[1].1, "Subscription-State"),
        Some("terminated;reason=timeout")
    );
    // And it is gone: another in-dialog SUBSCRIBE is 481.
    let again = unsub.replace("z9hG4bKs8", "z9hG4bKs9");
    h.run(|| handle_at(again.as_bytes(), &tcp(5090, 9), T0 + 6));
    assert_eq!(
        status_line(&sent_since(&h, n + 2)[0].1),
        "SIP/2.0 481 Subscription Does Not Exist"
    );
}

#[test]
fn watchers_of_other_domains_are_refused() {
    let h = host();
    register_ok(
        &h,
        "bob",
        "<sip:bob@127.0.0.1:5090;transport=tcp>",
        &tcp(5090, 9),
        "w1",
        1,
    );
    let req = String::from_utf8(subscribe("bob", "alice", "w2", ""))
        .unwrap()
        .replace(
            "SUBSCRIBE sip:alice@biloxi.com",
            "SUBSCRIBE sip:alice@atlanta.com",
        )
        .replace("To: <sip:alice@biloxi.com>", "To: <sip:alice@atlanta.com>");
    let n = h.sip_sent().len();
    h.run(|| handle_at(req.as_bytes(), &tcp(5090, 9), T0));
    assert_eq!(
        status_line(&sent_since(&h, n)[0].1),
        "SIP/2.0 403 Forbidden (bob@biloxi.com may not watch alice@atlanta.com)"
    );
}

#[test]
fn responses_parse_back() {
    // Everything we send re-parses (the builder's guarantee, checked on our own output).
    let h = host();
    register_ok(&h, "bob", "<sip:bob@127.0.0.1:5081>", &udp(5081), "r1", 1);
    for (_, bytes) in h.sip_sent() {
        Message::parse(&bytes).unwrap();
    }
}

/// An OPTIONS request with RFC 3261 branch `z9hG4bK{branch}` (Call-ID `branch`).
fn options(branch: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:biloxi.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP pc.biloxi.com;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
         To: <sip:biloxi.com>\r\nFrom: <sip:a@biloxi.com>;tag=1\r\nCall-ID: {branch}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn lapsed_cache_entries_are_swept_by_later_requests() {
    let h = host();
    let key = |branch: &str| format!("txn/z9hG4bK{branch}|pc.biloxi.com|OPTIONS");
    for b in ["s1", "s2", "s3"] {
        h.run(|| handle_at(&options(b), &udp(5070), T0));
        assert!(h.kv_get(&key(b)).is_some(), "{b} cached");
    }
    // Still within timer J: nothing lapsed, nothing removed.
    h.run(|| handle_at(&options("s4"), &udp(5070), T0 + 5));
    for b in ["s1", "s2", "s3", "s4"] {
        assert!(h.kv_get(&key(b)).is_some(), "{b} kept before timer J");
    }
    // After timer J of s1-s3 (but not of s4, cached at T0 + 5): the next request's sweep
    // (the oldest four of the expiry index) removes the three lapsed ones together.
    h.run(|| handle_at(&options("t"), &udp(5070), T0 + 33));
    for b in ["s1", "s2", "s3"] {
        assert!(h.kv_get(&key(b)).is_none(), "{b} swept");
    }
    assert!(h.kv_get(&key("s4")).is_some(), "s4 still live");
    assert!(h.kv_get(&key("t")).is_some(), "t cached");
    assert_eq!(
        sent_since(&h, 0)
            .iter()
            .filter(|(_, t)| status_line(t) == "SIP/2.0 200 OK")
            .count(),
        5
    );
}

#[test]
fn the_cache_holds_timer_j_worth_of_requests_whatever_their_branches() {
    let h = host();
    // Branches in an order unrelated to time (sipp's `-pid-call-n` sort "-1-", "-10-", …);
    // two requests a second for 100 s.
    for i in 0..200u64 {
        let branch = format!("-77-{}-0", (i * 7919) % 1000);
        h.run(|| handle_at(&options(&branch), &udp(5070), T0 + i / 2));
    }
    let rows = h.run(|| switchboard_sdk::host::kv::scan("txn/", None, 10_000).unwrap());
    let (index, cached): (Vec<_>, Vec<_>) = rows.iter().partition(|(k, _)| k.starts_with("txn/~"));
    // The last 32 s (65 requests), give or take the sweep's lag of a request or two.
    assert!((64..=68).contains(&cached.len()), "{} cached", cached.len());
    assert_eq!(
        index.len(),
        cached.len(),
        "one index entry per cached response"
    );
}

#[test]
fn the_answer_s_via_names_where_the_request_came_from() {
    // RFC 3261 §18.2.1: `received` only when the sent-by is not the source address (or
    // `rport` asked for it, RFC 3581), a stale `received` dropped, other parameters kept.
    let h = host();
    let with_via = |via: &str| {
        String::from_utf8(options("v"))
            .unwrap()
            .replace("SIP/2.0/UDP pc.biloxi.com;branch=z9hG4bKv", via)
            .into_bytes()
    };
    let cases = [
        (
            "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKv1",
            "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKv1",
        ),
        (
            "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKv2;received=10.0.0.9;x=1;flag",
            "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKv2;x=1;flag;received=127.0.0.1",
        ),
        (
            "SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bKv3",
            "SIP/2.0/UDP 127.0.0.1;rport=5090;branch=z9hG4bKv3;received=127.0.0.1",
        ),
    ];
    for (i, (sent, answered)) in cases.iter().enumerate() {
        h.run(|| handle_at(&with_via(sent), &udp(5090), T0));
        let out = sent_since(&h, i);
        assert_eq!(header(&out[0].1, "Via"), Some(*answered), "{sent}");
    }
}
