//! The `sip_credentials` table: precomputed digest HA1 values per (realm, username, algorithm).

use sea_orm::entity::prelude::*;

/// One row of `sip_credentials`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sip_credentials")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The user the credential belongs to.
    pub user_id: i64,
    /// The digest realm (case-sensitive, as sent in challenges).
    pub realm: String,
    /// The digest username (lowercased): `local` or `local@domain`.
    pub username: String,
    /// `MD5` or `SHA-256` (RFC 7616 names).
    pub algorithm: String,
    /// Lowercase hex of H(username ":" realm ":" password).
    pub ha1: String,
    /// When the row last changed (UTC).
    pub updated_at: DateTimeUtc,
}

/// Relations of `sip_credentials`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The owning user.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
