//! Plugin key-value storage.

use std::collections::BTreeMap;

use anyhow::Result;
use switchboard_storage::{Storage, StorageError};

use crate::support::{Kind, TestDb};

pub async fn kv_basics(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    assert_eq!(db.kv_get("p", "k").await?, None);
    db.kv_set("p", "k", b"one").await?;
    assert_eq!(db.kv_get("p", "k").await?.as_deref(), Some(&b"one"[..]));
    db.kv_set("p", "k", b"two").await?;
    assert_eq!(db.kv_get("p", "k").await?.as_deref(), Some(&b"two"[..]));

    // Namespaces are separate.
    assert_eq!(db.kv_get("q", "k").await?, None);
    db.kv_set("q", "k", b"other").await?;
    assert_eq!(db.kv_get("p", "k").await?.as_deref(), Some(&b"two"[..]));

    // Arbitrary bytes, an empty value (which is not "missing"), the empty key, odd keys.
    let binary: Vec<u8> = (0..=255).collect();
    db.kv_set("p", "bin", &binary).await?;
    assert_eq!(db.kv_get("p", "bin").await?, Some(binary));
    db.kv_set("p", "empty", b"").await?;
    assert_eq!(db.kv_get("p", "empty").await?, Some(Vec::new()));
    db.kv_set("p", "", b"root").await?;
    assert_eq!(db.kv_get("p", "").await?.as_deref(), Some(&b"root"[..]));
    db.kv_set("p", "weird 'quote\" é\u{1F600}\n", b"x").await?;
    assert_eq!(
        db.kv_get("p", "weird 'quote\" é\u{1F600}\n")
            .await?
            .as_deref(),
        Some(&b"x"[..])
    );

    assert!(db.kv_delete("p", "k").await?);
    assert!(!db.kv_delete("p", "k").await?);
    assert_eq!(db.kv_get("p", "k").await?, None);
    assert_eq!(db.kv_get("q", "k").await?.as_deref(), Some(&b"other"[..]));

    // Every write bumps the version.
    use switchboard_storage::entity::plugin_kv;
    use switchboard_storage::sea_orm::EntityTrait;
    db.kv_set("v", "k", b"1").await?;
    db.kv_set("v", "k", b"2").await?;
    assert!(
        db.kv_compare_and_swap("v", "k", Some(b"2"), Some(b"3"))
            .await?
    );
    let row = plugin_kv::Entity::find_by_id(("v".to_owned(), "k".to_owned()))
        .one(db.connection())
        .await?
        .expect("row");
    assert_eq!(row.version, 3);
    Ok(())
}

pub async fn kv_usage(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    assert_eq!(db.kv_usage_bytes("p").await?, 0);
    db.kv_set("p", "ab", b"xyz").await?; // 2 + 3
    db.kv_set("p", "é", &[0u8; 10]).await?; // 2 (UTF-8 bytes) + 10
    db.kv_set("p", "e", b"").await?; // 1 + 0
    db.kv_set("other", "zzzz", b"zzzz").await?;
    assert_eq!(db.kv_usage_bytes("p").await?, 18);
    assert_eq!(db.kv_usage_bytes("other").await?, 8);
    db.kv_set("p", "ab", b"x").await?;
    assert_eq!(db.kv_usage_bytes("p").await?, 16);
    db.kv_delete("p", "é").await?;
    assert_eq!(db.kv_usage_bytes("p").await?, 4);
    assert_eq!(db.kv_usage_bytes("nobody").await?, 0);
    Ok(())
}

async fn all_keys(db: &Storage, plugin: &str, prefix: &str, page: u32) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let batch = db.kv_scan(plugin, prefix, after.as_deref(), page).await?;
        assert!(batch.len() <= page as usize);
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.clone());
        keys.extend(batch.into_iter().map(|(k, _)| k));
    }
    Ok(keys)
}

pub async fn kv_scan_paging(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    for i in 0..25 {
        db.kv_set("p", &format!("item/{i:02}"), format!("v{i}").as_bytes())
            .await?;
    }
    db.kv_set("p", "item", b"bare").await?;
    db.kv_set("p", "item0", b"sibling").await?;
    db.kv_set("p", "iteM/x", b"case").await?;
    db.kv_set("q", "item/99", b"other plugin").await?;

    let first = db.kv_scan("p", "item/", None, 10).await?;
    assert_eq!(first.len(), 10);
    assert_eq!(first[0], ("item/00".to_owned(), b"v0".to_vec()));
    assert_eq!(first[9].0, "item/09");
    let second = db.kv_scan("p", "item/", Some("item/09"), 10).await?;
    assert_eq!(second.first().map(|(k, _)| k.as_str()), Some("item/10"));
    let third = db.kv_scan("p", "item/", Some("item/19"), 10).await?;
    assert_eq!(third.len(), 5);
    assert_eq!(third[4].0, "item/24");
    assert!(db
        .kv_scan("p", "item/", Some("item/24"), 10)
        .await?
        .is_empty());
    // `after` need not be an existing key.
    let from_mid = db.kv_scan("p", "item/", Some("item/15x"), 3).await?;
    let keys: Vec<&str> = from_mid.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["item/16", "item/17", "item/18"]);

    let expected: Vec<String> = (0..25).map(|i| format!("item/{i:02}")).collect();
    assert_eq!(all_keys(&db, "p", "item/", 7).await?, expected);
    assert_eq!(all_keys(&db, "p", "item/", 1).await?, expected);
    assert_eq!(all_keys(&db, "p", "", 100).await?.len(), 28);
    assert_eq!(
        all_keys(&db, "p", "item", 100).await?.len(),
        27,
        "case-sensitive prefix"
    );
    assert!(db.kv_scan("p", "item/", None, 0).await?.is_empty());
    assert!(db.kv_scan("p", "nothing", None, 10).await?.is_empty());
    Ok(())
}

pub async fn kv_scan_order_matches_rust(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    check_scan_order(&db).await
}

/// The same on a PostgreSQL database whose default collation is a natural-language one
/// (ICU en-US: "a" < "B", accents folded at the first level), where only the key column's
/// pinned "C" collation keeps the order bytewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kv_order_under_locale_aware_collation() -> Result<()> {
    let db = TestDb::postgres_with("LOCALE_PROVIDER icu ICU_LOCALE 'en-US'").await?;
    use switchboard_storage::sea_orm::{ConnectionTrait, DbBackend, Statement};
    let row = db
        .connection()
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            "SELECT ('a' < 'B')::int AS natural",
        ))
        .await?
        .expect("a row");
    let natural: i32 = row.try_get("", "natural")?;
    assert_eq!(
        natural, 1,
        "the database collation is not locale-aware; the test proves nothing"
    );
    check_scan_order(&db).await
}

async fn check_scan_order(db: &Storage) -> Result<()> {
    // Bytewise order, the same as Rust's `str` order, whatever the database's locale:
    // uppercase before lowercase, ASCII before other scripts, no accent folding, and LIKE
    // wildcards in prefixes have no special meaning.
    let keys = [
        "B",
        "a",
        "Z",
        "é",
        "e",
        "ab",
        "a\u{10FFFF}",
        "a%b",
        "a_b",
        "a%",
        "A",
        "\u{7F}",
        "aB",
        "a b",
        "z",
        "ä",
        "\u{FFFD}",
        "\u{10000}",
    ];
    let mut model = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        db.kv_set("p", key, &[i as u8]).await?;
        model.insert(key.to_string(), vec![i as u8]);
    }
    for prefix in ["", "a", "a%", "a_", "A", "é", "\u{10FFFF}", "zz"] {
        let expected: Vec<(String, Vec<u8>)> = model
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let got = db.kv_scan("p", prefix, None, 100).await?;
        assert_eq!(got, expected, "prefix {prefix:?}");
    }
    Ok(())
}

pub async fn kv_invalid_input(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    let err = db.kv_set("", "k", b"v").await.expect_err("empty plugin");
    assert_eq!(
        err.to_string(),
        "invalid plugin name \"\": it must not be empty"
    );
    let err = db.kv_set("p", "a\0b", b"v").await.expect_err("NUL in key");
    assert!(
        matches!(err, StorageError::InvalidInput { field: "key", .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "invalid key \"a\\0b\": it contains a NUL character"
    );
    let long = "k".repeat(1025);
    let err = db.kv_get("p", &long).await.expect_err("long key");
    assert!(
        err.to_string().ends_with("it is longer than 1024 bytes"),
        "{err}"
    );
    db.kv_set("p", &long[..1024], b"ok").await?;
    let err = db
        .kv_scan("p", "\0", None, 1)
        .await
        .expect_err("NUL in prefix");
    assert!(
        matches!(
            err,
            StorageError::InvalidInput {
                field: "key prefix",
                ..
            }
        ),
        "{err:?}"
    );
    let err = db
        .kv_compare_and_swap("p\n", "k", None, Some(b"v"))
        .await
        .expect_err("control char in plugin");
    assert!(
        matches!(
            err,
            StorageError::InvalidInput {
                field: "plugin name",
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

pub async fn kv_cas_semantics(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    let get = |key: &'static str| {
        let db = &db;
        async move { db.kv_get("p", key).await }
    };

    // expected None: must not exist.
    assert!(
        db.kv_compare_and_swap("p", "k", None, None).await?,
        "absent, stays absent"
    );
    assert!(db.kv_compare_and_swap("p", "k", None, Some(b"1")).await?);
    assert_eq!(get("k").await?.as_deref(), Some(&b"1"[..]));
    assert!(!db.kv_compare_and_swap("p", "k", None, Some(b"2")).await?);
    assert!(!db.kv_compare_and_swap("p", "k", None, None).await?);
    assert_eq!(get("k").await?.as_deref(), Some(&b"1"[..]));

    // expected Some: must have exactly that value.
    assert!(
        !db.kv_compare_and_swap("p", "k", Some(b"2"), Some(b"3"))
            .await?
    );
    assert!(
        !db.kv_compare_and_swap("p", "k", Some(b""), Some(b"3"))
            .await?
    );
    assert!(
        !db.kv_compare_and_swap("p", "k", Some(b"1\0"), Some(b"3"))
            .await?
    );
    assert_eq!(get("k").await?.as_deref(), Some(&b"1"[..]));
    assert!(
        db.kv_compare_and_swap("p", "k", Some(b"1"), Some(b"2"))
            .await?
    );
    assert_eq!(get("k").await?.as_deref(), Some(&b"2"[..]));
    // Swapping to the same value still counts.
    assert!(
        db.kv_compare_and_swap("p", "k", Some(b"2"), Some(b"2"))
            .await?
    );

    // new None: delete.
    assert!(!db.kv_compare_and_swap("p", "k", Some(b"1"), None).await?);
    assert_eq!(get("k").await?.as_deref(), Some(&b"2"[..]));
    assert!(db.kv_compare_and_swap("p", "k", Some(b"2"), None).await?);
    assert_eq!(get("k").await?, None);
    assert!(!db.kv_compare_and_swap("p", "k", Some(b"2"), None).await?);

    // Empty values are values.
    assert!(db.kv_compare_and_swap("p", "e", None, Some(b"")).await?);
    assert!(!db.kv_compare_and_swap("p", "e", None, Some(b"x")).await?);
    assert!(
        db.kv_compare_and_swap("p", "e", Some(b""), Some(b"x"))
            .await?
    );

    // Other plugins' keys of the same name are not affected.
    db.kv_set("q", "k", b"q").await?;
    assert!(db.kv_compare_and_swap("p", "k", None, Some(b"p")).await?);
    assert!(!db.kv_compare_and_swap("p", "k", Some(b"q"), None).await?);
    assert_eq!(db.kv_get("q", "k").await?.as_deref(), Some(&b"q"[..]));
    Ok(())
}

/// 20 tasks each add one to a counter with a read / compare-and-swap retry loop.
pub async fn kv_cas_concurrent_counter(kind: Kind) -> Result<()> {
    const TASKS: u64 = 20;
    let db = TestDb::new(kind).await?;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let storage = db.storage.clone();
        tasks.push(tokio::spawn(async move {
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                anyhow::ensure!(attempts < 10_000, "no progress");
                let current = storage.kv_get("counter", "n").await?;
                let n = match &current {
                    None => 0,
                    Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into()?),
                };
                let next = (n + 1).to_be_bytes();
                if storage
                    .kv_compare_and_swap("counter", "n", current.as_deref(), Some(&next))
                    .await?
                {
                    return anyhow::Ok(attempts);
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut attempts = 0;
    for task in tasks {
        attempts += task.await??;
    }
    let value = db.kv_get("counter", "n").await?.expect("counter exists");
    assert_eq!(u64::from_be_bytes(value.as_slice().try_into()?), TASKS);
    assert!(attempts >= TASKS as u32);
    Ok(())
}

/// 20 tasks race to create the same key; exactly one wins, and the value is the winner's.
pub async fn kv_cas_concurrent_create(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let storage = db.storage.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let won = storage
                .kv_compare_and_swap("lock", "owner", None, Some(&[i]))
                .await?;
            anyhow::Ok((i, won))
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, won) = task.await??;
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(db.kv_get("lock", "owner").await?, Some(vec![winners[0]]));
    Ok(())
}

pub async fn kv_commit_semantics(kind: Kind) -> Result<()> {
    let db = TestDb::new(kind).await?;
    let s = |v: &str| Some(v.as_bytes().to_vec());
    let k = |v: &str| v.to_string();
    // Checks hold: every write lands.
    assert!(
        db.kv_commit(
            "p",
            &[(k("n"), None)],
            &[(k("n"), s("1")), (k("a"), s("x"))]
        )
        .await?
    );
    assert_eq!(db.kv_get("p", "n").await?.as_deref(), Some(&b"1"[..]));
    assert_eq!(db.kv_get("p", "a").await?.as_deref(), Some(&b"x"[..]));
    // A failing check: nothing is written, not even the writes before it would have been.
    assert!(
        !db.kv_commit(
            "p",
            &[(k("a"), s("x")), (k("n"), s("9"))],
            &[(k("b"), s("y")), (k("a"), None)]
        )
        .await?
    );
    assert_eq!(db.kv_get("p", "b").await?, None);
    assert_eq!(db.kv_get("p", "a").await?.as_deref(), Some(&b"x"[..]));
    // Deletes and sets together; other plugins untouched.
    db.kv_set("q", "a", b"other").await?;
    assert!(
        db.kv_commit(
            "p",
            &[(k("n"), s("1"))],
            &[(k("a"), None), (k("n"), s("2"))]
        )
        .await?
    );
    assert_eq!(db.kv_get("p", "a").await?, None);
    assert_eq!(db.kv_get("q", "a").await?.as_deref(), Some(&b"other"[..]));
    // Bad keys are refused before anything runs.
    assert!(db
        .kv_commit("p", &[], &[(k("a\0b"), s("v"))])
        .await
        .is_err());
    Ok(())
}

/// Many writers append to one log through a counter key, retrying on conflict: no number is
/// lost or taken twice, on either backend.
pub async fn kv_commit_under_concurrency(kind: Kind) -> Result<()> {
    let db = std::sync::Arc::new(TestDb::new(kind).await?);
    let mut tasks = Vec::new();
    for w in 0..4u32 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..15u32 {
                loop {
                    let current = db.kv_get("log", "next").await?;
                    let n: u64 = current
                        .as_deref()
                        .map(|v| String::from_utf8_lossy(v).parse().unwrap_or(0))
                        .unwrap_or(0);
                    let entry = format!("{w}/{i}");
                    let committed = db
                        .kv_commit(
                            "log",
                            &[("next".into(), current.clone())],
                            &[
                                ("next".into(), Some((n + 1).to_string().into_bytes())),
                                (format!("entry/{n:06}"), Some(entry.into_bytes())),
                            ],
                        )
                        .await?;
                    if committed {
                        break;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    assert_eq!(db.kv_get("log", "next").await?.as_deref(), Some(&b"60"[..]));
    let entries = db.kv_scan("log", "entry/", None, 100).await?;
    assert_eq!(entries.len(), 60);
    for (i, (key, _)) in entries.iter().enumerate() {
        assert_eq!(key, &format!("entry/{i:06}"));
    }
    let mut seen: Vec<Vec<u8>> = entries.into_iter().map(|(_, v)| v).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 60, "every writer's entry exactly once");
    Ok(())
}

/// A database written before the usage counters existed gets them filled from its rows by the
/// migration, and they then move with every write.
pub async fn kv_usage_migration_counts_existing_rows(kind: Kind) -> Result<()> {
    use sea_orm_migration::MigratorTrait;
    use switchboard_storage::migration::Migrator;
    use switchboard_storage::sea_orm::{ConnectionTrait, Statement};
    let db = TestDb::unmigrated(kind).await?;
    Migrator::up(db.connection(), Some(1)).await?;
    let backend = db.connection().get_database_backend();
    for (plugin, key, value) in [
        ("p", "ab", &b"xyz"[..]),
        ("p", "\u{e9}", &[0u8; 10][..]),
        ("q", "zzzz", &b"zzzz"[..]),
    ] {
        let sql = match kind {
            Kind::Sqlite => {
                "INSERT INTO plugin_kv (plugin, key, value, version) VALUES (?, ?, ?, 1)"
            }
            Kind::Postgres => {
                "INSERT INTO plugin_kv (plugin, key, value, version) VALUES ($1, $2, $3, 1)"
            }
        };
        db.connection()
            .execute(Statement::from_sql_and_values(
                backend,
                sql,
                [plugin.into(), key.into(), value.to_vec().into()],
            ))
            .await?;
    }
    db.migrate().await?;
    assert_eq!(db.kv_usage_bytes("p").await?, 2 + 3 + 2 + 10);
    assert_eq!(db.kv_usage_bytes("q").await?, 8);
    db.kv_set("p", "ab", b"").await?;
    assert_eq!(db.kv_usage_bytes("p").await?, 2 + 2 + 10);
    assert_eq!(db.kv_usage_recount("p").await?, 2 + 2 + 10);
    Ok(())
}

/// Many writers commit, set, swap and delete at once (on different and on shared keys): the
/// usage counter always equals a recount of the data.
pub async fn kv_usage_exact_under_concurrency(kind: Kind) -> Result<()> {
    let db = std::sync::Arc::new(TestDb::new(kind).await?);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(6));
    let mut tasks = Vec::new();
    for w in 0..6u32 {
        let db = db.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            for i in 0..20u32 {
                let size = ((w * 31 + i * 17) % 50) as usize;
                let value = vec![w as u8; size];
                match (w + i) % 4 {
                    0 => {
                        // A message-like commit: an item, a shared counter, a change-log entry.
                        loop {
                            let current = db.kv_get("store", "counter").await?;
                            let n: u64 = current
                                .as_deref()
                                .map(|v| String::from_utf8_lossy(v).parse().unwrap_or(0))
                                .unwrap_or(0);
                            if db
                                .kv_commit(
                                    "store",
                                    &[("counter".into(), current.clone())],
                                    &[
                                        ("counter".into(), Some((n + 1).to_string().into_bytes())),
                                        (format!("item/{w}/{i}"), Some(value.clone())),
                                        (format!("log/{n:08}"), Some(vec![1; size / 2])),
                                        (format!("item/{w}/{}", i.saturating_sub(2)), None),
                                    ],
                                )
                                .await?
                            {
                                break;
                            }
                        }
                    }
                    1 => {
                        db.kv_set("store", &format!("shared/{}", i % 3), &value)
                            .await?
                    }
                    2 => {
                        let key = format!("shared/{}", i % 3);
                        let current = db.kv_get("store", &key).await?;
                        db.kv_compare_and_swap("store", &key, current.as_deref(), Some(&value))
                            .await?;
                    }
                    _ => {
                        db.kv_delete("store", &format!("shared/{}", (i + 1) % 3))
                            .await?;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let counted = db.kv_usage_recount("store").await?;
    assert!(counted > 0);
    assert_eq!(db.kv_usage_bytes("store").await?, counted);
    // Emptying the namespace brings the counter back to zero exactly.
    let keys: Vec<String> = db
        .kv_scan("store", "", None, 10_000)
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for k in keys {
        db.kv_delete("store", &k).await?;
    }
    assert_eq!(db.kv_usage_bytes("store").await?, 0);
    Ok(())
}
