//! Tests of the PostgreSQL test harness itself (support/pg.rs).

use anyhow::Result;
use sea_orm_migration::MigratorTrait;
use switchboard_storage::migration::Migrator;
use switchboard_storage::sea_orm::sqlx::{self, Connection as _};
use switchboard_storage::Storage;

use crate::support::pg::{self, PgDatabase};

async fn database_exists(admin_url: &str, name: &str) -> Result<bool> {
    let mut conn = pg::connect(admin_url).await?;
    let found: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await?;
    conn.close().await?;
    Ok(found.is_some())
}

async fn exercise(database: &PgDatabase) -> Result<()> {
    let storage = Storage::connect(database.url(), 2).await?;
    assert_eq!(storage.migrate().await?.len(), Migrator::migrations().len());
    storage.add_domain("example.com").await?;
    storage.kv_set("p", "k", b"v").await?;
    assert_eq!(storage.kv_get("p", "k").await?.as_deref(), Some(&b"v"[..]));
    // The connection stays open while the database is dropped: the drop must force it.
    Ok(())
}

/// Databases are created fresh and dropped on drop, even with open connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_test_database_is_dropped() -> Result<()> {
    let database = PgDatabase::create().await?;
    let admin_url = database.admin_url().to_owned();
    let name = database.name().to_owned();
    assert!(database_exists(&admin_url, &name).await?);
    exercise(&database).await?;
    let storage = Storage::connect(database.url(), 1).await?;
    storage.ping().await?;
    drop(database);
    assert!(
        !database_exists(&admin_url, &name).await?,
        "{name} survived"
    );
    assert!(
        storage.ping().await.is_err(),
        "connection to a dropped database still works"
    );
    Ok(())
}

/// The fallback path, forced: a throwaway server started with initdb / pg_ctl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throwaway_postgres_server_works() -> Result<()> {
    let admin_url = pg::throwaway_admin_url().await?;
    assert!(
        admin_url.starts_with("postgres://postgres@127.0.0.1:"),
        "{admin_url}"
    );
    assert_ne!(admin_url, pg::DEFAULT_ADMIN_URL);
    let database = PgDatabase::create_on(&admin_url).await?;
    let name = database.name().to_owned();
    exercise(&database).await?;
    drop(database);
    assert!(
        !database_exists(&admin_url, &name).await?,
        "{name} survived"
    );
    // Reused within the process.
    assert_eq!(pg::throwaway_admin_url().await?, admin_url);
    Ok(())
}
