//! What a full shard evicts: expired slots, then the least recently used anonymous
//! session, then the least recently used logged-in one.
//!
//! Recency is approximated by a CLOCK (second chance) per class: each slot has an entry in
//! the queue of its class, in the order the slots were stored; a load or apply sets the
//! slot's `used` bit. To evict, the hand takes the oldest entry: a used slot has its bit
//! cleared and goes to the back, an unused one is evicted. Every step is paid for by an
//! earlier insert, use, login or removal, so a create costs O(1) amortized.
//!
//! Entries are dropped lazily: a removed slot's entry stays until the hand or a compaction
//! meets it, and a slot that logged in moves to the logged-in queue when the hand finds it
//! in the anonymous one.

use std::collections::VecDeque;
use std::fmt;

use session_core::RecordId;
use time::OffsetDateTime;

use crate::shard::{current, Slot, Slots};

const ANONYMOUS: usize = 0;
const LOGGED_IN: usize = 1;

/// Stale entries tolerated beyond one per live slot before the queues are compacted; keeps a
/// small shard from compacting at every removal.
const SLACK: usize = 64;

pub(crate) struct Clock {
    /// Most slots of the shard.
    cap: usize,
    /// Indexed by [`ANONYMOUS`] and [`LOGGED_IN`]; oldest (next for the hand) first.
    queues: [VecDeque<Entry>; 2],
    next_ticket: u64,
    /// Evictions left before expired slots are swept from the whole shard: the hand mostly
    /// sees anonymous slots, and an expired logged-in one should not outlive a live
    /// anonymous one for long. One sweep per `cap` evictions keeps this O(1) amortized.
    until_sweep: usize,
}

struct Entry {
    id: RecordId,
    ticket: u64,
}

/// What the hand does with the slot of an entry.
enum Verdict {
    Evict,
    /// To the back of this queue.
    Requeue(usize),
}

impl Clock {
    pub(crate) fn new(cap: usize) -> Self {
        // The first time the shard fills, sweep before evicting anything live.
        Self { cap, queues: Default::default(), next_ticket: 0, until_sweep: 0 }
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    /// Queues a new slot as the most recent of its class; returns the slot's ticket.
    pub(crate) fn enqueue(&mut self, id: RecordId, logged_in: bool) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        self.queues[usize::from(logged_in)].push_back(Entry { id, ticket });
        ticket
    }

    /// Evicts until `slots` has room for one more.
    pub(crate) fn make_room(&mut self, slots: &mut Slots, now: OffsetDateTime) {
        if slots.len() < self.cap {
            return;
        }
        if self.until_sweep == 0 {
            slots.retain(|_, s| current(&s.stored, now));
            self.until_sweep = self.cap;
            self.compact_if_bloated(slots);
        }
        // A `cycle` adds a slot without evicting, so the shard may be over by more than one.
        while slots.len() >= self.cap && self.evict_one(slots, now) {
            self.until_sweep = self.until_sweep.saturating_sub(1);
        }
    }

    /// Evicts one slot; false only when no entry leads to a slot (then nothing can be).
    fn evict_one(&mut self, slots: &mut Slots, now: OffsetDateTime) -> bool {
        for class in [ANONYMOUS, LOGGED_IN] {
            while let Some(entry) = self.queues[class].pop_front() {
                let Some(slot) = slots.get_mut(&entry.id).filter(|s| s.ticket == entry.ticket) else {
                    continue;
                };
                match judge(slot, class, now) {
                    Verdict::Evict => {
                        slots.remove(&entry.id);
                        return true;
                    }
                    Verdict::Requeue(queue) => self.queues[queue].push_back(entry),
                }
            }
        }
        false
    }

    /// Drops the entries of removed slots once they outnumber the slots (plus [`SLACK`]):
    /// the work is at most twice the removals since the last compaction.
    pub(crate) fn compact_if_bloated(&mut self, slots: &Slots) {
        if self.queued() <= 2 * slots.len() + SLACK {
            return;
        }
        for queue in &mut self.queues {
            queue.retain(|e| slots.get(&e.id).is_some_and(|s| s.ticket == e.ticket));
        }
    }

    pub(crate) fn queued(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }
}

fn judge(slot: &mut Slot, class: usize, now: OffsetDateTime) -> Verdict {
    if !current(&slot.stored, now) {
        return Verdict::Evict;
    }
    match (slot.logged_in, class) {
        // Logged in since it was queued: from now on it waits behind the anonymous ones.
        (true, ANONYMOUS) => Verdict::Requeue(LOGGED_IN),
        // The hand reaches the logged-in queue only when no anonymous slot is left in the
        // anonymous one, so this one goes first.
        (false, LOGGED_IN) => Verdict::Evict,
        _ if std::mem::take(&mut slot.used) => Verdict::Requeue(class),
        _ => Verdict::Evict,
    }
}

impl fmt::Debug for Clock {
    // The ids are of no use in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("cap", &self.cap)
            .field("anonymous", &self.queues[ANONYMOUS].len())
            .field("logged_in", &self.queues[LOGGED_IN].len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use session_core::{Id, Patch, Record, SessionStore};
    use time::Duration;

    use super::*;
    use crate::{MemoryStore, SHARDS};

    /// A session with one key (a patch leaving a session with none ends it).
    fn record(ttl: Duration) -> Record {
        let now = OffsetDateTime::now_utc();
        let mut r = Record::new(Id::random().record_id(), now, now + ttl);
        r.entries.insert("csrf", vec![1].into());
        r
    }

    /// A record whose id falls in shard 0, found by drawing ids.
    fn in_shard0(ttl: Duration) -> Record {
        loop {
            let r = record(ttl);
            if usize::from(r.id.as_bytes()[0]) & (SHARDS - 1) == 0 {
                break r;
            }
        }
    }

    fn logged_in(mut r: Record, user: &str) -> Record {
        r.user = Some(user.into());
        r
    }

    /// A store whose shards hold `per_shard` slots each.
    fn bounded(per_shard: usize) -> MemoryStore {
        MemoryStore::default().with_capacity(per_shard * SHARDS)
    }

    async fn loads(store: &MemoryStore, r: &Record) -> bool {
        store.load(&r.id).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn a_flood_of_cookieless_requests_does_not_log_a_user_out() {
        let store = MemoryStore::default().with_capacity(1000);
        let most = 1000usize.div_ceil(SHARDS) * SHARDS;
        let user = logged_in(record(Duration::hours(1)), "alice");
        store.create(&user).await.unwrap();
        for i in 0..10_000 {
            // Later records expire later: eviction by expiry would pick the user's first.
            store.create(&record(Duration::hours(1) + Duration::milliseconds(i))).await.unwrap();
            if i % 300 == 0 {
                assert!(loads(&store, &user).await, "logged out after {i} creates");
            }
            assert!(store.len() <= most, "{} slots after {i} creates", store.len());
        }
        assert!(loads(&store, &user).await);
        // The flood filled the store and evicted its own.
        assert!(store.len() > most - SHARDS, "only {} slots", store.len());
    }

    #[tokio::test]
    async fn the_least_recently_used_anonymous_sessions_go_first() {
        let store = bounded(8);
        let old: Vec<_> = (0..8).map(|_| in_shard0(Duration::hours(1))).collect();
        for r in &old {
            store.create(r).await.unwrap();
        }
        // The oldest, and the first to expire, is the one in use.
        assert!(loads(&store, &old[0]).await);
        let burst: Vec<_> = (0..4).map(|_| in_shard0(Duration::hours(2))).collect();
        for r in &burst {
            store.create(r).await.unwrap();
        }
        for (i, r) in old.iter().enumerate().skip(1).take(4) {
            assert!(!loads(&store, r).await, "old[{i}] survived");
        }
        assert!(loads(&store, &old[0]).await, "the recently used session was evicted");
        for r in old.iter().skip(5).chain(&burst) {
            assert!(loads(&store, r).await);
        }
        assert_eq!(store.len(), 8);
    }

    #[tokio::test]
    async fn without_loads_the_oldest_goes_first_whatever_its_expiry() {
        let store = bounded(1);
        let first = in_shard0(Duration::hours(1));
        let second = in_shard0(Duration::hours(2));
        store.create(&first).await.unwrap();
        store.create(&second).await.unwrap();
        assert!(!loads(&store, &first).await, "evicted");
        assert!(loads(&store, &second).await);
        let third = in_shard0(Duration::minutes(30));
        store.create(&third).await.unwrap();
        assert!(!loads(&store, &second).await);
        assert!(loads(&store, &third).await);
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn expired_sessions_go_before_live_ones() {
        let store = bounded(2);
        let live = in_shard0(Duration::hours(1));
        let expired = in_shard0(-Duration::seconds(1));
        store.create(&live).await.unwrap();
        store.create(&expired).await.unwrap();
        let new = in_shard0(Duration::hours(1));
        store.create(&new).await.unwrap();
        assert!(loads(&store, &live).await, "a live session went before an expired one");
        assert!(loads(&store, &new).await);
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn anonymous_sessions_go_before_logged_in_ones_even_if_used_since() {
        let store = bounded(2);
        let user = logged_in(in_shard0(Duration::hours(1)), "alice");
        let anonymous = in_shard0(Duration::hours(1));
        store.create(&user).await.unwrap();
        store.create(&anonymous).await.unwrap();
        assert!(loads(&store, &anonymous).await);
        store.create(&in_shard0(Duration::hours(1))).await.unwrap();
        assert!(loads(&store, &user).await);
        assert!(!loads(&store, &anonymous).await);
    }

    #[tokio::test]
    async fn with_only_logged_in_sessions_the_least_recently_used_goes() {
        let store = bounded(2);
        let a = logged_in(in_shard0(Duration::hours(1)), "a");
        let b = logged_in(in_shard0(Duration::hours(1)), "b");
        store.create(&a).await.unwrap();
        store.create(&b).await.unwrap();
        assert!(loads(&store, &a).await);
        store.create(&logged_in(in_shard0(Duration::hours(1)), "c")).await.unwrap();
        assert!(loads(&store, &a).await);
        assert!(!loads(&store, &b).await);
    }

    #[tokio::test]
    async fn a_session_that_logs_in_is_kept_like_a_logged_in_one() {
        let store = bounded(2);
        let session = in_shard0(Duration::hours(1));
        store.create(&session).await.unwrap();
        store.create(&in_shard0(Duration::hours(1))).await.unwrap();
        let mut login = Patch::new(session.id, session.expires_at, session.created_at);
        login.user = Some("alice".into());
        store.apply(&login).await.unwrap();
        // Two rounds: the used bit alone would save it for one.
        for _ in 0..4 {
            store.create(&in_shard0(Duration::hours(1))).await.unwrap();
        }
        assert!(loads(&store, &session).await);
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn a_cycled_session_and_its_forward_outlast_a_flood() {
        let store = MemoryStore::default().with_capacity(1000);
        let old = logged_in(record(Duration::hours(1)), "alice");
        store.create(&old).await.unwrap();
        let to = Id::random().record_id();
        let mut patch = Patch::new(old.id, old.expires_at, old.created_at);
        patch.user = old.user.clone();
        store.cycle(&patch, to).await.unwrap();
        for _ in 0..5000 {
            store.create(&record(Duration::hours(1))).await.unwrap();
        }
        assert!(store.load(&to).await.unwrap().is_some());
        // A logout through the old id still reaches the new record.
        store.delete(&old.id).await.unwrap();
        assert!(store.load(&to).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn removed_sessions_leave_no_lasting_clock_entries() {
        // No shard ever fills, so the hand never runs: only compaction drops the entries.
        let store = MemoryStore::default().with_capacity(1000);
        for _ in 0..20_000 {
            let r = record(Duration::hours(1));
            store.create(&r).await.unwrap();
            store.delete(&r.id).await.unwrap();
        }
        for shard in store.shards.iter() {
            let queued = crate::lock(shard).queued();
            assert!(queued <= SLACK + 1, "{queued} entries left in an empty shard");
        }
    }

    #[tokio::test]
    async fn bounding_a_store_that_holds_sessions_makes_them_evictable() {
        let store = MemoryStore::default();
        let old: Vec<_> = (0..3).map(|_| in_shard0(Duration::hours(1))).collect();
        for r in &old {
            store.create(r).await.unwrap();
        }
        let store = store.with_capacity(2 * SHARDS);
        store.create(&in_shard0(Duration::hours(1))).await.unwrap();
        assert_eq!(store.len(), 2);
    }
}
