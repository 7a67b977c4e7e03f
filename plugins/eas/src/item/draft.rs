//! Drafts edited on the phone (protocol 16.0 and later, [MS-ASEMAIL] 3.1.5.3): the
//! `ApplicationData` of a draft becomes a MIME message stored in the Drafts folder, and a
//! change carrying `email2:Send` sends it.

use base64::Engine as _;
use switchboard_wbxml::{
    tags::airsyncbase as asb, tags::email as em, tags::email2 as em2, Element, Tag,
};

use crate::time;

/// Whether a Change of a draft asks to send it.
pub fn wants_send(data: &Element) -> bool {
    data.child_tag(em2::Send).is_some()
}

/// Whether a Change touches more than the flags (a draft edit).
pub fn is_edit(data: &Element) -> bool {
    [em::To, em::Cc, em2::Bcc, em::Subject, asb::Body]
        .iter()
        .any(|t| data.child_tag(*t).is_some())
}

/// A MIME message from a draft's `ApplicationData`; `from` is the user's address.
pub fn to_mime(data: &Element, from: &str) -> String {
    let t = |tag: Tag| {
        data.child_tag(tag)
            .and_then(|e| e.text())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let mut m = format!("From: {from}\r\n");
    for (name, tag) in [("To", em::To), ("Cc", em::Cc), ("Bcc", em2::Bcc)] {
        let v = t(tag);
        if !v.is_empty() {
            m.push_str(&format!("{name}: {}\r\n", crate::mime::header_value(&v)));
        }
    }
    m.push_str(&format!(
        "Subject: {}\r\n",
        crate::mime::header_value(&t(em::Subject))
    ));
    m.push_str(&format!("Date: {}\r\n", time::rfc5322(time::now_ms())));
    match t(em::Importance).as_str() {
        "2" => m.push_str("Importance: high\r\n"),
        "0" => m.push_str("Importance: low\r\n"),
        _ => {}
    }
    let body = data.child_tag(asb::Body);
    let html = body.and_then(|b| b.child_text("Type")).map(str::trim) == Some("2");
    let text = body.and_then(|b| b.child_text("Data")).unwrap_or("");
    m.push_str(&format!(
        "MIME-Version: 1.0\r\nContent-Type: text/{}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        if html { "html" } else { "plain" }
    ));
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    for chunk in encoded.as_bytes().chunks(76) {
        m.push_str(&String::from_utf8_lossy(chunk));
        m.push_str("\r\n");
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_wbxml::{element, tags::airsync};

    #[test]
    fn draft_to_mime() {
        let data = element!(airsync::ApplicationData [
            element!(em::To = "bob@example.com"),
            element!(em::Subject = "Grüße"),
            element!(asb::Body [element!(asb::Type = "1"), element!(asb::Data = "Hallo\nBob")]),
            element!(em2::Send),
        ]);
        assert!(wants_send(&data) && is_edit(&data));
        let m = to_mime(&data, "alice@example.com");
        let parsed = crate::mime::parse(m.as_bytes());
        assert_eq!(parsed.header("subject"), Some("Grüße"));
        assert_eq!(parsed.header("to"), Some("bob@example.com"));
        assert_eq!(parsed.text.as_deref(), Some("Hallo\nBob"));
    }
}
