//! Password hashing (argon2id) and login checks.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::rngs::OsRng;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio::sync::Semaphore;

use crate::users::User;
use crate::StorageError;

/// Each argon2 computation holds 19 MiB for its duration. Without a bound, a burst of logins
/// (many devices of one user whose cached login just expired, or a login storm) runs one per
/// blocking thread — up to 512 at once, gigabytes — and the allocator keeps much of that
/// afterwards. More computations than cores gain nothing (they are CPU-bound), so at most one
/// per core runs; the rest wait their turn.
fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(max_concurrent()))
}

/// How many argon2 computations may run at once: one per core.
pub(crate) fn max_concurrent() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// argon2 computations running now, and the most seen at once (for tests).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Run one argon2 computation on the blocking pool, within the bound.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let _permit = slots().acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        let out = work();
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        out
    })
    .await
    .map_err(|e| e.to_string())
}

/// An argon2id hash (crate-default parameters: m=19456 KiB, t=2, p=1) of a password nobody
/// knows. Unknown users are checked against it so that a failed login takes the same time
/// whether or not the account exists. A unit test checks that its parameters match the
/// defaults used for real hashes.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3dpdGNoYm9hcmQtZHVtbXk$\
                          yPNl7Ttx3i4p6fVk7ahBH3VwC9bpyn1dHIGY/ASSGHo";

/// The outcome of [`Storage::verify_password`](crate::Storage::verify_password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password is right and the account is enabled.
    Valid(User),
    /// The account exists but the password is wrong (whether or not the account is disabled).
    WrongPassword,
    /// No such account (or the address is not even well-formed).
    UnknownUser,
    /// The password is right but the account is disabled.
    Disabled,
}

/// Hashes a password with argon2id (crate defaults) and a fresh random salt, returning the PHC
/// string. Runs on the blocking thread pool: a hash takes tens of milliseconds of CPU.
pub(crate) async fn hash(address: &str, password: &str) -> Result<String, StorageError> {
    let password = password.to_owned();
    let fail = |cause: String| StorageError::PasswordHash {
        address: address.to_owned(),
        cause,
    };
    bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(fail)?
    .map_err(fail)
}

/// Checks a password against a stored PHC string (`None`: check against the dummy hash and
/// report a mismatch). Returns whether it matched. Runs on the blocking thread pool.
pub(crate) async fn verify(
    address: &str,
    password: &str,
    stored: Option<String>,
) -> Result<bool, StorageError> {
    let password = password.to_owned();
    let is_dummy = stored.is_none();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let outcome = bounded(move || {
        let parsed = PasswordHash::new(&stored).map_err(|e| e.to_string())?;
        match Argon2::default().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .map_err(|e| StorageError::Internal(format!("password check task failed: {e}")))?;
    match outcome {
        Ok(matched) => Ok(matched && !is_dummy),
        Err(cause) => Err(StorageError::Corrupt {
            what: format!("password hash of user {address:?}"),
            cause,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{Algorithm, Params, Version};

    #[test]
    fn dummy_hash_uses_default_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("dummy hash parses");
        assert_eq!(parsed.algorithm, Algorithm::Argon2id.ident());
        assert_eq!(parsed.version, Some(Version::V0x13.into()));
        let params = Params::try_from(&parsed).expect("dummy hash has parameters");
        let defaults = Params::default();
        assert_eq!(params.m_cost(), defaults.m_cost());
        assert_eq!(params.t_cost(), defaults.t_cost());
        assert_eq!(params.p_cost(), defaults.p_cost());
        assert_eq!(
            parsed.hash.map(|h| h.len()),
            Some(defaults.output_len().unwrap_or(32))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_logins_runs_at_most_one_argon2_per_core() {
        let h = hash("a@b.c", "secret").await.expect("hash");
        let burst = 4 * max_concurrent() + 4;
        let tasks: Vec<_> = (0..burst)
            .map(|i| {
                let h = h.clone();
                // Every other one wrong, so both outcomes go through the bound.
                let pw = if i % 2 == 0 { "secret" } else { "wrong" };
                tokio::spawn(async move { verify("a@b.c", pw, Some(h)).await })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let ok = t.await.expect("task").expect("verify");
            assert_eq!(ok, i % 2 == 0, "login {i}");
        }
        let peak = PEAK.load(Ordering::SeqCst);
        assert!(
            (1..=max_concurrent()).contains(&peak),
            "{peak} argon2 computations ran at once, bound {}",
            max_concurrent()
        );
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("a@b.c", "secret").await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("a@b.c", "secret", Some(h.clone()))
            .await
            .expect("verify"));
        assert!(!verify("a@b.c", "Secret", Some(h)).await.expect("verify"));
        assert!(!verify("a@b.c", "secret", None).await.expect("verify"));
        assert!(matches!(
            verify("a@b.c", "secret", Some("not a hash".into())).await,
            Err(StorageError::Corrupt { .. })
        ));
    }
}
