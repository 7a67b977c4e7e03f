//! Users whose password lives in a directory (LDAP), as far as the database knows them.
//!
//! SIP Digest needs HA1 = H(username ":" realm ":" password) per realm, which a directory
//! cannot give (it stores its own hashes, or none we may read). So whenever a directory
//! confirms a user's password (an HTTP Basic login: ActiveSync, Autodiscover), the server
//! calls [`Storage::record_directory_login`] with that password, which keeps a *directory
//! user* row (no usable password hash: [`DIRECTORY_PASSWORD_HASH`]) and its HA1 values in
//! `sip_credentials`, exactly like a local user's. SIP Digest then works for that user through
//! the ordinary lookup ([`Storage::sip_ha1`]).
//!
//! Limits: a user who never logged in over HTTP has no HA1; after a password change in the
//! directory the stored HA1 keeps the old password working for SIP until the next HTTP login
//! with the new one, unless someone tries the old password over HTTP first — then
//! [`Storage::forget_stale_directory_ha1`] drops it. A directory user can be disabled and
//! removed like any other (`switchboard user disable|remove`); `user passwd` turns them into a
//! local user.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::entity::{sip_credential, user};
use crate::error::{is_unique_violation, DbResultExt};
use crate::sip_credentials::{credentials_for, digest_ha1, put_credentials, HashAlgorithm};
use crate::users::User;
use crate::validate;
use crate::{time, Storage, StorageError};

/// The `password_hash` of a directory user: not a PHC string, so it can never verify; local
/// password checks report such users as unknown so the directory is asked instead.
pub const DIRECTORY_PASSWORD_HASH: &str = "!directory";

/// What [`Storage::record_directory_login`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryLogin {
    /// The directory user (disabled users must be refused by the caller).
    pub user: User,
    /// Whether HA1 values were (re)written (false: they already matched this password).
    pub ha1_updated: bool,
}

impl Storage {
    /// Remember a login a directory has just confirmed: create the directory user (and its
    /// domain) on first sight, and store SIP HA1 values for the realm named like the domain
    /// and every further realm the user already has, both username forms, MD5 and SHA-256.
    /// Rows are only written when the password differs from the stored one, so a phone
    /// re-authenticating every minute costs one read. A *local* user of the same address is
    /// never touched (its own password stays authoritative).
    pub async fn record_directory_login(
        &self,
        address: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<DirectoryLogin, StorageError> {
        let addr = validate::address(address)?;
        if password.is_empty() {
            return Err(StorageError::EmptyPassword { address: addr.full });
        }
        let domain = match self.domain_model(&addr.domain).await? {
            Some(d) => d,
            None => match self.add_domain(&addr.domain).await {
                Ok(_) | Err(StorageError::DomainExists { .. }) => self
                    .domain_model(&addr.domain)
                    .await?
                    .ok_or_else(|| StorageError::DomainNotFound {
                        name: addr.domain.clone(),
                    })?,
                Err(e) => return Err(e),
            },
        };
        let model = match self.user_model(&addr.full).await? {
            Some(m) => m,
            None => {
                let now = time::now();
                let row = user::ActiveModel {
                    domain_id: Set(domain.id),
                    address: Set(addr.full.clone()),
                    password_hash: Set(DIRECTORY_PASSWORD_HASH.to_owned()),
                    display_name: Set(display_name
                        .filter(|n| !n.is_empty() && n.len() <= 256)
                        .map(str::to_owned)),
                    disabled: Set(false),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                };
                match row.insert(&self.db).await {
                    Ok(m) => {
                        tracing::info!(address = %addr.full, "directory user first seen");
                        m
                    }
                    Err(e) if is_unique_violation(&e) => self.require_user(&addr).await?,
                    Err(e) => {
                        return Err(e).ctx(|| format!("adding directory user {:?}", addr.full))
                    }
                }
            }
        };
        if model.password_hash != DIRECTORY_PASSWORD_HASH {
            // A local user: never overwrite their credentials from a directory.
            return Ok(DirectoryLogin {
                user: model.into(),
                ha1_updated: false,
            });
        }
        let realm = addr.domain.clone();
        let current = self
            .sip_ha1(&addr.full, &realm, HashAlgorithm::Md5)
            .await?
            .map(|h| h.ha1);
        if current.as_deref()
            == Some(&digest_ha1(
                HashAlgorithm::Md5,
                &addr.full,
                &realm,
                password,
            ))
        {
            return Ok(DirectoryLogin {
                user: model.into(),
                ha1_updated: false,
            });
        }
        let mut realms = self.sip_realms_of(model.id, &addr).await?;
        realms.insert(realm);
        let now = time::now();
        for r in realms {
            let take_over = r == addr.domain;
            put_credentials(
                &self.db,
                model.id,
                &addr,
                credentials_for(&addr, &r, password),
                take_over,
                now,
            )
            .await?;
        }
        Ok(DirectoryLogin {
            user: model.into(),
            ha1_updated: true,
        })
    }

    /// The directory refused `password` for `address`: if the stored HA1 was computed from
    /// exactly that password, it is stale (the password was changed in the directory), so
    /// the user's SIP credentials are deleted. Any other wrong password leaves them alone, so
    /// strangers guessing cannot lock a user out of SIP. Returns whether anything was deleted.
    pub async fn forget_stale_directory_ha1(
        &self,
        address: &str,
        password: &str,
    ) -> Result<bool, StorageError> {
        let Ok(addr) = validate::address(address) else {
            return Ok(false);
        };
        let Some(model) = self.user_model(&addr.full).await? else {
            return Ok(false);
        };
        if model.password_hash != DIRECTORY_PASSWORD_HASH {
            return Ok(false);
        }
        let realm = addr.domain.clone();
        let stored = self.sip_ha1(&addr.full, &realm, HashAlgorithm::Md5).await?;
        let tried = digest_ha1(HashAlgorithm::Md5, &addr.full, &realm, password);
        if stored.is_none_or(|s| s.ha1 != tried) {
            return Ok(false);
        }
        sip_credential::Entity::delete_many()
            .filter(sip_credential::Column::UserId.eq(model.id))
            .exec(&self.db)
            .await
            .ctx(|| format!("deleting the SIP credentials of {:?}", addr.full))?;
        tracing::info!(address = %addr.full, "directory refused the password the SIP credentials were made from; deleted them");
        Ok(true)
    }
}
