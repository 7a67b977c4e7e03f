//! SIP digest credentials.

use anyhow::Result;
use switchboard_storage::{digest_ha1, HashAlgorithm, SipHa1, StorageError};

use crate::support::{Kind, TestDb};

use HashAlgorithm::{Md5, Sha256};

pub async fn sip_credentials_of_new_user(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.add_domain("example.com").await?;
    db.add_user("Bob@example.com", "hunter2", None).await?;

    for username in ["bob", "bob@example.com"] {
        for algorithm in HashAlgorithm::ALL {
            let found = db.sip_ha1(username, "example.com", algorithm).await?;
            assert_eq!(
                found,
                Some(SipHa1 {
                    address: "bob@example.com".to_owned(),
                    ha1: digest_ha1(algorithm, username, "example.com", "hunter2"),
                    disabled: false,
                }),
                "{username} {algorithm}"
            );
        }
    }
    // MD5 and SHA-256 really differ in length.
    let md5 = db.sip_ha1("bob", "example.com", Md5).await?.expect("md5");
    let sha = db
        .sip_ha1("bob", "example.com", Sha256)
        .await?
        .expect("sha");
    assert_eq!(md5.ha1.len(), 32);
    assert_eq!(sha.ha1.len(), 64);
    assert!(md5
        .ha1
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));

    // Usernames match case-insensitively, realms exactly.
    assert!(db.sip_ha1("BOB", "example.com", Md5).await?.is_some());
    assert!(db.sip_ha1("bob", "Example.com", Md5).await?.is_none());
    assert!(db.sip_ha1("bob", "other.org", Md5).await?.is_none());
    assert!(db.sip_ha1("alice", "example.com", Md5).await?.is_none());
    assert!(db.sip_ha1("", "example.com", Md5).await?.is_none());
    assert!(db.sip_ha1("bob\0", "example.com", Md5).await?.is_none());
    assert_eq!(db.sip_realms("bob@example.com").await?, ["example.com"]);

    db.set_disabled("bob@example.com", true).await?;
    assert!(
        db.sip_ha1("bob", "example.com", Md5)
            .await?
            .expect("still there")
            .disabled
    );

    // Removing the user removes the credentials.
    assert!(db.remove_user("bob@example.com").await?);
    assert!(db.sip_ha1("bob", "example.com", Md5).await?.is_none());
    assert!(db
        .sip_ha1("bob@example.com", "example.com", Sha256)
        .await?
        .is_none());
    Ok(())
}

pub async fn sip_known_answer(kind: Kind) -> Result<()> {
    // RFC 2617 §3.5.
    assert_eq!(
        digest_ha1(Md5, "Mufasa", "testrealm@host.com", "Circle Of Life"),
        "939e7578ed9e3c518a452acee763bce9"
    );

    // The same through the database. Addresses are lowercase, so the stored username is
    // "mufasa"; the expected values were computed independently with Python's hashlib.
    let db = TestDb::new(kind).await?;
    db.add_domain("host.com").await?;
    db.add_user("Mufasa@host.com", "Circle Of Life", None)
        .await?;
    db.set_sip_password_for_realm("mufasa@host.com", "testrealm@host.com", "Circle Of Life")
        .await?;
    let ha1 = |username: &'static str, algorithm| {
        let db = &db;
        async move {
            db.sip_ha1(username, "testrealm@host.com", algorithm)
                .await
                .map(|found| found.map(|f| f.ha1))
        }
    };
    assert_eq!(
        ha1("Mufasa", Md5).await?.as_deref(),
        Some("0e1fb08424a409737859c06e495ebf00")
    );
    assert_eq!(
        ha1("mufasa", Sha256).await?.as_deref(),
        Some("66490663cbb52a109762f2cddc4396fdcaf760b4bfcf8e972135bf8bd401b91d")
    );
    assert_eq!(
        ha1("mufasa@host.com", Md5).await?.as_deref(),
        Some("cd88903657d2f5d768ac6203d28f2146")
    );
    assert_eq!(
        ha1("mufasa@host.com", Sha256).await?.as_deref(),
        Some("9001953d4145303a91b85e74de8dab4cb73878fad034ecfa1ffcb00b6f85f47d")
    );
    Ok(())
}

pub async fn sip_extra_realms_and_password_change(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.add_domain("example.com").await?;
    db.add_user("bob@example.com", "one", None).await?;
    db.set_sip_password_for_realm("bob@example.com", "Example PBX", "two")
        .await?;

    let ha1 = |realm: &'static str, username: &'static str| {
        let db = &db;
        async move {
            db.sip_ha1(username, realm, Md5)
                .await
                .map(|found| found.map(|f| f.ha1))
        }
    };
    assert_eq!(
        ha1("Example PBX", "bob").await?,
        Some(digest_ha1(Md5, "bob", "Example PBX", "two"))
    );
    assert_eq!(
        ha1("Example PBX", "bob@example.com").await?,
        Some(digest_ha1(Md5, "bob@example.com", "Example PBX", "two"))
    );
    assert_eq!(
        ha1("example pbx", "bob").await?,
        None,
        "realms are case-sensitive"
    );
    assert_eq!(
        ha1("example.com", "bob").await?,
        Some(digest_ha1(Md5, "bob", "example.com", "one"))
    );
    assert_eq!(
        db.sip_realms("bob@example.com").await?,
        ["Example PBX", "example.com"]
    );

    // A new password replaces the credentials of every realm.
    db.set_password("bob@example.com", "three").await?;
    for realm in ["example.com", "Example PBX"] {
        for username in ["bob", "bob@example.com"] {
            for algorithm in HashAlgorithm::ALL {
                let found = db.sip_ha1(username, realm, algorithm).await?.map(|f| f.ha1);
                assert_eq!(found, Some(digest_ha1(algorithm, username, realm, "three")));
            }
        }
    }

    // Setting it again overwrites.
    db.set_sip_password_for_realm("bob@example.com", "Example PBX", "four")
        .await?;
    assert_eq!(
        ha1("Example PBX", "bob").await?,
        Some(digest_ha1(Md5, "bob", "Example PBX", "four"))
    );

    let err = db
        .set_sip_password_for_realm("nobody@example.com", "r", "pw")
        .await
        .expect_err("unknown user");
    assert!(matches!(err, StorageError::UserNotFound { .. }), "{err:?}");
    let err = db
        .set_sip_password_for_realm("bob@example.com", "r", "")
        .await
        .expect_err("empty password");
    assert!(matches!(err, StorageError::EmptyPassword { .. }), "{err:?}");
    let err = db
        .set_sip_password_for_realm("bob@example.com", "", "pw")
        .await
        .expect_err("empty realm");
    assert_eq!(
        err.to_string(),
        "invalid SIP realm \"\": it must not be empty"
    );
    let err = db
        .set_sip_password_for_realm("bob", "r", "pw")
        .await
        .expect_err("bad address");
    assert!(
        matches!(err, StorageError::InvalidAddress { .. }),
        "{err:?}"
    );
    let err = db
        .sip_realms("nobody@example.com")
        .await
        .expect_err("unknown user");
    assert!(matches!(err, StorageError::UserNotFound { .. }), "{err:?}");
    Ok(())
}

pub async fn sip_shared_realm_conflicts(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.add_domain("a.org").await?;
    db.add_domain("b.org").await?;
    db.add_user("alice@a.org", "pa", None).await?;
    db.add_user("alice@b.org", "pb", None).await?;

    // Two users with the same local part in one shared realm: the first keeps the short name,
    // the second is reachable by full address only.
    db.set_sip_password_for_realm("alice@a.org", "shared", "pa")
        .await?;
    db.set_sip_password_for_realm("alice@b.org", "shared", "pb")
        .await?;
    let short = db
        .sip_ha1("alice", "shared", Md5)
        .await?
        .expect("short name");
    assert_eq!(short.address, "alice@a.org");
    assert_eq!(short.ha1, digest_ha1(Md5, "alice", "shared", "pa"));
    let full = db
        .sip_ha1("alice@b.org", "shared", Sha256)
        .await?
        .expect("full name");
    assert_eq!(full.address, "alice@b.org");
    assert_eq!(full.ha1, digest_ha1(Sha256, "alice@b.org", "shared", "pb"));
    // Changing alice@b.org's password does not steal the short name either.
    db.set_password("alice@b.org", "pb2").await?;
    let short = db
        .sip_ha1("alice", "shared", Md5)
        .await?
        .expect("short name");
    assert_eq!(short.address, "alice@a.org");
    assert_eq!(short.ha1, digest_ha1(Md5, "alice", "shared", "pa"));

    // In a realm named like a domain, that domain's user wins.
    db.add_domain("c.org").await?;
    db.set_sip_password_for_realm("alice@a.org", "c.org", "pa")
        .await?;
    assert_eq!(
        db.sip_ha1("alice", "c.org", Md5)
            .await?
            .expect("a's")
            .address,
        "alice@a.org"
    );
    db.add_user("alice@c.org", "pc", None).await?;
    let own = db.sip_ha1("alice", "c.org", Md5).await?.expect("c's");
    assert_eq!(own.address, "alice@c.org");
    assert_eq!(own.ha1, digest_ha1(Md5, "alice", "c.org", "pc"));
    // ...and alice@a.org keeps her full-address credential there.
    let other = db
        .sip_ha1("alice@a.org", "c.org", Md5)
        .await?
        .expect("a's full");
    assert_eq!(other.address, "alice@a.org");
    Ok(())
}
