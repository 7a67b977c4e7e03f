//! Just enough iCalendar (RFC 5545) and vCard (RFC 6350) reading for item summaries. The
//! content itself is stored verbatim, so recurrence rules, exceptions and everything else a
//! client wrote come back exactly as sent. Sans-IO.

/// Summary fields of a calendar item or task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalendarSummary {
    /// `SUMMARY` of the master component.
    pub summary: String,
    /// `ORGANIZER` address (without `mailto:`).
    pub organizer: String,
    /// `DTSTART` (or `DUE` for tasks without a start), ms since the epoch, read as UTC.
    pub start_ms: Option<i64>,
}

/// Summary fields of a contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactSummary {
    /// `FN`.
    pub name: String,
    /// The first `EMAIL`.
    pub email: String,
}

/// Content lines with folding undone: (name upper-cased, parameters, value).
fn lines(text: &str) -> Vec<(String, String, String)> {
    let mut unfolded: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), unfolded.last_mut()) {
            (Some(cont), Some(last)) => last.push_str(cont),
            _ => unfolded.push(raw.to_string()),
        }
    }
    unfolded
        .into_iter()
        .filter_map(|l| {
            let (head, value) = l.split_once(':')?;
            let (name, params) = head.split_once(';').unwrap_or((head, ""));
            Some((
                name.trim().to_ascii_uppercase(),
                params.to_string(),
                unescape(value),
            ))
        })
        .collect()
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYYMMDD` or `YYYYMMDDTHHMMSS[Z]` as ms since the epoch (time zones read as UTC).
pub fn parse_datetime(v: &str) -> Option<i64> {
    let v = v.trim();
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    // ASCII first: the slices below are by byte, and client data may put anything here.
    let date = v.get(0..8).filter(|d| d.is_ascii())?;
    let (y, m, d) = (num(&date[0..4])?, num(&date[4..6])?, num(&date[6..8])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(time) = v.get(8..) {
        if !time.is_empty() {
            let t = time.strip_prefix('T')?;
            let t = t.strip_suffix('Z').unwrap_or(t);
            if t.len() != 6 || !t.is_ascii() {
                return None;
            }
            let (h, mi, s) = (num(&t[0..2])?, num(&t[2..4])?, num(&t[4..6])?);
            if h > 23 || mi > 59 || s > 60 {
                return None;
            }
            secs += h * 3600 + mi * 60 + s;
        }
    }
    Some(secs * 1000)
}

/// Read the master `VEVENT` (or `VTODO`): the first one without a `RECURRENCE-ID`.
pub fn calendar(text: &str) -> CalendarSummary {
    let mut master: Option<CalendarSummary> = None;
    let mut exception_first: Option<CalendarSummary> = None;
    let mut cur: Option<(CalendarSummary, bool)> = None;
    let mut due = None;
    for (name, _params, value) in lines(text) {
        match name.as_str() {
            "BEGIN"
                if matches!(
                    value.trim().to_ascii_uppercase().as_str(),
                    "VEVENT" | "VTODO"
                ) =>
            {
                cur = Some((CalendarSummary::default(), false));
                due = None;
            }
            "END"
                if matches!(
                    value.trim().to_ascii_uppercase().as_str(),
                    "VEVENT" | "VTODO"
                ) =>
            {
                if let Some((mut c, exception)) = cur.take() {
                    c.start_ms = c.start_ms.or(due);
                    let slot = if exception {
                        &mut exception_first
                    } else {
                        &mut master
                    };
                    slot.get_or_insert(c);
                }
            }
            _ => {
                if let Some((c, exception)) = cur.as_mut() {
                    match name.as_str() {
                        "SUMMARY" => c.summary = value.trim().to_string(),
                        "ORGANIZER" => {
                            let v = value.trim();
                            let v = if v.len() >= 7 && v[..7].eq_ignore_ascii_case("mailto:") {
                                &v[7..]
                            } else {
                                v
                            };
                            c.organizer = v.to_string();
                        }
                        "DTSTART" => c.start_ms = parse_datetime(&value),
                        "DUE" => due = parse_datetime(&value),
                        "RECURRENCE-ID" => *exception = true,
                        _ => {}
                    }
                }
            }
        }
    }
    master.or(exception_first).unwrap_or_default()
}

/// Read a vCard.
pub fn contact(text: &str) -> ContactSummary {
    let mut out = ContactSummary::default();
    for (name, _params, value) in lines(text) {
        match name.as_str() {
            "FN" if out.name.is_empty() => out.name = value.trim().to_string(),
            "EMAIL" if out.email.is_empty() => out.email = value.trim().to_string(),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_event_wins_over_exceptions() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nRECURRENCE-ID:20260105T090000Z\r\nSUMMARY:Moved standup\r\nDTSTART:20260105T100000Z\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:1\r\nSUMMARY:Daily\r\n  standup\r\nORGANIZER;CN=Bob:MAILTO:bob@example.com\r\nDTSTART;TZID=Europe/Berlin:20260101T090000\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let c = calendar(ics);
        assert_eq!(c.summary, "Daily standup");
        assert_eq!(c.organizer, "bob@example.com");
        assert_eq!(c.start_ms, Some(1_767_258_000_000));
    }

    #[test]
    fn dates_and_garbage() {
        assert_eq!(parse_datetime("19700101"), Some(0));
        assert_eq!(parse_datetime("20000301T000000Z"), Some(951_868_800_000));
        for bad in [
            "",
            "2026",
            "20261301",
            "20260101T25",
            "2026010xT000000",
            "20260101X000000",
            // Multi-byte characters where the byte slices fall (panicked before).
            "202é0101",
            "20260101T0é000",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(calendar("\u{0}garbage"), CalendarSummary::default());
        assert_eq!(contact(""), ContactSummary::default());
    }

    #[test]
    fn contact_name_and_email() {
        let c = contact("BEGIN:VCARD\nVERSION:4.0\nFN:Zoë Example\nEMAIL;TYPE=work:zoe@example.com\nEMAIL:other@example.com\nEND:VCARD\n");
        assert_eq!(c.name, "Zoë Example");
        assert_eq!(c.email, "zoe@example.com");
    }
}
