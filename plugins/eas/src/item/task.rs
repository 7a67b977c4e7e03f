//! Tasks ([MS-ASTASK]) from and to iCalendar VTODO, and notes ([MS-ASNOTE]) from and to
//! plain text (what connectors store for notes).

use switchboard_wbxml::{
    tags::airsync, tags::airsyncbase as asb, tags::notes as n, tags::tasks as t, Element, Tag,
};

use super::calendar::{self, instant};
use crate::time;

/// The `ApplicationData` of a task; `None` without a VTODO.
pub fn application_data(text: &str) -> Option<Element> {
    let cal = calendar::parse(text)?;
    let todo = cal.child("VTODO")?;
    let mut d = Element::new(airsync::ApplicationData);
    if let Some(desc) = todo.text("DESCRIPTION").filter(|s| !s.is_empty()) {
        d.push(
            Element::new(asb::Body)
                .with_text_child(asb::Type, "1")
                .with_text_child(asb::EstimatedDataSize, desc.len().to_string())
                .with_text_child(asb::Data, desc),
        );
    }
    d.push(Element::text_element(
        t::Subject,
        todo.text("SUMMARY").unwrap_or_default(),
    ));
    let importance = match todo
        .text("PRIORITY")
        .and_then(|p| p.trim().parse::<u8>().ok())
    {
        Some(1..=4) => "2",
        Some(6..=9) => "0",
        _ => "1",
    };
    d.push(Element::text_element(t::Importance, importance));
    let zs = Vec::new();
    if let Some((start, _)) = todo.prop("DTSTART").and_then(|p| instant(p, &zs)) {
        d.push(Element::text_element(t::UtcStartDate, time::iso(start)));
        d.push(Element::text_element(t::StartDate, time::iso(start)));
    }
    if let Some((due, _)) = todo.prop("DUE").and_then(|p| instant(p, &zs)) {
        d.push(Element::text_element(t::UtcDueDate, time::iso(due)));
        d.push(Element::text_element(t::DueDate, time::iso(due)));
    }
    let completed =
        todo.text("STATUS").as_deref() == Some("COMPLETED") || todo.prop("COMPLETED").is_some();
    d.push(Element::text_element(
        t::Complete,
        if completed { "1" } else { "0" },
    ));
    if completed {
        let when = todo
            .prop("COMPLETED")
            .and_then(|p| instant(p, &zs))
            .map_or_else(time::now_ms, |x| x.0);
        d.push(Element::text_element(t::DateCompleted, time::iso(when)));
    }
    d.push(Element::text_element(t::Sensitivity, "0"));
    d.push(Element::text_element(t::ReminderSet, "0"));
    Some(d)
}

/// A VTODO from a client's task `ApplicationData`.
pub fn to_ical(data: &Element, uid: &str) -> String {
    let get = |tag: Tag| {
        data.child_tag(tag)
            .and_then(|e| e.text())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let esc = super::text::escape;
    let mut v = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Switchboard//EAS//EN\r\nBEGIN:VTODO\r\nUID:{}\r\nDTSTAMP:{}\r\nSUMMARY:{}\r\n",
        esc(uid),
        time::compact(time::now_ms()),
        esc(&get(t::Subject))
    );
    if let Some(s) = time::parse(&get(t::UtcStartDate)) {
        v.push_str(&format!("DTSTART:{}\r\n", time::compact(s)));
    }
    if let Some(d) = time::parse(&get(t::UtcDueDate)) {
        v.push_str(&format!("DUE:{}\r\n", time::compact(d)));
    }
    match get(t::Importance).as_str() {
        "2" => v.push_str("PRIORITY:1\r\n"),
        "0" => v.push_str("PRIORITY:9\r\n"),
        _ => {}
    }
    if get(t::Complete) == "1" {
        v.push_str("STATUS:COMPLETED\r\n");
        let when = time::parse(&get(t::DateCompleted)).unwrap_or_else(time::now_ms);
        v.push_str(&format!("COMPLETED:{}\r\n", time::compact(when)));
    } else {
        v.push_str("STATUS:NEEDS-ACTION\r\n");
    }
    if let Some(desc) = data
        .child_tag(asb::Body)
        .and_then(|b| b.child_text("Data"))
        .filter(|d| !d.is_empty())
    {
        v.push_str(&format!("DESCRIPTION:{}\r\n", esc(desc)));
    }
    v.push_str("END:VTODO\r\nEND:VCALENDAR\r\n");
    v
}

/// The `ApplicationData` of a note: the first line is the subject, the text the body.
pub fn note_data(text: &str, modified_ms: i64) -> Element {
    let subject: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(255)
        .collect();
    Element::new(airsync::ApplicationData)
        .with_text_child(n::Subject, subject)
        .with(
            Element::new(asb::Body)
                .with_text_child(asb::Type, "1")
                .with_text_child(asb::EstimatedDataSize, text.len().to_string())
                .with_text_child(asb::Data, text),
        )
        .with_text_child(n::MessageClass, "IPM.StickyNote")
        .with_text_child(n::LastModifiedDate, time::iso(modified_ms))
}

/// The text of a client's note: the body, or the subject when there is none.
pub fn note_text(data: &Element) -> String {
    data.child_tag(asb::Body)
        .and_then(|b| b.child_text("Data"))
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .or_else(|| {
            data.child_tag(n::Subject)
                .and_then(|s| s.text())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_wbxml::element;

    #[test]
    fn tasks_and_notes_round_trip() {
        let data = element!(airsync::ApplicationData [
            element!(t::Subject = "Buy milk"),
            element!(t::Importance = "2"),
            element!(t::UtcDueDate = "2023-12-01T17:00:00.000Z"),
            element!(t::Complete = "0"),
        ]);
        let ical = to_ical(&data, "t1");
        let back = application_data(&ical).unwrap();
        assert_eq!(back.child_text("Subject"), Some("Buy milk"));
        assert_eq!(back.child_text("Importance"), Some("2"));
        assert_eq!(
            back.child_text("UtcDueDate"),
            Some("2023-12-01T17:00:00.000Z")
        );
        assert_eq!(back.child_text("Complete"), Some("0"));
        let done = ical.replace(
            "STATUS:NEEDS-ACTION",
            "STATUS:COMPLETED\r\nCOMPLETED:20231202T080000Z",
        );
        let back = application_data(&done).unwrap();
        assert_eq!(
            back.child_text("DateCompleted"),
            Some("2023-12-02T08:00:00.000Z")
        );
        let note = note_data("Shopping\nmilk, eggs", 0);
        assert_eq!(note.child_text("Subject"), Some("Shopping"));
        assert_eq!(note_text(&note), "Shopping\nmilk, eggs");
        assert!(application_data("BEGIN:VCALENDAR\r\nEND:VCALENDAR").is_none());
    }

    #[test]
    fn task_subject_with_backslash_n_round_trips() {
        let data = element!(airsync::ApplicationData [
            element!(t::Subject = "C:\\new; a, b"),
        ]);
        let ical = to_ical(&data, "t2");
        assert!(ical.contains("SUMMARY:C:\\\\new\\; a\\, b\r\n"), "{ical}");
        let back = application_data(&ical).unwrap();
        assert_eq!(back.child_text("Subject"), Some("C:\\new; a, b"));
    }
}
