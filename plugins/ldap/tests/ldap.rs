//! The connector against a real, throwaway OpenLDAP server (see `support/slapd.rs`): bind
//! logins over StartTLS and ldaps, injection attempts, attribute mapping with memberOf, GAL
//! paging, and the errors an admin sees for an unreachable server or a bad filter.

#[path = "support/slapd.rs"]
mod slapd;

use slapd::{Slapd, BASE_DN, GAL_PEOPLE, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD};
use switchboard_ldap::Ldap;
use switchboard_sdk::mock::MockHost;
use switchboard_sdk::{DirectoryConnector, Error, Principal};

fn who(user: &str) -> Principal {
    Principal {
        user: user.into(),
        domain: "example.com".into(),
    }
}

/// A host configured for `url`, with the service account and a CA file; `extra` overrides.
fn host(slapd: &Slapd, url: &str, extra: &[(&str, &str)]) -> MockHost {
    let mut h = MockHost::new()
        .with_config("url", url)
        .with_config("base_dn", BASE_DN)
        .with_config("bind_dn", SERVICE_DN)
        .with_config("bind_password", SERVICE_PASSWORD)
        .with_config("ca_file", &slapd.ca_file().display().to_string())
        .with_config("timeout_ms", "5000");
    for (k, v) in extra {
        h = h.with_config(k, v);
    }
    h
}

fn auth(h: &MockHost, user: &str, password: &str) -> Result<bool, Error> {
    h.run(|| Ldap::authenticate(&who(user), password))
}

#[test]
fn bind_logins_over_starttls_and_ldaps() {
    let slapd = Slapd::start();
    for h in [
        host(&slapd, &slapd.url(), &[]), // StartTLS is the default for ldap://
        host(&slapd, &slapd.ldaps_url(), &[]),
    ] {
        assert_eq!(auth(&h, "bob", "bob's secret"), Ok(true));
        // {login} = mail also finds the entry (dave's mail differs from his uid).
        assert_eq!(auth(&h, "dave.null", "dave pw"), Ok(true));
        assert_eq!(auth(&h, "bob", "wrong"), Ok(false));
        assert_eq!(
            auth(&h, "bob", ""),
            Ok(false),
            "empty password = anonymous bind"
        );
        assert_eq!(auth(&h, "nobody", "bob's secret"), Ok(false));
        // Pooled connections are reused across calls and users.
        assert_eq!(auth(&h, "carol", "carol pw"), Ok(true));
        assert_eq!(auth(&h, "bob", "bob's secret"), Ok(true));
    }
}

#[test]
fn injection_in_the_username_matches_nobody() {
    let slapd = Slapd::start();
    let h = host(&slapd, &slapd.url(), &[]);
    for evil in [
        "*)(uid=*",
        "*",
        "bob)(|(uid=*",
        "b*",
        "bob\\",
        "*)(objectClass=*",
    ] {
        assert_eq!(auth(&h, evil, "bob's secret"), Ok(false), "{evil}");
        assert_eq!(h.run(|| Ldap::lookup(&who(evil))), Ok(None), "{evil}");
    }
    // A GAL query is escaped too: `*` is a literal star, not a wildcard.
    let found = h.run(|| Ldap::search("example.com", "*", 100)).unwrap();
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn lookup_maps_attributes_including_member_of() {
    let slapd = Slapd::start();
    let h = host(
        &slapd,
        &slapd.ldaps_url(),
        &[("attributes", "cn,memberOf=groups,sn=surname")],
    );
    let bob = h.run(|| Ldap::lookup(&who("bob"))).unwrap().expect("bob");
    assert_eq!(bob.login, "bob@example.com");
    assert_eq!(bob.display_name, "Bob the Builder");
    assert_eq!(bob.email, "bob@example.com");
    assert_eq!(bob.phone, "+1 555 0100");
    let attr = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = bob
            .attributes
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.to_lowercase())
            .collect();
        v.sort();
        v
    };
    assert_eq!(attr("cn"), ["bob builder"]);
    assert_eq!(attr("surname"), ["builder"]);
    assert_eq!(
        attr("groups"),
        [
            format!("cn=admins,ou=groups,{BASE_DN}"),
            format!("cn=staff,ou=groups,{BASE_DN}")
        ]
    );
    assert_eq!(attr("dn"), [format!("uid=bob,{PEOPLE_DN}")]);
    // Display name falls back to cn when there is no displayName.
    let gal = h
        .run(|| Ldap::lookup(&who("gal07")))
        .unwrap()
        .expect("gal07");
    assert_eq!(gal.display_name, "Gal Person 07");
    assert_eq!(gal.phone, "");
    assert_eq!(h.run(|| Ldap::lookup(&who("nobody"))), Ok(None));
}

#[test]
fn gal_search_pages_past_the_page_size() {
    let slapd = Slapd::start();
    // Page size 5 over 26 people: six pages.
    let h = host(&slapd, &slapd.url(), &[("page_size", "5")]);
    let all = h.run(|| Ldap::search("example.com", "", 1000)).unwrap();
    assert_eq!(all.len(), GAL_PEOPLE + slapd::PEOPLE.len());
    let mut logins: Vec<&str> = all.iter().map(|p| p.login.as_str()).collect();
    logins.sort();
    logins.dedup();
    assert_eq!(logins.len(), all.len(), "no entry twice across pages");
    assert!(logins.contains(&"gal23@example.com"));

    // A query narrows; max and size_limit cut (and the paged search is ended early).
    let gal = h.run(|| Ldap::search("example.com", "gal", 1000)).unwrap();
    assert_eq!(gal.len(), GAL_PEOPLE);
    let some = h.run(|| Ldap::search("example.com", "gal", 7)).unwrap();
    assert_eq!(some.len(), 7);
    let h = host(
        &slapd,
        &slapd.url(),
        &[("page_size", "5"), ("size_limit", "12")],
    );
    assert_eq!(
        h.run(|| Ldap::search("example.com", "", 1000))
            .unwrap()
            .len(),
        12
    );
    // The connection is still good after an early end.
    let carol = h.run(|| Ldap::search("example.com", "Carol", 10)).unwrap();
    assert_eq!(carol.len(), 1);
    assert_eq!(carol[0].login, "carol@example.com");
    assert_eq!(carol[0].display_name, "Carol Singer");
}

#[test]
fn unreachable_server_is_a_clear_unavailable_error() {
    let slapd = Slapd::start();
    // A port nobody listens on (bound and released here).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = host(&slapd, &format!("ldap://127.0.0.1:{port}"), &[]);
    match auth(&h, "bob", "bob's secret") {
        Err(Error::Unavailable(m)) => {
            assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}");
            assert!(m.contains("unreachable"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // A certificate nobody vouches for is refused (system roots only), over ldaps and over
    // StartTLS alike — which also shows that ldap:// really upgraded before binding.
    for url in [slapd.ldaps_url(), slapd.url()] {
        let h = host(&slapd, &url, &[("ca_file", "")]);
        match auth(&h, "bob", "bob's secret") {
            Err(Error::Unavailable(m)) => {
                let port = url.rsplit(':').next().unwrap();
                assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    // Plain ldap:// without StartTLS works when the admin says so explicitly.
    let h = host(
        &slapd,
        &slapd.url(),
        &[("starttls", "false"), ("ca_file", "")],
    );
    assert_eq!(auth(&h, "bob", "bob's secret"), Ok(true));
}

#[test]
fn a_server_that_never_answers_times_out() {
    let slapd = Slapd::start();
    // Accepts connections (the kernel's backlog) but never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let h = host(
        &slapd,
        &format!("ldap://127.0.0.1:{port}"),
        &[("timeout_ms", "300")],
    );
    match auth(&h, "bob", "bob's secret") {
        Err(Error::Unavailable(m)) => {
            assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}");
            assert!(m.contains("no answer within 300 ms"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    drop(silent);
}

#[test]
fn bad_settings_name_the_setting() {
    let slapd = Slapd::start();
    let h = host(
        &slapd,
        &slapd.url(),
        &[("user_filter", "(&(uid={user})(objectClass=person)")],
    );
    match auth(&h, "bob", "bob's secret") {
        Err(Error::Invalid(m)) => {
            assert!(m.contains("setting user_filter"), "{m}");
            assert!(m.contains("not a valid LDAP filter"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let h = host(&slapd, &slapd.url(), &[("gal_filter", "(mail=*")]);
    match h.run(|| Ldap::search("example.com", "", 10)) {
        Err(Error::Invalid(m)) => assert!(m.contains("setting gal_filter"), "{m}"),
        other => panic!("{other:?}"),
    }
    let h = host(&slapd, &slapd.url(), &[("bind_password", "not it")]);
    match auth(&h, "bob", "bob's secret") {
        Err(Error::Invalid(m)) => {
            assert!(m.contains("setting bind_password"), "{m}");
            assert!(m.contains(SERVICE_DN), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let h = host(&slapd, "http://127.0.0.1", &[]);
    match auth(&h, "bob", "x") {
        Err(Error::Invalid(m)) => assert!(m.contains("setting url"), "{m}"),
        other => panic!("{other:?}"),
    }
}
