//! The credential chain wired to real storage: HTTP Basic and SIP Digest against local users,
//! with the HA1 values the storage layer precomputes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use md5::{Digest, Md5};
use switchboard_auth::throttle::{Throttle, ThrottleConfig};
use switchboard_auth::{
    AuditSink, AuthEvent, AuthFailureKind, Authenticator, CredentialSource, NonceManager,
};
use switchboard_core::credentials::LocalUsers;
use switchboard_storage::Storage;

#[derive(Default)]
struct Recorder(Mutex<Vec<AuthEvent>>);
impl AuditSink for Recorder {
    fn record(&self, e: AuthEvent) {
        self.0.lock().unwrap().push(e);
    }
}

fn hex_md5(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

async fn setup() -> (tempfile::TempDir, Authenticator, Arc<Recorder>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let storage = Storage::connect(&url, 2).await.unwrap();
    storage.migrate().await.unwrap();
    storage.add_domain("example.com").await.unwrap();
    storage
        .add_user("alice@example.com", "wonderland", None)
        .await
        .unwrap();
    storage
        .add_user("carol@example.com", "pw", None)
        .await
        .unwrap();
    storage
        .set_disabled("carol@example.com", true)
        .await
        .unwrap();
    let throttle = Throttle::new(ThrottleConfig {
        max_failures_per_user: 3,
        max_failures_per_address: 100,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(60),
        max_tracked: 1000,
    });
    let nonces = NonceManager::new([7u8; 32], Duration::from_secs(300));
    let rec = Arc::new(Recorder::default());
    let sources: Vec<Arc<dyn CredentialSource>> = vec![Arc::new(LocalUsers::new(storage))];
    (
        dir,
        Authenticator::new(sources, throttle, nonces, rec.clone()),
        rec,
    )
}

fn digest_header(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    nc: &str,
) -> String {
    let ha1 = hex_md5(&format!("{user}:{realm}:{password}"));
    let ha2 = hex_md5(&format!("{method}:{uri}"));
    let cnonce = "0a4f113b";
    let response = hex_md5(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5, \
         response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    )
}

const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn check(
    auth: &Authenticator,
    header: &str,
    method: &str,
) -> Result<switchboard_auth::Identity, switchboard_auth::AuthFailure> {
    auth.digest(
        Some(header),
        method,
        "example.com",
        IP,
        "sip",
        Instant::now(),
        SystemTime::now(),
    )
    .await
}

#[tokio::test]
async fn sip_digest_against_stored_ha1() {
    let (_dir, auth, rec) = setup().await;
    let nonce = auth.nonces().issue(SystemTime::now());
    let uri = "sip:example.com";
    for username in ["alice", "alice@example.com"] {
        let h = digest_header(
            username,
            "example.com",
            "wonderland",
            &nonce,
            "REGISTER",
            uri,
            if username == "alice" {
                "00000001"
            } else {
                "00000002"
            },
        );
        let id = check(&auth, &h, "REGISTER")
            .await
            .unwrap_or_else(|f| panic!("{username}: {f:?}"));
        assert_eq!(id.address, "alice@example.com");
    }
    // Replaying the same nonce count is refused.
    let h = digest_header(
        "alice",
        "example.com",
        "wonderland",
        &nonce,
        "REGISTER",
        uri,
        "00000002",
    );
    assert!(check(&auth, &h, "REGISTER").await.is_err());
    // Wrong password.
    let h = digest_header(
        "alice",
        "example.com",
        "nope",
        &nonce,
        "REGISTER",
        uri,
        "00000009",
    );
    let f = check(&auth, &h, "REGISTER").await.unwrap_err();
    assert!(matches!(f.kind, AuthFailureKind::BadCredentials), "{f:?}");
    // Disabled user with the right password.
    let h = digest_header(
        "carol",
        "example.com",
        "pw",
        &nonce,
        "MESSAGE",
        uri,
        "00000001",
    );
    let f = check(&auth, &h, "MESSAGE").await.unwrap_err();
    assert!(matches!(f.kind, AuthFailureKind::Disabled), "{f:?}");
    // An expired nonce is stale: the challenge tells the client to retry with a fresh one.
    let old = auth
        .nonces()
        .issue(SystemTime::now() - Duration::from_secs(3600));
    let h = digest_header(
        "alice",
        "example.com",
        "wonderland",
        &old,
        "REGISTER",
        uri,
        "00000001",
    );
    let f = check(&auth, &h, "REGISTER").await.unwrap_err();
    assert!(matches!(f.kind, AuthFailureKind::Stale), "{f:?}");
    let challenge = auth.digest_challenge_for("example.com", &f, SystemTime::now());
    assert!(
        challenge.contains("stale=true") && challenge.contains("qop=\"auth\""),
        "{challenge}"
    );
    // Wrong password and disabled account are audited; stale nonces are routine and are not.
    let outcomes: Vec<_> = rec
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.outcome.as_str(), e.login.clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("failure", "alice".to_string()),
            ("disabled", "carol".to_string())
        ]
    );
}

#[tokio::test]
async fn basic_against_stored_argon2_hash() {
    let (_dir, auth, _rec) = setup().await;
    use base64::Engine;
    let header = |u: &str, p: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };
    let id = auth
        .basic(
            Some(&header("alice@example.com", "wonderland")),
            IP,
            "eas",
            Instant::now(),
        )
        .await
        .unwrap();
    assert_eq!(id.address, "alice@example.com");
    let f = auth
        .basic(
            Some(&header("nobody@example.com", "x")),
            IP,
            "eas",
            Instant::now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(f.kind, AuthFailureKind::BadCredentials), "{f:?}");
    let f = auth
        .basic(None, IP, "eas", Instant::now())
        .await
        .unwrap_err();
    assert!(
        matches!(f.kind, AuthFailureKind::MissingCredentials),
        "{f:?}"
    );
}
