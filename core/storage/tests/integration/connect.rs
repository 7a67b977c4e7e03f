//! Opening databases and migrations.

use anyhow::{ensure, Result};
use sea_orm_migration::MigratorTrait;
use switchboard_storage::migration::Migrator;
use switchboard_storage::sea_orm::{ConnectionTrait, DbBackend, Statement};
use switchboard_storage::{Backend, Storage, StorageError};

use crate::support::{Kind, TestDb};

const INITIAL: &str = "m20261122_000001_initial";
const KV_USAGE: &str = "m20261130_000001_kv_usage";

pub async fn migrations_apply_once(kind: Kind) -> Result<()> {
    let db = TestDb::unmigrated(kind).await?;
    let all = vec![INITIAL.to_owned(), KV_USAGE.to_owned()];
    assert_eq!(db.pending_migrations().await?, all);
    assert_eq!(db.migrate().await?, all);
    assert!(db.pending_migrations().await?.is_empty());
    assert!(
        db.migrate().await?.is_empty(),
        "second run applied something"
    );
    // A second process (another pool) sees the same, finished schema.
    let other = Storage::connect(&db.url, 2).await?;
    assert!(other.pending_migrations().await?.is_empty());
    assert!(other.migrate().await?.is_empty());
    other.add_domain("example.com").await?;
    assert_eq!(db.list_domains().await?.len(), 1);
    Ok(())
}

pub async fn ping_and_backend(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    db.ping().await?;
    let expected = match kind {
        Kind::Sqlite => Backend::Sqlite,
        Kind::Postgres => Backend::Postgres,
    };
    assert_eq!(db.backend(), expected);
    assert_eq!(
        format!("{:?}", db.storage),
        format!("Storage {{ backend: {expected:?}, .. }}")
    );
    let clone = db.storage.clone();
    clone.ping().await?;
    Ok(())
}

async fn sqlite_pragma(storage: &Storage, pragma: &str) -> Result<String> {
    let row = storage
        .connection()
        .query_one(Statement::from_string(
            DbBackend::Sqlite,
            format!("PRAGMA {pragma}"),
        ))
        .await?;
    let row = row.ok_or_else(|| anyhow::anyhow!("PRAGMA {pragma} returned nothing"))?;
    let value: Result<String, _> = row.try_get_by_index(0);
    Ok(match value {
        Ok(s) => s,
        Err(_) => row.try_get_by_index::<i64>(0)?.to_string(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_uses_wal_and_foreign_keys() -> Result<()> {
    let db = TestDb::new(Kind::Sqlite).await?;
    let dir = db
        .sqlite_dir()
        .ok_or_else(|| anyhow::anyhow!("not sqlite"))?;
    ensure!(
        dir.join("state").join("switchboard.db").is_file(),
        "database file not created"
    );
    // Every pooled connection is configured, so ask several times concurrently.
    let mut checks = Vec::new();
    for _ in 0..4 {
        let storage = db.storage.clone();
        checks.push(tokio::spawn(async move {
            let journal = sqlite_pragma(&storage, "journal_mode").await?;
            let fk = sqlite_pragma(&storage, "foreign_keys").await?;
            let busy = sqlite_pragma(&storage, "busy_timeout").await?;
            anyhow::Ok((journal, fk, busy))
        }));
    }
    for check in checks {
        let (journal, fk, busy) = check.await??;
        assert_eq!(journal, "wal");
        assert_eq!(fk, "1");
        assert_eq!(busy, "5000");
    }
    Ok(())
}

#[tokio::test]
async fn sqlite_file_persists_across_reopen() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    {
        let storage = Storage::connect(&url, 2).await?;
        storage.migrate().await?;
        storage.add_domain("example.com").await?;
        storage.close().await?;
    }
    let storage = Storage::connect(&url, 2).await?;
    assert!(storage.migrate().await?.is_empty());
    assert_eq!(storage.list_domains().await?[0].name, "example.com");
    Ok(())
}

#[tokio::test]
async fn sqlite_memory_database() -> Result<()> {
    // max_connections is ignored for in-memory databases: every connection would see its own.
    let storage = Storage::connect("sqlite::memory:", 4).await?;
    assert_eq!(storage.migrate().await?.len(), Migrator::migrations().len());
    storage.add_domain("example.com").await?;
    storage.add_user("bob@example.com", "pw", None).await?;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move { storage.count_users().await }));
    }
    for task in tasks {
        assert_eq!(task.await??, 1);
    }
    // Another in-memory database is a different one.
    let other = Storage::connect("sqlite::memory:", 1).await?;
    assert_eq!(
        other.pending_migrations().await?.len(),
        Migrator::migrations().len()
    );
    Ok(())
}

#[tokio::test]
async fn connect_errors_are_clear() -> Result<()> {
    let err = Storage::connect("mysql://root:hunter2@localhost/db", 1)
        .await
        .expect_err("mysql accepted");
    assert!(
        matches!(err, StorageError::UnsupportedUrl { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("unsupported database URL \"mysql://root:***@localhost/db\""),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");

    let err = Storage::connect("/var/lib/x.db", 1)
        .await
        .expect_err("path accepted");
    assert!(
        matches!(err, StorageError::UnsupportedUrl { .. }),
        "{err:?}"
    );

    // Port 1 on loopback: nothing listens there.
    let err = Storage::connect("postgres://sb:s3cret@127.0.0.1:1/sb", 1)
        .await
        .expect_err("connected to port 1");
    let text = err.to_string();
    assert!(matches!(err, StorageError::Connect { .. }), "{err:?}");
    assert!(
        text.starts_with("cannot open database \"postgres://sb:***@127.0.0.1:1/sb\": "),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");

    // /proc does not allow creating directories, not even for root.
    let err = Storage::connect("sqlite:///proc/switchboard-test/x.db", 1)
        .await
        .expect_err("created a directory in /proc");
    let text = err.to_string();
    assert!(matches!(err, StorageError::Connect { .. }), "{err:?}");
    assert!(
        text.starts_with("cannot open database \"sqlite:///proc/switchboard-test/x.db\": cannot create directory"),
        "{text}"
    );

    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().display());
    let err = Storage::connect(&url, 1)
        .await
        .expect_err("opened a directory");
    assert!(matches!(err, StorageError::Connect { .. }), "{err:?}");

    let err = Storage::connect("sqlite::memory:", 0)
        .await
        .expect_err("0 connections");
    assert_eq!(
        err.to_string(),
        "invalid max_connections \"0\": the pool needs at least one connection"
    );
    Ok(())
}
