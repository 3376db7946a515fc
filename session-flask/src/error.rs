//! The errors of this crate.

/// Why a [`SecretKey`](crate::SecretKey) could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is empty; Flask refuses to sign sessions without a `SECRET_KEY` too.
    #[error("the Flask SECRET_KEY is empty: use the same non-empty secret as the Flask app")]
    Empty,
}

/// Why a cookie value holds no session. The layer treats every one of these as "no
/// session", as Flask does; the variants say which check failed, for logs and tests.
/// None of them quotes the cookie.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The signature does not verify with `SECRET_KEY` or any fallback (a different
    /// secret, a tampered value, or not a Flask cookie at all).
    #[error("the session cookie's signature does not verify with SECRET_KEY or any fallback")]
    BadSignature,
    /// The signed timestamp is malformed.
    #[error("the session cookie's timestamp is malformed")]
    BadTimestamp,
    /// Signed longer ago than `PERMANENT_SESSION_LIFETIME`.
    #[error("the session cookie is older than PERMANENT_SESSION_LIFETIME")]
    Expired,
    /// Signed in the future: the clocks of the Flask and Rust hosts disagree.
    #[error("the session cookie was signed in the future: check that the servers' clocks agree")]
    FromTheFuture,
    /// The compressed payload inflates past [`MAX_DECOMPRESSED`](crate::MAX_DECOMPRESSED).
    #[error("the session cookie's payload inflates past the size limit")]
    TooLarge,
    /// Signed correctly, but the payload is not Flask's tagged JSON.
    #[error("the session cookie's payload is not Flask's tagged JSON: {0}")]
    BadPayload(&'static str),
}
