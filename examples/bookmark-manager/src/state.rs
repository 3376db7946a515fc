//! What every handler shares.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use session_core::csrf::CsrfLayer;
use session_core::{Key, KeyRing, SessionLayer, SessionManager};

use crate::hub::Hub;
use crate::passwords::PasswordCost;
use crate::throttle::Throttle;
use crate::{Db, StoreKind};

/// The app's shared state: cheap to clone (every field is shared or small).
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) db: Db,
    /// Seals vault secrets at rest; never used for cookies.
    pub(crate) vault: KeyRing,
    pub(crate) sessions: Arc<SessionLayer>,
    pub(crate) csrf: CsrfLayer,
    pub(crate) manager: SessionManager,
    pub(crate) store: StoreKind,
    pub(crate) hub: Hub,
    pub(crate) password_cost: PasswordCost,
    /// The session cookie's name (`setup::cookie_name`), shown on `/session`.
    pub(crate) cookie_name: &'static str,
    /// Hashed once so a login for an unknown name costs what a real check costs.
    pub(crate) dummy_hash: Arc<str>,
    /// Failed password checks per account and address.
    pub(crate) throttle: Arc<Throttle>,
    /// Registration attempts per requested name and address, failed or not.
    pub(crate) registrations: Arc<Throttle>,
    /// Take the client address from `X-Forwarded-For` (`--trust-proxy`).
    pub(crate) trust_proxy: bool,
    /// The `/demo/global` list: one for the whole process, newest first.
    demo: Arc<Mutex<VecDeque<String>>>,
}

impl AppState {
    /// Builds the state. `sessions` is the configured session layer for `store`, `csrf`
    /// the CSRF layer the router puts inside it; `vault_key` encrypts vault secrets.
    pub async fn new(
        db: Db,
        vault_key: Key,
        sessions: SessionLayer,
        csrf: CsrfLayer,
        store: StoreKind,
        password_cost: PasswordCost,
    ) -> Self {
        let manager = sessions.manager();
        let dummy_hash = password_cost.hash("no one's password".to_owned()).await.into();
        Self {
            db,
            vault: KeyRing::new(vault_key),
            sessions: Arc::new(sessions),
            csrf,
            manager,
            store,
            hub: Hub::default(),
            password_cost,
            cookie_name: crate::setup::COOKIE_NAME,
            dummy_hash,
            throttle: Arc::default(),
            registrations: Arc::new(Throttle::new(
                crate::throttle::REGISTRATION_LIMIT,
                crate::throttle::WINDOW,
            )),
            trust_proxy: false,
            demo: Arc::default(),
        }
    }

    /// Whether the client address is the last entry of `X-Forwarded-For` (set by a proxy
    /// in front of the app) instead of the socket's peer. Only for a proxy that sets it:
    /// otherwise clients choose their own address.
    #[must_use]
    pub fn trust_proxy(mut self, trust: bool) -> Self {
        self.trust_proxy = trust;
        self
    }

    /// Which session store is in use.
    #[must_use]
    pub fn store(&self) -> StoreKind {
        self.store
    }

    /// The session layer [`app`](crate::app) applies (tests open sessions through it with
    /// session-core's `TestClient::with_session_layer`).
    #[must_use]
    pub fn session_layer(&self) -> &SessionLayer {
        &self.sessions
    }

    /// Number of open WebSockets.
    #[must_use]
    pub fn open_sockets(&self) -> usize {
        self.hub.len()
    }

    pub(crate) fn demo(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.demo.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
