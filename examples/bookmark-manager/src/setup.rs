//! Opening what the app needs from [`Options`]: the data dir, the keys, the app database
//! and the session store chosen by flag. `main` and the tests share this.

use std::path::PathBuf;
use std::sync::Arc;

use session_core::csrf::CsrfLayer;
use session_core::{ExpiredDeletion, Expiry, Key, KeyRing, SessionLayer, SessionStore};
use session_store_file::FileStore;
use session_store_memory::MemoryStore;
use session_store_redis::RedisStore;
use session_store_sql::{PostgresStore, SqliteStore};

use crate::{keys, AppState, Db, Options, PasswordCost, StoreKind};

/// The session cookie's name: Secure, Path=/, no Domain, as the `__Host-` prefix requires.
/// Browsers keep and send such cookies over https:// and over plain http:// on localhost
/// and 127.0.0.1 (Chromium, Firefox), so the default needs no TLS locally.
pub const COOKIE_NAME: &str = "__Host-bm_session";

/// The cookie that binds the CSRF tokens of visitors without a session (see
/// `session_core::csrf`), with the same attributes.
pub const CSRF_COOKIE_NAME: &str = "__Host-bm_csrf";

/// The session cookie's name with `--insecure-cookies` (no Secure, so no prefix).
pub const INSECURE_COOKIE_NAME: &str = "bm_session";

/// The CSRF cookie's name with `--insecure-cookies`.
pub const INSECURE_CSRF_COOKIE_NAME: &str = "bm_csrf";

/// The session cookie's name for `opts`.
#[must_use]
pub fn cookie_name(opts: &Options) -> &'static str {
    if opts.insecure_cookies {
        INSECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The data dir or a key file.
    #[error("data dir {path}: {source}")]
    DataDir {
        /// The path that failed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The app database.
    #[error("app database: {0}")]
    Database(#[from] sqlx::Error),
    /// A store that needs a URL was chosen without one.
    #[error("--session-store {store} needs {flag}")]
    MissingUrl {
        /// The store.
        store: StoreKind,
        /// The flag to add.
        flag: &'static str,
    },
    /// The session store could not be opened.
    #[error("session store {store}: {source}")]
    SessionStore {
        /// The store.
        store: StoreKind,
        /// The cause.
        #[source]
        source: session_core::BoxError,
    },
}

/// Creates the data dir and keys if missing, opens the app database and the session store
/// `opts` chooses, and builds the state. The database files are kept 0600 and the file
/// store's folder 0700, like the keys. Starts background sweeps of expired sessions.
///
/// # Errors
///
/// [`SetupError`] says which part failed.
pub async fn open(opts: &Options, cost: PasswordCost) -> Result<AppState, SetupError> {
    let dir = &opts.data_dir;
    let io = |path: PathBuf| move |source| SetupError::DataDir { path, source };
    keys::ensure_private_dir(dir).map_err(io(dir.clone()))?;
    let vault_key = keys::load_or_create(&dir.join("vault.key")).map_err(io(dir.join("vault.key")))?;
    let session_key = keys::load_or_create(&dir.join("session.key")).map_err(io(dir.join("session.key")))?;
    let db_path = dir.join("app.db");
    keys::private_db_file(&db_path).map_err(io(db_path.clone()))?;
    let db = Db::open(&db_path).await?;
    // The CSRF tokens' own context keeps them apart from the session's uses of this key.
    let csrf = csrf_layer(opts, session_key.clone());
    let layer = session_layer(opts, session_key).await?;
    let mut state = AppState::new(db, vault_key, layer, csrf, opts.store, cost).await;
    state.cookie_name = cookie_name(opts);
    Ok(state)
}

/// CSRF protection for every state-changing request: forms from the origins `opts` serves.
fn csrf_layer(opts: &Options, key: Key) -> CsrfLayer {
    opts.allowed_origins()
        .into_iter()
        .fold(CsrfLayer::new(KeyRing::new(key)), CsrfLayer::with_allowed_origin)
        .with_cookie_name(if opts.insecure_cookies { INSECURE_CSRF_COOKIE_NAME } else { CSRF_COOKIE_NAME })
        // Secure by default; off only when asked (see `--insecure-cookies`).
        .with_secure(!opts.insecure_cookies)
        .with_max_body(crate::web::MAX_BODY)
}

/// The session layer for the store `opts` chooses, with the app's cookie settings.
async fn session_layer(opts: &Options, key: Key) -> Result<SessionLayer, SetupError> {
    let store = opts.store;
    let fail = |source: session_core::BoxError| SetupError::SessionStore { store, source };
    let url = |url: &Option<String>, flag| url.clone().ok_or(SetupError::MissingUrl { store, flag });
    let server_side: Arc<dyn SessionStore> = match store {
        StoreKind::Cookie => {
            return Ok(cookie_settings(opts, SessionLayer::client_side_private(KeyRing::new(key))))
        }
        StoreKind::Memory => sweep(MemoryStore::default()),
        StoreKind::File => {
            let path = opts.data_dir.join("sessions");
            keys::private_subdir(&path)
                .map_err(|source| SetupError::DataDir { path: path.clone(), source })?;
            sweep(FileStore::new(path).map_err(|e| fail(e.into()))?)
        }
        StoreKind::Sqlite => {
            let path = opts.data_dir.join("sessions.db");
            keys::private_db_file(&path)
                .map_err(|source| SetupError::DataDir { path: path.clone(), source })?;
            let s = SqliteStore::open(path).await.map_err(|e| fail(e.into()))?;
            s.migrate().await.map_err(|e| fail(e.into()))?;
            sweep(s)
        }
        StoreKind::Postgres => {
            let s = PostgresStore::connect(&url(&opts.postgres_url, "--postgres-url")?)
                .await
                .map_err(|e| fail(e.into()))?;
            s.migrate().await.map_err(|e| fail(e.into()))?;
            sweep(s)
        }
        // Redis expires keys natively: no sweep. Session events between instances (a
        // logout closing sockets elsewhere) are signed with a key of their own, which every
        // instance sharing the Redis must be given (the same data dir's `events.key`).
        StoreKind::Redis => {
            let path = opts.data_dir.join("events.key");
            let events =
                keys::load_or_create(&path).map_err(|source| SetupError::DataDir { path, source })?;
            let store = RedisStore::connect(url(&opts.redis_url, "--redis-url")?)
                .await
                .map_err(|e| fail(e.into()))?;
            Arc::new(store.with_event_keys(KeyRing::new(events)))
        }
    };
    // Signed ids: a forged or guessed cookie is refused before any store lookup.
    Ok(cookie_settings(opts, SessionLayer::from_arc(server_side).with_signed(KeyRing::new(key))))
}

fn cookie_settings(opts: &Options, layer: SessionLayer) -> SessionLayer {
    layer
        .with_name(cookie_name(opts))
        // Secure by default (the layer's own default); off only when asked.
        .with_secure(!opts.insecure_cookies)
        // Until the user asks to be remembered at login.
        .with_expiry(Expiry::BrowserSession)
        // No session outlives this, however active; a browser-session login ends sooner
        // (see `web::auth::start_login`).
        .with_max_lifetime(crate::web::MAX_SESSION_LIFETIME)
}

/// Shares `store` with a task that deletes its expired sessions every ten minutes.
fn sweep<S: ExpiredDeletion + Clone>(store: S) -> Arc<dyn SessionStore> {
    tokio::spawn(store.clone().continuously_delete_expired(time::Duration::minutes(10)));
    Arc::new(store)
}
