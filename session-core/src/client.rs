//! Client-side sessions: the whole session inside the cookie (Flask's default).
//!
//! No store is involved. With the built-in formats the session's entries, creation time,
//! expiry instant and own expiry are encoded with MessagePack and either sealed with
//! AES-256-GCM ([`SessionLayer::client_side_private`](crate::SessionLayer::client_side_private):
//! the client can neither read nor change it) or signed with HMAC-SHA256
//! ([`SessionLayer::client_side_signed`](crate::SessionLayer::client_side_signed): readable,
//! but tamper-proof). The cookie name is bound into both. The expiry instant is inside the
//! protected payload, so a cookie replayed after it expires is refused even though the
//! browser could keep sending it. Another wire format (for instance Flask's, to share a
//! login with a Flask app) plugs in as a [`CookieFormat`] with
//! [`SessionLayer::client_side`](crate::SessionLayer::client_side).
//!
//! Limits to know:
//! - A cookie carries at most 4096 bytes: an insert that would make it larger fails with
//!   [`Error::CookieTooLarge`] and changes nothing.
//! - The browser holds the one copy, so concurrent requests are last-writer-wins: two
//!   parallel requests that change different keys can lose one change.
//! - Logging out cannot revoke a copy someone else kept; it expires only at its expiry
//!   instant. Use a server-side store where revocation matters.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use time::OffsetDateTime;

use crate::codec::{decode_client, encode_client, LONGEST_EXPIRY, LONGEST_INSTANT};
use crate::cookie::MAX_COOKIE_BYTES;
use crate::crypto::{KeyRing, SEAL_OVERHEAD, SIG_LEN};
use crate::{Entries, Error, Expiry};

/// One client-side session, as a [`CookieFormat`] writes it into a cookie and reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSession {
    /// The entries: each key's value in MessagePack, as [`Session`](crate::Session) keeps it.
    pub entries: Entries,
    /// When the session began (a format that does not keep it may give any earlier time).
    pub created_at: OffsetDateTime,
    /// When the session expires: a cookie read after this instant is no session.
    pub expires_at: OffsetDateTime,
    /// The session's own expiry, set with [`Session::set_expiry`](crate::Session::set_expiry);
    /// `None` follows the layer's.
    pub expiry: Option<Expiry>,
}

/// A wire format for client-side sessions: how a whole session becomes a cookie value and
/// back. The built-in formats are chosen with
/// [`SessionLayer::client_side_private`](crate::SessionLayer::client_side_private) and
/// [`client_side_signed`](crate::SessionLayer::client_side_signed); implement this trait for
/// another one and give it to [`SessionLayer::client_side`](crate::SessionLayer::client_side).
///
/// The layer enforces the cookie size limit by calling [`encode`](Self::encode): also on
/// every insert, so an insert that would not fit fails and changes nothing. Expiry is
/// checked by the layer too, from what [`decode`](Self::decode) returns.
///
/// ```
/// use session_core::client::{ClientSession, CookieFormat};
/// use session_core::{Error, SessionLayer};
/// use time::OffsetDateTime;
///
/// /// Readable by anyone and forgeable by anyone: only for a test.
/// #[derive(Debug)]
/// struct Insecure;
///
/// impl CookieFormat for Insecure {
///     fn encode(&self, _name: &str, s: &ClientSession, now: OffsetDateTime) -> Result<String, Error> {
///         let keys: Vec<&str> = s.entries.iter().map(|(k, _)| k).collect();
///         Ok(format!("{}:{}", now.unix_timestamp(), keys.join(",")))
///     }
///     fn decode(&self, _: &str, _: &str, _: OffsetDateTime) -> Option<(ClientSession, bool)> {
///         None // this one never reads its cookies back
///     }
/// }
///
/// let layer = SessionLayer::client_side(Insecure);
/// # let _ = layer;
/// ```
pub trait CookieFormat: fmt::Debug + Send + Sync + 'static {
    /// The cookie value for `session`, written at `now`: only characters allowed in a
    /// cookie value (RFC 6265 `cookie-octet`).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when a value has no form in this format; the insert that set it
    /// fails and changes nothing.
    fn encode(&self, name: &str, session: &ClientSession, now: OffsetDateTime) -> Result<String, Error>;

    /// The session in cookie `value` read at `now`, and whether to issue the cookie again
    /// even if the session did not change (it was made with a fallback key). `None` for
    /// anything this format did not make with one of its keys: a garbage, forged or
    /// expired cookie is no session. Must not panic on any input.
    fn decode(&self, name: &str, value: &str, now: OffsetDateTime) -> Option<(ClientSession, bool)>;
}

/// A client-side session's wire format: the built-in one, or the app's own.
#[derive(Debug, Clone)]
pub(crate) enum ClientCodec {
    Builtin(Protection),
    Custom(Arc<dyn CookieFormat>),
}

/// How the built-in format protects its MessagePack payload.
#[derive(Debug, Clone)]
pub(crate) enum Protection {
    Signed(KeyRing),
    Private(KeyRing),
}

fn b64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

impl ClientCodec {
    /// The session in cookie `value`, and whether to re-issue it.
    pub(crate) fn open(&self, name: &str, value: &str, now: OffsetDateTime) -> Option<(ClientSession, bool)> {
        match self {
            Self::Builtin(protection) => {
                let (payload, reissue) = protection.decode(name, value)?;
                decode_client(&payload).ok().map(|s| (s, reissue))
            }
            Self::Custom(format) => format.decode(name, value, now),
        }
    }

    /// The cookie value for `session`, or [`Error::CookieTooLarge`] when the `Set-Cookie`
    /// pair would pass the limit.
    pub(crate) fn seal(
        &self,
        name: &str,
        session: &ClientSession,
        now: OffsetDateTime,
    ) -> Result<String, Error> {
        match self {
            Self::Builtin(protection) => {
                let payload = encode_client(session);
                // The length is known before sealing: nothing is sealed in vain.
                check_size(name.len() + 1 + protection.encoded_len(payload.len()))?;
                Ok(protection.encode(name, &payload))
            }
            Self::Custom(format) => {
                let value = format.encode(name, session, now)?;
                check_size(name.len() + 1 + value.len())?;
                Ok(value)
            }
        }
    }

    /// Whether a session with `entries` still fits in a cookie, whatever its expiry
    /// instant and own expiry turn out to be at the save (both are counted at their
    /// longest), so the save cannot fail where every insert fit.
    pub(crate) fn check_fits(
        &self,
        name: &str,
        entries: &Entries,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let session = ClientSession {
            entries: entries.clone(),
            created_at,
            expires_at: LONGEST_INSTANT,
            expiry: Some(LONGEST_EXPIRY),
        };
        let len = match self {
            Self::Builtin(protection) => protection.encoded_len(encode_client(&session).len()),
            Self::Custom(format) => format.encode(name, &session, now)?.len(),
        };
        check_size(name.len() + 1 + len)
    }
}

fn check_size(size: usize) -> Result<(), Error> {
    if size > MAX_COOKIE_BYTES {
        return Err(Error::CookieTooLarge { size, limit: MAX_COOKIE_BYTES });
    }
    Ok(())
}

impl Protection {
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
        for codec in [Protection::Signed(ring.clone()), Protection::Private(ring)] {
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
        let codec = Protection::Signed(ring);
        let value = codec.encode("s", b"user=1");
        let (text, tag) = value.rsplit_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(b"user=2"));
        assert_ne!(forged, value);
        assert_eq!(codec.decode("s", &forged), None);
        assert_eq!(codec.decode("s", text), None);
        assert_eq!(codec.decode("s", "garbage.!!"), None);
    }
}
