//! Argon2id password hashes, computed off the async runtime.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Argon2 runs at most this many at once (each takes 19 MiB at the default cost), so a flood
/// of logins queues instead of exhausting memory or the blocking pool.
const CONCURRENT_HASHES: usize = 2;
static HASHING: Semaphore = Semaphore::const_new(CONCURRENT_HASHES);

/// Runs the Argon2 work `f` on the blocking pool once a hashing permit is free. The permit
/// moves into the task, so a request dropped while it runs does not free its slot early.
async fn hashing<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let permit = HASHING.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .ok()
}

/// How expensive new password hashes are. Verification always uses the parameters stored
/// in the hash, so hashes made at either cost keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCost {
    /// Argon2id with the crate's recommended parameters (19 MiB, 2 passes).
    Default,
    /// The smallest Argon2id parameters, for tests only: debug builds hash slowly, and a
    /// test suite hashes hundreds of passwords.
    Minimal,
}

impl PasswordCost {
    fn hasher(self) -> Argon2<'static> {
        let params = match self {
            PasswordCost::Default => Params::default(),
            PasswordCost::Minimal => {
                Params::new(Params::MIN_M_COST, 1, 1, None).expect("valid minimal params")
            }
        };
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// The PHC string of a fresh salted hash of `password`.
    pub(crate) async fn hash(self, password: String) -> String {
        hashing(move || {
            let salt = SaltString::generate(&mut OsRng);
            self.hasher()
                .hash_password(password.as_bytes(), &salt)
                .expect("argon2 hashing cannot fail")
                .to_string()
        })
        .await
        .expect("the semaphore is never closed and the hashing task does not panic")
    }
}

/// Whether `password` matches the PHC string `hash`; a malformed hash matches nothing.
pub(crate) async fn verify(hash: String, password: String) -> bool {
    hashing(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_at_either_cost() {
        for cost in [PasswordCost::Minimal, PasswordCost::Default] {
            let hash = cost.hash("correct horse".into()).await;
            assert!(hash.starts_with("$argon2id$"));
            assert!(verify(hash.clone(), "correct horse".into()).await);
            assert!(!verify(hash, "wrong".into()).await);
        }
        assert!(!verify("garbage".into(), "x".into()).await);
    }
}
