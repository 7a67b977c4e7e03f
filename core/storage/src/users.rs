//! Users: accounts named by their address `local@domain`, with an argon2id password hash.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait};
use sea_orm::{QueryFilter, QueryOrder, TransactionTrait};
use serde::Serialize;

use crate::directory_users::DIRECTORY_PASSWORD_HASH;
use crate::entity::user;
use crate::error::{is_foreign_key_violation, is_unique_violation, DbResultExt};
use crate::password::{self, PasswordCheck};
use crate::sip_credentials::{credentials_for, put_credentials};
use crate::validate::{self, Address};
use crate::{time, Storage, StorageError};

/// Longest accepted display name, in bytes.
const MAX_DISPLAY_NAME: usize = 256;

/// A user account. Never carries the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Database identifier.
    pub id: i64,
    /// Lowercased `local@domain`.
    pub address: String,
    /// The domain part of the address.
    pub domain: String,
    /// Optional human-readable name.
    pub display_name: Option<String>,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// When the user was added (UTC).
    pub created_at: DateTime<Utc>,
}

impl From<user::Model> for User {
    fn from(m: user::Model) -> Self {
        let domain = m
            .address
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();
        User {
            id: m.id,
            address: m.address,
            domain,
            display_name: m.display_name,
            disabled: m.disabled,
            created_at: m.created_at,
        }
    }
}

fn require_password(address: &Address, password: &str) -> Result<(), StorageError> {
    if password.is_empty() {
        return Err(StorageError::EmptyPassword {
            address: address.full.clone(),
        });
    }
    Ok(())
}

impl Storage {
    /// Adds a user. The address is lowercased and validated; its domain must already exist.
    /// The password (which must not be empty) is stored as an argon2id hash, and SIP digest
    /// credentials are stored for the realm named like the domain (see
    /// [`sip_ha1`](Self::sip_ha1)). An empty display name counts as none.
    pub async fn add_user(
        &self,
        address: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<User, StorageError> {
        let addr = validate::address(address)?;
        require_password(&addr, password)?;
        if let Some(name) = display_name {
            validate::text("display name", name, MAX_DISPLAY_NAME, true)?;
        }
        let display_name = display_name.filter(|n| !n.is_empty()).map(str::to_owned);
        let domain =
            self.domain_model(&addr.domain)
                .await?
                .ok_or_else(|| StorageError::DomainNotFound {
                    name: addr.domain.clone(),
                })?;
        // Cheap check before spending CPU on the hash; the unique index decides in the end.
        if self.user_model(&addr.full).await?.is_some() {
            return Err(StorageError::UserExists { address: addr.full });
        }
        let hash = password::hash(&addr.full, password).await?;
        let credentials = credentials_for(&addr, &addr.domain, password);
        let now = time::now();

        let txn = self
            .db
            .begin()
            .await
            .ctx(|| format!("adding user {:?}", addr.full))?;
        let row = user::ActiveModel {
            domain_id: Set(domain.id),
            address: Set(addr.full.clone()),
            password_hash: Set(hash),
            display_name: Set(display_name),
            disabled: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let inserted = match row.insert(&txn).await {
            Ok(m) => m,
            Err(e) if is_unique_violation(&e) => {
                return Err(StorageError::UserExists { address: addr.full })
            }
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(StorageError::DomainNotFound { name: addr.domain })
            }
            Err(e) => return Err(e).ctx(|| format!("adding user {:?}", addr.full)),
        };
        put_credentials(&txn, inserted.id, &addr, credentials, true, now).await?;
        txn.commit()
            .await
            .ctx(|| format!("adding user {:?}", addr.full))?;
        tracing::debug!(address = %addr.full, "user added");
        Ok(inserted.into())
    }

    /// Users sorted by address, all of them or those of one domain (which must exist).
    pub async fn list_users(&self, domain: Option<&str>) -> Result<Vec<User>, StorageError> {
        let mut query = user::Entity::find().order_by_asc(user::Column::Address);
        if let Some(name) = domain {
            let name = validate::domain_name(name)?;
            let domain = self
                .domain_model(&name)
                .await?
                .ok_or(StorageError::DomainNotFound { name })?;
            query = query.filter(user::Column::DomainId.eq(domain.id));
        }
        let rows = query
            .all(&self.db)
            .await
            .ctx(|| "listing users".to_owned())?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Looks a user up by address (case-insensitive). A malformed address simply does not
    /// exist, so this can be called with untrusted input.
    pub async fn user(&self, address: &str) -> Result<Option<User>, StorageError> {
        let Ok(addr) = validate::address(address) else {
            return Ok(None);
        };
        Ok(self.user_model(&addr.full).await?.map(User::from))
    }

    /// How many users there are in total.
    pub async fn count_users(&self) -> Result<u64, StorageError> {
        user::Entity::find()
            .count(&self.db)
            .await
            .ctx(|| "counting users".to_owned())
    }

    /// Replaces a user's password (which must not be empty). The SIP digest credentials of
    /// every realm the user has credentials for are recomputed from the new password, so the
    /// old password stops working everywhere.
    pub async fn set_password(&self, address: &str, password: &str) -> Result<(), StorageError> {
        let addr = validate::address(address)?;
        require_password(&addr, password)?;
        let user = self.require_user(&addr).await?;
        let mut realms = self.sip_realms_of(user.id, &addr).await?;
        realms.insert(addr.domain.clone());
        let hash = password::hash(&addr.full, password).await?;
        let now = time::now();

        let txn = self
            .db
            .begin()
            .await
            .ctx(|| format!("changing the password of {:?}", addr.full))?;
        let updated = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(hash))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(user.id))
            .exec(&txn)
            .await
            .ctx(|| format!("changing the password of {:?}", addr.full))?;
        if updated.rows_affected == 0 {
            return Err(StorageError::UserNotFound { address: addr.full });
        }
        for realm in realms {
            let take_over = realm == addr.domain;
            let credentials = credentials_for(&addr, &realm, password);
            put_credentials(&txn, user.id, &addr, credentials, take_over, now).await?;
        }
        txn.commit()
            .await
            .ctx(|| format!("changing the password of {:?}", addr.full))?;
        Ok(())
    }

    /// Enables or disables a user. Disabled users fail [`verify_password`](Self::verify_password)
    /// and their SIP credentials are reported as disabled.
    pub async fn set_disabled(&self, address: &str, disabled: bool) -> Result<(), StorageError> {
        let addr = validate::address(address)?;
        let updated = user::Entity::update_many()
            .col_expr(user::Column::Disabled, Expr::value(disabled))
            .col_expr(user::Column::UpdatedAt, Expr::value(time::now()))
            .filter(user::Column::Address.eq(&addr.full))
            .exec(&self.db)
            .await
            .ctx(|| format!("updating user {:?}", addr.full))?;
        if updated.rows_affected == 0 {
            return Err(StorageError::UserNotFound { address: addr.full });
        }
        Ok(())
    }

    /// Removes a user together with their SIP credentials and devices. Returns `false` if
    /// there was no such user.
    pub async fn remove_user(&self, address: &str) -> Result<bool, StorageError> {
        let addr = validate::address(address)?;
        let deleted = user::Entity::delete_many()
            .filter(user::Column::Address.eq(&addr.full))
            .exec(&self.db)
            .await
            .ctx(|| format!("removing user {:?}", addr.full))?;
        Ok(deleted.rows_affected > 0)
    }

    /// Checks a login. The password is verified with argon2id; unknown (or malformed)
    /// addresses are verified against a fixed dummy hash first, so the time taken does not
    /// reveal whether the account exists. A disabled account reports
    /// [`PasswordCheck::Disabled`] only when the password is right (a wrong password is
    /// [`PasswordCheck::WrongPassword`] either way), so guessing does not reveal the state.
    pub async fn verify_password(
        &self,
        address: &str,
        password: &str,
    ) -> Result<PasswordCheck, StorageError> {
        let model = match validate::address(address) {
            Ok(addr) => self.user_model(&addr.full).await?,
            Err(_) => None,
        };
        // Directory users' passwords live in the directory: unknown here, ask the next source.
        let Some(model) = model.filter(|m| m.password_hash != DIRECTORY_PASSWORD_HASH) else {
            password::verify(address, password, None).await?;
            return Ok(PasswordCheck::UnknownUser);
        };
        let matched =
            password::verify(&model.address, password, Some(model.password_hash.clone())).await?;
        Ok(if !matched {
            PasswordCheck::WrongPassword
        } else if model.disabled {
            PasswordCheck::Disabled
        } else {
            PasswordCheck::Valid(model.into())
        })
    }

    /// The row of an already validated, lowercased address.
    pub(crate) async fn user_model(
        &self,
        address: &str,
    ) -> Result<Option<user::Model>, StorageError> {
        user::Entity::find()
            .filter(user::Column::Address.eq(address))
            .one(&self.db)
            .await
            .ctx(|| format!("looking up user {address:?}"))
    }

    /// Like [`user_model`](Self::user_model) but a missing user is an error.
    pub(crate) async fn require_user(&self, addr: &Address) -> Result<user::Model, StorageError> {
        self.user_model(&addr.full)
            .await?
            .ok_or_else(|| StorageError::UserNotFound {
                address: addr.full.clone(),
            })
    }
}
