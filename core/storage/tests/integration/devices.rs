//! Devices.

use anyhow::Result;
use switchboard_storage::{DeviceSeen, StorageError, WipeState};

use crate::support::{Kind, TestDb};

fn seen(user: &str, device_id: &str) -> DeviceSeen {
    DeviceSeen {
        user: user.to_owned(),
        device_id: device_id.to_owned(),
        device_type: "iPhone".to_owned(),
        user_agent: Some("Apple-iPhone/1".to_owned()),
        protocol: "activesync".to_owned(),
        policy_key: None,
    }
}

pub async fn device_lifecycle(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.add_domain("example.com").await?;
    db.add_user("bob@example.com", "pw", None).await?;
    db.add_user("alice@example.com", "pw", None).await?;

    let first = db.upsert_device(&seen("Bob@example.com", "DEV1")).await?;
    assert_eq!(first.user, "bob@example.com");
    assert_eq!(first.device_id, "DEV1");
    assert_eq!(first.device_type, "iPhone");
    assert_eq!(first.user_agent.as_deref(), Some("Apple-iPhone/1"));
    assert_eq!(first.protocol, "activesync");
    assert_eq!(first.policy_key, None);
    assert_eq!(first.wipe_state, WipeState::None);
    assert_eq!(first.first_seen, first.last_seen);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut again = seen("bob@example.com", "DEV1");
    again.user_agent = Some("Apple-iPhone/2".to_owned());
    again.policy_key = Some("1234567".to_owned());
    let second = db.upsert_device(&again).await?;
    assert_eq!(second.id, first.id);
    assert_eq!(second.first_seen, first.first_seen);
    assert!(second.last_seen > first.last_seen);
    assert_eq!(second.user_agent.as_deref(), Some("Apple-iPhone/2"));
    assert_eq!(second.policy_key.as_deref(), Some("1234567"));

    // No policy key in the report keeps the stored one.
    let third = db.upsert_device(&seen("bob@example.com", "DEV1")).await?;
    assert_eq!(third.policy_key.as_deref(), Some("1234567"));
    assert_eq!(third.user_agent.as_deref(), Some("Apple-iPhone/1"));

    // Device ids are per user; they are case-sensitive.
    db.upsert_device(&seen("bob@example.com", "dev1")).await?;
    let alices = db.upsert_device(&seen("alice@example.com", "DEV1")).await?;
    assert_ne!(alices.id, first.id);

    let all: Vec<(String, String)> = db
        .list_devices(None)
        .await?
        .into_iter()
        .map(|d| (d.user, d.device_id))
        .collect();
    assert_eq!(
        all,
        [
            ("alice@example.com".to_owned(), "DEV1".to_owned()),
            ("bob@example.com".to_owned(), "DEV1".to_owned()),
            ("bob@example.com".to_owned(), "dev1".to_owned()),
        ]
    );
    let bobs = db.list_devices(Some("BOB@example.com")).await?;
    assert_eq!(bobs.len(), 2);
    assert_eq!(bobs[0], third);

    // Remote wipe.
    assert!(
        db.set_device_wipe_state("bob@example.com", "DEV1", WipeState::Requested)
            .await?
    );
    let device = db.device("bob@example.com", "DEV1").await?.expect("device");
    assert_eq!(device.wipe_state, WipeState::Requested);
    // Contacts do not reset a pending wipe.
    let contact = db.upsert_device(&seen("bob@example.com", "DEV1")).await?;
    assert_eq!(contact.wipe_state, WipeState::Requested);
    assert!(
        db.set_device_wipe_state("bob@example.com", "DEV1", WipeState::Acknowledged)
            .await?
    );
    assert!(
        !db.set_device_wipe_state("bob@example.com", "nope", WipeState::Requested)
            .await?
    );
    let json = serde_json::to_value(db.device("bob@example.com", "DEV1").await?)?;
    assert_eq!(json["wipe_state"], "acknowledged");
    assert_eq!(json["user"], "bob@example.com");

    assert!(db.remove_device("bob@example.com", "DEV1").await?);
    assert!(!db.remove_device("bob@example.com", "DEV1").await?);
    assert_eq!(db.device("bob@example.com", "DEV1").await?, None);
    assert!(db.device("alice@example.com", "DEV1").await?.is_some());

    // Removing a user removes their devices.
    assert!(db.remove_user("alice@example.com").await?);
    let left: Vec<String> = db
        .list_devices(None)
        .await?
        .into_iter()
        .map(|d| d.user)
        .collect();
    assert_eq!(left, ["bob@example.com"]);
    Ok(())
}

pub async fn device_errors(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.add_domain("example.com").await?;
    db.add_user("bob@example.com", "pw", None).await?;

    let err = db
        .upsert_device(&seen("nobody@example.com", "D"))
        .await
        .expect_err("unknown user");
    assert!(matches!(err, StorageError::UserNotFound { .. }), "{err:?}");
    let err = db
        .upsert_device(&seen("bob", "D"))
        .await
        .expect_err("bad address");
    assert!(
        matches!(err, StorageError::InvalidAddress { .. }),
        "{err:?}"
    );
    let err = db
        .upsert_device(&seen("bob@example.com", ""))
        .await
        .expect_err("empty id");
    assert_eq!(
        err.to_string(),
        "invalid device id \"\": it must not be empty"
    );
    let mut bad = seen("bob@example.com", "D");
    bad.protocol = String::new();
    let err = db.upsert_device(&bad).await.expect_err("empty protocol");
    assert!(
        matches!(
            err,
            StorageError::InvalidInput {
                field: "protocol",
                ..
            }
        ),
        "{err:?}"
    );
    let err = db
        .list_devices(Some("nobody@example.com"))
        .await
        .expect_err("unknown user");
    assert!(matches!(err, StorageError::UserNotFound { .. }), "{err:?}");
    let err = db
        .remove_device("nobody@example.com", "D")
        .await
        .expect_err("unknown user");
    assert!(matches!(err, StorageError::UserNotFound { .. }), "{err:?}");
    assert!(db.list_devices(None).await?.is_empty());
    Ok(())
}
