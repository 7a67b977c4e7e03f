//! Per-plugin key-value usage counters, so a quota check reads a few rows instead of summing
//! every row the plugin owns (a mail store holds millions).
//!
//! `plugin_kv_usage(plugin, shard, bytes)`: a plugin's usage is the sum of its shards. Every
//! write to `plugin_kv` adds its size change to one shard in the same transaction (see
//! `plugin_kv.rs`); on PostgreSQL the shard is picked at random so that concurrent writers
//! seldom touch the same counter row. The migration fills shard 0 from the rows already there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, string};
use sea_orm_migration::sea_orm::DbBackend;

/// Creates and fills `plugin_kv_usage`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PluginKvUsage {
    Table,
    Plugin,
    Shard,
    Bytes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        let mut plugin = string(PluginKvUsage::Plugin);
        if postgres {
            plugin.extra("COLLATE \"C\"");
        }
        manager
            .create_table(
                Table::create()
                    .table(PluginKvUsage::Table)
                    .col(plugin)
                    .col(integer(PluginKvUsage::Shard))
                    .col(big_integer(PluginKvUsage::Bytes))
                    .primary_key(
                        Index::create()
                            .name("pk_plugin_kv_usage")
                            .col(PluginKvUsage::Plugin)
                            .col(PluginKvUsage::Shard),
                    )
                    .to_owned(),
            )
            .await?;
        // Sizes are counted as the quota counts them: UTF-8 bytes of the key plus the value.
        let fill = if postgres {
            r#"INSERT INTO plugin_kv_usage (plugin, shard, bytes)
               SELECT plugin, 0, CAST(SUM(CAST(OCTET_LENGTH("key") AS BIGINT) + OCTET_LENGTH("value")) AS BIGINT)
               FROM plugin_kv GROUP BY plugin"#
        } else {
            r#"INSERT INTO plugin_kv_usage (plugin, shard, bytes)
               SELECT plugin, 0, SUM(LENGTH(CAST("key" AS BLOB)) + LENGTH("value"))
               FROM plugin_kv GROUP BY plugin"#
        };
        manager.get_connection().execute_unprepared(fill).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PluginKvUsage::Table).to_owned())
            .await
    }
}
