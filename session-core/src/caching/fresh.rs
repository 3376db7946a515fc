//! How fresh each cached copy is: when it was read from or written to the backing store,
//! and whether a session end overlapped that read.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration as StdDuration, Instant};

use crate::id::DigestHasher;
use crate::store::MAX_FORWARDS;
use crate::{Forward, RecordId};

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
pub(super) struct Freshness {
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
    pub(super) fn insert(&mut self, id: RecordId, slot: Slot, epoch: u64, max: StdDuration) -> Option<Slot> {
        if self.slots.len() >= self.prune_at {
            let now = Instant::now();
            self.slots.retain(|_, slot| match *slot {
                Slot::Fresh { fetched_at, epoch: e, .. } => {
                    e == epoch && now.saturating_duration_since(fetched_at) < max
                }
                Slot::Moved { until, .. } => until > now,
                // A load older than the bound is never served anyway (its copy counts from
                // when it started).
                Slot::Floor { at, .. } => now.saturating_duration_since(at) < max,
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
    /// A write left the backing store at `version` (at `at`) and the cache without a current
    /// copy: a load that read an older version before that write must not be vouched for.
    Floor { version: u64, at: Instant },
}

/// Taken before a backing-store call whose result may be cached.
pub(super) struct Ticket {
    at: Instant,
    epoch: u64,
    /// `ends_started` then, or `None` when an end was under way.
    ends: Option<u64>,
}

/// Held across a session end on this instance; see [`Freshness::ends_started`].
pub(super) struct Ending<'a>(&'a Freshness);

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
    pub(super) fn new() -> Self {
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

    pub(super) fn ticket(&self) -> Ticket {
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

    pub(super) fn ending(&self) -> Ending<'_> {
        self.ends_started.fetch_add(1, Ordering::SeqCst);
        Ending(self)
    }

    /// The version of the cached copy of `id` that may be served now, if any.
    pub(super) fn current(&self, id: &RecordId, max: StdDuration) -> Option<u64> {
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
    pub(super) fn vouch(&self, id: &RecordId, ticket: &Ticket, version: u64, max: StdDuration) -> bool {
        let mut shard = self.shard(id);
        // Checked under the shard lock: an end that begins after this check drops the
        // entry only once this insert is done.
        if ticket.ends != Some(self.ends_started.load(Ordering::SeqCst)) {
            return false;
        }
        match shard.slots.get(id) {
            Some(Slot::Moved { .. }) => return false,
            // A write this instance made (or a copy it vouched for) is newer than this load.
            Some(&(Slot::Floor { version: newer, .. } | Slot::Fresh { version: newer, .. }))
                if newer > version =>
            {
                return false
            }
            _ => {}
        }
        let fresh = Slot::Fresh { fetched_at: ticket.at, epoch: ticket.epoch, version };
        shard.insert(*id, fresh, self.epoch.load(Ordering::SeqCst), max);
        true
    }

    /// Records that the backing store holds `id` at `version` at least, and that no copy of
    /// it is vouched for: a slower load of an older version will not be.
    pub(super) fn floor(&self, id: &RecordId, version: u64, max: StdDuration) {
        let mut shard = self.shard(id);
        if !matches!(shard.slots.get(id), Some(Slot::Moved { .. })) {
            let floor = Slot::Floor { version, at: Instant::now() };
            shard.insert(*id, floor, self.epoch.load(Ordering::SeqCst), max);
        }
    }

    /// Stops vouching for `id`'s copy. Returns whether `id` was cycled away (its entry stays).
    pub(super) fn drop_fresh(&self, id: &RecordId) -> bool {
        let mut shard = self.shard(id);
        match shard.slots.get(id) {
            Some(Slot::Moved { .. }) => true,
            // Kept: it guards against slower loads of older versions.
            Some(Slot::Floor { .. }) => false,
            Some(Slot::Fresh { .. }) => {
                shard.slots.remove(id);
                false
            }
            None => false,
        }
    }

    /// Records that `from` was cycled to `to`. Returns whether a copy of `from` was vouched for.
    pub(super) fn moved(&self, from: RecordId, to: RecordId, max: StdDuration) -> bool {
        let now = Instant::now();
        let lifetime = StdDuration::try_from(Forward::LIFETIME).unwrap_or(StdDuration::from_secs(600));
        let until = now.checked_add(lifetime).unwrap_or(now);
        let previous =
            self.shard(&from).insert(from, Slot::Moved { to, until }, self.epoch.load(Ordering::SeqCst), max);
        matches!(previous, Some(Slot::Fresh { .. }))
    }

    /// Forgets `id` and the ids it was cycled to, as a delete in the backing store follows its
    /// forwards; returns them all.
    pub(super) fn end(&self, id: &RecordId) -> Vec<RecordId> {
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
    pub(super) fn stale_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}
