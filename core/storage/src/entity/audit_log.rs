//! The `audit_log` table: an append-only record of security-relevant events.

use sea_orm::entity::prelude::*;

/// One row of `audit_log`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Increasing identifier (insertion order).
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When the event was recorded (UTC).
    pub at: DateTimeUtc,
    /// Who did it (a user address, `admin`, a plugin name…), if known.
    pub actor: Option<String>,
    /// What happened, e.g. `auth.failure` or `user.add`.
    pub action: String,
    /// What it happened to, if anything.
    pub target: Option<String>,
    /// Where it came from, e.g. the peer IP address.
    pub source: Option<String>,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// Extra structured detail as JSON text.
    pub detail: Option<String>,
}

/// `audit_log` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
