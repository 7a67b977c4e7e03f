//! The audit log: an append-only record of logins, administrative changes and other
//! security-relevant events.

use std::fmt;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use sea_orm::{QueryOrder, QuerySelect};
use serde::Serialize;

use crate::entity::audit_log;
use crate::error::DbResultExt;
use crate::{time, validate, Storage, StorageError};

/// Longest action name, in bytes.
const MAX_ACTION: usize = 128;
/// Actor, target and source are cut to this many characters.
const MAX_FIELD_CHARS: usize = 1024;
/// Longer detail text is stored shortened, as a JSON string.
const MAX_DETAIL_BYTES: usize = 64 * 1024;

/// How an audited operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// It succeeded.
    Ok,
    /// It was refused (bad credentials, missing permission, ...).
    Denied,
    /// It failed.
    Error,
}

impl AuditOutcome {
    /// The stored name: `ok`, `denied` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Error => "error",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<AuditOutcome> {
        match name {
            "ok" => Some(AuditOutcome::Ok),
            "denied" => Some(AuditOutcome::Denied),
            "error" => Some(AuditOutcome::Error),
            _ => None,
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event to append to the audit log with [`Storage::audit`]. Build it with
/// [`AuditEntry::new`] and the setters, or as a struct literal.
///
/// ```
/// use switchboard_storage::{AuditEntry, AuditOutcome};
/// let entry = AuditEntry::new("auth.failure", AuditOutcome::Denied)
///     .target("bob@example.com")
///     .source("192.0.2.7")
///     .detail(serde_json::json!({ "protocol": "sip" }));
/// assert_eq!(entry.outcome, "denied");
/// assert_eq!(entry.detail.as_deref(), Some(r#"{"protocol":"sip"}"#));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Who did it (a user address, `admin`, a plugin name, ...), if known.
    pub actor: Option<String>,
    /// What happened, e.g. `auth.failure` or `user.add` (must not be empty).
    pub action: String,
    /// What it happened to, if anything.
    pub target: Option<String>,
    /// Where it came from, e.g. the peer IP address.
    pub source: Option<String>,
    /// How it ended: `ok`, `denied` or `error` (see [`AuditOutcome`]); anything else is
    /// refused by [`Storage::audit`].
    pub outcome: String,
    /// Extra structured detail as JSON text. Text that is not valid JSON is stored as a JSON
    /// string rather than refused, so the entry is never lost.
    pub detail: Option<String>,
}

impl AuditEntry {
    /// An entry with just an action and an outcome.
    pub fn new(action: impl Into<String>, outcome: AuditOutcome) -> AuditEntry {
        AuditEntry {
            actor: None,
            action: action.into(),
            target: None,
            source: None,
            outcome: outcome.as_str().to_owned(),
            detail: None,
        }
    }

    /// Sets the actor.
    pub fn actor(mut self, actor: impl Into<String>) -> AuditEntry {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> AuditEntry {
        self.target = Some(target.into());
        self
    }

    /// Sets the source.
    pub fn source(mut self, source: impl Into<String>) -> AuditEntry {
        self.source = Some(source.into());
        self
    }

    /// Sets the detail from a JSON value.
    pub fn detail(mut self, detail: serde_json::Value) -> AuditEntry {
        self.detail = Some(detail.to_string());
        self
    }
}

/// A stored audit-log entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Increasing identifier (insertion order).
    pub id: i64,
    /// When it was recorded (UTC).
    pub at: DateTime<Utc>,
    /// Who did it, if known.
    pub actor: Option<String>,
    /// What happened.
    pub action: String,
    /// What it happened to, if anything.
    pub target: Option<String>,
    /// Where it came from, if known.
    pub source: Option<String>,
    /// How it ended: `ok`, `denied` or `error`.
    pub outcome: String,
    /// Extra structured detail, parsed (so an admin API can return it as JSON). Stored text
    /// that is not valid JSON (edited by hand) is returned as a JSON string.
    pub detail: Option<serde_json::Value>,
}

/// Audit fields often carry attacker-chosen text (a username from a failed login): rather than
/// refusing the entry, overlong values are cut and NUL (unstorable in PostgreSQL text) is
/// replaced.
fn sanitize(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|v| {
        v.chars()
            .take(MAX_FIELD_CHARS)
            .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
            .collect()
    })
}

impl Storage {
    /// Appends an entry to the audit log, stamped with the current time.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StorageError> {
        validate::text("audit action", &entry.action, MAX_ACTION, false)?;
        let outcome =
            AuditOutcome::from_name(&entry.outcome).ok_or_else(|| StorageError::InvalidInput {
                field: "audit outcome",
                value: validate::shorten(&entry.outcome),
                reason: "expected \"ok\", \"denied\" or \"error\"".to_owned(),
            })?;
        let detail = entry.detail.as_deref().map(json_detail);
        let row = audit_log::ActiveModel {
            at: Set(time::now()),
            actor: Set(sanitize(&entry.actor)),
            action: Set(entry.action.clone()),
            target: Set(sanitize(&entry.target)),
            source: Set(sanitize(&entry.source)),
            outcome: Set(outcome.as_str().to_owned()),
            detail: Set(detail),
            ..Default::default()
        };
        row.insert(&self.db)
            .await
            .ctx(|| format!("writing audit entry {:?}", entry.action))?;
        Ok(())
    }

    /// The `limit` most recent entries, newest first.
    pub async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StorageError> {
        let rows = audit_log::Entity::find()
            .order_by_desc(audit_log::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .ctx(|| "reading the audit log".to_owned())?;
        Ok(rows.into_iter().map(to_record).collect())
    }

    /// Deletes entries recorded before `before`. Returns how many were deleted.
    pub async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let deleted = audit_log::Entity::delete_many()
            .filter(audit_log::Column::At.lt(before))
            .exec(&self.db)
            .await
            .ctx(|| format!("pruning audit entries before {before}"))?;
        Ok(deleted.rows_affected)
    }
}

/// The detail text to store: valid JSON as it is, anything else (or anything overlong) as a
/// JSON string, so the column always holds JSON and the entry is never refused.
fn json_detail(text: &str) -> String {
    if text.len() <= MAX_DETAIL_BYTES && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_DETAIL_BYTES / 4).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    serde_json::Value::String(cut).to_string()
}

fn to_record(m: audit_log::Model) -> AuditRecord {
    let detail = m
        .detail
        .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
    AuditRecord {
        id: m.id,
        at: m.at,
        actor: m.actor,
        action: m.action,
        target: m.target,
        source: m.source,
        outcome: m.outcome,
        detail,
    }
}
