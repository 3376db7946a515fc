//! Server-side id cookies: plain, signed (`id.tag`) and sealed (AES-256-GCM).
//!
//! Input: a cookie value to decode, and (its first 16 bytes, then the rest as the cookie
//! name) an id to encode. An accepted value encodes back to itself (sealing draws a fresh
//! nonce, so a sealed one only opens to the same id), and a signed or sealed value opens
//! only under its own cookie name and key, and under that key as a fallback.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use session_core::__fuzz::{id_from_bytes, IdCookie};
use session_fuzz::{KEYS, NAME, OTHER_KEYS, OTHER_NAME, ROTATED_KEYS};

/// (codec, the same under another key, the same under a rotated ring, sealed?)
type Kind = (IdCookie, IdCookie, IdCookie, bool);

static KINDS: LazyLock<[Kind; 2]> = LazyLock::new(|| {
    [
        (
            IdCookie::signed(KEYS.clone()),
            IdCookie::signed(OTHER_KEYS.clone()),
            IdCookie::signed(ROTATED_KEYS.clone()),
            false,
        ),
        (
            IdCookie::private(KEYS.clone()),
            IdCookie::private(OTHER_KEYS.clone()),
            IdCookie::private(ROTATED_KEYS.clone()),
            true,
        ),
    ]
});

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data) {
        let plain = IdCookie::plain();
        if let Some((id, fallback)) = plain.decode(NAME, value) {
            assert!(!fallback);
            assert_eq!(plain.encode(NAME, &id), value, "a plain id that does not encode back");
        }
        for (codec, other, rotated, sealed) in &*KINDS {
            let Some((id, fallback)) = codec.decode(NAME, value) else { continue };
            assert!(!fallback, "a one-key ring reports a fallback");
            assert_eq!(value.len(), codec.cookie_len());
            let again = codec.encode(NAME, &id);
            if *sealed {
                assert_eq!(codec.decode(NAME, &again), Some((id, false)));
            } else {
                assert_eq!(again, value, "a signed id that does not encode back");
            }
            assert_eq!(codec.decode(OTHER_NAME, value), None, "opened under another cookie name");
            assert_eq!(other.decode(NAME, value), None, "opened under another key");
            assert_eq!(rotated.decode(NAME, value), Some((id, true)), "the fallback key does not open it");
        }
    }
    if data.len() >= 16 {
        let id = id_from_bytes(data[..16].try_into().expect("16 bytes"));
        let name = String::from_utf8_lossy(&data[16..]);
        let other_name = format!("{name}\0");
        for (codec, other, rotated, _) in &*KINDS {
            let value = codec.encode(&name, &id);
            assert_eq!(value.len(), codec.cookie_len());
            assert_eq!(codec.decode(&name, &value), Some((id, false)));
            assert_eq!(codec.decode(&other_name, &value), None, "opened under another cookie name");
            assert_eq!(other.decode(&name, &value), None, "opened under another key");
            assert_eq!(rotated.decode(&name, &value), Some((id, true)));
            // Any one character changed is refused (trailing bits included: the base64
            // decoders are strict, so no two texts mean the same bytes).
            let at = usize::from(data[0]) % value.len();
            let mut forged = value.into_bytes();
            forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).expect("ASCII");
            assert_eq!(codec.decode(&name, &forged), None, "a changed value still opens");
        }
    }
});
