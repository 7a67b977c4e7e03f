//! Server transactions and dispatch: parse, validate, answer retransmissions from the kv
//! response cache, route by method, send the final response back to the source.

use switchboard_sdk::host::{self, kv, Commit};
use switchboard_sdk::sip::Origin;
use switchboard_sip_proto::{Message, Method};

use crate::util::{reason_text, Settings, Target};
use crate::{im, presence, registrar, SipError};

/// How long a final response stays cached: 64·T1 = 32 s (RFC 3261 timer J).
pub const CACHE_SECS: u64 = 32;
/// Methods we answer (also the `Allow` header).
pub const ALLOW: &str = "REGISTER, MESSAGE, SUBSCRIBE, PUBLISH, OPTIONS, ACK";
/// Option tags we support (also the `Supported` header).
pub const SUPPORTED: &str = "outbound, path";
/// Longest branch we key the cache by.
const MAX_BRANCH: usize = 128;
/// Longest cache key (the host allows 512 bytes, the expiry index adds 16).
const MAX_KEY: usize = 480;

/// Everything a handler needs about the message being handled.
#[derive(Debug)]
pub struct Ctx<'o> {
    /// Where it came from.
    pub origin: &'o Origin,
    /// Unix seconds.
    pub now: u64,
    /// Settings.
    pub settings: Settings,
    /// The response-cache key of the request (see [`remember`]), computed once.
    pub cache_key: Option<String>,
}

impl Ctx<'_> {
    /// Back to the source.
    pub fn source(&self) -> Target {
        Target::of(self.origin)
    }
}

/// Handle one framed message at time `now` (Unix seconds).
pub fn handle_at(raw: &[u8], origin: &Origin, now: u64) {
    let msg = match Message::parse(raw) {
        Ok(m) => m,
        Err(e) => {
            if !raw.starts_with(b"SIP/") {
                fallback_error(raw, origin, e.status_code(), &e.to_string());
            }
            return;
        }
    };
    let mut ctx = Ctx {
        origin,
        now,
        settings: Settings::load(),
        cache_key: None,
    };
    if !msg.is_request() {
        im::on_response(&msg, &ctx);
        return;
    }
    if let Err(e) = msg.validate_request() {
        // A request the parser took but that lacks what every request needs. Answer with the
        // precise reason if we can build a response at all.
        match Message::response_to(&msg, e.status_code(), reason_text(&e.to_string())) {
            Ok(resp) => {
                send_reply(&ctx, &msg, resp, false);
            }
            Err(_) => fallback_error(raw, origin, e.status_code(), &e.to_string()),
        }
        return;
    }
    let Some(method) = msg.method().cloned() else {
        return;
    };
    if method == Method::Ack {
        return; // no INVITE transactions here; ACKs for our non-2xx finals end silently
    }
    ctx.cache_key = cache_key(&msg);
    if let Some(key) = &ctx.cache_key {
        if replay(key, &msg, &ctx) {
            return;
        }
    }
    let outcome = dispatch(&msg, &method, &ctx);
    let resp = match outcome {
        Ok(resp) => resp,
        Err(e) => error_response(&msg, &e),
    };
    let Some(resp) = resp else {
        return;
    };
    let bytes = send_reply(&ctx, &msg, resp, true);
    if let (Some(key), Some(bytes)) = (&ctx.cache_key, bytes) {
        store_cache(key, &bytes, now);
    }
}

fn dispatch<'r>(
    msg: &'r Message<'_>,
    method: &Method<'_>,
    ctx: &Ctx<'_>,
) -> crate::Result<Option<Message<'r>>> {
    if let Some(unsupported) = unsupported_requires(msg)? {
        let mut r = Message::response_to(msg, 420, "Bad Extension").map_err(proto)?;
        r.push_header("Unsupported", unsupported).map_err(proto)?;
        return Ok(Some(r));
    }
    match method {
        Method::Register => registrar::register(msg, ctx),
        Method::Message => im::message(msg, ctx),
        Method::Publish => presence::publish(msg, ctx),
        Method::Subscribe => presence::subscribe(msg, ctx),
        Method::Options => {
            let mut r = Message::response_to(msg, 200, "OK").map_err(proto)?;
            r.push_header("Allow", ALLOW).map_err(proto)?;
            r.push_header("Supported", SUPPORTED).map_err(proto)?;
            r.push_header("Accept", "text/plain, application/pidf+xml")
                .map_err(proto)?;
            Ok(Some(r))
        }
        Method::Cancel => Ok(Some(
            Message::response_to(msg, 481, "Call/Transaction Does Not Exist").map_err(proto)?,
        )),
        _ => {
            let mut r = Message::response_to(msg, 405, "Method Not Allowed").map_err(proto)?;
            r.push_header("Allow", ALLOW).map_err(proto)?;
            Ok(Some(r))
        }
    }
}

/// Option tags in `Require` we do not support, comma-separated (`None`: all supported).
fn unsupported_requires(msg: &Message<'_>) -> crate::Result<Option<String>> {
    let req = msg
        .require()
        .map_err(|e| SipError::status(400, reason_text(&e.to_string())))?;
    let bad: Vec<&str> = req
        .into_iter()
        .filter(|t| {
            !SUPPORTED
                .split(", ")
                .any(|s| s.eq_ignore_ascii_case(t.trim()))
        })
        .collect();
    Ok((!bad.is_empty()).then(|| bad.join(", ")))
}

/// A proto builder error as a 500 (our bug, not the client's).
pub fn proto(e: switchboard_sip_proto::Error) -> SipError {
    SipError::status(500, reason_text(&format!("Server Internal Error: {e}")))
}

fn error_response<'r>(msg: &'r Message<'_>, e: &SipError) -> Option<Message<'r>> {
    let (code, reason) = match e {
        SipError::Challenge { code, challenge } => {
            let (reason, header) = if *code == 407 {
                ("Proxy Authentication Required", "Proxy-Authenticate")
            } else {
                ("Unauthorized", "WWW-Authenticate")
            };
            let mut r = Message::response_to(msg, *code, reason).ok()?;
            r.push_header(header, challenge.clone()).ok()?;
            return Some(r);
        }
        SipError::TooBrief(min) => {
            let mut r = Message::response_to(msg, 423, "Interval Too Brief").ok()?;
            r.push_header("Min-Expires", min.to_string()).ok()?;
            return Some(r);
        }
        SipError::Status(code, reason) => (*code, reason.clone()),
        SipError::Host(err) => {
            host::log::warn(&format!("sip: host call failed: {err}"));
            match err {
                switchboard_sdk::Error::Unavailable(_) | switchboard_sdk::Error::Quota(_) => {
                    (503, "Service Unavailable".to_string())
                }
                _ => (500, "Server Internal Error".to_string()),
            }
        }
    };
    let mut r = Message::response_to(msg, code, reason_text(&reason)).ok()?;
    if code == 503 {
        r.push_header("Retry-After", "5").ok()?;
    }
    Some(r)
}

/// Fill in `received`/`rport` on the top Via (RFC 3261 §18.2.1, RFC 3581 §4) and send the
/// response to the source: the flow it came on, or its address (which is what `received`
/// and `rport` name). Returns the bytes sent, for the cache (`cacheable`: a final response).
pub fn send_reply(
    ctx: &Ctx<'_>,
    req: &Message<'_>,
    mut resp: Message<'_>,
    cacheable: bool,
) -> Option<Vec<u8>> {
    let peer = ctx.origin.peer.parse::<std::net::SocketAddr>();
    if let (Ok(via), Ok(peer)) = (req.top_via(), peer) {
        use std::fmt::Write;
        // One string, written in place: this runs for every answer.
        let ip = peer.ip().to_string();
        let mut value = String::with_capacity(160);
        let _ = write!(value, "{}/{}/{} ", via.protocol, via.version, via.transport);
        let host_at = value.len();
        let _ = write!(value, "{}", via.host);
        let sent_by_peer = value[host_at..].trim_matches(['[', ']']) == ip;
        if let Some(p) = via.port {
            let _ = write!(value, ":{p}");
        }
        let mut had_rport = false;
        for (name, v) in via.params.iter() {
            if name.eq_ignore_ascii_case("received") {
                continue;
            }
            value.push(';');
            if name.eq_ignore_ascii_case("rport") {
                had_rport = true;
                let _ = write!(value, "rport={}", peer.port());
                continue;
            }
            value.push_str(name);
            if let Some(v) = v {
                value.push('=');
                value.push_str(v);
            }
        }
        if !sent_by_peer || had_rport {
            value.push_str(";received=");
            value.push_str(&ip);
        }
        resp.pop_via();
        let _ = resp.push_via(value);
    }
    let _ = resp.set_header("Server", "Switchboard");
    let bytes = resp.to_bytes();
    if let Err(e) = ctx.source().send(&bytes) {
        host::log::warn(&format!(
            "sip: response to {} not sent: {e}",
            ctx.origin.peer
        ));
    }
    (cacheable && resp.status().is_some_and(|s| s >= 200)).then_some(bytes)
}

/// The response-cache key of a request: top Via branch, sent-by and method (RFC 3261
/// §17.2.3). Only RFC 3261 branches (magic cookie) are trusted to be unique.
fn cache_key(msg: &Message<'_>) -> Option<String> {
    let via = msg.top_via().ok()?;
    if !via.has_rfc3261_branch() {
        return None;
    }
    let branch = via.branch()?;
    if branch.len() > MAX_BRANCH {
        return None;
    }
    let sent_by = match via.port {
        Some(p) => format!("{}:{p}", via.host),
        None => via.host.to_string(),
    };
    let method = msg.method()?;
    let key = format!("txn/{branch}|{sent_by}|{}", method.as_str());
    // Room for the expiry index's longer key within the host's 512-byte limit.
    (key.len() <= MAX_KEY).then_some(key)
}

/// Marks a cache entry holding a status line rather than a response (see [`remember_status`]).
const STATUS_ONLY: u8 = b'=';

/// Resend a cached final response to `req`, a retransmission; true when there was one.
fn replay(key: &str, req: &Message<'_>, ctx: &Ctx<'_>) -> bool {
    let Ok(Some(raw)) = kv::get(key) else {
        return false;
    };
    let Some(nl) = raw.iter().position(|&b| b == b'\n') else {
        return false;
    };
    let expires: u64 = std::str::from_utf8(&raw[..nl])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if expires <= ctx.now {
        let _ = kv::delete(key);
        return false;
    }
    let cached = &raw[nl + 1..];
    if let Some(status) = cached.strip_prefix(&[STATUS_ONLY]) {
        // Built again from the retransmission: the same bytes as the first time (the To tag
        // of `response_to` is derived from the request).
        let status = std::str::from_utf8(status).unwrap_or_default();
        let (code, reason) = status.split_once(' ').unwrap_or((status, ""));
        match code
            .parse()
            .map(|code| Message::response_to(req, code, reason))
        {
            Ok(Ok(resp)) => {
                send_reply(ctx, req, resp, false);
            }
            _ => host::log::warn(&format!("sip: cached status {status:?} not resent")),
        }
        return true;
    }
    if let Err(e) = ctx.source().send(cached) {
        host::log::warn(&format!("sip: cached response not resent: {e}"));
    }
    true
}

/// Cache a final response a handler sent itself (see [`crate::presence::subscribe`]).
pub fn remember(req: &Message<'_>, bytes: &[u8], now: u64) {
    if let Some(key) = cache_key(req) {
        store_cache(&key, bytes, now);
    }
}

/// Cache a final response a handler sent itself that is exactly
/// `Message::response_to(req, code, reason)` (no header added) and went through
/// [`send_reply`]: only the status is kept, and a retransmission is answered with the response
/// built again. Twenty-odd bytes instead of the response (hundreds): the cache holds every
/// request of the last 32 s, and the sweep reads some of it back on every request.
pub fn remember_status(ctx: &Ctx<'_>, code: u16, reason: &str) {
    if let Some(key) = &ctx.cache_key {
        let mut value = Vec::with_capacity(8 + reason.len());
        value.push(STATUS_ONLY);
        value.extend_from_slice(format!("{code} {reason}").as_bytes());
        store_cache(key, &value, ctx.now);
    }
}

/// Where the cache's expiry index lives: `txn/~exp/{expires:010}/{key without "txn/"}`, one
/// empty entry per cached response, so the entries sort oldest first. (`~` sorts after every
/// branch: cached keys all start with the RFC 3261 magic cookie, `txn/z9hG4bK`.)
const EXPIRY_INDEX: &str = "txn/~exp/";
/// Lapsed entries removed per request at most.
const SWEEP: u32 = 4;

fn expiry_key(expires: u64, key: &str) -> String {
    format!(
        "{EXPIRY_INDEX}{expires:010}/{}",
        key.strip_prefix("txn/").unwrap_or(key)
    )
}

/// The expiry and the cache key an index entry names.
fn parse_expiry_key(index: &str) -> Option<(u64, String)> {
    let (expires, rest) = index.strip_prefix(EXPIRY_INDEX)?.split_once('/')?;
    Some((expires.parse().ok()?, format!("txn/{rest}")))
}

/// Cache `bytes` under `key` until timer J, and sweep a few lapsed entries, in one
/// `kv.commit` after one `kv.scan`.
///
/// The sweep takes the oldest entries of the expiry index, so every entry goes within a
/// request or two of lapsing and the cache holds the last 32 s of requests, no more. (A
/// sweep from a random point among the cached keys missed most of them: keys all start with
/// the branch's magic cookie, so it began at the same place every time.) An entry lapsed in
/// the index is deleted without reading it: only a request reusing a branch after timer J,
/// which RFC 3261 §8.1.1.7 rules out, could have cached a newer response under its key, and
/// then the cost is that its retransmissions are handled again.
fn store_cache(key: &str, bytes: &[u8], now: u64) {
    let expires = now + CACHE_SECS;
    let mut value = format!("{expires}\n").into_bytes();
    value.extend_from_slice(bytes);
    let mut commit = Commit::new();
    for (index, _) in kv::scan(EXPIRY_INDEX, None, SWEEP).unwrap_or_default() {
        match parse_expiry_key(&index) {
            Some((lapses, _)) if lapses > now => break,
            Some((_, cached)) if cached != key => commit = commit.delete(&index).delete(&cached),
            _ => commit = commit.delete(&index),
        }
    }
    // Deletes first: a lapsed entry under this very key is replaced, not removed.
    commit = commit.set(key, &value).set(&expiry_key(expires, key), b"");
    if let Err(e) = kv::commit(&commit) {
        host::log::warn(&format!("sip: response not cached: {e}"));
    }
}

/// Answer a request the parser refused: copy Via, From, To, Call-ID and CSeq textually (they
/// may be what is broken) and send `code` with the parser's reason to the source.
/// Whether a To/From value has a `tag` parameter (outside its `<…>` URI).
fn has_tag(value: &str) -> bool {
    let params = value.rsplit_once('>').map_or(value, |(_, p)| p);
    params
        .split(';')
        .skip(usize::from(!value.contains('>')))
        .any(|p| {
            p.split_once('=')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("tag"))
        })
}

/// A tag derived from the request head, the same for every retransmission of it.
fn stable_tag(head: &str) -> String {
    use std::hash::{Hash, Hasher};
    // Fixed keys: the same head always gives the same tag (no per-process randomness).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    head.hash(&mut h);
    format!("{:016x}", h.finish())
}

fn fallback_error(raw: &[u8], origin: &Origin, code: u16, reason: &str) {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return;
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let Some(start) = lines.next() else {
        return;
    };
    if start.split(' ').next() == Some("ACK") {
        return;
    }
    let mut out = format!("SIP/2.0 {code} {}\r\n", reason_text(reason));
    let mut have_via = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let canonical = match name.to_ascii_lowercase().as_str() {
            "via" | "v" => "Via",
            "from" | "f" => "From",
            "to" | "t" => "To",
            "call-id" | "i" => "Call-ID",
            "cseq" => "CSeq",
            _ => continue,
        };
        let value: String = value
            .trim()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        have_via |= canonical == "Via";
        // A final response carries a To tag (RFC 3261 §8.2.6.2); stable for the request, so
        // a retransmission is answered with the same one.
        let value = if canonical == "To" && !has_tag(&value) {
            format!("{value};tag={}", stable_tag(&head))
        } else {
            value
        };
        out.push_str(&format!("{canonical}: {value}\r\n"));
    }
    if !have_via {
        return; // nothing to route a response by
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    if let Err(e) = Target::of(origin).send(out.as_bytes()) {
        host::log::warn(&format!("sip: 400 not sent: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::{has_tag, stable_tag};

    #[test]
    fn to_tags_are_found_outside_the_uri() {
        assert!(has_tag("<sip:bob@x>;tag=abc"));
        assert!(has_tag("sip:bob@x;TAG=abc"));
        assert!(!has_tag("<sip:bob@x;tag=in-uri>"));
        assert!(!has_tag("<sip:bob@x>"));
        assert!(!has_tag("sip:bob@x"));
        assert_eq!(stable_tag("a"), stable_tag("a"));
        assert_ne!(stable_tag("a"), stable_tag("b"));
    }
}
