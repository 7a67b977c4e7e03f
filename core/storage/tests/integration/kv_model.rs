//! Property test: random sequences of key-value operations behave exactly like a `BTreeMap`.
//! Runs on SQLite (32 cases); each case uses its own plugin namespace in one database.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::support::{Kind, TestDb};

#[derive(Debug, Clone)]
enum Op {
    Get(String),
    Set(String, Vec<u8>),
    Delete(String),
    Cas(String, Option<Vec<u8>>, Option<Vec<u8>>),
    Scan(String, Option<String>, u32),
    Usage,
}

/// Keys from a small alphabet (so operations collide), including multi-byte characters.
fn key() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just('a'), Just('b'), Just('B'), Just('é'), Just('/')],
        0..4,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Small values, so compare-and-swap expectations sometimes match.
fn value() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0u8..3, 0..3)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => key().prop_map(Op::Get),
        3 => (key(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        1 => key().prop_map(Op::Delete),
        3 => (key(), proptest::option::of(value()), proptest::option::of(value()))
            .prop_map(|(k, e, n)| Op::Cas(k, e, n)),
        2 => (key(), proptest::option::of(key()), 0u32..5).prop_map(|(p, a, l)| Op::Scan(p, a, l)),
        1 => Just(Op::Usage),
    ]
}

fn model_scan(
    model: &BTreeMap<String, Vec<u8>>,
    prefix: &str,
    after: Option<&str>,
    limit: u32,
) -> Vec<(String, Vec<u8>)> {
    model
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
        .take(limit as usize)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn kv_behaves_like_a_btreemap() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let db = rt.block_on(TestDb::new(Kind::Sqlite))?;
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let plugin = format!("model{n}");
        rt.block_on(async {
            let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for op in &ops {
                let fail = |e: switchboard_storage::StorageError| {
                    TestCaseError::fail(format!("{op:?}: {e}"))
                };
                match op {
                    Op::Get(k) => {
                        let got = db.kv_get(&plugin, k).await.map_err(fail)?;
                        prop_assert_eq!(got.as_ref(), model.get(k), "{:?}", op);
                    }
                    Op::Set(k, v) => {
                        db.kv_set(&plugin, k, v).await.map_err(fail)?;
                        model.insert(k.clone(), v.clone());
                    }
                    Op::Delete(k) => {
                        let existed = db.kv_delete(&plugin, k).await.map_err(fail)?;
                        prop_assert_eq!(existed, model.remove(k).is_some(), "{:?}", op);
                    }
                    Op::Cas(k, expected, new) => {
                        let swapped = db
                            .kv_compare_and_swap(&plugin, k, expected.as_deref(), new.as_deref())
                            .await
                            .map_err(fail)?;
                        let should = model.get(k) == expected.as_ref();
                        prop_assert_eq!(swapped, should, "{:?}", op);
                        if should {
                            match new {
                                Some(v) => model.insert(k.clone(), v.clone()),
                                None => model.remove(k),
                            };
                        }
                    }
                    Op::Scan(prefix, after, limit) => {
                        let got = db
                            .kv_scan(&plugin, prefix, after.as_deref(), *limit)
                            .await
                            .map_err(fail)?;
                        prop_assert_eq!(
                            got,
                            model_scan(&model, prefix, after.as_deref(), *limit),
                            "{:?}",
                            op
                        );
                    }
                    Op::Usage => {
                        let got = db.kv_usage_bytes(&plugin).await.map_err(fail)?;
                        let expected: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
                        prop_assert_eq!(got, expected as u64, "{:?}", op);
                    }
                }
            }
            let everything = db
                .kv_scan(&plugin, "", None, 1000)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(everything, model_scan(&model, "", None, 1000));
            Ok(())
        })
    });
    result.map_err(|e| anyhow::anyhow!("{e}"))
}
