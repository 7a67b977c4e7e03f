//! LDAP users through the real server: with configuration alone (`[plugins.ldap]` serving
//! example.com, no `user add`), a directory user logs in over HTTPS Basic, syncs with
//! ActiveSync (the embedded `builtin:eas` over the local store), and from then on passes SIP
//! Digest with the HA1 that login stored. Against a throwaway slapd.

mod support;

#[path = "../../plugins/ldap/tests/support/slapd.rs"]
mod slapd;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Instant, SystemTime};

use md5::{Digest, Md5};
use slapd::{Slapd, BASE_DN, SERVICE_DN, SERVICE_PASSWORD};
use support::*;
use switchboard_auth::{AuthFailure, AuthFailureKind, Identity};
use switchboard_wbxml::tags::folderhierarchy as fh;
use switchboard_wbxml::{decode, element, Element};
use tokio::net::TcpStream;

const BOB: &str = "bob@example.com";
const BOB_PASSWORD: &str = "bob's secret";
const PATH: &str = "/autodiscover/autodiscover.xml";

/// The `[plugins.ldap]` config for `slapd`: the built-in connector (`builtin:ldap`), StartTLS,
/// the service password by `file:` reference.
fn ldap_config(slapd: &Slapd, dir: &std::path::Path) -> String {
    let pw = dir.join("ldap-service-password");
    std::fs::write(&pw, format!("{SERVICE_PASSWORD}\n")).unwrap();
    format!(
        "[plugins.ldap]\nmanifest = \"builtin:ldap\"\ndomains = [\"example.com\"]\n\
         [plugins.ldap.settings]\nurl = {:?}\nbase_dn = {BASE_DN:?}\nbind_dn = {SERVICE_DN:?}\n\
         bind_password = {:?}\nca_file = {:?}\n",
        slapd.url(),
        format!("file:{}", pw.display()),
        slapd.ca_file().display().to_string(),
    )
}

fn hex_md5(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

fn digest_header(user: &str, password: &str, nonce: &str, nc: &str) -> String {
    let (realm, method, uri, cnonce) = ("example.com", "REGISTER", "sip:example.com", "c0ffee");
    let ha1 = hex_md5(&format!("{user}:{realm}:{password}"));
    let ha2 = hex_md5(&format!("{method}:{uri}"));
    let response = hex_md5(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm=MD5, response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    )
}

async fn sip_digest(
    t: &TestServer,
    user: &str,
    password: &str,
    nc: &str,
) -> Result<Identity, AuthFailure> {
    let auth = &t.server().shared.auth;
    let nonce = auth.nonces().issue(SystemTime::now());
    auth.digest(
        Some(&digest_header(user, password, &nonce, nc)),
        "REGISTER",
        "example.com",
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "sip",
        Instant::now(),
        SystemTime::now(),
    )
    .await
}

async fn autodiscover(t: &TestServer, login: &str, password: &str, email: &str) -> Response {
    let body = AUTODISCOVER_REQUEST.replace("alice@example.com", email);
    t.https()
        .await
        .request(
            "POST",
            PATH,
            &[("Authorization", &basic(login, password))],
            body.as_bytes(),
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_user_logs_in_over_https_then_passes_sip_digest() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start(&ldap_config(&slapd, dir.path())).await;

    // Before any HTTPS login there is no HA1: SIP Digest cannot work yet.
    let before = sip_digest(&t, "bob", BOB_PASSWORD, "00000001").await;
    assert_eq!(
        before.unwrap_err().kind,
        AuthFailureKind::BadCredentials,
        "no HA1 before the first login"
    );

    // Wrong directory password, unknown user, a domain no directory serves: 401.
    for (login, pw) in [
        (BOB, "wrong"),
        ("nobody@example.com", BOB_PASSWORD),
        ("*)(uid=*@example.com", BOB_PASSWORD),
        ("bob@other.example", BOB_PASSWORD),
    ] {
        let r = autodiscover(&t, login, pw, BOB).await;
        assert_eq!(r.status, 401, "{login}: {}", r.text());
    }
    // The local user of the same domain still logs in (local users are asked first).
    assert_eq!(autodiscover(&t, USER, PASSWORD, USER).await.status, 200);

    // The directory user logs in with the directory password.
    let r = autodiscover(&t, BOB, BOB_PASSWORD, BOB).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains("<DisplayName>Bob the Builder</DisplayName>"),
        "{}",
        r.text()
    );

    // Now SIP Digest works, with either username form (MD5 here; SHA-256 is stored too).
    for (user, nc) in [("bob", "00000001"), (BOB, "00000002")] {
        let id = sip_digest(&t, user, BOB_PASSWORD, nc)
            .await
            .unwrap_or_else(|f| panic!("{user}: {f:?}"));
        assert_eq!(id.address, BOB);
    }
    let storage = &t.server().shared.storage;
    for alg in switchboard_storage::HashAlgorithm::ALL {
        assert!(storage
            .sip_ha1(BOB, "example.com", alg)
            .await
            .unwrap()
            .is_some());
    }
    assert!(sip_digest(&t, "bob", "wrong", "00000001").await.is_err());

    // The directory user shows up locally, and can be disabled locally.
    let u = storage
        .user(BOB)
        .await
        .unwrap()
        .expect("directory user row");
    assert_eq!(u.display_name.as_deref(), Some("Bob the Builder"));

    // The chain asks the current plugin set: after a reload without the directory, its
    // logins stop (spelled `BOB@…` so the 60 s cache of verified logins cannot answer).
    t.write_config("");
    t.server().shared.reload().await.unwrap();
    let r = autodiscover(&t, "BOB@example.com", BOB_PASSWORD, BOB).await;
    assert_eq!(r.status, 401, "{}", r.text());

    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_password_change_retires_the_old_sip_password() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start(&ldap_config(&slapd, dir.path())).await;
    assert_eq!(autodiscover(&t, BOB, BOB_PASSWORD, BOB).await.status, 200);
    assert!(sip_digest(&t, "bob", BOB_PASSWORD, "00000001")
        .await
        .is_ok());

    // The password changes in the directory. Until the next HTTPS login the old HA1 stays…
    slapd.set_password("bob", "new secret");
    assert!(sip_digest(&t, "bob", BOB_PASSWORD, "00000001")
        .await
        .is_ok());
    // …a stranger's wrong password does not remove it…
    assert_eq!(autodiscover(&t, BOB, "guess", BOB).await.status, 401);
    assert!(sip_digest(&t, "bob", BOB_PASSWORD, "00000001")
        .await
        .is_ok());
    // …but the old password refused by the directory does. (Spelled `Bob@…`: the chain
    // remembers verified login/password pairs for 60 s, which is documented, and would answer
    // for `bob@…` without asking the directory.)
    assert_eq!(
        autodiscover(&t, "Bob@example.com", BOB_PASSWORD, BOB)
            .await
            .status,
        401
    );
    assert!(sip_digest(&t, "bob", BOB_PASSWORD, "00000001")
        .await
        .is_err());
    // The new password over HTTPS brings SIP back, with the new password.
    assert_eq!(autodiscover(&t, BOB, "new secret", BOB).await.status, 200);
    assert!(sip_digest(&t, "bob", "new secret", "00000001")
        .await
        .is_ok());

    // Disabled locally: refused even with the right directory password (a new one, so the
    // chain's 60 s cache of verified passwords cannot answer instead).
    t.server()
        .shared
        .storage
        .set_disabled(BOB, true)
        .await
        .unwrap();
    slapd.set_password("bob", "third secret");
    assert_eq!(autodiscover(&t, BOB, "third secret", BOB).await.status, 401);
    t.shutdown().await;
}

/// One ActiveSync command as `login`, over the plain-HTTP test listener.
async fn eas(t: &TestServer, login: &str, password: &str, cmd: &str, doc: &Element) -> Response {
    let mut c = Conn::new(TcpStream::connect(t.http_addr()).await.unwrap());
    let path = format!(
        "/Microsoft-Server-ActiveSync?Cmd={cmd}&User={login}&DeviceId=LDAP1&DeviceType=Phone"
    );
    let auth = basic(login, password);
    let headers = [
        ("Authorization", auth.as_str()),
        ("MS-ASProtocolVersion", "14.1"),
        ("Content-Type", "application/vnd.ms-sync.wbxml"),
    ];
    c.request("POST", &path, &headers, &doc.to_wbxml().unwrap())
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_user_syncs_activesync_with_the_directory_password() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    // The README's defaults plus the directory: only configuration, no `user add`.
    let config = format!(
        "{}[frontends.eas]\nenabled = true\n[plugins.eas]\nmanifest = \"builtin:eas\"\n\
         settings = {{ require_provisioning = false }}\n",
        ldap_config(&slapd, dir.path())
    );
    let t = TestServer::start(&config).await;
    let folder_sync = element!(fh::FolderSync[element!(fh::SyncKey = "0")]);

    let r = eas(&t, BOB, "wrong", "FolderSync", &folder_sync).await;
    assert_eq!(r.status, 401, "{}", r.text());

    let r = eas(&t, BOB, BOB_PASSWORD, "FolderSync", &folder_sync).await;
    assert_eq!(r.status, 200, "{:?} {}", r.headers, r.text());
    let d = decode(&r.body).unwrap();
    assert_eq!(d.child_text("Status"), Some("1"), "{d}");
    let names: Vec<_> = d
        .child("Changes")
        .expect("Changes")
        .children_named("Add")
        .filter_map(|f| f.child_text("DisplayName").map(str::to_string))
        .collect();
    for standard in ["Inbox", "Sent Items", "Calendar", "Contacts"] {
        assert!(
            names.iter().any(|n| n == standard),
            "{standard} in {names:?}"
        );
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_directory_is_unavailable_not_bad_credentials() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let config = ldap_config(&slapd, dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config.replace(&slapd.url(), &format!("ldap://127.0.0.1:{port}"));
    let t = TestServer::start(&config).await;
    let r = autodiscover(&t, BOB, BOB_PASSWORD, BOB).await;
    // Not the user's fault: 503, not a password prompt.
    assert_eq!(r.status, 503, "{}", r.text());
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_logins_are_throttled_and_audited() {
    const CAROL: &str = "carol@example.com";
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start(&ldap_config(&slapd, dir.path())).await;
    // auth.throttle.max_failures_per_user = 5 (default): five wrong directory passwords…
    for _ in 0..5 {
        assert_eq!(autodiscover(&t, CAROL, "wrong", CAROL).await.status, 401);
    }
    // …then even the right one is refused before the directory is asked.
    assert_eq!(autodiscover(&t, CAROL, "carol pw", CAROL).await.status, 429);
    // Every failure is in the audit log (written by a background task: wait for it).
    let storage = &t.server().shared.storage;
    let mut failures = 0;
    for _ in 0..200 {
        failures = storage
            .recent_audit(100)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.actor.as_deref() == Some(CAROL) && r.action == "auth.failure")
            .count();
        if failures >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(failures, 5);
    t.shutdown().await;
}
