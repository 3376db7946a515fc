//! The errors of session operations.

use crate::StoreError;

/// A boxed error from a backend or codec, kept as the `source()` of this crate's errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Marks a response made from a store failure ([`Error::Store`], or
/// [`Error::ConflictRetriesExhausted`]) so the layer gives it its error status.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreFailure;

/// What can go wrong in a [`Session`](crate::Session) operation.
///
/// The layer turns any of these that happen while loading or saving into a 500 response
/// (see [`SessionLayer::with_error_status`](crate::SessionLayer::with_error_status)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session store failed; the cause is the source.
    #[error("session store failed")]
    Store(#[from] StoreError),
    /// The value stored under `key` does not decode as the requested type.
    #[error("session value `{key}` does not decode as the requested type")]
    Decode {
        /// The session key.
        key: String,
        /// What the decoder said.
        #[source]
        source: BoxError,
    },
    /// The value for `key` could not be encoded (e.g. a map with non-string keys a
    /// `Serialize` impl refuses).
    #[error("session value `{key}` could not be encoded")]
    Encode {
        /// The session key.
        key: String,
        /// What the encoder said.
        #[source]
        source: BoxError,
    },
    /// A client-side session grew past what a cookie can carry. Nothing was changed: keep
    /// large data in a server-side store.
    #[error("client-side session cookie would be {size} bytes, over the {limit}-byte limit; store less in the session or use a server-side store")]
    CookieTooLarge {
        /// The size the cookie would have.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The session was not saved because a store call earlier in the same request failed
    /// (its load, or a [`flush`](crate::Session::flush)'s delete): saving then could lose or
    /// bring back data. That failure was returned to its caller and logged.
    #[error("the session was not saved: a store call earlier in this request failed")]
    FailedEarlier,
    /// Other requests of the same session kept saving first; the bounded retries ran out.
    #[error("session was changed concurrently too many times; retries exhausted")]
    ConflictRetriesExhausted,
}
