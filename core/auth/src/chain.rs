//! The credential chain: every request's credentials are checked here, against each
//! [`CredentialSource`] in order, under the failed-login [`Throttle`], with every failure
//! reported to the [`AuditSink`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::basic::parse_basic;
use crate::digest::{
    self, parse_authorization, DigestAlgorithm, NonceCounter, NonceManager, NonceStatus,
};
use crate::throttle::{Throttle, ThrottleVerdict};

/// Who a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `local@domain`, lower case.
    pub address: String,
    /// Display name, when the source knows one.
    pub display_name: Option<String>,
}

/// A source's answer to a password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceVerdict {
    /// Right password.
    Valid(Identity),
    /// This source owns the login and the password is wrong.
    Invalid,
    /// The account exists but may not log in.
    Disabled,
    /// This source does not know the login; ask the next one.
    NotMine,
}

/// A source's answer to a Digest HA1 lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ha1Lookup {
    /// The stored HA1 for (username, realm, algorithm).
    Found {
        /// Who it belongs to.
        identity: Identity,
        /// Lowercase hex HA1.
        ha1: String,
    },
    /// The account exists but may not log in.
    Disabled,
    /// Unknown here; ask the next source.
    NotMine,
}

/// A source failed (database down, directory unreachable). Never shown to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl SourceError {
    /// Wrap a message.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Somewhere users and their credentials live: the local database, a directory…
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// Name for logs.
    fn name(&self) -> &str;
    /// Check a password.
    async fn verify_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<SourceVerdict, SourceError>;
    /// Look up the HA1 Digest needs.
    async fn digest_ha1(
        &self,
        username: &str,
        realm: &str,
        algorithm: DigestAlgorithm,
    ) -> Result<Ha1Lookup, SourceError>;
}

/// How an authentication attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Logged in.
    Success,
    /// Wrong or unknown credentials, or a malformed header.
    Failure,
    /// Refused by throttling before checking.
    Throttled,
    /// Account disabled.
    Disabled,
    /// Every source failed.
    Error,
}

impl AuthOutcome {
    /// `success`, `failure`, `throttled`, `disabled`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Throttled => "throttled",
            Self::Disabled => "disabled",
            Self::Error => "error",
        }
    }

    /// Whether it is [`AuthOutcome::Success`].
    pub fn is_success(self) -> bool {
        self == Self::Success
    }
}

/// Which scheme was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// HTTP Basic.
    Basic,
    /// Digest.
    Digest,
}

impl Mechanism {
    /// `basic` or `digest`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Digest => "digest",
        }
    }
}

/// One auth event for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEvent {
    /// How it ended.
    pub outcome: AuthOutcome,
    /// Scheme.
    pub mechanism: Mechanism,
    /// The login as sent (may be empty for a malformed header).
    pub login: String,
    /// Client address.
    pub source: IpAddr,
    /// Frontend / protocol, e.g. `eas`, `sip`.
    pub protocol: String,
    /// Why, for failures.
    pub reason: String,
}

/// Receives auth events; must not block (forward to a queue).
pub trait AuditSink: Send + Sync {
    /// Record one event.
    fn record(&self, event: AuthEvent);
}

/// What went wrong, so the caller can answer in its protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailureKind {
    /// No credentials: send a challenge.
    MissingCredentials,
    /// The header could not be parsed.
    Malformed(String),
    /// Wrong or unknown credentials.
    BadCredentials,
    /// Digest with an expired or unknown nonce but otherwise right: challenge with `stale=true`.
    Stale,
    /// Too many failures: try later.
    Throttled {
        /// When.
        retry_after: Duration,
    },
    /// Account disabled.
    Disabled,
    /// Every source errored; not the client's fault.
    Unavailable,
}

/// A refused authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// What went wrong.
    pub kind: AuthFailureKind,
}

impl From<AuthFailureKind> for AuthFailure {
    fn from(kind: AuthFailureKind) -> Self {
        Self { kind }
    }
}

/// Successful Basic logins are remembered this long, so a phone that sends its password with
/// every request costs one argon2 verification per minute instead of one per request.
const VERIFIED_TTL: Duration = Duration::from_secs(60);
const VERIFIED_MAX: usize = 50_000;

/// What every failure report of one attempt shares.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    mechanism: Mechanism,
    source: IpAddr,
    protocol: &'a str,
    now: Instant,
}

/// The credential chain with throttling, nonces and auditing.
pub struct Authenticator {
    sources: Vec<Arc<dyn CredentialSource>>,
    throttle: Throttle,
    nonces: NonceManager,
    counters: NonceCounter,
    audit: Arc<dyn AuditSink>,
    cache_key: [u8; 32],
    verified: Mutex<HashMap<[u8; 32], (Identity, Instant)>>,
    /// One turn per credentials being verified right now: when a user's cached login expires,
    /// all their devices ask at once, and one argon2 verification (19 MiB, tens of ms) should
    /// serve them all.
    verifying: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
}

/// A place in line for verifying one set of credentials (`Authenticator::verifying`). The
/// map entry goes when its last holder lets go — also when a waiting request is dropped
/// (its client left), which a cleanup after the `await` would miss.
struct Turn<'a> {
    map: &'a Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    slot: [u8; 32],
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> Turn<'a> {
    fn take(
        map: &'a Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
        slot: [u8; 32],
    ) -> Self {
        let turn = map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(slot)
            .or_default()
            .clone();
        Turn { map, slot, turn }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Handles are only cloned under this lock: the map's and ours mean nobody else waits.
        if Arc::strong_count(&self.turn) <= 2 {
            map.remove(&self.slot);
        }
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.sources.iter().map(|s| s.name()).collect();
        f.debug_struct("Authenticator")
            .field("sources", &names)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Build a chain; sources are asked in order.
    pub fn new(
        sources: Vec<Arc<dyn CredentialSource>>,
        throttle: Throttle,
        nonces: NonceManager,
        audit: Arc<dyn AuditSink>,
    ) -> Self {
        let mut cache_key = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut cache_key);
        Self {
            sources,
            throttle,
            nonces,
            counters: NonceCounter::new(200_000),
            audit,
            cache_key,
            verified: Mutex::new(HashMap::new()),
            verifying: Mutex::new(HashMap::new()),
        }
    }

    /// The nonce issuer (for challenges).
    pub fn nonces(&self) -> &NonceManager {
        &self.nonces
    }

    /// The throttle (for status).
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    fn fail(
        &self,
        at: &Attempt<'_>,
        kind: AuthFailureKind,
        login: &str,
        count: bool,
    ) -> AuthFailure {
        let Attempt {
            mechanism,
            source,
            protocol,
            now,
        } = *at;
        let (outcome, reason) = match &kind {
            AuthFailureKind::Malformed(r) => (AuthOutcome::Failure, r.clone()),
            AuthFailureKind::BadCredentials => (AuthOutcome::Failure, "bad credentials".into()),
            AuthFailureKind::Disabled => (AuthOutcome::Disabled, "account disabled".into()),
            AuthFailureKind::Throttled { .. } => {
                (AuthOutcome::Throttled, "too many failures".into())
            }
            AuthFailureKind::Unavailable => {
                (AuthOutcome::Error, "credential sources unavailable".into())
            }
            AuthFailureKind::MissingCredentials | AuthFailureKind::Stale => return kind.into(),
        };
        if count {
            self.throttle.record_failure(login, source, now);
        }
        tracing::info!(login, %source, protocol, mechanism = mechanism.as_str(), outcome = outcome.as_str(), %reason, "authentication refused");
        self.audit.record(AuthEvent {
            outcome,
            mechanism,
            login: login.into(),
            source,
            protocol: protocol.into(),
            reason,
        });
        kind.into()
    }

    fn throttled(&self, login: &str, source: IpAddr, now: Instant) -> Option<AuthFailureKind> {
        match self.throttle.check(login, source, now) {
            ThrottleVerdict::Allowed => None,
            ThrottleVerdict::Blocked { retry_after, .. } => {
                Some(AuthFailureKind::Throttled { retry_after })
            }
        }
    }

    fn cache_slot(&self, login: &str, password: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.cache_key)
            .unwrap_or_else(|_| unreachable!());
        mac.update(login.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Check an HTTP Basic `Authorization` header value.
    pub async fn basic(
        &self,
        header: Option<&str>,
        source: IpAddr,
        protocol: &str,
        now: Instant,
    ) -> Result<Identity, AuthFailure> {
        let at = Attempt {
            mechanism: Mechanism::Basic,
            source,
            protocol,
            now,
        };
        let Some(header) = header else {
            return Err(AuthFailureKind::MissingCredentials.into());
        };
        let creds = match parse_basic(header) {
            Ok(c) => c,
            Err(e) => {
                return Err(self.fail(&at, AuthFailureKind::Malformed(e.to_string()), "", true))
            }
        };
        let login = creds.username.as_str();
        if let Some(kind) = self.throttled(login, source, now) {
            return Err(self.fail(&at, kind, login, false));
        }
        let slot = self.cache_slot(login, &creds.password);
        if let Some(id) = self.cached(&slot, now) {
            return Ok(id);
        }
        // Wait for a verification of the same credentials already running, then use its
        // result if it succeeded.
        let turn = Turn::take(&self.verifying, slot);
        let _mine = turn.turn.lock().await;
        match self.cached(&slot, now) {
            Some(id) => Ok(id),
            None => self.verify_basic(&at, login, &creds.password, slot).await,
        }
    }

    /// The identity remembered for these credentials (`slot`), if still fresh.
    fn cached(&self, slot: &[u8; 32], now: Instant) -> Option<Identity> {
        let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let (id, at) = cache.get(slot)?;
        (now.saturating_duration_since(*at) < VERIFIED_TTL).then(|| id.clone())
    }

    /// Ask the sources about a Basic login and remember a success under `slot`.
    async fn verify_basic(
        &self,
        at: &Attempt<'_>,
        login: &str,
        password: &str,
        slot: [u8; 32],
    ) -> Result<Identity, AuthFailure> {
        let (source, now) = (at.source, at.now);
        let mut errored = false;
        for s in &self.sources {
            match s.verify_password(login, password).await {
                Ok(SourceVerdict::Valid(id)) => {
                    self.throttle.record_success(login, source, now);
                    let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
                    if cache.len() >= VERIFIED_MAX {
                        cache.retain(|_, (_, at)| now.duration_since(*at) < VERIFIED_TTL);
                        if cache.len() >= VERIFIED_MAX {
                            cache.clear();
                        }
                    }
                    cache.insert(slot, (id.clone(), now));
                    return Ok(id);
                }
                Ok(SourceVerdict::Invalid) => {
                    return Err(self.fail(at, AuthFailureKind::BadCredentials, login, true))
                }
                Ok(SourceVerdict::Disabled) => {
                    return Err(self.fail(at, AuthFailureKind::Disabled, login, true))
                }
                Ok(SourceVerdict::NotMine) => {}
                Err(e) => {
                    errored = true;
                    tracing::warn!(source = s.name(), error = %e, "credential source failed");
                }
            }
        }
        let kind = if errored {
            AuthFailureKind::Unavailable
        } else {
            AuthFailureKind::BadCredentials
        };
        Err(self.fail(at, kind, login, !errored))
    }

    /// Check a Digest `Authorization` / `Proxy-Authorization` header for a request with
    /// `method`, expected in `realm`. The caller checks that the digest `uri` names the request.
    #[allow(clippy::too_many_arguments)]
    pub async fn digest(
        &self,
        header: Option<&str>,
        method: &str,
        realm: &str,
        source: IpAddr,
        protocol: &str,
        now: Instant,
        wall: SystemTime,
    ) -> Result<Identity, AuthFailure> {
        let at = Attempt {
            mechanism: Mechanism::Digest,
            source,
            protocol,
            now,
        };
        let Some(header) = header else {
            return Err(AuthFailureKind::MissingCredentials.into());
        };
        let resp = match parse_authorization(header) {
            Ok(r) => r,
            Err(e) => {
                return Err(self.fail(&at, AuthFailureKind::Malformed(e.to_string()), "", true))
            }
        };
        let login = resp.username.as_str();
        if resp.realm != realm {
            let why = format!(
                "Digest response: realm \"{}\" is not \"{realm}\"",
                resp.realm
            );
            return Err(self.fail(&at, AuthFailureKind::Malformed(why), login, false));
        }
        if let Some(kind) = self.throttled(login, source, now) {
            return Err(self.fail(&at, kind, login, false));
        }
        let mut errored = false;
        let mut found = None;
        for s in &self.sources {
            match s.digest_ha1(login, realm, resp.algorithm).await {
                Ok(Ha1Lookup::Found { identity, ha1 }) => {
                    found = Some((identity, ha1));
                    break;
                }
                Ok(Ha1Lookup::Disabled) => {
                    return Err(self.fail(&at, AuthFailureKind::Disabled, login, true))
                }
                Ok(Ha1Lookup::NotMine) => {}
                Err(e) => {
                    errored = true;
                    tracing::warn!(source = s.name(), error = %e, "credential source failed");
                }
            }
        }
        let Some((identity, ha1)) = found else {
            let kind = if errored {
                AuthFailureKind::Unavailable
            } else {
                AuthFailureKind::BadCredentials
            };
            return Err(self.fail(&at, kind, login, !errored));
        };
        if !digest::verify(&ha1, method, &resp) {
            return Err(self.fail(&at, AuthFailureKind::BadCredentials, login, true));
        }
        // The password is right. An old or foreign nonce (e.g. from before a restart) or a
        // replayed count only asks the client to retry with a fresh nonce, without a prompt.
        if self.nonces.check(&resp.nonce, wall) != NonceStatus::Valid {
            return Err(AuthFailureKind::Stale.into());
        }
        if let Some(nc) = resp.nc {
            if !self.counters.accept(&resp.nonce, nc) {
                return Err(AuthFailureKind::Stale.into());
            }
        }
        self.throttle.record_success(login, source, now);
        Ok(identity)
    }

    /// The Digest challenge to send after `failure` (with `stale=true` when it was stale).
    pub fn digest_challenge_for(
        &self,
        realm: &str,
        failure: &AuthFailure,
        wall: SystemTime,
    ) -> String {
        let nonce = self.nonces.issue(wall);
        digest::challenge(
            realm,
            &nonce,
            DigestAlgorithm::Md5,
            failure.kind == AuthFailureKind::Stale,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A source that knows one password and counts how often it was asked.
    struct Counting(AtomicUsize);

    #[async_trait]
    impl CredentialSource for Counting {
        fn name(&self) -> &str {
            "counting"
        }
        async fn verify_password(
            &self,
            login: &str,
            password: &str,
        ) -> Result<SourceVerdict, SourceError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            // Slow, like argon2: the others arrive while it runs.
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(if password == "right" {
                SourceVerdict::Valid(Identity {
                    address: login.to_string(),
                    display_name: None,
                })
            } else {
                SourceVerdict::Invalid
            })
        }
        async fn digest_ha1(
            &self,
            _: &str,
            _: &str,
            _: DigestAlgorithm,
        ) -> Result<Ha1Lookup, SourceError> {
            Ok(Ha1Lookup::NotMine)
        }
    }

    struct NoAudit;
    impl AuditSink for NoAudit {
        fn record(&self, _: AuthEvent) {}
    }

    fn chain(source: Arc<Counting>) -> Authenticator {
        let throttle = Throttle::new(crate::throttle::ThrottleConfig {
            max_failures_per_user: 1000,
            max_failures_per_address: 1000,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
            max_tracked: 1000,
        });
        let nonces = NonceManager::new([1; 32], Duration::from_secs(60));
        Authenticator::new(vec![source], throttle, nonces, Arc::new(NoAudit))
    }

    fn header(password: &str) -> String {
        use base64::Engine;
        let pair = format!("alice@example.com:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    #[tokio::test]
    async fn many_devices_logging_in_at_once_cost_one_verification() {
        let source = Arc::new(Counting(AtomicUsize::new(0)));
        let auth = chain(source.clone());
        let ip: IpAddr = [127, 0, 0, 1].into();
        let right = header("right");
        let logins = (0..50).map(|_| auth.basic(Some(&right), ip, "eas", Instant::now()));
        for r in futures_util::future::join_all(logins).await {
            assert_eq!(r.unwrap().address, "alice@example.com");
        }
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
        assert!(
            auth.verifying.lock().unwrap().is_empty(),
            "turns are cleaned up"
        );

        // Wrong passwords are each checked (and counted by the throttle), never cached.
        let wrong = header("wrong");
        let logins = (0..3).map(|_| auth.basic(Some(&wrong), ip, "eas", Instant::now()));
        for r in futures_util::future::join_all(logins).await {
            assert_eq!(r.unwrap_err().kind, AuthFailureKind::BadCredentials);
        }
        assert_eq!(source.0.load(Ordering::SeqCst), 4);
        assert!(auth.verifying.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_login_dropped_while_waiting_leaves_no_turn_behind() {
        let source = Arc::new(Counting(AtomicUsize::new(0)));
        let auth = chain(source.clone());
        let ip: IpAddr = [127, 0, 0, 1].into();
        let h = header("right");
        let first = auth.basic(Some(&h), ip, "eas", Instant::now());
        // Its client leaves while the first verification runs (the source sleeps 20 ms).
        let waiting = tokio::time::timeout(
            Duration::from_millis(1),
            auth.basic(Some(&h), ip, "eas", Instant::now()),
        );
        let (first, waiting) = tokio::join!(first, waiting);
        assert!(first.is_ok());
        assert!(waiting.is_err(), "the second login was cut short");
        assert!(auth.verifying.lock().unwrap().is_empty());
        // Nor when the only holder is dropped mid-verification.
        let alone = tokio::time::timeout(
            Duration::from_millis(1),
            auth.basic(Some(&header("other")), ip, "eas", Instant::now()),
        )
        .await;
        assert!(alone.is_err());
        assert!(auth.verifying.lock().unwrap().is_empty());
    }
}
