//! The crate's error: what setting a store up can fail with.

/// What building a store, opening a pool or creating the schema can fail with.
///
/// The session operations themselves return [`session_core::StoreError`], with the driver's
/// error as the `source()` of [`StoreError::Backend`](session_core::StoreError::Backend).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The table name is not 1 to 63 ASCII letters, digits or underscores starting with a
    /// letter or underscore. Holds the refused name.
    #[error(
        "invalid session table name {0:?}: expected 1 to 63 ASCII letters, digits or \
         underscores, not starting with a digit"
    )]
    InvalidTableName(String),
    /// The database refused or failed; the driver's error is the source.
    #[error("session database operation failed")]
    Database(#[from] sqlx::Error),
}
