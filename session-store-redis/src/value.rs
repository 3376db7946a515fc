//! The stored string: a fixed 16-byte header, then the record's MessagePack bytes.
//!
//! | bytes | holds                                   | read by                      |
//! |-------|-----------------------------------------|------------------------------|
//! | 0..8  | version, u64 big-endian                 | the save script (`GETRANGE`) |
//! | 8..16 | `expires_at` in Unix ms, i64 big-endian | the touch script rewrites it |
//! | 16..  | [`Record::to_bytes`]                    | [`decode`]                   |
//!
//! The header exists because Lua cannot cheaply decode MessagePack: the save script compares
//! versions without parsing the record, and `touch` moves the expiry without rewriting it.

use session_core::{Record, StoreError};
use time::OffsetDateTime;

const HEADER: usize = 16;

/// The value `create` and `save` write for `record`.
pub(crate) fn encode(record: &Record) -> Vec<u8> {
    let body = record.to_bytes();
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&record.version.to_be_bytes());
    out.extend_from_slice(&unix_ms(record.expires_at).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The record in a stored value, with the expiry from the header (which `touch` may have
/// moved since the record bytes were written).
pub(crate) fn decode(value: &[u8]) -> Result<Record, StoreError> {
    let (header, body) = value.split_at_checked(HEADER).ok_or_else(|| corrupt("shorter than its header"))?;
    let (version, expires_ms) = header.split_at(8);
    let version = u64::from_be_bytes(version.try_into().map_err(|_| corrupt("bad version bytes"))?);
    let expires_ms = i64::from_be_bytes(expires_ms.try_into().map_err(|_| corrupt("bad expiry bytes"))?);
    let mut record = Record::from_bytes(body)?;
    if record.version != version {
        return Err(corrupt("header version differs from the record's"));
    }
    // Equal milliseconds mean no touch since the write: keep the record's finer instant.
    if unix_ms(record.expires_at) != expires_ms {
        let nanos = i128::from(expires_ms) * 1_000_000;
        record.expires_at =
            OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|e| StoreError::Corrupt(e.into()))?;
    }
    Ok(record)
}

/// `at` in Unix milliseconds, rounded down so Redis never keeps a key past the record's
/// expiry by more than its own millisecond granularity.
pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
    // `OffsetDateTime` spans ±9999 years, about 3e14 ms: always in range.
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The `PXAT`/`PEXPIREAT` argument for an expiry: Redis rejects values below 1, and any
/// past instant deletes the key, which is what an expired record needs.
pub(crate) fn expire_at_arg(unix_ms: i64) -> i64 {
    unix_ms.max(1)
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
        r.entries.insert("k".into(), vec![1, 2, 3].into());
        r.version = 7;
        r
    }

    #[test]
    fn round_trips_exactly() {
        let r = record();
        let value = encode(&r);
        assert_eq!(&value[..8], &7u64.to_be_bytes());
        assert_eq!(decode(&value).unwrap(), r);
    }

    #[test]
    fn a_touched_header_expiry_wins() {
        let r = record();
        let mut value = encode(&r);
        let later = unix_ms(r.expires_at) + 60_000;
        value[8..16].copy_from_slice(&later.to_be_bytes());
        let got = decode(&value).unwrap();
        assert_eq!(unix_ms(got.expires_at), later);
        assert_eq!(got.entries, r.entries);
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let mut mismatched = encode(&record());
        mismatched[7] ^= 1;
        let mut truncated = encode(&record());
        truncated.truncate(20);
        for bad in [&b""[..], b"short", &[0u8; 16], &truncated, &mismatched] {
            assert!(matches!(decode(bad), Err(StoreError::Corrupt(_))), "{bad:?}");
        }
    }

    #[test]
    fn milliseconds_round_down_and_stay_valid_for_redis() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_500_999_999).unwrap();
        assert_eq!(unix_ms(at), 1_500);
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1).unwrap();
        assert_eq!(unix_ms(before_epoch), -1);
        assert_eq!(expire_at_arg(-1), 1);
        assert_eq!(expire_at_arg(1_500), 1_500);
    }
}
