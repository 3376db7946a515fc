//! How a record maps to a row; the same for both engines.
//!
//! `data` holds [`Record::to_bytes`], which carries every field at full precision. The
//! other columns repeat what SQL must see: `expires_at` for the expiry checks and the
//! sweep, `user_id` for the per-user index, and `version`, `last_seen`, `created_at` for
//! people querying the table (`version` is also checked against the record's on decode). Instants are integer Unix milliseconds rather than timestamp types so SQLite
//! and PostgreSQL compare them the same way, against the app's clock passed as a parameter.

use session_core::{Record, RecordId, StoreError};
use time::OffsetDateTime;

/// Rows removed per `DELETE` of a sweep, so one sweep never holds a long lock or builds
/// one huge transaction.
pub(crate) const DELETE_BATCH: i64 = 1000;

/// A record's column values.
#[derive(Debug)]
pub(crate) struct Columns {
    pub(crate) id: [u8; 32],
    pub(crate) data: Vec<u8>,
    pub(crate) user_id: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) last_seen: i64,
    pub(crate) expires_at: i64,
    pub(crate) version: i64,
}

impl Columns {
    pub(crate) fn of(record: &Record) -> Result<Self, StoreError> {
        Ok(Self {
            id: *record.id.as_bytes(),
            data: record.to_bytes(),
            user_id: record.user.clone(),
            created_at: unix_ms(record.created_at),
            last_seen: unix_ms(record.last_seen),
            expires_at: unix_ms(record.expires_at),
            version: version_column(record.version)?,
        })
    }
}

/// Both engines' integers are signed 64-bit; a version past `i64::MAX` takes 2^63 patches.
pub(crate) fn version_column(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| StoreError::backend("session version exceeds the BIGINT range"))
}

/// `at` in Unix milliseconds, rounded down: with `expires_at <= now` meaning expired on
/// both sides, a record may end up to a millisecond early but is never served late.
pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
    // `OffsetDateTime` spans ±9999 years, about 3e14 ms: always in range.
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The app's clock, which every expiry comparison uses, so the database server's clock
/// (and time zone) never matters.
pub(crate) fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

/// The columns a loaded row is decoded from (`SELECT data, expires_at, last_seen, version`).
pub(crate) type Loaded = (Vec<u8>, i64, i64, i64);

/// The record in a loaded row. The `expires_at` and `last_seen` columns win over the copies
/// inside `data` whenever the two differ: rows written by earlier versions, whose `touch`
/// moved only those columns, keep loading with their refreshed expiry. (`apply` writes both.)
pub(crate) fn decode(
    id: &RecordId,
    (data, expires_at, last_seen, version): &Loaded,
) -> Result<Record, StoreError> {
    let mut record = Record::from_bytes(data)?;
    if record.id != *id {
        return Err(corrupt("the row holds another session's record"));
    }
    if version_column(record.version).ok() != Some(*version) {
        return Err(corrupt("the version column differs from the record's"));
    }
    merge(&mut record.expires_at, *expires_at)?;
    merge(&mut record.last_seen, *last_seen)?;
    Ok(record)
}

/// Takes the column's instant unless it is `field` rounded down, which keeps the record's
/// full precision for untouched rows.
fn merge(field: &mut OffsetDateTime, column: i64) -> Result<(), StoreError> {
    if unix_ms(*field) != column {
        *field = OffsetDateTime::from_unix_timestamp_nanos(i128::from(column) * 1_000_000)
            .map_err(|e| StoreError::Corrupt(e.into()))?;
    }
    Ok(())
}

/// A row's id column as a [`RecordId`]; anything but 32 bytes is corrupt.
pub(crate) fn record_id(bytes: &[u8]) -> Result<RecordId, StoreError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| corrupt("the id column is not 32 bytes"))?;
    Ok(RecordId::from_bytes(bytes))
}

/// A row that does not decode is no session: the caller removes it and answers `None`, so
/// its user gets a fresh session rather than an error on every request until it expires.
pub(crate) fn warn_discarding(err: &StoreError) {
    // Neither the id nor the bytes: the log is no place for session data.
    tracing::warn!(error = %err, cause = ?std::error::Error::source(err), "discarding a corrupt session row");
}

fn corrupt(why: &'static str) -> StoreError {
    StoreError::Corrupt(why.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Id;
    use time::Duration;

    fn record() -> Record {
        let now = OffsetDateTime::now_utc();
        let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
        r.entries.insert("k", vec![1, 2, 3].into());
        r.version = 7;
        r.user = Some("alice".into());
        r.label = Some("phone".into());
        r.last_seen = now + Duration::seconds(5);
        r
    }

    fn loaded(c: &Columns) -> Loaded {
        (c.data.clone(), c.expires_at, c.last_seen, c.version)
    }

    #[test]
    fn round_trips_exactly() {
        let r = record();
        let c = Columns::of(&r).unwrap();
        assert_eq!(c.id, *r.id.as_bytes());
        assert_eq!(c.user_id.as_deref(), Some("alice"));
        assert_eq!(c.last_seen, unix_ms(r.last_seen));
        assert_eq!(decode(&r.id, &loaded(&c)).unwrap(), r);
        assert_eq!(record_id(&c.id).unwrap(), r.id);
    }

    #[test]
    fn anonymous_records_have_no_user_id() {
        let mut r = record();
        r.user = None;
        assert_eq!(Columns::of(&r).unwrap().user_id, None);
    }

    #[test]
    fn touched_expiry_and_last_seen_columns_win() {
        let r = record();
        let c = Columns::of(&r).unwrap();
        let later = c.expires_at + 60_000;
        let seen = c.last_seen + 30_000;
        let got = decode(&r.id, &(c.data.clone(), later, seen, c.version)).unwrap();
        assert_eq!(unix_ms(got.expires_at), later);
        assert_eq!(unix_ms(got.last_seen), seen);
        assert_eq!((got.entries, got.user, got.label), (r.entries, r.user, r.label));
    }

    #[test]
    fn mismatches_and_garbage_are_corrupt() {
        let r = record();
        let c = Columns::of(&r).unwrap();
        let other = Id::random().record_id();
        let cases: [(&RecordId, &[u8], i64); 3] =
            [(&other, &c.data[..], c.version), (&r.id, &c.data[..], 6), (&r.id, b"garbage", c.version)];
        for (id, data, version) in cases {
            let row = (data.to_vec(), c.expires_at, c.last_seen, version);
            assert!(matches!(decode(id, &row), Err(StoreError::Corrupt(_))));
        }
        assert!(matches!(record_id(&[0; 31]), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn milliseconds_round_down() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_500_999_999).unwrap();
        assert_eq!(unix_ms(at), 1_500);
        assert_eq!(unix_ms(OffsetDateTime::from_unix_timestamp_nanos(-1).unwrap()), -1);
    }

    #[test]
    fn versions_past_bigint_are_refused() {
        assert_eq!(version_column(7).unwrap(), 7);
        assert!(matches!(version_column(u64::MAX), Err(StoreError::Backend(_))));
    }
}
