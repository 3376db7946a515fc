//! What the end of a request asks a store to change: a [`Patch`].
//!
//! A request's write-back does not send its whole record: it sends the keys it set or
//! removed, and the store applies them atomically to whatever it holds now. Writers of
//! different keys of one session therefore never conflict. A key changed by an in-place
//! [`Session::update`](crate::Session::update) carries the value the update started from
//! ([`Change::expect`]); when the stored value differs, the store refuses the whole patch
//! with [`StoreError::Conflict`] and the layer re-runs the update on the fresh value.
//!
//! Stores that keep a decoded [`Record`] apply a patch with [`Patch::apply_to`] under
//! their lock or transaction:
//!
//! ```
//! use bytes::Bytes;
//! use session_core::{Change, ExpiryChange, Id, Patch, Record};
//! use time::{Duration, OffsetDateTime};
//!
//! let now = OffsetDateTime::now_utc();
//! let mut record = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
//! record.entries.insert("n", Bytes::from_static(&[1]));
//!
//! let mut patch = Patch::new(record.id, now + Duration::hours(2), now);
//! patch.changes.push(Change::update("n", Some(Bytes::from_static(&[1])), Some(Bytes::from_static(&[2]))));
//! patch.changes.push(Change::set("theme", Some(Bytes::from_static(b"\xa4dark"))));
//! let applied = patch.apply_to(&mut record, now).unwrap();
//! assert_eq!(record.entries.get("n").map(|v| &v[..]), Some(&[2][..]));
//! assert_eq!((applied.version, applied.ended), (2, false));
//!
//! // The same update again expects `1` but finds `2`: refused, nothing changed.
//! assert!(patch.apply_to(&mut record, now).is_err());
//! assert_eq!(record.version, 2);
//! ```

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::{Expiry, Record, RecordId, StoreError};

/// One key's change in a [`Patch`].
///
/// `Debug` shows the key, never the values.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The session key.
    pub key: Arc<str>,
    /// The new encoded value; `None` removes the key.
    pub value: Option<Bytes>,
    /// When set, the change holds only if the key stores exactly this now (`Some(None)`:
    /// the key is absent); otherwise the store refuses the whole patch with
    /// [`StoreError::Conflict`]. `None`: the change holds whatever is stored.
    pub expect: Option<Option<Bytes>>,
}

impl Change {
    /// Sets (`Some`) or removes (`None`) `key` whatever it holds now.
    #[must_use]
    pub fn set(key: impl Into<Arc<str>>, value: Option<Bytes>) -> Self {
        Self { key: key.into(), value, expect: None }
    }

    /// Changes `key` from `expected` (`None`: absent) to `value`, refused if it holds
    /// anything else.
    #[must_use]
    pub fn update(key: impl Into<Arc<str>>, expected: Option<Bytes>, value: Option<Bytes>) -> Self {
        Self { key: key.into(), value, expect: Some(expected) }
    }
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Change")
            .field("key", &self.key)
            .field("removes", &self.value.is_none())
            .field("conditional", &self.expect.is_some())
            .finish()
    }
}

/// What a [`Patch`] does with the session's own expiry ([`Record::expiry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryChange {
    /// Leaves it alone. [`Patch::expires_at`] was computed for this expiry (what the
    /// request loaded); if the record holds another one now (a concurrent request changed
    /// it), the stored `expires_at` stays, so a request that loaded before a save that
    /// shortened the expiry cannot lengthen it again.
    Keep(Option<Expiry>),
    /// Replaces it ("remember me"); [`Patch::expires_at`] was computed for the new one.
    Set(Option<Expiry>),
}

/// The changes one request (or several, coalesced) makes to a stored session: applied
/// atomically by [`SessionStore::apply`](crate::SessionStore::apply), or not at all.
///
/// `Debug` shows the keys, never the values, the user or the label.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Patch {
    /// The record to change.
    pub id: RecordId,
    /// Key changes, at most one per key, in any order.
    pub changes: Vec<Change>,
    /// The session's own expiry.
    pub expiry: ExpiryChange,
    /// The record's new expiry instant (subject to [`ExpiryChange::Keep`]).
    pub expires_at: OffsetDateTime,
    /// A new [`Record::user`], when the request set one.
    pub user: Option<String>,
    /// A new [`Record::label`], when the request set one.
    pub label: Option<String>,
    /// The new [`Record::last_seen`].
    pub last_seen: OffsetDateTime,
}

impl fmt::Debug for Patch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Patch")
            .field("id", &self.id)
            .field("changes", &self.changes)
            .field("expiry", &self.expiry)
            .field("expires_at", &self.expires_at)
            .field("sets_user", &self.user.is_some())
            .field("sets_label", &self.label.is_some())
            .finish_non_exhaustive()
    }
}

/// What a store reports after applying a [`Patch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// The record's version after the patch (every applied patch adds one).
    pub version: u64,
    /// The record's expiry instant after the patch.
    pub expires_at: OffsetDateTime,
    /// The patch left the session empty (or expired), and the store deleted it.
    pub ended: bool,
}

impl Applied {
    /// The outcome of a patch that brought a record to `version` and `expires_at`, ending
    /// it or not.
    #[must_use]
    pub fn new(version: u64, expires_at: OffsetDateTime, ended: bool) -> Self {
        Self { version, expires_at, ended }
    }
}

impl Patch {
    /// A patch of `id` that changes no key and keeps the session's expiry (a refresh):
    /// add [`changes`](Patch::changes) and set the other fields as needed.
    #[must_use]
    pub fn new(id: RecordId, expires_at: OffsetDateTime, last_seen: OffsetDateTime) -> Self {
        Self {
            id,
            changes: Vec::new(),
            expiry: ExpiryChange::Keep(None),
            expires_at,
            user: None,
            label: None,
            last_seen,
        }
    }

    /// Whether every [`Change::expect`] holds for `record`.
    #[must_use]
    pub fn expectations_hold(&self, record: &Record) -> bool {
        self.changes.iter().all(|c| match &c.expect {
            None => true,
            Some(want) => record.entries.get(&c.key) == want.as_ref(),
        })
    }

    /// The expiry instant `record` gets from this patch.
    #[must_use]
    pub fn new_expires_at(&self, record: &Record) -> OffsetDateTime {
        match self.expiry {
            ExpiryChange::Keep(basis) if basis != record.expiry => record.expires_at,
            _ => self.expires_at,
        }
    }

    /// Applies the patch to `record`, a live record the caller holds under its lock or in
    /// its transaction, at `now`. Bumps the version. When the result holds no key, or has
    /// expired, [`Applied::ended`] is set and the caller must delete the record instead of
    /// writing it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when an expectation does not hold; `record` is then
    /// unchanged.
    pub fn apply_to(&self, record: &mut Record, now: OffsetDateTime) -> Result<Applied, StoreError> {
        if !self.expectations_hold(record) {
            return Err(StoreError::Conflict);
        }
        for change in &self.changes {
            match &change.value {
                Some(v) => record.entries.insert(Arc::clone(&change.key), v.clone()),
                None => record.entries.remove(&change.key),
            };
        }
        record.expires_at = self.new_expires_at(record);
        if let ExpiryChange::Set(expiry) = self.expiry {
            record.expiry = expiry;
        }
        if let Some(user) = &self.user {
            record.user = Some(user.clone());
        }
        if let Some(label) = &self.label {
            record.label = Some(label.clone());
        }
        record.last_seen = self.last_seen;
        record.version += 1;
        let ended = record.entries.is_empty() || record.is_expired_at(now);
        Ok(Applied { version: record.version, expires_at: record.expires_at, ended })
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;
    use crate::Id;

    fn b(v: &'static [u8]) -> Option<Bytes> {
        Some(Bytes::from_static(v))
    }

    fn record(now: OffsetDateTime) -> Record {
        let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
        r.entries.insert("a", Bytes::from_static(b"1"));
        r
    }

    #[test]
    fn a_failed_expectation_changes_nothing() {
        let now = OffsetDateTime::now_utc();
        let mut r = record(now);
        let before = r.clone();
        let mut p = Patch::new(r.id, now + Duration::hours(2), now);
        p.changes.push(Change::set("b", b(b"2")));
        p.changes.push(Change::update("a", b(b"0"), b(b"2")));
        assert!(matches!(p.apply_to(&mut r, now), Err(StoreError::Conflict)));
        assert_eq!(r, before);
    }

    #[test]
    fn expecting_absence_and_removing_the_last_key_ends_the_record() {
        let now = OffsetDateTime::now_utc();
        let mut r = record(now);
        let mut p = Patch::new(r.id, now + Duration::hours(2), now);
        p.changes.push(Change::update("new", None, b(b"x")));
        assert!(!p.apply_to(&mut r, now).unwrap().ended);
        let mut p = Patch::new(r.id, now + Duration::hours(2), now);
        p.changes.push(Change::set("a", None));
        p.changes.push(Change::update("new", b(b"x"), None));
        let applied = p.apply_to(&mut r, now).unwrap();
        assert!(applied.ended);
        assert_eq!(applied.version, 3);
    }

    #[test]
    fn keep_with_another_basis_leaves_the_stored_expiry() {
        let now = OffsetDateTime::now_utc();
        let mut r = record(now);
        r.expiry = Some(Expiry::OnInactivity(Duration::minutes(5)));
        r.expires_at = now + Duration::minutes(5);
        // A request that loaded the 30-day "remember me" expiry refreshes it.
        let mut p = Patch::new(r.id, now + Duration::days(30), now);
        p.expiry = ExpiryChange::Keep(Some(Expiry::OnInactivity(Duration::days(30))));
        let applied = p.apply_to(&mut r, now).unwrap();
        assert_eq!(applied.expires_at, now + Duration::minutes(5));
        // With the basis the record holds, the refresh moves it.
        p.expiry = ExpiryChange::Keep(r.expiry);
        p.expires_at = now + Duration::minutes(6);
        assert_eq!(p.apply_to(&mut r, now).unwrap().expires_at, now + Duration::minutes(6));
    }

    #[test]
    fn debug_shows_no_values_or_user() {
        let now = OffsetDateTime::now_utc();
        let mut p = Patch::new(Id::random().record_id(), now, now);
        p.changes.push(Change::set("k", b(b"SENTINEL")));
        p.user = Some("alice-SENTINEL".into());
        let shown = format!("{p:?}");
        assert!(!shown.contains("SENTINEL"), "{shown}");
        assert!(shown.contains("\"k\""));
    }
}
