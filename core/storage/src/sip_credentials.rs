//! SIP digest credentials: HA1 = H(username ":" realm ":" password) per user, realm, username
//! form and hash algorithm (RFC 2617 / RFC 7616), so SIP authentication never needs the
//! cleartext password.
//!
//! For every realm a user has credentials in, two usernames are stored: the short form
//! `local` and the full form `local@domain` (clients differ in which one they send), each for
//! MD5 and SHA-256. The realm named like the user's own domain is written by
//! [`Storage::add_user`] and [`Storage::set_password`]; further realms by
//! [`Storage::set_sip_password_for_realm`].

use std::collections::BTreeSet;
use std::fmt;

use md5::{Digest, Md5};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use sha2::Sha256;

use crate::entity::{sip_credential, user};
use crate::error::DbResultExt;
use crate::validate::{self, Address};
use crate::{time, Storage, StorageError};

/// Longest accepted realm, in bytes.
const MAX_REALM: usize = 255;

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// `MD5` (RFC 2617; still what most SIP phones use).
    Md5,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
}

impl HashAlgorithm {
    /// Every algorithm credentials are stored for.
    pub const ALL: [HashAlgorithm; 2] = [HashAlgorithm::Md5, HashAlgorithm::Sha256];

    /// The name used in `algorithm=` parameters and in the database: `MD5` or `SHA-256`.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "MD5",
            HashAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses an `algorithm=` value (case-insensitive; `-sess` variants are not accepted,
    /// their HA1 depends on per-session nonces).
    pub fn from_name(name: &str) -> Option<HashAlgorithm> {
        if name.eq_ignore_ascii_case("MD5") {
            Some(HashAlgorithm::Md5)
        } else if name.eq_ignore_ascii_case("SHA-256") {
            Some(HashAlgorithm::Sha256)
        } else {
            None
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Computes HA1 = H(username ":" realm ":" password) as lowercase hex.
///
/// ```
/// use switchboard_storage::{digest_ha1, HashAlgorithm};
/// // RFC 2617 §3.5
/// assert_eq!(
///     digest_ha1(HashAlgorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life"),
///     "939e7578ed9e3c518a452acee763bce9"
/// );
/// ```
pub fn digest_ha1(algorithm: HashAlgorithm, username: &str, realm: &str, password: &str) -> String {
    let input = format!("{username}:{realm}:{password}");
    match algorithm {
        HashAlgorithm::Md5 => hex::encode(Md5::digest(input.as_bytes())),
        HashAlgorithm::Sha256 => hex::encode(Sha256::digest(input.as_bytes())),
    }
}

/// The answer to [`Storage::sip_ha1`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipHa1 {
    /// The address of the user the credential belongs to.
    pub address: String,
    /// Lowercase hex HA1.
    pub ha1: String,
    /// Whether the user is disabled (the caller must then refuse the login).
    pub disabled: bool,
}

/// One credential row to write.
#[derive(Debug)]
pub(crate) struct Credential {
    realm: String,
    username: String,
    algorithm: HashAlgorithm,
    ha1: String,
}

/// The four credential rows (short and full username, MD5 and SHA-256) of one realm.
pub(crate) fn credentials_for(addr: &Address, realm: &str, password: &str) -> Vec<Credential> {
    let mut out = Vec::with_capacity(4);
    for username in [&addr.local, &addr.full] {
        for algorithm in HashAlgorithm::ALL {
            out.push(Credential {
                realm: realm.to_owned(),
                username: username.clone(),
                algorithm,
                ha1: digest_ha1(algorithm, username, realm, password),
            });
        }
    }
    out
}

/// Upserts credential rows for a user.
///
/// A (realm, username, algorithm) triple can belong to one user only. With `take_over` (the
/// realm is the user's own domain) an existing row of another user is reassigned: the domain's
/// own users win in their domain's realm. Without it, rows owned by another user are left
/// alone and a warning is logged; the full-address form, which is unique per user, is always
/// written.
pub(crate) async fn put_credentials<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    addr: &Address,
    credentials: Vec<Credential>,
    take_over: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StorageError> {
    use sip_credential::Column as C;
    let Some(realm) = credentials.first().map(|c| c.realm.clone()) else {
        return Ok(());
    };
    let context = || {
        format!(
            "storing SIP credentials of {:?} for realm {realm:?}",
            addr.full
        )
    };
    let expected = credentials.len() as u64;

    let mut insert = Query::insert();
    insert.into_table(sip_credential::Entity).columns([
        C::UserId,
        C::Realm,
        C::Username,
        C::Algorithm,
        C::Ha1,
        C::UpdatedAt,
    ]);
    for c in credentials {
        insert
            .values([
                user_id.into(),
                c.realm.into(),
                c.username.into(),
                c.algorithm.as_str().into(),
                c.ha1.into(),
                now.into(),
            ])
            .map_err(|e| StorageError::Internal(format!("{}: {e}", context())))?;
    }
    let mut on_conflict = OnConflict::columns([C::Realm, C::Username, C::Algorithm]);
    on_conflict.update_columns([C::UserId, C::Ha1, C::UpdatedAt]);
    if !take_over {
        on_conflict.action_and_where(Expr::col((sip_credential::Entity, C::UserId)).eq(user_id));
    }
    insert.on_conflict(on_conflict);

    let stmt = conn.get_database_backend().build(&insert);
    let written = conn.execute(stmt).await.ctx(context)?.rows_affected();
    if written < expected {
        tracing::warn!(
            address = %addr.full,
            realm = %realm,
            username = %addr.local,
            "SIP username already belongs to another user in this realm; only the full address \
             can be used as username there"
        );
    }
    Ok(())
}

impl Storage {
    /// Stores SIP digest credentials for `address` in an additional realm (besides the one
    /// named like the user's domain, which is always there), for both username forms and both
    /// algorithms. The realm is case-sensitive, as in digest challenges.
    ///
    /// If another user already owns the short username in that realm (two domains sharing a
    /// realm with the same local part), only the full `local@domain` form is stored for this
    /// user and a warning is logged. [`set_password`](Self::set_password) later recomputes all
    /// of a user's realms from the new password.
    pub async fn set_sip_password_for_realm(
        &self,
        address: &str,
        realm: &str,
        password: &str,
    ) -> Result<(), StorageError> {
        let addr = validate::address(address)?;
        validate::text("SIP realm", realm, MAX_REALM, false)?;
        if password.is_empty() {
            return Err(StorageError::EmptyPassword { address: addr.full });
        }
        let user = self.require_user(&addr).await?;
        let credentials = credentials_for(&addr, realm, password);
        let take_over = realm == addr.domain;
        put_credentials(
            &self.db,
            user.id,
            &addr,
            credentials,
            take_over,
            time::now(),
        )
        .await
    }

    /// Looks up the HA1 for a digest `username` as sent by a SIP client (either `local`,
    /// meaning the user of that name in the realm, or `local@domain`) in `realm`.
    ///
    /// The username is matched case-insensitively (addresses are stored lowercased), the realm
    /// exactly. Returns `None` if there is no such credential; the caller must also check
    /// [`SipHa1::disabled`].
    pub async fn sip_ha1(
        &self,
        username: &str,
        realm: &str,
        algorithm: HashAlgorithm,
    ) -> Result<Option<SipHa1>, StorageError> {
        let username = username.to_ascii_lowercase();
        if username.is_empty() || username.chars().any(char::is_control) {
            return Ok(None);
        }
        let found = sip_credential::Entity::find()
            .find_also_related(user::Entity)
            .filter(sip_credential::Column::Realm.eq(realm))
            .filter(sip_credential::Column::Username.eq(&username))
            .filter(sip_credential::Column::Algorithm.eq(algorithm.as_str()))
            .one(&self.db)
            .await
            .ctx(|| format!("looking up SIP credentials of {username:?} in realm {realm:?}"))?;
        Ok(match found {
            Some((cred, Some(user))) => Some(SipHa1 {
                address: user.address,
                ha1: cred.ha1,
                disabled: user.disabled,
            }),
            _ => None,
        })
    }

    /// The realms a user has SIP credentials for, sorted.
    pub async fn sip_realms(&self, address: &str) -> Result<Vec<String>, StorageError> {
        let addr = validate::address(address)?;
        let user = self.require_user(&addr).await?;
        Ok(self
            .sip_realms_of(user.id, &addr)
            .await?
            .into_iter()
            .collect())
    }

    /// The distinct realms of a user's credentials.
    pub(crate) async fn sip_realms_of(
        &self,
        user_id: i64,
        addr: &Address,
    ) -> Result<BTreeSet<String>, StorageError> {
        let realms: Vec<String> = sip_credential::Entity::find()
            .select_only()
            .column(sip_credential::Column::Realm)
            .distinct()
            .filter(sip_credential::Column::UserId.eq(user_id))
            .into_tuple()
            .all(&self.db)
            .await
            .ctx(|| format!("listing the SIP realms of {:?}", addr.full))?;
        Ok(realms.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_known_answer() {
        assert_eq!(
            digest_ha1(
                HashAlgorithm::Md5,
                "Mufasa",
                "testrealm@host.com",
                "Circle Of Life"
            ),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    #[test]
    fn rfc7616_known_answer() {
        // The user, realm and password of the RFC 7616 §3.9.1 example; the expected value was
        // computed independently (Python's hashlib.sha256).
        assert_eq!(
            digest_ha1(
                HashAlgorithm::Sha256,
                "Mufasa",
                "http-auth@example.org",
                "Circle of Life"
            ),
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(HashAlgorithm::from_name("md5"), Some(HashAlgorithm::Md5));
        assert_eq!(
            HashAlgorithm::from_name("SHA-256"),
            Some(HashAlgorithm::Sha256)
        );
        assert_eq!(HashAlgorithm::from_name("MD5-sess"), None);
        assert_eq!(HashAlgorithm::Sha256.to_string(), "SHA-256");
    }
}
