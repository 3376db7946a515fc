//! Binding a long-lived task (a WebSocket) to a session: a future that resolves when the
//! session ends.
//!
//! [`Session::ended`] (or [`SessionManager::ended`] with a [`SessionHandle`]) resolves with
//! an [`EndReason`] when the session is flushed, emptied, revoked, moved to a new id, or
//! expires by its idle or absolute timeout. Ends that have an event (flush, revoke, id
//! change) are heard through the [`SessionManager`]'s events, from other instances too when
//! the store carries them (Redis with `with_event_keys`). Expiry has no event: the future
//! sleeps until the record's expiry instant, then asks the store again (another request may
//! have moved the instant on) and resolves only when the record is really over.
//!
//! A WebSocket handler selects on it and closes with 1008 (policy violation):
//!
//! ```
//! use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
//! use axum::{response::Response, routing::get, Router};
//! use session_core::{Session, SessionLayer};
//! use session_store_memory::MemoryStore;
//!
//! async fn socket(ws: WebSocketUpgrade, session: Session) -> Result<Response, session_core::Error> {
//!     // Authenticate the upgrade first (this also loads the session).
//!     let _user = session.user().await?;
//!     Ok(ws.on_upgrade(move |mut socket: WebSocket| async move {
//!         let ended = session.ended();
//!         tokio::pin!(ended);
//!         loop {
//!             tokio::select! {
//!                 reason = &mut ended => {
//!                     let frame = CloseFrame { code: 1008, reason: format!("session {reason}").into() };
//!                     let _ = socket.send(Message::Close(Some(frame))).await;
//!                     return;
//!                 }
//!                 msg = socket.recv() => match msg {
//!                     Some(Ok(Message::Text(text))) => {
//!                         if socket.send(Message::Text(text)).await.is_err() { return; }
//!                     }
//!                     Some(Ok(_)) => {}
//!                     _ => return,
//!                 },
//!             }
//!         }
//!     }))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/ws", get(socket))
//!     .layer(SessionLayer::new(MemoryStore::default()));
//! ```

use std::fmt;
use std::future::Future;

use time::{Duration, OffsetDateTime};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::session::Backend;
use crate::store::now;
use crate::{Record, Session, SessionEvent, SessionHandle, SessionManager, SessionStore};

/// Why a session ended; see [`Session::ended`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// Revoked by a [`SessionManager`], on this instance or (with events) another.
    Revoked,
    /// Flushed (a logout) or emptied by one of its own requests.
    Destroyed,
    /// Moved to a new id by `cycle_id`: the handle the task was bound to is gone, the
    /// session lives on under `new`.
    Cycled {
        /// The session's handle now.
        new: SessionHandle,
    },
    /// Its idle or absolute timeout passed.
    Expired,
    /// It was not live when the watch began or re-checked (never stored, already over, or
    /// ended on an instance whose event this one did not hear).
    Gone,
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Revoked => "revoked",
            Self::Destroyed => "ended",
            Self::Cycled { .. } => "moved to a new id",
            Self::Expired => "expired",
            Self::Gone => "gone",
        })
    }
}

/// How long to wait before asking a failing store again.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The longest sleep between two looks at the store, so a far expiry instant needs no
/// special case.
const LONGEST_SLEEP: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

impl SessionManager {
    /// Resolves when the session `handle` names ends; see the [`ended`](crate::ended)
    /// module. The record's expiry instant includes the layer's absolute lifetime as of the
    /// last write; [`Session::ended`] also applies the layer's current one.
    ///
    /// Call it inside a Tokio runtime: it subscribes to the events at once, so no end
    /// between this call and the first poll is missed. In client-side mode (no store) it
    /// resolves at once with [`EndReason::Gone`].
    pub fn ended(&self, handle: SessionHandle) -> impl Future<Output = EndReason> + Send + 'static {
        self.watch(handle, None)
    }

    fn watch(
        &self,
        handle: SessionHandle,
        max_lifetime: Option<Duration>,
    ) -> impl Future<Output = EndReason> + Send + 'static {
        let events = self.store.is_some().then(|| self.subscribe());
        let store = self.store.clone();
        async move {
            match (store, events) {
                (Some(store), Some(events)) => watch(&*store, handle, events, max_lifetime).await,
                _ => EndReason::Gone,
            }
        }
    }
}

impl Session {
    /// Resolves when this session ends: flushed or emptied, revoked, moved to a new id, or
    /// expired (idle or absolute timeout). For binding a WebSocket to the session that
    /// opened it; see the [`ended`](crate::ended) module for an example.
    ///
    /// It loads the session if no call has yet. A session that is not stored (new, or the
    /// load failed) resolves at once with [`EndReason::Gone`]. In client-side mode nothing
    /// can revoke a session, so it resolves when the cookie this request carried expires.
    ///
    /// Call it inside a Tokio runtime (it subscribes to the session events at once).
    pub fn ended(&self) -> impl Future<Output = EndReason> + Send + 'static {
        let session = self.clone();
        let config = self.config();
        let (manager, max_lifetime) = (config.manager.clone(), config.max_lifetime);
        let events = matches!(config.backend, Backend::Store(_)).then(|| manager.subscribe());
        async move {
            let (rid, meta, expiry) = match session.load().await {
                Ok(st) => (st.rid, st.meta, st.expiry.value),
                Err(_) => return EndReason::Gone,
            };
            match (&session.config().backend, events) {
                (Backend::Store(store), Some(events)) => match rid {
                    Some(rid) => {
                        watch(&**store, SessionHandle::from_record_id(rid), events, max_lifetime).await
                    }
                    None => EndReason::Gone,
                },
                _ => {
                    let Some(meta) = meta else { return EndReason::Gone };
                    let policy = session.policy(expiry);
                    let mut end = meta.expires_at;
                    if let Some(max) = policy.max_lifetime {
                        end = end.min(meta.created_at.saturating_add(max));
                    }
                    while now() < end {
                        tokio::time::sleep(until(end)).await;
                    }
                    EndReason::Expired
                }
            }
        }
    }
}

/// When `record` ends by time.
fn deadline(record: &Record, max_lifetime: Option<Duration>) -> OffsetDateTime {
    match max_lifetime {
        Some(max) => record.expires_at.min(record.created_at.saturating_add(max)),
        None => record.expires_at,
    }
}

/// How long to sleep until `at`, at most [`LONGEST_SLEEP`].
fn until(at: OffsetDateTime) -> std::time::Duration {
    std::time::Duration::try_from(at - now()).unwrap_or_default().min(LONGEST_SLEEP)
}

/// What `event` means for the session `handle`, if it ends it.
fn reason(event: SessionEvent, handle: SessionHandle) -> Option<EndReason> {
    match event {
        SessionEvent::Revoked { handle: h } if h == handle => Some(EndReason::Revoked),
        SessionEvent::Destroyed { handle: h } if h == handle => Some(EndReason::Destroyed),
        SessionEvent::Cycled { old, new } if old == handle => Some(EndReason::Cycled { new }),
        _ => None,
    }
}

/// The end of `handle` among the events already received, if there is one.
fn heard(events: &mut broadcast::Receiver<SessionEvent>, handle: SessionHandle) -> Option<EndReason> {
    loop {
        match events.try_recv() {
            Ok(event) => {
                if let Some(reason) = reason(event, handle) {
                    return Some(reason);
                }
            }
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return None,
        }
    }
}

/// The watch: look at the store, then wait for an event about `handle` or the record's
/// expiry instant, whichever comes first, and look again after the latter.
async fn watch(
    store: &dyn SessionStore,
    handle: SessionHandle,
    events: broadcast::Receiver<SessionEvent>,
    max_lifetime: Option<Duration>,
) -> EndReason {
    let mut events = Some(events);
    // The instant the record was last known to end at: a record missing after it expired.
    let mut known_end: Option<OffsetDateTime> = None;
    loop {
        let wait = match store.load(&handle.record_id()).await {
            Ok(Some(record)) => {
                let end = deadline(&record, max_lifetime);
                if end <= now() {
                    return EndReason::Expired;
                }
                known_end = Some(end);
                until(end)
            }
            Ok(None) if known_end.is_some_and(|end| end <= now()) => return EndReason::Expired,
            // An end since the subscription, heard but not yet read, says how it ended.
            Ok(None) => return events.as_mut().and_then(|rx| heard(rx, handle)).unwrap_or(EndReason::Gone),
            Err(err) => {
                tracing::warn!(error = %err, "checking a watched session failed; trying again");
                RETRY
            }
        };
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            let Some(rx) = events.as_mut() else {
                (&mut sleep).await;
                break;
            };
            tokio::select! {
                () = &mut sleep => break,
                event = rx.recv() => match event {
                    Ok(event) => {
                        if let Some(reason) = reason(event, handle) {
                            return reason;
                        }
                    }
                    // Missed some: one of them may have been ours, so ask the store.
                    Err(RecvError::Lagged(_)) => break,
                    // Every manager is gone: only the expiry is left to wait for.
                    Err(RecvError::Closed) => events = None,
                },
            }
        }
    }
}
