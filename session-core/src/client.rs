//! Client-side sessions: the whole session inside the cookie (Flask's default).
//!
//! No store is involved: the session's entries, creation time, expiry instant and own
//! expiry are encoded with MessagePack and either sealed with AES-256-GCM (private: the
//! client cannot read or change it) or signed with HMAC-SHA256 (signed: readable, but
//! tamper-proof). The cookie name is bound into both. The expiry instant is inside the
//! protected payload, so a cookie replayed after it expires is refused even though the
//! browser could keep sending it.
//!
//! Limits to know:
//! - A cookie carries at most 4096 bytes: an insert that would make it larger fails with
//!   [`Error::CookieTooLarge`](crate::Error::CookieTooLarge) and changes nothing.
//! - The browser holds the one copy, so concurrent requests are last-writer-wins: two
//!   parallel requests that change different keys can lose one change.
//! - Logging out cannot revoke a copy someone else kept; it expires only at its expiry
//!   instant. Use a server-side store where revocation matters.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::crypto::{KeyRing, SEAL_OVERHEAD, SIG_LEN};

/// How a client-side session is protected.
#[derive(Debug, Clone)]
pub(crate) enum ClientCodec {
    Signed(KeyRing),
    Private(KeyRing),
}

fn b64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

impl ClientCodec {
    /// Exact length of the cookie value for a payload of `payload_len` bytes.
    pub(crate) fn encoded_len(&self, payload_len: usize) -> usize {
        match self {
            Self::Signed(_) => b64_len(payload_len) + 1 + b64_len(SIG_LEN),
            Self::Private(_) => b64_len(payload_len + SEAL_OVERHEAD),
        }
    }

    pub(crate) fn encode(&self, name: &str, payload: &[u8]) -> String {
        match self {
            Self::Signed(ring) => {
                let mut text = URL_SAFE_NO_PAD.encode(payload);
                let tag = ring.sign(name, text.as_bytes());
                text.push('.');
                URL_SAFE_NO_PAD.encode_string(tag, &mut text);
                text
            }
            Self::Private(ring) => URL_SAFE_NO_PAD.encode(ring.seal(name, payload)),
        }
    }

    /// The payload of a cookie value and whether a fallback key made it.
    pub(crate) fn decode(&self, name: &str, value: &str) -> Option<(Vec<u8>, bool)> {
        match self {
            Self::Signed(ring) => {
                let (text, tag) = value.rsplit_once('.')?;
                let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
                // Verify before decoding the payload: unauthenticated bytes reach no decoder.
                let key = ring.verify(name, text.as_bytes(), &tag)?;
                URL_SAFE_NO_PAD.decode(text).ok().map(|p| (p, key != 0))
            }
            Self::Private(ring) => {
                let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
                ring.open(name, &raw).map(|(p, key)| (p, key != 0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    #[test]
    fn encoded_len_is_exact() {
        let ring = KeyRing::new(Key::generate());
        for codec in [ClientCodec::Signed(ring.clone()), ClientCodec::Private(ring)] {
            for n in [0, 1, 2, 3, 100, 1000] {
                let payload = vec![7u8; n];
                let value = codec.encode("s", &payload);
                assert_eq!(value.len(), codec.encoded_len(n));
                assert_eq!(codec.decode("s", &value), Some((payload, false)));
                assert_eq!(codec.decode("t", &value), None);
            }
        }
    }

    #[test]
    fn signed_payloads_are_tamper_proof() {
        let ring = KeyRing::new(Key::generate());
        let codec = ClientCodec::Signed(ring);
        let value = codec.encode("s", b"user=1");
        let (text, tag) = value.rsplit_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(b"user=2"));
        assert_ne!(forged, value);
        assert_eq!(codec.decode("s", &forged), None);
        assert_eq!(codec.decode("s", text), None);
        assert_eq!(codec.decode("s", "garbage.!!"), None);
    }
}
