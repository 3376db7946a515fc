//! The stored hash: one Redis hash per session, so the scripts can change single entries
//! without decoding (or even reading) the rest of the record.
//!
//! | field       | holds                                                    | written by        |
//! |-------------|----------------------------------------------------------|-------------------|
//! | `k` + key   | the entry's encoded value, as is                         | create, apply     |
//! | `v`         | version, decimal                                         | create, apply     |
//! | `c`         | `created_at`, Unix nanoseconds, decimal                  | create            |
//! | `e`         | `expires_at`, Unix nanoseconds, decimal                  | create, apply     |
//! | `s`         | `last_seen`, Unix nanoseconds, decimal                   | create, apply     |
//! | `x`         | the session's own expiry, [`Expiry::to_bytes`]; absent: none | create, apply |
//! | `u`         | the user; absent: none                                   | create, apply     |
//! | `d`         | SHA-256 of the user (names its index set); with `u` only | create, apply     |
//! | `l`         | the label; absent: none                                  | create, apply     |
//!
//! Metadata field names never start with `k`, so no session key can collide with them.
//! Instants are exact to the nanosecond; the scripts compare them as Lua numbers, which
//! is exact to a fraction of a microsecond, and the key's native expiry (`PEXPIREAT`) is
//! the instant rounded down to the millisecond.

use session_core::{Expiry, Record, RecordId, StoreError};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use redis::Value;

/// Prefix of an entry's field name.
pub(crate) const ENTRY: u8 = b'k';

/// The field that holds entry `key`, written into `buf` (reused across entries).
pub(crate) fn entry_field<'b>(buf: &'b mut Vec<u8>, key: &str) -> &'b [u8] {
    buf.clear();
    buf.push(ENTRY);
    buf.extend_from_slice(key.as_bytes());
    buf
}

/// The digest that names a user's index set (and sits in field `d` of the user's records).
pub(crate) fn user_digest(user: &str) -> [u8; 32] {
    Sha256::digest(user.as_bytes()).into()
}

/// Hands `out` every field/value pair `create` writes for `record`, `digest` being its
/// user's, without copying the values.
pub(crate) fn fields(record: &Record, digest: Option<&[u8; 32]>, mut out: impl FnMut(&[u8], &[u8])) {
    out(b"v", record.version.to_string().as_bytes());
    out(b"c", nanos(record.created_at).as_bytes());
    out(b"e", nanos(record.expires_at).as_bytes());
    out(b"s", nanos(record.last_seen).as_bytes());
    if let Some(expiry) = &record.expiry {
        out(b"x", &expiry.to_bytes());
    }
    if let (Some(user), Some(digest)) = (&record.user, digest) {
        out(b"u", user.as_bytes());
        out(b"d", digest);
    }
    if let Some(label) = &record.label {
        out(b"l", label.as_bytes());
    }
    let mut field = Vec::new();
    for (key, value) in &record.entries {
        out(entry_field(&mut field, key), value);
    }
}

/// The record `id` from an `HGETALL` reply (an array of field, value, ... or a RESP3 map);
/// `None` when the reply is empty (no such key).
///
/// # Errors
///
/// [`StoreError::Corrupt`] when a required field is missing or a field does not decode.
pub(crate) fn decode(id: RecordId, reply: Value) -> Result<Option<Record>, StoreError> {
    let mut fields = Decoder::new(id);
    match reply {
        Value::Map(pairs) => {
            for (field, value) in pairs {
                fields.take(field, value)?;
            }
        }
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(corrupt("odd number of hash items"));
            }
            let mut items = items.into_iter();
            while let (Some(field), Some(value)) = (items.next(), items.next()) {
                fields.take(field, value)?;
            }
        }
        Value::Nil => {}
        _ => return Err(corrupt("not a hash")),
    }
    fields.finish()
}

/// A record being read field by field.
struct Decoder {
    record: Record,
    any: bool,
    /// A forward left by `cycle`: no session.
    forward: bool,
    version: Option<i128>,
    created: Option<OffsetDateTime>,
    expires: Option<OffsetDateTime>,
    seen: Option<OffsetDateTime>,
}

impl Decoder {
    fn new(id: RecordId) -> Self {
        let epoch = OffsetDateTime::UNIX_EPOCH;
        let record = Record::new(id, epoch, epoch);
        Self { record, any: false, forward: false, version: None, created: None, expires: None, seen: None }
    }

    fn take(&mut self, field: Value, value: Value) -> Result<(), StoreError> {
        let (Value::BulkString(field), Value::BulkString(value)) = (field, value) else {
            return Err(corrupt("a hash field is not a string"));
        };
        self.any = true;
        let record = &mut self.record;
        match field.as_slice() {
            [ENTRY, key @ ..] => {
                let key = std::str::from_utf8(key).map_err(|_| corrupt("a session key is not UTF-8"))?;
                record.entries.insert(key, value.into());
            }
            b"v" => self.version = Some(number(&value)?),
            b"c" => self.created = Some(instant(&value)?),
            b"e" => self.expires = Some(instant(&value)?),
            b"s" => self.seen = Some(instant(&value)?),
            b"x" => record.expiry = Some(Expiry::from_bytes(&value)?),
            b"u" => record.user = Some(text(value)?),
            b"l" => record.label = Some(text(value)?),
            b"f" => self.forward = true,
            // The digest is the index's business; fields a later version may add are ignored.
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<Option<Record>, StoreError> {
        if !self.any || self.forward {
            return Ok(None);
        }
        let mut record = self.record;
        let missing = || corrupt("a required field is missing");
        let version = self.version.ok_or_else(missing)?;
        record.version = u64::try_from(version).map_err(|_| corrupt("the version is out of range"))?;
        record.created_at = self.created.ok_or_else(missing)?;
        record.expires_at = self.expires.ok_or_else(missing)?;
        record.last_seen = self.seen.ok_or_else(missing)?;
        Ok(Some(record))
    }
}

/// `at` in Unix nanoseconds, decimal, as fields `c`, `e` and `s` hold it.
pub(crate) fn nanos(at: OffsetDateTime) -> String {
    at.unix_timestamp_nanos().to_string()
}

/// Decodes what [`nanos`] wrote.
pub(crate) fn instant(bytes: &[u8]) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(number(bytes)?).map_err(|e| StoreError::Corrupt(e.into()))
}

fn number(bytes: &[u8]) -> Result<i128, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt("not a decimal integer"))
}

fn text(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| corrupt("a user or label is not UTF-8"))
}

/// `at` in Unix milliseconds, rounded down so Redis never keeps a key past the record's
/// expiry by more than its own millisecond granularity.
pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
    // `OffsetDateTime` spans ±9999 years, about 3e14 ms: always in range.
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The `PEXPIREAT` argument for an expiry: Redis rejects values below 1, and any past
/// instant deletes the key, which is what an expired record needs.
pub(crate) fn expire_at_arg(at: OffsetDateTime) -> i64 {
    unix_ms(at).max(1)
}

/// Lower-case hex, for the digests in key names.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(crate) fn corrupt(why: &'static str) -> StoreError {
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
        r.entries.insert("", Vec::new().into());
        r.entries.insert("v", vec![0xff].into());
        r.version = 7;
        r.expiry = Some(Expiry::OnInactivity(Duration::days(30)));
        r.user = Some("alice".into());
        r.label = Some("phone".into());
        r.last_seen = now + Duration::nanoseconds(1);
        r
    }

    fn written(r: &Record, digest: Option<&[u8; 32]>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        fields(r, digest, |f, v| out.push((f.to_vec(), v.to_vec())));
        out
    }

    /// What `HGETALL` answers for the pairs `create` writes.
    fn reply(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Value {
        Value::Array(
            pairs.into_iter().flat_map(|(f, v)| [Value::BulkString(f), Value::BulkString(v)]).collect(),
        )
    }

    #[test]
    fn round_trips_exactly() {
        let r = record();
        let digest = user_digest("alice");
        let pairs = written(&r, Some(&digest));
        assert!(pairs.iter().any(|(f, v)| f == b"d" && v[..] == digest));
        assert_eq!(decode(r.id, reply(pairs)).unwrap(), Some(r.clone()));
        let mut anonymous = r;
        (anonymous.user, anonymous.label, anonymous.expiry) = (None, None, None);
        let pairs = written(&anonymous, None);
        assert_eq!(pairs.len(), 4 + anonymous.entries.len());
        assert_eq!(decode(anonymous.id, reply(pairs)).unwrap(), Some(anonymous));
    }

    #[test]
    fn a_resp3_map_decodes_too() {
        let r = record();
        let map = written(&r, Some(&user_digest("alice")))
            .into_iter()
            .map(|(f, v)| (Value::BulkString(f), Value::BulkString(v)))
            .collect();
        assert_eq!(decode(r.id, Value::Map(map)).unwrap(), Some(r));
    }

    #[test]
    fn nothing_stored_is_none() {
        let id = Id::random().record_id();
        assert_eq!(decode(id, Value::Array(Vec::new())).unwrap(), None);
        assert_eq!(decode(id, Value::Nil).unwrap(), None);
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let r = record();
        let without = |name: &[u8]| reply(written(&r, None).into_iter().filter(|(f, _)| f != name).collect());
        let with = |name: &[u8], value: &[u8]| {
            let mut pairs = written(&r, None);
            pairs.push((name.to_vec(), value.to_vec()));
            reply(pairs)
        };
        let bad = [
            without(b"v"),
            without(b"e"),
            with(b"c", b"yesterday"),
            with(b"v", b"-1"),
            with(b"x", b"\xc1"),
            with(b"u", b"\xff"),
            with(b"k\xff", b"1"),
            Value::Array(vec![Value::BulkString(b"v".to_vec())]),
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
            Value::BulkString(b"old string format".to_vec()),
        ];
        for value in bad {
            assert!(matches!(decode(r.id, value.clone()), Err(StoreError::Corrupt(_))), "{value:?}");
        }
    }

    #[test]
    fn milliseconds_round_down_and_stay_valid_for_redis() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_500_999_999).unwrap();
        assert_eq!(unix_ms(at), 1_500);
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1).unwrap();
        assert_eq!(unix_ms(before_epoch), -1);
        assert_eq!(expire_at_arg(before_epoch), 1);
        assert_eq!(expire_at_arg(at), 1_500);
    }

    #[test]
    fn hex_is_lower_case_and_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab]), "000fab");
        assert_eq!(hex(&user_digest("alice")).len(), 64);
    }
}
