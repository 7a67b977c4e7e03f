//! Opening the database, migrations and health checks.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sea_orm::sqlx::Connection as _;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, SqlxPostgresConnector, SqlxSqliteConnector,
};
use sea_orm_migration::MigratorTrait;

use crate::migration::Migrator;
use crate::StorageError;

/// How long a SQLite connection waits for a competing writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `connect` and later queries wait for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Which database engine a [`Storage`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (a file, or in memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A handle to the database: a connection pool plus the typed repository methods.
///
/// Cloning is cheap and clones share the pool. The repository methods are spread over the
/// modules they belong to (domains, users, SIP credentials, devices, plugin key-value data,
/// audit log) but all live on this one type.
#[derive(Clone)]
pub struct Storage {
    pub(crate) db: DatabaseConnection,
}

impl fmt::Debug for Storage {
    // Written by hand: the pool's own Debug output can include connection options, and those
    // can include a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens a connection pool of at most `max_connections` connections.
    ///
    /// Accepted URLs:
    /// * `sqlite://PATH` (or `sqlite:PATH`): the file is created if missing, and so is its parent
    ///   directory. Connections use WAL journal mode, `foreign_keys=ON` and a 5 s busy timeout.
    /// * `sqlite::memory:`: a private in-memory database, useful for tests. It lives as long as
    ///   the pool, which is limited to one connection whatever `max_connections` says (every
    ///   further SQLite connection would otherwise see a different database or contend on
    ///   shared-cache table locks).
    /// * `postgres://...` or `postgresql://...`: any libpq-style URL sqlx understands.
    ///
    /// One connection is opened before returning, so an unreachable server, a bad password or
    /// an unwritable path is reported here. Passwords in URLs are masked in error messages.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Storage, StorageError> {
        if max_connections == 0 {
            return Err(StorageError::InvalidInput {
                field: "max_connections",
                value: "0".to_owned(),
                reason: "the pool needs at least one connection".to_owned(),
            });
        }
        let db = if url.starts_with("sqlite:") {
            connect_sqlite(url, max_connections).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            connect_postgres(url, max_connections).await?
        } else {
            return Err(StorageError::UnsupportedUrl {
                url: redact_url(url),
            });
        };
        let storage = Storage { db };
        tracing::debug!(backend = %storage.backend(), url = %redact_url(url), "database opened");
        Ok(storage)
    }

    /// The database engine behind this handle.
    pub fn backend(&self) -> Backend {
        match self.db.get_database_backend() {
            DbBackend::Postgres => Backend::Postgres,
            // The crate is built with the SQLite and PostgreSQL drivers only.
            _ => Backend::Sqlite,
        }
    }

    /// The underlying sea-orm connection, for code that manages its own tables (later
    /// plugins). Prefer the typed methods for the tables this crate owns.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies all pending migrations and returns the names of those applied by this call
    /// (empty when the schema was already up to date).
    pub async fn migrate(&self) -> Result<Vec<String>, StorageError> {
        let pending = self.pending_migrations().await?;
        if pending.is_empty() {
            return Ok(pending);
        }
        Migrator::up(&self.db, None)
            .await
            .map_err(|cause| StorageError::Migration { cause })?;
        for name in &pending {
            tracing::info!(migration = %name, "applied database migration");
        }
        Ok(pending)
    }

    /// Names of the migrations that [`migrate`](Self::migrate) would apply, in order.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StorageError> {
        let pending = Migrator::get_pending_migrations(&self.db)
            .await
            .map_err(|cause| StorageError::Migration { cause })?;
        Ok(pending.iter().map(|m| m.name().to_owned()).collect())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.db
            .ping()
            .await
            .map_err(|cause| StorageError::Database {
                context: "checking that the database answers".to_owned(),
                cause,
            })
    }

    /// Closes the pool, waiting for connections in use to be returned. Other clones of this
    /// handle stop working.
    pub async fn close(self) -> Result<(), StorageError> {
        self.db
            .close()
            .await
            .map_err(|cause| StorageError::Database {
                context: "closing the database".to_owned(),
                cause,
            })
    }
}

async fn connect_sqlite(
    url: &str,
    max_connections: u32,
) -> Result<DatabaseConnection, StorageError> {
    let fail = |cause: String| StorageError::Connect {
        url: redact_url(url),
        cause,
    };
    let options = SqliteConnectOptions::from_str(url).map_err(|e| fail(e.to_string()))?;
    let in_memory = url.starts_with("sqlite::memory:") || url.contains("mode=memory");
    let options = options.foreign_keys(true).busy_timeout(SQLITE_BUSY_TIMEOUT);

    let (options, pool) = if in_memory {
        // The database disappears with its last connection: keep exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        (options, pool)
    } else {
        let path = options.get_filename().to_path_buf();
        if path.as_os_str().is_empty() {
            return Err(fail("the URL names no file".to_owned()));
        }
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    fail(format!("cannot create directory {}: {e}", parent.display()))
                })?;
            }
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new().max_connections(max_connections);
        (options, pool)
    };
    let pool = pool
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

async fn connect_postgres(
    url: &str,
    max_connections: u32,
) -> Result<DatabaseConnection, StorageError> {
    let fail = |cause: String| StorageError::Connect {
        url: redact_url(url),
        cause,
    };
    let options = PgConnectOptions::from_str(url).map_err(|e| fail(e.to_string()))?;
    // One direct attempt first: the pool retries refused connections until its acquire
    // timeout, which would turn "nothing listens there" into a 30-second hang.
    let probe = tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| fail(format!("no answer within {} s", ACQUIRE_TIMEOUT.as_secs())))?
        .map_err(|e| fail(e.to_string()))?;
    // Closing is a courtesy to the server; a failure here changes nothing.
    let _ = probe.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

/// Replaces the password in `scheme://user:password@host/...` with `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..rest_start],
        &userinfo[..colon],
        &url[rest_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://sb:secret@db.example:5432/sb?sslmode=require"),
            "postgres://sb:***@db.example:5432/sb?sslmode=require"
        );
        assert_eq!(redact_url("postgres://sb@db/sb"), "postgres://sb@db/sb");
        assert_eq!(redact_url("postgres://db/sb"), "postgres://db/sb");
        assert_eq!(redact_url("sqlite://a@b:c/x.db"), "sqlite://a@b:c/x.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(redact_url("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
    }
}
