//! Presence: PUBLISH (RFC 3903) of PIDF documents (RFC 3863), SUBSCRIBE/NOTIFY (RFC 6665,
//! RFC 3856) with one dialog per subscription.
//!
//! The presentity's state is all its live publications merged (their tuples in publication
//! order); with none it is one `closed` tuple. Every change (publish, modify, remove) sends a
//! NOTIFY to each live subscription; lapsed ones get a final `terminated;reason=timeout`.

use switchboard_sdk::host::Commit;
use switchboard_sdk::host::{self, kv};
use switchboard_sip_proto::pidf::{Basic, Presence};
use switchboard_sip_proto::{Message, Method, NameAddr};

use crate::store::{get_json, to_json, Publication, Subscription};
use crate::txn::{proto, send_reply, Ctx};
use crate::util::{bad, random_token, reason_text, send_logged, Aor, Target};
use crate::{auth, registrar, Result, SipError};

/// Expiry when the request does not say (RFC 3903 and RFC 3856 suggest 3600).
pub const DEFAULT_EXPIRES: u32 = 3600;
const PIDF: &str = "application/pidf+xml";
/// Most publications merged into one presentity's state.
const MAX_PUBLICATIONS: u32 = 32;

/// `489 Bad Event` unless the request is for the `presence` package.
fn check_event(msg: &Message<'_>) -> Result<()> {
    match msg.event().map_err(bad)? {
        Some(e) if e.package.eq_ignore_ascii_case("presence") => Ok(()),
        Some(e) => Err(SipError::status(
            489,
            reason_text(&format!("Bad Event (only presence, not {})", e.package)),
        )),
        None => Err(SipError::status(489, "Bad Event (no Event header)")),
    }
}

fn expires(msg: &Message<'_>, ctx: &Ctx<'_>) -> Result<u32> {
    let e = msg.expires().map_err(bad)?.unwrap_or(DEFAULT_EXPIRES);
    if e != 0 && e < ctx.settings.min_expires() {
        return Err(SipError::TooBrief(ctx.settings.min_expires()));
    }
    Ok(e.min(ctx.settings.max_expires()))
}

fn presentity(msg: &Message<'_>) -> Result<Aor> {
    msg.request_uri()
        .and_then(|u| Aor::of_uri(&u))
        .ok_or_else(|| {
            SipError::status(404, "Not Found (Request-URI is not a SIP URI with a user)")
        })
}

/// Handle PUBLISH. Sends the 200 itself (before the NOTIFYs it causes) and returns `None`;
/// errors are answered by the caller.
pub fn publish<'r>(msg: &'r Message<'_>, ctx: &Ctx<'_>) -> Result<Option<Message<'r>>> {
    check_event(msg)?;
    let who = presentity(msg)?;
    registrar::require_hosted(ctx, &who.domain, "domain", "")?;
    let sender = auth::checked_sender(msg, ctx, "domain")?;
    if sender != who {
        return Err(SipError::status(
            403,
            reason_text(&format!(
                "Forbidden ({} may not publish the presence of {})",
                sender.key(),
                who.key()
            )),
        ));
    }
    let body = msg.body();
    if body.len() > ctx.settings.max_body_bytes() {
        return Err(SipError::status(413, "Request Entity Too Large"));
    }
    let expires = expires(msg, ctx)?;
    let if_match = msg.sip_if_match().map_err(bad)?.map(str::to_string);
    let doc = if body.is_empty() {
        None
    } else {
        let ct = msg.content_type().map_err(bad)?;
        if !ct.as_ref().is_some_and(|c| c.is("application", "pidf+xml")) {
            return Err(SipError::status(
                415,
                "Unsupported Media Type (only application/pidf+xml)",
            ));
        }
        Presence::parse(body).map_err(|e| bad(format!("Bad Request (PIDF: {e})")))?;
        Some(String::from_utf8_lossy(body).into_owned())
    };
    let prefix = format!("pub/{}/", who.key());
    let new_etag = random_token();
    let mut commit = Commit::new();
    let changed;
    match (&if_match, &doc) {
        (None, None) => {
            return Err(SipError::status(
                400,
                "Bad Request (PUBLISH without SIP-If-Match needs a body)",
            ))
        }
        (None, Some(_)) if expires == 0 => {
            return Err(SipError::status(
                400,
                "Bad Request (an initial PUBLISH cannot have Expires: 0)",
            ))
        }
        (None, Some(pidf)) => {
            commit = commit.set(
                &format!("{prefix}{new_etag}"),
                &to_json(&Publication {
                    expires_at: ctx.now + u64::from(expires),
                    pidf: pidf.clone(),
                    at: ctx.now,
                }),
            );
            changed = true;
        }
        (Some(etag), doc) => {
            let key = format!("{prefix}{etag}");
            let current = if etag.contains('/') {
                None
            } else {
                get_json::<Publication>(&key)?
            };
            let Some((old, raw)) = current.filter(|(p, _)| p.expires_at > ctx.now) else {
                return Err(SipError::status(412, "Conditional Request Failed"));
            };
            commit = commit.check(&key, Some(&raw)).delete(&key);
            if expires == 0 {
                changed = true;
            } else {
                changed = doc.is_some();
                commit = commit.set(
                    &format!("{prefix}{new_etag}"),
                    &to_json(&Publication {
                        expires_at: ctx.now + u64::from(expires),
                        pidf: doc.clone().unwrap_or(old.pidf),
                        at: if doc.is_some() { ctx.now } else { old.at },
                    }),
                );
            }
        }
    }
    if !kv::commit(&commit)? {
        return Err(SipError::status(412, "Conditional Request Failed"));
    }
    let mut resp = Message::response_to(msg, 200, "OK").map_err(proto)?;
    if expires > 0 {
        resp.push_header("SIP-ETag", new_etag).map_err(proto)?;
    }
    resp.push_header("Expires", expires.to_string())
        .map_err(proto)?;
    if let Some(bytes) = send_reply(ctx, msg, resp, true) {
        crate::txn::remember(msg, &bytes, ctx.now);
    }
    if changed {
        let _ = host::events::publish(&format!("presence:{}", who.key()));
        notify_all(&who, ctx);
    }
    Ok(None)
}

/// The merged presence document of `who` at `now`.
pub fn document(who: &Aor, now: u64) -> String {
    let entity = who.uri();
    let mut pubs: Vec<Publication> =
        kv::scan(&format!("pub/{}/", who.key()), None, MAX_PUBLICATIONS)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, raw)| serde_json::from_slice::<Publication>(&raw).ok())
            .filter(|p| p.expires_at > now)
            .collect();
    pubs.sort_by_key(|p| p.at);
    let mut doc = Presence {
        entity: entity.clone(),
        ..Presence::default()
    };
    for p in &pubs {
        if let Ok(d) = Presence::parse(p.pidf.as_bytes()) {
            doc.tuples.extend(d.tuples);
            doc.notes.extend(d.notes);
        }
    }
    if doc.tuples.is_empty() {
        doc = Presence::simple(&entity, "offline", Basic::Closed, None);
    }
    doc.to_xml()
}

/// Handle SUBSCRIBE. Sends the 200 itself (so it goes out before the first NOTIFY) and
/// returns `None`; errors are answered by the caller.
pub fn subscribe<'r>(msg: &'r Message<'_>, ctx: &Ctx<'_>) -> Result<Option<Message<'r>>> {
    check_event(msg)?;
    let to = msg.to().map_err(bad)?;
    let call_id = msg.call_id().map_err(bad)?.to_string();
    let expires = expires(msg, ctx)?;
    if let Some(tag) = to.tag() {
        return refresh(msg, ctx, &call_id, tag, expires);
    }
    let who = presentity(msg)?;
    let watcher = auth::checked_sender(msg, ctx, "domain")?;
    registrar::require_hosted(ctx, &who.domain, "domain", "; no federation")?;
    let allowed = match ctx.settings.watcher_policy() {
        "hosted" => true,
        "self" => watcher == who,
        _ => watcher.domain == who.domain,
    };
    if !allowed {
        return Err(SipError::status(
            403,
            reason_text(&format!(
                "Forbidden ({} may not watch {})",
                watcher.key(),
                who.key()
            )),
        ));
    }
    let contact = msg
        .contacts()
        .map_err(bad)?
        .into_iter()
        .find_map(|c| c.addr().map(|a| a.uri.to_string()))
        .ok_or_else(|| SipError::status(400, "Bad Request (SUBSCRIBE without Contact)"))?;
    let route: Vec<String> = msg
        .record_route()
        .map_err(bad)?
        .iter()
        .map(|r| format!("<{}>", r.uri))
        .collect();
    let our_tag = random_token();
    let mut sub = Subscription {
        watcher: watcher.key(),
        call_id: call_id.clone(),
        watcher_from: msg.header("From").unwrap_or_default().to_string(),
        our_tag: our_tag.clone(),
        remote_uri: contact,
        route,
        target: Target::of(ctx.origin),
        cseq: 1,
        expires_at: ctx.now + u64::from(expires),
    };
    let id = random_token();
    let sub_key = format!("sub/{}/{id}", who.key());
    let state = if expires > 0 {
        format!("active;expires={expires}")
    } else {
        "terminated;reason=timeout".to_string()
    };
    // Built (CSeq advanced) before the subscription is stored: one write, made before the
    // NOTIFY goes out.
    let first = build_notify(&who, &mut sub, &state, &document(&who, ctx.now));
    if expires > 0 {
        let existing = kv::scan(
            &format!("sub/{}/", who.key()),
            None,
            ctx.settings.max_subscriptions() as u32 + 1,
        )?;
        let live = existing
            .iter()
            .filter(|(_, raw)| {
                serde_json::from_slice::<Subscription>(raw).is_ok_and(|s| s.expires_at > ctx.now)
            })
            .count();
        if live >= ctx.settings.max_subscriptions() {
            return Err(SipError::status(
                403,
                reason_text(&format!("Forbidden (too many watchers of {})", who.key())),
            ));
        }
        let commit = Commit::new()
            .set(&sub_key, &to_json(&sub))
            .set(&format!("dlg/{call_id}/{our_tag}"), sub_key.as_bytes());
        if !kv::commit(&commit)? {
            return Err(SipError::status(
                500,
                "Server Internal Error (subscription not stored)",
            ));
        }
    }
    let mut resp = Message::response_to_with_tag(msg, 200, "OK", &our_tag).map_err(proto)?;
    resp.push_header("Expires", expires.to_string())
        .map_err(proto)?;
    resp.push_header("Contact", sub.target.contact())
        .map_err(proto)?;
    if let Some(bytes) = send_reply(ctx, msg, resp, true) {
        crate::txn::remember(msg, &bytes, ctx.now);
    }
    send_notify(&sub, first);
    Ok(None)
}

/// An in-dialog SUBSCRIBE: refresh, or end with `Expires: 0`.
fn refresh<'r>(
    msg: &'r Message<'_>,
    ctx: &Ctx<'_>,
    call_id: &str,
    tag: &str,
    expires: u32,
) -> Result<Option<Message<'r>>> {
    let dlg = format!("dlg/{call_id}/{tag}");
    let sub_key = kv::get(&dlg)?
        .and_then(|k| String::from_utf8(k).ok())
        .ok_or_else(|| SipError::status(481, "Subscription Does Not Exist"))?;
    let Some((mut sub, _)) = get_json::<Subscription>(&sub_key)? else {
        let _ = kv::delete(&dlg);
        return Err(SipError::status(481, "Subscription Does Not Exist"));
    };
    let Some(who) = sub_key
        .strip_prefix("sub/")
        .and_then(|r| r.rsplit_once('/'))
        .and_then(|(aor, _)| aor.split_once('@'))
        .map(|(u, d)| Aor {
            user: u.to_string(),
            domain: d.to_string(),
        })
    else {
        return Err(SipError::status(481, "Subscription Does Not Exist"));
    };
    // Only the watcher may refresh or end its dialog (and so move where NOTIFYs go): the
    // dialog's From tag, and the same sender check as the initial SUBSCRIBE.
    let from = msg.from().map_err(bad)?;
    let stored_tag = NameAddr::parse(&sub.watcher_from)
        .ok()
        .and_then(|n| n.tag().map(str::to_string));
    if from.tag().is_none() || from.tag().map(str::to_string) != stored_tag {
        return Err(SipError::status(481, "Subscription Does Not Exist"));
    }
    let watcher = sub
        .watcher
        .split_once('@')
        .map(|(u, d)| Aor {
            user: u.to_string(),
            domain: d.to_string(),
        })
        .ok_or_else(|| SipError::status(481, "Subscription Does Not Exist"))?;
    auth::sender(msg, ctx, &watcher)?;
    sub.target = Target::of(ctx.origin);
    sub.expires_at = ctx.now + u64::from(expires);
    let mut resp = Message::response_to(msg, 200, "OK").map_err(proto)?;
    resp.push_header("Expires", expires.to_string())
        .map_err(proto)?;
    resp.push_header("Contact", sub.target.contact())
        .map_err(proto)?;
    if let Some(bytes) = send_reply(ctx, msg, resp, true) {
        crate::txn::remember(msg, &bytes, ctx.now);
    }
    if expires == 0 {
        let m = build_notify(
            &who,
            &mut sub,
            "terminated;reason=timeout",
            &document(&who, ctx.now),
        );
        let _ = kv::commit(&Commit::new().delete(&sub_key).delete(&dlg));
        send_notify(&sub, m);
    } else {
        let m = build_notify(
            &who,
            &mut sub,
            &format!("active;expires={expires}"),
            &document(&who, ctx.now),
        );
        kv::set(&sub_key, &to_json(&sub))?;
        send_notify(&sub, m);
    }
    Ok(None)
}

/// Build one NOTIFY with the current state of `who` and advance the subscription's CSeq. The
/// caller stores the advanced subscription *before* sending it ([`send_notify`]): a watcher
/// answering at once may trigger the next NOTIFY (a PUBLISH) before a later write would land,
/// and that one must not reuse the CSeq.
fn build_notify(
    who: &Aor,
    sub: &mut Subscription,
    state: &str,
    body: &str,
) -> Option<Message<'static>> {
    let built = (|| -> std::result::Result<Message<'_>, switchboard_sip_proto::Error> {
        let mut m = Message::request(Method::Notify, sub.remote_uri.clone())?;
        m.push_header("Via", sub.target.via(&random_token()))?;
        for r in &sub.route {
            m.push_header("Route", r.clone())?;
        }
        m.push_header("Max-Forwards", "70")?;
        m.push_header("From", format!("<{}>;tag={}", who.uri(), sub.our_tag))?;
        m.push_header("To", sub.watcher_from.clone())?;
        m.push_header("Call-ID", sub.call_id.clone())?;
        m.push_header("CSeq", format!("{} NOTIFY", sub.cseq))?;
        m.push_header("Contact", sub.target.contact())?;
        m.push_header("Event", "presence")?;
        m.push_header("Subscription-State", state.to_string())?;
        m.set_body(Some(PIDF), body.as_bytes().to_vec())?;
        Ok(m)
    })();
    sub.cseq = sub.cseq.saturating_add(1);
    match built {
        Ok(m) => Some(m),
        Err(e) => {
            host::log::warn(&format!("sip: NOTIFY not built: {e}"));
            None
        }
    }
}

/// Send a NOTIFY from [`build_notify`] to the subscription's target.
fn send_notify(sub: &Subscription, m: Option<Message<'static>>) {
    if let Some(m) = m {
        send_logged(&sub.target, &m, "NOTIFY");
    }
}

/// NOTIFY every subscription of `who`; lapsed ones get a final `terminated` and are removed.
pub fn notify_all(who: &Aor, ctx: &Ctx<'_>) {
    let prefix = format!("sub/{}/", who.key());
    // One document for every watcher.
    let body = document(who, ctx.now);
    let rows =
        kv::scan(&prefix, None, ctx.settings.max_subscriptions() as u32 * 2).unwrap_or_default();
    for (key, raw) in rows {
        let Ok(mut sub) = serde_json::from_slice::<Subscription>(&raw) else {
            let _ = kv::delete(&key);
            continue;
        };
        let dlg = format!("dlg/{}/{}", sub.call_id, sub.our_tag);
        if sub.expires_at <= ctx.now {
            let m = build_notify(who, &mut sub, "terminated;reason=timeout", &body);
            let _ = kv::commit(&Commit::new().delete(&key).delete(&dlg));
            send_notify(&sub, m);
            continue;
        }
        let left = sub.expires_at - ctx.now;
        let m = build_notify(who, &mut sub, &format!("active;expires={left}"), &body);
        // Only if nothing else advanced the CSeq meanwhile: a concurrent refresh sends its own
        // NOTIFY, with the state as it is now, and ours would reuse a CSeq.
        if kv::compare_and_swap(&key, Some(&raw), Some(&to_json(&sub))).unwrap_or(false) {
            send_notify(&sub, m);
        }
    }
}

/// End the subscription of dialog (`call_id`, our `tag`), e.g. after a 481 to a NOTIFY.
pub fn drop_dialog(call_id: &str, tag: &str, _ctx: &Ctx<'_>) {
    let dlg = format!("dlg/{call_id}/{tag}");
    if let Ok(Some(key)) = kv::get(&dlg) {
        if let Ok(key) = String::from_utf8(key) {
            let _ = kv::commit(&Commit::new().delete(&key).delete(&dlg));
        }
    }
}
