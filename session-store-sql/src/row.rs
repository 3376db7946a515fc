//! How a record maps to a row; the same for both engines.
//!
//! `data` holds [`Record::to_bytes`], which carries every field at full precision. The
//! other columns repeat what SQL must see: `expires_at` for the expiry checks and the
//! sweep, `user_id` for the per-user index, and `version`, `last_seen`, `created_at` for
//! people querying the table (`version` is also checked against the record's on decode).
//! Instants are integer Unix milliseconds rather than timestamp types so SQLite and
//! PostgreSQL compare them the same way, against the app's clock passed as a parameter.
//!
//! The row a `cycle` leaves at a session's old id holds a [`Forward`] in `data` instead
//! ([`Stored::from_bytes`] tells the two apart), so forwards need no column of their own.

use session_core::{Forward, Record, RecordId, StoreError, Stored};
use sqlx::query::Query;
use sqlx::{Database, Encode, Type};
use time::OffsetDateTime;

/// Rows removed per `DELETE` of a sweep, so one sweep never holds a long lock or builds
/// one huge transaction.
pub(crate) const DELETE_BATCH: i64 = 1000;

/// A row's column values.
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

    /// The row a cycle leaves at `from`: `forward` in `data`, its expiry in `expires_at`,
    /// and the moved session's other columns. Keeping its `user_id` matters on
    /// PostgreSQL: a `revoke_user` that waited for the cycle's lock re-checks its
    /// `WHERE` against this row, and must still find it to follow it to the new record,
    /// which its own snapshot cannot see.
    pub(crate) fn forward(from: &RecordId, forward: &Forward, moved: Self) -> Self {
        Self {
            id: *from.as_bytes(),
            data: forward.to_bytes(),
            expires_at: unix_ms(forward.expires_at),
            ..moved
        }
    }

    /// Binds the columns as `$1` to `$7` in table order (`id, data, user_id, created_at,
    /// last_seen, expires_at, version`), the parameters of `create` and `update`.
    pub(crate) fn bind<'q, DB>(
        &'q self,
        query: Query<'q, DB, DB::Arguments<'q>>,
    ) -> Query<'q, DB, DB::Arguments<'q>>
    where
        DB: Database,
        &'q [u8]: Encode<'q, DB> + Type<DB>,
        Option<&'q str>: Encode<'q, DB> + Type<DB>,
        i64: Encode<'q, DB> + Type<DB>,
    {
        query
            .bind(&self.id[..])
            .bind(&self.data[..])
            .bind(self.user_id.as_deref())
            .bind(self.created_at)
            .bind(self.last_seen)
            .bind(self.expires_at)
            .bind(self.version)
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

/// Why a row is no session and gets discarded. Only this kind is ever logged: the
/// decoder's own message can quote the stored bytes, so it is dropped here on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Corrupt {
    Id,
    Data,
    OtherSession,
    Version,
    Instant,
}

impl Corrupt {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id column is not 32 bytes",
            Self::Data => "data column is not a session record",
            Self::OtherSession => "data column holds another session's record",
            Self::Version => "version column differs from the record's",
            Self::Instant => "instant column out of range",
        }
    }
}

/// The record in a loaded row, or `None` for a forward (no session, and no corruption).
/// The `expires_at` and `last_seen` columns win over the copies inside `data` whenever
/// the two differ: rows written by earlier versions, whose `touch` moved only those
/// columns, keep loading with their refreshed expiry. (`apply` writes both.)
pub(crate) fn decode(
    id: &RecordId,
    (data, expires_at, last_seen, version): &Loaded,
) -> Result<Option<Record>, Corrupt> {
    let mut record = match Stored::from_bytes(data).map_err(|_| Corrupt::Data)? {
        Stored::Record(record) => record,
        Stored::Forward(_) => return Ok(None),
    };
    if record.id != *id {
        return Err(Corrupt::OtherSession);
    }
    if version_column(record.version).ok() != Some(*version) {
        return Err(Corrupt::Version);
    }
    merge(&mut record.expires_at, *expires_at)?;
    merge(&mut record.last_seen, *last_seen)?;
    Ok(Some(record))
}

/// The forward in a row's `data`, if it holds one (and not a record or garbage).
pub(crate) fn forward_in(data: &[u8]) -> Option<Forward> {
    match Stored::from_bytes(data) {
        Ok(Stored::Forward(forward)) => Some(forward),
        _ => None,
    }
}

/// Takes the column's instant unless it is `field` rounded down, which keeps the record's
/// full precision for untouched rows.
fn merge(field: &mut OffsetDateTime, column: i64) -> Result<(), Corrupt> {
    if unix_ms(*field) != column {
        *field = OffsetDateTime::from_unix_timestamp_nanos(i128::from(column) * 1_000_000)
            .map_err(|_| Corrupt::Instant)?;
    }
    Ok(())
}

/// A row's id column as a [`RecordId`]; anything but 32 bytes is corrupt.
pub(crate) fn record_id(bytes: &[u8]) -> Result<RecordId, Corrupt> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| Corrupt::Id)?;
    Ok(RecordId::from_bytes(bytes))
}

/// A row that does not decode is no session: the caller removes it and answers `None`, so
/// its user gets a fresh session rather than an error on every request until it expires.
pub(crate) fn warn_discarding(why: Corrupt) {
    // A fixed message and the kind: never the id, the bytes, or a decoder's text.
    tracing::warn!(kind = why.as_str(), "discarding a corrupt session row");
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
        assert_eq!(decode(&r.id, &loaded(&c)).unwrap(), Some(r.clone()));
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
        let got = decode(&r.id, &(c.data.clone(), later, seen, c.version)).unwrap().unwrap();
        assert_eq!(unix_ms(got.expires_at), later);
        assert_eq!(unix_ms(got.last_seen), seen);
        assert_eq!((got.entries, got.user, got.label), (r.entries, r.user, r.label));
    }

    #[test]
    fn mismatches_and_garbage_are_corrupt() {
        let r = record();
        let c = Columns::of(&r).unwrap();
        let other = Id::random().record_id();
        let cases: [(&RecordId, &[u8], i64, Corrupt); 3] = [
            (&other, &c.data[..], c.version, Corrupt::OtherSession),
            (&r.id, &c.data[..], 6, Corrupt::Version),
            (&r.id, b"garbage", c.version, Corrupt::Data),
        ];
        for (id, data, version, why) in cases {
            let row = (data.to_vec(), c.expires_at, c.last_seen, version);
            assert_eq!(decode(id, &row), Err(why));
        }
        let far = (c.data.clone(), i64::MAX, c.last_seen, c.version);
        assert_eq!(decode(&r.id, &far), Err(Corrupt::Instant));
        assert_eq!(record_id(&[0; 31]), Err(Corrupt::Id));
    }

    #[test]
    fn a_forward_row_is_no_record_and_keeps_the_moved_sessions_user() {
        let r = record();
        let now = OffsetDateTime::now_utc();
        let forward = Forward::new(Id::random().record_id(), r.expires_at, now);
        let from = Id::random().record_id();
        let c = Columns::forward(&from, &forward, Columns::of(&r).unwrap());
        assert_eq!((c.id, c.expires_at), (*from.as_bytes(), unix_ms(forward.expires_at)));
        assert_eq!(c.user_id.as_deref(), Some("alice"));
        assert_eq!(decode(&from, &loaded(&c)), Ok(None));
        assert_eq!(forward_in(&c.data), Some(forward));
        assert_eq!(forward_in(&r.to_bytes()), None);
        assert_eq!(forward_in(b"garbage"), None);
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
