#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod evict;
mod shard;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use session_core::clock::{Clock, SystemClock};
use session_core::store::MAX_FORWARDS;
use session_core::{
    Applied, ExpiredDeletion, Forward, Patch, Record, RecordId, SessionInfo, SessionStore, StoreError, Stored,
};
use time::OffsetDateTime;

use crate::shard::{current, Shard};

/// Number of independently locked shards; a power of two so the shard is a mask away.
const SHARDS: usize = 32;

/// A concurrent in-memory session store. Clones share their data.
///
/// Records are spread over 32 independently locked shards by their id (a uniform digest),
/// so requests of different sessions rarely contend, and no lock is held across an await.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shards: Arc<[Mutex<Shard>]>,
    /// User -> ids of records that had that user when written. A hint: listings check
    /// each record, and drop ids whose record is gone or moved to another user.
    users: Arc<Mutex<HashMap<String, HashSet<RecordId>>>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::default()).collect(), users: Arc::default() }
    }
}

impl MemoryStore {
    /// Bounds the store to about `max_records` sessions (split evenly over the 32 shards;
    /// the forwards [`SessionStore::cycle`] leaves count too), so a flood of new sessions
    /// cannot exhaust memory. Clones made before share the bound.
    ///
    /// When a shard is full, creating a session evicts, in this order:
    /// - expired records and forwards;
    /// - the least recently used anonymous session (no [`Record::user`]), so a flood of
    ///   cookieless requests evicts anonymous sessions, mostly its own, and logs no one out;
    /// - only when the shard holds no anonymous session, the least recently used
    ///   logged-in one (a forward counts as logged in when its session is).
    ///
    /// "Used" means loaded or applied, and "least recently" is approximate (a CLOCK, or
    /// second chance: a session used since the last round survives one more). A create on
    /// a full shard costs O(1) amortized, under the shard's lock as before: a load or apply
    /// sets one flag, an eviction usually looks at one or two sessions, and once every
    /// shard-capacity evictions a sweep of the shard removes the expired ones. A bounded
    /// store keeps a queue entry of 40 bytes per session.
    #[must_use]
    pub fn with_capacity(self, max_records: usize) -> Self {
        let cap = max_records.div_ceil(SHARDS).max(1);
        for shard in self.shards.iter() {
            lock(shard).bound(cap);
        }
        self
    }

    /// Number of records held, expired ones not yet swept included, and the forwards that
    /// [`SessionStore::cycle`] leaves at old ids (each kept at most [`Forward::LIFETIME`]).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether the store holds no records.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn index(&self, record: &Record) {
        if let Some(user) = &record.user {
            lock(&self.users).entry(user.clone()).or_default().insert(record.id);
        }
    }

    fn shard(&self, id: &RecordId) -> MutexGuard<'_, Shard> {
        lock(&self.shards[self.shard_index(id)])
    }

    fn shard_index(&self, id: &RecordId) -> usize {
        usize::from(id.as_bytes()[0]) & (SHARDS - 1)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a critical section cannot leave a shard unusable: a patch applies
    // whole or not at all, and a clock entry is queued before its slot is stored, while
    // the clock skips entries whose slot is gone. So a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `cycle` under the locks of both shards (`target: None` when `to` is in `from`'s shard);
/// returns the user to index the new record under.
fn move_record(
    from: &mut Shard,
    target: Option<&mut Shard>,
    patch: &Patch,
    to: RecordId,
    now: OffsetDateTime,
) -> Result<(Applied, Option<String>), StoreError> {
    // A copy, so a refused patch or a taken id leaves the old record as it was.
    let mut record = from.with_live(&patch.id, now, |r| r.clone()).ok_or(StoreError::NotFound)?;
    let old_expires_at = record.expires_at;
    let applied = patch.apply_to(&mut record, now)?;
    if applied.ended {
        from.remove(&patch.id);
        return Ok((applied, None));
    }
    let taken = match &target {
        Some(t) => t.is_taken(&to, now),
        None => from.is_taken(&to, now),
    };
    if taken {
        return Err(StoreError::Collision);
    }
    record.id = to;
    let user = record.user.clone();
    let logged_in = user.is_some();
    match target {
        Some(t) => t.insert(record),
        None => from.insert(record),
    };
    from.leave_forward(patch.id, Forward::new(to, old_expires_at, now), logged_in);
    Ok((applied, user))
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let mut shard = self.shard(&record.id);
        match shard.get(&record.id) {
            // Only a taken id needs the time: is its record still live?
            Some(slot) if current(slot, now()) => return Err(StoreError::Collision),
            // Replacing an expired slot takes no room.
            Some(_) => {}
            None => shard.make_room(),
        }
        shard.insert(record.clone());
        drop(shard);
        self.index(record);
        Ok(())
    }

    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let now = now();
        Ok(self.shard(id).with_live(id, now, |r| r.clone()))
    }

    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        let now = now();
        let mut shard = self.shard(&patch.id);
        let applied = shard.with_live(&patch.id, now, |current| {
            let reindex = patch.user.is_some() && patch.user != current.user;
            patch.apply_to(current, now).map(|applied| (applied, reindex))
        });
        let (applied, reindex) = match applied {
            Some(Ok(done)) => done,
            Some(Err(err)) => return Err(err),
            None => return Err(StoreError::NotFound),
        };
        if applied.ended {
            shard.remove(&patch.id);
            return Ok(applied);
        }
        drop(shard);
        if let (true, Some(user)) = (reindex, &patch.user) {
            lock(&self.users).entry(user.clone()).or_default().insert(patch.id);
        }
        Ok(applied)
    }

    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        let now = now();
        let (a, b) = (self.shard_index(&patch.id), self.shard_index(&to));
        let (applied, user) = if a == b {
            move_record(&mut lock(&self.shards[a]), None, patch, to, now)?
        } else {
            // Both shards locked, always in index order, so two cycles cannot deadlock.
            let mut lo = lock(&self.shards[a.min(b)]);
            let mut hi = lock(&self.shards[a.max(b)]);
            let (from, target) = if a < b { (&mut *lo, &mut *hi) } else { (&mut *hi, &mut *lo) };
            move_record(from, Some(target), patch, to, now)?
        };
        if let Some(user) = user {
            lock(&self.users).entry(user).or_default().insert(to);
        }
        Ok(applied)
    }

    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        // The user index keeps the id until the next listing or sweep drops it.
        let now = now();
        let mut id = *id;
        for _ in 0..=MAX_FORWARDS {
            match self.shard(&id).remove(&id) {
                Some(Stored::Forward(f)) if !f.is_expired_at(now) => id = f.to,
                _ => break,
            }
        }
        Ok(())
    }

    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let now = now();
        let candidates: Vec<RecordId> = match lock(&self.users).get(user) {
            Some(ids) => ids.iter().copied().collect(),
            None => return Ok(Vec::new()),
        };
        let mut found = Vec::with_capacity(candidates.len());
        let mut listed = HashSet::with_capacity(candidates.len());
        let (mut stale, mut moved) = (Vec::new(), Vec::new());
        for id in candidates {
            // `cycle` indexes the new id only after it released the shard locks: a listing
            // in between finds a forward here, and follows it rather than miss the session.
            let mut at = id;
            for _ in 0..MAX_FORWARDS {
                match self.shard(&at).get(&at) {
                    Some(Stored::Forward(f)) if !f.is_expired_at(now) => at = f.to,
                    _ => break,
                }
            }
            let info = self
                .shard(&at)
                .peek_live(&at, now)
                .filter(|r| r.user.as_deref() == Some(user))
                .and_then(SessionInfo::from_record);
            match info {
                Some(info) => {
                    if at != id {
                        moved.push((id, at));
                    }
                    if listed.insert(at) {
                        found.push(info);
                    }
                }
                None => stale.push(id),
            }
        }
        if !stale.is_empty() || !moved.is_empty() {
            let mut users = lock(&self.users);
            let ids = users.entry(user.to_owned()).or_default();
            for id in &stale {
                ids.remove(id);
            }
            for (old, new) in &moved {
                ids.remove(old);
                ids.insert(*new);
            }
            if ids.is_empty() {
                users.remove(user);
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl ExpiredDeletion for MemoryStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let now = now();
        let removed: usize = self.shards.iter().map(|shard| lock(shard).remove_expired(now)).sum();
        // Drop index entries whose record is gone (expired, deleted or evicted).
        let mut users = lock(&self.users);
        users.retain(|_, ids| {
            ids.retain(|id| self.shard(id).contains(id));
            !ids.is_empty()
        });
        Ok(removed as u64)
    }
}

/// The wall clock the layer reads by default: on Linux, a third of the cost of a
/// full-resolution read, and this store reads it on every call.
fn now() -> OffsetDateTime {
    SystemClock.now()
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Id;
    use time::Duration;

    session_core::store_conformance_tests!(async { MemoryStore::default() });
    session_core::expired_deletion_tests!(async { MemoryStore::default() });
    session_core::history_tests!(async { MemoryStore::default() });
    mod users {
        use super::*;
        session_core::user_index_tests!(async { MemoryStore::default() });
    }
    /// The same contract with the clock kept up to date on every operation.
    mod bounded {
        use super::*;
        session_core::store_conformance_tests!(async { MemoryStore::default().with_capacity(100_000) });
        session_core::expired_deletion_tests!(async { MemoryStore::default().with_capacity(100_000) });
        mod users {
            use super::*;
            session_core::user_index_tests!(async { MemoryStore::default().with_capacity(100_000) });
        }
    }

    /// A listing between `cycle`'s move and its indexing of the new id (found by the
    /// history check, `session_core::testing::history`): the index names only the old id,
    /// now a forward. The listing follows it, and `revoke_user` ends the session.
    #[tokio::test]
    async fn a_listing_while_a_cycle_indexes_the_new_id_finds_the_session() {
        let store = MemoryStore::default();
        let now = OffsetDateTime::now_utc();
        let mut record = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
        record.entries.insert("k", vec![1].into());
        record.user = Some("mid-cycle".to_owned());
        store.create(&record).await.unwrap();
        let to = Id::random().record_id();
        let patch = Patch::new(record.id, record.expires_at, now);
        // `cycle` up to the moment its shard locks are released, before it indexes `to`.
        let (a, b) = (store.shard_index(&record.id), store.shard_index(&to));
        if a == b {
            move_record(&mut store.shard(&record.id), None, &patch, to, now).unwrap();
        } else {
            let (mut from, mut target) = (lock(&store.shards[a]), lock(&store.shards[b]));
            move_record(&mut from, Some(&mut target), &patch, to, now).unwrap();
        }
        let listed: Vec<RecordId> =
            store.sessions_of("mid-cycle").await.unwrap().iter().map(|i| i.handle.record_id()).collect();
        assert_eq!(listed, vec![to], "the moved session is missing from the listing");
        assert_eq!(store.revoke_user("mid-cycle", None).await.unwrap().len(), 1);
        assert!(store.load(&to).await.unwrap().is_none(), "revoke_user missed a session mid-cycle");
        assert!(store.sessions_of("mid-cycle").await.unwrap().is_empty());
    }

    #[test]
    fn keys_of_one_shard_spread_over_the_table() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hasher = BuildHasherDefault::<crate::shard::DigestHasher>::default();
        let mut buckets = HashSet::new();
        let mut in_shard = 0;
        while in_shard < 1000 {
            let id = Id::random().record_id();
            if usize::from(id.as_bytes()[0]) & (SHARDS - 1) == 0 {
                in_shard += 1;
                buckets.insert(hasher.hash_one(id) % 64);
            }
        }
        assert!(buckets.len() >= 56, "1000 keys of shard 0 fill only {} of 64 buckets", buckets.len());
    }

    fn record(ttl: Duration) -> Record {
        let now = OffsetDateTime::now_utc();
        Record::new(Id::random().record_id(), now, now + ttl)
    }

    #[tokio::test]
    async fn clones_share_data() {
        let a = MemoryStore::default();
        let b = a.clone();
        let r = record(Duration::hours(1));
        a.create(&r).await.unwrap();
        assert_eq!(b.load(&r.id).await.unwrap(), Some(r));
        assert_eq!(b.len(), 1);
    }

    #[tokio::test]
    async fn the_background_sweep_removes_expired_records() {
        let store = MemoryStore::default();
        let live = record(Duration::hours(1));
        store.create(&live).await.unwrap();
        store.create(&record(-Duration::seconds(1))).await.unwrap();
        assert_eq!(store.len(), 2);
        let task = tokio::spawn(store.clone().continuously_delete_expired(Duration::milliseconds(5)));
        // Bounded wait for the first sweep; no timing is asserted.
        for _ in 0..500 {
            if store.len() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        task.abort();
        assert_eq!(store.len(), 1);
        assert!(store.load(&live.id).await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_on_many_sessions_lose_nothing() {
        let store = MemoryStore::default();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for _ in 0..500 {
                        let r = record(Duration::hours(1));
                        store.create(&r).await.unwrap();
                        let mut patch = Patch::new(r.id, r.expires_at, r.created_at);
                        patch.changes.push(session_core::Change::set("k", Some(vec![1].into())));
                        store.apply(&patch).await.unwrap();
                        ids.push(r.id);
                    }
                    ids
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        assert_eq!(store.len(), 4000);
        for id in all {
            assert_eq!(store.load(&id).await.unwrap().unwrap().version, 2);
        }
    }
}
