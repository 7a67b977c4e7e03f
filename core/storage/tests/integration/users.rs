//! Users and password checks.

use anyhow::Result;
use switchboard_storage::{PasswordCheck, StorageError};

use crate::support::{Kind, TestDb};

pub async fn user_crud(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.add_domain("example.com").await?;
    db.add_domain("other.org").await?;
    assert_eq!(db.count_users().await?, 0);

    let bob = db
        .add_user("Bob@Example.COM", "hunter2", Some("Bob B."))
        .await?;
    assert_eq!(bob.address, "bob@example.com");
    assert_eq!(bob.domain, "example.com");
    assert_eq!(bob.display_name.as_deref(), Some("Bob B."));
    assert!(!bob.disabled);
    let alice = db.add_user("alice@example.com", "pw", None).await?;
    assert_eq!(alice.display_name, None);
    // An empty display name counts as none.
    let carol = db.add_user("carol@other.org", "pw", Some("")).await?;
    assert_eq!(carol.display_name, None);
    assert_eq!(db.count_users().await?, 3);

    // Lookups are case-insensitive and return what add_user returned.
    assert_eq!(db.user("BOB@example.com").await?, Some(bob.clone()));
    assert_eq!(db.user("nobody@example.com").await?, None);
    assert_eq!(db.user("not an address").await?, None);

    let all: Vec<String> = db
        .list_users(None)
        .await?
        .into_iter()
        .map(|u| u.address)
        .collect();
    assert_eq!(
        all,
        ["alice@example.com", "bob@example.com", "carol@other.org"]
    );
    let in_example = db.list_users(Some("Example.com")).await?;
    assert_eq!(in_example, vec![alice.clone(), bob.clone()]);
    assert_eq!(db.list_users(Some("other.org")).await?, vec![carol.clone()]);

    db.set_disabled("bob@example.com", true).await?;
    let disabled = db.user("bob@example.com").await?.expect("bob exists");
    assert!(disabled.disabled);
    assert_eq!(disabled.created_at, bob.created_at);
    db.set_disabled("bob@example.com", false).await?;
    assert!(
        !db.user("bob@example.com")
            .await?
            .expect("bob exists")
            .disabled
    );

    db.set_password("bob@example.com", "new password").await?;
    assert!(matches!(
        db.verify_password("bob@example.com", "new password")
            .await?,
        PasswordCheck::Valid(_)
    ));

    assert!(db.remove_user("Carol@other.org").await?);
    assert!(!db.remove_user("carol@other.org").await?);
    assert_eq!(db.user("carol@other.org").await?, None);
    assert_eq!(db.count_users().await?, 2);
    assert!(db.list_users(Some("other.org")).await?.is_empty());
    Ok(())
}

pub async fn user_errors(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.add_domain("example.com").await?;
    db.add_user("bob@example.com", "pw", None).await?;

    let err = db
        .add_user("bob@x.org", "pw", None)
        .await
        .expect_err("unknown domain");
    assert!(
        matches!(err, StorageError::DomainNotFound { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "domain \"x.org\" does not exist; add it first with \"switchboard domain add x.org\""
    );

    let err = db
        .add_user("BOB@example.com", "other", None)
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StorageError::UserExists { .. }), "{err:?}");
    assert_eq!(err.to_string(), "user \"bob@example.com\" already exists");

    for (bad, reason) in [
        ("bob", "it has no \"@\""),
        ("bob@@example.com", "it has more than one \"@\""),
        ("@example.com", "the part before \"@\" is empty"),
        ("bo b@example.com", "the part before \"@\" contains ' '; only letters, digits and . _ - + are allowed"),
        ("bob@exa_mple.com", "the domain part is invalid: it contains '_'; only letters, digits, hyphens and dots are allowed"),
        ("bob@", "the domain part is invalid: it is empty"),
    ] {
        let err = db.add_user(bad, "pw", None).await.expect_err("bad address accepted");
        assert!(matches!(err, StorageError::InvalidAddress { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("invalid user address {bad:?}: {reason} (expected \"local@domain\")")
        );
    }

    let err = db
        .add_user("eve@example.com", "", None)
        .await
        .expect_err("empty password");
    assert!(matches!(err, StorageError::EmptyPassword { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the password for \"eve@example.com\" must not be empty"
    );
    assert_eq!(db.user("eve@example.com").await?, None);

    let err = db
        .add_user("eve@example.com", "pw", Some("line\nbreak"))
        .await
        .expect_err("control character in display name");
    assert!(
        matches!(
            err,
            StorageError::InvalidInput {
                field: "display name",
                ..
            }
        ),
        "{err:?}"
    );

    let err = db
        .set_password("bob@example.com", "")
        .await
        .expect_err("empty password");
    assert!(matches!(err, StorageError::EmptyPassword { .. }), "{err:?}");
    let err = db
        .set_password("nobody@example.com", "pw")
        .await
        .expect_err("unknown user");
    assert!(matches!(err, StorageError::UserNotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "user \"nobody@example.com\" does not exist"
    );
    let err = db
        .set_disabled("nobody@example.com", true)
        .await
        .expect_err("unknown user");
    assert!(matches!(err, StorageError::UserNotFound { .. }), "{err:?}");
    let err = db
        .list_users(Some("x.org"))
        .await
        .expect_err("unknown domain");
    assert!(
        matches!(err, StorageError::DomainNotFound { .. }),
        "{err:?}"
    );
    let err = db.list_users(Some("x..org")).await.expect_err("bad domain");
    assert!(matches!(err, StorageError::InvalidDomain { .. }), "{err:?}");

    // The failed attempts left nothing behind.
    assert_eq!(db.count_users().await?, 1);
    Ok(())
}

pub async fn user_serialization_has_no_hash(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.add_domain("example.com").await?;
    let bob = db
        .add_user("bob@example.com", "hunter2", Some("Bob"))
        .await?;
    let json = serde_json::to_value(&bob)?;
    let mut keys: Vec<&str> = json
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "address",
            "created_at",
            "disabled",
            "display_name",
            "domain",
            "id"
        ]
    );
    let text = json.to_string();
    assert!(!text.contains("argon2"), "{text}");
    assert!(!format!("{bob:?}").contains("argon2"));
    Ok(())
}

pub async fn verify_password_outcomes(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.add_domain("example.com").await?;
    let bob = db
        .add_user("bob@example.com", "correct horse", None)
        .await?;

    match db
        .verify_password("bob@example.com", "correct horse")
        .await?
    {
        PasswordCheck::Valid(user) => assert_eq!(user, bob),
        other => panic!("expected Valid, got {other:?}"),
    }
    assert!(matches!(
        db.verify_password("BOB@EXAMPLE.COM", "correct horse")
            .await?,
        PasswordCheck::Valid(_)
    ));
    assert_eq!(
        db.verify_password("bob@example.com", "Correct horse")
            .await?,
        PasswordCheck::WrongPassword
    );
    assert_eq!(
        db.verify_password("bob@example.com", "").await?,
        PasswordCheck::WrongPassword
    );
    assert_eq!(
        db.verify_password("nobody@example.com", "correct horse")
            .await?,
        PasswordCheck::UnknownUser
    );
    assert_eq!(
        db.verify_password("bob@nowhere.org", "correct horse")
            .await?,
        PasswordCheck::UnknownUser
    );
    assert_eq!(
        db.verify_password("garbage", "x").await?,
        PasswordCheck::UnknownUser
    );

    db.set_disabled("bob@example.com", true).await?;
    assert_eq!(
        db.verify_password("bob@example.com", "correct horse")
            .await?,
        PasswordCheck::Disabled
    );
    // A wrong password does not reveal that the account is disabled.
    assert_eq!(
        db.verify_password("bob@example.com", "guess").await?,
        PasswordCheck::WrongPassword
    );
    db.set_disabled("bob@example.com", false).await?;

    db.set_password("bob@example.com", "battery staple").await?;
    assert_eq!(
        db.verify_password("bob@example.com", "correct horse")
            .await?,
        PasswordCheck::WrongPassword
    );
    assert!(matches!(
        db.verify_password("bob@example.com", "battery staple")
            .await?,
        PasswordCheck::Valid(_)
    ));

    // The stored hash is argon2id with the crate's default parameters and a per-user salt.
    use switchboard_storage::entity::user;
    use switchboard_storage::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    db.add_user("alice@example.com", "battery staple", None)
        .await?;
    let hashes: Vec<String> = user::Entity::find()
        .filter(user::Column::Address.is_in(["bob@example.com", "alice@example.com"]))
        .all(db.connection())
        .await?
        .into_iter()
        .map(|u| u.password_hash)
        .collect();
    assert_eq!(hashes.len(), 2);
    for h in &hashes {
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }
    assert_ne!(
        hashes[0], hashes[1],
        "same password, same hash: salt not random"
    );
    Ok(())
}
