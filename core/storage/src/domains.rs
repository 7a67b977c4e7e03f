//! Domains: the DNS names this server hosts users for.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait};
use sea_orm::{QueryFilter, QueryOrder};
use serde::Serialize;

use crate::entity::{domain, user};
use crate::error::{is_foreign_key_violation, is_unique_violation, DbResultExt};
use crate::{time, validate, Storage, StorageError};

/// A hosted domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Domain {
    /// Database identifier.
    pub id: i64,
    /// Lowercased DNS name.
    pub name: String,
    /// When it was added (UTC).
    pub created_at: DateTime<Utc>,
}

impl From<domain::Model> for Domain {
    fn from(m: domain::Model) -> Self {
        Domain {
            id: m.id,
            name: m.name,
            created_at: m.created_at,
        }
    }
}

impl Storage {
    /// Adds a domain. The name is lowercased and must be a DNS name (letters, digits, hyphens
    /// and dots; at most 253 characters). Fails with [`StorageError::DomainExists`] if it is
    /// already there.
    pub async fn add_domain(&self, name: &str) -> Result<Domain, StorageError> {
        let name = validate::domain_name(name)?;
        let row = domain::ActiveModel {
            name: Set(name.clone()),
            created_at: Set(time::now()),
            ..Default::default()
        };
        match row.insert(&self.db).await {
            Ok(m) => Ok(m.into()),
            Err(e) if is_unique_violation(&e) => Err(StorageError::DomainExists { name }),
            Err(e) => Err(e).ctx(|| format!("adding domain {name:?}")),
        }
    }

    /// All domains, sorted by name.
    pub async fn list_domains(&self) -> Result<Vec<Domain>, StorageError> {
        let rows = domain::Entity::find()
            .order_by_asc(domain::Column::Name)
            .all(&self.db)
            .await
            .ctx(|| "listing domains".to_owned())?;
        Ok(rows.into_iter().map(Domain::from).collect())
    }

    /// Looks a domain up by name (case-insensitive). A name that is not a valid domain name
    /// simply does not exist, so this can be called with untrusted input (a request's host).
    pub async fn domain(&self, name: &str) -> Result<Option<Domain>, StorageError> {
        let Ok(name) = validate::domain_name(name) else {
            return Ok(None);
        };
        Ok(self.domain_model(&name).await?.map(Domain::from))
    }

    /// Removes a domain that has no users. Returns `false` if there was no such domain and
    /// fails with [`StorageError::DomainNotEmpty`] while it still has users.
    pub async fn remove_domain(&self, name: &str) -> Result<bool, StorageError> {
        let name = validate::domain_name(name)?;
        let Some(domain) = self.domain_model(&name).await? else {
            return Ok(false);
        };
        let not_empty = |users| StorageError::DomainNotEmpty {
            name: name.clone(),
            users,
        };
        let users = user::Entity::find()
            .filter(user::Column::DomainId.eq(domain.id))
            .count(&self.db)
            .await
            .ctx(|| format!("counting the users of domain {name:?}"))?;
        if users > 0 {
            return Err(not_empty(users));
        }
        match domain::Entity::delete_by_id(domain.id).exec(&self.db).await {
            Ok(r) => Ok(r.rows_affected > 0),
            // A user was added between the count and the delete.
            Err(e) if is_foreign_key_violation(&e) => Err(not_empty(1)),
            Err(e) => Err(e).ctx(|| format!("removing domain {name:?}")),
        }
    }

    /// The row of an already validated, lowercased domain name.
    pub(crate) async fn domain_model(
        &self,
        name: &str,
    ) -> Result<Option<domain::Model>, StorageError> {
        domain::Entity::find()
            .filter(domain::Column::Name.eq(name))
            .one(&self.db)
            .await
            .ctx(|| format!("looking up domain {name:?}"))
    }
}
