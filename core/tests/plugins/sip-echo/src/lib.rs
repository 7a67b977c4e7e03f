//! Test fixture: a SIP frontend built by string manipulation. Never deploy this.
//!
//! * Every request (except ACK) is answered `200 OK`, with `X-Echo-Tag` (the `tag` setting)
//!   and `X-Echo-Transport`: on the flow it came in on (TCP/TLS, `send-flow`) or to its source
//!   address (UDP, `send-to`).
//! * `REGISTER` stores where the user (from `To`) can be reached in kv: transport, address
//!   and flow.
//! * `MESSAGE sip:relay@…` with `X-Relay-To: USER` forwards its body as a new MESSAGE to
//!   USER's registered flow (or, with `X-Relay-Via: target`, with `send-to` to the registered
//!   address; on UDP always so). The sender gets `200 OK` if the core accepted the forward,
//!   else `480 Temporarily Unavailable` with the error in `X-Error`. `X-Relay-Target:
//!   TRANSPORT IP:PORT` sends there with `send-to` instead of looking USER up.
//! * Responses are dropped. A `CRASH` request panics (a plugin fault).

use switchboard_sdk::sip::Origin;
use switchboard_sdk::{host, Error, SipFrontend};

/// The plugin.
pub struct Echo;

/// A parsed message: start line, header fields in order, body.
struct Msg<'a> {
    start: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

fn parse(message: &[u8]) -> Option<Msg<'_>> {
    let end = message.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(message.get(..end)?).ok()?;
    let body = message.get(end + 4..)?;
    let mut lines = head.split("\r\n");
    let start = lines.next()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .collect();
    Some(Msg {
        start,
        headers,
        body,
    })
}

impl<'a> Msg<'a> {
    fn all(&self, name: &str) -> Vec<&'a str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    }
    fn one(&self, name: &str) -> Option<&'a str> {
        self.all(name).first().copied()
    }
    fn method(&self) -> Option<&'a str> {
        if self.start.starts_with("SIP/2.0") {
            return None;
        }
        self.start.split(' ').next()
    }
    fn uri_user(&self) -> Option<&'a str> {
        user_of(self.start.split(' ').nth(1)?)
    }
}

/// `alice` from `<sip:alice@example.com>;tag=1`.
fn user_of(value: &str) -> Option<&str> {
    let at = value.find("sip:")? + 4;
    let rest = value.get(at..)?;
    rest.get(..rest.find('@')?)
}

fn response(
    req: &Msg<'_>,
    origin: &Origin,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in req.all("Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    if let Some(from) = req.one("From") {
        out.push_str(&format!("From: {from}\r\n"));
    }
    if let Some(to) = req.one("To") {
        let tag = if to.contains(";tag=") {
            ""
        } else {
            ";tag=echo"
        };
        out.push_str(&format!("To: {to}{tag}\r\n"));
    }
    for name in ["Call-ID", "CSeq"] {
        if let Some(v) = req.one(name) {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    let tag = host::config::get("tag").unwrap_or_default();
    out.push_str(&format!("X-Echo-Tag: {tag}\r\n"));
    out.push_str(&format!("X-Echo-Transport: {}\r\n", origin.transport));
    for (n, v) in extra {
        // One line whatever the value holds.
        let v: String = v
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// Answer on the flow the request came in on, or to its source address.
fn send_back(origin: &Origin, message: &[u8]) {
    let sent = match origin.flow {
        Some(flow) => host::sip_transport::send_flow(flow, message),
        None => host::sip_transport::send_to(&origin.transport, &origin.peer, message),
    };
    if let Err(e) = sent {
        host::log::write(host::log::Level::Warn, &format!("reply not sent: {e}"));
    }
}

/// Where a registered user is: `transport peer flow` (flow `-` for UDP).
fn registration(origin: &Origin) -> String {
    let flow = origin.flow.map_or("-".to_string(), |f| f.to_string());
    format!("{} {} {flow}", origin.transport, origin.peer)
}

fn relay(req: &Msg<'_>) -> Result<(), Error> {
    let user = req
        .one("X-Relay-To")
        .ok_or_else(|| Error::Invalid("no X-Relay-To".into()))?;
    let stored = match req.one("X-Relay-Target") {
        // `transport ip:port`, straight to send-to.
        Some(target) => format!("{target} -"),
        None => {
            let stored = host::kv::get(&format!("reg/{user}"))?
                .ok_or_else(|| Error::NotFound(format!("{user} is not registered")))?;
            String::from_utf8_lossy(&stored).into_owned()
        }
    };
    let mut parts = stored.split(' ');
    let (transport, peer, flow) = (
        parts.next().unwrap_or("udp"),
        parts.next().unwrap_or(""),
        parts.next().and_then(|f| f.parse::<u64>().ok()),
    );
    let call_id = req.one("Call-ID").unwrap_or("none");
    let mut message = format!(
        "MESSAGE sip:{user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/{} switchboard.invalid;branch=z9hG4bK-relay\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:relay@example.com>;tag=relay\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: relay-{call_id}\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n",
        transport.to_ascii_uppercase(),
        req.body.len()
    )
    .into_bytes();
    message.extend_from_slice(req.body);
    let by_target = req.one("X-Relay-Via") == Some("target");
    match flow {
        Some(flow) if !by_target => host::sip_transport::send_flow(flow, &message),
        _ => host::sip_transport::send_to(transport, peer, &message),
    }
}

impl SipFrontend for Echo {
    fn handle(message: Vec<u8>, origin: Origin) {
        let Some(req) = parse(&message) else {
            return;
        };
        let Some(method) = req.method() else {
            return; // a response: nothing to do in this fixture
        };
        match method {
            "ACK" => {}
            "CRASH" => panic!("sip-echo crashes on request"),
            "REGISTER" => {
                let stored = match req.one("To").and_then(user_of) {
                    Some(user) => {
                        host::kv::set(&format!("reg/{user}"), registration(&origin).as_bytes())
                    }
                    None => Err(Error::Invalid("no user in To".into())),
                };
                let reply = match stored {
                    Ok(()) => response(&req, &origin, 200, "OK", &[]),
                    Err(e) => response(
                        &req,
                        &origin,
                        400,
                        "Bad Request",
                        &[("X-Error", &e.to_string())],
                    ),
                };
                send_back(&origin, &reply);
            }
            "MESSAGE" if req.uri_user() == Some("relay") => {
                let reply = match relay(&req) {
                    Ok(()) => response(&req, &origin, 200, "OK", &[]),
                    Err(e) => response(
                        &req,
                        &origin,
                        480,
                        "Temporarily Unavailable",
                        &[("X-Error", &e.to_string())],
                    ),
                };
                send_back(&origin, &reply);
            }
            _ => send_back(&origin, &response(&req, &origin, 200, "OK", &[])),
        }
    }
}

switchboard_sdk::export_wasm!(sip_frontend: Echo);
switchboard_sdk::export_native!(sip_frontend: Echo);
