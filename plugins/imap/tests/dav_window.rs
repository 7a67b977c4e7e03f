//! Calendar windows against a real Radicale: with `calendar_past_days` /
//! `calendar_future_days` set, calendars and task lists are listed with a CalDAV
//! `calendar-query` time range (the server expands recurrences), address books whole; later
//! syncs stay incremental through `sync-collection`. The connector runs under the SDK's mock
//! host and talks to Radicale through a proxy that logs every request.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::http_log;
use support::radicale::{card, Radicale};
use support::{connector_host, dav_changes};
use switchboard_imap::dav::ical::utc_stamp;
use switchboard_imap::Imap;
use switchboard_sdk::mock::MockHost;
use switchboard_sdk::{MailConnector, Principal};

const DAY: i64 = 86_400;
const YEAR: i64 = 365 * DAY;

fn alice() -> Principal {
    Principal::parse("alice@example.com").unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Connector settings for DAV only (the IMAP side is never contacted here).
fn host(dav_port: u16) -> MockHost {
    connector_host(1).with_config("dav_url", &format!("http://127.0.0.1:{dav_port}"))
}

/// An hour-long event at `start` (seconds), with an optional `RRULE` value.
fn event(uid: &str, summary: &str, start: i64, rrule: Option<&str>) -> Vec<u8> {
    let rrule = rrule.map(|r| format!("RRULE:{r}\r\n")).unwrap_or_default();
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:{}\r\nDTSTART:{}\r\nDTEND:{}\r\n{rrule}SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        utc_stamp(now()),
        utc_stamp(start),
        utc_stamp(start + 3600)
    )
    .into_bytes()
}

/// A task due at `due`.
fn task(uid: &str, summary: &str, due: i64) -> Vec<u8> {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\nUID:{uid}\r\nDTSTAMP:{}\r\nDUE:{}\r\nSUMMARY:{summary}\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        utc_stamp(now()),
        utc_stamp(due)
    )
    .into_bytes()
}

/// The requests with the GETs' paths left out (their order follows the listing).
fn shape(requests: &[String]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            if r.starts_with("GET ") {
                "GET".to_string()
            } else {
                r.clone()
            }
        })
        .collect()
}

#[test]
fn a_calendar_window_lists_what_overlaps_it_and_stays_incremental() {
    let dav = Radicale::start();
    let mkcal = |path: &str, comp: &str| {
        let body = format!("<?xml version=\"1.0\"?><C:mkcalendar xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><D:set><D:prop><C:supported-calendar-component-set><C:comp name=\"{comp}\"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>");
        assert_eq!(
            dav.alice("MKCALENDAR", path, &[], body.as_bytes()),
            201,
            "{path}"
        );
    };
    mkcal("/alice@example.com/cal/", "VEVENT");
    mkcal("/alice@example.com/todo/", "VTODO");
    let mkbook = "<?xml version=\"1.0\"?><D:mkcol xmlns:D=\"DAV:\" xmlns:CR=\"urn:ietf:params:xml:ns:carddav\"><D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>";
    assert_eq!(
        dav.alice("MKCOL", "/alice@example.com/book/", &[], mkbook.as_bytes()),
        201
    );
    let put = |path: &str, body: &[u8]| {
        dav.alice(
            "PUT",
            &format!("/alice@example.com/{path}"),
            &[("Content-Type", "text/calendar")],
            body,
        )
    };
    let t = now();
    assert_eq!(
        put(
            "cal/past.ics",
            &event("past", "Long ago", t - 3 * YEAR, None)
        ),
        201
    );
    assert_eq!(
        put(
            "cal/soon.ics",
            &event("soon", "Next week", t + 7 * DAY, None)
        ),
        201
    );
    assert_eq!(
        put(
            "cal/far.ics",
            &event("far", "Far future", t + 3 * YEAR, None)
        ),
        201
    );
    // A series that started two years ago and never ends has instances in any window; one
    // that ended two years ago has none, though both started before it.
    assert_eq!(
        put(
            "cal/weekly.ics",
            &event("weekly", "Weekly", t - 2 * YEAR, Some("FREQ=WEEKLY"))
        ),
        201
    );
    let until = format!("FREQ=WEEKLY;UNTIL={}", utc_stamp(t - 2 * YEAR));
    assert_eq!(
        put(
            "cal/ended.ics",
            &event("ended", "Ended series", t - 3 * YEAR, Some(&until))
        ),
        201
    );
    assert_eq!(
        put("todo/bills.ics", &task("bills", "Pay bills", t + 7 * DAY)),
        201
    );
    assert_eq!(
        put("todo/chore.ics", &task("chore", "Old chore", t - 3 * YEAR)),
        201
    );
    assert_eq!(
        dav.alice(
            "PUT",
            "/alice@example.com/book/c1.vcf",
            &[("Content-Type", "text/vcard")],
            &card("c1", "Carol Example")
        ),
        201
    );
    let cal = "dav:/alice%40example.com/cal/";
    let todo = "dav:/alice%40example.com/todo/";
    let book = "dav:/alice%40example.com/book/";
    let path = "/alice%40example.com/cal/";

    // Without a window: everything, from the ETag listing.
    host(dav.port).run(|| {
        let who = alice();
        let all = Imap::sync(&who, cal, None, 10).unwrap();
        assert_eq!(
            dav_changes(&all.changes),
            [
                "+Ended series",
                "+Far future",
                "+Long ago",
                "+Next week",
                "+Weekly"
            ]
        );
        let tasks = Imap::sync(&who, todo, None, 10).unwrap();
        assert_eq!(dav_changes(&tasks.changes), ["+Old chore", "+Pay bills"]);
    });

    let log = http_log::start(dav.port);
    let windowed = host(log.port)
        .with_config("calendar_past_days", "30")
        .with_config("calendar_future_days", "365");
    windowed.run(|| {
        let who = alice();
        let first = Imap::sync(&who, cal, None, 10).unwrap();
        assert_eq!(dav_changes(&first.changes), ["+Next week", "+Weekly"]);
        // The token before the query, the query, the token again (unchanged, so kept), and
        // only the two events in the window fetched.
        assert_eq!(
            shape(&log.take()),
            [
                format!("PROPFIND {path} 0"),
                format!("REPORT {path} 1"),
                format!("PROPFIND {path} 0"),
                "GET".into(),
                "GET".into()
            ]
        );
        // Replay-safe: the same first sync again gives the same page and state.
        assert_eq!(Imap::sync(&who, cal, None, 10).unwrap(), first);
        log.take();
        // The kept token makes the next sync the cheap check.
        let idle = Imap::sync(&who, cal, Some(&first.state), 10).unwrap();
        assert!(idle.changes.is_empty() && !idle.more);
        assert_eq!(idle.state, first.state);
        assert_eq!(log.take(), [format!("PROPFIND {path} 0")]);

        // Task lists are windowed too; address books never are.
        let tasks = Imap::sync(&who, todo, None, 10).unwrap();
        assert_eq!(dav_changes(&tasks.changes), ["+Pay bills"]);
        let cards = Imap::sync(&who, book, None, 10).unwrap();
        assert_eq!(dav_changes(&cards.changes), ["+Carol Example"]);
        let requests = log.take();
        assert!(
            requests.contains(&"PROPFIND /alice%40example.com/book/ 1".to_string()),
            "{requests:?}"
        );

        // An edit of the event in the window comes incrementally: sync-collection, one GET.
        assert!(matches!(
            put(
                "cal/soon.ics",
                &event("soon", "Next week (moved)", t + 8 * DAY, None)
            ),
            201 | 204
        ));
        let moved = Imap::sync(&who, cal, Some(&first.state), 10).unwrap();
        assert_eq!(dav_changes(&moved.changes), ["~Next week (moved)"]);
        assert_eq!(
            log.take(),
            [
                format!("PROPFIND {path} 0"),
                format!("REPORT {path}"),
                format!("GET {path}soon.ics")
            ]
        );

        // The report names every changed member: an edited event outside the window is
        // delivered too (more than the window, never less).
        assert!(matches!(
            put(
                "cal/past.ics",
                &event("past", "Long ago (edited)", t - 3 * YEAR, None)
            ),
            201 | 204
        ));
        let edited = Imap::sync(&who, cal, Some(&moved.state), 10).unwrap();
        assert_eq!(dav_changes(&edited.changes), ["+Long ago (edited)"]);
        log.take();

        // A token the server forgot: the windowed listing is the fallback; it holds what
        // overlaps the window, so the old event leaves the client again.
        dav.forget_sync_tokens();
        assert_eq!(
            put(
                "cal/tomorrow.ics",
                &event("tomorrow", "Tomorrow", t + DAY, None)
            ),
            201
        );
        let after = Imap::sync(&who, cal, Some(&edited.state), 10).unwrap();
        assert_eq!(dav_changes(&after.changes), ["+Tomorrow", "-past.ics"]);
        assert_eq!(
            log.take(),
            [
                format!("PROPFIND {path} 0"),
                format!("REPORT {path}"),
                format!("PROPFIND {path} 0"),
                format!("REPORT {path} 1"),
                format!("PROPFIND {path} 0"),
                format!("GET {path}tomorrow.ics")
            ]
        );
        let idle = Imap::sync(&who, cal, Some(&after.state), 10).unwrap();
        assert!(idle.changes.is_empty());
        assert_eq!(log.take(), [format!("PROPFIND {path} 0")]);
    });
}
