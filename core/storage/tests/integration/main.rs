//! Integration tests of switchboard-storage against real databases.
//!
//! The shared suite (modules below) is written once, as `async fn case(kind: Kind)`, and run
//! against SQLite (a temporary file) and PostgreSQL (a fresh database on the test server, see
//! `support/pg.rs`) by the `both_backends!` macro, which generates `sqlite::<case>` and
//! `postgres::<case>` tests. Every test gets its own database, so they can run in parallel.

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod connect;
mod devices;
mod domains;
mod harness;
mod kv;
mod kv_model;
mod sip;
mod users;

/// Generates one test per backend for each listed `module::case`.
macro_rules! both_backends {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    crate::$module::$case(crate::support::Kind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    crate::$module::$case(crate::support::Kind::Postgres).await
                }
            )*
        }
    };
}

both_backends! {
    connect::migrations_apply_once,
    connect::ping_and_backend,
    domains::domain_crud,
    domains::domain_errors,
    users::user_crud,
    users::user_errors,
    users::user_serialization_has_no_hash,
    users::verify_password_outcomes,
    sip::sip_credentials_of_new_user,
    sip::sip_known_answer,
    sip::sip_extra_realms_and_password_change,
    sip::sip_shared_realm_conflicts,
    kv::kv_basics,
    kv::kv_usage,
    kv::kv_scan_paging,
    kv::kv_scan_order_matches_rust,
    kv::kv_invalid_input,
    kv::kv_cas_semantics,
    kv::kv_commit_semantics,
    kv::kv_commit_under_concurrency,
    kv::kv_cas_concurrent_counter,
    kv::kv_cas_concurrent_create,
    kv::kv_usage_migration_counts_existing_rows,
    kv::kv_usage_exact_under_concurrency,
    devices::device_lifecycle,
    devices::device_errors,
    audit::audit_append_and_recent,
    audit::audit_sanitizes_and_prunes,
}
