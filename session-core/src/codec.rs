//! MessagePack encodings: session values, whole records, client-side payloads.
//!
//! Values are encoded with field names (`rmp_serde::to_vec_named`) so a struct keeps
//! decoding after fields are reordered or added with `#[serde(default)]`. Records use a
//! compact positional form with a format version first. Every decode bounds nesting depth,
//! and every input it sees is already bounded in size (a cookie, or a store's record).

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::client::ClientSession;
use crate::record::Entries;
use crate::{Expiry, Record, RecordId};

/// Deepest nesting a decoded value may have; deeper input is an error, not a stack overflow.
const MAX_DEPTH: usize = 64;
const RECORD_FORMAT: u8 = 1;

/// Why bytes could not be encoded or decoded.
pub(crate) type CodecError = Box<dyn std::error::Error + Send + Sync>;

/// Largest scratch buffer kept between encodings; a bigger one is released after use.
const SCRATCH_KEPT: usize = 64 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes a session value. The encoding goes into a per-thread scratch buffer and is then
/// copied out at its exact size: one allocation per value, where growing a fresh `Vec`
/// and trimming it for `Bytes` costs two or three.
pub(crate) fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, CodecError> {
    let encode = |buf: &mut Vec<u8>| -> Result<Bytes, CodecError> {
        buf.clear();
        rmp_serde::encode::write_named(buf, value)?;
        Ok(Bytes::copy_from_slice(buf))
    };
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            let bytes = encode(&mut buf);
            if buf.capacity() > SCRATCH_KEPT {
                *buf = Vec::new();
            }
            bytes
        }
        // Only if a `Serialize` impl encodes a session value itself: use a buffer of its own.
        Err(_) => encode(&mut Vec::new()),
    })
}

/// Decodes one value from its bytes, straight from the slice (the reader-based decoder
/// allocates a scratch buffer on every call, and this runs on every `get`). Bytes after the
/// value are not looked at: values are only ever written by `encode_value`.
///
/// The error never quotes the stored value: serde's messages do ("invalid type: string
/// \"...\", expected u64"), and errors end up in logs. It names the requested type and
/// what serde expected instead.
pub(crate) fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_bounded(bytes).map_err(|err| {
        let said = err.to_string();
        let expected = said.rsplit_once(", expected ").map(|(_, e)| e);
        let mut message = format!("the stored value is not a `{}`", std::any::type_name::<T>());
        if let Some(expected) = expected.filter(|e| !e.contains(['`', '"', '\''])) {
            message.push_str(" (expected ");
            message.push_str(expected);
            message.push(')');
        }
        message.into()
    })
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Instant(i64, u32);

impl From<OffsetDateTime> for Instant {
    fn from(t: OffsetDateTime) -> Self {
        Self(t.unix_timestamp(), t.nanosecond())
    }
}

impl TryFrom<Instant> for OffsetDateTime {
    type Error = CodecError;
    fn try_from(Instant(secs, nanos): Instant) -> Result<Self, CodecError> {
        if nanos >= 1_000_000_000 {
            return Err("invalid timestamp".into());
        }
        Ok(OffsetDateTime::from_unix_timestamp(secs)?.replace_nanosecond(nanos)?)
    }
}

#[derive(Serialize, Deserialize)]
enum WireExpiry {
    Browser,
    Idle(i64, i32),
    At(Instant),
}

impl From<Expiry> for WireExpiry {
    fn from(e: Expiry) -> Self {
        match e {
            Expiry::BrowserSession => Self::Browser,
            Expiry::OnInactivity(d) => Self::Idle(d.whole_seconds(), d.subsec_nanoseconds()),
            Expiry::AtDateTime(t) => Self::At(t.into()),
        }
    }
}

impl TryFrom<WireExpiry> for Expiry {
    type Error = CodecError;
    fn try_from(w: WireExpiry) -> Result<Self, CodecError> {
        Ok(match w {
            WireExpiry::Browser => Self::BrowserSession,
            // `Duration::new` panics when the nanoseconds carry past the seconds' range.
            WireExpiry::Idle(s, n) if n.unsigned_abs() < 1_000_000_000 => {
                Self::OnInactivity(Duration::new(s, n))
            }
            WireExpiry::Idle(..) => return Err("invalid idle window".into()),
            WireExpiry::At(t) => Self::AtDateTime(t.try_into()?),
        })
    }
}

/// The stored form of a [`Record`] (and, without the id, of a client-side session).
#[derive(Serialize, Deserialize)]
struct Wire<E, S> {
    format: u8,
    #[serde(with = "serde_bytes")]
    id: Vec<u8>,
    created_at: Instant,
    expires_at: Instant,
    expiry: Option<WireExpiry>,
    version: u64,
    entries: E,
    user: Option<S>,
    label: Option<S>,
    last_seen: Instant,
}

impl Record {
    /// The record as compact MessagePack, for stores that keep bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = Wire {
            format: RECORD_FORMAT,
            id: self.id.as_bytes().to_vec(),
            created_at: self.created_at.into(),
            expires_at: self.expires_at.into(),
            expiry: self.expiry.map(Into::into),
            version: self.version,
            entries: &self.entries,
            user: self.user.as_deref(),
            label: self.label.as_deref(),
            last_seen: self.last_seen.into(),
        };
        rmp_serde::to_vec(&wire).expect("a record always encodes")
    }

    /// Decodes what [`Record::to_bytes`] made.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`](crate::StoreError::Corrupt) when the bytes are not a record
    /// of a known format; a store should treat it as no session.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::StoreError> {
        decode_record(bytes).map_err(crate::StoreError::Corrupt)
    }
}

impl Expiry {
    /// The expiry as compact MessagePack, for stores that keep [`Record::expiry`] apart from
    /// the record (and compare it byte for byte, as [`ExpiryChange::Keep`](crate::ExpiryChange::Keep)
    /// asks). Equal expiries always encode to equal bytes.
    ///
    /// ```
    /// use session_core::Expiry;
    /// let e = Expiry::OnInactivity(time::Duration::days(30));
    /// assert_eq!(Expiry::from_bytes(&e.to_bytes()).unwrap(), e);
    /// ```
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        rmp_serde::to_vec(&WireExpiry::from(*self)).expect("an expiry always encodes")
    }

    /// Decodes what [`Expiry::to_bytes`] made.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`](crate::StoreError::Corrupt) when the bytes are not an expiry.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::StoreError> {
        decode_bounded::<WireExpiry>(bytes).and_then(TryInto::try_into).map_err(crate::StoreError::Corrupt)
    }
}

fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
    let wire: Wire<Entries, String> = decode_bounded(bytes)?;
    if wire.format != RECORD_FORMAT {
        return Err(format!("unknown record format {}", wire.format).into());
    }
    let id: [u8; 32] = wire.id.as_slice().try_into().map_err(|_| "record id is not 32 bytes")?;
    Ok(Record {
        id: RecordId::from_bytes(id),
        entries: wire.entries,
        created_at: wire.created_at.try_into()?,
        expires_at: wire.expires_at.try_into()?,
        expiry: wire.expiry.map(TryInto::try_into).transpose()?,
        version: wire.version,
        user: wire.user,
        label: wire.label,
        last_seen: wire.last_seen.try_into()?,
    })
}

/// Decodes from a byte slice with the nesting depth bounded.
fn decode_bounded<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    Ok(T::deserialize(&mut de)?)
}

/// The instant with the longest encoding: past 2106 the seconds take eight bytes, full
/// nanoseconds four. A size check made before the expiry instant is known counts this.
pub(crate) const LONGEST_INSTANT: OffsetDateTime = time::PrimitiveDateTime::MAX.assume_utc();

/// The session's own expiry with the longest encoding; a size check made before
/// [`Session::set_expiry`](crate::Session::set_expiry) may still be called counts this.
pub(crate) const LONGEST_EXPIRY: Expiry = Expiry::OnInactivity(Duration::MAX);

pub(crate) fn encode_client(session: &ClientSession) -> Vec<u8> {
    let wire = Wire {
        format: RECORD_FORMAT,
        id: Vec::new(),
        created_at: session.created_at.into(),
        expires_at: session.expires_at.into(),
        expiry: session.expiry.map(Into::into),
        version: 0,
        entries: &session.entries,
        user: None::<&str>,
        label: None,
        last_seen: session.created_at.into(),
    };
    rmp_serde::to_vec(&wire).expect("a session always encodes")
}

pub(crate) fn decode_client(bytes: &[u8]) -> Result<ClientSession, CodecError> {
    let wire: Wire<Entries, String> = decode_bounded(bytes)?;
    if wire.format != RECORD_FORMAT {
        return Err("unknown session format".into());
    }
    Ok(ClientSession {
        entries: wire.entries,
        created_at: wire.created_at.try_into()?,
        expires_at: wire.expires_at.try_into()?,
        expiry: wire.expiry.map(TryInto::try_into).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Id;

    #[test]
    fn values_keep_their_types() {
        let v = vec![1u32, 2, 3];
        let bytes = encode_value(&v).unwrap();
        assert_eq!(decode_value::<Vec<u32>>(&bytes).unwrap(), v);
        assert!(decode_value::<String>(&bytes).is_err());
        assert!(decode_value::<Vec<u32>>(&bytes[..2]).is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        // 100_000 nested one-element arrays: 0x91 is a fixarray of length 1.
        let mut evil = vec![0x91u8; 100_000];
        evil.push(0x01);
        assert!(decode_value::<serde_json_like::Value>(&evil).is_err());
        assert!(Record::from_bytes(&evil).is_err());
    }

    /// A self-describing recursive type, like the ones users store.
    mod serde_json_like {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        pub(super) enum Value {
            Int(i64),
            List(Vec<Value>),
        }
    }

    #[test]
    fn records_round_trip_and_garbage_is_corrupt() {
        let now = OffsetDateTime::now_utc();
        let mut r = Record::new(Id::random().record_id(), now, now + Duration::minutes(5));
        r.expiry = Some(Expiry::OnInactivity(Duration::seconds(90)));
        r.version = 7;
        r.entries.insert("k", encode_value("v").unwrap());
        assert_eq!(Record::from_bytes(&r.to_bytes()).unwrap(), r);
        for garbage in [&b""[..], b"\xc1", b"\x93\x01\x02\x03", &r.to_bytes()[..10]] {
            assert!(matches!(Record::from_bytes(garbage), Err(crate::StoreError::Corrupt(_))));
        }
    }

    #[test]
    fn the_longest_instant_and_expiry_are_the_longest() {
        let len = |at: OffsetDateTime, e: Option<Expiry>| {
            let session =
                ClientSession { entries: Entries::new(), created_at: at, expires_at: at, expiry: e };
            encode_client(&session).len()
        };
        let longest = len(LONGEST_INSTANT, Some(LONGEST_EXPIRY));
        let (min, max) = (time::PrimitiveDateTime::MIN.assume_utc(), LONGEST_INSTANT);
        let now = OffsetDateTime::now_utc();
        for at in [min, max, now, OffsetDateTime::UNIX_EPOCH, now.replace_nanosecond(999_999_999).unwrap()] {
            for e in [
                None,
                Some(Expiry::BrowserSession),
                Some(Expiry::AtDateTime(min)),
                Some(Expiry::AtDateTime(max)),
                Some(Expiry::OnInactivity(Duration::MIN)),
                Some(Expiry::OnInactivity(Duration::MAX)),
                Some(Expiry::OnInactivity(Duration::new(i64::MIN, 0))),
            ] {
                assert!(len(at, e) <= longest, "{at} {e:?}");
            }
        }
    }

    #[test]
    fn decode_errors_never_quote_the_value() {
        let stored = encode_value("SENTINEL-9f3a").unwrap();
        let err = decode_value::<u64>(&stored).unwrap_err().to_string();
        assert!(!err.contains("SENTINEL"), "{err}");
        assert!(err.contains("u64"), "{err}");
        let stored = encode_value(&vec!["SENTINEL-b"; 3]).unwrap();
        let err = decode_value::<(String, u8, u8)>(&stored).unwrap_err().to_string();
        assert!(!err.contains("SENTINEL"), "{err}");
    }

    #[test]
    fn extreme_stored_instants_and_windows_are_errors_not_panics() {
        let instants = [
            (0, 0),
            (i64::MAX, 0),
            (i64::MIN, 0),
            (0, 1_000_000_000),
            (0, u32::MAX),
            (253_402_300_799, 999_999_999),
        ];
        let windows = [
            (i64::MAX, 999_999_999),
            (i64::MAX, i32::MAX),
            (i64::MIN, i32::MIN),
            (i64::MIN, -999_999_999),
            (0, 0),
        ];
        for (secs, nanos) in instants {
            for (ws, wn) in windows {
                let wire = Wire {
                    format: RECORD_FORMAT,
                    id: vec![0; 32],
                    created_at: Instant(secs, nanos),
                    expires_at: Instant(secs, nanos),
                    expiry: Some(WireExpiry::Idle(ws, wn)),
                    version: u64::MAX,
                    entries: Entries::new(),
                    user: None::<&str>,
                    label: None::<&str>,
                    last_seen: Instant(secs, nanos),
                };
                let bytes = rmp_serde::to_vec(&wire).unwrap();
                // Either way: a record or `Corrupt`, never a panic.
                if let Ok(r) = Record::from_bytes(&bytes) {
                    assert_eq!(r.created_at.unix_timestamp(), secs);
                }
                let _ = decode_client(&bytes);
            }
        }
    }
}
