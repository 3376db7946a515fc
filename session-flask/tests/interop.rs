//! Known answers from the real Flask (cookies it wrote, read back by Flask itself), and
//! cookies Rust writes read by Flask's own `open_session`.

mod common;

use std::io::Read as _;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{dict, from_description, Helper};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::Serialize;
use session_core::client::{ClientSession, CookieFormat};
use session_core::{Entries, Expiry};
use session_flask::{FlaskCookie, FlaskSerializer, FlaskValue, LoadError, SecretKey};
use time::{Duration, OffsetDateTime};

const KEY: &str = "interop-test-key";
const OLD_KEY: &str = "old-interop-key";

fn serializer() -> FlaskSerializer {
    FlaskSerializer::new(SecretKey::new(KEY).unwrap()).with_fallbacks([SecretKey::new(OLD_KEY).unwrap()])
}

/// The JSON inside a cookie value, decompressed if need be.
fn payload_text(cookie: &str) -> String {
    let payload = cookie.rsplitn(3, '.').nth(2).unwrap();
    match payload.strip_prefix('.') {
        Some(z) => {
            let mut text = String::new();
            flate2::read::ZlibDecoder::new(&URL_SAFE_NO_PAD.decode(z).unwrap()[..])
                .read_to_string(&mut text)
                .unwrap();
            text
        }
        None => String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap(),
    }
}

#[test]
fn flask_vectors_decode_to_the_values_flask_reads() {
    let vectors = common::run_json(&["vectors"]);
    let vectors = vectors.as_array().unwrap();
    assert!(vectors.len() >= 9, "the helper made {} vectors", vectors.len());
    let s = serializer();
    let format = FlaskCookie::new(serializer());
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let cookie = v["cookie"].as_str().unwrap();
        let signed_at = OffsetDateTime::from_unix_timestamp(v["signed_at"].as_i64().unwrap()).unwrap();
        let now = signed_at + Duration::minutes(1);
        let flask_reads = from_description(&v["read"]["session"]);
        if name == "other-key" {
            assert_eq!(flask_reads, dict(vec![]), "Flask refuses it too");
            assert_eq!(s.loads(cookie, now), Err(LoadError::BadSignature));
            assert!(format.decode("session", cookie, now).is_none());
            continue;
        }
        let loaded = s.loads(cookie, now).unwrap_or_else(|e| panic!("vector {name}: {e}"));
        assert_eq!(loaded.value, flask_reads, "vector {name}");
        assert_eq!(loaded.signed_at, signed_at, "vector {name}");
        assert_eq!(loaded.by_fallback, name == "fallback", "vector {name}");
        // Written again by Rust: the same JSON, and for uncompressed cookies signed with
        // the same key the very same cookie.
        let again = s.dumps(&loaded.value, signed_at);
        assert_eq!(payload_text(&again), payload_text(cookie), "vector {name}");
        // (zlib and miniz_oxide compress differently, so a compressed cookie can differ in
        // its bytes or in whether compressing paid off; Flask only checks the signature.)
        if v["secret"] == KEY && !cookie.starts_with('.') && !again.starts_with('.') {
            assert_eq!(again, cookie, "vector {name}");
        }
        // Through the layer's format: entries, and `_permanent` as the expiry.
        let (session, reissue) = format.decode("session", cookie, now).unwrap();
        assert_eq!(reissue, name == "fallback");
        let permanent = v["read"]["permanent"].as_bool().unwrap();
        assert_eq!(session.expiry.is_some(), permanent, "vector {name}");
        assert!(!session.entries.contains_key("_permanent"));
        assert!(
            s.loads(cookie, signed_at + Duration::days(31) + Duration::seconds(2)) == Err(LoadError::Expired)
        );
        assert!(s.loads(cookie, signed_at - Duration::seconds(1)) == Err(LoadError::FromTheFuture));
        let typed = |key: &str| session.entries.get(key).map(|b| b.to_vec());
        match name {
            "login" | "fallback" => {
                assert_eq!(rmp_serde::from_slice::<i64>(&typed("user_id").unwrap()).unwrap(), 42);
                assert_eq!(rmp_serde::from_slice::<String>(&typed("username").unwrap()).unwrap(), "alice");
            }
            "permanent" => assert_eq!(session.expiry, Some(Expiry::OnInactivity(Duration::days(31)))),
            "flashes" => {
                let flashes = rmp_serde::from_slice::<Vec<FlaskValue>>(&typed("_flashes").unwrap()).unwrap();
                assert_eq!(flashes[1], FlaskValue::Tuple(vec!["error".into(), "Wrong password".into()]));
            }
            "types" => {
                let ints = rmp_serde::from_slice::<FlaskValue>(&typed("ints").unwrap()).unwrap();
                assert_eq!(ints.as_slice().unwrap()[3], FlaskValue::BigInt("9223372036854775808".into()));
                let floats = rmp_serde::from_slice::<Vec<f64>>(&typed("floats").unwrap()).unwrap();
                assert_eq!(floats[..3], [1.5, 1e16, 0.1]);
                let bytes = rmp_serde::from_slice::<serde_bytes::ByteBuf>(&typed("bytes").unwrap()).unwrap();
                assert_eq!(&bytes[..], b"\x00\xffbin");
            }
            _ => {}
        }
    }
}

fn entry<T: Serialize>(v: T) -> bytes::Bytes {
    let mut buf = Vec::new();
    rmp_serde::encode::write_named(&mut buf, &v).unwrap();
    buf.into()
}

#[derive(Serialize)]
struct Prefs {
    theme: String,
    langs: Vec<String>,
    page_size: u32,
    beta: Option<bool>,
}

#[test]
fn what_rust_writes_flask_reads_back() {
    let mut flask = Helper::spawn(&["decode", KEY]);
    let s = serializer();
    let now = OffsetDateTime::now_utc();

    // Ordinary Rust types through the layer's format, permanent or not.
    let format = FlaskCookie::new(serializer());
    let mut entries = Entries::new();
    entries.insert("user_id", entry(42u64));
    entries.insert("name", entry("Zoë \u{1F600}"));
    entries.insert(
        "prefs",
        entry(Prefs {
            theme: "dark".into(),
            langs: vec!["en".into(), "fr".into()],
            page_size: 50,
            beta: None,
        }),
    );
    entries.insert("ratio", entry(0.25f64));
    entries.insert("raw", entry(serde_bytes::Bytes::new(b"\x00\x01")));
    entries.insert("_flashes", entry(vec![FlaskValue::Tuple(vec!["info".into(), "Saved".into()])]));
    for expiry in [None, Some(format.permanent())] {
        let session = ClientSession { entries: entries.clone(), created_at: now, expires_at: now, expiry };
        let cookie = format.encode("session", &session, now).unwrap();
        let read = flask.ask(&cookie);
        assert_eq!(read["permanent"].as_bool(), Some(expiry.is_some()));
        let mut want = vec![
            ("user_id", FlaskValue::Int(42)),
            ("name", "Zoë \u{1F600}".into()),
            (
                "prefs",
                dict(vec![
                    ("theme", "dark".into()),
                    ("langs", FlaskValue::from(vec!["en", "fr"])),
                    ("page_size", 50.into()),
                    ("beta", FlaskValue::Null),
                ]),
            ),
            ("ratio", 0.25.into()),
            ("raw", FlaskValue::Bytes(vec![0, 1])),
            ("_flashes", FlaskValue::List(vec![FlaskValue::Tuple(vec!["info".into(), "Saved".into()])])),
        ];
        if expiry.is_some() {
            want.push(("_permanent", true.into()));
        }
        assert_eq!(from_description(&read["session"]), dict(want));
    }

    // Random sessions of every Flask type, Flask's own reading compared value for value.
    let mut runner =
        TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[16; 32]));
    let strategy = common::strategy::session();
    for i in 0..150 {
        let session = strategy.new_tree(&mut runner).unwrap().current();
        let cookie = s.dumps(&session, now);
        if cookie.len() > 4000 {
            continue;
        }
        let read = flask.ask(&cookie);
        if read.get("error").is_some() {
            panic!("case {i}: {session}: {read}");
        }
        assert_eq!(from_description(&read["session"]), session, "case {i}");
    }

    // Signed with the wrong key: Flask reads nothing either.
    let foreign = FlaskSerializer::new(SecretKey::new("someone-else").unwrap())
        .dumps(&dict(vec![("a", 1.into())]), now);
    assert_eq!(from_description(&flask.ask(&foreign)["session"]), dict(vec![]));
}
