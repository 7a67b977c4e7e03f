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
    /// domain) on first sight, and store SIP HA1 values for the realm named like the domain,
    /// the `extra_realms` (the SIP frontend's configured realm) and every further realm the
    /// user already has, both username forms, MD5 and SHA-256. Rows are only written when the
    /// password differs from the stored one or a realm is missing, so a phone
    /// re-authenticating every minute costs two reads. A *local* user of the same address is
    /// never touched (its own password stays authoritative).
    pub async fn record_directory_login(
        &self,
        address: &str,
        password: &str,
        display_name: Option<&str>,
        extra_realms: &[String],
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
        let mut realms = self.sip_realms_of(model.id, &addr).await?;
        let wanted: Vec<&String> = extra_realms
            .iter()
            .filter(|r| !r.is_empty() && r.len() <= 255 && !r.contains(char::is_control))
            .collect();
        let complete = wanted.iter().all(|r| realms.contains(*r));
        let same = current.as_deref()
            == Some(&digest_ha1(
                HashAlgorithm::Md5,
                &addr.full,
                &realm,
                password,
            ));
        if complete && same {
            return Ok(DirectoryLogin {
                user: model.into(),
                ha1_updated: false,
            });
        }
        realms.insert(realm);
        realms.extend(wanted.into_iter().cloned());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PasswordCheck;

    async fn storage() -> Storage {
        let s = Storage::connect("sqlite::memory:", 1).await.unwrap();
        s.migrate().await.unwrap();
        s
    }

    async fn ha1(s: &Storage, user: &str, realm: &str) -> Option<String> {
        s.sip_ha1(user, realm, HashAlgorithm::Md5)
            .await
            .unwrap()
            .map(|h| h.ha1)
    }

    #[tokio::test]
    async fn directory_logins_store_ha1_and_stale_ones_are_forgotten() {
        let s = storage().await;
        let extra = vec!["sip.corp.example".to_string()];
        let l = s
            .record_directory_login("Bob@Corp.Example", "pw1", Some("Bob"), &extra)
            .await
            .unwrap();
        assert!(l.ha1_updated);
        assert_eq!(l.user.address, "bob@corp.example");
        assert!(s.domain("corp.example").await.unwrap().is_some());
        for (user, realm) in [
            ("bob", "corp.example"),
            ("bob@corp.example", "corp.example"),
            ("bob", "sip.corp.example"),
        ] {
            assert_eq!(
                ha1(&s, user, realm).await,
                Some(digest_ha1(HashAlgorithm::Md5, user, realm, "pw1")),
                "{user} in {realm}"
            );
        }
        // Same password again: nothing written.
        let again = s
            .record_directory_login("bob@corp.example", "pw1", None, &extra)
            .await
            .unwrap();
        assert!(!again.ha1_updated);
        // Local password checks do not know directory users (the directory is asked).
        assert_eq!(
            s.verify_password("bob@corp.example", "pw1").await.unwrap(),
            PasswordCheck::UnknownUser
        );
        // A stranger's wrong password leaves the HA1; the one it was made from removes it.
        assert!(!s
            .forget_stale_directory_ha1("bob@corp.example", "guess")
            .await
            .unwrap());
        assert!(ha1(&s, "bob", "corp.example").await.is_some());
        assert!(s
            .forget_stale_directory_ha1("bob@corp.example", "pw1")
            .await
            .unwrap());
        assert!(ha1(&s, "bob", "corp.example").await.is_none());
        assert!(ha1(&s, "bob", "sip.corp.example").await.is_none());
        // A new password writes it again.
        assert!(
            s.record_directory_login("bob@corp.example", "pw2", None, &[])
                .await
                .unwrap()
                .ha1_updated
        );
        assert_eq!(
            ha1(&s, "bob", "corp.example").await,
            Some(digest_ha1(HashAlgorithm::Md5, "bob", "corp.example", "pw2"))
        );
    }

    #[tokio::test]
    async fn local_users_are_never_overwritten_from_a_directory() {
        let s = storage().await;
        s.add_domain("corp.example").await.unwrap();
        s.add_user("carol@corp.example", "local pw", None)
            .await
            .unwrap();
        let l = s
            .record_directory_login("carol@corp.example", "ldap pw", None, &[])
            .await
            .unwrap();
        assert!(!l.ha1_updated);
        assert_eq!(
            ha1(&s, "carol", "corp.example").await,
            Some(digest_ha1(
                HashAlgorithm::Md5,
                "carol",
                "corp.example",
                "local pw"
            ))
        );
        assert!(!s
            .forget_stale_directory_ha1("carol@corp.example", "local pw")
            .await
            .unwrap());
    }
}
