//! ResolveRecipients ([MS-ASCMD] 2.2.1.15) through the directory, and ValidateCert
//! ([MS-ASCMD] 2.2.1.22).
//!
//! Certificates: the directory interface carries no S/MIME certificates and the plugin has no
//! X.509 verifier, so certificate retrieval answers "no valid certificate" (7) and
//! ValidateCert answers each certificate with 17 (could not be validated) — phones then show
//! S/MIME signatures as unverified instead of falsely trusted. Free/busy is not available
//! (Availability Status 163).

use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{host, Result};
use switchboard_wbxml::{tags::resolverecipients as rr, tags::validatecert as vc, Element};

use crate::people;
use crate::wire;
use crate::Ctx;

/// ResolveRecipients status values ([MS-ASCMD] 2.2.3.177.12).
pub mod status {
    /// Resolved (one match).
    pub const OK: u8 = 1;
    /// Ambiguous: several matches.
    pub const AMBIGUOUS: u8 = 2;
    /// Ambiguous, only some matches listed.
    pub const AMBIGUOUS_PARTIAL: u8 = 3;
    /// No match.
    pub const NOT_FOUND: u8 = 4;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u8 = 5;
    /// Server error.
    pub const SERVER_ERROR: u8 = 6;
}

/// Handle ResolveRecipients.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Response> {
    let doc = match wire::decode_body(req, rr::ResolveRecipients) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(top(status::PROTOCOL_ERROR)),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let options = doc.child_tag(rr::Options);
    let max_ambiguous: usize = options
        .and_then(|o| o.child_text("MaxAmbiguousRecipients"))
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(20)
        .min(100);
    let want_certs = options
        .and_then(|o| o.child_text("CertificateRetrieval"))
        .map(str::trim);
    let want_availability = options
        .and_then(|o| o.child_tag(rr::Availability))
        .is_some();
    let mut out = Element::new(rr::ResolveRecipients).with_text_child(rr::Status, "1");
    for to in doc.children_tagged(rr::To).take(100) {
        let name = to.text().unwrap_or("").trim();
        let mut resp = Element::new(rr::Response).with_text_child(rr::To, name);
        let found = if name.is_empty() {
            Ok(vec![])
        } else {
            host::directory::search(&ctx.dk.who.domain, name, (max_ambiguous + 1) as u32)
        };
        let people = match found {
            Ok(p) => p,
            Err(e) => {
                host::log::info(&format!("eas: ResolveRecipients: {e}"));
                out.push(resp.with_text_child(rr::Status, status::SERVER_ERROR.to_string()));
                continue;
            }
        };
        // An exact address match wins over substring matches.
        let exact: Vec<_> = people
            .iter()
            .filter(|p| people::email(p).eq_ignore_ascii_case(name))
            .cloned()
            .collect();
        let list = if exact.is_empty() { people } else { exact };
        let code = match list.len() {
            0 => status::NOT_FOUND,
            1 => status::OK,
            n if n > max_ambiguous => status::AMBIGUOUS_PARTIAL,
            _ => status::AMBIGUOUS,
        };
        resp.push(Element::text_element(rr::Status, code.to_string()));
        let shown: Vec<_> = list.into_iter().take(max_ambiguous.max(1)).collect();
        resp.push(Element::text_element(
            rr::RecipientCount,
            shown.len().to_string(),
        ));
        for p in &shown {
            let mut r = Element::new(rr::Recipient)
                .with_text_child(rr::Type, "1")
                .with_text_child(rr::DisplayName, people::display_name(p))
                .with_text_child(rr::EmailAddress, people::email(p));
            if want_availability {
                r.push(Element::new(rr::Availability).with_text_child(rr::Status, "163"));
            }
            if matches!(want_certs, Some("2" | "3")) {
                r.push(
                    Element::new(rr::Certificates)
                        .with_text_child(rr::Status, "7")
                        .with_text_child(rr::CertificateCount, "0"),
                );
            }
            resp.push(r);
        }
        out.push(resp);
    }
    Ok(wire::respond(&out))
}

fn top(code: u8) -> Response {
    wire::respond(
        &Element::new(rr::ResolveRecipients).with_text_child(rr::Status, code.to_string()),
    )
}

/// Handle ValidateCert.
pub fn validate_cert(ctx: &Ctx, req: &Request) -> Result<Response> {
    let doc = match wire::decode_body(req, vc::ValidateCert) {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Ok(wire::respond(
                &Element::new(vc::ValidateCert).with_text_child(vc::Status, "2"),
            ))
        }
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let mut out = Element::new(vc::ValidateCert).with_text_child(vc::Status, "1");
    let certs = doc
        .child_tag(vc::Certificates)
        .map(|c| c.children_tagged(vc::Certificate).count())
        .unwrap_or(0);
    for _ in 0..certs.min(100) {
        out.push(Element::new(vc::Certificate).with_text_child(vc::Status, "17"));
    }
    Ok(wire::respond(&out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_wbxml::element;

    #[test]
    fn resolves_one_many_and_none() {
        let phone = crate::search::tests::phone_with_directory("14.1");
        let doc = element!(rr::ResolveRecipients [
            element!(rr::To = "carol"),
            element!(rr::To = "bob"),
            element!(rr::To = "nobody"),
            element!(rr::Options [element!(rr::CertificateRetrieval = "2"), element!(rr::MaxAmbiguousRecipients = "5")]),
        ]);
        let d = phone.cmd("ResolveRecipients", &doc);
        let rs: Vec<_> = d.children_named("Response").collect();
        assert_eq!(rs[0].child_text("Status"), Some("1"));
        let r = rs[0].child("Recipient").unwrap();
        assert_eq!(r.child_text("EmailAddress"), Some("carol@example.com"));
        assert_eq!(
            r.child("Certificates").and_then(|c| c.child_text("Status")),
            Some("7")
        );
        assert_eq!(rs[1].child_text("Status"), Some("2"));
        assert_eq!(rs[1].child_text("RecipientCount"), Some("2"));
        assert_eq!(rs[2].child_text("Status"), Some("4"));
    }

    #[test]
    fn validate_cert_is_honest() {
        let phone = crate::testkit::Phone::new("14.1");
        let doc = element!(
            vc::ValidateCert[element!(vc::Certificates[element!(vc::Certificate = "MIIB")])]
        );
        let d = phone.cmd("ValidateCert", &doc);
        assert_eq!(d.child_text("Status"), Some("1"));
        assert_eq!(
            d.child("Certificate").and_then(|c| c.child_text("Status")),
            Some("17")
        );
    }
}
