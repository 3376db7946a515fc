//! A session as this store reads it: Flask's record, plus the metadata Flask's format has
//! no place for, kept in a key of its own (`{<prefix><sid>}:rs-meta`) that Flask never
//! reads.
//!
//! The metadata is [`Record::to_bytes`] of the record without its entries (created_at,
//! expiry, version, user, label, last_seen), after the first 8 bytes of the SHA-256 of the
//! Flask record it was written with. When Flask has rewritten the record since (its digest
//! differs), the metadata still describes the same session (same sid), but the version is
//! derived from the new record's digest instead, so a cache comparing versions sees the
//! change. A record without metadata (Flask created it, or the metadata expired) gets
//! `created_at` and `last_seen` = now, and a version from its digest.

use bytes::Bytes;
use session_core::{Record, RecordId};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::wire::{self, Pair, WireError};

/// The expiry of a record stored without one (not written by Flask-Session, which always
/// sets one): Flask's default `PERMANENT_SESSION_LIFETIME`, counted from now.
const NO_TTL: Duration = Duration::days(31);

/// What one read found: the raw bytes, as the compare-and-set scripts want them back.
#[derive(Clone)]
pub(crate) struct Raw {
    pub(crate) record: Bytes,
    pub(crate) meta: Bytes,
    /// `PEXPIRETIME` of the record: Unix ms, or -1 for none.
    pub(crate) expire_ms: i64,
}

fn digest8(record: &[u8]) -> [u8; 8] {
    let d = Sha256::digest(record);
    [d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
}

/// A version from a record's digest: the high bit clear, so counting on from it never
/// overflows.
fn derived_version(record: &[u8]) -> u64 {
    u64::from_be_bytes(digest8(record)) >> 1
}

impl Raw {
    /// The pairs of the Flask record, for splicing.
    pub(crate) fn pairs(&self) -> Result<Vec<Pair<'_>>, WireError> {
        wire::pairs(&self.record)
    }

    /// The record as `session-core` sees it, at `now`.
    pub(crate) fn decode(&self, id: RecordId, now: OffsetDateTime) -> Result<Record, WireError> {
        let pairs = self.pairs()?;
        let expires_at = if self.expire_ms > 0 {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.expire_ms) * 1_000_000)
                .unwrap_or(now + NO_TTL)
        } else {
            now + NO_TTL
        };
        let digest = digest8(&self.record);
        let meta = self
            .meta
            .get(8..)
            .and_then(|bytes| Record::from_bytes(bytes).ok())
            .map(|m| (self.meta[..8] == digest, m));
        let mut record = Record::new(id, now, expires_at);
        record.version = derived_version(&self.record);
        if let Some((current, meta)) = meta {
            record.created_at = meta.created_at;
            record.expiry = meta.expiry;
            record.user = meta.user;
            record.label = meta.label;
            record.last_seen = meta.last_seen;
            if current {
                record.version = meta.version;
            }
        }
        record.entries = wire::entries(&self.record, &pairs);
        Ok(record)
    }
}

/// The metadata to store beside `flask_record` for `record`.
pub(crate) fn encode(record: &Record, flask_record: &[u8]) -> Vec<u8> {
    let mut bare = record.clone();
    bare.entries.clear();
    let mut out = digest8(flask_record).to_vec();
    out.extend_from_slice(&bare.to_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::{Expiry, Id};

    #[test]
    fn metadata_holds_while_flask_leaves_the_record_alone() {
        let now = OffsetDateTime::now_utc();
        let mut r = Record::new(Id::random().record_id(), now - Duration::hours(1), now + Duration::hours(1));
        r.entries.insert("n", Bytes::from_static(b"\x01"));
        r.expiry = Some(Expiry::OnInactivity(Duration::days(3)));
        r.user = Some("ann".into());
        r.version = 7;
        let flask = wire::encode(&r.entries);
        let raw = Raw {
            record: flask.clone().into(),
            meta: encode(&r, &flask).into(),
            expire_ms: hash_ms(r.expires_at),
        };
        let got = raw.decode(r.id, now).unwrap();
        assert_eq!((got.version, got.created_at, got.expiry), (7, r.created_at, r.expiry));
        assert_eq!(got.user.as_deref(), Some("ann"));
        assert_eq!(got.entries, r.entries);
        // Flask rewrote the record: same session, another version.
        let changed = Raw { record: wire::encode(&Default::default()).into(), ..raw };
        let got = changed.decode(r.id, now).unwrap();
        assert_ne!(got.version, 7);
        assert_eq!(got.user.as_deref(), Some("ann"));
    }

    fn hash_ms(at: OffsetDateTime) -> i64 {
        crate::hash::unix_ms(at)
    }
}
