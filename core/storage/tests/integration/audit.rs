//! The audit log.

use anyhow::Result;
use serde_json::json;
use switchboard_storage::{AuditEntry, AuditOutcome, StorageError};

use crate::support::{Kind, TestDb};

pub async fn audit_append_and_recent(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    assert!(db.recent_audit(10).await?.is_empty());
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    db.audit(
        &AuditEntry::new("user.add", AuditOutcome::Ok)
            .actor("admin")
            .target("bob@example.com"),
    )
    .await?;
    db.audit(
        &AuditEntry::new("auth.failure", AuditOutcome::Denied)
            .target("bob@example.com")
            .source("192.0.2.7")
            .detail(json!({ "protocol": "sip", "attempt": 3, "nested": { "ok": false } })),
    )
    .await?;
    db.audit(&AuditEntry::new("backup", AuditOutcome::Error))
        .await?;
    let after = chrono::Utc::now() + chrono::TimeDelta::seconds(1);

    let all = db.recent_audit(10).await?;
    let actions: Vec<&str> = all.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["backup", "auth.failure", "user.add"],
        "newest first"
    );
    assert!(all[0].id > all[1].id && all[1].id > all[2].id);
    for r in &all {
        assert!(r.at >= before && r.at <= after, "{:?}", r.at);
    }
    assert!(all[0].at >= all[1].at && all[1].at >= all[2].at);

    let failure = &all[1];
    assert_eq!(failure.actor, None);
    assert_eq!(failure.target.as_deref(), Some("bob@example.com"));
    assert_eq!(failure.source.as_deref(), Some("192.0.2.7"));
    assert_eq!(failure.outcome, "denied");
    assert_eq!(
        failure.detail,
        Some(json!({ "protocol": "sip", "attempt": 3, "nested": { "ok": false } }))
    );
    assert_eq!(all[2].actor.as_deref(), Some("admin"));
    assert_eq!(all[2].outcome, "ok");
    assert_eq!(all[0].outcome, "error");
    assert_eq!(all[0].detail, None);

    let two = db.recent_audit(2).await?;
    assert_eq!(two, all[..2].to_vec());
    assert!(db.recent_audit(0).await?.is_empty());

    let json = serde_json::to_value(&all[1])?;
    assert_eq!(json["outcome"], "denied");
    assert_eq!(json["detail"]["protocol"], "sip");
    Ok(())
}

pub async fn audit_sanitizes_and_prunes(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    // Attacker-supplied text is stored, not refused: NUL replaced, overlong values cut.
    let long = "x".repeat(5000);
    db.audit(
        &AuditEntry::new("auth.failure", AuditOutcome::Denied)
            .target("evil\0name")
            .source(long)
            .detail(json!({ "raw": "nul\u{0}inside" })),
    )
    .await?;
    let r = &db.recent_audit(1).await?[0];
    assert_eq!(r.target.as_deref(), Some("evil\u{FFFD}name"));
    assert_eq!(r.source.as_ref().map(|s| s.chars().count()), Some(1024));
    assert_eq!(r.detail, Some(json!({ "raw": "nul\u{0}inside" })));

    // Struct literals with JSON text, as the server writes them; text that is not JSON is
    // kept as a JSON string.
    db.audit(&AuditEntry {
        actor: Some("cli".into()),
        action: "user.add".into(),
        target: Some("bob@example.com".into()),
        source: None,
        outcome: "ok".into(),
        detail: Some(r#"{"via": "cli"}"#.into()),
    })
    .await?;
    assert_eq!(
        db.recent_audit(1).await?[0].detail,
        Some(json!({ "via": "cli" }))
    );
    db.audit(&AuditEntry {
        detail: Some("not json {".into()),
        ..AuditEntry::new("x", AuditOutcome::Error)
    })
    .await?;
    assert_eq!(
        db.recent_audit(1).await?[0].detail,
        Some(json!("not json {"))
    );
    let huge = format!("[\"{}\"]", "y".repeat(100_000));
    db.audit(&AuditEntry::new("x", AuditOutcome::Error).detail(serde_json::from_str(&huge)?))
        .await?;
    let stored = db.recent_audit(1).await?[0].detail.clone();
    let stored = stored
        .as_ref()
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        stored.starts_with("[\"yyy") && stored.ends_with('…'),
        "{}",
        &stored[..20]
    );

    let err = db
        .audit(&AuditEntry {
            outcome: "fine".into(),
            ..AuditEntry::new("x", AuditOutcome::Ok)
        })
        .await
        .expect_err("unknown outcome");
    assert_eq!(
        err.to_string(),
        "invalid audit outcome \"fine\": expected \"ok\", \"denied\" or \"error\""
    );

    let err = db
        .audit(&AuditEntry::new("", AuditOutcome::Ok))
        .await
        .expect_err("empty action");
    assert!(
        matches!(
            err,
            StorageError::InvalidInput {
                field: "audit action",
                ..
            }
        ),
        "{err:?}"
    );

    db.audit(&AuditEntry::new("second", AuditOutcome::Ok))
        .await?;
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    assert_eq!(db.prune_audit(past).await?, 0);
    let future = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    assert_eq!(db.prune_audit(future).await?, 5);
    assert!(db.recent_audit(10).await?.is_empty());
    Ok(())
}
