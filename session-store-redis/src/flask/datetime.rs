//! [`FlaskDateTime`]: an aware Python `datetime` in a Flask-Session record.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// The MessagePack extension type of a timestamp.
const TIMESTAMP: i8 = -1;

/// How rmp-serde names a MessagePack extension value in serde's data model.
#[derive(Serialize, Deserialize)]
#[serde(rename = "_ExtStruct")]
struct Ext((i8, serde_bytes::ByteBuf));

/// A timezone-aware Python `datetime` as msgspec stores it in a Flask-Session record: the
/// MessagePack timestamp extension (type −1, 32, 64 or 96 bits), UTC, to the nanosecond
/// (Python keeps microseconds).
///
/// Read one with `session.get::<FlaskDateTime>("when")`; store one with `session.insert` and
/// Flask reads a `datetime` in UTC. A *naive* `datetime` is stored by msgspec as an ISO 8601
/// string without offset: read it as a `String`.
///
/// ```
/// use session_store_redis::flask::FlaskDateTime;
/// use time::macros::datetime;
///
/// // msgspec's bytes for datetime(2024, 5, 17, 12, 30, 45, tzinfo=timezone.utc).
/// let when: FlaskDateTime = rmp_serde::from_slice(b"\xd6\xff\x66\x47\x4d\xf5").unwrap();
/// assert_eq!(when.0, datetime!(2024-05-17 12:30:45 UTC));
/// assert_eq!(rmp_serde::to_vec(&when).unwrap(), b"\xd6\xff\x66\x47\x4d\xf5");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlaskDateTime(pub OffsetDateTime);

impl Serialize for FlaskDateTime {
    /// The smallest timestamp form that holds the instant, as msgspec writes it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let at = self.0.to_offset(time::UtcOffset::UTC);
        let (secs, nanos) = (at.unix_timestamp(), at.nanosecond());
        let bytes = match u32::try_from(secs) {
            Ok(secs) if nanos == 0 => secs.to_be_bytes().to_vec(),
            _ if (0..1 << 34).contains(&secs) => {
                // `secs` is below 2^34 here, so the cast is exact.
                ((u64::from(nanos) << 34) | secs as u64).to_be_bytes().to_vec()
            }
            _ => [nanos.to_be_bytes().as_slice(), secs.to_be_bytes().as_slice()].concat(),
        };
        Ext((TIMESTAMP, serde_bytes::ByteBuf::from(bytes))).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FlaskDateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Ext((kind, bytes)) = Ext::deserialize(deserializer)?;
        if kind != TIMESTAMP {
            return Err(D::Error::custom("a MessagePack extension that is not a timestamp"));
        }
        let (secs, nanos) = match bytes.as_slice() {
            [a, b, c, d] => (i64::from(u32::from_be_bytes([*a, *b, *c, *d])), 0),
            eight @ [_, _, _, _, _, _, _, _] => {
                let v = u64::from_be_bytes(eight.try_into().map_err(D::Error::custom)?);
                ((v & ((1 << 34) - 1)) as i64, (v >> 34) as u32)
            }
            [n @ .., _, _, _, _, _, _, _, _] if n.len() == 4 => {
                let nanos = u32::from_be_bytes(n.try_into().map_err(D::Error::custom)?);
                let secs = i64::from_be_bytes(bytes[4..].try_into().map_err(D::Error::custom)?);
                (secs, nanos)
            }
            _ => return Err(D::Error::custom("a timestamp of an unknown length")),
        };
        if nanos >= 1_000_000_000 {
            return Err(D::Error::custom("a timestamp with more than a second of nanoseconds"));
        }
        let at = OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|_| D::Error::custom("a timestamp out of range"))?
            .replace_nanosecond(nanos)
            .map_err(|_| D::Error::custom("a timestamp out of range"))?;
        Ok(Self(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn round_trip(at: OffsetDateTime, want: &[u8]) {
        let bytes = rmp_serde::to_vec(&FlaskDateTime(at)).unwrap();
        assert_eq!(bytes, want, "{at}");
        assert_eq!(rmp_serde::from_slice::<FlaskDateTime>(&bytes).unwrap().0, at);
    }

    #[test]
    fn all_three_timestamp_forms_match_msgspec() {
        // msgspec.msgpack.encode(datetime(...)) for each.
        round_trip(datetime!(2024-05-17 12:30:45 UTC), b"\xd6\xff\x66\x47\x4d\xf5");
        round_trip(datetime!(2024-05-17 12:30:45.123456 UTC), b"\xd7\xff\x1d\x6f\x28\x00\x66\x47\x4d\xf5");
        round_trip(
            datetime!(1900-01-01 00:00:00 UTC),
            b"\xc7\x0c\xff\x00\x00\x00\x00\xff\xff\xff\xff\x7c\x55\x81\x80",
        );
    }

    #[test]
    fn other_values_are_errors_not_panics() {
        for bad in [
            &b"\xd6\x05\x00\x00\x00\x00"[..],
            b"\xc7\x03\xff\x00\x00\x00",
            b"\xa1x",
            b"\xd7\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert!(rmp_serde::from_slice::<FlaskDateTime>(bad).is_err(), "{bad:?}");
        }
    }
}
