//! Durable key-value data for plugins, namespaced by plugin name.
//!
//! Keys are strings compared bytewise (the order of Rust's `str`/`String`) on both backends,
//! values are arbitrary bytes. Every write bumps a per-key version counter (stored, used for
//! diagnostics). [`Storage::kv_compare_and_swap`] gives plugins an atomic primitive to build
//! counters, locks and optimistic updates on.
//!
//! Usage accounting: every write runs in one transaction with an update of the plugin's row in
//! `plugin_kv_usage` (by the size change: UTF-8 bytes of the key plus the value), so
//! [`Storage::kv_usage_bytes`] reads a few counter rows instead of summing the plugin's data.
//! On PostgreSQL each write transaction is SERIALIZABLE and adds to one of
//! [`USAGE_SHARDS`] counter rows picked at random (concurrent writers seldom collide); a
//! serialization failure is retried from the start, so the counters stay exact. On SQLite the
//! write lock is taken first and every write uses shard 0.

use sea_orm::sea_query::{Alias, Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder};
use sea_orm::{DatabaseTransaction, DbErr, QuerySelect, Statement, Value};

use crate::entity::plugin_kv;
use crate::error::DbResultExt;
use crate::{validate, Storage, StorageError};

/// Longest plugin name, in bytes.
const MAX_PLUGIN: usize = 128;
/// Longest key, in bytes (comfortably below PostgreSQL's B-tree entry limit).
const MAX_KEY: usize = 1024;

fn check_plugin(plugin: &str) -> Result<(), StorageError> {
    validate::text("plugin name", plugin, MAX_PLUGIN, false)
}

/// Keys may be empty and may contain anything but NUL (which PostgreSQL cannot store in text).
fn check_key(field: &'static str, key: &str) -> Result<(), StorageError> {
    let err = |reason: &str| StorageError::InvalidInput {
        field,
        value: validate::shorten(key),
        reason: reason.to_owned(),
    };
    if key.len() > MAX_KEY {
        return Err(err("it is longer than 1024 bytes"));
    }
    if key.contains('\0') {
        return Err(err("it contains a NUL character"));
    }
    Ok(())
}

/// The smallest string that is greater than every string starting with `prefix` (in bytewise
/// order), or `None` if there is none (empty prefix, or one made only of `char::MAX`).
///
/// Replacing the last character by its successor works because UTF-8 preserves code point
/// order and no character's encoding is a prefix of another's.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl Storage {
    /// The value stored under `key` for `plugin`, if any.
    pub async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_plugin(plugin)?;
        check_key("key", key)?;
        let row = plugin_kv::Entity::find_by_id((plugin.to_owned(), key.to_owned()))
            .one(&self.db)
            .await
            .ctx(|| format!("reading key {key:?} of plugin {plugin:?}"))?;
        Ok(row.map(|r| r.value))
    }

    /// Stores `value` under `key` for `plugin`, replacing any previous value.
    pub async fn kv_set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), StorageError> {
        check_plugin(plugin)?;
        check_key("key", key)?;
        let context = || format!("writing key {key:?} of plugin {plugin:?}");
        let backend = self.db.get_database_backend();
        write_txn!(self, |txn| {
            let old = stored_size(txn, plugin, key).await?;
            let stmt =
                upsert(backend, plugin, key, value).map_err(|e| DbErr::Custom(e.to_string()))?;
            txn.execute(stmt).await?;
            let new = (key.len() + value.len()) as i64;
            add_usage(txn, plugin, new - old.unwrap_or(0)).await?;
            Ok(Some(()))
        })
        .ctx(context)
        .map(|_| ())
    }

    /// Applies `writes` (`Some`: set, `None`: delete) atomically, and only if every check
    /// holds (`Some(v)`: the key holds `v`; `None`: the key is absent). Returns `false`, having
    /// written nothing, when a check fails (retry from a fresh read). The whole commit is one
    /// serializable transaction: on SQLite the write lock is taken before the checks are read;
    /// on PostgreSQL the transaction is SERIALIZABLE, and one that loses a race to a concurrent
    /// writer is run again from the checks (transparently, up to [`MAX_ATTEMPTS`] times; after
    /// that it answers `false` like a failed check). The usage counter moves in the same
    /// transaction.
    pub async fn kv_commit(
        &self,
        plugin: &str,
        checks: &[(String, Option<Vec<u8>>)],
        writes: &[(String, Option<Vec<u8>>)],
    ) -> Result<bool, StorageError> {
        check_plugin(plugin)?;
        for (key, _) in checks.iter().chain(writes) {
            check_key("key", key)?;
        }
        let context = || {
            format!(
                "atomic commit of {} checks and {} writes for plugin {plugin:?}",
                checks.len(),
                writes.len()
            )
        };
        let backend = self.db.get_database_backend();
        let applied = write_txn!(self, |txn| {
            for (key, expected) in checks {
                let row = plugin_kv::Entity::find_by_id((plugin.to_owned(), key.clone()))
                    .one(txn)
                    .await?;
                if row.map(|r| r.value) != *expected {
                    return Ok(None);
                }
            }
            let mut delta = 0i64;
            for (key, value) in writes {
                let old = stored_size(txn, plugin, key).await?;
                delta -= old.unwrap_or(0);
                match value {
                    Some(v) => {
                        let stmt = upsert(backend, plugin, key, v)
                            .map_err(|e| DbErr::Custom(e.to_string()))?;
                        txn.execute(stmt).await?;
                        delta += (key.len() + v.len()) as i64;
                    }
                    None => {
                        if old.is_some() {
                            plugin_kv::Entity::delete_by_id((plugin.to_owned(), key.clone()))
                                .exec(txn)
                                .await?;
                        }
                    }
                }
            }
            add_usage(txn, plugin, delta).await?;
            Ok(Some(()))
        });
        match applied {
            Ok(applied) => Ok(applied.is_some()),
            // Lost the race every time: the caller retries from a fresh read.
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e).ctx(context),
        }
    }

    /// Begin a write transaction: SERIALIZABLE on PostgreSQL, write-locked on SQLite.
    async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        use sea_orm::{IsolationLevel, TransactionTrait};
        let backend = self.db.get_database_backend();
        let txn = match backend {
            DbBackend::Postgres => {
                self.db
                    .begin_with_config(Some(IsolationLevel::Serializable), None)
                    .await?
            }
            _ => self.db.begin().await?,
        };
        if backend == DbBackend::Sqlite {
            // A write statement takes SQLite's write lock now, so what the transaction reads
            // cannot change before it ends.
            txn.execute_unprepared("UPDATE plugin_kv SET version = version WHERE 0 = 1")
                .await?;
        }
        Ok(txn)
    }
}

/// End a write transaction: `Ok(Some(v))` commits, `Ok(None)` rolls back, an error rolls back
/// and is returned.
async fn finish<T>(
    txn: DatabaseTransaction,
    outcome: Result<Option<T>, DbErr>,
) -> Result<Option<T>, DbErr> {
    match outcome {
        Ok(Some(v)) => txn.commit().await.map(|()| Some(v)),
        Ok(None) => txn.rollback().await.map(|()| None),
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

/// Whether to run a write transaction again after `e` on attempt `attempt`; waits a little
/// (a little more each time) first, so the winner of the race finishes.
async fn retry_after(e: &DbErr, attempt: u32) -> bool {
    if !is_conflict(e) || attempt >= MAX_ATTEMPTS {
        return false;
    }
    // SQLite answers "locked" only after its 5 s busy timeout: a writer holds the lock for
    // that long, so a couple more tries are enough before the error goes to the caller.
    if e.to_string().contains("database is locked") && attempt >= LOCKED_ATTEMPTS {
        return false;
    }
    let pause =
        u64::from(attempt.min(20)) * rand::Rng::gen_range(&mut rand::thread_rng(), 50..150u64);
    tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
    true
}

/// Run `$body` (an async block body borrowing `$txn`, evaluating to
/// `Result<Option<T>, DbErr>`) in a write transaction of `$storage`: `Some` commits, `None`
/// rolls back (a check did not hold); a serialization failure or lock conflict runs the body
/// again in a fresh transaction, up to [`MAX_ATTEMPTS`] times. Evaluates to
/// `Result<Option<T>, DbErr>`.
macro_rules! write_txn {
    ($storage:expr, |$txn:ident| $body:block) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = match $storage.begin_write().await {
                Ok(txn) => {
                    let run = {
                        let $txn = &txn;
                        async $body
                    }
                    .await;
                    finish(txn, run).await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Err(e) if retry_after(&e, attempt).await => continue,
                other => break other,
            }
        }
    }};
}
use write_txn;

/// How often a write transaction is retried after serialization failures before giving up.
const MAX_ATTEMPTS: u32 = 200;

/// How often a write transaction is retried after SQLite's busy timeout ran out.
const LOCKED_ATTEMPTS: u32 = 3;

/// Counter rows per plugin on PostgreSQL (see the module docs).
pub const USAGE_SHARDS: i32 = 16;

/// Size of the stored entry `key` (key bytes + value bytes), or `None` if absent.
async fn stored_size(
    txn: &DatabaseTransaction,
    plugin: &str,
    key: &str,
) -> Result<Option<i64>, DbErr> {
    use plugin_kv::Column as C;
    let backend = txn.get_database_backend();
    let len = match backend {
        DbBackend::Postgres => Expr::cust(r#"CAST(OCTET_LENGTH("value") AS BIGINT)"#),
        _ => Expr::cust(r#"LENGTH("value")"#),
    };
    let query = Query::select()
        .expr_as(len, Alias::new("len"))
        .from(plugin_kv::Entity)
        .and_where(Expr::col(C::Plugin).eq(Value::from(plugin)))
        .and_where(Expr::col(C::Key).eq(Value::from(key)))
        .to_owned();
    match txn.query_one(backend.build(&query)).await? {
        Some(row) => {
            let len: i64 = row.try_get("", "len")?;
            Ok(Some(key.len() as i64 + len))
        }
        None => Ok(None),
    }
}

/// Add `delta` bytes to `plugin`'s usage counter (one shard of it).
async fn add_usage(txn: &DatabaseTransaction, plugin: &str, delta: i64) -> Result<(), DbErr> {
    if delta == 0 {
        return Ok(());
    }
    let backend = txn.get_database_backend();
    let shard = match backend {
        DbBackend::Postgres => rand::Rng::gen_range(&mut rand::thread_rng(), 0..USAGE_SHARDS),
        _ => 0,
    };
    let (sql, values): (&str, Vec<Value>) = (
        "INSERT INTO plugin_kv_usage (plugin, shard, bytes) VALUES ($1, $2, $3) \
         ON CONFLICT (plugin, shard) DO UPDATE SET bytes = plugin_kv_usage.bytes + excluded.bytes",
        vec![plugin.into(), shard.into(), delta.into()],
    );
    let sql = match backend {
        DbBackend::Postgres => sql.to_string(),
        _ => sql.replace("$1", "?").replace("$2", "?").replace("$3", "?"),
    };
    txn.execute(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// A serialization failure or lock conflict: the commit lost a race and may be retried.
fn is_conflict(e: &DbErr) -> bool {
    let text = e.to_string();
    [
        "40001",
        "could not serialize",
        "deadlock detected",
        "database is locked",
        "23505",
        "duplicate key",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// `INSERT .. ON CONFLICT DO UPDATE` of one key, bumping its version.
fn upsert(
    backend: DbBackend,
    plugin: &str,
    key: &str,
    value: &[u8],
) -> Result<sea_orm::Statement, sea_orm::sea_query::error::Error> {
    use plugin_kv::Column as C;
    let mut insert = Query::insert();
    insert
        .into_table(plugin_kv::Entity)
        .columns([C::Plugin, C::Key, C::Value, C::Version])
        .values([
            plugin.into(),
            key.into(),
            value.to_vec().into(),
            1i64.into(),
        ])?
        .on_conflict(
            OnConflict::columns([C::Plugin, C::Key])
                .update_column(C::Value)
                .value(
                    C::Version,
                    Expr::col((plugin_kv::Entity, C::Version)).add(1),
                )
                .to_owned(),
        );
    Ok(backend.build(&insert))
}

impl Storage {
    /// Deletes `key` of `plugin`. Returns whether it existed.
    pub async fn kv_delete(&self, plugin: &str, key: &str) -> Result<bool, StorageError> {
        check_plugin(plugin)?;
        check_key("key", key)?;
        let context = || format!("deleting key {key:?} of plugin {plugin:?}");
        let existed = write_txn!(self, |txn| {
            let Some(old) = stored_size(txn, plugin, key).await? else {
                return Ok(Some(false));
            };
            plugin_kv::Entity::delete_by_id((plugin.to_owned(), key.to_owned()))
                .exec(txn)
                .await?;
            add_usage(txn, plugin, -old).await?;
            Ok(Some(true))
        })
        .ctx(context)?;
        Ok(existed == Some(true))
    }

    /// Keys of `plugin` starting with `prefix`, in ascending (bytewise) order, with their
    /// values: at most `limit` of them, starting after `after` (exclusive) if given. To page,
    /// pass the last key of the previous page as `after`.
    pub async fn kv_scan(
        &self,
        plugin: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        use plugin_kv::Column as C;
        check_plugin(plugin)?;
        check_key("key prefix", prefix)?;
        if let Some(after) = after {
            check_key("key", after)?;
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = plugin_kv::Entity::find()
            .filter(C::Plugin.eq(plugin))
            .filter(C::Key.gte(prefix));
        if let Some(upper) = prefix_upper_bound(prefix) {
            query = query.filter(C::Key.lt(upper));
        }
        if let Some(after) = after {
            query = query.filter(C::Key.gt(after));
        }
        let rows = query
            .order_by_asc(C::Key)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .ctx(|| format!("listing keys {prefix:?}* of plugin {plugin:?}"))?;
        Ok(rows.into_iter().map(|r| (r.key, r.value)).collect())
    }

    /// Atomically replaces the value of `key` if it currently is `expected`.
    ///
    /// * `expected: None` means "the key must not exist", `Some(v)` "the value must be `v`".
    /// * `new: None` deletes the key, `Some(v)` stores `v`.
    ///
    /// Returns `true` if the condition held and the write happened. The read, the write and
    /// the usage counter update are one write transaction (see the module docs), retried on
    /// serialization failures, so the answer is atomic on both backends. (`None` → `None`
    /// only checks that the key is absent.)
    pub async fn kv_compare_and_swap(
        &self,
        plugin: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        check_plugin(plugin)?;
        check_key("key", key)?;
        let context = || format!("compare-and-swap of key {key:?} of plugin {plugin:?}");
        if expected.is_none() && new.is_none() {
            return Ok(self.kv_get(plugin, key).await?.is_none());
        }
        let backend = self.db.get_database_backend();
        let swapped = write_txn!(self, |txn| {
            let row = plugin_kv::Entity::find_by_id((plugin.to_owned(), key.to_owned()))
                .one(txn)
                .await?;
            if row.as_ref().map(|r| r.value.as_slice()) != expected {
                return Ok(None);
            }
            let old = row.map(|r| (key.len() + r.value.len()) as i64).unwrap_or(0);
            match new {
                Some(v) => {
                    let stmt = upsert(backend, plugin, key, v)
                        .map_err(|e| DbErr::Custom(e.to_string()))?;
                    txn.execute(stmt).await?;
                    add_usage(txn, plugin, (key.len() + v.len()) as i64 - old).await?;
                }
                None => {
                    plugin_kv::Entity::delete_by_id((plugin.to_owned(), key.to_owned()))
                        .exec(txn)
                        .await?;
                    add_usage(txn, plugin, -old).await?;
                }
            }
            Ok(Some(()))
        })
        .ctx(context)?;
        Ok(swapped.is_some())
    }

    /// Bytes used by `plugin`: the sum of the UTF-8 lengths of its keys and the lengths of its
    /// values (what a quota should count; database overhead is not included). Reads the usage
    /// counters kept by every write, so it costs the same however much the plugin stores.
    pub async fn kv_usage_bytes(&self, plugin: &str) -> Result<u64, StorageError> {
        check_plugin(plugin)?;
        let backend = self.db.get_database_backend();
        let sum = match backend {
            DbBackend::Postgres => Expr::cust(r#"CAST(COALESCE(SUM("bytes"), 0) AS BIGINT)"#),
            _ => Expr::cust(r#"COALESCE(SUM("bytes"), 0)"#),
        };
        let query = Query::select()
            .expr_as(sum, Alias::new("usage"))
            .from(Alias::new("plugin_kv_usage"))
            .and_where(Expr::col(Alias::new("plugin")).eq(Value::from(plugin)))
            .to_owned();
        self.usage_query(plugin, backend.build(&query)).await
    }

    /// The same figure as [`Storage::kv_usage_bytes`], recounted from the data itself (a
    /// full scan of the plugin's rows: for checks and repairs, not for every write).
    pub async fn kv_usage_recount(&self, plugin: &str) -> Result<u64, StorageError> {
        check_plugin(plugin)?;
        let backend = self.db.get_database_backend();
        let sum = match backend {
            DbBackend::Postgres => Expr::cust(
                r#"CAST(COALESCE(SUM(CAST(OCTET_LENGTH("key") AS BIGINT) + OCTET_LENGTH("value")), 0) AS BIGINT)"#,
            ),
            _ => Expr::cust(r#"COALESCE(SUM(LENGTH(CAST("key" AS BLOB)) + LENGTH("value")), 0)"#),
        };
        let query = Query::select()
            .expr_as(sum, Alias::new("usage"))
            .from(plugin_kv::Entity)
            .and_where(Expr::col(plugin_kv::Column::Plugin).eq(Value::from(plugin)))
            .to_owned();
        self.usage_query(plugin, backend.build(&query)).await
    }

    async fn usage_query(
        &self,
        plugin: &str,
        stmt: sea_orm::Statement,
    ) -> Result<u64, StorageError> {
        let context = || format!("measuring the key-value usage of plugin {plugin:?}");
        let row = self.db.query_one(stmt).await.ctx(context)?;
        let bytes: i64 = match row {
            Some(row) => row.try_get("", "usage").ctx(context)?,
            None => 0,
        };
        Ok(u64::try_from(bytes).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_upper_bound;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}\u{10FFFF}"), None);
        for (prefix, key) in [
            ("a", "a\u{10FFFF}zz"),
            ("é", "é\u{10FFFF}"),
            ("x\u{7F}", "x\u{7F}\u{80}"),
        ] {
            let upper = prefix_upper_bound(prefix).expect("bound");
            assert!(key.starts_with(prefix));
            assert!(key < upper.as_str(), "{key:?} !< {upper:?}");
        }
    }
}
