//! The `plugin_kv` table: durable key-value data, namespaced per plugin.

use sea_orm::entity::prelude::*;

/// One row of `plugin_kv`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plugin_kv")]
pub struct Model {
    /// The owning plugin's name (first part of the primary key).
    #[sea_orm(primary_key, auto_increment = false)]
    pub plugin: String,
    /// The key (second part of the primary key). Compared bytewise on both backends.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// Starts at 1 and increases by one on every write of the key.
    pub version: i64,
}

/// `plugin_kv` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
