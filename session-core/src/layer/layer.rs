use std::sync::Arc;

use http::StatusCode;
use time::Duration;
use tower_layer::Layer;

use super::SessionService;
use crate::client::{ClientCodec, CookieFormat, Protection};
use crate::cookie::{CookieConfig, IdCodec};
use crate::session::{Backend, Config, WriteQueue};
use crate::{Expiry, KeyRing, SameSite, SessionManager, SessionStore};

/// Adds a [`Session`](crate::Session) to every request and writes back what changed.
///
/// Server-side (the id in the cookie, data in a [`SessionStore`]):
///
/// ```
/// use axum::{routing::get, Router};
/// use session_core::{Expiry, Session, SessionLayer};
/// use session_store_memory::MemoryStore;
///
/// async fn visits(session: Session) -> String {
///     let n: u64 = session.get("visits").await.unwrap().unwrap_or(0);
///     session.insert("visits", n + 1).await.unwrap();
///     format!("visit {}", n + 1)
/// }
///
/// let layer = SessionLayer::new(MemoryStore::default())
///     .with_expiry(Expiry::OnInactivity(time::Duration::hours(8)))
///     .with_max_lifetime(time::Duration::days(7));
/// let app: Router = Router::new().route("/", get(visits)).layer(layer);
/// ```
///
/// Client-side (the whole session sealed in the cookie, no store):
///
/// ```
/// use session_core::{Key, KeyRing, SessionLayer};
///
/// let layer = SessionLayer::client_side_private(KeyRing::new(Key::generate()))
///     .with_name("__Host-session");
/// # let _ = layer;
/// ```
///
/// # Panics
///
/// Applying the layer to a service (e.g. `Router::layer`) panics when the cookie attributes
/// break a browser rule, since the browser would silently drop every cookie: a `__Host-`
/// name with a Domain, without Secure, or with a Path other than `/`; a `__Secure-` name
/// without Secure; `SameSite=None` or `Partitioned` without Secure; a name that is not a
/// cookie token.
#[derive(Debug, Clone)]
pub struct SessionLayer {
    // One pointer: axum clones the layer per request on a router without state.
    config: Arc<Config>,
}

impl SessionLayer {
    /// Server-side sessions in `store`. The cookie carries only a random id.
    #[must_use]
    pub fn new(store: impl SessionStore) -> Self {
        Self::with_backend(Backend::Store(Arc::new(store)))
    }

    /// Server-side sessions in a store that is already shared (e.g. with a cleanup task).
    #[must_use]
    pub fn from_arc(store: Arc<dyn SessionStore>) -> Self {
        Self::with_backend(Backend::Store(store))
    }

    /// Client-side sessions sealed with AES-256-GCM: the client can neither read nor change
    /// them. See the [`client`](crate::client) module docs for the limits of this mode.
    #[must_use]
    pub fn client_side_private(keys: KeyRing) -> Self {
        Self::with_backend(Backend::Client(ClientCodec::Builtin(Protection::Private(keys))))
    }

    /// Client-side sessions signed with HMAC-SHA256: the client can read them (base64 and
    /// MessagePack) but not change them. Store nothing secret in such a session.
    #[must_use]
    pub fn client_side_signed(keys: KeyRing) -> Self {
        Self::with_backend(Backend::Client(ClientCodec::Builtin(Protection::Signed(keys))))
    }

    /// Client-side sessions in a wire format of the app's own, for instance one another
    /// framework reads (see [`CookieFormat`]). The format protects the cookie: the layer
    /// trusts whatever it decodes.
    #[must_use]
    pub fn client_side(format: impl CookieFormat) -> Self {
        Self::with_backend(Backend::Client(ClientCodec::Custom(Arc::new(format))))
    }

    fn with_backend(backend: Backend) -> Self {
        // A test run may audit its whole log output for secrets (scripts/test).
        #[cfg(feature = "testing")]
        crate::testing::audit::install();
        let store = match &backend {
            Backend::Store(store) => Some(Arc::clone(store)),
            Backend::Client(_) => None,
        };
        Self {
            config: Arc::new(Config {
                manager: SessionManager::new(store),
                backend,
                cookie: CookieConfig::default(),
                id_codec: IdCodec::Plain,
                expiry: Expiry::default(),
                max_lifetime: None,
                error_status: StatusCode::INTERNAL_SERVER_ERROR,
                queue: Arc::new(WriteQueue::default()),
                clock: Arc::new(crate::clock::SystemClock),
            }),
        }
    }

    /// What every request's session gets from this layer (the test client opens sessions
    /// with it).
    #[cfg_attr(not(feature = "test-client"), allow(dead_code))]
    pub(crate) fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The cookie name (default `id`). Prefer `__Host-...` on HTTPS sites.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.config_mut().cookie.name = name.into();
        self
    }

    /// The cookie's Path (default `/`).
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.config_mut().cookie.path = path.into();
        self
    }

    /// The cookie's Domain (default none: the exact host only).
    ///
    /// # Security
    ///
    /// A Domain sends the cookie to every subdomain too, and lets subdomains set it.
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.config_mut().cookie.domain = Some(domain.into());
        self
    }

    /// The Secure attribute (default true).
    ///
    /// # Security
    ///
    /// Without Secure the cookie also travels over plain HTTP, where anyone on the path can
    /// read and replay it. Turn it off only for local development over `http://`.
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.config_mut().cookie.secure = secure;
        self
    }

    /// The HttpOnly attribute (default true).
    ///
    /// # Security
    ///
    /// Without HttpOnly any script on the page, an injected one included, can read the
    /// session cookie.
    #[must_use]
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.config_mut().cookie.http_only = http_only;
        self
    }

    /// The SameSite attribute (default `Lax`).
    ///
    /// # Security
    ///
    /// `SameSite::None` sends the cookie with cross-site requests: protect every
    /// state-changing route with CSRF tokens.
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.config_mut().cookie.same_site = Some(same_site);
        self
    }

    /// No SameSite attribute at all, as Flask sends by default; browsers then treat the
    /// cookie as `Lax`. Only for sharing a cookie with an app that sets it this way:
    /// otherwise prefer [`with_same_site`](Self::with_same_site).
    #[must_use]
    pub fn without_same_site(mut self) -> Self {
        self.config_mut().cookie.same_site = None;
        self
    }

    /// The Partitioned attribute (CHIPS; default false). Requires Secure.
    #[must_use]
    pub fn with_partitioned(mut self, partitioned: bool) -> Self {
        self.config_mut().cookie.partitioned = partitioned;
        self
    }

    /// The default expiry of sessions (default [`Expiry::BrowserSession`]); a session can
    /// override it with [`Session::set_expiry`](crate::Session::set_expiry).
    #[must_use]
    pub fn with_expiry(mut self, expiry: Expiry) -> Self {
        self.config_mut().expiry = expiry;
        self
    }

    /// An absolute lifetime: a session ends this long after it was created, however active
    /// it is and whatever its expiry says.
    #[must_use]
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.config_mut().max_lifetime = Some(max);
        self
    }

    /// Sign the id cookie with HMAC-SHA256 (server-side mode), so forged or guessed ids are
    /// refused before any store lookup. Ignored in client-side mode, which is always
    /// protected.
    #[must_use]
    pub fn with_signed(mut self, keys: KeyRing) -> Self {
        self.config_mut().id_codec = IdCodec::Signed(keys);
        self
    }

    /// Encrypt the id cookie with AES-256-GCM (server-side mode). Ignored in client-side mode.
    #[must_use]
    pub fn with_private(mut self, keys: KeyRing) -> Self {
        self.config_mut().id_codec = IdCodec::Private(keys);
        self
    }

    /// Lists and revokes users' sessions, and broadcasts the [`SessionEvent`](crate::SessionEvent)s
    /// of this layer's sessions. See the [`users`](crate::users) module.
    #[must_use]
    pub fn manager(&self) -> SessionManager {
        self.config.manager.clone()
    }

    /// The clock the layer's expiry decisions read (default: the system's). For tests: a
    /// [`ManualClock`](crate::clock::ManualClock) lets idle and absolute timeouts pass
    /// without sleeping. See the [`clock`](crate::clock) module.
    #[must_use]
    pub fn with_clock(mut self, clock: impl crate::clock::Clock) -> Self {
        self.config_mut().clock = Arc::new(clock);
        self
    }

    /// Whether browsers would keep this layer's cookie: the checks that applying the layer
    /// panics on (see [`SessionLayer`]), for an app that reads its configuration at run time
    /// and wants an error instead.
    ///
    /// # Errors
    ///
    /// The first rule the cookie attributes break.
    pub fn check(&self) -> Result<(), crate::ConfigError> {
        self.config.cookie.check()
    }

    /// The app's own ids and their cookie form, instead of 128 random bits in base64url
    /// (see [`IdFormat`](crate::IdFormat)): for a cookie and store shared with another
    /// framework. Replaces [`with_signed`](Self::with_signed) and
    /// [`with_private`](Self::with_private), and they replace it.
    #[must_use]
    pub fn with_id_format(mut self, format: impl crate::IdFormat) -> Self {
        self.config_mut().id_codec = IdCodec::Custom(Arc::new(format));
        self
    }

    /// The status of the response when the store fails (default 500): when loading or
    /// saving the session fails, and when a handler returns a store failure with `?`
    /// (feature `axum`; see `IntoResponse for Error`).
    ///
    /// ```
    /// use http::StatusCode;
    /// use session_core::SessionLayer;
    /// use session_store_memory::MemoryStore;
    ///
    /// // Tell clients and load balancers to retry a store outage.
    /// let layer = SessionLayer::new(MemoryStore::default()).with_error_status(StatusCode::SERVICE_UNAVAILABLE);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn with_error_status(mut self, status: StatusCode) -> Self {
        self.config_mut().error_status = status;
        self
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        if let Err(problem) = self.check() {
            panic!("invalid SessionLayer configuration: {problem}");
        }
        SessionService::new(inner, Arc::clone(&self.config))
    }
}
