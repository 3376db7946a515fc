//! A read-through cache in front of a durable store.
//!
//! [`CachingStore`] answers loads from a fast cache (typically the memory store) and falls
//! back to the backing store (SQL, Redis, files) on a miss. Writes go to the backing store
//! first, then to the cache, so the backing store is always the truth; deletes remove both.
//!
//! Versions keep the two consistent: a save is checked against the backing store's version,
//! so a stale cache entry can never overwrite newer data. When the backing store reports a
//! conflict, the cache entry is dropped, the layer reloads (now from the backing store),
//! merges its own changes and saves again.
//!
//! # Logout and revoke across instances: bounded staleness
//!
//! With several app instances, each has its own cache. A cached copy is served only while
//! it is younger than the store's *maximum staleness*: [`DEFAULT_MAX_STALENESS`] (one
//! second) unless set with [`CachingStore::with_max_staleness`]. An older copy is reloaded
//! from the backing store. So:
//!
//! - **Every instance refuses a session at most the maximum staleness after it ended
//!   anywhere** (a logout, [`SessionManager::revoke`](crate::SessionManager::revoke),
//!   `revoke_user`, a cycled-away id), with no events at all: a copy is served only if it was
//!   read from or written to the backing store less than that long ago. The same bound holds
//!   for data another instance changed.
//! - **On the instance that ended it, at once**: its copies are dropped, including the new id
//!   of a session this instance cycled, and a load that was in flight meanwhile may return
//!   the old record but never puts it back in the cache.
//! - Events shorten the window: once the app has called
//!   [`SessionManager::subscribe`](crate::SessionManager::subscribe), sessions ended
//!   elsewhere are dropped as their events arrive (Redis carries them). Events can be lost
//!   (a reconnect, a slow listener), so they are never relied on: a lagging or restarted
//!   event stream marks every cached copy stale.
//!
//! The price: each instance reads each session it serves from the backing store at most once
//! per maximum staleness (plus misses), and when the backing store is down, loads fail once
//! the copies are stale instead of serving sessions that may have been revoked. A zero
//! staleness reads the backing store on every load; a long one trades revocation latency
//! for fewer reads.
//!
//! ```
//! use session_core::{CachingStore, Id, Record, SessionLayer, SessionStore};
//! use session_store_memory::MemoryStore;
//! use time::{Duration, OffsetDateTime};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_core::StoreError> {
//! // In production the shared store would be durable (session-store-sql, -redis, -file).
//! let shared = MemoryStore::default();
//! let staleness = Duration::milliseconds(50);
//! // Two app instances, each with its own cache.
//! let a = CachingStore::new(MemoryStore::default(), shared.clone()).with_max_staleness(staleness);
//! let b = CachingStore::new(MemoryStore::default(), shared.clone()).with_max_staleness(staleness);
//!
//! let now = OffsetDateTime::now_utc();
//! let mut record = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
//! record.entries.insert("user", vec![1].into());
//! a.create(&record).await?;
//! assert!(b.load(&record.id).await?.is_some()); // b caches it
//!
//! a.delete(&record.id).await?; // a logout on instance a
//! assert!(a.load(&record.id).await?.is_none()); // at once on a
//! tokio::time::sleep(std::time::Duration::from_millis(60)).await;
//! assert!(b.load(&record.id).await?.is_none()); // on b once the bound has passed
//!
//! let layer = SessionLayer::new(b);
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration as StdDuration;

mod fresh;

use self::fresh::{Freshness, Ticket};

use async_trait::async_trait;
use time::Duration;
use tokio::sync::broadcast;

use crate::{
    Applied, Patch, Record, RecordId, SessionEvent, SessionHandle, SessionInfo, SessionStore, StoreError,
};

/// How old a cached copy may be before it is reloaded, unless set with
/// [`CachingStore::with_max_staleness`]: one second.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::SECOND;

/// A cache store in front of a backing store. See the [module docs](self). Clones share
/// their cache bookkeeping (and the stores, when those are shared handles).
#[derive(Clone)]
pub struct CachingStore<C, B> {
    cache: C,
    backing: B,
    max_staleness: StdDuration,
    fresh: Arc<Freshness>,
}

impl<C: fmt::Debug, B: fmt::Debug> fmt::Debug for CachingStore<C, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bookkeeping holds record ids: never printed.
        f.debug_struct("CachingStore")
            .field("cache", &self.cache)
            .field("backing", &self.backing)
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

impl<C: SessionStore, B: SessionStore> CachingStore<C, B> {
    /// Loads through `cache`, keeps `backing` as the source of truth; cached copies are
    /// served for at most [`DEFAULT_MAX_STALENESS`].
    pub fn new(cache: C, backing: B) -> Self {
        Self {
            cache,
            backing,
            max_staleness: StdDuration::try_from(DEFAULT_MAX_STALENESS).unwrap_or(StdDuration::ZERO),
            fresh: Arc::new(Freshness::new()),
        }
    }

    /// Serves a cached copy only while it is younger than `max`, then reloads it from the
    /// backing store: a session ended on another instance is refused here at most `max`
    /// after it ended. Zero (or negative) reads the backing store on every load.
    #[must_use]
    pub fn with_max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = StdDuration::try_from(max).unwrap_or(StdDuration::ZERO);
        self
    }

    /// How old a cached copy may be when served; see [`with_max_staleness`](Self::with_max_staleness).
    #[must_use]
    pub fn max_staleness(&self) -> Duration {
        Duration::try_from(self.max_staleness).unwrap_or(Duration::MAX)
    }

    /// Puts a record the backing store just returned or accepted into the cache, and vouches
    /// for it from `ticket` on, unless a session ended on this instance meanwhile: the
    /// record may then be one that no longer exists, so it must not stay cached.
    async fn fill(&self, record: &Record, ticket: &Ticket) {
        if self.put(record).await && !self.fresh.vouch(&record.id, ticket, record.version, self.max_staleness)
        {
            self.cache_delete(&record.id).await;
        }
    }

    /// Puts `record` into the cache, replacing what it holds. The cache is only an
    /// optimisation: when it fails, the entry is dropped so no stale copy stays behind.
    async fn put(&self, record: &Record) -> bool {
        let cached = match self.cache.create(record).await {
            Err(StoreError::Collision) => match self.cache.delete(&record.id).await {
                Ok(()) => self.cache.create(record).await,
                Err(err) => Err(err),
            },
            other => other,
        };
        match cached {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, "session cache update failed; dropping the entry");
                self.forget(&record.id).await;
                false
            }
        }
    }

    /// Stops serving this instance's copy of `id` (it is stale, not ended).
    async fn forget(&self, id: &RecordId) {
        // The cache's own delete of an old id would follow its forward and drop the session's
        // current copy too; the bookkeeping alone already keeps the old id from being served.
        if !self.fresh.drop_fresh(id) {
            self.cache_delete(id).await;
        }
    }

    /// Drops `id` and every id it was cycled to (as far as this instance saw) from the cache,
    /// after the session ended. The caller holds an [`Ending`].
    async fn end_locally(&self, id: &RecordId) {
        for id in self.fresh.end(id) {
            self.cache_delete(&id).await;
        }
    }

    async fn cache_delete(&self, id: &RecordId) {
        if let Err(err) = self.cache.delete(id).await {
            tracing::warn!(error = %err, "session cache delete failed");
        }
    }

    /// What the backing store's answer to a write of `id` (a patch or an id change) means
    /// for this instance: a failure is handled as `write_failed` says, and a write that ended
    /// the session drops it here at once.
    async fn after_backing_write(
        &self,
        id: &RecordId,
        result: Result<Applied, StoreError>,
    ) -> Result<Applied, StoreError> {
        match result {
            Err(err) => {
                self.write_failed(id, &err).await;
                Err(err)
            }
            Ok(applied) => {
                if applied.ended {
                    let _ending = self.fresh.ending();
                    self.end_locally(id).await;
                }
                Ok(applied)
            }
        }
    }

    /// What a failed backing-store write means for the cached copy.
    async fn write_failed(&self, id: &RecordId, err: &StoreError) {
        match err {
            // The cached copy is older than the backing store's: reload it next time.
            StoreError::Conflict => self.forget(id).await,
            // The record is gone (ended elsewhere): a load on its way must not cache it.
            StoreError::NotFound => {
                let _ending = self.fresh.ending();
                self.forget(id).await;
            }
            _ => {}
        }
    }
}

#[async_trait]
impl<C: SessionStore, B: SessionStore> SessionStore for CachingStore<C, B> {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let ticket = self.fresh.ticket();
        self.backing.create(record).await?;
        self.fill(record, &ticket).await;
        Ok(())
    }

    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        if let Some(version) = self.fresh.current(id, self.max_staleness) {
            match self.cache.load(id).await {
                // Another fill may have replaced the copy the bookkeeping vouches for.
                Ok(Some(record)) if record.version == version => return Ok(Some(record)),
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "session cache load failed; using the backing store")
                }
            }
        }
        let ticket = self.fresh.ticket();
        let found = self.backing.load(id).await?;
        match &found {
            Some(record) => self.fill(record, &ticket).await,
            None => self.forget(id).await,
        }
        Ok(found)
    }

    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        let ticket = self.fresh.ticket();
        let applied = self.after_backing_write(&patch.id, self.backing.apply(patch).await).await?;
        if applied.ended {
            return Ok(applied);
        }
        // The same patch on the cached copy gives the backing store's record exactly when
        // the copy was current: then both reach the same version, and the copy is as fresh
        // as this write. Otherwise drop it.
        match self.cache.apply(patch).await {
            Ok(cached) if cached.version == applied.version => {
                if !self.fresh.vouch(&patch.id, &ticket, applied.version, self.max_staleness) {
                    self.cache_delete(&patch.id).await;
                }
            }
            _ => {
                self.forget(&patch.id).await;
                self.fresh.floor(&patch.id, applied.version, self.max_staleness);
            }
        }
        Ok(applied)
    }

    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        let ticket = self.fresh.ticket();
        let applied = self.after_backing_write(&patch.id, self.backing.cycle(patch, to).await).await?;
        if applied.ended {
            return Ok(applied);
        }
        // Remembered before the cache moves, so a delete of the old id on this instance
        // drops `to` too, whatever the cache holds by then.
        self.fresh.moved(patch.id, to, self.max_staleness);
        // The cached copy moves the same way (leaving the cache's own forward, which a later
        // delete follows), or both ids are dropped from the cache.
        match self.cache.cycle(patch, to).await {
            Ok(cached) if cached.version == applied.version => {
                if !self.fresh.vouch(&to, &ticket, applied.version, self.max_staleness) {
                    self.cache_delete(&to).await;
                }
            }
            _ => {
                self.fresh.drop_fresh(&to);
                self.cache_delete(&patch.id).await;
                self.cache_delete(&to).await;
            }
        }
        Ok(applied)
    }

    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        let _ending = self.fresh.ending();
        let deleted = self.backing.delete(id).await;
        // Even a failed delete may have deleted: the copy is not served again either way.
        self.end_locally(id).await;
        deleted
    }

    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        // The backing store's index is the complete one.
        self.backing.sessions_of(user).await
    }

    async fn revoke(&self, handle: &SessionHandle) -> Result<bool, StoreError> {
        let _ending = self.fresh.ending();
        let existed = self.backing.revoke(handle).await;
        self.end_locally(&handle.record_id()).await;
        existed
    }

    async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<Vec<SessionHandle>, StoreError> {
        let _ending = self.fresh.ending();
        match self.backing.revoke_user(user, except).await {
            Ok(ended) => {
                for handle in &ended {
                    self.end_locally(&handle.record_id()).await;
                }
                // The backing store may also have ended sessions it does not name: one that
                // an id change moved between its listing and its delete is reached through
                // the forward, under an id this instance may hold a copy of. "Log out
                // everywhere" is rare; revalidating every copy once is its price.
                self.fresh.stale_all();
                Ok(ended)
            }
            Err(err) => {
                // Some sessions may have ended, and which is unknown.
                self.fresh.stale_all();
                Err(err)
            }
        }
    }

    async fn publish(&self, event: &SessionEvent) -> Result<(), StoreError> {
        self.backing.publish(event).await
    }

    async fn listen(&self, sink: broadcast::Sender<SessionEvent>) -> Result<(), StoreError> {
        // Events published while nobody listened (before the first listen, during a
        // reconnect) are lost: any copy cached until now may be of an ended session.
        self.fresh.stale_all();
        let (tx, mut rx) = broadcast::channel(1024);
        let forward = async {
            loop {
                match rx.recv().await {
                    Ok(event) => {
                        match event {
                            SessionEvent::Cycled { old, new } => {
                                if self.fresh.moved(old.record_id(), new.record_id(), self.max_staleness) {
                                    // Cycled elsewhere: the cached record under the old id is
                                    // garbage now.
                                    self.cache_delete(&old.record_id()).await;
                                }
                            }
                            other => {
                                if let Some(handle) = other.ended() {
                                    let _ending = self.fresh.ending();
                                    self.end_locally(&handle.record_id()).await;
                                }
                            }
                        }
                        let _ = sink.send(event);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        tracing::warn!("session events were missed; revalidating every cached session");
                        self.fresh.stale_all();
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        let (listened, ()) = tokio::join!(self.backing.listen(tx), forward);
        listened
    }
}
