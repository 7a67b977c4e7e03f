//! The `domains` table: mail/SIP domains this server is authoritative for.

use sea_orm::entity::prelude::*;

/// One row of `domains`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "domains")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Lowercased DNS name, unique.
    #[sea_orm(unique)]
    pub name: String,
    /// When the domain was added (UTC).
    pub created_at: DateTimeUtc,
}

/// Relations of `domains`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The users of the domain.
    #[sea_orm(has_many = "super::user::Entity")]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
