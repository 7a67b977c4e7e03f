//! The registrar (RFC 3261 §10.3, Path RFC 3327, outbound RFC 5626 §6).

use switchboard_sdk::host::kv;
use switchboard_sip_proto::{Contact, Message};

use crate::store::{get_bindings, Binding, RETRIES};
use crate::txn::{proto, send_reply, Ctx, SUPPORTED};
use crate::util::{bad, reason_text, Aor, Target};
use crate::{auth, im, Result, SipError};

/// Expiry when neither the contact nor the request says (RFC 3261 §10.2.1.1 suggests 3600).
pub const DEFAULT_EXPIRES: u32 = 3600;

/// Whether `domain` is served here: listed in `domains`, or any domain when the list is empty.
pub fn hosted(ctx: &Ctx<'_>, domain: &str) -> bool {
    let domains = ctx.settings.domains();
    domains.is_empty() || domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
}

/// `403` unless `domain` is served here; the reason reads "Forbidden ({what} DOMAIN is not
/// served here{note})".
pub fn require_hosted(ctx: &Ctx<'_>, domain: &str, what: &str, note: &str) -> Result<()> {
    if hosted(ctx, domain) {
        return Ok(());
    }
    Err(SipError::status(
        403,
        reason_text(&format!(
            "Forbidden ({what} {domain} is not served here{note})"
        )),
    ))
}

/// What one REGISTER asks for, before it is applied.
enum Change {
    /// `Contact: *` with `Expires: 0`.
    RemoveAll,
    /// Add/refresh (`expires` > 0) or remove (0) these.
    Set(Vec<(Binding, u32)>),
    /// No Contact: a query.
    Fetch,
}

/// Handle REGISTER. Sends the 200 itself (so the client knows it is registered before queued
/// messages arrive) and returns `None`; errors are answered by the caller.
pub fn register<'r>(msg: &'r Message<'_>, ctx: &Ctx<'_>) -> Result<Option<Message<'r>>> {
    let to = msg.to().map_err(bad)?;
    let aor = Aor::of_uri(&to.uri).ok_or_else(|| {
        SipError::status(400, "Bad Request (To is not a SIP URI with a user part)")
    })?;
    require_hosted(ctx, &aor.domain, "domain", "")?;
    auth::digest(msg, ctx, &aor, false)?;

    let call_id = msg.call_id().map_err(bad)?.to_string();
    let cseq = msg.cseq().map_err(bad)?.seq;
    let header_expires = msg.expires().map_err(bad)?;
    let contacts = msg.contacts().map_err(bad)?;
    let path: Vec<String> = msg
        .path()
        .map_err(bad)?
        .iter()
        .map(|p| format!("<{}>", p.uri))
        .collect();
    let supported = msg.supported().map_err(bad)?;
    let wants_outbound = supported.iter().any(|t| t.eq_ignore_ascii_case("outbound"));
    let wants_path = supported.iter().any(|t| t.eq_ignore_ascii_case("path"));

    let change = if contacts.is_empty() {
        Change::Fetch
    } else if contacts.iter().any(|c| matches!(c, Contact::Star)) {
        if contacts.len() != 1 || header_expires != Some(0) {
            return Err(SipError::status(
                400,
                "Bad Request (Contact: * needs Expires: 0 and no other Contact)",
            ));
        }
        Change::RemoveAll
    } else {
        let mut set = Vec::new();
        for c in &contacts {
            let Some(addr) = c.addr() else { continue };
            let expires = addr.expires().or(header_expires).unwrap_or(DEFAULT_EXPIRES);
            if expires != 0 && expires < ctx.settings.min_expires() {
                return Err(SipError::TooBrief(ctx.settings.min_expires()));
            }
            let expires = expires.min(ctx.settings.max_expires());
            let (instance, reg_id) = (addr.sip_instance().map(str::to_string), addr.reg_id());
            // RFC 5626 §6: outbound bindings need both, over a flow the registrar can reuse.
            let (instance, reg_id) = if wants_outbound && instance.is_some() && reg_id.is_some() {
                (instance, reg_id)
            } else {
                (instance, None)
            };
            set.push((
                Binding {
                    uri: addr.uri.to_string(),
                    instance,
                    reg_id,
                    expires_at: ctx.now + u64::from(expires),
                    target: Target::of(ctx.origin),
                    path: path.clone(),
                    call_id: call_id.clone(),
                    cseq,
                },
                expires,
            ));
        }
        Change::Set(set)
    };

    let key = format!("reg/{}", aor.key());
    let mut stored = None;
    for _ in 0..RETRIES {
        let current = get_bindings(&key)?;
        let raw = current.as_ref().map(|(_, r)| r.clone());
        let mut bindings = current.map(|(b, _)| b).unwrap_or_default();
        bindings.contacts.retain(|b| b.expires_at > ctx.now);
        match &change {
            Change::Fetch => {
                stored = Some(bindings);
                break;
            }
            Change::RemoveAll => {
                for b in &bindings.contacts {
                    if b.call_id == call_id && cseq < b.cseq {
                        return Err(SipError::status(
                            500,
                            "Server Internal Error (out-of-order REGISTER)",
                        ));
                    }
                }
                bindings.contacts.clear();
            }
            Change::Set(set) => {
                for (new, expires) in set {
                    if let Some(pos) = bindings.contacts.iter().position(|b| b.same_as(new)) {
                        let old = &bindings.contacts[pos];
                        // RFC 3261 §10.3 step 7 (an equal CSeq is a retransmission whose
                        // cached answer lapsed: applying it again gives the same result).
                        if old.call_id == call_id && cseq < old.cseq {
                            return Err(SipError::status(
                                500,
                                "Server Internal Error (out-of-order REGISTER)",
                            ));
                        }
                        bindings.contacts.remove(pos);
                    }
                    if *expires > 0 {
                        bindings.contacts.push(new.clone());
                    }
                }
                if bindings.contacts.len() > ctx.settings.max_contacts() {
                    return Err(SipError::status(
                        403,
                        reason_text(&format!(
                            "Forbidden (at most {} contacts per address)",
                            ctx.settings.max_contacts()
                        )),
                    ));
                }
            }
        }
        let written = if bindings.contacts.is_empty() {
            match &raw {
                Some(r) => kv::compare_and_swap(&key, Some(r), None)?,
                None => true,
            }
        } else {
            kv::compare_and_swap(&key, raw.as_deref(), Some(&bindings.encode()))?
        };
        if written {
            stored = Some(bindings);
            break;
        }
    }
    let bindings = stored.ok_or_else(|| {
        SipError::status(500, "Server Internal Error (registration kept changing)")
    })?;
    if !bindings.contacts.is_empty() {
        // Written once: refreshes are the commonest request, and a read is cheaper than a
        // write transaction.
        let known = format!("known/{}", aor.key());
        if kv::get(&known)?.is_none() {
            kv::set(&known, b"1")?;
        }
    }

    let mut resp = Message::response_to(msg, 200, "OK").map_err(proto)?;
    let mut outbound_used = false;
    for b in &bindings.contacts {
        let left = b.expires_at.saturating_sub(ctx.now);
        let mut v = format!("<{}>;expires={left}", b.uri);
        if let Some(i) = &b.instance {
            v.push_str(&format!(";+sip.instance={i}"));
        }
        if let Some(r) = b.reg_id {
            v.push_str(&format!(";reg-id={r}"));
            outbound_used = true;
        }
        resp.push_header("Contact", v).map_err(proto)?;
    }
    if wants_path && !path.is_empty() {
        for p in &path {
            resp.push_header("Path", p.clone()).map_err(proto)?;
        }
    }
    if outbound_used && wants_outbound {
        resp.push_header("Require", "outbound").map_err(proto)?;
    }
    resp.push_header("Supported", SUPPORTED).map_err(proto)?;
    resp.push_header("Date", http_date(ctx.now))
        .map_err(proto)?;

    if let Some(bytes) = send_reply(ctx, msg, resp, true) {
        crate::txn::remember(msg, &bytes, ctx.now);
    }
    // Offline messages go out as soon as the user is reachable again.
    if matches!(change, Change::Set(_)) && !bindings.contacts.is_empty() {
        if let Err(e) = im::deliver_queued(&aor, &bindings.contacts, ctx) {
            switchboard_sdk::host::log::warn(&format!(
                "sip: queued messages for {} not delivered: {e}",
                aor.key()
            ));
        }
    }
    Ok(None)
}

/// An RFC 1123 date (the `Date` header of REGISTER answers, RFC 3261 §10.3 step 8).
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let weekday = DAYS[(days % 7) as usize];
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{weekday}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            super::http_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }
}
