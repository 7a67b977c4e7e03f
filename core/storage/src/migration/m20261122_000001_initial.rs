//! The initial schema: domains, users, SIP credentials, devices, plugin key-value data and the
//! audit log.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, blob, boolean, string, string_null, text_null, timestamp_with_time_zone,
};
use sea_orm_migration::sea_orm::DbBackend;

/// Creates the initial schema.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    DomainId,
    Address,
    PasswordHash,
    DisplayName,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SipCredentials {
    Table,
    Id,
    UserId,
    Realm,
    Username,
    Algorithm,
    Ha1,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    UserId,
    DeviceId,
    DeviceType,
    UserAgent,
    Protocol,
    PolicyKey,
    WipeState,
    FirstSeen,
    LastSeen,
}

#[derive(DeriveIden)]
enum PluginKv {
    Table,
    Plugin,
    Key,
    Value,
    Version,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    Target,
    Source,
    Outcome,
    Detail,
}

/// A `BIGINT` auto-increment primary key (`INTEGER PRIMARY KEY AUTOINCREMENT` on SQLite,
/// `BIGSERIAL` on PostgreSQL).
fn id<T: IntoIden>(name: T) -> ColumnDef {
    big_integer(name).auto_increment().primary_key().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == DbBackend::Postgres;

        manager
            .create_table(
                Table::create()
                    .table(Domains::Table)
                    .col(id(Domains::Id))
                    .col(string(Domains::Name).unique_key())
                    .col(timestamp_with_time_zone(Domains::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(id(Users::Id))
                    .col(big_integer(Users::DomainId))
                    .col(string(Users::Address).unique_key())
                    .col(string(Users::PasswordHash))
                    .col(string_null(Users::DisplayName))
                    .col(boolean(Users::Disabled).default(false))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_users_domain")
                            .from(Users::Table, Users::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Restrict)
                            .on_update(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_domain_id")
                    .table(Users::Table)
                    .col(Users::DomainId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SipCredentials::Table)
                    .col(id(SipCredentials::Id))
                    .col(big_integer(SipCredentials::UserId))
                    .col(string(SipCredentials::Realm))
                    .col(string(SipCredentials::Username))
                    .col(string(SipCredentials::Algorithm))
                    .col(string(SipCredentials::Ha1))
                    .col(timestamp_with_time_zone(SipCredentials::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sip_credentials_user")
                            .from(SipCredentials::Table, SipCredentials::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sip_credentials_realm_username_algorithm")
                    .table(SipCredentials::Table)
                    .col(SipCredentials::Realm)
                    .col(SipCredentials::Username)
                    .col(SipCredentials::Algorithm)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sip_credentials_user_id")
                    .table(SipCredentials::Table)
                    .col(SipCredentials::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(id(Devices::Id))
                    .col(big_integer(Devices::UserId))
                    .col(string(Devices::DeviceId))
                    .col(string(Devices::DeviceType))
                    .col(string_null(Devices::UserAgent))
                    .col(string(Devices::Protocol))
                    .col(string_null(Devices::PolicyKey))
                    .col(string(Devices::WipeState).default("none"))
                    .col(timestamp_with_time_zone(Devices::FirstSeen))
                    .col(timestamp_with_time_zone(Devices::LastSeen))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_devices_user")
                            .from(Devices::Table, Devices::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_devices_user_id_device_id")
                    .table(Devices::Table)
                    .col(Devices::UserId)
                    .col(Devices::DeviceId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // Keys are ordered and range-scanned; they must compare bytewise (like Rust strings) on
        // both backends. SQLite's default BINARY collation does; on PostgreSQL the database
        // collation may be locale-aware, so the key columns are pinned to "C".
        let mut plugin = string(PluginKv::Plugin);
        let mut key = string(PluginKv::Key);
        if postgres {
            plugin.extra("COLLATE \"C\"");
            key.extra("COLLATE \"C\"");
        }
        manager
            .create_table(
                Table::create()
                    .table(PluginKv::Table)
                    .col(plugin)
                    .col(key)
                    .col(blob(PluginKv::Value))
                    .col(big_integer(PluginKv::Version))
                    .primary_key(
                        Index::create()
                            .name("pk_plugin_kv")
                            .col(PluginKv::Plugin)
                            .col(PluginKv::Key),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(id(AuditLog::Id))
                    .col(timestamp_with_time_zone(AuditLog::At))
                    .col(string_null(AuditLog::Actor))
                    .col(string(AuditLog::Action))
                    .col(string_null(AuditLog::Target))
                    .col(string_null(AuditLog::Source))
                    .col(string(AuditLog::Outcome))
                    .col(text_null(AuditLog::Detail))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_at")
                    .table(AuditLog::Table)
                    .col(AuditLog::At)
                    .to_owned(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PluginKv::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Devices::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SipCredentials::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Domains::Table).to_owned())
            .await?;
        Ok(())
    }
}
