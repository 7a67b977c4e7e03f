//! Search ([MS-ASCMD] 2.2.1.16): the global address list (through `directory.search`) and
//! the mailbox (through `mailstore.search`), with ranges.

use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{host, Error as HostError, Result};
use switchboard_wbxml::{tags::airsync as a, tags::gal, tags::search as s, Element};

use crate::ids;
use crate::item::{self, body, email};
use crate::people;
use crate::wire::{self, Streams};
use crate::Ctx;

/// Search status values ([MS-ASCMD] 2.2.3.177.13).
pub mod status {
    /// Success.
    pub const OK: u8 = 1;
    /// The request is invalid.
    pub const INVALID: u8 = 2;
    /// Server error.
    pub const SERVER_ERROR: u8 = 3;
    /// Access denied.
    pub const DENIED: u8 = 5;
    /// The store (or folder) was not found.
    pub const NOT_FOUND: u8 = 6;
    /// The search is too complex.
    pub const TOO_COMPLEX: u8 = 8;
}

/// The most results one answer carries.
const MAX_RESULTS: u32 = 100;

/// `a-b` (zero-based, inclusive); default `0-99`.
fn range(store: &Element) -> (u32, u32) {
    let r = store
        .child("Options")
        .and_then(|o| o.child_text("Range"))
        .and_then(|r| {
            r.trim()
                .split_once('-')
                .map(|(a, b)| (a.trim().parse().ok(), b.trim().parse().ok()))
        });
    match r {
        Some((Some(a), Some(b))) if a <= b => (a, b.min(a + MAX_RESULTS - 1)),
        _ => (0, MAX_RESULTS - 1),
    }
}

/// Handle Search.
pub fn handle(ctx: &Ctx, req: &Request) -> Result<Response> {
    let doc = match wire::decode_body(req, s::Search) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(top(status::INVALID)),
        Err(e) => return Ok(wire::body_error(ctx.query.command, ctx.version, &e)),
    };
    let Some(store) = doc.child_tag(s::Store) else {
        return Ok(top(status::INVALID));
    };
    let name = wire::text(store, "Name").unwrap_or("");
    let mut streams = Streams::new();
    let store_el = if name.eq_ignore_ascii_case("GAL") {
        search_gal(ctx, store)
    } else if name.eq_ignore_ascii_case("Mailbox") {
        search_mailbox(ctx, store, &mut streams)?
    } else {
        store_status(status::NOT_FOUND)
    };
    let out = Element::new(s::Search)
        .with_text_child(s::Status, status::OK.to_string())
        .with(Element::new(s::Response).with(store_el));
    Ok(wire::respond_streaming(&out, streams))
}

fn top(code: u8) -> Response {
    wire::respond(&Element::new(s::Search).with_text_child(s::Status, code.to_string()))
}

fn store_status(code: u8) -> Element {
    Element::new(s::Store).with_text_child(s::Status, code.to_string())
}

fn host_status(e: &HostError) -> u8 {
    match e {
        HostError::Denied(_) => status::DENIED,
        HostError::NotFound(_) => status::NOT_FOUND,
        HostError::Invalid(_) => status::INVALID,
        _ => status::SERVER_ERROR,
    }
}

/// Results `from..=to` of `all`, with Range and Total.
fn page(results: Vec<Element>, total: usize, from: u32, mut store: Element) -> Element {
    if results.is_empty() {
        store.push(Element::new(s::Result));
    } else {
        let n = results.len() as u32;
        for r in results {
            store.push(r);
        }
        store.push(Element::text_element(
            s::Range,
            format!("{from}-{}", from + n - 1),
        ));
    }
    store.with_text_child(s::Total, total.to_string())
}

fn search_gal(ctx: &Ctx, store: &Element) -> Element {
    let query = wire::text(store, "Query").unwrap_or("");
    if query.chars().count() < 1 {
        return store_status(status::INVALID);
    }
    let (from, to) = range(store);
    let people = match host::directory::search(&ctx.dk.who.domain, query, to + 1) {
        Ok(p) => p,
        Err(e) => {
            host::log::info(&format!("eas: GAL search: {e}"));
            return store_status(host_status(&e));
        }
    };
    let total = people.len();
    let results: Vec<Element> = people
        .iter()
        .skip(from as usize)
        .map(|p| {
            let mut props = Element::new(s::Properties)
                .with_text_child(gal::DisplayName, people::display_name(p));
            let mut opt = |tag, v: Option<&str>| {
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    props.push(Element::text_element(tag, v));
                }
            };
            opt(gal::Phone, Some(p.phone.as_str()));
            opt(gal::Office, people::office(p));
            opt(gal::Title, people::title(p));
            opt(gal::Company, people::company(p));
            opt(gal::Alias, p.login.split('@').next());
            opt(gal::FirstName, people::first_name(p));
            opt(gal::LastName, people::last_name(p));
            opt(gal::HomePhone, people::home_phone(p));
            opt(gal::MobilePhone, people::mobile(p));
            props.push(Element::text_element(gal::EmailAddress, people::email(p)));
            Element::new(s::Result).with(props)
        })
        .collect();
    page(results, total, from, store_status(status::OK))
}

/// The free text and folder of a mailbox query: `<And><CollectionId/><FreeText/></And>`.
fn mailbox_query(q: &Element) -> Option<(Option<String>, String)> {
    let and = q.child_tag(s::And).unwrap_or(q);
    let text = and.child_text("FreeText")?.trim().to_string();
    let folder = and
        .child_tag(a::CollectionId)
        .and_then(|c| c.text())
        .map(|c| c.trim().to_string());
    Some((folder, text))
}

fn search_mailbox(ctx: &Ctx, store: &Element, streams: &mut Streams) -> Result<Element> {
    let who = &ctx.dk.who;
    let Some((folder, text)) = store.child_tag(s::Query).and_then(mailbox_query) else {
        return Ok(store_status(status::INVALID));
    };
    if text.is_empty() {
        return Ok(store_status(status::INVALID));
    }
    let map = crate::folders::id_map(who, &host::mailstore::list_folders(who)?)?;
    let conn_folder = match &folder {
        Some(f) => match map.connector_id(f) {
            Some(c) => Some(c.to_string()),
            None => return Ok(store_status(status::NOT_FOUND)),
        },
        None => None,
    };
    let (from, to) = range(store);
    let found = match host::mailstore::search(who, conn_folder.as_deref(), &text, to + 1) {
        Ok(f) => f,
        Err(e) => {
            host::log::info(&format!("eas: mailbox search: {e}"));
            return Ok(store_status(host_status(&e)));
        }
    };
    let prefs = store
        .child("Options")
        .map(body::parse_prefs)
        .unwrap_or_default();
    let pref = body::choose(&prefs);
    let total = found.len();
    let mut results = Vec::new();
    for i in found.iter().skip(from as usize) {
        let content = match item::load_up_to(who, i, item::cap_for(pref.truncation)) {
            Ok(c) => c,
            Err(HostError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let msg = crate::mime::parse(&content.bytes);
        let data = email::application_data(
            who,
            i,
            Some((&content, &msg)),
            Some(pref),
            ctx.version,
            streams,
        )?;
        let mut props = Element::new(s::Properties);
        props.children = data.children;
        let short = map.ids.get(&i.folder_id).cloned().unwrap_or_default();
        results.push(
            Element::new(s::Result)
                .with_text_child(a::Class, "Email")
                .with_text_child(s::LongId, ids::server_id(who, &i.id)?)
                .with_text_child(a::CollectionId, short)
                .with(props),
        );
    }
    Ok(page(results, total, from, store_status(status::OK)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testkit::{MemStore, Phone};
    use switchboard_sdk::mock::MockHost;
    use switchboard_sdk::{DirectoryConnector, Person, Principal};
    use switchboard_wbxml::element;

    struct Dir;
    impl DirectoryConnector for Dir {
        fn authenticate(_: &Principal, _: &str) -> switchboard_sdk::Result<bool> {
            Ok(false)
        }
        fn lookup(who: &Principal) -> switchboard_sdk::Result<Option<Person>> {
            Ok(Some(Person {
                login: who.address(),
                display_name: "Alice Example".into(),
                email: who.address(),
                phone: String::new(),
                attributes: vec![],
            }))
        }
        fn search(domain: &str, query: &str, max: u32) -> switchboard_sdk::Result<Vec<Person>> {
            let all = ["Bob Smith", "Bobby Tables", "Carol Jones"];
            Ok(all
                .iter()
                .filter(|n| n.to_lowercase().contains(&query.to_lowercase()))
                .take(max as usize)
                .map(|n| Person {
                    login: format!("{}@{domain}", n.split(' ').next().unwrap().to_lowercase()),
                    display_name: n.to_string(),
                    email: format!("{}@{domain}", n.split(' ').next().unwrap().to_lowercase()),
                    phone: "+1 555".into(),
                    attributes: vec![
                        ("title".into(), "Engineer".into()),
                        ("sn".into(), "X".into()),
                    ],
                })
                .collect())
        }
    }

    /// A provisioned phone with a directory too.
    pub(crate) fn phone_with_directory(version: &'static str) -> Phone {
        let store = MockHost::new();
        store.run(MemStore::seed);
        let host = MockHost::new()
            .with_mail_connector::<MemStore>(store.clone())
            .with_directory_connector::<Dir>(MockHost::new());
        let key = crate::provision::tests::provision(&host, version);
        Phone {
            host,
            store,
            version,
            key: Some(key),
        }
    }

    #[test]
    fn gal_search_with_range() {
        let phone = phone_with_directory("14.1");
        let doc = element!(
            s::Search[element!(s::Store [
                element!(s::Name = "GAL"),
                element!(s::Query = "bob"),
                element!(s::Options [element!(s::Range = "0-0")]),
            ])]
        );
        let d = phone.cmd("Search", &doc);
        let store = d.child("Response").and_then(|r| r.child("Store")).unwrap();
        assert_eq!(store.child_text("Status"), Some("1"));
        let results: Vec<_> = store.children_named("Result").collect();
        assert_eq!(results.len(), 1);
        let p = results[0].child("Properties").unwrap();
        assert_eq!(p.child_text("DisplayName"), Some("Bob Smith"));
        assert_eq!(p.child_text("EmailAddress"), Some("bob@example.com"));
        assert_eq!(p.child_text("Title"), Some("Engineer"));
        assert_eq!(store.child_text("Range"), Some("0-0"));
        // No match: an empty Result and Total 0.
        let doc = element!(
            s::Search[element!(s::Store [element!(s::Name = "GAL"), element!(s::Query = "zzz")])]
        );
        let d = phone.cmd("Search", &doc);
        let store = d.child("Response").and_then(|r| r.child("Store")).unwrap();
        assert_eq!(store.child_text("Total"), Some("0"));
    }

    #[test]
    fn mailbox_search_returns_long_ids() {
        let phone = phone_with_directory("16.1");
        phone.store(|| {
            MemStore::deliver(
                "INBOX",
                "m1",
                "Quarterly report",
                "Subject: Quarterly report\r\n\r\nnumbers",
                1,
            );
            MemStore::deliver("INBOX", "m2", "Lunch", "Subject: Lunch\r\n\r\nfood", 2);
        });
        let doc = element!(
            s::Search[element!(s::Store [
                element!(s::Name = "Mailbox"),
                element!(s::Query [element!(s::And [
                    element!(a::Class = "Email"),
                    element!(s::FreeText = "quarterly"),
                ])]),
                element!(s::Options [element!(s::Range = "0-9")]),
            ])]
        );
        let d = phone.cmd("Search", &doc);
        let store = d.child("Response").and_then(|r| r.child("Store")).unwrap();
        let results: Vec<_> = store.children_named("Result").collect();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].child_text("LongId"), Some("m1"));
        assert_eq!(
            results[0]
                .child("Properties")
                .and_then(|p| p.child_text("Subject")),
            Some("Quarterly report")
        );
        let bad = element!(
            s::Search[element!(s::Store [element!(s::Name = "DocumentLibrary"), element!(s::Query = "x")])]
        );
        let d = phone.cmd("Search", &bad);
        assert_eq!(
            d.child("Response")
                .and_then(|r| r.child("Store"))
                .and_then(|s| s.child_text("Status")),
            Some("6")
        );
    }
}
