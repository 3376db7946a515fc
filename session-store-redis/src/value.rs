//! The stored string: a fixed 56-byte header, then the record's MessagePack bytes.
//!
//! | bytes  | holds                                        | read by                          |
//! |--------|----------------------------------------------|----------------------------------|
//! | 0..8   | version, u64 big-endian                      | the save script (`GETRANGE`)     |
//! | 8..16  | `expires_at` in Unix ms, i64 big-endian      | the touch script rewrites it     |
//! | 16..24 | `last_seen` in Unix ms, i64 big-endian       | the touch script rewrites it     |
//! | 24..56 | SHA-256 of `user`, all zero without one      | the touch script returns it      |
//! | 56..   | [`Record::to_bytes`]                         | [`decode`]                       |
//!
//! The header exists because Lua cannot cheaply decode MessagePack: the save script compares
//! versions without parsing the record, `touch` moves the expiry and `last_seen` without
//! rewriting it, and learns which user index to extend.

use session_core::{Record, StoreError};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const HEADER: usize = 56;
/// Where the touch script finds the user digest (inclusive bounds, as `GETRANGE` takes them).
pub(crate) const USER_DIGEST_FIRST: usize = 24;
pub(crate) const USER_DIGEST_LAST: usize = HEADER - 1;
/// The digest a record without a user carries.
pub(crate) const NO_USER: [u8; 32] = [0; 32];

/// The digest that names a user's index key and sits in the header of the user's records.
pub(crate) fn user_digest(user: &str) -> [u8; 32] {
    Sha256::digest(user.as_bytes()).into()
}

/// The value `create` and `save` write for `record`; `user` is the digest of its user
/// (computed once by the caller, who also needs it for the index).
pub(crate) fn encode(record: &Record, user: Option<&[u8; 32]>) -> Vec<u8> {
    let body = record.to_bytes();
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&record.version.to_be_bytes());
    out.extend_from_slice(&touch_header(record.expires_at, record.last_seen));
    out.extend_from_slice(user.unwrap_or(&NO_USER));
    out.extend_from_slice(&body);
    out
}

/// Bytes 8..24 of the header, as `touch` overwrites them.
pub(crate) fn touch_header(expires_at: OffsetDateTime, last_seen: OffsetDateTime) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&unix_ms(expires_at).to_be_bytes());
    out[8..].copy_from_slice(&unix_ms(last_seen).to_be_bytes());
    out
}

/// The record in a stored value, with the expiry and `last_seen` from the header (which
/// `touch` may have moved since the record bytes were written).
pub(crate) fn decode(value: &[u8]) -> Result<Record, StoreError> {
    let (header, body) = value.split_at_checked(HEADER).ok_or_else(|| corrupt("shorter than its header"))?;
    let version = u64::from_be_bytes(field(header, 0));
    let expires_ms = i64::from_be_bytes(field(header, 8));
    let last_seen_ms = i64::from_be_bytes(field(header, 16));
    let mut record = Record::from_bytes(body)?;
    if record.version != version {
        return Err(corrupt("header version differs from the record's"));
    }
    // Equal milliseconds mean no touch since the write: keep the record's finer instants.
    if unix_ms(record.expires_at) != expires_ms {
        record.expires_at = from_unix_ms(expires_ms)?;
    }
    if unix_ms(record.last_seen) != last_seen_ms {
        record.last_seen = from_unix_ms(last_seen_ms)?;
    }
    Ok(record)
}

fn field(header: &[u8], at: usize) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(&header[at..at + 8]);
    out
}

/// `at` in Unix milliseconds, rounded down so Redis never keeps a key past the record's
/// expiry by more than its own millisecond granularity.
pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
    // `OffsetDateTime` spans ±9999 years, about 3e14 ms: always in range.
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

fn from_unix_ms(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(e.into()))
}

/// The `PXAT`/`PEXPIREAT` argument for an expiry: Redis rejects values below 1, and any
/// past instant deletes the key, which is what an expired record needs.
pub(crate) fn expire_at_arg(unix_ms: i64) -> i64 {
    unix_ms.max(1)
}

/// Lower-case hex, for the digests in key names.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn corrupt(why: &'static str) -> StoreError {
    StoreError::Corrupt(why.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Id;
    use time::Duration;

    fn encode(r: &Record) -> Vec<u8> {
        super::encode(r, r.user.as_deref().map(user_digest).as_ref())
    }

    fn record() -> Record {
        let now = OffsetDateTime::now_utc();
        let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
        r.entries.insert("k", vec![1, 2, 3].into());
        r.version = 7;
        r.user = Some("alice".into());
        r.label = Some("phone".into());
        r
    }

    #[test]
    fn round_trips_exactly() {
        let r = record();
        let value = encode(&r);
        assert_eq!(&value[..8], &7u64.to_be_bytes());
        assert_eq!(&value[USER_DIGEST_FIRST..=USER_DIGEST_LAST], &user_digest("alice"));
        assert_eq!(decode(&value).unwrap(), r);
        let mut anonymous = r;
        anonymous.user = None;
        let value = encode(&anonymous);
        assert_eq!(&value[USER_DIGEST_FIRST..=USER_DIGEST_LAST], &NO_USER);
        assert_eq!(decode(&value).unwrap(), anonymous);
    }

    #[test]
    fn a_touched_header_wins() {
        let r = record();
        let mut value = encode(&r);
        let later = r.expires_at + Duration::minutes(1);
        let seen = r.last_seen + Duration::seconds(30);
        value[8..24].copy_from_slice(&touch_header(later, seen));
        let got = decode(&value).unwrap();
        assert_eq!(unix_ms(got.expires_at), unix_ms(later));
        assert_eq!(unix_ms(got.last_seen), unix_ms(seen));
        assert_eq!((got.entries, got.version, got.user), (r.entries, r.version, r.user));
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let mut mismatched = encode(&record());
        mismatched[7] ^= 1;
        let mut truncated = encode(&record());
        truncated.truncate(HEADER + 4);
        for bad in [&b""[..], b"short", &[0u8; HEADER], &truncated, &mismatched] {
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

    #[test]
    fn hex_is_lower_case_and_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab]), "000fab");
        assert_eq!(hex(&user_digest("alice")).len(), 64);
    }
}
