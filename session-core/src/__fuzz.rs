//! Entry points for the fuzz targets in `fuzz/`, only with the `fuzzing` feature.
//!
//! The parsers that face the network (the `Cookie` header scan, the id and client cookie
//! codecs, the client payload decoder) are private. These wrappers call them as they are,
//! so the fuzzer tests the real code, and no release build carries this module.

use http::HeaderMap;
use time::OffsetDateTime;

use crate::client::{ClientSession, Protection};
use crate::codec;
use crate::cookie::{CookieConfig, IdCodec};
use crate::{Entries, Expiry, Id, KeyRing};

/// The session cookie's name and the scan for it in a request's `Cookie` headers.
#[derive(Debug)]
pub struct CookieScan(CookieConfig);

impl CookieScan {
    /// A scan for cookie `name`, or `None` when the layer would refuse that name.
    #[must_use]
    pub fn new(name: &str) -> Option<Self> {
        let config = CookieConfig { name: name.to_owned(), ..CookieConfig::default() };
        config.check().is_ok().then_some(Self(config))
    }

    /// The value the layer would take from `headers`, at most `max_len` bytes.
    #[must_use]
    pub fn find(&self, headers: &HeaderMap, max_len: usize) -> Option<String> {
        self.0.find(headers, max_len).map(|text| text.to_string())
    }

    /// The `Set-Cookie` header the layer sends for `value` with the default attributes (for
    /// the benches: the hand-built header against the `cookie` crate's).
    #[must_use]
    pub fn set_cookie(&self, value: &str, max_age: Option<time::Duration>) -> http::HeaderValue {
        self.0.set_cookie(value, max_age)
    }
}

/// How a server-side session's id travels in its cookie.
#[derive(Debug)]
pub struct IdCookie(IdCodec);

impl IdCookie {
    /// The id as is.
    #[must_use]
    pub fn plain() -> Self {
        Self(IdCodec::Plain)
    }

    /// The id with an HMAC tag.
    #[must_use]
    pub fn signed(keys: KeyRing) -> Self {
        Self(IdCodec::Signed(keys))
    }

    /// The id sealed with AES-256-GCM.
    #[must_use]
    pub fn private(keys: KeyRing) -> Self {
        Self(IdCodec::Private(keys))
    }

    /// The one length of every cookie value this codec makes.
    #[must_use]
    pub fn cookie_len(&self) -> usize {
        self.0.cookie_len()
    }

    /// The cookie value for `id` under cookie `name`.
    #[must_use]
    pub fn encode(&self, name: &str, id: &Id) -> String {
        let mut out = String::new();
        self.0.encode_into(name, id, &mut out);
        out
    }

    /// The id in `value`, and whether a fallback key made it.
    #[must_use]
    pub fn decode(&self, name: &str, value: &str) -> Option<(Id, bool)> {
        self.0.decode(name, value.as_bytes())
    }
}

/// An id from its 16 bytes (ids are otherwise only ever random).
#[must_use]
pub fn id_from_bytes(bytes: [u8; 16]) -> Id {
    Id::from_bytes(&bytes).expect("16 bytes are an id")
}

/// The 16 bytes of `id`.
#[must_use]
pub fn id_bytes(id: &Id) -> [u8; 16] {
    id.as_bytes().try_into().expect("a random id has 16 bytes")
}

/// How a client-side session travels in its cookie.
#[derive(Debug)]
pub struct ClientCookie(Protection);

impl ClientCookie {
    /// Readable, with an HMAC tag.
    #[must_use]
    pub fn signed(keys: KeyRing) -> Self {
        Self(Protection::Signed(keys))
    }

    /// Sealed with AES-256-GCM.
    #[must_use]
    pub fn private(keys: KeyRing) -> Self {
        Self(Protection::Private(keys))
    }

    /// The cookie value for `payload` under cookie `name`.
    #[must_use]
    pub fn encode(&self, name: &str, payload: &[u8]) -> String {
        self.0.encode(name, payload)
    }

    /// The length [`encode`](Self::encode) gives a payload of `payload_len` bytes.
    #[must_use]
    pub fn encoded_len(&self, payload_len: usize) -> usize {
        self.0.encoded_len(payload_len)
    }

    /// The payload in `value`, and whether a fallback key made it.
    #[must_use]
    pub fn decode(&self, name: &str, value: &str) -> Option<(Vec<u8>, bool)> {
        self.0.decode(name, value)
    }
}

/// A decoded client-side session payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPayload {
    /// The session's entries.
    pub entries: Entries,
    /// When the session began.
    pub created_at: OffsetDateTime,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// Its own expiry, if it has one.
    pub expiry: Option<Expiry>,
}

/// Decodes a client-side session payload (what the layer does once a cookie opened).
///
/// # Errors
///
/// The decoder's error when `bytes` are not a payload.
pub fn decode_client(bytes: &[u8]) -> Result<ClientPayload, crate::BoxError> {
    let p: ClientSession = codec::decode_client(bytes)?;
    Ok(ClientPayload {
        entries: p.entries,
        created_at: p.created_at,
        expires_at: p.expires_at,
        expiry: p.expiry,
    })
}

/// Encodes a client-side session payload, as the layer does before sealing or signing.
#[must_use]
pub fn encode_client(p: &ClientPayload) -> Vec<u8> {
    codec::encode_client(&ClientSession {
        entries: p.entries.clone(),
        created_at: p.created_at,
        expires_at: p.expires_at,
        expiry: p.expiry,
    })
}
