//! Schema migrations, one module per migration, applied in order by [`Migrator`].
//!
//! Migrations are written with the sea-orm-migration schema builder so the same code creates
//! the schema on SQLite and PostgreSQL. A migration, once released, is never edited: schema
//! changes get a new module `mYYYYMMDD_NNNNNN_what.rs` appended to [`Migrator::migrations`].
//! Applied migrations are recorded in the `seaql_migrations` table.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261122_000001_initial;
mod m20261130_000001_kv_usage;

/// The list of all migrations of this crate, in order.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261130_000001_kv_usage::Migration),
        ]
    }
}
