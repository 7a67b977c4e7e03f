//! Adapters between the storage crate and the auth crate: local users as a credential source,
//! and the audit log as the auth audit sink.

use std::net::IpAddr;

use async_trait::async_trait;
use switchboard_auth::{
    AuditSink, AuthEvent, CredentialSource, DigestAlgorithm, Ha1Lookup, Identity, SourceError,
    SourceVerdict,
};
use switchboard_storage::{AuditEntry, HashAlgorithm, PasswordCheck, Storage};
use tokio::sync::mpsc;

/// Users stored in Switchboard's own database.
#[derive(Debug, Clone)]
pub struct LocalUsers {
    storage: Storage,
}

impl LocalUsers {
    /// Wrap the storage.
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }
}

#[async_trait]
impl CredentialSource for LocalUsers {
    fn name(&self) -> &str {
        "local"
    }

    async fn verify_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<SourceVerdict, SourceError> {
        match self.storage.verify_password(login, password).await {
            Ok(PasswordCheck::Valid(u)) => Ok(SourceVerdict::Valid(Identity {
                address: u.address,
                display_name: u.display_name,
            })),
            Ok(PasswordCheck::WrongPassword) => Ok(SourceVerdict::Invalid),
            // Unknown here may be known to a directory connector later in the chain.
            Ok(PasswordCheck::UnknownUser) => Ok(SourceVerdict::NotMine),
            Ok(PasswordCheck::Disabled) => Ok(SourceVerdict::Disabled),
            Err(e) => Err(SourceError::new(e.to_string())),
        }
    }

    async fn digest_ha1(
        &self,
        username: &str,
        realm: &str,
        algorithm: DigestAlgorithm,
    ) -> Result<Ha1Lookup, SourceError> {
        let alg = match algorithm {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => HashAlgorithm::Md5,
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => HashAlgorithm::Sha256,
        };
        match self.storage.sip_ha1(username, realm, alg).await {
            Ok(Some(found)) if found.disabled => Ok(Ha1Lookup::Disabled),
            Ok(Some(found)) => Ok(Ha1Lookup::Found {
                identity: Identity {
                    address: found.address,
                    display_name: None,
                },
                ha1: found.ha1,
            }),
            Ok(None) => Ok(Ha1Lookup::NotMine),
            Err(e) => Err(SourceError::new(e.to_string())),
        }
    }
}

/// Writes auth events to the audit log from a background task, so a slow database never
/// stalls a login. If the queue is full the event is dropped and counted.
#[derive(Debug, Clone)]
pub struct DbAuditSink {
    tx: mpsc::Sender<AuditEntry>,
}

impl DbAuditSink {
    /// Start the writer task.
    pub fn spawn(storage: Storage) -> Self {
        let (tx, mut rx) = mpsc::channel::<AuditEntry>(4096);
        tokio::spawn(async move {
            while let Some(entry) = rx.recv().await {
                if let Err(e) = storage.audit(&entry).await {
                    tracing::warn!(error = %e, action = %entry.action, "could not write audit log entry");
                }
            }
        });
        Self { tx }
    }
}

impl AuditSink for DbAuditSink {
    fn record(&self, event: AuthEvent) {
        let source: IpAddr = event.source;
        let entry = AuditEntry {
            actor: Some(event.login.clone()),
            action: format!("auth.{}", event.outcome.as_str()),
            target: Some(event.protocol.clone()),
            source: Some(source.to_string()),
            outcome: if event.outcome.is_success() { "ok".into() } else { "denied".into() },
            detail: Some(serde_json::json!({ "mechanism": event.mechanism.as_str(), "reason": event.reason }).to_string()),
        };
        if self.tx.try_send(entry).is_err() {
            metrics::counter!("audit_dropped_total").increment(1);
        }
    }
}
