//! The `users` table: accounts, identified by their address `local@domain`.

use sea_orm::entity::prelude::*;

/// One row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The domain the user belongs to.
    pub domain_id: i64,
    /// Lowercased `local@domain`, unique.
    #[sea_orm(unique)]
    pub address: String,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
    /// Optional human-readable name.
    pub display_name: Option<String>,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// When the user was added (UTC).
    pub created_at: DateTimeUtc,
    /// When the row last changed (UTC).
    pub updated_at: DateTimeUtc,
}

/// Relations of `users`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The user's domain.
    #[sea_orm(
        belongs_to = "super::domain::Entity",
        from = "Column::DomainId",
        to = "super::domain::Column::Id"
    )]
    Domain,
    /// The user's SIP digest credentials.
    #[sea_orm(has_many = "super::sip_credential::Entity")]
    SipCredential,
    /// The user's devices.
    #[sea_orm(has_many = "super::device::Entity")]
    Device,
}

impl Related<super::domain::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Domain.def()
    }
}

impl Related<super::sip_credential::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SipCredential.def()
    }
}

impl Related<super::device::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Device.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
