//! What [`SessionStore::cycle`](crate::SessionStore::cycle) leaves at a session's old id: a
//! [`Forward`] to the new one, so that a logout or revoke racing the id change follows it.
//!
//! Stores that keep bytes can keep a forward as bytes too, beside records, and tell the two
//! apart with [`Stored::from_bytes`]:
//!
//! ```
//! use session_core::{Forward, Id, Record, Stored};
//! use time::{Duration, OffsetDateTime};
//!
//! let now = OffsetDateTime::now_utc();
//! let old = Record::new(Id::random().record_id(), now, now + Duration::hours(8));
//! let forward = Forward::new(Id::random().record_id(), old.expires_at, now);
//! assert!(forward.expires_at <= now + Forward::LIFETIME);
//! match Stored::from_bytes(&forward.to_bytes()).unwrap() {
//!     Stored::Forward(f) => assert_eq!(f, forward),
//!     Stored::Record(_) => unreachable!(),
//! }
//! assert!(matches!(Stored::from_bytes(&old.to_bytes()).unwrap(), Stored::Record(_)));
//! ```

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::{Record, RecordId, StoreError};

/// The stored form's first two bytes: a MessagePack array of three, then the format.
/// A record starts with an array of ten, so the two never meet.
const MAGIC: [u8; 2] = [0x93, FORWARD_FORMAT];
const FORWARD_FORMAT: u8 = 2;

/// The old id of a session whose id changed: where it went, and until when that matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Forward {
    /// The record the session lives in now.
    pub to: RecordId,
    /// When the store may forget the forward.
    pub expires_at: OffsetDateTime,
}

impl Forward {
    /// How long a forward is kept at most: long enough for every request that loaded the
    /// old id, and every listing of sessions made before the change, to have finished.
    pub const LIFETIME: Duration = Duration::minutes(10);

    /// A forward to `to`, kept until the old record would have expired, or
    /// [`LIFETIME`](Forward::LIFETIME) from `now` if that is sooner.
    #[must_use]
    pub fn new(to: RecordId, old_expires_at: OffsetDateTime, now: OffsetDateTime) -> Self {
        let limit = now.checked_add(Self::LIFETIME).unwrap_or(old_expires_at);
        Self { to, expires_at: old_expires_at.min(limit) }
    }

    /// Whether the forward has expired at `now`.
    #[must_use]
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    /// The forward as compact MessagePack, distinct from any [`Record::to_bytes`].
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = Wire(FORWARD_FORMAT, serde_bytes::Bytes::new(self.to.as_bytes()), self.expires_at.into());
        let bytes = rmp_serde::to_vec(&wire).expect("a forward always encodes");
        debug_assert!(bytes.starts_with(&MAGIC));
        bytes
    }
}

#[derive(Serialize)]
struct Wire<'a>(u8, &'a serde_bytes::Bytes, crate::codec::Instant);

#[derive(Deserialize)]
struct WireOwned(u8, serde_bytes::ByteBuf, crate::codec::Instant);

/// What a byte-keeping store finds under an id: a record, or a forward.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // Records are the common case; boxing them costs an allocation per load.
pub enum Stored {
    /// A live (or expired) session.
    Record(Record),
    /// The old id of a session that [`cycle`](crate::SessionStore::cycle)d.
    Forward(Forward),
}

impl Stored {
    /// Decodes what [`Record::to_bytes`] or [`Forward::to_bytes`] made.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the bytes are neither; a store should treat them as no
    /// session.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        if !bytes.starts_with(&MAGIC) {
            return Record::from_bytes(bytes).map(Self::Record);
        }
        let corrupt = |e: &str| StoreError::Corrupt(e.to_owned().into());
        let WireOwned(format, to, expires_at) =
            rmp_serde::from_slice(bytes).map_err(|_| corrupt("a session forward does not decode"))?;
        if format != FORWARD_FORMAT {
            return Err(corrupt("unknown forward format"));
        }
        let to: [u8; 32] =
            to.as_slice().try_into().map_err(|_| corrupt("a forward's target is not 32 bytes"))?;
        let expires_at = expires_at.try_into().map_err(|_| corrupt("a forward's expiry is out of range"))?;
        Ok(Self::Forward(Forward { to: RecordId::from_bytes(to), expires_at }))
    }

    /// When this record or forward expires.
    #[must_use]
    pub fn expires_at(&self) -> OffsetDateTime {
        match self {
            Self::Record(r) => r.expires_at,
            Self::Forward(f) => f.expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Id;

    #[test]
    fn a_forward_lives_at_most_its_lifetime_and_never_past_the_old_record() {
        let now = OffsetDateTime::now_utc();
        let to = Id::random().record_id();
        assert_eq!(Forward::new(to, now + Duration::days(30), now).expires_at, now + Forward::LIFETIME);
        assert_eq!(Forward::new(to, now + Duration::seconds(5), now).expires_at, now + Duration::seconds(5));
        // Extremes neither panic nor outlive the record.
        let far = OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT);
        assert_eq!(Forward::new(to, far, far).expires_at, far);
    }

    #[test]
    fn garbage_and_truncated_forwards_are_corrupt() {
        let now = OffsetDateTime::now_utc();
        let bytes = Forward::new(Id::random().record_id(), now, now).to_bytes();
        for cut in 0..bytes.len() {
            assert!(Stored::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Stored::from_bytes(&[0x93, 2, 0xc4, 1, 0, 0]).is_err());
    }
}
