//! Client-side session cookies: opening (signed or sealed) and decoding the payload.
//!
//! Input: a cookie value to open, a payload to decode (the fuzzer cannot forge a tag, so
//! the decoder gets the raw input too), and a payload to sign and seal. An accepted value
//! encodes back to itself (sealed: opens to the same payload), opens only under its own
//! cookie name and key, and a decoded payload has a canonical form that round-trips.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use session_core::__fuzz::{decode_client, encode_client, ClientCookie};
use session_fuzz::{KEYS, NAME, OTHER_KEYS, OTHER_NAME, ROTATED_KEYS};

/// (codec, the same under another key, the same under a rotated ring, sealed?)
type Kind = (ClientCookie, ClientCookie, ClientCookie, bool);

static KINDS: LazyLock<[Kind; 2]> = LazyLock::new(|| {
    [
        (
            ClientCookie::signed(KEYS.clone()),
            ClientCookie::signed(OTHER_KEYS.clone()),
            ClientCookie::signed(ROTATED_KEYS.clone()),
            false,
        ),
        (
            ClientCookie::private(KEYS.clone()),
            ClientCookie::private(OTHER_KEYS.clone()),
            ClientCookie::private(ROTATED_KEYS.clone()),
            true,
        ),
    ]
});

fn check_payload(bytes: &[u8]) {
    let Ok(payload) = decode_client(bytes) else { return };
    let canonical = encode_client(&payload);
    let again = decode_client(&canonical).expect("a payload's own bytes decode");
    assert_eq!(again, payload, "the canonical bytes decode to another payload");
    assert_eq!(encode_client(&again), canonical, "the canonical bytes are not stable");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data) {
        for (codec, other, rotated, sealed) in &*KINDS {
            let Some((payload, fallback)) = codec.decode(NAME, value) else { continue };
            assert!(!fallback, "a one-key ring reports a fallback");
            let again = codec.encode(NAME, &payload);
            assert_eq!(again.len(), value.len());
            if *sealed {
                assert_eq!(codec.decode(NAME, &again), Some((payload.clone(), false)));
            } else {
                assert_eq!(again, value, "a signed payload that does not encode back");
            }
            assert_eq!(codec.decode(OTHER_NAME, value), None, "opened under another cookie name");
            assert_eq!(other.decode(NAME, value), None, "opened under another key");
            assert_eq!(rotated.decode(NAME, value), Some((payload.clone(), true)));
            check_payload(&payload);
        }
    }
    check_payload(data);
    for (codec, other, _, _) in &*KINDS {
        let value = codec.encode(NAME, data);
        assert_eq!(value.len(), codec.encoded_len(data.len()));
        assert_eq!(codec.decode(NAME, &value), Some((data.to_vec(), false)));
        assert_eq!(codec.decode(OTHER_NAME, &value), None, "opened under another cookie name");
        assert_eq!(other.decode(NAME, &value), None, "opened under another key");
    }
});
