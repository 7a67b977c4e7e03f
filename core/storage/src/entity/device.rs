//! The `devices` table: client devices (ActiveSync phones and similar) seen per user.

use sea_orm::entity::prelude::*;

/// One row of `devices`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The owning user.
    pub user_id: i64,
    /// Identifier chosen by the client; unique per user.
    pub device_id: String,
    /// Client-reported device type, e.g. `iPhone`.
    pub device_type: String,
    /// Client-reported user agent.
    pub user_agent: Option<String>,
    /// Protocol the device speaks, e.g. `activesync`.
    pub protocol: String,
    /// Provisioning policy key, once one was issued.
    pub policy_key: Option<String>,
    /// `none`, `requested` or `acknowledged`.
    pub wipe_state: String,
    /// First contact (UTC).
    pub first_seen: DateTimeUtc,
    /// Latest contact (UTC).
    pub last_seen: DateTimeUtc,
}

/// Relations of `devices`.
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
