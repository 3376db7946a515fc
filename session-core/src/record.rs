//! What a store keeps for one session.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::{Expiry, RecordId};

/// A session's data: each key maps to its value's MessagePack encoding, decoded lazily on
/// [`Session::get`](crate::Session::get), so reading one small key never decodes the rest.
pub type Entries = BTreeMap<String, Bytes>;

/// One session as a store keeps it.
///
/// Stores are keyed by [`Record::id`], the digest of the cookie's id, never by the id
/// itself. Byte-oriented stores persist a record with [`Record::to_bytes`] and read it back
/// with [`Record::from_bytes`].
///
/// `Debug` shows the number of entries, never their values, and whether a user is set, not
/// which.
///
/// ```
/// use session_core::{Id, Record};
/// use time::{Duration, OffsetDateTime};
///
/// let now = OffsetDateTime::now_utc();
/// let mut record = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
/// record.entries.insert("user".into(), vec![42].into());
/// let back = Record::from_bytes(&record.to_bytes()).unwrap();
/// assert_eq!(back, record);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The store key: SHA-256 of the session id.
    pub id: RecordId,
    /// Encoded values by key.
    pub entries: Entries,
    /// When the session was first stored (the absolute lifetime counts from here).
    pub created_at: OffsetDateTime,
    /// When the store must stop returning the record.
    pub expires_at: OffsetDateTime,
    /// The session's own expiry, when it overrides the layer's default.
    pub expiry: Option<Expiry>,
    /// Incremented by every save; stores compare it to detect concurrent writes.
    pub version: u64,
    /// The user this session belongs to, once the app set one; stores that keep a per-user
    /// index key it by this.
    pub user: Option<String>,
    /// A label the app chose for this session, e.g. "Firefox on Linux".
    pub label: Option<String>,
    /// When the session was last used: set by every save and by the throttled expiry
    /// refresh ([`SessionStore::touch`](crate::SessionStore::touch)), not by every request.
    pub last_seen: OffsetDateTime,
}

impl Record {
    /// An empty record at version 1, last seen at its creation, with no user.
    #[must_use]
    pub fn new(id: RecordId, created_at: OffsetDateTime, expires_at: OffsetDateTime) -> Self {
        Self {
            id,
            entries: Entries::new(),
            created_at,
            expires_at,
            expiry: None,
            version: 1,
            user: None,
            label: None,
            last_seen: created_at,
        }
    }

    /// Whether the record has expired at `now`.
    #[must_use]
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("id", &self.id)
            .field("entries", &self.entries.len())
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("expiry", &self.expiry)
            .field("version", &self.version)
            .field("user", &self.user.is_some())
            .field("last_seen", &self.last_seen)
            .finish_non_exhaustive()
    }
}
