//! `Serialize`/`Deserialize` for [`FlaskValue`]: the MessagePack form a session entry has.
//!
//! Plain values are ordinary MessagePack. The tagged types use MessagePack extension types
//! (the extension struct of `rmp_serde`), so they stay apart from plain values:
//!
//! | value | MessagePack |
//! |---|---|
//! | `Bytes` | bin |
//! | `Tuple` | ext 1: the items, MessagePack array |
//! | `Markup` | ext 2: the UTF-8 text |
//! | `Uuid` | ext 3: the 16 bytes |
//! | `BigInt` | ext 4: the decimal digits, ASCII |
//! | `DateTime` | ext −1: the standard timestamp (what msgspec writes for aware datetimes) |
//!
//! With a human-readable format (JSON for a template, say) the same impl writes a tuple as
//! an array, bytes as bytes, Markup as its text, a UUID hyphenated, a datetime as RFC 3339
//! and a big integer as its digits.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::{ByteBuf, Bytes};
use time::OffsetDateTime;

use crate::value::FlaskValue;

const EXT_TUPLE: i8 = 1;
const EXT_MARKUP: i8 = 2;
const EXT_UUID: i8 = 3;
const EXT_BIGINT: i8 = 4;
const EXT_TIMESTAMP: i8 = -1;

struct Ext<'a>(i8, &'a [u8]);

impl Serialize for Ext<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(rmp_serde::MSGPACK_EXT_STRUCT_NAME, &(self.0, Bytes::new(self.1)))
    }
}

/// The MessagePack timestamp extension: 32-bit seconds when they fit, else 96-bit.
fn timestamp(t: OffsetDateTime) -> Vec<u8> {
    let (secs, nanos) = (t.unix_timestamp(), t.nanosecond());
    match u32::try_from(secs) {
        Ok(s) if nanos == 0 => s.to_be_bytes().to_vec(),
        _ => {
            let mut v = nanos.to_be_bytes().to_vec();
            v.extend_from_slice(&secs.to_be_bytes());
            v
        }
    }
}

fn from_timestamp(data: &[u8]) -> Option<OffsetDateTime> {
    let (secs, nanos) = match data.len() {
        4 => (i64::from(u32::from_be_bytes(data.try_into().ok()?)), 0),
        8 => {
            let v = u64::from_be_bytes(data.try_into().ok()?);
            ((v & 0x3_ffff_ffff) as i64, (v >> 34) as u32)
        }
        12 => {
            (i64::from_be_bytes(data[4..].try_into().ok()?), u32::from_be_bytes(data[..4].try_into().ok()?))
        }
        _ => return None,
    };
    OffsetDateTime::from_unix_timestamp(secs).ok()?.replace_nanosecond(nanos).ok()
}

impl Serialize for FlaskValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let readable = s.is_human_readable();
        match self {
            Self::Null => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Int(i) => s.serialize_i64(*i),
            Self::Float(x) => s.serialize_f64(*x),
            Self::Str(t) => s.serialize_str(t),
            Self::Bytes(b) => s.serialize_bytes(b),
            Self::List(items) => items.serialize(s),
            Self::Dict(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            Self::Tuple(items) if readable => items.serialize(s),
            Self::Markup(t) if readable => s.serialize_str(t),
            Self::BigInt(t) if readable => s.serialize_str(t),
            Self::Uuid(b) if readable => s.serialize_str(&Self::uuid_string(b)),
            Self::DateTime(t) if readable => s.serialize_str(
                &t.format(&time::format_description::well_known::Rfc3339).map_err(ser::Error::custom)?,
            ),
            Self::Tuple(items) => {
                let mut buf = Vec::new();
                rmp_serde::encode::write_named(&mut buf, items).map_err(ser::Error::custom)?;
                Ext(EXT_TUPLE, &buf).serialize(s)
            }
            Self::Markup(t) => Ext(EXT_MARKUP, t.as_bytes()).serialize(s),
            Self::BigInt(t) => Ext(EXT_BIGINT, t.as_bytes()).serialize(s),
            Self::Uuid(b) => Ext(EXT_UUID, b).serialize(s),
            Self::DateTime(t) => Ext(EXT_TIMESTAMP, &timestamp(*t)).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for FlaskValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = FlaskValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value a Flask session can hold")
    }

    fn visit_unit<E>(self) -> Result<FlaskValue, E> {
        Ok(FlaskValue::Null)
    }
    fn visit_none<E>(self) -> Result<FlaskValue, E> {
        Ok(FlaskValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<FlaskValue, D::Error> {
        FlaskValue::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<FlaskValue, E> {
        Ok(FlaskValue::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<FlaskValue, E> {
        Ok(FlaskValue::Int(i))
    }
    fn visit_u64<E>(self, i: u64) -> Result<FlaskValue, E> {
        Ok(FlaskValue::from(i))
    }
    fn visit_i128<E>(self, i: i128) -> Result<FlaskValue, E> {
        Ok(i64::try_from(i).map_or_else(|_| FlaskValue::BigInt(i.to_string()), FlaskValue::Int))
    }
    fn visit_u128<E>(self, i: u128) -> Result<FlaskValue, E> {
        Ok(i64::try_from(i).map_or_else(|_| FlaskValue::BigInt(i.to_string()), FlaskValue::Int))
    }
    fn visit_f64<E>(self, x: f64) -> Result<FlaskValue, E> {
        Ok(FlaskValue::Float(x))
    }
    fn visit_str<E>(self, s: &str) -> Result<FlaskValue, E> {
        Ok(FlaskValue::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<FlaskValue, E> {
        Ok(FlaskValue::Str(s))
    }
    fn visit_bytes<E>(self, b: &[u8]) -> Result<FlaskValue, E> {
        Ok(FlaskValue::Bytes(b.to_vec()))
    }
    fn visit_byte_buf<E>(self, b: Vec<u8>) -> Result<FlaskValue, E> {
        Ok(FlaskValue::Bytes(b))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FlaskValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(FlaskValue::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlaskValue, A::Error> {
        let mut out = BTreeMap::new();
        // A non-string key fails here: Flask's JSON has no form for it.
        while let Some((k, v)) = map.next_entry::<String, FlaskValue>()? {
            out.insert(k, v);
        }
        Ok(FlaskValue::Dict(out))
    }
    /// `rmp_serde` hands an extension type over as a newtype holding `(tag, data)`.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<FlaskValue, D::Error> {
        let (tag, data): (i8, ByteBuf) = Deserialize::deserialize(d)?;
        let text =
            || String::from_utf8(data.to_vec()).map_err(|_| de::Error::custom("extension text is not UTF-8"));
        Ok(match tag {
            EXT_TUPLE => match rmp_serde::from_slice::<FlaskValue>(&data).map_err(de::Error::custom)? {
                FlaskValue::List(items) => FlaskValue::Tuple(items),
                _ => return Err(de::Error::custom("a tuple extension must hold an array")),
            },
            EXT_MARKUP => FlaskValue::Markup(text()?),
            EXT_BIGINT => {
                let t = text()?;
                let digits = t.strip_prefix('-').unwrap_or(&t);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(de::Error::custom("a big integer extension must hold decimal digits"));
                }
                FlaskValue::BigInt(t)
            }
            EXT_UUID => FlaskValue::Uuid(
                data.as_slice()
                    .try_into()
                    .map_err(|_| de::Error::custom("a UUID extension must hold 16 bytes"))?,
            ),
            EXT_TIMESTAMP => FlaskValue::DateTime(
                from_timestamp(&data).ok_or_else(|| de::Error::custom("invalid timestamp"))?,
            ),
            _ => return Err(de::Error::custom(format_args!("unknown MessagePack extension type {tag}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        let mut buf = Vec::new();
        rmp_serde::encode::write_named(&mut buf, v).unwrap();
        buf
    }

    #[test]
    fn plain_values_are_ordinary_messagepack() {
        assert_eq!(enc(&FlaskValue::Int(42)), enc(&42i64));
        assert_eq!(enc(&FlaskValue::Str("x".into())), enc("x"));
        assert_eq!(enc(&FlaskValue::from(vec![1, 2])), enc(&vec![1, 2]));
        assert_eq!(enc(&FlaskValue::Bytes(vec![1, 2])), enc(Bytes::new(&[1, 2])));
        let v: Vec<i64> = rmp_serde::from_slice(&enc(&FlaskValue::from(vec![1, 2]))).unwrap();
        assert_eq!(v, [1, 2]);
        let m: BTreeMap<String, bool> = BTreeMap::from([("a".into(), true)]);
        assert_eq!(
            rmp_serde::from_slice::<FlaskValue>(&enc(&m)).unwrap(),
            FlaskValue::Dict(BTreeMap::from([("a".into(), true.into())]))
        );
    }

    #[test]
    fn tagged_values_round_trip() {
        let values = [
            FlaskValue::Tuple(vec!["error".into(), FlaskValue::Tuple(vec![])]),
            FlaskValue::Markup("<b>".into()),
            FlaskValue::Uuid([9; 16]),
            FlaskValue::BigInt("-99999999999999999999999".into()),
            FlaskValue::DateTime(time::macros::datetime!(2024-05-17 12:30:45 UTC)),
            FlaskValue::DateTime(time::macros::datetime!(1960-01-01 00:00:00.5 UTC)),
            FlaskValue::from(u64::MAX),
        ];
        for v in values {
            assert_eq!(rmp_serde::from_slice::<FlaskValue>(&enc(&v)).unwrap(), v);
        }
        // A tuple is not a list, even though both hold items.
        assert_ne!(enc(&FlaskValue::Tuple(vec![1.into()])), enc(&FlaskValue::from(vec![1])));
        assert!(
            rmp_serde::from_slice::<FlaskValue>(&enc(&std::collections::HashMap::from([(1, 2)]))).is_err()
        );
    }
}
