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

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use time::Duration;
use tokio::sync::broadcast;

use crate::id::DigestHasher;
use crate::store::MAX_FORWARDS;
use crate::{
    Applied, Forward, Patch, Record, RecordId, SessionEvent, SessionHandle, SessionInfo, SessionStore,
    StoreError,
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
        let applied = match self.backing.apply(patch).await {
            Ok(applied) => applied,
            Err(err) => {
                self.write_failed(&patch.id, &err).await;
                return Err(err);
            }
        };
        if applied.ended {
            let _ending = self.fresh.ending();
            self.end_locally(&patch.id).await;
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
            _ => self.forget(&patch.id).await,
        }
        Ok(applied)
    }

    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        let ticket = self.fresh.ticket();
        let applied = match self.backing.cycle(patch, to).await {
            Ok(applied) => applied,
            Err(err) => {
                self.write_failed(&patch.id, &err).await;
                return Err(err);
            }
        };
        if applied.ended {
            let _ending = self.fresh.ending();
            self.end_locally(&patch.id).await;
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

/// Number of independently locked shards of the bookkeeping; a power of two.
const SHARDS: usize = 32;

/// Entries a shard holds before it first drops the stale ones.
const PRUNE_FLOOR: usize = 64;

/// Which cached copies may be served, kept apart from the cache store (which cannot say
/// when a copy was read, and whose entries outlive their freshness).
///
/// Only copies worth serving have an entry, so it holds about as many entries as sessions
/// were read within the maximum staleness, plus the ids cycled in the last
/// [`Forward::LIFETIME`].
struct Freshness {
    shards: Box<[Mutex<Shard>]>,
    /// Entries vouched for under an older epoch are stale; bumped when events were missed.
    epoch: AtomicU64,
    /// Session ends (delete, revoke, ended by a patch, an end event) begun and finished on
    /// this instance. A fill is vouched for only if none overlapped its backing-store call:
    /// per-id counters would miss the ids an end reaches through the backing store's
    /// forwards, which this instance may never have seen.
    ends_started: AtomicU64,
    ends_finished: AtomicU64,
}

#[derive(Default)]
struct Shard {
    slots: HashMap<RecordId, Slot, BuildHasherDefault<DigestHasher>>,
    prune_at: usize,
}

impl Shard {
    /// Inserts `slot`, first dropping the entries that no longer matter once the shard has
    /// grown: stale copies (which are never served) and expired moves.
    fn insert(&mut self, id: RecordId, slot: Slot, epoch: u64, max: StdDuration) -> Option<Slot> {
        if self.slots.len() >= self.prune_at {
            let now = Instant::now();
            self.slots.retain(|_, slot| match *slot {
                Slot::Fresh { fetched_at, epoch: e, .. } => {
                    e == epoch && now.saturating_duration_since(fetched_at) < max
                }
                Slot::Moved { until, .. } => until > now,
            });
            // Amortised: the next sweep comes after as many inserts as entries are left.
            self.prune_at = (self.slots.len() * 2).max(PRUNE_FLOOR);
        }
        self.slots.insert(id, slot)
    }
}

#[derive(Clone, Copy)]
enum Slot {
    /// The cache's copy at `version` was current at `fetched_at`.
    Fresh { fetched_at: Instant, epoch: u64, version: u64 },
    /// The session was cycled to `to`: never served under this id, and ending this id ends `to`.
    Moved { to: RecordId, until: Instant },
}

/// Taken before a backing-store call whose result may be cached.
struct Ticket {
    at: Instant,
    epoch: u64,
    /// `ends_started` then, or `None` when an end was under way.
    ends: Option<u64>,
}

/// Held across a session end on this instance; see [`Freshness::ends_started`].
struct Ending<'a>(&'a Freshness);

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        // Also when the end was cancelled or failed, or no fill would ever be vouched again.
        self.0.ends_finished.fetch_add(1, Ordering::SeqCst);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a few map operations on plain values, so a panic elsewhere
    // cannot leave the map half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Freshness {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            epoch: AtomicU64::new(0),
            ends_started: AtomicU64::new(0),
            ends_finished: AtomicU64::new(0),
        }
    }

    fn shard(&self, id: &RecordId) -> MutexGuard<'_, Shard> {
        lock(&self.shards[usize::from(id.as_bytes()[0]) & (SHARDS - 1)])
    }

    fn ticket(&self) -> Ticket {
        let at = Instant::now();
        // Finished before started: equal then means no end was under way in between.
        let finished = self.ends_finished.load(Ordering::SeqCst);
        let started = self.ends_started.load(Ordering::SeqCst);
        Ticket {
            at,
            epoch: self.epoch.load(Ordering::SeqCst),
            ends: (started == finished).then_some(started),
        }
    }

    fn ending(&self) -> Ending<'_> {
        self.ends_started.fetch_add(1, Ordering::SeqCst);
        Ending(self)
    }

    /// The version of the cached copy of `id` that may be served now, if any.
    fn current(&self, id: &RecordId, max: StdDuration) -> Option<u64> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let now = Instant::now();
        match self.shard(id).slots.get(id) {
            Some(&Slot::Fresh { fetched_at, epoch: e, version })
                if e == epoch && now.saturating_duration_since(fetched_at) < max =>
            {
                Some(version)
            }
            _ => None,
        }
    }

    /// Vouches for the cached copy of `id` at `version` as of `ticket`, unless a session end
    /// overlapped since the ticket or `id` was cycled away. Returns whether it did.
    fn vouch(&self, id: &RecordId, ticket: &Ticket, version: u64, max: StdDuration) -> bool {
        let mut shard = self.shard(id);
        // Checked under the shard lock: an end that begins after this check drops the
        // entry only once this insert is done.
        if ticket.ends != Some(self.ends_started.load(Ordering::SeqCst)) {
            return false;
        }
        if matches!(shard.slots.get(id), Some(Slot::Moved { .. })) {
            return false;
        }
        let fresh = Slot::Fresh { fetched_at: ticket.at, epoch: ticket.epoch, version };
        shard.insert(*id, fresh, self.epoch.load(Ordering::SeqCst), max);
        true
    }

    /// Stops vouching for `id`'s copy. Returns whether `id` was cycled away (its entry stays).
    fn drop_fresh(&self, id: &RecordId) -> bool {
        let mut shard = self.shard(id);
        match shard.slots.get(id) {
            Some(Slot::Moved { .. }) => true,
            Some(Slot::Fresh { .. }) => {
                shard.slots.remove(id);
                false
            }
            None => false,
        }
    }

    /// Records that `from` was cycled to `to`. Returns whether a copy of `from` was vouched for.
    fn moved(&self, from: RecordId, to: RecordId, max: StdDuration) -> bool {
        let now = Instant::now();
        let lifetime = StdDuration::try_from(Forward::LIFETIME).unwrap_or(StdDuration::from_secs(600));
        let until = now.checked_add(lifetime).unwrap_or(now);
        let previous =
            self.shard(&from).insert(from, Slot::Moved { to, until }, self.epoch.load(Ordering::SeqCst), max);
        matches!(previous, Some(Slot::Fresh { .. }))
    }

    /// Forgets `id` and the ids it was cycled to, as a delete in the backing store follows its
    /// forwards; returns them all.
    fn end(&self, id: &RecordId) -> Vec<RecordId> {
        let mut ended = vec![*id];
        let mut next = *id;
        for _ in 0..=MAX_FORWARDS {
            match self.shard(&next).slots.remove(&next) {
                Some(Slot::Moved { to, .. }) if !ended.contains(&to) => {
                    ended.push(to);
                    next = to;
                }
                _ => break,
            }
        }
        ended
    }

    /// Marks every copy stale.
    fn stale_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}
