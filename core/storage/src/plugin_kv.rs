//! Durable key-value data for plugins, namespaced by plugin name.
//!
//! Keys are strings compared bytewise (the order of Rust's `str`/`String`) on both backends,
//! values are arbitrary bytes. Every write bumps a per-key version counter (stored, used for
//! diagnostics). [`Storage::kv_compare_and_swap`] gives plugins an atomic primitive to build
//! counters, locks and optimistic updates on.

use sea_orm::sea_query::{Alias, Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder};
use sea_orm::{DbErr, QuerySelect, Value};

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
        let stmt = upsert(self.db.get_database_backend(), plugin, key, value)
            .map_err(|e| StorageError::Internal(format!("{}: {e}", context())))?;
        self.db.execute(stmt).await.ctx(context)?;
        Ok(())
    }

    /// Applies `writes` (`Some`: set, `None`: delete) atomically, and only if every check
    /// holds (`Some(v)`: the key holds `v`; `None`: the key is absent). Returns `false`, having
    /// written nothing, when a check fails or a concurrent commit got in the way (retry from a
    /// fresh read). The whole commit is one serializable transaction: on SQLite the write lock
    /// is taken before the checks are read; on PostgreSQL the transaction is SERIALIZABLE.
    pub async fn kv_commit(
        &self,
        plugin: &str,
        checks: &[(String, Option<Vec<u8>>)],
        writes: &[(String, Option<Vec<u8>>)],
    ) -> Result<bool, StorageError> {
        use sea_orm::{IsolationLevel, TransactionTrait};
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
        let txn = match backend {
            DbBackend::Postgres => {
                self.db
                    .begin_with_config(Some(IsolationLevel::Serializable), None)
                    .await
            }
            _ => self.db.begin().await,
        }
        .ctx(context)?;
        let run = async {
            if backend == DbBackend::Sqlite {
                // A write statement takes SQLite's write lock now, so the checks below read
                // what no other writer can change before this commit ends.
                txn.execute_unprepared("UPDATE plugin_kv SET version = version WHERE 0 = 1")
                    .await?;
            }
            for (key, expected) in checks {
                let row = plugin_kv::Entity::find_by_id((plugin.to_owned(), key.clone()))
                    .one(&txn)
                    .await?;
                if row.map(|r| r.value) != *expected {
                    return Ok(false);
                }
            }
            for (key, value) in writes {
                match value {
                    Some(v) => {
                        let stmt = upsert(backend, plugin, key, v)
                            .map_err(|e| DbErr::Custom(e.to_string()))?;
                        txn.execute(stmt).await?;
                    }
                    None => {
                        plugin_kv::Entity::delete_by_id((plugin.to_owned(), key.clone()))
                            .exec(&txn)
                            .await?;
                    }
                }
            }
            Ok::<bool, DbErr>(true)
        };
        match run.await {
            Ok(true) => match txn.commit().await {
                Ok(()) => Ok(true),
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(e).ctx(context),
            },
            Ok(false) => {
                txn.rollback().await.ctx(context)?;
                Ok(false)
            }
            Err(e) => {
                let _ = txn.rollback().await;
                if is_conflict(&e) {
                    Ok(false)
                } else {
                    Err(e).ctx(context)
                }
            }
        }
    }
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
        let deleted = plugin_kv::Entity::delete_by_id((plugin.to_owned(), key.to_owned()))
            .exec(&self.db)
            .await
            .ctx(|| format!("deleting key {key:?} of plugin {plugin:?}"))?;
        Ok(deleted.rows_affected > 0)
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
    /// Returns `true` if the condition held and the write happened. Each case is a single
    /// conditional statement (`INSERT .. ON CONFLICT DO NOTHING`, `UPDATE .. WHERE value = ?`,
    /// `DELETE .. WHERE value = ?`) whose affected-row count decides the answer, which is
    /// atomic on both backends. (`None` → `None` only checks that the key is absent.)
    pub async fn kv_compare_and_swap(
        &self,
        plugin: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        use plugin_kv::Column as C;
        check_plugin(plugin)?;
        check_key("key", key)?;
        let context = || format!("compare-and-swap of key {key:?} of plugin {plugin:?}");
        let this_key = || C::Plugin.eq(plugin).and(C::Key.eq(key));
        let affected = match (expected, new) {
            (None, None) => {
                let existing = plugin_kv::Entity::find()
                    .filter(this_key())
                    .one(&self.db)
                    .await
                    .ctx(context)?;
                return Ok(existing.is_none());
            }
            (None, Some(new)) => {
                let mut insert = Query::insert();
                insert
                    .into_table(plugin_kv::Entity)
                    .columns([C::Plugin, C::Key, C::Value, C::Version])
                    .values([plugin.into(), key.into(), new.to_vec().into(), 1i64.into()])
                    .map_err(|e| StorageError::Internal(format!("{}: {e}", context())))?
                    .on_conflict(
                        OnConflict::columns([C::Plugin, C::Key])
                            .do_nothing()
                            .to_owned(),
                    );
                let stmt = self.db.get_database_backend().build(&insert);
                self.db.execute(stmt).await.ctx(context)?.rows_affected()
            }
            (Some(expected), Some(new)) => {
                plugin_kv::Entity::update_many()
                    .col_expr(C::Value, Expr::value(new.to_vec()))
                    .col_expr(C::Version, Expr::col(C::Version).add(1))
                    .filter(this_key())
                    .filter(C::Value.eq(expected.to_vec()))
                    .exec(&self.db)
                    .await
                    .ctx(context)?
                    .rows_affected
            }
            (Some(expected), None) => {
                plugin_kv::Entity::delete_many()
                    .filter(this_key())
                    .filter(C::Value.eq(expected.to_vec()))
                    .exec(&self.db)
                    .await
                    .ctx(context)?
                    .rows_affected
            }
        };
        Ok(affected == 1)
    }

    /// Bytes used by `plugin`: the sum of the UTF-8 lengths of its keys and the lengths of its
    /// values (what a quota should count; database overhead is not included).
    pub async fn kv_usage_bytes(&self, plugin: &str) -> Result<u64, StorageError> {
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
        let context = || format!("measuring the key-value usage of plugin {plugin:?}");
        let row = self
            .db
            .query_one(backend.build(&query))
            .await
            .ctx(context)?;
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
