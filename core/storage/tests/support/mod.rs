//! Shared test support: a [`TestDb`] is a fresh, private database on either backend.

#![allow(dead_code)]

pub mod pg;

use std::ops::Deref;

use anyhow::{Context as _, Result};
use switchboard_storage::Storage;

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server (see [`pg`]).
    Postgres,
}

/// Pool size used by tests: enough for the concurrency tests to contend.
pub const POOL: u32 = 8;

/// A private database, removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    /// The storage handle (declared first so it is dropped before the database goes away).
    pub storage: Storage,
    /// The URL the storage was opened with.
    pub url: String,
    keep: Keep,
}

#[derive(Debug)]
enum Keep {
    Sqlite(tempfile::TempDir),
    Postgres(pg::PgDatabase),
}

impl TestDb {
    /// A fresh database with all migrations applied.
    pub async fn new(kind: Kind) -> Result<TestDb> {
        let db = TestDb::unmigrated(kind).await?;
        db.storage
            .migrate()
            .await
            .context("migrating the test database")?;
        Ok(db)
    }

    /// A fresh, empty database.
    pub async fn unmigrated(kind: Kind) -> Result<TestDb> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir()?;
                // A directory that does not exist yet: connect must create it.
                let path = dir.path().join("state").join("switchboard.db");
                let url = format!("sqlite://{}", path.display());
                let storage = Storage::connect(&url, POOL).await?;
                Ok(TestDb {
                    storage,
                    url,
                    keep: Keep::Sqlite(dir),
                })
            }
            Kind::Postgres => {
                let database = pg::PgDatabase::create().await?;
                let url = database.url().to_owned();
                let storage = Storage::connect(&url, POOL).await?;
                Ok(TestDb {
                    storage,
                    url,
                    keep: Keep::Postgres(database),
                })
            }
        }
    }

    /// A fresh, migrated PostgreSQL database created with extra `CREATE DATABASE` options.
    pub async fn postgres_with(options: &str) -> Result<TestDb> {
        let admin_url = pg::admin_url().await?;
        let database = pg::PgDatabase::create_with(&admin_url, options).await?;
        let url = database.url().to_owned();
        let storage = Storage::connect(&url, POOL).await?;
        storage
            .migrate()
            .await
            .context("migrating the test database")?;
        Ok(TestDb {
            storage,
            url,
            keep: Keep::Postgres(database),
        })
    }

    /// The SQLite file's directory, if this is a SQLite database.
    pub fn sqlite_dir(&self) -> Option<&std::path::Path> {
        match &self.keep {
            Keep::Sqlite(dir) => Some(dir.path()),
            Keep::Postgres(_) => None,
        }
    }
}

impl Deref for TestDb {
    type Target = Storage;

    fn deref(&self) -> &Storage {
        &self.storage
    }
}
