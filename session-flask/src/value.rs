//! [`FlaskValue`]: any value a Flask session can hold, with Flask's own types kept apart.

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;

/// A value of a Flask session, as Flask's tagged JSON describes it.
///
/// Plain JSON values map to the obvious variants. The types Flask tags keep their own
/// variants, so a value read from Flask and written back reaches Flask with the same Python
/// type: [`Tuple`](Self::Tuple) (Flask stores flash messages as tuples),
/// [`Bytes`](Self::Bytes), [`Markup`](Self::Markup), [`Uuid`](Self::Uuid) and
/// [`DateTime`](Self::DateTime).
///
/// Python integers have no size limit: one that fits an `i64` is an [`Int`](Self::Int), a
/// larger one a [`BigInt`](Self::BigInt) holding its decimal digits, so no value is
/// rounded or lost on its way through Rust.
///
/// In a [`Session`](session_core::Session) each top-level key is stored as MessagePack:
/// plain values as ordinary MessagePack (so `session.get::<i64>("user_id")` or
/// `session.get::<Vec<String>>("tags")` read what Flask stored), the tagged types in the
/// forms listed in the [crate docs](crate#how-values-are-stored). `session.get::<FlaskValue>(key)`
/// reads any of them.
///
/// ```
/// use session_flask::FlaskValue;
///
/// let flash = FlaskValue::Tuple(vec!["error".into(), "Wrong password".into()]);
/// assert_eq!(flash.to_string(), r#"("error", "Wrong password")"#);
/// assert_eq!(FlaskValue::from(42).as_i64(), Some(42));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum FlaskValue {
    /// `None`.
    Null,
    /// `bool`.
    Bool(bool),
    /// An `int` that fits an `i64`.
    Int(i64),
    /// An `int` outside the `i64` range: its decimal digits, with a leading `-` if negative
    /// (no leading zeros, no `+`).
    BigInt(String),
    /// `float` (Python's JSON also writes `NaN` and `Infinity`; they are kept).
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes` (tag `" b"`).
    Bytes(Vec<u8>),
    /// `list`.
    List(Vec<FlaskValue>),
    /// `tuple` (tag `" t"`).
    Tuple(Vec<FlaskValue>),
    /// `dict`: string keys (JSON has no other), in key order.
    Dict(BTreeMap<String, FlaskValue>),
    /// `markupsafe.Markup`, HTML marked safe (tag `" m"`).
    Markup(String),
    /// `uuid.UUID`, its 16 bytes (tag `" u"`); `uuid::Uuid::from_bytes` takes them as they are.
    Uuid([u8; 16]),
    /// `datetime.datetime`, in UTC with whole seconds (tag `" d"`): Flask writes it as an
    /// HTTP date, which has no sub-second part; writing one with a fraction drops it.
    DateTime(OffsetDateTime),
}

impl FlaskValue {
    /// The integer, if this is an [`Int`](Self::Int).
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if this is a [`Str`](Self::Str) or [`Markup`](Self::Markup).
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) | Self::Markup(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if this is a [`List`](Self::List) or a [`Tuple`](Self::Tuple).
    #[must_use]
    pub fn as_slice(&self) -> Option<&[FlaskValue]> {
        match self {
            Self::List(v) | Self::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The value under `key`, if this is a [`Dict`](Self::Dict) that has it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&FlaskValue> {
        match self {
            Self::Dict(map) => map.get(key),
            _ => None,
        }
    }

    /// The UUID in its usual hyphenated lower-case form.
    #[must_use]
    pub fn uuid_string(bytes: &[u8; 16]) -> String {
        let hex = hex32(bytes);
        format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
    }
}

pub(crate) fn hex32(bytes: &[u8; 16]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Python-like notation, for messages and debugging: `None`, `True`, `(1, 2)`, `b'..'`
/// (as hex), `{'k': v}`.
impl fmt::Display for FlaskValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn items(f: &mut fmt::Formatter<'_>, items: &[FlaskValue]) -> fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        }
        match self {
            Self::Null => f.write_str("None"),
            Self::Bool(true) => f.write_str("True"),
            Self::Bool(false) => f.write_str("False"),
            Self::Int(i) => write!(f, "{i}"),
            Self::BigInt(s) => f.write_str(s),
            Self::Float(x) => write!(f, "{x:?}"),
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Bytes(b) => {
                f.write_str("bytes.fromhex('")?;
                b.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
                f.write_str("')")
            }
            Self::List(v) => {
                f.write_str("[")?;
                items(f, v)?;
                f.write_str("]")
            }
            Self::Tuple(v) => {
                f.write_str("(")?;
                items(f, v)?;
                f.write_str(if v.len() == 1 { ",)" } else { ")" })
            }
            Self::Dict(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?}: {v}")?;
                }
                f.write_str("}")
            }
            Self::Markup(s) => write!(f, "Markup({s:?})"),
            Self::Uuid(b) => write!(f, "UUID('{}')", Self::uuid_string(b)),
            Self::DateTime(t) => write!(f, "datetime({t})"),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for FlaskValue {
            fn from(i: $t) -> Self {
                Self::Int(i64::from(i))
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for FlaskValue {
    fn from(i: u64) -> Self {
        i64::try_from(i).map_or_else(|_| Self::BigInt(i.to_string()), Self::Int)
    }
}

impl From<bool> for FlaskValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<f64> for FlaskValue {
    fn from(x: f64) -> Self {
        Self::Float(x)
    }
}

impl From<&str> for FlaskValue {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for FlaskValue {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<OffsetDateTime> for FlaskValue {
    fn from(t: OffsetDateTime) -> Self {
        Self::DateTime(t)
    }
}

impl<T: Into<FlaskValue>> From<Vec<T>> for FlaskValue {
    fn from(v: Vec<T>) -> Self {
        Self::List(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<FlaskValue>> From<Option<T>> for FlaskValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_python_like() {
        let v = FlaskValue::Dict(BTreeMap::from([
            ("a".to_owned(), FlaskValue::Tuple(vec![1.into()])),
            ("b".to_owned(), FlaskValue::List(vec![FlaskValue::Null, true.into(), 1.5.into()])),
            ("u".to_owned(), FlaskValue::Uuid([0xab; 16])),
        ]));
        assert_eq!(
            v.to_string(),
            r#"{"a": (1,), "b": [None, True, 1.5], "u": UUID('abababab-abab-abab-abab-abababababab')}"#
        );
        assert_eq!(FlaskValue::from(u64::MAX), FlaskValue::BigInt("18446744073709551615".into()));
        assert_eq!(FlaskValue::from(7u64), FlaskValue::Int(7));
    }
}
