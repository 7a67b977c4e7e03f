//! Who sent a request: Digest through the core (`sip-auth`), or a flow/address that a current
//! registration of the sender authenticated.

use switchboard_sdk::host::sip_auth;
use switchboard_sdk::Error;
use switchboard_sip_proto::{credentials_param, Message};

use crate::store::{live_bindings, uri_eq};
use crate::txn::Ctx;
use crate::util::{ip_of, reason_text, Aor};
use crate::{Result, SipError};

/// Check that `who` sent `msg`: a Digest `Authorization` (`proxy`: `Proxy-Authorization`)
/// valid for `who` in the realm of `who`'s domain. Errs with a challenge (401/407) when
/// credentials are missing, wrong or stale, 403 when they belong to someone else or the user
/// is throttled.
pub fn digest(msg: &Message<'_>, ctx: &Ctx<'_>, who: &Aor, proxy: bool) -> Result<()> {
    let realm = ctx.settings.realm_for(&who.domain);
    let code = if proxy { 407 } else { 401 };
    let challenge = |stale: bool| -> SipError {
        match sip_auth::challenge(&realm, stale) {
            Some(c) if !c.is_empty() => SipError::Challenge { code, challenge: c },
            _ => SipError::status(503, "Service Unavailable (no Digest challenge)"),
        }
    };
    let headers: Vec<&str> = if proxy {
        msg.proxy_authorization().collect()
    } else {
        msg.authorization().collect()
    };
    // Several credentials may be present (one per realm); ours is the one for our realm.
    let Some(header) = headers
        .iter()
        .find(|h| credentials_param(h, "Digest", "realm").as_deref() == Some(realm.as_str()))
        .copied()
    else {
        return Err(challenge(false));
    };
    let method = msg
        .method()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    if let (Some(uri), Some(req_uri)) = (
        credentials_param(header, "Digest", "uri"),
        msg.request_uri(),
    ) {
        if !uri_eq(&uri, &req_uri.to_string()) {
            return Err(SipError::status(
                400,
                "Bad Request (Digest uri does not match the Request-URI)",
            ));
        }
    }
    match sip_auth::verify_digest(&method, header, &realm, &ip_of(&ctx.origin.peer)) {
        Ok(Some(p)) => {
            if p.user.eq_ignore_ascii_case(&who.user) && p.domain.eq_ignore_ascii_case(&who.domain)
            {
                Ok(())
            } else {
                Err(SipError::status(
                    403,
                    reason_text(&format!(
                        "Forbidden (credentials of {}@{} cannot act for {})",
                        p.user,
                        p.domain,
                        who.key()
                    )),
                ))
            }
        }
        Ok(None) => Err(challenge(false)),
        Err(Error::Conflict(_)) => Err(challenge(true)),
        Err(Error::Denied(why)) => Err(SipError::status(
            403,
            reason_text(&format!("Forbidden ({why})")),
        )),
        Err(e) => Err(SipError::Host(e)),
    }
}

/// Whether `msg` comes from where a live registration of `who` was made: the same stream
/// flow (always), or the same UDP address (when `trust_registered_address`).
pub fn from_registered_source(who: &Aor, ctx: &Ctx<'_>) -> Result<bool> {
    let origin = ctx.origin;
    let bindings = live_bindings(&who.key(), ctx.now)?;
    Ok(bindings.iter().any(|b| match (origin.flow, b.target.flow) {
        (Some(f), Some(g)) => f == g,
        (None, None) => {
            ctx.settings.trust_registered_address()
                && b.target.transport.eq_ignore_ascii_case(&origin.transport)
                && b.target.peer == origin.peer
        }
        _ => false,
    }))
}

/// The sender of a MESSAGE/SUBSCRIBE/PUBLISH: From must be a SIP URI with a user (`400`) of
/// a domain served here (`403`, the reason naming it as `what`), and pass [`sender`].
pub fn checked_sender(msg: &Message<'_>, ctx: &Ctx<'_>, what: &str) -> Result<Aor> {
    let from = msg.from().map_err(crate::util::bad)?;
    let who = Aor::of_uri(&from.uri)
        .ok_or_else(|| SipError::status(400, "Bad Request (From is not a SIP URI with a user)"))?;
    crate::registrar::require_hosted(ctx, &who.domain, what, "")?;
    sender(msg, ctx, &who)?;
    Ok(who)
}

/// A MESSAGE/SUBSCRIBE/PUBLISH sender check: a registered source, else Digest with 407.
pub fn sender(msg: &Message<'_>, ctx: &Ctx<'_>, who: &Aor) -> Result<()> {
    if from_registered_source(who, ctx)? {
        return Ok(());
    }
    digest(msg, ctx, who, true)
}
