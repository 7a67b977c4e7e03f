//! Framing: stream framer fed every split, datagram classification, head peeking and error
//! responses, plus property tests.

use bytes::Bytes;
use proptest::prelude::*;
use switchboard_sip_transport::framing::{
    classify_datagram, error_response, peek_head, Datagram, Frame, FrameError, Limits, StreamFramer,
};

const SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// RFC 3261 §24.2 F1-style INVITE with an SDP body.
fn invite() -> String {
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
         Max-Forwards: 70\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\n\
         Call-ID: 3848276298220188511@atlanta.example.com\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\
         \r\n{SDP}",
        SDP.len()
    )
}

/// RFC 3665 §2.1-style REGISTER without a body, lower-case header name.
fn register() -> String {
    "REGISTER sips:ss2.biloxi.example.com SIP/2.0\r\n\
     Via: SIP/2.0/TLS client.biloxi.example.com:5061;branch=z9hG4bKnashds7\r\n\
     Max-Forwards: 70\r\n\
     From: Bob <sips:bob@biloxi.example.com>;tag=a73kszlfl\r\n\
     To: Bob <sips:bob@biloxi.example.com>\r\n\
     Call-ID: 1j9FpLxk3uxtm8tn@biloxi.example.com\r\n\
     CSeq: 1 REGISTER\r\n\
     Contact: <sips:bob@client.biloxi.example.com>\r\n\
     content-length: 0\r\n\
     \r\n"
        .to_owned()
}

/// RFC 3428-style MESSAGE in compact form, whose body contains an empty line.
fn message_compact() -> String {
    let body = "Watson, come here.\r\n\r\nI want to see you.";
    format!(
        "MESSAGE sip:user2@domain.com SIP/2.0\r\n\
         v: SIP/2.0/TCP user1pc.domain.com;branch=z9hG4bK776sgdkse\r\n\
         Max-Forwards: 70\r\n\
         f: sip:user1@domain.com;tag=49583\r\n\
         t: sip:user2@domain.com\r\n\
         i: asd88asd77a@1.2.3.4\r\n\
         CSeq: 1 MESSAGE\r\n\
         c: text/plain\r\n\
         l  :  {} \r\n\
         \r\n{body}",
        body.len()
    )
}

/// A response, Content-Length folded onto a continuation line, repeated with the same value.
fn response_folded() -> String {
    "SIP/2.0 200 OK\r\n\
     Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
     From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
     To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n\
     Call-ID: 3848276298220188511@atlanta.example.com\r\n\
     CSeq: 1 INVITE\r\n\
     Content-Length:\r\n   4\r\n\
     Content-Length: 4\r\n\
     \r\nabcd"
        .to_owned()
}

/// A sloppy client's message with bare LF line ends.
fn bare_lf() -> String {
    "OPTIONS sip:server.example.com SIP/2.0\n\
     Via: SIP/2.0/TCP 192.0.2.4;branch=z9hG4bKopt1\n\
     From: <sip:probe@example.com>;tag=1\n\
     To: <sip:server.example.com>\n\
     Call-ID: opt-1\n\
     CSeq: 7 OPTIONS\n\
     Content-Length: 2\n\
     \nhi"
        .to_owned()
}

fn examples() -> Vec<String> {
    vec![
        invite(),
        register(),
        message_compact(),
        response_folded(),
        bare_lf(),
    ]
}

/// Pushes `chunks` one by one, draining frames after each; stops at the first error.
fn frame_chunks<'a>(
    limits: Limits,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Frame>, Option<FrameError>) {
    let mut framer = StreamFramer::new(limits);
    let mut frames = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

fn frame_whole(limits: Limits, data: &[u8]) -> (Vec<Frame>, Option<FrameError>) {
    frame_chunks(limits, [data])
}

/// Asserts that every single split and the byte-by-byte feed give the same outcome as
/// feeding `data` whole, and returns that outcome.
fn assert_split_invariant(limits: Limits, data: &[u8]) -> (Vec<Frame>, Option<FrameError>) {
    let whole = frame_whole(limits, data);
    for at in 0..=data.len() {
        let (a, b) = data.split_at(at);
        assert_eq!(frame_chunks(limits, [a, b]), whole, "split at {at}");
    }
    assert_eq!(frame_chunks(limits, data.chunks(1)), whole, "byte by byte");
    whole
}

fn msg(s: &str) -> Frame {
    Frame::Message(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn each_example_frames_identically_at_every_split() {
    for example in examples() {
        let (frames, err) = assert_split_invariant(Limits::default(), example.as_bytes());
        assert_eq!(err, None, "{example}");
        assert_eq!(frames, vec![msg(&example)], "{example}");
    }
}

#[test]
fn pipelined_stream_with_keepalives_frames_identically_at_every_split() {
    let stream = format!(
        "\r\n{}{}\r\n\r\n{}\r\n{}{}\r\n\r\n\r\n\r\n",
        invite(),
        register(),
        message_compact(),
        response_folded(),
        bare_lf()
    );
    let (frames, err) = assert_split_invariant(Limits::default(), stream.as_bytes());
    assert_eq!(err, None);
    assert_eq!(
        frames,
        vec![
            Frame::KeepAlivePong,
            msg(&invite()),
            msg(&register()),
            Frame::KeepAlivePing,
            msg(&message_compact()),
            Frame::KeepAlivePong,
            msg(&response_folded()),
            msg(&bare_lf()),
            Frame::KeepAlivePing,
            Frame::KeepAlivePing,
        ]
    );
}

#[test]
fn keepalives() {
    let limits = Limits::default();
    assert_eq!(
        frame_whole(limits, b"\r\n\r\n"),
        (vec![Frame::KeepAlivePing], None)
    );
    // A lone CRLF is reported once the next byte shows it is not the start of a ping.
    assert_eq!(frame_whole(limits, b"\r\n"), (vec![], None));
    assert_eq!(frame_whole(limits, b"\r\n\r"), (vec![], None));
    let (frames, _) = frame_whole(limits, format!("\r\n{}", register()).as_bytes());
    assert_eq!(frames, vec![Frame::KeepAlivePong, msg(&register())]);
    let (frames, _) = assert_split_invariant(limits, b"\r\n\r\n\r\n\r\n\r\n\r\n");
    assert_eq!(frames, vec![Frame::KeepAlivePing; 3]);
    // Leading CRLFs (and stray bare LFs) before a message never become part of it.
    let data = format!("\r\n\r\n\r\n\n{}", register());
    let (frames, _) = assert_split_invariant(limits, data.as_bytes());
    assert_eq!(
        frames,
        vec![Frame::KeepAlivePing, Frame::KeepAlivePong, msg(&register())]
    );
}

fn head_with(content_length_lines: &str) -> String {
    format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\n\
         From: <sip:alice@example.com>;tag=1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: cl-test\r\n\
         CSeq: 2 MESSAGE\r\n\
         {content_length_lines}\
         \r\nhello"
    )
}

/// The outcome of framing `data` must be this error, however the input is split, and the
/// frames before it must be the messages before the bad one.
fn assert_error(limits: Limits, data: &[u8], expected: FrameError) {
    let (frames, err) = assert_split_invariant(limits, data);
    assert!(frames.is_empty(), "{frames:?}");
    assert_eq!(err, Some(expected));
}

#[test]
fn missing_content_length() {
    let data = head_with("");
    assert_error(
        Limits::default(),
        data.as_bytes(),
        FrameError::MissingContentLength,
    );
    assert_eq!(
        FrameError::MissingContentLength.to_string(),
        "SIP message on a stream transport (TCP/TLS) has no Content-Length header \
         (required on stream transports, RFC 3261 §18.3)"
    );
}

#[test]
fn invalid_content_lengths() {
    for bad in [
        "abc",
        "-1",
        "+5",
        "5 5",
        "5;x",
        "0x10",
        "",
        "99999999999999999999999",
    ] {
        let data = head_with(&format!("Content-Length: {bad}\r\n"));
        assert_error(
            Limits::default(),
            data.as_bytes(),
            FrameError::InvalidContentLength {
                value: bad.to_owned(),
            },
        );
    }
    let e = FrameError::InvalidContentLength {
        value: "abc".into(),
    };
    assert_eq!(
        e.to_string(),
        "SIP message has an invalid Content-Length value \"abc\" (expected a decimal byte count)"
    );
}

#[test]
fn duplicate_content_lengths() {
    let data = head_with("Content-Length: 5\r\nl: 6\r\n");
    assert_error(
        Limits::default(),
        data.as_bytes(),
        FrameError::ConflictingContentLength {
            first: 5,
            second: 6,
        },
    );
    // Duplicates that agree are accepted.
    let data = head_with("Content-Length: 5\r\nl: 005\r\n");
    assert_eq!(
        frame_whole(Limits::default(), data.as_bytes()),
        (vec![msg(&data)], None)
    );
}

#[test]
fn header_too_large_fails_as_soon_as_the_limit_is_crossed() {
    let limits = Limits {
        max_header_bytes: 200,
        ..Limits::default()
    };
    let endless = format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\nX-Filler: {}",
        "a".repeat(1000)
    );
    let mut framer = StreamFramer::new(limits);
    for (i, byte) in endless.as_bytes().iter().enumerate() {
        framer.push(std::slice::from_ref(byte));
        match framer.next_frame() {
            Ok(None) => assert!(i + 1 < 200, "still buffering after {} bytes", i + 1),
            Err(e) => {
                assert_eq!(i + 1, 200, "failed after {} bytes", i + 1);
                assert_eq!(e, FrameError::HeaderTooLarge { limit: 200 });
                break;
            }
            Ok(Some(f)) => panic!("unexpected frame {f:?}"),
        }
    }
    // Once failed, the framer keeps failing and buffers nothing more.
    framer.push(&[b'x'; 10_000]);
    assert_eq!(
        framer.next_frame(),
        Err(FrameError::HeaderTooLarge { limit: 200 })
    );
    assert_eq!(framer.buffered().len(), 200);
    assert!(framer
        .buffered()
        .starts_with(b"MESSAGE sip:bob@example.com"));

    // A complete header beyond the limit fails the same way, however it arrives.
    let data = head_with(&format!(
        "X-Filler: {}\r\nContent-Length: 5\r\n",
        "a".repeat(300)
    ));
    assert_error(
        limits,
        data.as_bytes(),
        FrameError::HeaderTooLarge { limit: 200 },
    );
    // The message limit caps the header too.
    let tiny = Limits {
        max_message_bytes: 100,
        max_header_bytes: 16_384,
    };
    assert_error(
        tiny,
        data.as_bytes(),
        FrameError::HeaderTooLarge { limit: 100 },
    );
}

#[test]
fn header_and_message_exactly_at_the_limits_pass() {
    let data = head_with("Content-Length: 5\r\n");
    let header = data.len() - 5;
    let exact = Limits {
        max_message_bytes: data.len(),
        max_header_bytes: header,
    };
    assert_eq!(
        assert_split_invariant(exact, data.as_bytes()),
        (vec![msg(&data)], None)
    );
    let short_header = Limits {
        max_header_bytes: header - 1,
        ..exact
    };
    assert_error(
        short_header,
        data.as_bytes(),
        FrameError::HeaderTooLarge { limit: header - 1 },
    );
    let short_message = Limits {
        max_message_bytes: data.len() - 1,
        ..exact
    };
    assert_error(
        short_message,
        data.as_bytes(),
        FrameError::MessageTooLarge {
            header,
            body: 5,
            limit: data.len() - 1,
        },
    );
}

#[test]
fn body_too_large_fails_before_the_body_is_buffered() {
    let header = head_with("Content-Length: 70000\r\n");
    let header = header.strip_suffix("hello").unwrap_or(&header);
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(header.as_bytes());
    let expected = FrameError::MessageTooLarge {
        header: header.len(),
        body: 70_000,
        limit: 65_535,
    };
    assert_eq!(framer.next_frame(), Err(expected.clone()));
    assert_eq!(
        expected.to_string(),
        format!(
            "SIP message body of 70000 bytes (after a {}-byte header) exceeds the limit of 65535 bytes for \
             the whole message",
            header.len()
        )
    );
    // u64::MAX does not overflow anything.
    let data = head_with(&format!("Content-Length: {}\r\n", u64::MAX));
    let (_, err) = frame_whole(Limits::default(), data.as_bytes());
    assert!(
        matches!(
            err,
            Some(FrameError::MessageTooLarge { body: u64::MAX, .. })
        ),
        "{err:?}"
    );
}

#[test]
fn a_bad_message_after_good_ones_yields_the_good_ones_first() {
    let data = format!("{}{}{}", register(), invite(), head_with(""));
    let (frames, err) = assert_split_invariant(Limits::default(), data.as_bytes());
    assert_eq!(frames, vec![msg(&register()), msg(&invite())]);
    assert_eq!(err, Some(FrameError::MissingContentLength));
}

#[test]
fn the_buffer_after_an_error_answers_with_the_right_headers() {
    let data = head_with("");
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(data.as_bytes());
    let err = framer.next_frame().unwrap_err();
    let (code, reason) = err.response_status();
    assert_eq!((code, reason), (400, "Bad Request"));
    let response = error_response(framer.buffered(), code, reason).expect("response");
    let head = peek_head(&response).expect("parseable");
    assert_eq!(head.status, Some(400));
    assert_eq!(head.call_id, ["cl-test"]);
    assert_eq!(head.cseq, ["2 MESSAGE"]);
}

// ---------------------------------------------------------------------------------------------
// Datagrams

#[test]
fn datagram_messages() {
    let limits = Limits::default();
    let reg = register();
    assert_eq!(
        classify_datagram(reg.as_bytes(), limits),
        Ok(Datagram::Message(reg.as_bytes()))
    );
    // Leading CRLFs are dropped.
    let with_crlf = format!("\r\n\r\n{reg}");
    assert_eq!(
        classify_datagram(with_crlf.as_bytes(), limits),
        Ok(Datagram::Message(reg.as_bytes()))
    );
    // Content-Length is optional on UDP: the body runs to the end of the datagram.
    let no_cl = head_with("");
    assert_eq!(
        classify_datagram(no_cl.as_bytes(), limits),
        Ok(Datagram::Message(no_cl.as_bytes()))
    );
    // Bytes beyond Content-Length are discarded.
    let padded = format!("{}trailing junk", head_with("Content-Length: 5\r\n"));
    let exact = head_with("Content-Length: 5\r\n");
    assert_eq!(
        classify_datagram(padded.as_bytes(), limits),
        Ok(Datagram::Message(exact.as_bytes()))
    );
    let short = head_with("Content-Length: 3\r\n");
    let Ok(Datagram::Message(m)) = classify_datagram(short.as_bytes(), limits) else {
        panic!("not a message")
    };
    assert!(m.ends_with(b"\r\n\r\nhel"));
}

#[test]
fn datagram_keepalives() {
    let limits = Limits::default();
    for ka in [&b"\r\n"[..], b"\r\n\r\n", b""] {
        assert_eq!(
            classify_datagram(ka, limits),
            Ok(Datagram::KeepAlive),
            "{ka:?}"
        );
    }
}

#[test]
fn datagram_errors() {
    let limits = Limits {
        max_message_bytes: 1000,
        ..Limits::default()
    };
    let big = vec![b'a'; 1001];
    assert_eq!(
        classify_datagram(&big, limits),
        Err(FrameError::DatagramTooLarge {
            size: 1001,
            limit: 1000
        })
    );
    assert_eq!(
        FrameError::DatagramTooLarge {
            size: 1001,
            limit: 1000
        }
        .to_string(),
        "SIP datagram of 1001 bytes exceeds the limit of 1000 bytes"
    );
    let long_cl = head_with("Content-Length: 50\r\n");
    let expected = FrameError::TruncatedDatagram {
        content_length: 50,
        available: 5,
    };
    assert_eq!(
        classify_datagram(long_cl.as_bytes(), limits),
        Err(expected.clone())
    );
    assert_eq!(
        expected.to_string(),
        "SIP datagram announces a Content-Length of 50 bytes but carries only 5 bytes of body"
    );
    let bad_cl = head_with("Content-Length: five\r\n");
    assert_eq!(
        classify_datagram(bad_cl.as_bytes(), limits),
        Err(FrameError::InvalidContentLength {
            value: "five".into()
        })
    );
    let dup = head_with("l: 5\r\nContent-Length: 4\r\n");
    assert_eq!(
        classify_datagram(dup.as_bytes(), limits),
        Err(FrameError::ConflictingContentLength {
            first: 5,
            second: 4
        })
    );
    assert_eq!(
        classify_datagram(b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n", limits),
        Err(FrameError::UnterminatedHeader)
    );
    let small_header = Limits {
        max_header_bytes: 50,
        ..limits
    };
    assert_eq!(
        classify_datagram(register().as_bytes(), small_header),
        Err(FrameError::HeaderTooLarge { limit: 50 })
    );
}

// ---------------------------------------------------------------------------------------------
// Heads and error responses

const TWO_VIAS: &str = "MESSAGE sip:bob@example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1\r\n\
    v: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKc1;rport\r\n\
    Max-Forwards: 69\r\n\
    f: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
    To: <sip:bob@example.com>;tag=b2\r\n\
    i: call-7@192.0.2.7\r\n\
    CSeq: 12 MESSAGE\r\n\
    Content-Type: text/plain\r\n\
    Content-Length: 2\r\n\
    \r\nhi";

#[test]
fn peek_head_of_a_request() {
    let head = peek_head(TWO_VIAS.as_bytes()).expect("parseable");
    assert_eq!(head.method.as_deref(), Some("MESSAGE"));
    assert!(head.is_request());
    assert_eq!(head.status, None);
    assert_eq!(
        head.via,
        [
            "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1",
            "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKc1;rport"
        ]
    );
    assert_eq!(head.from, ["\"Alice\" <sip:alice@example.com>;tag=a1"]);
    assert_eq!(head.to, ["<sip:bob@example.com>;tag=b2"]);
    assert_eq!(head.call_id, ["call-7@192.0.2.7"]);
    assert_eq!(head.cseq, ["12 MESSAGE"]);
}

#[test]
fn peek_head_of_a_response_and_of_garbage() {
    let head = peek_head(response_folded().as_bytes()).expect("parseable");
    assert_eq!(head.method, None);
    assert_eq!(head.status, Some(200));
    assert_eq!(head.cseq, ["1 INVITE"]);
    assert_eq!(peek_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
    assert_eq!(peek_head(b""), None);
    assert_eq!(peek_head(b"\x00\x01\x02"), None);
}

#[test]
fn error_response_copies_headers_in_order() {
    let response = error_response(TWO_VIAS.as_bytes(), 400, "Bad Request").expect("response");
    assert_eq!(
        String::from_utf8(response).expect("utf-8"),
        "SIP/2.0 400 Bad Request\r\n\
         Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1\r\n\
         Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKc1;rport\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>;tag=b2\r\n\
         Call-ID: call-7@192.0.2.7\r\n\
         CSeq: 12 MESSAGE\r\n\
         Content-Length: 0\r\n\
         \r\n"
    );
}

#[test]
fn error_response_adds_a_stable_to_tag() {
    let request = invite();
    let first = error_response(request.as_bytes(), 503, "Service Unavailable").expect("response");
    let again = error_response(request.as_bytes(), 503, "Service Unavailable").expect("response");
    assert_eq!(first, again, "a retransmission gets the same tag");
    let head = peek_head(&first).expect("parseable");
    assert_eq!(head.status, Some(503));
    let to = &head.to[0];
    let tag = to
        .strip_prefix("Bob <sip:bob@biloxi.example.com>;tag=")
        .expect("tag added");
    assert_eq!(tag.len(), 16);
    assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()));
    // No tag on 100 Trying.
    let trying = peek_head(&error_response(request.as_bytes(), 100, "Trying").expect("response"))
        .expect("parse");
    assert_eq!(trying.to, ["Bob <sip:bob@biloxi.example.com>"]);
    // A different transaction gets a different tag.
    let other = request.replace("CSeq: 1 INVITE", "CSeq: 2 INVITE");
    let other =
        peek_head(&error_response(other.as_bytes(), 503, "Service Unavailable").expect("r"))
            .expect("p");
    assert_ne!(other.to, head.to);
}

#[test]
fn error_response_refuses_what_must_not_be_answered() {
    let ack = invite()
        .replace("INVITE sip:", "ACK sip:")
        .replace("1 INVITE", "1 ACK");
    assert_eq!(error_response(ack.as_bytes(), 400, "Bad Request"), None);
    assert_eq!(
        error_response(response_folded().as_bytes(), 400, "Bad Request"),
        None
    );
    assert_eq!(error_response(b"garbage\r\n\r\n", 400, "Bad Request"), None);
    assert_eq!(error_response(b"", 400, "Bad Request"), None);
    let no_cseq = invite().replace("CSeq: 1 INVITE\r\n", "");
    assert_eq!(error_response(no_cseq.as_bytes(), 400, "Bad Request"), None);
    assert_eq!(error_response(invite().as_bytes(), 99, "Nope"), None);
    assert_eq!(error_response(invite().as_bytes(), 700, "Nope"), None);
}

#[test]
fn error_response_sanitises_the_reason_and_uses_long_names() {
    let request = message_compact();
    let response = error_response(request.as_bytes(), 413, "Request Entity\r\nX-Injected: 1")
        .expect("response");
    let text = String::from_utf8(response).expect("utf-8");
    assert!(
        text.starts_with("SIP/2.0 413 Request Entity  X-Injected: 1\r\nVia: SIP/2.0/TCP user1pc"),
        "{text}"
    );
    assert!(
        text.contains("\r\nFrom: sip:user1@domain.com;tag=49583\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nCall-ID: asd88asd77a@1.2.3.4\r\n"),
        "{text}"
    );
}

#[test]
fn error_response_from_a_truncated_prefix_uses_complete_lines_only() {
    // Cut inside the CSeq line: no response (the value could be truncated).
    let request = invite();
    let cut = request.find("CSeq: 1 INV").expect("cseq") + "CSeq: 1 INV".len();
    assert_eq!(
        error_response(&request.as_bytes()[..cut], 513, "Message Too Large"),
        None
    );
    // Cut after the CSeq line: a response with the whole values.
    let cut = request.find("Contact:").expect("contact");
    let head = peek_head(
        &error_response(&request.as_bytes()[..cut], 513, "Message Too Large").expect("r"),
    )
    .expect("p");
    assert_eq!(head.cseq, ["1 INVITE"]);
}

// ---------------------------------------------------------------------------------------------
// Properties

/// One item of a generated stream: leading pings, an optional pong, then a message.
#[derive(Debug, Clone)]
struct Item {
    pings: usize,
    pong: bool,
    message: Vec<u8>,
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.!%*_+`'~-]{1,12}"
}

fn value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>@;=:./\"-]{0,40}"
}

/// A valid message: random method and header fields, a Content-Length under one of its names,
/// CRLF or bare LF line ends, and an arbitrary binary body.
fn message_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just("INVITE".to_owned()),
            Just("MESSAGE".to_owned()),
            token()
        ],
        prop::collection::vec((token(), value()), 0..6),
        prop::collection::vec(any::<u8>(), 0..300),
        prop_oneof![
            Just("Content-Length"),
            Just("l"),
            Just("CONTENT-LENGTH"),
            Just("content-length\t ")
        ],
        prop::bool::ANY,
    )
        .prop_map(|(method, headers, body, cl_name, lf)| {
            let eol = if lf { "\n" } else { "\r\n" };
            let mut m = format!("{method} sip:x@example.com SIP/2.0{eol}");
            for (name, value) in headers {
                // Never a second Content-Length.
                let name = if name.eq_ignore_ascii_case("l")
                    || name.eq_ignore_ascii_case("content-length")
                {
                    "X-Other".to_owned()
                } else {
                    name
                };
                m.push_str(&format!("{name}: {value}{eol}"));
            }
            m.push_str(&format!("{cl_name}: {}{eol}{eol}", body.len()));
            let mut m = m.into_bytes();
            m.extend_from_slice(&body);
            m
        })
}

fn stream_strategy() -> impl Strategy<Value = (Vec<Item>, usize)> {
    (
        prop::collection::vec((0..3usize, prop::bool::ANY, message_strategy()), 0..6),
        0..3usize,
    )
        .prop_map(|(items, trailing)| {
            (
                items
                    .into_iter()
                    .map(|(pings, pong, message)| Item {
                        pings,
                        pong,
                        message,
                    })
                    .collect(),
                trailing,
            )
        })
}

fn chunked(data: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.iter_mut().for_each(|c| *c %= data.len() + 1);
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts {
        out.push(&data[start..cut]);
        start = cut;
    }
    out.push(&data[start..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_streams_round_trip_at_random_splits(
        (items, trailing) in stream_strategy(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut data = Vec::new();
        let mut expected = Vec::new();
        for item in &items {
            for _ in 0..item.pings {
                data.extend_from_slice(b"\r\n\r\n");
                expected.push(Frame::KeepAlivePing);
            }
            if item.pong {
                data.extend_from_slice(b"\r\n");
                expected.push(Frame::KeepAlivePong);
            }
            data.extend_from_slice(&item.message);
            expected.push(Frame::Message(Bytes::copy_from_slice(&item.message)));
        }
        for _ in 0..trailing {
            data.extend_from_slice(b"\r\n\r\n");
            expected.push(Frame::KeepAlivePing);
        }
        let chunks = chunked(&data, cuts);
        prop_assert_eq!(frame_chunks(Limits::default(), chunks), (expected, None));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        max_message in 0usize..3000,
        max_header in 0usize..3000,
    ) {
        let limits = Limits { max_message_bytes: max_message, max_header_bytes: max_header };
        let whole = frame_whole(limits, &data);
        // Split invariance holds for garbage too.
        prop_assert_eq!(frame_chunks(limits, chunked(&data, cuts)), whole);
        let _ = classify_datagram(&data, limits);
        let _ = peek_head(&data);
        if let Some(response) = error_response(&data, 400, "Bad Request") {
            // Whatever we answer is itself a well-formed response.
            let head = peek_head(&response).expect("own response parses");
            prop_assert_eq!(head.status, Some(400));
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        pick in 0usize..5,
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut data = examples()[pick].clone().into_bytes();
        for (at, byte) in edits {
            let at = at % data.len();
            data[at] = byte;
        }
        let whole = frame_whole(Limits::default(), &data);
        prop_assert_eq!(frame_chunks(Limits::default(), chunked(&data, cuts)), whole);
        let _ = classify_datagram(&data, Limits::default());
        let _ = peek_head(&data);
        let _ = error_response(&data, 513, "Message Too Large");
    }
}

#[test]
fn top_branch_names_the_transaction() {
    let head = |m: &str| peek_head(m.as_bytes()).expect("parseable");
    let req = "MESSAGE sip:bob@example.com SIP/2.0\r\n\
        v: SIP/2.0/UDP 10.0.0.1:5060 ; rport ; BRANCH = z9hG4bK776asdhds , SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKother\r\n\
        Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKthird\r\n\r\n";
    assert_eq!(head(req).top_branch(), Some("z9hG4bK776asdhds"));
    let resp =
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;received=1.2.3.4;branch=z9hG4bKa\r\n\r\n";
    assert_eq!(head(resp).top_branch(), Some("z9hG4bKa"));
    let none = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;rport\r\n\r\n";
    assert_eq!(head(none).top_branch(), None);
    let empty = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=\r\n\r\n";
    assert_eq!(head(empty).top_branch(), None);
    assert_eq!(head("OPTIONS sip:x SIP/2.0\r\n\r\n").top_branch(), None);
}
