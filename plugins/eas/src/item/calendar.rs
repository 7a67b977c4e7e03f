//! Calendar items ([MS-ASCAL]) to and from iCalendar (RFC 5545), the content connectors
//! store: one VEVENT with its time zone, attendees, reminder, recurrence rule and deleted
//! occurrences; and meeting requests inside mail ([MS-ASEMAIL] `MeetingRequest`).
//!
//! Time zones: a VTIMEZONE's standard and daylight offsets and their transition rules
//! (`BYMONTH`/`BYDAY`) become the EAS `Timezone` blob and convert local times to UTC; a
//! TZID without a VTIMEZONE is taken as UTC. Floating times count as UTC.

use base64::Engine as _;
use switchboard_wbxml::{
    tags::airsync, tags::airsyncbase as asb, tags::calendar as c, tags::email as em, Element, Tag,
};

use super::text::{escape, unescape};
use crate::http::Version;
use crate::time;

/// One content line: name, parameters (upper-cased names), value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    /// Property name, upper case.
    pub name: String,
    /// Parameters.
    pub params: Vec<(String, String)>,
    /// Raw value.
    pub value: String,
}

impl Prop {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A component: its name, properties and sub-components.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Component {
    /// `VEVENT`, `VTIMEZONE`, …
    pub name: String,
    /// Properties in order.
    pub props: Vec<Prop>,
    /// Nested components.
    pub children: Vec<Component>,
}

impl Component {
    /// The first property named `name`.
    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.props.iter().find(|p| p.name == name)
    }
    /// Its value, unescaped.
    pub fn text(&self, name: &str) -> Option<String> {
        self.prop(name).map(|p| unescape(&p.value))
    }
    /// All properties named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Prop> {
        self.props.iter().filter(move |p| p.name == name)
    }
    /// The first child component named `name`.
    pub fn child(&self, name: &str) -> Option<&Component> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// One content line: `NAME;K=V;…:value` and CRLF. A parameter value containing `:`, `;`
/// or `,` is quoted (RFC 5545 §3.1 param-value), else a reader would end the parameters
/// at it. A DQUOTE cannot be part of a value, so one inside is what `parse_line` left of a
/// list (`"mailto:a","mailto:b"` → `mailto:a","mailto:b`): quoting restores the list.
fn render_prop(p: &Prop) -> String {
    let mut line = p.name.clone();
    for (k, v) in &p.params {
        if v.contains([':', ';', ',', '"']) {
            line.push_str(&format!(";{k}=\"{v}\""));
        } else {
            line.push_str(&format!(";{k}={v}"));
        }
    }
    format!("{line}:{}\r\n", p.value)
}

/// Parse iCalendar text into its top component (VCALENDAR); bounded in size and depth.
pub fn parse(text: &str) -> Option<Component> {
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let l = raw.trim_end_matches('\r');
        if l.starts_with([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.push_str(&l[1..]);
            }
        } else if !l.is_empty() {
            lines.push(l.to_string());
        }
        if lines.len() > 20_000 {
            return None;
        }
    }
    let mut stack: Vec<Component> = Vec::new();
    let mut root = None;
    for line in lines {
        let Some(prop) = parse_line(&line) else {
            continue;
        };
        match prop.name.as_str() {
            "BEGIN" => {
                if stack.len() >= 8 {
                    return None;
                }
                stack.push(Component {
                    name: prop.value.to_ascii_uppercase(),
                    ..Component::default()
                });
            }
            "END" => {
                let done = stack.pop()?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => {
                        root = Some(done);
                        break;
                    }
                }
            }
            _ => {
                if let Some(cur) = stack.last_mut() {
                    cur.props.push(prop);
                }
            }
        }
    }
    root
}

fn parse_line(line: &str) -> Option<Prop> {
    // The name and parameters end at the first ':' outside quotes.
    let mut in_quotes = false;
    let mut split = None;
    for (i, ch) in line.char_indices() {
        match ch {
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => {
                split = Some(i);
                break;
            }
            _ => {}
        }
    }
    let i = split?;
    let (head, value) = (&line[..i], &line[i + 1..]);
    // Parameters end at a ';' outside quotes: `CN="Ops; Team"` is one parameter.
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, ch) in head.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&head[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&head[start..]);
    let mut parts = parts.into_iter();
    let name = parts.next()?.trim().to_ascii_uppercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_uppercase(),
                v.trim().trim_matches('"').to_string(),
            ))
        })
        .collect();
    Some(Prop {
        name,
        params,
        value: value.to_string(),
    })
}

/// A time zone's rules: offsets in minutes east of UTC, and the transitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Zone {
    /// Standard offset.
    pub std_offset: i32,
    /// Daylight offset (= standard when there is no DST).
    pub dst_offset: i32,
    /// (month, week 1–5 with 5 = last, weekday 0 = Sunday, hour) when standard time starts.
    pub std_start: Option<(u16, u16, u16, u16)>,
    /// The same for daylight time.
    pub dst_start: Option<(u16, u16, u16, u16)>,
}

fn offset_minutes(v: &str) -> Option<i32> {
    let v = v.trim();
    let sign = if v.starts_with('-') { -1 } else { 1 };
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    let h: i32 = digits.get(0..2)?.parse().ok()?;
    let m: i32 = digits.get(2..4).and_then(|m| m.parse().ok()).unwrap_or(0);
    Some(sign * (h * 60 + m))
}

fn transition(comp: &Component) -> Option<(u16, u16, u16, u16)> {
    let rule = comp.prop("RRULE")?.value.to_ascii_uppercase();
    let get = |k: &str| {
        rule.split(';')
            .find_map(|p| p.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    let month: u16 = get("BYMONTH")?.parse().ok()?;
    let byday = get("BYDAY")?;
    let cut = byday.len().checked_sub(2)?;
    if !byday.is_char_boundary(cut) {
        return None;
    }
    let (week, day) = byday.split_at(cut);
    let week: i32 = if week.is_empty() {
        1
    } else {
        week.parse().ok()?
    };
    let week = if week < 0 { 5 } else { week.clamp(1, 5) } as u16;
    let dow = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]
        .iter()
        .position(|d| *d == day)? as u16;
    let hour = comp
        .prop("DTSTART")
        .and_then(|p| p.value.get(9..11))
        .and_then(|h| h.parse().ok())
        .unwrap_or(2);
    Some((month, week, dow, hour))
}

impl Zone {
    /// The zone of a VTIMEZONE.
    pub fn from_vtimezone(tz: &Component) -> Zone {
        let std = tz.child("STANDARD");
        let dst = tz.child("DAYLIGHT");
        let std_offset = std
            .and_then(|s| s.prop("TZOFFSETTO"))
            .and_then(|p| offset_minutes(&p.value))
            .unwrap_or(0);
        let dst_offset = dst
            .and_then(|s| s.prop("TZOFFSETTO"))
            .and_then(|p| offset_minutes(&p.value))
            .unwrap_or(std_offset);
        Zone {
            std_offset,
            dst_offset,
            std_start: std.and_then(transition),
            dst_start: dst.and_then(transition),
        }
    }

    /// The offset in effect at a local time (by month; transition days are approximate).
    pub fn offset_at(&self, month: u16) -> i32 {
        match (self.dst_start, self.std_start) {
            (Some((dm, ..)), Some((sm, ..))) => {
                let in_dst = if dm < sm {
                    month > dm && month < sm || month == dm
                } else {
                    month >= dm || month < sm
                };
                if in_dst {
                    self.dst_offset
                } else {
                    self.std_offset
                }
            }
            _ => self.std_offset,
        }
    }

    /// The EAS `Timezone` element value: a base64 TIME_ZONE_INFORMATION (172 bytes).
    pub fn blob(&self) -> String {
        let mut b = Vec::with_capacity(172);
        b.extend_from_slice(&(-self.std_offset).to_le_bytes());
        b.extend_from_slice(&[0u8; 64]);
        system_time(&mut b, self.std_start);
        b.extend_from_slice(&0i32.to_le_bytes());
        b.extend_from_slice(&[0u8; 64]);
        system_time(&mut b, self.dst_start.filter(|_| self.std_start.is_some()));
        let dst_bias = if self.dst_start.is_some() && self.std_start.is_some() {
            -(self.dst_offset - self.std_offset)
        } else {
            0
        };
        b.extend_from_slice(&dst_bias.to_le_bytes());
        base64::engine::general_purpose::STANDARD.encode(b)
    }
}

fn system_time(b: &mut Vec<u8>, t: Option<(u16, u16, u16, u16)>) {
    let (month, week, dow, hour) = t.unwrap_or((0, 0, 0, 0));
    for v in [0u16, month, dow, week, hour, 0, 0, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
}

/// A date-time property in UTC milliseconds, and whether it is a date (all-day).
pub fn instant(p: &Prop, zones: &[(String, Zone)]) -> Option<(i64, bool)> {
    let v = p.value.trim();
    let is_date = p
        .param("VALUE")
        .is_some_and(|x| x.eq_ignore_ascii_case("DATE"))
        || v.len() == 8;
    let ms = time::parse(v)?;
    if is_date || v.ends_with('Z') {
        return Some((ms, is_date));
    }
    let zone = p
        .param("TZID")
        .and_then(|id| zones.iter().find(|(z, _)| z == id).map(|(_, z)| *z))
        .unwrap_or_default();
    let month: u16 = v.get(4..6).and_then(|m| m.parse().ok()).unwrap_or(1);
    Some((ms - i64::from(zone.offset_at(month)) * 60_000, false))
}

fn zones(cal: &Component) -> Vec<(String, Zone)> {
    cal.children
        .iter()
        .filter(|c| c.name == "VTIMEZONE")
        .filter_map(|tz| Some((tz.text("TZID")?, Zone::from_vtimezone(tz))))
        .collect()
}

fn mailto(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix("mailto:")
        .or_else(|| v.strip_prefix("MAILTO:"))
        .unwrap_or(v)
        .to_string()
}

/// The event of a calendar and the zone its start uses.
/// Time zones by TZID.
type Zones = Vec<(String, Zone)>;

fn event(cal: &Component) -> Option<(&Component, Zone, Zones)> {
    let ev = cal.child("VEVENT")?;
    let zs = zones(cal);
    let zone = ev
        .prop("DTSTART")
        .and_then(|p| p.param("TZID"))
        .and_then(|id| zs.iter().find(|(z, _)| z == id).map(|(_, z)| *z))
        .unwrap_or_default();
    Some((ev, zone, zs))
}

/// Minutes before the start of the first display alarm (`TRIGGER:-PT15M`).
fn reminder(ev: &Component) -> Option<i64> {
    let alarm = ev.child("VALARM")?;
    let t = alarm.prop("TRIGGER")?.value.trim().to_ascii_uppercase();
    let neg = t.starts_with('-');
    let t = t.trim_start_matches(['-', '+']).trim_start_matches('P');
    let mut minutes = 0i64;
    let mut num = String::new();
    for ch in t.chars() {
        match ch {
            '0'..='9' => num.push(ch),
            // The value is the sender's: a huge count is no reminder, not an overflow.
            'W' | 'D' | 'H' | 'M' | 'S' => {
                let n = num.parse::<i64>().ok()?;
                let add = match ch {
                    'W' => n.checked_mul(7 * 1440)?,
                    'D' => n.checked_mul(1440)?,
                    'H' => n.checked_mul(60)?,
                    'M' => n,
                    _ => n / 60,
                };
                minutes = minutes.checked_add(add)?;
            }
            'T' => {}
            _ => return None,
        }
        if ch.is_ascii_alphabetic() {
            num.clear();
        }
    }
    Some(if neg { minutes } else { 0 })
}

/// EAS recurrence from an RRULE.
fn recurrence(
    ev: &Component,
    start_ms: i64,
    zs: &[(String, Zone)],
    tags: RecTags,
) -> Option<Element> {
    let rule = ev.prop("RRULE")?.value.to_ascii_uppercase();
    let get = |k: &str| {
        rule.split(';')
            .find_map(|p| p.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    let freq = get("FREQ")?;
    let days: Vec<(i32, u32)> = get("BYDAY")
        .map(|b| {
            b.split(',')
                .filter_map(|d| {
                    let d = d.trim();
                    let cut = d.len().checked_sub(2)?;
                    if !d.is_char_boundary(cut) {
                        return None;
                    }
                    let (n, day) = d.split_at(cut);
                    let bit = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]
                        .iter()
                        .position(|x| *x == day)?;
                    Some((n.parse::<i32>().unwrap_or(0), 1u32 << bit))
                })
                .collect()
        })
        .unwrap_or_default();
    // A day named twice (`BYDAY=MO,MO`) is still one bit: or, not add.
    let mask: u32 = days.iter().fold(0, |m, d| m | d.1);
    let nth = days.first().map(|d| d.0).unwrap_or(0);
    let iso = time::iso(start_ms);
    let (month, mday): (u32, u32) = (
        iso.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1),
        iso.get(8..10).and_then(|m| m.parse().ok()).unwrap_or(1),
    );
    let mut r = Element::new(tags.recurrence);
    let ty = match freq.as_str() {
        "DAILY" => 0,
        "WEEKLY" => 1,
        "MONTHLY" if nth != 0 => 3,
        "MONTHLY" => 2,
        "YEARLY" if nth != 0 => 6,
        "YEARLY" => 5,
        _ => return None,
    };
    r.push(Element::text_element(tags.ty, ty.to_string()));
    if let Some(until) = get("UNTIL").and_then(|u| {
        instant(
            &Prop {
                name: "UNTIL".into(),
                params: vec![],
                value: u,
            },
            zs,
        )
    }) {
        r.push(Element::text_element(tags.until, time::compact(until.0)));
    }
    if let Some(count) = get("COUNT") {
        r.push(Element::text_element(tags.occurrences, count));
    }
    r.push(Element::text_element(
        tags.interval,
        get("INTERVAL").unwrap_or_else(|| "1".into()),
    ));
    match ty {
        1 => {
            let m = if mask == 0 {
                1 << ((start_ms.div_euclid(86_400_000) + 4).rem_euclid(7))
            } else {
                i64::from(mask)
            };
            r.push(Element::text_element(tags.day_of_week, m.to_string()));
        }
        2 => r.push(Element::text_element(
            tags.day_of_month,
            get("BYMONTHDAY").unwrap_or_else(|| mday.to_string()),
        )),
        3 | 6 => {
            r.push(Element::text_element(tags.day_of_week, mask.to_string()));
            let week = if nth < 0 { 5 } else { nth.clamp(1, 5) };
            r.push(Element::text_element(tags.week_of_month, week.to_string()));
            if ty == 6 {
                r.push(Element::text_element(tags.month_of_year, month.to_string()));
            }
        }
        5 => {
            r.push(Element::text_element(tags.day_of_month, mday.to_string()));
            r.push(Element::text_element(tags.month_of_year, month.to_string()));
        }
        _ => {}
    }
    Some(r)
}

/// The recurrence tags of the Calendar or the Email page.
#[derive(Clone, Copy)]
struct RecTags {
    recurrence: Tag,
    ty: Tag,
    until: Tag,
    occurrences: Tag,
    interval: Tag,
    day_of_week: Tag,
    day_of_month: Tag,
    week_of_month: Tag,
    month_of_year: Tag,
}

const CAL_REC: RecTags = RecTags {
    recurrence: c::Recurrence,
    ty: c::Type,
    until: c::Until,
    occurrences: c::Occurrences,
    interval: c::Interval,
    day_of_week: c::DayOfWeek,
    day_of_month: c::DayOfMonth,
    week_of_month: c::WeekOfMonth,
    month_of_year: c::MonthOfYear,
};

const MAIL_REC: RecTags = RecTags {
    recurrence: em::Recurrence,
    ty: em::Type,
    until: em::Until,
    occurrences: em::Occurrences,
    interval: em::Interval,
    day_of_week: em::DayOfWeek,
    day_of_month: em::DayOfMonth,
    week_of_month: em::WeekOfMonth,
    month_of_year: em::MonthOfYear,
};

/// The `ApplicationData` of an event; `None` when the text has no VEVENT. `me` is the
/// user's address (to tell organizer from attendee).
pub fn application_data(text: &str, me: &str, version: Version) -> Option<Element> {
    let cal = parse(text)?;
    let (ev, zone, zs) = event(&cal)?;
    let (start, all_day) = instant(ev.prop("DTSTART")?, &zs)?;
    let end = ev
        .prop("DTEND")
        .and_then(|p| instant(p, &zs))
        .map(|x| x.0)
        .unwrap_or(if all_day { start + 86_400_000 } else { start });
    let mut d = Element::new(airsync::ApplicationData);
    d.push(Element::text_element(c::Timezone, zone.blob()));
    d.push(Element::text_element(
        c::AllDayEvent,
        if all_day { "1" } else { "0" },
    ));
    if let Some(desc) = ev.text("DESCRIPTION").filter(|s| !s.is_empty()) {
        d.push(
            Element::new(asb::Body)
                .with_text_child(asb::Type, "1")
                .with_text_child(asb::EstimatedDataSize, desc.len().to_string())
                .with_text_child(asb::Data, desc),
        );
    }
    let busy = match ev.text("TRANSP").as_deref() {
        Some("TRANSPARENT") => "0",
        _ if ev.text("STATUS").as_deref() == Some("TENTATIVE") => "1",
        _ => "2",
    };
    d.push(Element::text_element(c::BusyStatus, busy));
    let organizer = ev.prop("ORGANIZER");
    let organizer_email = organizer.map(|o| mailto(&o.value)).unwrap_or_default();
    if let Some(o) = organizer {
        if let Some(cn) = o.param("CN") {
            d.push(Element::text_element(c::OrganizerName, cn));
        }
        d.push(Element::text_element(
            c::OrganizerEmail,
            organizer_email.clone(),
        ));
    }
    let stamp = ev
        .prop("DTSTAMP")
        .and_then(|p| instant(p, &zs))
        .map_or(start, |x| x.0);
    d.push(Element::text_element(c::DtStamp, time::compact(stamp)));
    d.push(Element::text_element(c::EndTime, time::compact(end)));
    if let Some(loc) = ev.text("LOCATION").filter(|s| !s.is_empty()) {
        if version.is_16() {
            d.push(Element::new(asb::Location).with_text_child(asb::DisplayName, loc));
        } else {
            d.push(Element::text_element(c::Location, loc));
        }
    }
    if let Some(m) = reminder(ev) {
        d.push(Element::text_element(c::Reminder, m.to_string()));
    }
    let sensitivity = match ev.text("CLASS").as_deref() {
        Some("PRIVATE") => "2",
        Some("CONFIDENTIAL") => "3",
        _ => "0",
    };
    d.push(Element::text_element(c::Sensitivity, sensitivity));
    d.push(Element::text_element(
        c::Subject,
        ev.text("SUMMARY").unwrap_or_default(),
    ));
    d.push(Element::text_element(c::StartTime, time::compact(start)));
    if let Some(uid) = ev.text("UID") {
        d.push(Element::text_element(c::UID, uid));
    }
    let attendees: Vec<&Prop> = ev.all("ATTENDEE").take(500).collect();
    let is_organizer = organizer_email.eq_ignore_ascii_case(me);
    let meeting_status = if attendees.is_empty() {
        "0"
    } else if is_organizer || organizer.is_none() {
        "1"
    } else {
        "3"
    };
    d.push(Element::text_element(c::MeetingStatus, meeting_status));
    if !attendees.is_empty() {
        let mut list = Element::new(c::Attendees);
        for a in &attendees {
            let status = match a.param("PARTSTAT").unwrap_or("") {
                "ACCEPTED" => "3",
                "TENTATIVE" => "2",
                "DECLINED" => "4",
                "NEEDS-ACTION" => "5",
                _ => "0",
            };
            let ty = match (
                a.param("ROLE").unwrap_or(""),
                a.param("CUTYPE").unwrap_or(""),
            ) {
                (_, "RESOURCE" | "ROOM") => "3",
                ("OPT-PARTICIPANT", _) => "2",
                _ => "1",
            };
            let email = mailto(&a.value);
            list.push(
                Element::new(c::Attendee)
                    .with_text_child(c::Email, email.clone())
                    .with_text_child(c::Name, a.param("CN").unwrap_or(&email))
                    .with_text_child(c::AttendeeStatus, status)
                    .with_text_child(c::AttendeeType, ty),
            );
        }
        d.push(list);
    }
    if let Some(r) = recurrence(ev, start, &zs, CAL_REC) {
        d.push(r);
        let exdates: Vec<i64> = ev
            .all("EXDATE")
            .flat_map(|p| {
                p.value
                    .split(',')
                    .filter_map(|v| {
                        instant(
                            &Prop {
                                name: "EXDATE".into(),
                                params: p.params.clone(),
                                value: v.to_string(),
                            },
                            &zs,
                        )
                    })
                    .map(|x| x.0)
                    .collect::<Vec<_>>()
            })
            .take(256)
            .collect();
        if !exdates.is_empty() {
            let mut ex = Element::new(c::Exceptions);
            for t in exdates {
                ex.push(
                    Element::new(c::Exception)
                        .with_text_child(c::Deleted, "1")
                        .with_text_child(c::ExceptionStartTime, time::compact(t)),
                );
            }
            d.push(ex);
        }
    }
    if meeting_status == "3" {
        d.push(Element::text_element(c::ResponseRequested, "1"));
        let mine = attendees
            .iter()
            .find(|a| mailto(&a.value).eq_ignore_ascii_case(me))
            .and_then(|a| a.param("PARTSTAT"));
        let response = match mine {
            Some("ACCEPTED") => "3",
            Some("TENTATIVE") => "2",
            Some("DECLINED") => "4",
            _ => "5",
        };
        d.push(Element::text_element(c::ResponseType, response));
    }
    Some(d)
}

/// An iCalendar text from a client's calendar `ApplicationData`.
pub fn to_ical(data: &Element, uid: &str) -> String {
    to_ical_as(data, uid, None)
}

/// The attendees of a client's event: (email, name, type 1 required / 2 optional / 3 resource).
pub fn attendees_of(data: &Element) -> Vec<(String, String, String)> {
    data.child_tag(c::Attendees)
        .map(|list| {
            list.children_tagged(c::Attendee)
                .take(500)
                .filter_map(|a| {
                    let email = a.child_text("Email")?.trim().to_string();
                    let name = a.child_text("Name").unwrap_or(&email).trim().to_string();
                    let ty = a
                        .child_text("AttendeeType")
                        .unwrap_or("1")
                        .trim()
                        .to_string();
                    (!email.is_empty()).then_some((email, name, ty))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// [`to_ical`] with the user as organizer when the event has attendees (a meeting).
pub fn to_ical_as(data: &Element, uid: &str, me: Option<&str>) -> String {
    let t = |tag: Tag| {
        data.child_tag(tag)
            .and_then(|e| e.text())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let uid = Some(t(c::UID))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| uid.to_string());
    let all_day = t(c::AllDayEvent) == "1";
    let start = time::parse(&t(c::StartTime)).unwrap_or(0);
    let end = time::parse(&t(c::EndTime)).unwrap_or(start);
    let date = |ms: i64| time::compact(ms).get(..8).unwrap_or("19700101").to_string();
    let mut v = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Switchboard//EAS//EN\r\nBEGIN:VEVENT\r\n",
    );
    v.push_str(&format!("UID:{}\r\n", escape(&uid)));
    v.push_str(&format!("DTSTAMP:{}\r\n", time::compact(time::now_ms())));
    if all_day {
        v.push_str(&format!("DTSTART;VALUE=DATE:{}\r\n", date(start)));
        v.push_str(&format!(
            "DTEND;VALUE=DATE:{}\r\n",
            date(end.max(start + 86_400_000))
        ));
    } else {
        v.push_str(&format!("DTSTART:{}\r\n", time::compact(start)));
        v.push_str(&format!("DTEND:{}\r\n", time::compact(end)));
    }
    v.push_str(&format!("SUMMARY:{}\r\n", escape(&t(c::Subject))));
    let loc = data
        .child_tag(asb::Location)
        .and_then(|l| l.child_text("DisplayName"))
        .map(str::to_string)
        .unwrap_or_else(|| t(c::Location));
    if !loc.is_empty() {
        v.push_str(&format!("LOCATION:{}\r\n", escape(&loc)));
    }
    if let Some(desc) = data
        .child_tag(asb::Body)
        .and_then(|b| b.child_text("Data"))
        .filter(|d| !d.is_empty())
    {
        v.push_str(&format!("DESCRIPTION:{}\r\n", escape(desc)));
    }
    if t(c::BusyStatus) == "0" {
        v.push_str("TRANSP:TRANSPARENT\r\n");
    }
    match t(c::Sensitivity).as_str() {
        "2" => v.push_str("CLASS:PRIVATE\r\n"),
        "3" => v.push_str("CLASS:CONFIDENTIAL\r\n"),
        _ => {}
    }
    if let Some(rec) = data.child_tag(c::Recurrence) {
        let rt = |tag: Tag| {
            rec.child_tag(tag)
                .and_then(|e| e.text())
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let freq = match rt(c::Type).as_str() {
            "0" => Some("DAILY"),
            "1" => Some("WEEKLY"),
            "2" | "3" => Some("MONTHLY"),
            "5" | "6" => Some("YEARLY"),
            _ => None,
        };
        if let Some(freq) = freq {
            let mut rule = format!("RRULE:FREQ={freq}");
            let interval = rt(c::Interval);
            if !interval.is_empty() {
                rule.push_str(&format!(";INTERVAL={interval}"));
            }
            if let Ok(mask) = rt(c::DayOfWeek).parse::<u32>() {
                let days: Vec<&str> = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, d)| *d)
                    .collect();
                if !days.is_empty() {
                    let week = rt(c::WeekOfMonth);
                    let prefix = match week.as_str() {
                        "" => String::new(),
                        "5" => "-1".into(),
                        w => w.to_string(),
                    };
                    let list: Vec<String> = days.iter().map(|d| format!("{prefix}{d}")).collect();
                    rule.push_str(&format!(";BYDAY={}", list.join(",")));
                }
            }
            let dom = rt(c::DayOfMonth);
            if !dom.is_empty() {
                rule.push_str(&format!(";BYMONTHDAY={dom}"));
            }
            let moy = rt(c::MonthOfYear);
            if !moy.is_empty() {
                rule.push_str(&format!(";BYMONTH={moy}"));
            }
            if let Some(u) = time::parse(&rt(c::Until)) {
                rule.push_str(&format!(";UNTIL={}", time::compact(u)));
            } else if !rt(c::Occurrences).is_empty() {
                rule.push_str(&format!(";COUNT={}", rt(c::Occurrences)));
            }
            v.push_str(&rule);
            v.push_str("\r\n");
        }
    }
    let attendees = attendees_of(data);
    if !attendees.is_empty() {
        if let Some(me) = me {
            v.push_str(&format!("ORGANIZER:mailto:{me}\r\n"));
        }
        for (email, name, ty) in &attendees {
            let role = match ty.as_str() {
                "2" => "OPT-PARTICIPANT",
                "3" => "NON-PARTICIPANT;CUTYPE=RESOURCE",
                _ => "REQ-PARTICIPANT",
            };
            v.push_str(&format!(
                "ATTENDEE;CN=\"{}\";ROLE={role};PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{email}\r\n",
                name.replace('"', "'")
            ));
        }
    }
    if let Ok(minutes) = t(c::Reminder).parse::<u32>() {
        v.push_str(&format!(
            "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT{minutes}M\r\nEND:VALARM\r\n"
        ));
    }
    v.push_str("END:VEVENT\r\nEND:VCALENDAR\r\n");
    v
}

/// The phone's version of an event merged over the stored one: the properties this module
/// maps come from the phone; the stored event's others (categories, sequence, status, URL,
/// `X-` fields, and its attendees when the phone sent none) are kept.
pub fn merge(old: &str, data: &Element, uid: &str, me: &str) -> String {
    let new = to_ical_as(data, uid, Some(me));
    let Some(cal) = parse(old) else {
        return new;
    };
    let Some(ev) = cal.child("VEVENT") else {
        return new;
    };
    let sent_attendees = data.child_tag(c::Attendees).is_some();
    const MAPPED: [&str; 12] = [
        "UID",
        "DTSTAMP",
        "DTSTART",
        "DTEND",
        "DURATION",
        "SUMMARY",
        "LOCATION",
        "DESCRIPTION",
        "TRANSP",
        "CLASS",
        "RRULE",
        "LAST-MODIFIED",
    ];
    let mut extra = String::new();
    for p in &ev.props {
        let attendee = matches!(p.name.as_str(), "ATTENDEE" | "ORGANIZER");
        if MAPPED.contains(&p.name.as_str()) || (attendee && sent_attendees) {
            continue;
        }
        if attendee && new.contains(&format!("\r\n{}", p.name)) {
            continue;
        }
        extra.push_str(&render_prop(p));
    }
    // Time zones (kept EXDATEs may name them) and the overridden occurrences (further
    // VEVENTs with a RECURRENCE-ID) stay as stored.
    let mut around = String::new();
    for comp in &cal.children {
        if comp.name == "VTIMEZONE" {
            around.push_str(&render(comp));
        }
    }
    let overrides: String = cal
        .children
        .iter()
        .filter(|c| c.name == "VEVENT" && c.prop("RECURRENCE-ID").is_some())
        .map(render)
        .collect();
    let mut out = new.replacen(
        "END:VEVENT\r\n",
        &format!("{extra}END:VEVENT\r\n{overrides}"),
        1,
    );
    if !around.is_empty() {
        out = out.replacen("BEGIN:VEVENT\r\n", &format!("{around}BEGIN:VEVENT\r\n"), 1);
    }
    out
}

/// An invitation mail (iTIP REQUEST) for a stored meeting, to its attendees; `None` when the
/// event has no attendees.
pub fn invitation(stored: &str, me: &str) -> Option<String> {
    let cal = parse(stored)?;
    let ev = cal.child("VEVENT")?;
    let to: Vec<String> = ev
        .all("ATTENDEE")
        .map(|a| mailto(&a.value))
        .filter(|e| !e.eq_ignore_ascii_case(me))
        .collect();
    if to.is_empty() {
        return None;
    }
    let request = stored.replacen("BEGIN:VEVENT", "METHOD:REQUEST\r\nBEGIN:VEVENT", 1);
    // SUMMARY may hold a CR/LF (escaped `\n`, or decoded from an RFC 2047 subject): as a
    // header it would start new fields, so it goes through header_value.
    let subject = crate::mime::header_value(&ev.text("SUMMARY").unwrap_or_default());
    Some(format!(
        "From: {me}\r\nTo: {}\r\nSubject: {subject}\r\nDate: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n{request}",
        to.join(", "),
        time::rfc5322(time::now_ms())
    ))
}

/// The `email:MeetingRequest` of an invitation, and the message class to show.
pub fn meeting_request(text: &str, version: Version) -> Option<(Element, &'static str)> {
    let cal = parse(text)?;
    let method = cal.text("METHOD").unwrap_or_default().to_ascii_uppercase();
    let (ev, zone, zs) = event(&cal)?;
    let class = match method.as_str() {
        "REQUEST" => "IPM.Schedule.Meeting.Request",
        "CANCEL" => "IPM.Schedule.Meeting.Canceled",
        "REPLY" => {
            let partstat = ev
                .prop("ATTENDEE")
                .and_then(|a| a.param("PARTSTAT"))
                .unwrap_or("");
            match partstat {
                "ACCEPTED" => "IPM.Schedule.Meeting.Resp.Pos",
                "DECLINED" => "IPM.Schedule.Meeting.Resp.Neg",
                _ => "IPM.Schedule.Meeting.Resp.Tent",
            }
        }
        _ => return None,
    };
    let (start, all_day) = instant(ev.prop("DTSTART")?, &zs)?;
    let end = ev
        .prop("DTEND")
        .and_then(|p| instant(p, &zs))
        .map_or(start, |x| x.0);
    let stamp = ev
        .prop("DTSTAMP")
        .and_then(|p| instant(p, &zs))
        .map_or(start, |x| x.0);
    let mut m = Element::new(em::MeetingRequest)
        .with_text_child(em::AllDayEvent, if all_day { "1" } else { "0" })
        .with_text_child(em::StartTime, time::iso(start))
        .with_text_child(em::DtStamp, time::iso(stamp))
        .with_text_child(em::EndTime, time::iso(end))
        .with_text_child(
            em::InstanceType,
            if ev.prop("RRULE").is_some() { "1" } else { "0" },
        );
    if let Some(loc) = ev.text("LOCATION").filter(|l| !l.is_empty()) {
        if version.is_16() {
            m.push(Element::new(asb::Location).with_text_child(asb::DisplayName, loc));
        } else {
            m.push(Element::text_element(em::Location, loc));
        }
    }
    if let Some(o) = ev.prop("ORGANIZER") {
        let email = mailto(&o.value);
        let who = match o.param("CN") {
            Some(cn) => format!("\"{cn}\" <{email}>"),
            None => email,
        };
        m.push(Element::text_element(em::Organizer, who));
    }
    if let Some(r) = reminder(ev) {
        m.push(Element::text_element(em::Reminder, r.to_string()));
    }
    m.push(Element::text_element(em::ResponseRequested, "1"));
    if let Some(r) = recurrence(ev, start, &zs, MAIL_REC) {
        m.push(Element::new(em::Recurrences).with(r));
    }
    m.push(Element::text_element(em::Sensitivity, "0"));
    m.push(Element::text_element(em::BusyStatus, "2"));
    m.push(Element::text_element(em::TimeZone, zone.blob()));
    if let Some(uid) = ev.text("UID") {
        m.push(Element::text_element(em::GlobalObjId, global_obj_id(&uid)));
    }
    Some((m, class))
}

/// The Outlook GlobalObjectId of an iCalendar UID (the `vCal-Uid` form), base64.
pub fn global_obj_id(uid: &str) -> String {
    let mut b: Vec<u8> = vec![
        0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00, 0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82, 0xE0,
        0x08,
    ];
    b.extend_from_slice(&[0u8; 4]); // instance date: the whole series
    b.extend_from_slice(&[0u8; 8]); // creation time
    b.extend_from_slice(&[0u8; 8]); // reserved
    let data_len = u32::try_from(12 + uid.len() + 1).unwrap_or(u32::MAX);
    b.extend_from_slice(&data_len.to_le_bytes());
    b.extend_from_slice(b"vCal-Uid");
    b.extend_from_slice(&[0x01, 0x00, 0x00, 0x00]);
    b.extend_from_slice(uid.as_bytes());
    b.push(0);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The user's answer to an invitation as an iTIP REPLY, and a copy of the event to store
/// in the calendar with the user's PARTSTAT. `response`: 1 accept, 2 tentative, 3 decline.
pub fn reply(text: &str, me: &str, response: u8) -> Option<(String, String, String)> {
    let cal = parse(text)?;
    let (ev, _, _) = event(&cal)?;
    let organizer = mailto(&ev.prop("ORGANIZER")?.value);
    let partstat = match response {
        1 => "ACCEPTED",
        2 => "TENTATIVE",
        _ => "DECLINED",
    };
    let keep = render_prop;
    let mut event_lines = String::new();
    for p in &ev.props {
        if p.name != "ATTENDEE" {
            event_lines.push_str(&keep(p));
        }
    }
    let attendee = format!("ATTENDEE;PARTSTAT={partstat}:mailto:{me}\r\n");
    let reply = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Switchboard//EAS//EN\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n{}{attendee}END:VEVENT\r\nEND:VCALENDAR\r\n",
        ev.props
            .iter()
            .filter(|p| matches!(p.name.as_str(), "UID" | "DTSTART" | "DTEND" | "SUMMARY" | "ORGANIZER" | "SEQUENCE" | "RECURRENCE-ID" | "DTSTAMP"))
            .map(keep)
            .collect::<String>()
    );
    let mut stored =
        String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Switchboard//EAS//EN\r\n");
    for tz in cal.children.iter().filter(|c| c.name == "VTIMEZONE") {
        stored.push_str(&render(tz));
    }
    stored.push_str("BEGIN:VEVENT\r\n");
    stored.push_str(&event_lines);
    for a in ev.all("ATTENDEE") {
        if mailto(&a.value).eq_ignore_ascii_case(me) {
            stored.push_str(&attendee);
        } else {
            stored.push_str(&keep(a));
        }
    }
    for child in &ev.children {
        stored.push_str(&render(child));
    }
    stored.push_str("END:VEVENT\r\nEND:VCALENDAR\r\n");
    Some((reply, stored, organizer))
}

fn render(c: &Component) -> String {
    let mut s = format!("BEGIN:{}\r\n", c.name);
    for p in &c.props {
        s.push_str(&render_prop(p));
    }
    for ch in &c.children {
        s.push_str(&render(ch));
    }
    s.push_str(&format!("END:{}\r\n", c.name));
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const INVITE: &str = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:abc-123\r\nDTSTAMP:20231101T120000Z\r\nDTSTART;TZID=Europe/Berlin:20231114T100000\r\nDTEND;TZID=Europe/Berlin:20231114T110000\r\nSUMMARY:Planning\\, Q4\r\nLOCATION:Room 1\r\nORGANIZER;CN=Bob:mailto:bob@example.com\r\nATTENDEE;CN=Alice;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:alice@example.com\r\nRRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=10\r\nEXDATE;TZID=Europe/Berlin:20231121T100000\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn event_to_application_data() {
        let d = application_data(INVITE, "alice@example.com", Version::V14_1).unwrap();
        // 10:00 in Berlin in November (standard time, +01:00) is 09:00 UTC.
        assert_eq!(d.child_text("StartTime"), Some("20231114T090000Z"));
        assert_eq!(d.child_text("EndTime"), Some("20231114T100000Z"));
        assert_eq!(d.child_text("Subject"), Some("Planning, Q4"));
        assert_eq!(d.child_text("Location"), Some("Room 1"));
        assert_eq!(d.child_text("OrganizerEmail"), Some("bob@example.com"));
        assert_eq!(d.child_text("MeetingStatus"), Some("3"));
        assert_eq!(d.child_text("ResponseType"), Some("5"));
        assert_eq!(d.child_text("Reminder"), Some("15"));
        assert_eq!(d.child_text("UID"), Some("abc-123"));
        let r = d.child("Recurrence").unwrap();
        assert_eq!(r.child_text("Type"), Some("1"));
        assert_eq!(r.child_text("DayOfWeek"), Some("4"));
        assert_eq!(r.child_text("Occurrences"), Some("10"));
        let ex = d
            .child("Exceptions")
            .and_then(|e| e.child("Exception"))
            .unwrap();
        assert_eq!(
            ex.child_text("ExceptionStartTime"),
            Some("20231121T090000Z")
        );
        // The time zone blob: bias -60, standard in October, daylight in March, bias -60.
        let tz = base64::engine::general_purpose::STANDARD
            .decode(d.child_text("Timezone").unwrap())
            .unwrap();
        assert_eq!(tz.len(), 172);
        assert_eq!(i32::from_le_bytes([tz[0], tz[1], tz[2], tz[3]]), -60);
        assert_eq!(u16::from_le_bytes([tz[70], tz[71]]), 10);
        assert_eq!(u16::from_le_bytes([tz[154], tz[155]]), 3);
        assert_eq!(
            i32::from_le_bytes([tz[168], tz[169], tz[170], tz[171]]),
            -60
        );
        // 16.1 puts the location in AirSyncBase.
        let d = application_data(INVITE, "alice@example.com", Version::V16_1).unwrap();
        assert!(d.child_tag(c::Location).is_none());
        assert_eq!(
            d.child("Location")
                .and_then(|l| l.child_text("DisplayName")),
            Some("Room 1")
        );
    }

    #[test]
    fn round_trip_from_the_phone_and_meeting_requests() {
        let d = application_data(INVITE, "bob@example.com", Version::V14_1).unwrap();
        assert_eq!(d.child_text("MeetingStatus"), Some("1"));
        let ical = to_ical(&d, "fallback");
        let back = application_data(&ical, "bob@example.com", Version::V14_1).unwrap();
        for f in [
            "StartTime",
            "EndTime",
            "Subject",
            "Location",
            "UID",
            "Reminder",
        ] {
            assert_eq!(back.child_text(f), d.child_text(f), "{f}");
        }
        assert_eq!(
            back.child("Recurrence")
                .and_then(|r| r.child_text("DayOfWeek")),
            Some("4")
        );
        let (m, class) = meeting_request(INVITE, Version::V14_1).unwrap();
        assert_eq!(class, "IPM.Schedule.Meeting.Request");
        assert_eq!(m.child_text("StartTime"), Some("2023-11-14T09:00:00.000Z"));
        assert_eq!(m.child_text("Organizer"), Some("\"Bob\" <bob@example.com>"));
        assert!(m.child("Recurrences").is_some());
        let (reply_text, stored, organizer) = reply(INVITE, "alice@example.com", 1).unwrap();
        assert_eq!(organizer, "bob@example.com");
        assert!(
            reply_text.contains("METHOD:REPLY")
                && reply_text.contains("PARTSTAT=ACCEPTED:mailto:alice@example.com")
        );
        assert!(stored.contains("BEGIN:VTIMEZONE") && stored.contains("PARTSTAT=ACCEPTED"));
        let again = application_data(&stored, "alice@example.com", Version::V14_1).unwrap();
        assert_eq!(again.child_text("ResponseType"), Some("3"));
        // A change from the phone keeps the stored event's other properties and attendees.
        let stored = INVITE.replace("SUMMARY:", "CATEGORIES:Work\r\nX-CUSTOM:1\r\nSUMMARY:");
        let change = switchboard_wbxml::element!(airsync::ApplicationData [
            switchboard_wbxml::element!(c::StartTime = "20231114T090000Z"),
            switchboard_wbxml::element!(c::EndTime = "20231114T100000Z"),
            switchboard_wbxml::element!(c::Subject = "Renamed"),
            switchboard_wbxml::element!(c::Recurrence [
                switchboard_wbxml::element!(c::Type = "1"),
                switchboard_wbxml::element!(c::Occurrences = "10"),
                switchboard_wbxml::element!(c::Interval = "1"),
                switchboard_wbxml::element!(c::DayOfWeek = "4"),
            ]),
        ]);
        let merged = merge(&stored, &change, "abc-123", "alice@example.com");
        assert!(merged.contains("SUMMARY:Renamed") && !merged.contains("Planning"));
        assert!(merged.contains("CATEGORIES:Work") && merged.contains("X-CUSTOM:1"));
        assert!(merged.contains("ATTENDEE;CN=Alice") && merged.contains("ORGANIZER;CN=Bob"));
        assert!(merged.contains("EXDATE;TZID=Europe/Berlin:20231121T100000"));
        assert!(merged.contains("BEGIN:VTIMEZONE"));
        let again = application_data(&merged, "alice@example.com", Version::V14_1).unwrap();
        assert_eq!(again.child_text("Subject"), Some("Renamed"));
        assert_eq!(
            again
                .child("Exceptions")
                .and_then(|e| e.child("Exception"))
                .and_then(|x| x.child_text("ExceptionStartTime")),
            Some("20231121T090000Z")
        );
        // Junk never panics, non-ASCII rule parts included.
        let odd = INVITE
            .replace("BYDAY=TU", "BYDAY=ÄTU,é")
            .replace("BYDAY=-1SU", "BYDAY=ü");
        let _ = application_data(&odd, "a@b", Version::V14_1);
        for n in 0..INVITE.len() {
            let _ = application_data(&INVITE[..n], "a@b", Version::V14_1);
            let _ = meeting_request(&INVITE[..n], Version::V16_1);
        }
    }

    #[test]
    fn quoted_parameter_values_survive_merge_reply_and_render() {
        let invite = INVITE.replace(
            "ATTENDEE;CN=Alice;",
            "ATTENDEE;CN=\"Team: Ops; Berlin, DE\";PARTSTAT=NEEDS-ACTION:mailto:ops@example.com\r\nATTENDEE;CN=Alice;",
        );
        let cal = parse(&invite).unwrap();
        let ev = cal.child("VEVENT").unwrap();
        let ops = ev.all("ATTENDEE").next().unwrap();
        assert_eq!(ops.param("CN"), Some("Team: Ops; Berlin, DE"));
        assert_eq!(ops.param("PARTSTAT"), Some("NEEDS-ACTION"));
        assert_eq!(ops.value, "mailto:ops@example.com");
        let line = "ATTENDEE;CN=\"Team: Ops; Berlin, DE\";PARTSTAT=NEEDS-ACTION:mailto:ops@example.com\r\n";
        assert_eq!(render_prop(ops), line);
        assert!(render(ev).contains(line));
        // MeetingResponse: the stored copy keeps the other attendee intact.
        let (_, stored, _) = reply(&invite, "alice@example.com", 1).unwrap();
        assert!(stored.contains(line), "{stored}");
        // A phone edit without attendees keeps the stored ones, quoted.
        let change = switchboard_wbxml::element!(airsync::ApplicationData [
            switchboard_wbxml::element!(c::StartTime = "20231114T090000Z"),
            switchboard_wbxml::element!(c::EndTime = "20231114T100000Z"),
            switchboard_wbxml::element!(c::Subject = "Renamed"),
        ]);
        let merged = merge(&invite, &change, "abc-123", "alice@example.com");
        assert!(merged.contains(line), "{merged}");
        let again = parse(&merged).unwrap();
        let ops = again
            .child("VEVENT")
            .unwrap()
            .all("ATTENDEE")
            .next()
            .unwrap();
        assert_eq!(ops.param("CN"), Some("Team: Ops; Berlin, DE"));
        assert_eq!(ops.value, "mailto:ops@example.com");
        // A quoted list of values comes back as the same list.
        let line = "ATTENDEE;DELEGATED-TO=\"mailto:a@x\",\"mailto:b@x\":mailto:c@x";
        let p = parse_line(line).unwrap();
        assert_eq!(render_prop(&p), format!("{line}\r\n"));
    }

    #[test]
    fn huge_trigger_is_no_reminder_and_repeated_byday_is_one_day() {
        for trigger in [
            "-P99999999999999999W",
            "-P9999999999999999D",
            "-PT9223372036854775807M1H",
            "-P1DT9223372036854775807M",
        ] {
            let text = INVITE.replace("TRIGGER:-PT15M", &format!("TRIGGER:{trigger}"));
            let d = application_data(&text, "alice@example.com", Version::V14_1).unwrap();
            assert_eq!(d.child_text("Reminder"), None, "{trigger}");
        }
        let text = INVITE.replace("TRIGGER:-PT15M", "TRIGGER:-P1DT1H");
        let d = application_data(&text, "alice@example.com", Version::V14_1).unwrap();
        assert_eq!(d.child_text("Reminder"), Some("1500"));
        // Monday twice is Monday (2), not Tuesday (4).
        let text = INVITE.replace("BYDAY=TU;COUNT", "BYDAY=MO,MO;COUNT");
        let d = application_data(&text, "alice@example.com", Version::V14_1).unwrap();
        assert_eq!(
            d.child("Recurrence")
                .and_then(|r| r.child_text("DayOfWeek")),
            Some("2")
        );
    }

    #[test]
    fn invitation_subject_cannot_inject_header_fields() {
        let stored = INVITE.replace(
            "SUMMARY:Planning\\, Q4",
            "SUMMARY:Hi\\nBcc: evil@example.net\r\n X\r\tY",
        );
        let mail = invitation(&stored, "bob@example.com").unwrap();
        let head = &mail[..mail.find("\r\n\r\n").unwrap()];
        assert!(
            head.contains("\r\nSubject: HiBcc: evil@example.net"),
            "{head}"
        );
        assert!(!head.lines().any(|l| l.starts_with("Bcc")), "{head}");
        let stored = INVITE.replace("SUMMARY:Planning\\, Q4", "SUMMARY:Größe");
        let mail = invitation(&stored, "bob@example.com").unwrap();
        assert!(
            mail.contains("Subject: =?utf-8?B?R3LDtsOfZQ==?=\r\n"),
            "{mail}"
        );
    }
}
