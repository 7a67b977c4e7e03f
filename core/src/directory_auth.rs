//! Directory connectors (LDAP) in the login chain.
//!
//! [`DirectoryUsers`] is the [`CredentialSource`] after the local users: for a login
//! `user@domain` it asks the directory connector routed for `domain` in the *current* plugin
//! set (so a reload swaps it), and answers `NotMine` when no directory serves the domain.
//! Throttling and the audit log apply as for every source (they live in the chain).
//!
//! **SIP Digest and directories.** Digest needs HA1 = H(user:realm:password) per realm, which
//! a directory cannot give. So on every password the directory confirms (HTTP Basic:
//! ActiveSync, Autodiscover — normally over HTTPS), the HA1 values for the realm named like the
//! user's domain, the SIP frontend's configured `realm` if set, and any further realm the user
//! already has, MD5 and SHA-256, are stored in
//! `sip_credentials` for a *directory user* row (see
//! `switchboard_storage::Storage::record_directory_login`), and the ordinary local Digest
//! lookup serves them. Limits:
//!
//! * a user who never logged in over HTTP(S) has no HA1, so SIP Digest fails for them;
//! * after a password change in the directory the old password keeps working for SIP until
//!   the user's next HTTP login with the new one; if the *old* password is tried over HTTP and
//!   the directory refuses it, the stored HA1 (made from exactly that password) is deleted;
//!   other wrong passwords leave it alone, so guessing cannot lock anyone out of SIP;
//! * the HA1 is password-equivalent for its realm (as for local users); directory users can
//!   be disabled or removed locally (`switchboard user disable|remove`).
//!
//! HA1 values are only written when they change, so a phone re-authenticating costs a read.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use switchboard_auth::{
    CredentialSource, DigestAlgorithm, Ha1Lookup, Identity, SourceError, SourceVerdict,
};
use switchboard_sdk::abi::{DirectoryCall, DirectoryReply};
use switchboard_sdk::Principal;
use switchboard_storage::Storage;

use crate::plugins::manifest::World;
use crate::state::Shared;

/// Logins checked by the directory connector serving their domain.
#[derive(Debug)]
pub struct DirectoryUsers {
    storage: Storage,
    /// Set once the shared state exists (it is built after the credential chain).
    shared: OnceLock<Weak<Shared>>,
}

impl DirectoryUsers {
    /// A source that answers `NotMine` until [`attach`](Self::attach)ed.
    pub fn new(storage: Storage) -> DirectoryUsers {
        DirectoryUsers {
            storage,
            shared: OnceLock::new(),
        }
    }

    /// Look connectors up in `shared`'s current snapshot from now on.
    pub fn attach(&self, shared: &Arc<Shared>) {
        let _ = self.shared.set(Arc::downgrade(shared));
    }
}

/// `user@domain`, lowercased and split; `None` for anything else.
fn split(login: &str) -> Option<(String, String)> {
    let login = login.trim().to_lowercase();
    let (user, domain) = login.rsplit_once('@')?;
    (!user.is_empty() && !domain.is_empty() && !user.contains(char::is_control))
        .then(|| (user.to_string(), domain.to_string()))
}

#[async_trait]
impl CredentialSource for DirectoryUsers {
    fn name(&self) -> &str {
        "directory"
    }

    async fn verify_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<SourceVerdict, SourceError> {
        let Some((user, domain)) = split(login) else {
            return Ok(SourceVerdict::NotMine);
        };
        let Some(shared) = self.shared.get().and_then(Weak::upgrade) else {
            return Ok(SourceVerdict::NotMine);
        };
        let snapshot = shared.current();
        let Some(plugin) = snapshot
            .plugins
            .connector(World::DirectoryConnector, &domain)
            .cloned()
        else {
            return Ok(SourceVerdict::NotMine);
        };
        let who = Principal {
            user,
            domain: domain.clone(),
        };
        let failed = |e: switchboard_sdk::Error| {
            SourceError::new(format!(
                "directory connector {} (serving {domain}): {e}",
                plugin.info.name
            ))
        };
        let ok = match plugin
            .directory(DirectoryCall::Authenticate {
                who: who.clone(),
                password: password.to_string(),
            })
            .await
        {
            Ok(DirectoryReply::Authenticated(ok)) => ok,
            Ok(_) => {
                return Err(failed(switchboard_sdk::Error::Internal(
                    "answered authenticate with the wrong kind of reply".into(),
                )))
            }
            Err(e) => return Err(failed(e)),
        };
        let given = format!("{}@{}", who.user, who.domain);
        if !ok {
            if let Err(e) = self
                .storage
                .forget_stale_directory_ha1(&given, password)
                .await
            {
                tracing::warn!(login = %given, error = %e, "could not check the stored SIP credentials of a directory user");
            }
            return Ok(SourceVerdict::Invalid);
        }
        // The directory's own name for the person (a login by email address becomes uid@domain),
        // when it says one; the login as given otherwise.
        let person = match plugin.directory(DirectoryCall::Lookup { who }).await {
            Ok(DirectoryReply::Person(p)) => p,
            _ => None,
        };
        let address = person
            .as_ref()
            .map(|p| p.login.to_lowercase())
            .filter(|l| l.ends_with(&format!("@{domain}")) && split(l).is_some())
            .unwrap_or(given);
        let display_name = person.map(|p| p.display_name).filter(|n| !n.is_empty());
        // The SIP frontend's configured Digest realm, if it has one (empty: the domain).
        let sip_realms: Vec<String> = snapshot
            .plugins
            .iter()
            .filter(|p| p.manifest.world == World::SipFrontend)
            .filter_map(|p| p.info.settings.get("realm").cloned())
            .filter(|r| !r.is_empty())
            .collect();
        match self
            .storage
            .record_directory_login(&address, password, display_name.as_deref(), &sip_realms)
            .await
        {
            Ok(l) if l.user.disabled => Ok(SourceVerdict::Disabled),
            Ok(l) => {
                if l.ha1_updated {
                    tracing::info!(address = %address, "stored SIP digest credentials from a directory login");
                }
                Ok(SourceVerdict::Valid(Identity {
                    address: l.user.address,
                    display_name: display_name.or(l.user.display_name),
                }))
            }
            Err(e) => {
                // The directory said yes and SIP credentials are a bonus, not a reason to
                // refuse; but a user disabled here stays out, so that much must be readable.
                tracing::warn!(address = %address, error = %e, "could not store SIP credentials for a directory user");
                match self.storage.user(&address).await {
                    Ok(Some(u)) if u.disabled => Ok(SourceVerdict::Disabled),
                    Ok(_) => Ok(SourceVerdict::Valid(Identity {
                        address,
                        display_name,
                    })),
                    Err(e) => Err(SourceError::new(format!(
                        "directory login of {address}: cannot read the local user record: {e}"
                    ))),
                }
            }
        }
    }

    /// Directory users' HA1 values are in `sip_credentials` and answered by the local source;
    /// the directory itself has none.
    async fn digest_ha1(
        &self,
        _username: &str,
        _realm: &str,
        _algorithm: DigestAlgorithm,
    ) -> Result<Ha1Lookup, SourceError> {
        Ok(Ha1Lookup::NotMine)
    }
}
