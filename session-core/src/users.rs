//! Sessions per user: list a user's devices, log them out, and hear about it.
//!
//! At login, tie the session to the user with [`Session::set_user`](crate::Session::set_user)
//! (and optionally name the device with [`Session::set_label`](crate::Session::set_label)).
//! Stores index sessions by user, so the app can list them, revoke one, or revoke all but
//! the current one. A [`SessionManager`] (from [`SessionLayer::manager`](crate::SessionLayer::manager))
//! does this and broadcasts a [`SessionEvent`] for every session that ends, so a task
//! holding a WebSocket can close it; stores shared by several app instances (Redis) carry
//! the events across instances.
//!
//! ```
//! use axum::{extract::State, routing::post, Router};
//! use session_core::{Session, SessionLayer, SessionManager};
//! use session_store_memory::MemoryStore;
//!
//! async fn log_out_other_devices(
//!     State(manager): State<SessionManager>,
//!     session: Session,
//! ) -> Result<String, session_core::Error> {
//!     let user = session.user().await?.unwrap_or_default();
//!     let ended = manager.revoke_user(&user, session.handle().as_ref()).await?;
//!     Ok(format!("logged out {} other devices", ended.len()))
//! }
//!
//! let layer = SessionLayer::new(MemoryStore::default());
//! let app: Router = Router::new()
//!     .route("/devices/others/logout", post(log_out_other_devices))
//!     .with_state(layer.manager())
//!     .layer(layer);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::{Error, Record, RecordId, SessionStore, StoreError};

/// An opaque handle to one stored session, for listing and revoking it.
///
/// It is the digest stores are keyed by, not the cookie's id: safe to put in a page or a
/// form ("log out this device"), useless as a cookie. Text form: 64 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(RecordId);

impl SessionHandle {
    /// The handle of the record with this id.
    #[must_use]
    pub fn from_record_id(id: RecordId) -> Self {
        Self(id)
    }

    /// The record id a store uses for this session.
    #[must_use]
    pub fn record_id(&self) -> RecordId {
        self.0
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({:?})", self.0)
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for SessionHandle {
    type Err = crate::ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// What a store knows about one live session of a user. Never the cookie's id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Names the session for [`SessionManager::revoke`].
    pub handle: SessionHandle,
    /// The user it belongs to.
    pub user: String,
    /// The app's label for it, e.g. "Firefox on Linux".
    pub label: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was last used (refreshed with the throttled expiry refresh).
    pub last_seen: OffsetDateTime,
    /// When it ends unless used again.
    pub expires_at: OffsetDateTime,
}

impl SessionInfo {
    /// The listing entry for a record, if the record belongs to a user.
    #[must_use]
    pub fn from_record(record: &Record) -> Option<Self> {
        Some(Self {
            handle: SessionHandle(record.id),
            user: record.user.clone()?,
            label: record.label.clone(),
            created_at: record.created_at,
            last_seen: record.last_seen,
            expires_at: record.expires_at,
        })
    }
}

/// A session ended or changed id; see [`SessionManager::subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Ended by [`SessionManager::revoke`] or [`SessionManager::revoke_user`].
    Revoked {
        /// The session that ended.
        handle: SessionHandle,
    },
    /// Ended by its own request: `flush`, or emptied.
    Destroyed {
        /// The session that ended.
        handle: SessionHandle,
    },
    /// Moved to a new id by `cycle_id` (at login): the old handle is gone.
    Cycled {
        /// The handle before.
        old: SessionHandle,
        /// The handle after.
        new: SessionHandle,
    },
}

impl SessionEvent {
    /// The session this event ends, if it ends one (a `Cycled` session lives on under `new`).
    #[must_use]
    pub fn ended(&self) -> Option<SessionHandle> {
        match *self {
            Self::Revoked { handle } | Self::Destroyed { handle } => Some(handle),
            Self::Cycled { .. } => None,
        }
    }
}

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 1024;

/// Lists and revokes the sessions of users, and broadcasts [`SessionEvent`]s. Cheap to
/// clone; every clone (and the layer it came from) shares one event channel.
#[derive(Clone)]
pub struct SessionManager {
    pub(crate) store: Option<Arc<dyn SessionStore>>,
    events: broadcast::Sender<SessionEvent>,
    /// Whether the store's listener task runs; it stops when the last receiver goes.
    listening: Arc<AtomicBool>,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager").field("store", &self.store).finish_non_exhaustive()
    }
}

impl SessionManager {
    /// `store` is `None` in client-side mode, where there is nothing to list or revoke.
    pub(crate) fn new(store: Option<Arc<dyn SessionStore>>) -> Self {
        Self { store, events: broadcast::channel(EVENT_BUFFER).0, listening: Arc::default() }
    }

    fn store(&self) -> Result<&dyn SessionStore, Error> {
        self.store.as_deref().ok_or(Error::Store(StoreError::Unsupported(
            "client-side sessions live in cookies: there is no store to list or revoke them in",
        )))
    }

    /// The live sessions of `user`, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] with [`StoreError::Unsupported`] when the store keeps no user index
    /// (or in client-side mode), or when the store fails.
    pub async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, Error> {
        let mut list = self.store()?.sessions_of(user).await?;
        list.sort_by_key(|s| (s.created_at, s.handle));
        Ok(list)
    }

    /// Ends one session; its cookie is no session from its next request on. Returns
    /// whether it existed.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails (or in client-side mode).
    pub async fn revoke(&self, handle: &SessionHandle) -> Result<bool, Error> {
        let existed = self.store()?.revoke(handle).await?;
        if existed {
            self.emit(SessionEvent::Revoked { handle: *handle }).await;
        }
        Ok(existed)
    }

    /// Ends every session of `user` except `except` (the current one, for "log out all
    /// other devices"); returns the handles it ended.
    ///
    /// # Errors
    ///
    /// As [`SessionManager::sessions_of`].
    pub async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<Vec<SessionHandle>, Error> {
        let ended = self.store()?.revoke_user(user, except).await?;
        for handle in &ended {
            self.emit(SessionEvent::Revoked { handle: *handle }).await;
        }
        Ok(ended)
    }

    /// Every [`SessionEvent`] from now on: from this app instance, and from other instances
    /// when the store carries events between them (Redis). A receiver that falls more than
    /// 1024 events behind gets `RecvError::Lagged` and continues.
    ///
    /// Call it inside a Tokio runtime: the first call starts the store's listener task.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        let rx = self.events.subscribe();
        if let Some(store) = &self.store {
            if tokio::runtime::Handle::try_current().is_ok() && !self.listening.swap(true, Ordering::SeqCst) {
                let (store, sink, listening) =
                    (Arc::clone(store), self.events.clone(), Arc::clone(&self.listening));
                tokio::spawn(async move {
                    loop {
                        match store.listen(sink.clone()).await {
                            Ok(()) => listening.store(false, Ordering::SeqCst),
                            // An in-process store: there is nothing to listen to, ever, so
                            // `listening` stays set and no later `subscribe` asks again.
                            Err(StoreError::Unsupported(_)) => return,
                            Err(err) => {
                                // The next `subscribe` tries again.
                                listening.store(false, Ordering::SeqCst);
                                tracing::error!(error = %err, "session event listener stopped");
                                return;
                            }
                        }
                        // It stopped for want of receivers; one that arrived meanwhile would
                        // otherwise wait for remote events forever.
                        if sink.receiver_count() == 0 || listening.swap(true, Ordering::SeqCst) {
                            return;
                        }
                    }
                });
            }
        }
        rx
    }

    /// Broadcasts locally and, through the store, to other instances.
    pub(crate) async fn emit(&self, event: SessionEvent) {
        // No subscriber is not an error: nobody is waiting for this event.
        let _ = self.events.send(event);
        if let Some(store) = &self.store {
            if let Err(err) = store.publish(&event).await {
                tracing::warn!(error = %err, "publishing a session event failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Id;

    #[test]
    fn handles_round_trip_and_are_not_the_cookie() {
        let id = Id::random();
        let h = SessionHandle::from_record_id(id.record_id());
        assert_eq!(h.to_string().parse::<SessionHandle>().unwrap(), h);
        assert_ne!(h.to_string(), id.to_string());
        assert!("zz".parse::<SessionHandle>().is_err());
    }

    #[test]
    fn only_ending_events_end_a_session() {
        let a = SessionHandle::from_record_id(Id::random().record_id());
        let b = SessionHandle::from_record_id(Id::random().record_id());
        assert_eq!(SessionEvent::Revoked { handle: a }.ended(), Some(a));
        assert_eq!(SessionEvent::Destroyed { handle: a }.ended(), Some(a));
        assert_eq!(SessionEvent::Cycled { old: a, new: b }.ended(), None);
    }
}
