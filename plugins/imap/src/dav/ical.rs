//! Just enough iCalendar and vCard (sans-IO) for an item summary: unfolded properties,
//! SUMMARY/FN, ORGANIZER, DTSTART/LAST-MODIFIED as a time.

use switchboard_sdk::ItemClass;

use crate::mapping::internal_date_ms;

/// Unfolded `NAME;PARAMS:VALUE` lines.
fn lines(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut out: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(cont) = l.strip_prefix(' ').or_else(|| l.strip_prefix('\t')) {
            if let Some(last) = out.last_mut() {
                last.push_str(cont);
                continue;
            }
        }
        out.push(l.to_string());
    }
    out
}

fn value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (head, v) = line.split_once(':')?;
    let prop = head.split(';').next()?;
    prop.eq_ignore_ascii_case(name).then_some(v)
}

fn unescape(v: &str) -> String {
    v.replace("\\n", " ")
        .replace("\\N", " ")
        .replace("\\,", ",")
        .replace("\\;", ";")
        .replace("\\\\", "\\")
}

/// `20261130T101500Z`, `20261130T101500` (taken as UTC) or `20261130` → ms since the epoch.
pub fn ical_time_ms(v: &str) -> Option<i64> {
    let v = v.trim();
    let (date, time) = match v.split_once('T') {
        Some((d, t)) => (d, t.trim_end_matches('Z')),
        None => (v, "000000"),
    };
    if date.len() != 8 || time.len() < 6 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m: usize = date.get(4..6)?.parse().ok()?;
    let month = months.get(m.checked_sub(1)?)?;
    internal_date_ms(&format!(
        "{}-{month}-{} {}:{}:{} +0000",
        date.get(6..8)?,
        date.get(0..4)?,
        time.get(0..2)?,
        time.get(2..4)?,
        time.get(4..6)?
    ))
}

/// Seconds since the epoch as an iCalendar/CalDAV UTC time, `YYYYMMDDTHHMMSSZ`; clamped to
/// years 0000-9999 (the form has four digits for the year).
pub fn utc_stamp(secs: i64) -> String {
    const MIN: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let secs = secs.clamp(MIN, MAX);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to the proleptic Gregorian date (H. Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (class, subject, sender, time) of an iCalendar object or vCard.
pub fn summarize(data: &[u8]) -> (ItemClass, String, String, i64) {
    let mut class = ItemClass::Calendar;
    let mut subject = String::new();
    let mut sender = String::new();
    let mut start = None;
    let mut modified = None;
    let mut in_component = false;
    for l in lines(data) {
        let upper = l.to_ascii_uppercase();
        if upper == "BEGIN:VCARD" {
            class = ItemClass::Contact;
        } else if upper == "BEGIN:VTODO" {
            class = ItemClass::Task;
            in_component = true;
        } else if upper == "BEGIN:VEVENT" {
            in_component = true;
        } else if upper.starts_with("END:VEVENT") || upper.starts_with("END:VTODO") {
            in_component = false;
        }
        if class == ItemClass::Contact {
            if let Some(v) = value(&l, "FN") {
                if subject.is_empty() {
                    subject = unescape(v);
                }
            }
            if let Some(v) = value(&l, "REV") {
                modified = modified.or_else(|| ical_time_ms(v));
            }
            continue;
        }
        if !in_component {
            continue;
        }
        if let Some(v) = value(&l, "SUMMARY") {
            if subject.is_empty() {
                subject = unescape(v);
            }
        } else if let Some(v) = value(&l, "ORGANIZER") {
            if sender.is_empty() {
                sender = v
                    .trim_start_matches("mailto:")
                    .trim_start_matches("MAILTO:")
                    .to_string();
            }
        } else if let Some(v) = value(&l, "DTSTART").or_else(|| value(&l, "DUE")) {
            start = start.or_else(|| ical_time_ms(v));
        } else if let Some(v) = value(&l, "LAST-MODIFIED").or_else(|| value(&l, "DTSTAMP")) {
            modified = modified.or_else(|| ical_time_ms(v));
        }
    }
    (class, subject, sender, start.or(modified).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_tasks_and_cards() {
        let ev = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nSUMMARY:Team \r\n meeting\\, weekly\r\nORGANIZER;CN=Bob:mailto:bob@example.com\r\nDTSTART:20261130T101500Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let (c, s, o, t) = summarize(ev);
        assert_eq!(c, ItemClass::Calendar);
        assert_eq!(s, "Team meeting, weekly");
        assert_eq!(o, "bob@example.com");
        assert_eq!(t, ical_time_ms("20261130T101500Z").unwrap());
        assert_eq!(ical_time_ms("19700101T000001Z"), Some(1000));
        assert_eq!(ical_time_ms("19700102"), Some(86_400_000));
        assert_eq!(ical_time_ms("garbage"), None);
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_700_000_000), "20231114T221320Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z"); // leap day
        assert_eq!(utc_stamp(-1), "19691231T235959Z");
        assert_eq!(utc_stamp(i64::MAX), "99991231T235959Z");
        assert_eq!(utc_stamp(i64::MIN), "00000101T000000Z");
        for secs in [0, 86_399, 1_234_567_890, 4_102_444_800] {
            assert_eq!(ical_time_ms(&utc_stamp(secs)), Some(secs * 1000), "{secs}");
        }
        let todo = b"BEGIN:VCALENDAR\nBEGIN:VTODO\nSUMMARY:Pay bills\nDUE;VALUE=DATE:20261201\nEND:VTODO\nEND:VCALENDAR\n";
        let (c, s, _, t) = summarize(todo);
        assert_eq!((c, s.as_str()), (ItemClass::Task, "Pay bills"));
        assert_eq!(t, ical_time_ms("20261201").unwrap());
        let card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carol Example\r\nEMAIL:carol@example.com\r\nEND:VCARD\r\n";
        let (c, s, _, _) = summarize(card);
        assert_eq!((c, s.as_str()), (ItemClass::Contact, "Carol Example"));
    }
}
