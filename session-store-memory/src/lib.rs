#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use session_core::store::MAX_FORWARDS;
use session_core::{
    Applied, ExpiredDeletion, Forward, Patch, Record, RecordId, SessionInfo, SessionStore, Stored, StoreError,
};
use time::OffsetDateTime;

/// Number of independently locked shards; a power of two so the shard is a mask away.
const SHARDS: usize = 32;

/// A concurrent in-memory session store. Clones share their data.
///
/// Records are spread over 32 independently locked shards by their id (a uniform digest),
/// so requests of different sessions rarely contend, and no lock is held across an await.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shards: Arc<[Mutex<Shard>]>,
    /// Most records per shard, if bounded.
    shard_capacity: Option<usize>,
    /// User -> ids of records that had that user when written. A hint: listings check
    /// each record, and drop ids whose record is gone or moved to another user.
    users: Arc<Mutex<HashMap<String, HashSet<RecordId>>>>,
}

/// Records are boxed: a table of small slots grows and inserts with less copying, and a
/// new record is written into freshly recycled (cached) memory rather than into the table.
/// A slot holds a record or the [`Forward`] a `cycle` left.
type Shard = HashMap<RecordId, Box<Stored>, BuildHasherDefault<DigestHasher>>;

/// Hashes a [`RecordId`] by eight of its bytes. Record ids are SHA-256 digests of random
/// ids: uniform, and no client can choose one (it would need a preimage), so they need no
/// keyed hash against flooding. Bytes 8..16 are used because byte 0 picks the shard, which
/// would leave every key of a shard with the same low bits.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        if let Some(part) = bytes.get(8..16) {
            word.copy_from_slice(part);
        } else {
            // Not a digest (never the case for `RecordId`): still a valid, if weak, hash.
            let n = bytes.len().min(8);
            word[..n].copy_from_slice(&bytes[..n]);
        }
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, _length_prefix: usize) {}
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shard_capacity: None,
            users: Arc::default(),
        }
    }
}

impl MemoryStore {
    /// Bounds the store to about `max_records` live sessions (split evenly over the
    /// shards). When a shard is full, creating a session first drops its expired records,
    /// then the record closest to expiring, so a flood of new sessions cannot exhaust memory.
    #[must_use]
    pub fn with_capacity(mut self, max_records: usize) -> Self {
        self.shard_capacity = Some(max_records.div_ceil(SHARDS).max(1));
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
    // Every critical section is a single map operation, so a panic elsewhere cannot leave
    // a map half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn live<'a>(shard: &'a mut Shard, id: &RecordId, now: OffsetDateTime) -> Option<&'a mut Record> {
    match shard.get_mut(id).map(|s| &mut **s) {
        Some(Stored::Record(r)) if !r.is_expired_at(now) => Some(r),
        _ => None,
    }
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
    let stored = live(from, &patch.id, now).ok_or(StoreError::NotFound)?;
    let old_expires_at = stored.expires_at;
    // A copy, so a refused patch or a taken id leaves the old record as it was.
    let mut record = stored.clone();
    let applied = patch.apply_to(&mut record, now)?;
    if applied.ended {
        from.remove(&patch.id);
        return Ok((applied, None));
    }
    let taken = match &target {
        Some(t) => t.get(&to),
        None => from.get(&to),
    };
    if taken.is_some_and(|s| current(s, now)) {
        return Err(StoreError::Collision);
    }
    record.id = to;
    let user = record.user.clone();
    let moved = Box::new(Stored::Record(record));
    match target {
        Some(t) => t.insert(to, moved),
        None => from.insert(to, moved),
    };
    from.insert(patch.id, Box::new(Stored::Forward(Forward::new(to, old_expires_at, now))));
    Ok((applied, user))
}

/// Whether a slot still counts (a live record, or a forward not yet expired).
fn current(slot: &Stored, now: OffsetDateTime) -> bool {
    slot.expires_at() > now
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let mut shard = self.shard(&record.id);
        if let Some(slot) = shard.get(&record.id) {
            // Only a taken id needs the time: is its record still live?
            if current(slot, OffsetDateTime::now_utc()) {
                return Err(StoreError::Collision);
            }
        } else if let Some(cap) = self.shard_capacity.filter(|&cap| shard.len() >= cap) {
            let now = OffsetDateTime::now_utc();
            shard.retain(|_, s| current(s, now));
            if shard.len() >= cap {
                let victim = shard.iter().min_by_key(|(_, s)| s.expires_at()).map(|(id, _)| *id);
                if let Some(victim) = victim {
                    shard.remove(&victim);
                }
            }
        }
        shard.insert(record.id, Box::new(Stored::Record(record.clone())));
        drop(shard);
        self.index(record);
        Ok(())
    }

    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let now = OffsetDateTime::now_utc();
        Ok(live(&mut self.shard(id), id, now).map(|r| r.clone()))
    }

    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut shard = self.shard(&patch.id);
        let current = live(&mut shard, &patch.id, now).ok_or(StoreError::NotFound)?;
        let reindex = patch.user.is_some() && patch.user != current.user;
        let applied = patch.apply_to(current, now)?;
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
        let now = OffsetDateTime::now_utc();
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
        let now = OffsetDateTime::now_utc();
        let mut id = *id;
        for _ in 0..=MAX_FORWARDS {
            match self.shard(&id).remove(&id).map(|s| *s) {
                Some(Stored::Forward(f)) if !f.is_expired_at(now) => id = f.to,
                _ => break,
            }
        }
        Ok(())
    }

    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let candidates: Vec<RecordId> = match lock(&self.users).get(user) {
            Some(ids) => ids.iter().copied().collect(),
            None => return Ok(Vec::new()),
        };
        let mut found = Vec::with_capacity(candidates.len());
        let mut stale = Vec::new();
        for id in candidates {
            let info = live(&mut self.shard(&id), &id, now)
                .filter(|r| r.user.as_deref() == Some(user))
                .and_then(|r| SessionInfo::from_record(r));
            match info {
                Some(info) => found.push(info),
                None => stale.push(id),
            }
        }
        if !stale.is_empty() {
            let mut users = lock(&self.users);
            if let Some(ids) = users.get_mut(user) {
                for id in &stale {
                    ids.remove(id);
                }
                if ids.is_empty() {
                    users.remove(user);
                }
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl ExpiredDeletion for MemoryStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let before = shard.len();
            shard.retain(|_, s| current(s, now));
            removed += before - shard.len();
        }
        // Drop index entries whose record is gone (expired, deleted or evicted).
        let mut users = lock(&self.users);
        users.retain(|_, ids| {
            ids.retain(|id| self.shard(id).contains_key(id));
            !ids.is_empty()
        });
        Ok(removed as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Id;
    use time::Duration;

    session_core::store_conformance_tests!(async { MemoryStore::default() });
    session_core::expired_deletion_tests!(async { MemoryStore::default() });
    mod users {
        use super::*;
        session_core::user_index_tests!(async { MemoryStore::default() });
    }

    #[test]
    fn keys_of_one_shard_spread_over_the_table() {
        use std::hash::BuildHasher;
        let hasher = BuildHasherDefault::<DigestHasher>::default();
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
    async fn capacity_evicts_expired_first_then_soonest_to_expire() {
        // One record per shard.
        let store = MemoryStore::default().with_capacity(SHARDS);
        // Same shard: force the first id byte by searching.
        let in_shard0 = |ttl| loop {
            let r = record(ttl);
            if usize::from(r.id.as_bytes()[0]) & (SHARDS - 1) == 0 {
                break r;
            }
        };
        let first = in_shard0(Duration::hours(1));
        let second = in_shard0(Duration::hours(2));
        store.create(&first).await.unwrap();
        store.create(&second).await.unwrap();
        assert!(store.load(&first.id).await.unwrap().is_none(), "evicted");
        assert!(store.load(&second.id).await.unwrap().is_some());
        let third = in_shard0(Duration::minutes(30));
        store.create(&third).await.unwrap();
        assert!(store.load(&second.id).await.unwrap().is_none());
        assert!(store.load(&third.id).await.unwrap().is_some());
        assert_eq!(store.len(), 1);
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
