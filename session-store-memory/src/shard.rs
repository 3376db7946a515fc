//! What one lock guards: the slots of the records whose ids fall in the shard, and, when
//! the store is bounded, the [`Clock`] that picks what a full shard evicts.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use session_core::{Forward, Record, RecordId, Stored};
use time::OffsetDateTime;

use crate::evict::Clock;

/// Slots are boxed: a table of small entries grows and inserts with less copying, and a
/// new record is written into freshly recycled (cached) memory rather than into the table.
pub(crate) type Slots = HashMap<RecordId, Box<Slot>, BuildHasherDefault<DigestHasher>>;

/// A record, or the [`Forward`] a `cycle` left, with what eviction needs to know of it.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) stored: Stored,
    /// Set by a load or an apply, cleared when the clock hand passes: a recently used slot
    /// survives one more round.
    pub(crate) used: bool,
    /// A logged-in record, or a forward to one: evicted only once no anonymous slot is left,
    /// so a flood of cookieless requests cannot log anyone out.
    pub(crate) logged_in: bool,
    /// Matches the slot's entry in the clock. A removed slot leaves its entry behind (the
    /// clock drops it lazily), and a new slot at the same id must not inherit it.
    pub(crate) ticket: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Shard {
    slots: Slots,
    /// Only a bounded store pays for the clock.
    clock: Option<Clock>,
}

impl Shard {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn contains(&self, id: &RecordId) -> bool {
        self.slots.contains_key(id)
    }

    pub(crate) fn get(&self, id: &RecordId) -> Option<&Stored> {
        self.slots.get(id).map(|s| &s.stored)
    }

    /// Whether `id` holds a live record or a forward not yet expired.
    pub(crate) fn is_taken(&self, id: &RecordId, now: OffsetDateTime) -> bool {
        self.slots.get(id).is_some_and(|s| current(&s.stored, now))
    }

    /// Bounds the shard to `cap` slots. Slots stored before the bound get clock entries
    /// too, so that every slot can be evicted.
    pub(crate) fn bound(&mut self, cap: usize) {
        match &mut self.clock {
            Some(clock) => clock.set_cap(cap),
            None => {
                let mut clock = Clock::new(cap);
                for (id, slot) in &mut self.slots {
                    slot.ticket = clock.enqueue(*id, slot.logged_in);
                }
                self.clock = Some(clock);
            }
        }
    }

    /// Runs `f` on the live record at `id`: a use, so it marks the slot recently used, and
    /// `f` may log the session in.
    pub(crate) fn with_live<R>(
        &mut self,
        id: &RecordId,
        now: OffsetDateTime,
        f: impl FnOnce(&mut Record) -> R,
    ) -> Option<R> {
        let slot = &mut **self.slots.get_mut(id)?;
        match &mut slot.stored {
            Stored::Record(record) if !record.is_expired_at(now) => {
                let out = f(record);
                slot.logged_in = record.user.is_some();
                slot.used = true;
                Some(out)
            }
            _ => None,
        }
    }

    /// The live record at `id`, without counting as a use (a listing is not a request of
    /// that session).
    pub(crate) fn peek_live(&self, id: &RecordId, now: OffsetDateTime) -> Option<&Record> {
        match self.slots.get(id).map(|s| &s.stored) {
            Some(Stored::Record(r)) if !r.is_expired_at(now) => Some(r),
            _ => None,
        }
    }

    /// Stores `record` in a new slot, the most recent one for the clock. Whatever `id` held
    /// before (an expired slot) is replaced.
    pub(crate) fn insert(&mut self, record: Record) {
        let logged_in = record.user.is_some();
        self.insert_slot(record.id, Stored::Record(record), logged_in);
    }

    /// Replaces the record at `id` with a forward. The forward keeps the slot's place in
    /// the clock, and the class of the session it leads to: a racing logout must still
    /// find it, so it is not evicted before anonymous sessions are.
    pub(crate) fn leave_forward(&mut self, id: RecordId, forward: Forward, logged_in: bool) {
        match self.slots.get_mut(&id) {
            Some(slot) => {
                slot.stored = Stored::Forward(forward);
                slot.logged_in = logged_in;
                slot.used = false;
            }
            None => self.insert_slot(id, Stored::Forward(forward), logged_in),
        }
    }

    fn insert_slot(&mut self, id: RecordId, stored: Stored, logged_in: bool) {
        let ticket = match &mut self.clock {
            Some(clock) => {
                clock.compact_if_bloated(&self.slots);
                clock.enqueue(id, logged_in)
            }
            None => 0,
        };
        self.slots.insert(id, Box::new(Slot { stored, used: false, logged_in, ticket }));
    }

    pub(crate) fn remove(&mut self, id: &RecordId) -> Option<Stored> {
        self.slots.remove(id).map(|s| s.stored)
    }

    /// Removes expired records and forwards; returns how many.
    pub(crate) fn remove_expired(&mut self, now: OffsetDateTime) -> usize {
        let before = self.slots.len();
        self.slots.retain(|_, s| current(&s.stored, now));
        if let Some(clock) = &mut self.clock {
            clock.compact_if_bloated(&self.slots);
        }
        before - self.slots.len()
    }

    /// Before a new id is stored: evicts until the shard has room, if it is bounded. Reads
    /// the time only when the shard is full (a clock read is a good part of a create).
    pub(crate) fn make_room(&mut self) {
        if let Some(clock) = &mut self.clock {
            if self.slots.len() >= clock.cap() {
                clock.make_room(&mut self.slots, crate::now());
            }
        }
    }

    /// Clock entries held, stale ones included.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.clock.as_ref().map_or(0, Clock::queued)
    }
}

/// Whether a slot still counts (a live record, or a forward not yet expired).
pub(crate) fn current(stored: &Stored, now: OffsetDateTime) -> bool {
    stored.expires_at() > now
}

/// Hashes a [`RecordId`] by eight of its bytes. Record ids are SHA-256 digests of random
/// ids: uniform, and no client can choose one (it would need a preimage), so they need no
/// keyed hash against flooding. Bytes 8..16 are used because byte 0 picks the shard, which
/// would leave every key of a shard with the same low bits.
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

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
