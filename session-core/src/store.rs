//! The storage backend trait.
//!
//! A store keeps [`Record`]s keyed by [`RecordId`] (a digest of the cookie's id). The end of
//! a request never sends a whole record back: it sends a [`Patch`] (the keys it set or
//! removed), which the store applies atomically to whatever it holds now. So concurrent
//! requests of one session that change different keys never conflict, and an in-place
//! [`Session::update`](crate::Session::update) is re-run by the layer when its key changed
//! underneath it ([`StoreError::Conflict`]).
//!
//! A store in a few lines (a single lock; the real `MemoryStore` is sharded). It keeps a
//! [`Stored`](crate::Stored) per id: a record, or the forward `cycle` leaves behind.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use session_core::{Applied, Forward, Patch, Record, RecordId, SessionStore, Stored, StoreError};
//! use time::OffsetDateTime;
//!
//! #[derive(Debug, Default)]
//! struct Tiny(Mutex<HashMap<RecordId, Stored>>);
//!
//! fn live(map: &mut HashMap<RecordId, Stored>, id: &RecordId, now: OffsetDateTime) -> Option<Record> {
//!     match map.get(id) {
//!         Some(Stored::Record(r)) if !r.is_expired_at(now) => Some(r.clone()),
//!         _ => None,
//!     }
//! }
//!
//! #[async_trait::async_trait]
//! impl SessionStore for Tiny {
//!     async fn create(&self, record: &Record) -> Result<(), StoreError> {
//!         let mut map = self.0.lock().unwrap();
//!         if map.get(&record.id).is_some_and(|s| s.expires_at() > OffsetDateTime::now_utc()) {
//!             return Err(StoreError::Collision);
//!         }
//!         map.insert(record.id, Stored::Record(record.clone()));
//!         Ok(())
//!     }
//!     async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
//!         Ok(live(&mut self.0.lock().unwrap(), id, OffsetDateTime::now_utc()))
//!     }
//!     async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
//!         let mut map = self.0.lock().unwrap();
//!         let now = OffsetDateTime::now_utc();
//!         let mut record = live(&mut map, &patch.id, now).ok_or(StoreError::NotFound)?;
//!         let applied = patch.apply_to(&mut record, now)?;
//!         if applied.ended {
//!             map.remove(&patch.id);
//!         } else {
//!             map.insert(patch.id, Stored::Record(record));
//!         }
//!         Ok(applied)
//!     }
//!     async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
//!         let mut map = self.0.lock().unwrap();
//!         let now = OffsetDateTime::now_utc();
//!         let mut record = live(&mut map, &patch.id, now).ok_or(StoreError::NotFound)?;
//!         let old_expires_at = record.expires_at;
//!         let applied = patch.apply_to(&mut record, now)?;
//!         if applied.ended {
//!             map.remove(&patch.id);
//!             return Ok(applied);
//!         }
//!         if map.get(&to).is_some_and(|s| s.expires_at() > now) {
//!             return Err(StoreError::Collision);
//!         }
//!         record.id = to;
//!         map.insert(to, Stored::Record(record));
//!         map.insert(patch.id, Stored::Forward(Forward::new(to, old_expires_at, now)));
//!         Ok(applied)
//!     }
//!     async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
//!         let mut map = self.0.lock().unwrap();
//!         let mut next = Some(*id);
//!         for _ in 0..=session_core::store::MAX_FORWARDS {
//!             let Some(id) = next.take() else { break };
//!             if let Some(Stored::Forward(f)) = map.remove(&id) {
//!                 next = Some(f.to);
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//! ```

use std::fmt::Debug;

use async_trait::async_trait;

use tokio::sync::broadcast;

use crate::{Applied, BoxError, Patch, Record, RecordId, SessionEvent, SessionHandle, SessionInfo};

/// How many [`Forward`](crate::Forward)s a [`SessionStore::delete`] follows: a chain longer than this (an id
/// cycled this often within [`Forward::LIFETIME`](crate::Forward::LIFETIME)) is cut there.
pub const MAX_FORWARDS: usize = 16;

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `apply`: a [`Change::expect`](crate::Change::expect) does not hold (another request
    /// changed that key first); nothing was applied.
    #[error("a session key was changed by another request first")]
    Conflict,
    /// `create`: a live record with this id exists already; the caller picks a new id.
    #[error("a session record with this id exists already")]
    Collision,
    /// `apply`: the record no longer exists (deleted or expired meanwhile). A store must not
    /// re-create it.
    #[error("session record no longer exists")]
    NotFound,
    /// Stored bytes are not a valid record.
    #[error("stored session record is corrupt")]
    Corrupt(#[source] BoxError),
    /// The backend failed (I/O, network, driver); the cause is the source.
    #[error("session store backend failed")]
    Backend(#[source] BoxError),
    /// The store cannot do this (e.g. list sessions per user); the text says what.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// Wraps a backend's error, keeping it as the `source()`.
    pub fn backend(err: impl Into<BoxError>) -> Self {
        Self::Backend(err.into())
    }
}

/// A session storage backend.
///
/// Every method must honour expiry: an expired record is never returned by `load` and
/// counts as absent for `create` and `apply`.
///
/// A stored record that does not decode (torn write, disk corruption, a foreign value
/// under the key) is no session: `load` logs it without its content or id, may delete it,
/// and returns `None`. Returning [`StoreError::Corrupt`] instead would turn one bad record
/// into a 500 on every request of that browser until the record expires. The conformance suite in
/// `session_core::testing` (feature `testing`) checks a store against this contract.
#[async_trait]
pub trait SessionStore: Debug + Send + Sync + 'static {
    /// Stores a new record. Never overwrites a live record: on an existing id it returns
    /// [`StoreError::Collision`].
    async fn create(&self, record: &Record) -> Result<(), StoreError>;

    /// The live record with this id, or `None` if there is none or it has expired.
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError>;

    /// Applies `patch` to the live record atomically: all of it or, when an expectation
    /// fails, none of it ([`StoreError::Conflict`]). [`Patch::apply_to`] does the work for
    /// stores that hold a decoded record. A patch that leaves the record empty or expired
    /// deletes it ([`Applied::ended`]). Returns [`StoreError::NotFound`] when there is no
    /// live record; it never re-creates a deleted one.
    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError>;

    /// Gives the live record `patch.id` a new id ([`Session::cycle_id`](crate::Session::cycle_id)),
    /// atomically: applies `patch` to what is stored (as [`apply`](SessionStore::apply) does),
    /// stores the result under `to` (same `created_at`, so the absolute lifetime still counts
    /// from the first login), and replaces the old record with a [`Forward`](crate::Forward) to `to`.
    ///
    /// The forward is what makes a logout that races the id change hold: it is no session
    /// for `load`, `apply` and `sessions_of`, but [`delete`](SessionStore::delete) of the
    /// old id (a logout, a revoke of a handle listed a moment earlier) follows it and
    /// deletes the new record too. It lives until [`Forward::expires_at`](crate::Forward::expires_at).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when there is no live record (deleted, expired, or already a
    /// forward): nothing is created. [`StoreError::Conflict`] when an expectation fails and
    /// [`StoreError::Collision`] when `to` is taken: nothing changes.
    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError>;

    /// Deletes the record; deleting a missing record is not an error. When `id` holds a
    /// [`Forward`](crate::Forward) left by [`cycle`](SessionStore::cycle), deletes it and the record it
    /// leads to, following at most [`MAX_FORWARDS`] forwards.
    async fn delete(&self, id: &RecordId) -> Result<(), StoreError>;

    /// The live sessions whose [`Record::user`] is `user`, in any order. Expired sessions
    /// never appear.
    ///
    /// The default says the store keeps no user index: [`StoreError::Unsupported`], never a
    /// silently empty list.
    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let _ = user;
        Err(StoreError::Unsupported("this session store keeps no per-user index"))
    }

    /// Deletes one session; returns whether it was live. The default loads, then deletes.
    async fn revoke(&self, handle: &SessionHandle) -> Result<bool, StoreError> {
        let id = handle.record_id();
        let existed = self.load(&id).await?.is_some();
        self.delete(&id).await?;
        Ok(existed)
    }

    /// Deletes every live session of `user` but `except`; returns the handles deleted. The
    /// default lists with [`SessionStore::sessions_of`] and revokes one by one.
    async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<Vec<SessionHandle>, StoreError> {
        let mut ended = Vec::new();
        for info in self.sessions_of(user).await? {
            if Some(&info.handle) != except && self.revoke(&info.handle).await? {
                ended.push(info.handle);
            }
        }
        Ok(ended)
    }

    /// Sends `event` to the other app instances sharing this store. The default does
    /// nothing: an in-process store has no other instances.
    async fn publish(&self, event: &SessionEvent) -> Result<(), StoreError> {
        let _ = event;
        Ok(())
    }

    /// Delivers events that other instances [`publish`](SessionStore::publish) into
    /// `sink` until no receiver is left, then returns `Ok`.
    /// [`SessionManager`](crate::SessionManager) runs it in a task. The default returns
    /// [`StoreError::Unsupported`] at once: nothing comes from elsewhere, and the manager
    /// then stops asking.
    async fn listen(&self, sink: broadcast::Sender<SessionEvent>) -> Result<(), StoreError> {
        let _ = sink;
        Err(StoreError::Unsupported("this session store carries no events between app instances"))
    }
}

/// Stores that can remove expired records in bulk.
///
/// ```no_run
/// # async fn run(store: impl session_core::ExpiredDeletion) {
/// use time::Duration;
/// // In a background task: sweep every five minutes.
/// tokio::spawn(store.continuously_delete_expired(Duration::minutes(5)));
/// # }
/// ```
#[async_trait]
pub trait ExpiredDeletion: SessionStore + Sized {
    /// Deletes every expired record; returns how many were deleted.
    async fn delete_expired(&self) -> Result<u64, StoreError>;

    /// Calls [`ExpiredDeletion::delete_expired`] every `period`, forever. A failed sweep is
    /// logged and retried at the next tick rather than ending the task.
    async fn continuously_delete_expired(self, period: time::Duration) {
        // A zero or negative period would spin (tokio refuses a zero interval): sweep once a
        // minute instead.
        let period = std::time::Duration::try_from(period)
            .ok()
            .filter(|p| !p.is_zero())
            .unwrap_or(std::time::Duration::from_secs(60));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(err) = self.delete_expired().await {
                tracing::warn!(error = %err, "deleting expired sessions failed");
            }
        }
    }
}

/// The system time, for what runs on real time (waits, the test client's cookie jar); the
/// layer's expiry decisions read its [`Clock`](crate::clock::Clock) instead.
pub(crate) fn now() -> time::OffsetDateTime {
    crate::clock::system_now()
}
