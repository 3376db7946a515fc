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
//! With several app instances, each has its own cache: a read on instance B can see data
//! that instance A has since changed, until B writes (the conflict refreshes it) or the
//! entry expires. Writes never lose updates either way. Sessions that end on another
//! instance (revoked, destroyed, cycled) are dropped from this cache through the store's
//! events, which flow once the app has called
//! [`SessionManager::subscribe`](crate::SessionManager::subscribe); a backing store without
//! cross-instance events (files, SQL) suits one instance per cache.
//!
//! ```
//! use session_core::{CachingStore, SessionLayer};
//! use session_store_memory::MemoryStore;
//!
//! // In production the backing store would be durable (session-store-sql, -redis, -file).
//! let store = CachingStore::new(MemoryStore::default(), MemoryStore::default());
//! let layer = SessionLayer::new(store);
//! # let _ = layer;
//! ```

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::{
    Applied, Patch, Record, RecordId, SessionEvent, SessionHandle, SessionInfo, SessionStore, StoreError,
};

/// A cache store in front of a backing store. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct CachingStore<C, B> {
    cache: C,
    backing: B,
}

impl<C: SessionStore, B: SessionStore> CachingStore<C, B> {
    /// Loads through `cache`, keeps `backing` as the source of truth.
    pub fn new(cache: C, backing: B) -> Self {
        Self { cache, backing }
    }

    /// Puts a record the backing store just accepted into the cache. The cache is only an
    /// optimisation: when it fails, the entry is dropped so no stale copy stays behind.
    async fn refresh_cache(&self, record: &Record) {
        let cached = match self.cache.create(record).await {
            Err(StoreError::Collision) => {
                // Replace whatever version the cache holds.
                match self.cache.delete(&record.id).await {
                    Ok(()) => self.cache.create(record).await,
                    Err(err) => Err(err),
                }
            }
            other => other,
        };
        if let Err(err) = cached {
            tracing::warn!(error = %err, "session cache update failed; dropping the entry");
            self.forget(&record.id).await;
        }
    }

    async fn forget(&self, id: &RecordId) {
        if let Err(err) = self.cache.delete(id).await {
            tracing::warn!(error = %err, "session cache delete failed");
        }
    }
}

#[async_trait]
impl<C: SessionStore, B: SessionStore> SessionStore for CachingStore<C, B> {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.backing.create(record).await?;
        self.refresh_cache(record).await;
        Ok(())
    }

    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        match self.cache.load(id).await {
            Ok(Some(record)) => return Ok(Some(record)),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "session cache load failed; using the backing store"),
        }
        let found = self.backing.load(id).await?;
        if let Some(record) = &found {
            self.refresh_cache(record).await;
        }
        Ok(found)
    }

    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        let applied = match self.backing.apply(patch).await {
            Ok(applied) => applied,
            Err(err) => {
                // Conflict: the cached copy is older than the backing store's. NotFound: the
                // record is gone. Either way the cached copy must not be served again.
                if matches!(err, StoreError::Conflict | StoreError::NotFound) {
                    self.forget(&patch.id).await;
                }
                return Err(err);
            }
        };
        // The same patch on the cached copy gives the backing store's record exactly when
        // the copy was current: then both reach the same version. Otherwise drop it.
        let current = !applied.ended
            && matches!(self.cache.apply(patch).await, Ok(cached) if cached.version == applied.version);
        if !current {
            self.forget(&patch.id).await;
        }
        Ok(applied)
    }

    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        let applied = match self.backing.cycle(patch, to).await {
            Ok(applied) => applied,
            Err(err) => {
                if matches!(err, StoreError::Conflict | StoreError::NotFound) {
                    self.forget(&patch.id).await;
                }
                return Err(err);
            }
        };
        // The cached copy moves the same way (leaving the cache's own forward, which a later
        // delete follows), or both ids are dropped from the cache.
        let current = !applied.ended
            && matches!(self.cache.cycle(patch, to).await, Ok(cached) if cached.version == applied.version);
        if !current {
            self.forget(&patch.id).await;
            self.forget(&to).await;
        }
        Ok(applied)
    }

    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        self.backing.delete(id).await?;
        self.forget(id).await;
        Ok(())
    }

    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        // The backing store's index is the complete one.
        self.backing.sessions_of(user).await
    }

    async fn revoke(&self, handle: &SessionHandle) -> Result<bool, StoreError> {
        let existed = self.backing.revoke(handle).await?;
        self.forget(&handle.record_id()).await;
        Ok(existed)
    }

    async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<Vec<SessionHandle>, StoreError> {
        let ended = self.backing.revoke_user(user, except).await?;
        for handle in &ended {
            self.forget(&handle.record_id()).await;
        }
        Ok(ended)
    }

    async fn publish(&self, event: &SessionEvent) -> Result<(), StoreError> {
        self.backing.publish(event).await
    }

    async fn listen(&self, sink: broadcast::Sender<SessionEvent>) -> Result<(), StoreError> {
        // Sessions that end on another instance must leave this instance's cache too, or
        // the cache would keep accepting a revoked cookie.
        let (tx, mut rx) = broadcast::channel(1024);
        let forward = async {
            loop {
                match rx.recv().await {
                    Ok(event) => {
                        let gone = match event {
                            SessionEvent::Cycled { old, .. } => Some(old),
                            other => other.ended(),
                        };
                        if let Some(handle) = gone {
                            self.forget(&handle.record_id()).await;
                        }
                        let _ = sink.send(event);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        let (listened, ()) = tokio::join!(self.backing.listen(tx), forward);
        listened
    }
}
