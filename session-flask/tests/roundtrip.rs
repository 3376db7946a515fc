//! Round trips within Rust, on random values: cookie and MessagePack forms lose nothing,
//! and no input makes the decoder panic.

mod common;

use proptest::prelude::*;
use session_flask::{FlaskSerializer, FlaskValue, SecretKey};
use time::OffsetDateTime;

fn serializer() -> FlaskSerializer {
    FlaskSerializer::new(SecretKey::new("roundtrip").unwrap())
}

const NOW: i64 = 1_700_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cookies_round_trip(session in common::strategy::session()) {
        let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
        let s = serializer();
        let cookie = s.dumps(&session, now);
        prop_assert!(cookie.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        let loaded = s.loads(&cookie, now).unwrap();
        prop_assert_eq!(loaded.value, session);
    }

    #[test]
    fn messagepack_round_trips(value in common::strategy::value()) {
        let mut buf = Vec::new();
        rmp_serde::encode::write_named(&mut buf, &value).unwrap();
        prop_assert_eq!(rmp_serde::from_slice::<FlaskValue>(&buf).unwrap(), value);
    }

    #[test]
    fn arbitrary_cookies_never_panic(cookie in "[A-Za-z0-9_.-]{0,200}") {
        let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
        prop_assert!(serializer().loads(&cookie, now).is_err());
    }
}
