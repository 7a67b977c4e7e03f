//! The parts of a WebDAV multistatus the connector reads (sans-IO): per response its href,
//! ETag, resource types, display name and calendar component set; and the body of a CalDAV
//! `calendar-query` with a time range.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One `<response>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// `<href>`, percent-decoding left to the caller (ids keep the server's form).
    pub href: String,
    /// `<getetag>`, quotes kept.
    pub etag: Option<String>,
    /// `<resourcetype>` has `<collection/>`.
    pub collection: bool,
    /// … `<calendar/>`.
    pub calendar: bool,
    /// … `<addressbook/>`.
    pub addressbook: bool,
    /// `<displayname>`.
    pub display_name: Option<String>,
    /// `<supported-calendar-component-set>` names (`VEVENT`, `VTODO`).
    pub components: Vec<String>,
    /// CalendarServer `<getctag>` of a collection.
    pub ctag: Option<String>,
    /// `<sync-token>` property of a collection (RFC 6578).
    pub sync_token: Option<String>,
    /// The response's own `<status>` code (no `<propstat>`): in a `sync-collection` report,
    /// 404 for a removed member and 507 on the collection for a truncated answer.
    pub status: Option<u16>,
}

impl Entry {
    /// A removed member of a `sync-collection` report.
    pub fn gone(&self) -> bool {
        matches!(self.status, Some(404 | 410))
    }
}

/// The body of a `calendar-query` REPORT (RFC 4791 §7.8) for the ETags of the calendar
/// objects with a `component` (`VEVENT`, `VTODO`) that overlaps `[start, end)`, given in
/// seconds since the epoch; a side that is `None` is open. Recurrence is the server's to
/// expand: a series matches when any of its instances overlaps (RFC 4791 §9.9).
pub fn calendar_query(component: &str, start: Option<i64>, end: Option<i64>) -> String {
    let mut range = String::new();
    if let Some(s) = start {
        range.push_str(&format!(" start=\"{}\"", super::ical::utc_stamp(s)));
    }
    if let Some(e) = end {
        range.push_str(&format!(" end=\"{}\"", super::ical::utc_stamp(e)));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="{}"><C:time-range{range}/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"#,
        quick_xml::escape::escape(component)
    )
}

fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// Parse a multistatus body; properties under a non-2xx `<propstat>` are ignored.
pub fn multistatus(body: &[u8]) -> Result<Vec<Entry>, String> {
    multistatus_with_token(body).map(|(e, _)| e)
}

/// Parse a multistatus body and its top-level `<sync-token>` (the new token of a
/// `sync-collection` report, RFC 6578 §6.4).
pub fn multistatus_with_token(body: &[u8]) -> Result<(Vec<Entry>, Option<String>), String> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(false);
    let mut out = Vec::new();
    let mut token = None;
    let mut cur: Option<Entry> = None;
    let mut pending = Entry::default();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut text = String::new();
    let mut buf = Vec::new();
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("bad multistatus XML: {e}"))?;
        match ev {
            Event::Start(e) => {
                let name = local(e.name().as_ref()).to_vec();
                match name.as_slice() {
                    b"response" => cur = Some(Entry::default()),
                    b"propstat" => pending = Entry::default(),
                    _ => {}
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(e) => {
                let name = local(e.name().as_ref()).to_vec();
                let in_type = path.last().is_some_and(|p| p == b"resourcetype");
                match name.as_slice() {
                    b"collection" if in_type => pending.collection = true,
                    b"calendar" if in_type => pending.calendar = true,
                    b"addressbook" if in_type => pending.addressbook = true,
                    b"comp" => {
                        for a in e.attributes().flatten() {
                            if local(a.key.as_ref()) == b"name" {
                                pending
                                    .components
                                    .push(String::from_utf8_lossy(&a.value).to_ascii_uppercase());
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                let raw = String::from_utf8_lossy(t.as_ref()).into_owned();
                let unescaped = quick_xml::escape::unescape(&raw)
                    .map(|c| c.into_owned())
                    .unwrap_or(raw);
                text.push_str(&unescaped);
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                if let Ok(c) = quick_xml::escape::unescape(&format!("&{name};")) {
                    text.push_str(&c);
                }
            }
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(t.as_ref())),
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                match name.as_slice() {
                    b"href" if path.last().is_some_and(|p| p == b"response") => {
                        if let Some(c) = cur.as_mut() {
                            c.href = text.trim().to_string();
                        }
                    }
                    b"getetag" => pending.etag = Some(text.trim().to_string()),
                    b"displayname" => pending.display_name = Some(text.trim().to_string()),
                    b"getctag" => pending.ctag = Some(text.trim().to_string()),
                    b"sync-token" if path.last().is_some_and(|p| p == b"multistatus") => {
                        token = Some(text.trim().to_string())
                    }
                    b"sync-token" => pending.sync_token = Some(text.trim().to_string()),
                    b"status" if path.last().is_some_and(|p| p == b"response") => {
                        if let Some(c) = cur.as_mut() {
                            c.status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                        }
                    }
                    b"status" if path.last().is_some_and(|p| p == b"propstat") => {
                        let ok = text
                            .split_whitespace()
                            .nth(1)
                            .is_some_and(|c| c.starts_with('2'));
                        if !ok {
                            pending = Entry::default();
                        }
                    }
                    b"propstat" => {
                        if let Some(c) = cur.as_mut() {
                            let p = std::mem::take(&mut pending);
                            c.etag = c.etag.take().or(p.etag);
                            c.collection |= p.collection;
                            c.calendar |= p.calendar;
                            c.addressbook |= p.addressbook;
                            c.display_name = c.display_name.take().or(p.display_name);
                            c.ctag = c.ctag.take().or(p.ctag);
                            c.sync_token = c.sync_token.take().or(p.sync_token);
                            c.components.extend(p.components);
                        }
                    }
                    b"response" => {
                        if let Some(c) = cur.take() {
                            if !c.href.is_empty() {
                                out.push(c);
                            }
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok((out, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radicale_like_multistatus() {
        let body = br#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CR="urn:ietf:params:xml:ns:carddav">
<response><href>/alice@example.com/</href><propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/alice@example.com/cal/</href><propstat><prop><resourcetype><C:calendar/><collection/></resourcetype><displayname>Work &amp; Life</displayname><C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set></prop><status>HTTP/1.1 200 OK</status></propstat>
<propstat><prop><getetag/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>
<response><href>/alice@example.com/cal/e1.ics</href><propstat><prop><getetag>"abc"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/alice@example.com/book/</href><propstat><prop><resourcetype><CR:addressbook/><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
</multistatus>"#;
        let e = multistatus(body).unwrap();
        assert_eq!(e.len(), 4);
        assert!(e[0].collection && !e[0].calendar);
        assert!(e[1].calendar);
        assert_eq!(e[1].display_name.as_deref(), Some("Work & Life"));
        assert_eq!(e[1].components, ["VEVENT"]);
        assert_eq!(e[1].etag, None);
        assert_eq!(e[2].etag.as_deref(), Some("\"abc\""));
        assert!(e[3].addressbook);
        assert!(
            multistatus(b"<multistatus><response>").is_ok() || multistatus(b"<a></b>").is_err()
        );
    }

    #[test]
    fn sync_collection_report_and_collection_tokens() {
        let body = br#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:" xmlns:CS="http://calendarserver.org/ns/">
<response><href>/a/cal/</href><propstat><prop><sync-token>http://radicale.org/ns/sync/1</sync-token><CS:getctag>"c1"</CS:getctag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/a/cal/e1.ics</href><propstat><prop><getetag>"e"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/a/cal/e2.ics</href><status>HTTP/1.1 404 Not Found</status></response>
<sync-token>http://radicale.org/ns/sync/2</sync-token>
</multistatus>"#;
        let (e, token) = multistatus_with_token(body).unwrap();
        assert_eq!(token.as_deref(), Some("http://radicale.org/ns/sync/2"));
        assert_eq!(
            e[0].sync_token.as_deref(),
            Some("http://radicale.org/ns/sync/1")
        );
        assert_eq!(e[0].ctag.as_deref(), Some("\"c1\""));
        assert!(!e[1].gone() && e[1].etag.is_some());
        assert!(e[2].gone() && e[2].etag.is_none());
        assert_eq!(e[2].status, Some(404));
    }

    #[test]
    fn calendar_query_body_with_a_time_range() {
        // 2024-01-01T00:00:00Z and 2025-01-01T00:00:00Z.
        assert_eq!(
            calendar_query("VEVENT", Some(1_704_067_200), Some(1_735_689_600)),
            r#"<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20240101T000000Z" end="20250101T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"#
        );
        // One open side: only the other attribute (RFC 4791 §9.9 allows either alone).
        let todo = calendar_query("VTODO", None, Some(1_735_689_600));
        assert!(
            todo.contains(r#"<C:comp-filter name="VTODO"><C:time-range end="20250101T000000Z"/>"#),
            "{todo}"
        );
        let past = calendar_query("VEVENT", Some(0), None);
        assert!(
            past.contains(r#"<C:time-range start="19700101T000000Z"/>"#),
            "{past}"
        );
    }

    #[test]
    fn calendar_query_answer_as_in_rfc_4791() {
        // Shaped like RFC 4791 §7.8.1's answer: absolute hrefs, prefixed DAV: names, the
        // calendar data (when asked for) beside the ETag.
        let body = br#"<?xml version="1.0" encoding="utf-8" ?>
<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:response>
    <D:href>http://cal.example.com/bernard/work/abcd2.ics</D:href>
    <D:propstat>
      <D:prop>
        <D:getetag>"fffff-abcd2"</D:getetag>
        <C:calendar-data>BEGIN:VCALENDAR
VERSION:2.0
BEGIN:VEVENT
DTSTART;TZID=US/Eastern:20060102T120000
SUMMARY:Event #2 &amp; more
RRULE:FREQ=DAILY;COUNT=5
END:VEVENT
END:VCALENDAR
</C:calendar-data>
      </D:prop>
      <D:status>HTTP/1.1 200 OK</D:status>
    </D:propstat>
  </D:response>
  <D:response>
    <D:href>http://cal.example.com/bernard/work/abcd3.ics</D:href>
    <D:propstat>
      <D:prop>
        <D:getetag>"fffff-abcd3"</D:getetag>
      </D:prop>
      <D:status>HTTP/1.1 200 OK</D:status>
    </D:propstat>
  </D:response>
</D:multistatus>"#;
        let e = multistatus(body).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].href, "http://cal.example.com/bernard/work/abcd2.ics");
        assert_eq!(e[0].etag.as_deref(), Some("\"fffff-abcd2\""));
        assert_eq!(e[1].etag.as_deref(), Some("\"fffff-abcd3\""));
        assert!(e.iter().all(|e| !e.collection && e.status.is_none()));
        // A server that caps the matches says so on the request-URI (507): seen as a status.
        let capped = br#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/bernard/work/</D:href><D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response></D:multistatus>"#;
        assert_eq!(multistatus(capped).unwrap()[0].status, Some(507));
    }
}
