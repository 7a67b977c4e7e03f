//! Domains.

use anyhow::Result;
use switchboard_storage::StorageError;

use crate::support::{Kind, TestDb};

pub async fn domain_crud(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    assert!(db.list_domains().await?.is_empty());

    let before = chrono::Utc::now();
    let added = db.add_domain("Example.COM").await?;
    assert_eq!(added.name, "example.com");
    assert!(added.created_at >= before - chrono::TimeDelta::seconds(1));
    assert!(added.created_at <= chrono::Utc::now());
    db.add_domain("a-b.example.org").await?;
    db.add_domain("localhost").await?;

    let names: Vec<String> = db
        .list_domains()
        .await?
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["a-b.example.org", "example.com", "localhost"]);

    // Lookups are case-insensitive and return exactly what was stored.
    assert_eq!(db.domain("EXAMPLE.com").await?, Some(added.clone()));
    assert_eq!(db.domain("nope.org").await?, None);
    // Malformed names simply do not exist.
    assert_eq!(db.domain("bad..name").await?, None);
    assert_eq!(db.domain("[::1]").await?, None);

    // Removal: only empty domains, and reports whether anything was removed.
    db.add_user("bob@example.com", "pw", None).await?;
    let err = db
        .remove_domain("example.com")
        .await
        .expect_err("removed a domain with users");
    assert!(
        matches!(err, StorageError::DomainNotEmpty { users: 1, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "domain \"example.com\" still has 1 user(s); remove them first"
    );
    assert!(db.remove_user("bob@example.com").await?);
    assert!(db.remove_domain("EXAMPLE.COM").await?);
    assert!(!db.remove_domain("example.com").await?);
    assert_eq!(db.domain("example.com").await?, None);
    assert_eq!(db.list_domains().await?.len(), 2);
    Ok(())
}

pub async fn domain_errors(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.add_domain("example.com").await?;

    let err = db
        .add_domain("EXAMPLE.com")
        .await
        .expect_err("duplicate accepted");
    assert!(matches!(err, StorageError::DomainExists { .. }), "{err:?}");
    assert_eq!(err.to_string(), "domain \"example.com\" already exists");

    for (bad, reason) in [
        ("", "it is empty"),
        (
            "a..b",
            "it contains an empty label (a leading dot or two dots in a row)",
        ),
        ("x.org.", "it must not end with a dot"),
        ("-x.org", "label \"-x\" starts or ends with a hyphen"),
        (
            "under_score.org",
            "it contains '_'; only letters, digits, hyphens and dots are allowed",
        ),
    ] {
        let err = db
            .add_domain(bad)
            .await
            .expect_err("invalid domain accepted");
        assert!(matches!(err, StorageError::InvalidDomain { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("invalid domain name {bad:?}: {reason}")
        );
    }
    let err = db.add_domain("bücher.de").await.expect_err("IDN accepted");
    assert!(err.to_string().contains("\"xn--\""), "{err}");
    let long = format!("{}.org", "a".repeat(250));
    let err = db.add_domain(&long).await.expect_err("long name accepted");
    assert!(
        err.to_string()
            .ends_with("it is longer than 253 characters"),
        "{err}"
    );

    let err = db
        .remove_domain("a..b")
        .await
        .expect_err("invalid name accepted");
    assert!(matches!(err, StorageError::InvalidDomain { .. }), "{err:?}");
    assert_eq!(db.list_domains().await?.len(), 1);
    Ok(())
}
