//! Instant messages (RFC 3428): forking to every contact, offline store-and-forward, and the
//! responses to what we sent.
//!
//! **Answer semantics.** A stateless relay would answer the sender with the first fork's
//! final response, but this handler returns before any fork answers (the core calls us once
//! per message; nothing waits in memory). So the sender gets `202 Accepted` once the message
//! was handed to the core for at least one contact, or queued for an offline recipient —
//! "accepted for delivery, not yet delivered", which is what RFC 3428 §7 allows a relay that
//! cannot know the outcome (and what many IM servers do).
//!
//! **Exactly once for offline messages.** A queued message stays in `q/{aor}/{seq}` until a
//! `2xx` for one of its deliveries arrives: each delivery carries the message's own Call-ID
//! (fixed when it was queued) and CSeq 1, `pend/{call-id}` names the queue entry, and the
//! `2xx` removes both in one `kv.commit`. A delivery whose `2xx` is lost is sent again on the
//! recipient's next REGISTER, with the same Call-ID and CSeq, so the recipient can drop the
//! repeat (RFC 3428 §7 / RFC 3261 §8.2.2.2 duplicate detection) — the queue gives at-least-once
//! and the recipient's duplicate check makes it exactly-once. Limits: a client that does not
//! check duplicates may show a message twice when a `2xx` is lost; a message is only
//! redelivered on a REGISTER (including refreshes), not on a timer; messages a recipient
//! answers with an error stay queued until the queue cap refuses new ones.

use switchboard_sdk::host::Commit;
use switchboard_sdk::host::{self, kv};
use switchboard_sip_proto::{Message, Method};

use crate::store::{get_json, live_bindings, to_json, Binding, Queued, RETRIES};
use crate::txn::{proto, send_reply, Ctx};
use crate::util::{bad, random_token, reason_text, relay_logged, send_logged, Aor};
use crate::{auth, presence, registrar, Result, SipError};

/// Handle MESSAGE.
/// Sends the 202 itself when forking (before the forks) and returns `None`; otherwise returns
/// the answer.
pub fn message<'r>(msg: &'r Message<'_>, ctx: &Ctx<'_>) -> Result<Option<Message<'r>>> {
    if msg.max_forwards().map_err(bad)? == Some(0) {
        return Err(SipError::status(483, "Too Many Hops"));
    }
    if msg.body().len() > ctx.settings.max_body_bytes() {
        return Err(SipError::status(
            413,
            reason_text(&format!(
                "Request Entity Too Large (at most {} bytes)",
                ctx.settings.max_body_bytes()
            )),
        ));
    }
    let recipient = msg
        .request_uri()
        .and_then(|u| Aor::of_uri(&u))
        .ok_or_else(|| {
            SipError::status(404, "Not Found (Request-URI is not a SIP URI with a user)")
        })?;
    auth::checked_sender(msg, ctx, "sender domain")?;
    registrar::require_hosted(ctx, &recipient.domain, "domain", "; no federation")?;

    let bindings = live_bindings(&recipient.key(), ctx.now)?;
    if !bindings.is_empty() {
        // The sender's 202 goes out first (so a client sees its answer before its own copy
        // when it messages itself), then the forks. They keep the sender's Call-ID and CSeq,
        // as a proxy forwards a request (RFC 3261 §16.6). They go with `relay-to`: the core
        // consumes a 2xx answering one, anything else reaches `on_response`.
        let accepted = Message::response_to(msg, 202, "Accepted").map_err(proto)?;
        if send_reply(ctx, msg, accepted, true).is_some() {
            crate::txn::remember_status(ctx, 202, "Accepted");
        }
        let call_id = msg.call_id().map_err(bad)?.to_string();
        let cseq = msg.cseq().map_err(bad)?.seq;
        let mut forwarded = 0;
        for b in &bindings {
            if let Some(out) = outgoing(msg, b, &call_id, cseq)? {
                forwarded += usize::from(relay_logged(&b.target, &out, "MESSAGE"));
            }
        }
        let _ = host::events::publish(&format!("im:{}", recipient.key()));
        if forwarded == 0 {
            // Every fork failed to go out: keep it for the next REGISTER.
            let ct = msg.header("Content-Type").unwrap_or("text/plain");
            if let Err(e) = enqueue(
                &recipient,
                msg.header("From").unwrap_or_default(),
                msg.header("To").unwrap_or_default(),
                ct,
                msg.body(),
                ctx,
            ) {
                host::log::warn(&format!(
                    "sip: message for {} neither forwarded nor queued: {e}",
                    recipient.key()
                ));
            }
        }
        return Ok(None);
    }
    // Offline: store and forward, for users we know.
    if !known(&recipient)? {
        return Err(SipError::status(
            404,
            reason_text(&format!("Not Found (no user {})", recipient.key())),
        ));
    }
    let ct = msg
        .header("Content-Type")
        .unwrap_or("text/plain")
        .to_string();
    enqueue(
        &recipient,
        msg.header("From").unwrap_or_default(),
        msg.header("To").unwrap_or_default(),
        &ct,
        msg.body(),
        ctx,
    )?;
    let _ = host::events::publish(&format!("im:{}", recipient.key()));
    Message::response_to(msg, 202, "Accepted")
        .map(Some)
        .map_err(proto)
}

/// Whether `aor` may receive offline messages: it registered here before, or the directory
/// knows the user.
fn known(aor: &Aor) -> Result<bool> {
    if kv::get(&format!("known/{}", aor.key()))?.is_some() {
        return Ok(true);
    }
    let who = switchboard_sdk::Principal {
        user: aor.user.clone(),
        domain: aor.domain.clone(),
    };
    match host::directory::lookup(&who) {
        Ok(found) => Ok(found.is_some()),
        Err(e) => {
            host::log::debug(&format!(
                "sip: directory lookup of {} failed: {e}",
                aor.key()
            ));
            Ok(false)
        }
    }
}

/// A MESSAGE to contact `b` with the original From, To, Content-Type and body.
fn outgoing<'a>(
    msg: &'a Message<'_>,
    b: &Binding,
    call_id: &str,
    cseq: u32,
) -> Result<Option<Message<'a>>> {
    let Some(from) = msg.header("From") else {
        return Ok(None);
    };
    let to = msg.header("To").unwrap_or_default();
    let ct = msg.header("Content-Type");
    build(
        b,
        from,
        to,
        ct,
        msg.body(),
        call_id,
        cseq,
        msg.max_forwards().ok().flatten(),
    )
    .map(Some)
}

#[allow(clippy::too_many_arguments)]
fn build<'a>(
    b: &Binding,
    from: &str,
    to: &str,
    content_type: Option<&str>,
    body: &'a [u8],
    call_id: &str,
    cseq: u32,
    max_forwards: Option<u32>,
) -> Result<Message<'a>> {
    let mut out = Message::request(Method::Message, b.uri.clone()).map_err(proto)?;
    out.push_header("Via", b.target.via(&random_token()))
        .map_err(proto)?;
    for hop in &b.path {
        out.push_header("Route", hop.clone()).map_err(proto)?;
    }
    let mf = max_forwards.map_or(70, |m| m.saturating_sub(1));
    out.push_header("Max-Forwards", mf.to_string())
        .map_err(proto)?;
    out.push_header("From", from.to_string()).map_err(proto)?;
    out.push_header("To", to.to_string()).map_err(proto)?;
    out.push_header("Call-ID", call_id.to_string())
        .map_err(proto)?;
    out.push_header("CSeq", format!("{cseq} MESSAGE"))
        .map_err(proto)?;
    let ct = content_type.map(str::to_string);
    out.set_body(None, body).map_err(proto)?;
    if let Some(ct) = ct {
        out.set_header("Content-Type", ct).map_err(proto)?;
    }
    Ok(out)
}

/// Append a message to `aor`'s offline queue (ordered by a per-AOR sequence number, both
/// written in one commit).
fn enqueue(
    aor: &Aor,
    from: &str,
    to: &str,
    content_type: &str,
    body: &[u8],
    ctx: &Ctx<'_>,
) -> Result<()> {
    let prefix = format!("q/{}/", aor.key());
    let seq_key = format!("qseq/{}", aor.key());
    let max = ctx.settings.max_queued();
    for _ in 0..RETRIES {
        let queued = kv::scan(&prefix, None, (max + 1) as u32)?;
        if queued.len() >= max {
            return Err(SipError::status(
                480,
                reason_text(&format!(
                    "Temporarily Unavailable (offline queue of {} is full)",
                    aor.key()
                )),
            ));
        }
        let raw = kv::get(&seq_key)?;
        let next: u64 = raw
            .as_deref()
            .and_then(|r| std::str::from_utf8(r).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
            + 1;
        let item = Queued {
            seq: next,
            from: from.to_string(),
            to: to.to_string(),
            content_type: content_type.to_string(),
            body: body.to_vec(),
            queued_at: ctx.now,
            call_id: format!("q-{next}-{}", random_token()),
        };
        let commit = Commit::new()
            .check(&seq_key, raw.as_deref())
            .set(&seq_key, next.to_string().as_bytes())
            .check(&format!("{prefix}{next:016}"), None)
            .set(&format!("{prefix}{next:016}"), &to_json(&item));
        if kv::commit(&commit)? {
            return Ok(());
        }
    }
    Err(SipError::status(
        500,
        "Server Internal Error (offline queue kept changing)",
    ))
}

/// Send every queued message of `aor` to each of `bindings`, oldest first, and note each
/// delivery as pending until its 2xx.
pub fn deliver_queued(aor: &Aor, bindings: &[Binding], ctx: &Ctx<'_>) -> Result<usize> {
    let prefix = format!("q/{}/", aor.key());
    let items = kv::scan(&prefix, None, ctx.settings.max_queued() as u32)?;
    let mut sent = 0;
    for (key, raw) in items {
        let Ok(item) = serde_json::from_slice::<Queued>(&raw) else {
            host::log::warn(&format!("sip: dropping undecodable queued message {key}"));
            let _ = kv::delete(&key);
            continue;
        };
        kv::set(&format!("pend/{}", item.call_id), key.as_bytes())?;
        for b in bindings.iter().filter(|b| b.expires_at > ctx.now) {
            let mut out = build(
                b,
                &item.from,
                &item.to,
                Some(&item.content_type),
                &item.body,
                &item.call_id,
                1,
                None,
            )?;
            out.push_header("Date", registrar::http_date(item.queued_at))
                .map_err(proto)?;
            if send_logged(&b.target, &out, "queued MESSAGE") {
                sent += 1;
            }
        }
    }
    Ok(sent)
}

/// A response to something we sent: a 2xx for a queued delivery removes it from the queue;
/// a NOTIFY answered 481 (or 404/410, "the subscription is gone") ends that subscription.
pub fn on_response(msg: &Message<'_>, ctx: &Ctx<'_>) {
    let (Some(status), Ok(call_id), Ok(cseq)) = (msg.status(), msg.call_id(), msg.cseq()) else {
        return;
    };
    match cseq.method {
        // Only deliveries from the offline queue carry our `q-` Call-IDs (see `enqueue`); a
        // forked MESSAGE keeps its sender's, and its answer needs no lookup at all.
        Method::Message if (200..300).contains(&status) && call_id.starts_with("q-") => {
            let pend = format!("pend/{call_id}");
            let Ok(Some(qkey)) = kv::get(&pend) else {
                return;
            };
            let Ok(key) = String::from_utf8(qkey.clone()) else {
                let _ = kv::delete(&pend);
                return;
            };
            let commit = Commit::new()
                .check(&pend, Some(&qkey))
                .delete(&pend)
                .delete(&key);
            if let Err(e) = kv::commit(&commit) {
                host::log::warn(&format!("sip: delivered message {key} not dequeued: {e}"));
            }
        }
        Method::Notify if matches!(status, 481 | 404 | 410) => {
            if let Some(tag) = msg.from().ok().and_then(|f| f.tag().map(str::to_string)) {
                presence::drop_dialog(call_id, &tag, ctx);
            }
        }
        _ => {}
    }
}

/// The queued messages of `aor` (tests, admin).
pub fn queued(aor: &str) -> Result<Vec<Queued>> {
    let mut out = Vec::new();
    for (key, _) in kv::scan(&format!("q/{aor}/"), None, 10_000)? {
        if let Some((q, _)) = get_json::<Queued>(&key)? {
            out.push(q);
        }
    }
    Ok(out)
}

/// Live contacts of `aor` (tests, admin).
pub fn contacts(aor: &str, now: u64) -> Result<Vec<Binding>> {
    live_bindings(aor, now)
}
