//! Random Flask session values, for round trips.

use std::collections::BTreeMap;

use proptest::prelude::*;
use session_flask::FlaskValue;
use time::OffsetDateTime;

fn leaf() -> impl Strategy<Value = FlaskValue> {
    prop_oneof![
        Just(FlaskValue::Null),
        any::<bool>().prop_map(FlaskValue::Bool),
        any::<i64>().prop_map(FlaskValue::Int),
        ("-?[1-9][0-9]{19,40}").prop_map(FlaskValue::BigInt),
        (prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO)
            .prop_map(FlaskValue::Float),
        any::<String>().prop_map(FlaskValue::Str),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(FlaskValue::Bytes),
        any::<String>().prop_map(FlaskValue::Markup),
        any::<[u8; 16]>().prop_map(FlaskValue::Uuid),
        // Python's datetime: years 1 to 9999; Flask keeps whole seconds.
        (-62135596800i64..253402300799)
            .prop_map(|s| FlaskValue::DateTime(OffsetDateTime::from_unix_timestamp(s).unwrap())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    // Sometimes a tag, so the " di" escape is exercised.
    prop_oneof![
        any::<String>(),
        prop::sample::select(vec![" t", " di", " b", " m", " u", " d", "_permanent"]).prop_map(String::from)
    ]
}

pub fn value() -> impl Strategy<Value = FlaskValue> {
    leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(FlaskValue::List),
            prop::collection::vec(inner.clone(), 0..6).prop_map(FlaskValue::Tuple),
            prop::collection::btree_map(key(), inner, 0..6).prop_map(FlaskValue::Dict),
        ]
    })
}

/// A whole session: a dict at the top.
pub fn session() -> impl Strategy<Value = FlaskValue> {
    prop::collection::btree_map(key(), value(), 0..6)
        .prop_map(|m: BTreeMap<String, FlaskValue>| FlaskValue::Dict(m))
}
