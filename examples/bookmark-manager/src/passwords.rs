//! Argon2id password hashes, computed off the async runtime, and the strength check new
//! passwords must pass.

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

/// The lowest zxcvbn score a new password may have: 3, "safely unguessable" (about 10^10
/// guesses), enough against an online attack and a hashed database that leaked.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// The estimator's cost grows much faster than the length (in a debug build, about 20 ms
/// at 32 characters, seconds at 64), so it looks at windows of this many characters.
const WINDOW: usize = 32;

/// Why `password` is too easy to guess, or `None` when it is strong enough. `user_inputs`
/// are words an attacker would try first for this account (its name), which count as
/// guessed. The message never contains the password.
///
/// A longer password is judged by its first and its last [`WINDOW`] characters: it is at
/// least as hard to guess as the stronger of the two. The work runs under the hashing
/// permits, so a flood of registrations queues like a flood of logins.
pub(crate) async fn weakness(password: String, user_inputs: Vec<String>) -> Option<String> {
    let verdict = hashing(move || {
        let mut inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
        inputs.extend(["bookmark", "bookmarks", "manager", "vault"]);
        let chars: Vec<char> = password.chars().collect();
        let windows: Vec<String> = if chars.len() <= WINDOW {
            vec![password]
        } else {
            vec![chars[..WINDOW].iter().collect(), chars[chars.len() - WINDOW..].iter().collect()]
        };
        let best = windows
            .iter()
            .map(|w| zxcvbn::zxcvbn(w, &inputs))
            .max_by_key(zxcvbn::Entropy::score)
            .expect("at least one window");
        (best.score() < MIN_SCORE).then(|| {
            let hint =
                best.feedback().and_then(|f| f.warning()).map(|w| format!(" ({w})")).unwrap_or_default();
            format!(
                "This password is too easy to guess{hint}. Use a longer one, such as four or five \
                 unrelated words."
            )
        })
    })
    .await;
    // `None`: the task failed. Refuse rather than accept an unchecked password.
    verdict.unwrap_or_else(|| Some("The password could not be checked; please try another.".to_owned()))
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

    #[tokio::test]
    async fn weak_and_common_passwords_are_refused() {
        for (password, name) in
            [("password1", "bob"), ("alice123", "alice"), ("12345678", "bob"), ("qwertyuiop", "bob")]
        {
            let msg = weakness(password.into(), vec![name.into()]).await.expect(password);
            assert!(
                msg.starts_with("This password is too easy to guess") && !msg.contains(password),
                "{msg}"
            );
        }
        assert_eq!(weakness("violet-otter-harbor-quilt".into(), vec!["alice".into()]).await, None);
        // Long ones: judged by their stronger end, quickly (the whole 128 characters of
        // the last one took 8 s in a debug build).
        assert!(weakness("password".repeat(16), vec![]).await.is_some());
        let strong_end = format!("{}{}", "a".repeat(90), "violet-otter-harbor-quilt");
        assert_eq!(weakness(strong_end, vec![]).await, None);
        let slow: String =
            (0..128u16).map(|i| char::from(b'!' + u8::try_from(i * 7 % 90).unwrap())).collect();
        let started = std::time::Instant::now();
        assert_eq!(weakness(slow, vec![]).await, None);
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
    }
}
