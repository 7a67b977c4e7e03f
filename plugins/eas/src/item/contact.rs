//! Contacts ([MS-ASCNTC]) to and from vCard 3.0, the content connectors store: names,
//! e-mail addresses, phones, company, title, birthday and the note.

use switchboard_wbxml::{
    tags::airsync, tags::airsyncbase as asb, tags::contacts as c, Element, Tag,
};

/// Street, city, state, postal code and country fields of the three EAS addresses.
const BUSINESS: [Tag; 5] = [
    c::BusinessAddressStreet,
    c::BusinessAddressCity,
    c::BusinessAddressState,
    c::BusinessAddressPostalCode,
    c::BusinessAddressCountry,
];
const HOME: [Tag; 5] = [
    c::HomeAddressStreet,
    c::HomeAddressCity,
    c::HomeAddressState,
    c::HomeAddressPostalCode,
    c::HomeAddressCountry,
];
const OTHER: [Tag; 5] = [
    c::OtherAddressStreet,
    c::OtherAddressCity,
    c::OtherAddressState,
    c::OtherAddressPostalCode,
    c::OtherAddressCountry,
];

/// Unfold and split a vCard into (name with parameters, value) lines.
fn lines(vcard: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut cur = String::new();
    for raw in vcard.split('\n') {
        let l = raw.trim_end_matches('\r');
        if l.starts_with([' ', '\t']) {
            cur.push_str(&l[1..]);
            continue;
        }
        if let Some((k, v)) = cur.split_once(':') {
            out.push((k.to_ascii_uppercase(), v.to_string()));
        }
        cur = l.to_string();
        if out.len() > 500 {
            break;
        }
    }
    if let Some((k, v)) = cur.split_once(':') {
        out.push((k.to_ascii_uppercase(), v.to_string()));
    }
    out
}

use super::text::{escape, unescape};

/// Split a structured value at `;` not preceded by a backslash, unescaping each part.
fn components(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut esc = false;
    for ch in v.chars() {
        if esc {
            cur.push('\\');
            cur.push(ch);
            esc = false;
        } else if ch == '\\' {
            esc = true;
        } else if ch == ';' {
            out.push(unescape(&cur));
            cur.clear();
        } else {
            cur.push(ch);
        }
    }
    out.push(unescape(&cur));
    out
}

/// The vCard's UID, unescaped; `None` when it has none.
pub fn uid(vcard: &str) -> Option<String> {
    lines(vcard)
        .into_iter()
        .find(|(k, _)| k.split(';').next() == Some("UID"))
        .map(|(_, v)| unescape(v.trim()))
        .filter(|u| !u.is_empty())
}

/// The `ApplicationData` of a contact from its vCard.
pub fn application_data(vcard: &str) -> Element {
    let mut d = Element::new(airsync::ApplicationData);
    let mut emails = 0;
    let mut note = None;
    let push = |d: &mut Element, t: Tag, v: String| {
        if !v.is_empty() && d.child_tag(t).is_none() {
            d.push(Element::text_element(t, v));
        }
    };
    for (k, v) in lines(vcard) {
        let name = k.split(';').next().unwrap_or("").to_string();
        let params = k.to_ascii_lowercase();
        match name.as_str() {
            "FN" => push(&mut d, c::FileAs, unescape(&v)),
            "N" => {
                let parts = components(&v);
                let get = |i: usize| parts.get(i).cloned().unwrap_or_default();
                push(&mut d, c::LastName, get(0));
                push(&mut d, c::FirstName, get(1));
                push(&mut d, c::MiddleName, get(2));
                push(&mut d, c::Title, get(3));
                push(&mut d, c::Suffix, get(4));
            }
            "EMAIL" if emails < 3 => {
                let t = [c::Email1Address, c::Email2Address, c::Email3Address][emails];
                emails += 1;
                push(&mut d, t, unescape(&v));
            }
            "TEL" => {
                let t = if params.contains("cell") {
                    c::MobilePhoneNumber
                } else if params.contains("fax") {
                    c::BusinessFaxNumber
                } else if params.contains("home") {
                    c::HomePhoneNumber
                } else {
                    c::BusinessPhoneNumber
                };
                push(&mut d, t, unescape(&v));
            }
            "ORG" => {
                let parts = components(&v);
                let get = |i: usize| parts.get(i).cloned().unwrap_or_default();
                push(&mut d, c::CompanyName, get(0));
                push(&mut d, c::Department, get(1));
            }
            "TITLE" => push(&mut d, c::JobTitle, unescape(&v)),
            "BDAY" => {
                if let Some(ms) = crate::time::parse(&v) {
                    push(&mut d, c::Birthday, crate::time::iso(ms));
                }
            }
            "URL" => push(&mut d, c::WebPage, unescape(&v)),
            "ADR" => {
                let parts = components(&v);
                let get = |i: usize| parts.get(i).cloned().unwrap_or_default();
                let [street, city, state, postal, country] = if params.contains("work") {
                    BUSINESS
                } else if params.contains("home") {
                    HOME
                } else {
                    OTHER
                };
                // Post office box and extended address go before the street, line by line.
                let full_street = [get(0), get(1), get(2)]
                    .into_iter()
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n");
                push(&mut d, street, full_street);
                push(&mut d, city, get(3));
                push(&mut d, state, get(4));
                push(&mut d, postal, get(5));
                push(&mut d, country, get(6));
            }
            "NOTE" => note = Some(unescape(&v)),
            _ => {}
        }
    }
    if let Some(n) = note {
        d.push(
            Element::new(asb::Body)
                .with_text_child(asb::Type, "1")
                .with_text_child(asb::EstimatedDataSize, n.len().to_string())
                .with_text_child(asb::Data, n),
        );
    }
    d
}

/// A vCard 3.0 from a client's contact `ApplicationData`; `uid` names it.
pub fn to_vcard(data: &Element, uid: &str) -> String {
    let t = |tag: Tag| {
        data.child_tag(tag)
            .and_then(|e| e.text())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let (first, last, middle) = (t(c::FirstName), t(c::LastName), t(c::MiddleName));
    let mut fn_ = t(c::FileAs);
    if fn_.is_empty() {
        fn_ = [first.as_str(), middle.as_str(), last.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
    }
    if fn_.is_empty() {
        fn_ = t(c::CompanyName);
    }
    let mut v = format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{}\r\nFN:{}\r\nN:{};{};{};{};{}\r\n",
        escape(uid),
        escape(&fn_),
        escape(&last),
        escape(&first),
        escape(&middle),
        escape(&t(c::Title)),
        escape(&t(c::Suffix))
    );
    for tag in [c::Email1Address, c::Email2Address, c::Email3Address] {
        let e = t(tag);
        if !e.is_empty() {
            v.push_str(&format!("EMAIL;TYPE=INTERNET:{}\r\n", escape(&e)));
        }
    }
    for (tag, ty) in [
        (c::MobilePhoneNumber, "CELL"),
        (c::BusinessPhoneNumber, "WORK"),
        (c::HomePhoneNumber, "HOME"),
        (c::BusinessFaxNumber, "WORK,FAX"),
    ] {
        let p = t(tag);
        if !p.is_empty() {
            v.push_str(&format!("TEL;TYPE={ty}:{}\r\n", escape(&p)));
        }
    }
    let (org, dept) = (t(c::CompanyName), t(c::Department));
    if !org.is_empty() || !dept.is_empty() {
        v.push_str(&format!("ORG:{};{}\r\n", escape(&org), escape(&dept)));
    }
    let title = t(c::JobTitle);
    if !title.is_empty() {
        v.push_str(&format!("TITLE:{}\r\n", escape(&title)));
    }
    if let Some(ms) = crate::time::parse(&t(c::Birthday)) {
        let iso = crate::time::iso(ms);
        v.push_str(&format!("BDAY:{}\r\n", iso.get(..10).unwrap_or(&iso)));
    }
    for (ty, tags) in [("WORK", BUSINESS), ("HOME", HOME), ("OTHER", OTHER)] {
        let f: Vec<String> = tags.iter().map(|tag| t(*tag)).collect();
        if f.iter().any(|x| !x.is_empty()) {
            v.push_str(&format!(
                "ADR;TYPE={ty}:;;{};{};{};{};{}\r\n",
                escape(&f[0]),
                escape(&f[1]),
                escape(&f[2]),
                escape(&f[3]),
                escape(&f[4])
            ));
        }
    }
    let web = t(c::WebPage);
    if !web.is_empty() {
        v.push_str(&format!("URL:{}\r\n", escape(&web)));
    }
    if let Some(note) = data
        .child_tag(asb::Body)
        .and_then(|b| b.child_text("Data"))
        .filter(|n| !n.is_empty())
    {
        v.push_str(&format!("NOTE:{}\r\n", escape(note)));
    }
    v.push_str("END:VCARD\r\n");
    v
}

/// Properties this module maps both ways; everything else in a stored vCard (photo, postal
/// and IM addresses, nicknames, custom `X-` fields…) is kept when the phone changes the
/// contact, since the phone never saw it.
const MAPPED: [&str; 13] = [
    "BEGIN", "END", "VERSION", "UID", "FN", "N", "EMAIL", "TEL", "ORG", "TITLE", "BDAY", "URL",
    "ADR",
];

/// The phone's version of a contact merged over the stored one: mapped properties from the
/// phone (NOTE too when the phone sent a body), all others from the stored vCard.
pub fn merge(old: &str, data: &Element, uid: &str) -> String {
    let new = to_vcard(data, uid);
    let sent_note = data.child_tag(asb::Body).is_some();
    let keep: Vec<String> = raw_lines(old)
        .into_iter()
        .filter(|l| {
            let name = l
                .split([':', ';'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            !(MAPPED.contains(&name.as_str()) || (sent_note && name == "NOTE"))
        })
        .collect();
    if keep.is_empty() {
        return new;
    }
    let mut out = new.trim_end_matches("END:VCARD\r\n").to_string();
    for l in keep {
        out.push_str(&l);
        out.push_str("\r\n");
    }
    out.push_str("END:VCARD\r\n");
    out
}

/// The content lines of a vCard with their folding kept (each may span several lines).
fn raw_lines(v: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in v.split('\n') {
        let l = raw.trim_end_matches('\r');
        if l.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push_str("\r\n");
                last.push_str(l);
            }
        } else if !l.is_empty() {
            out.push(l.to_string());
        }
        if out.len() > 2000 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_wbxml::element;

    #[test]
    fn vcard_round_trip() {
        let data = element!(airsync::ApplicationData [
            element!(c::FirstName = "Jürgen"),
            element!(c::LastName = "Müller"),
            element!(c::Email1Address = "j@example.com"),
            element!(c::MobilePhoneNumber = "+49 170 1234567"),
            element!(c::CompanyName = "ACME; Inc"),
            element!(c::Birthday = "1980-05-17T00:00:00.000Z"),
            element!(asb::Body [element!(asb::Type = "1"), element!(asb::Data = "line1\nline2")]),
        ]);
        let v = to_vcard(&data, "u1");
        assert!(v.contains("FN:Jürgen Müller\r\n"), "{v}");
        assert!(v.contains("ORG:ACME\\; Inc;\r\n"), "{v}");
        let back = application_data(&v);
        assert_eq!(back.child_text("FirstName"), Some("Jürgen"));
        assert_eq!(back.child_text("LastName"), Some("Müller"));
        assert_eq!(back.child_text("Email1Address"), Some("j@example.com"));
        assert_eq!(
            back.child_text("MobilePhoneNumber"),
            Some("+49 170 1234567")
        );
        assert_eq!(back.child_text("CompanyName"), Some("ACME; Inc"));
        assert_eq!(
            back.child_text("Birthday"),
            Some("1980-05-17T00:00:00.000Z")
        );
        assert_eq!(
            back.child("Body").and_then(|b| b.child_text("Data")),
            Some("line1\nline2")
        );
        // A change from the phone keeps what the phone never saw.
        let stored = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u1\r\nFN:Old\r\nPHOTO;ENCODING=b:AAAA\r\n BBBB\r\nX-SKYPE:jm\r\nNOTE:keep me\r\nEND:VCARD\r\n";
        let changed = element!(airsync::ApplicationData[element!(c::FirstName = "New")]);
        let merged = merge(stored, &changed, "u1");
        assert!(merged.contains("FN:New\r\n") && !merged.contains("FN:Old"));
        assert!(merged.contains("PHOTO;ENCODING=b:AAAA\r\n BBBB\r\n"));
        assert!(merged.contains("X-SKYPE:jm") && merged.contains("NOTE:keep me"));
        assert!(merged.ends_with("END:VCARD\r\n"));
        // Folded lines and junk do not panic.
        let _ = application_data("BEGIN:VCARD\r\nFN:a\r\n b\r\nN\r\n:\r\nTEL;TYPE=HOME:1\r\n");
    }

    #[test]
    fn escaped_backslash_before_n_is_not_a_newline_and_uid_is_read() {
        let v = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u\\,1\r\nFN:Ann\r\nNOTE:C:\\\\new\\nline\r\nEND:VCARD\r\n";
        let d = application_data(v);
        assert_eq!(
            d.child("Body").and_then(|b| b.child_text("Data")),
            Some("C:\\new\nline")
        );
        assert_eq!(uid(v).as_deref(), Some("u,1"));
        assert_eq!(uid("BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n"), None);
    }
}
