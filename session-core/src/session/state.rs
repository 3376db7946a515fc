//! What one request knows about its session, and the dirty log.

use std::sync::Arc;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::record::Entries;
use crate::{Change, Error, Expiry, Id, Record, RecordId};

/// Re-runs one in-place update on a value: the stored bytes (`None`: absent) in, the new
/// bytes out (`None`: the key stays absent). See `Session::update`.
pub(crate) type Updater = Box<dyn FnMut(&str, Option<&Bytes>) -> Result<Option<Bytes>, Error> + Send>;

/// The dirty log's value a key had when loaded: a logged change's `expect`, which the log
/// always sets (the write-back clears it for a key set outright).
pub(crate) fn loaded_value(logged: &Change) -> Option<&Bytes> {
    logged.expect.as_ref().and_then(Option::as_ref)
}

/// Timestamps of the record this request loaded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub(crate) created_at: OffsetDateTime,
    pub(crate) expires_at: OffsetDateTime,
    /// The new expiry instant when a throttled refresh was due at load time, so the end
    /// of a read-only request decides without any time arithmetic.
    pub(crate) refresh: Option<OffsetDateTime>,
}

/// Where the lazy load stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Load {
    /// Not loaded, and nobody is loading (a failed load comes back here, to be retried).
    #[default]
    Pending,
    /// A clone is fetching the record: the others wait instead of fetching too.
    /// `waiting`: one of them waits, so the loader must wake it.
    InProgress { waiting: bool },
    /// Loaded (or nothing to load: no cookie).
    Done,
}

/// What becomes of the session's id at the write-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Fate {
    /// It stays.
    #[default]
    Kept,
    /// `cycle_id` was called: a stored session moves to a new id (and a client-side one is
    /// sealed afresh); either way the cookie is sent again.
    Cycled,
    /// `flush` destroyed the session this request started with. Whatever is written
    /// afterwards is a new session; cycling it changes nothing.
    Ended,
}

/// A session attribute (its expiry, user or label) that a request may set before or after
/// the load: what the request set wins over what is stored, and only a set one is saved.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settable<T> {
    pub(crate) value: T,
    pub(crate) set: bool,
}

impl<T> Settable<T> {
    pub(crate) fn set(&mut self, value: T) {
        self.value = value;
        self.set = true;
    }

    /// Takes the stored value, unless the request already set its own.
    pub(crate) fn loaded(&mut self, value: T) {
        if !self.set {
            self.value = value;
        }
    }
}

impl<T: Default> Settable<T> {
    /// The value to save: `Some` only when the request set it.
    pub(crate) fn take_if_set(&mut self) -> Option<T> {
        self.set.then(|| std::mem::take(&mut self.value))
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) load: Load,
    /// A load, or a `flush`, failed: the response becomes the error status whatever the
    /// handler answers, so an outage is never a silent logout or a silent 200. Stays set
    /// when a later load succeeds.
    pub(crate) failed: bool,
    /// The id of the stored record (server-side), once loaded.
    pub(crate) id: Option<Id>,
    /// Its digest, computed once per request.
    pub(crate) rid: Option<RecordId>,
    /// The digest of a well-formed cookie id under which nothing live was stored (`flush`
    /// still deletes it, following the forward a racing `cycle_id` may have left).
    pub(crate) gone: Option<RecordId>,
    /// Present when a live session was loaded (or, server-side, created by `cycle_id`).
    pub(crate) meta: Option<Meta>,
    /// The entries as loaded, for a session stored server-side (`overlay`): shared with the
    /// store's copy and never written, since the log holds what this request changed on
    /// top of them (so a write copies no map). Otherwise (a new session, or client-side) the
    /// entries themselves, written in place. Read the session's entries through `get`,
    /// `keys` and `len`, which apply the log.
    pub(crate) base: Entries,
    /// The dirty log: each written key, with the value it had when loaded (first write
    /// wins) in `expect`, and, for a stored session, its current value. Kept only for a
    /// loaded session (`meta` is set); in a new one every entry is new. A list, not a map: a
    /// request writes a handful of keys, and a linear scan of a few entries beats hashing
    /// and a table allocation. Already in the form of a patch's changes, so the write-back
    /// turns it into one in place (no allocation, no copy of a value).
    pub(crate) log: Vec<Change>,
    /// The keys of `log` (by index, ascending) changed only in place since they were
    /// loaded, with their updates in order: they turn the loaded value into the final one,
    /// and run again on a fresher value after a conflict. Any other logged key was set (or
    /// removed) outright, and its value holds whatever is stored.
    pub(crate) updates: Vec<(usize, Vec<Updater>)>,
    /// The session's own expiry (`None`: the layer's).
    pub(crate) expiry: Settable<Option<Expiry>>,
    /// The cookie was made with a fallback key: re-issue it under the primary.
    pub(crate) reissue: bool,
    pub(crate) fate: Fate,
    /// Who the session belongs to, and the device label (see `set_user`).
    pub(crate) user: Settable<Option<String>>,
    pub(crate) label: Settable<Option<String>>,
}

impl State {
    /// Whether the log holds the current value of each written key over `base` (a session
    /// stored server-side), rather than only its loaded value (client-side).
    fn overlay(&self) -> bool {
        self.rid.is_some() && self.meta.is_some()
    }

    /// The encoded value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Bytes> {
        if self.overlay() {
            if let Some(l) = self.log.iter().find(|l| &*l.key == key) {
                return l.value.as_ref();
            }
        }
        self.base.get(key)
    }

    /// The number of keys.
    pub(crate) fn len(&self) -> usize {
        if !self.overlay() {
            return self.base.len();
        }
        self.log.iter().fold(self.base.len(), |n, l| {
            match (self.base.contains_key(&l.key), l.value.is_some()) {
                (true, false) => n - 1,
                (false, true) => n + 1,
                _ => n,
            }
        })
    }

    /// The keys, in order.
    pub(crate) fn keys(&self) -> Vec<&str> {
        if !self.overlay() {
            return self.base.keys().collect();
        }
        let removed = |k: &str| self.log.iter().any(|l| &*l.key == k && l.value.is_none());
        let mut keys: Vec<&str> = self.base.keys().filter(|k| !removed(k)).collect();
        keys.extend(
            self.log.iter().filter(|l| l.value.is_some() && !self.base.contains_key(&l.key)).map(|l| &*l.key),
        );
        keys.sort_unstable();
        keys
    }

    /// Whether any key's bytes differ from what was loaded.
    pub(crate) fn is_dirty(&self) -> bool {
        if self.meta.is_none() {
            // Nothing stored yet: whatever it holds is new.
            return !self.base.is_empty();
        }
        self.log.iter().any(|l| self.get(&l.key) != loaded_value(l))
    }

    /// A record of this session's data (moved out of the state: entries, expiry override,
    /// user and label) under `id`, at version 1.
    pub(crate) fn take_record(
        &mut self,
        id: RecordId,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Record {
        let mut record = Record::new(id, created_at, expires_at);
        record.entries = std::mem::take(&mut self.base);
        record.expiry = self.expiry.value;
        record.user = self.user.value.take();
        record.label = self.label.value.take();
        record
    }

    /// Whether the end of the request has anything to do: a failed load to report, a
    /// possible change, a cookie to (re)send or remove, or a due expiry refresh. Untouched
    /// and read-only requests say no, and never allocate a write-back.
    pub(crate) fn has_pending_work(&self) -> bool {
        self.failed
            || self.attributes_set()
            || self.fate != Fate::Kept
            || self.reissue
            || self.was_written()
            || self.meta.is_some_and(|m| m.refresh.is_some())
    }

    /// Whether `set_expiry`, `set_user` or `set_label` was called.
    pub(crate) fn attributes_set(&self) -> bool {
        self.expiry.set || self.user.set || self.label.set
    }

    /// Whether a key was written (possibly back to what it was): cheaper than `is_dirty`.
    pub(crate) fn was_written(&self) -> bool {
        !self.log.is_empty() || (self.meta.is_none() && !self.base.is_empty())
    }

    /// Sets (`Some`) or removes (`None`) `key`, logging its loaded value on the first
    /// write. `redo` is how the write came about: `None` for an outright set (the key's
    /// final value no longer depends on what is stored), `Some(updater)` for an in-place
    /// update. Returns `None` when nothing changed; otherwise `Some(previous)` when `undo` is
    /// asked for (to put back with `undo`), `Some(None)` when not (no copy is made).
    pub(super) fn write(
        &mut self,
        key: &str,
        value: Option<Bytes>,
        undo: bool,
        redo: Option<Updater>,
    ) -> Option<Option<Bytes>> {
        if self.get(key) == value.as_ref() {
            // Unchanged here, but an update of a key that is being updated in place must
            // run again with the others after a conflict.
            if let Some(f) = redo {
                if let Some(fs) = self.updates_of(key) {
                    fs.push(f);
                }
            }
            return None;
        }
        let logged = self.log.iter().position(|l| &*l.key == key);
        if self.overlay() {
            // The loaded entries stay shared with the store's copy: the log takes the value.
            let old = match logged {
                Some(i) => {
                    self.note_redo(i, redo);
                    std::mem::replace(&mut self.log[i].value, value)
                }
                None => {
                    let loaded = self.base.get(key).cloned();
                    let old = if undo { loaded.clone() } else { None };
                    self.log_first_write(key, loaded, value, redo);
                    old
                }
            };
            return Some(if undo { old } else { None });
        }
        let old = match value {
            Some(v) => self.base.insert(key, v),
            None => self.base.remove(key),
        };
        let previous = if undo { old.clone() } else { None };
        // A session with no stored record (new, or flushed) needs no log: all it holds is new.
        if self.meta.is_some() {
            match logged {
                Some(i) => self.note_redo(i, redo),
                None => self.log_first_write(key, old, None, redo),
            }
        }
        Some(previous)
    }

    /// Logs the first write of `key`, which held `loaded`.
    fn log_first_write(
        &mut self,
        key: &str,
        loaded: Option<Bytes>,
        value: Option<Bytes>,
        redo: Option<Updater>,
    ) {
        if let Some(f) = redo {
            self.updates.push((self.log.len(), vec![f]));
        }
        // The map's copy of the key when it holds one (no allocation).
        let key = self.base.shared_key(key).unwrap_or_else(|| Arc::from(key));
        self.log.push(Change::update(key, loaded, value));
    }

    /// Records how a later write of the logged key `i` came about.
    fn note_redo(&mut self, i: usize, redo: Option<Updater>) {
        let at = self.updates.iter().position(|(j, _)| *j == i);
        match (at, redo) {
            (Some(at), Some(f)) => self.updates[at].1.push(f),
            // Set outright: the result holds whatever is stored.
            (Some(at), None) => drop(self.updates.remove(at)),
            // Updating a value set outright: still holds whatever is stored.
            (None, _) => {}
        }
    }

    /// The updates of `key` when it is logged as changed only in place.
    fn updates_of(&mut self, key: &str) -> Option<&mut Vec<Updater>> {
        let i = self.log.iter().position(|l| &*l.key == key)?;
        self.updates.iter_mut().find(|(j, _)| *j == i).map(|(_, fs)| fs)
    }

    /// Puts back what `write` replaced (the log keeps its first entry, which stays right).
    pub(super) fn undo(&mut self, key: &str, previous: Option<Bytes>) {
        if self.overlay() {
            if let Some(l) = self.log.iter_mut().find(|l| &*l.key == key) {
                l.value = previous;
            }
            return;
        }
        match previous {
            Some(v) => self.base.insert(key, v),
            None => self.base.remove(key),
        };
    }
}
