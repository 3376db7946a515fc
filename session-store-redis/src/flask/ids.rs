//! Flask-Session's session ids and cookie values, as a `session-core` [`IdFormat`], and a
//! layer with Flask's cookie defaults.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use session_core::{Expiry, Id, IdFormat, SessionLayer, SessionStore};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::keys;

type HmacSha1 = Hmac<Sha1>;

/// The length of a sid: `secrets.token_urlsafe(32)`.
const SID_LEN: usize = 43;
/// The length of a signature: 20 bytes of HMAC-SHA1 in base64url.
const SIG_LEN: usize = 27;

/// Flask's default `PERMANENT_SESSION_LIFETIME`: 31 days.
pub const FLASK_DEFAULT_LIFETIME: time::Duration = time::Duration::days(31);

/// Why [`FlaskSessionIds::signed`] refused a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlaskIdError {
    /// `SECRET_KEY` is empty; Flask-Session refuses to sign with it too.
    #[error("SECRET_KEY is empty: give the Flask app's SECRET_KEY to sign Flask-Session ids")]
    EmptySecretKey,
}

/// Flask-Session's session ids, as an [`IdFormat`] for
/// [`SessionLayer::with_id_format`]: 32 random bytes (`secrets.token_urlsafe(32)`, 43
/// characters of base64url), each its own record id, so [`FlaskSessionStore`](super::FlaskSessionStore)
/// keys the session by exactly the sid Flask uses.
///
/// - [`plain`](Self::plain): the cookie is the sid (Flask-Session's default);
/// - [`signed`](Self::signed): `SESSION_USE_SIGNER = True`: the cookie is
///   `sid + "." + base64url(HMAC-SHA1(HMAC-SHA1(SECRET_KEY, "flask-session"), sid))`
///   (itsdangerous' `Signer` with `key_derivation="hmac"`); only `SECRET_KEY` counts, as in
///   Flask-Session (it ignores `SECRET_KEY_FALLBACKS`).
///
/// Anything else in the cookie (another length, a bad signature, garbage) is no session.
/// Flask-Session's `SESSION_ID_LENGTH` must stay at its default, 32.
///
/// `Debug` shows whether ids are signed, never the key.
///
/// ```
/// use session_core::{Id, IdFormat};
/// use session_store_redis::flask::FlaskSessionIds;
///
/// let ids = FlaskSessionIds::signed("interop-test-key").unwrap();
/// let id = ids.generate();
/// let cookie = ids.encode("session", &id);
/// assert_eq!(cookie.len(), 43 + 1 + 27);
/// assert_eq!(ids.decode("session", &cookie).map(|(id, _)| id), Some(id));
/// assert!(ids.decode("session", &cookie[..43]).is_none(), "unsigned");
/// assert!(FlaskSessionIds::plain().decode("session", "garbage").is_none());
/// ```
#[derive(Clone)]
pub struct FlaskSessionIds {
    /// `HMAC-SHA1(SECRET_KEY, "flask-session")`, when ids are signed.
    key: Option<[u8; 20]>,
}

impl fmt::Debug for FlaskSessionIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlaskSessionIds").field("signed", &self.key.is_some()).finish()
    }
}

impl FlaskSessionIds {
    /// Unsigned ids: the cookie is the sid (`SESSION_USE_SIGNER = False`, the default).
    #[must_use]
    pub fn plain() -> Self {
        Self { key: None }
    }

    /// Signed ids (`SESSION_USE_SIGNER = True`), with the Flask app's `SECRET_KEY` (a Python
    /// `str` key is its UTF-8 bytes).
    ///
    /// # Errors
    ///
    /// [`FlaskIdError::EmptySecretKey`] for an empty key.
    pub fn signed(secret_key: impl AsRef<[u8]>) -> Result<Self, FlaskIdError> {
        let secret_key = secret_key.as_ref();
        if secret_key.is_empty() {
            return Err(FlaskIdError::EmptySecretKey);
        }
        Ok(Self { key: Some(hmac_sha1(secret_key, b"flask-session")) })
    }

    fn signature(key: &[u8; 20], sid: &str) -> [u8; 20] {
        hmac_sha1(key, sid.as_bytes())
    }
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    // HMAC takes keys of any length.
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl IdFormat for FlaskSessionIds {
    /// 32 bytes from the operating system's CSPRNG, as `secrets.token_urlsafe(32)` draws.
    ///
    /// # Panics
    ///
    /// If the operating system has no usable random source: predictable ids are no option.
    fn generate(&self) -> Id {
        let mut bytes = [0; 32];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        Id::from_raw(bytes)
    }

    fn encode(&self, _name: &str, id: &Id) -> String {
        // Ids of this format are raw (`generate`, `decode`); any other id has no Flask form.
        let Some(raw) = id.raw() else { return String::new() };
        let mut sid = URL_SAFE_NO_PAD.encode(raw);
        if let Some(key) = &self.key {
            let signature = Self::signature(key, &sid);
            sid.push('.');
            URL_SAFE_NO_PAD.encode_string(signature, &mut sid);
        }
        sid
    }

    fn decode(&self, _name: &str, value: &str) -> Option<(Id, bool)> {
        let sid = match &self.key {
            None => value,
            Some(key) => {
                let (sid, signature) = value.split_at_checked(SID_LEN)?;
                let signature = signature.strip_prefix('.')?;
                if signature.len() != SIG_LEN {
                    return None;
                }
                let mut given = [0u8; 20];
                let decoded = URL_SAFE_NO_PAD.decode_slice(signature, &mut given).ok()?;
                if decoded != 20 || !bool::from(Self::signature(key, sid).ct_eq(&given)) {
                    return None;
                }
                sid
            }
        };
        let id = keys::record_id(sid.as_bytes())?;
        Some((Id::from_raw(*id.as_bytes()), false))
    }

    fn max_len(&self) -> usize {
        if self.key.is_some() {
            SID_LEN + 1 + SIG_LEN
        } else {
            SID_LEN
        }
    }
}

/// A [`SessionLayer`] that shares Flask-Session's cookie: name `session`, HttpOnly,
/// `Path=/`, no Secure, no SameSite (Flask's defaults), `ids` for the sid, and `lifetime`
/// (Flask's `PERMANENT_SESSION_LIFETIME`, [`FLASK_DEFAULT_LIFETIME`] unless the app sets it)
/// as an idle expiry, since Flask-Session rewrites the record's TTL on every request.
///
/// Use it with a [`FlaskSessionStore`](super::FlaskSessionStore); change the cookie
/// attributes with the layer's own setters when the Flask app changed its
/// `SESSION_COOKIE_*` settings, so both apps write the same cookie.
///
/// # Security
///
/// Flask's defaults send the cookie over plain HTTP too: on an HTTPS site set
/// `SESSION_COOKIE_SECURE = True` in Flask and call
/// [`with_secure(true)`](SessionLayer::with_secure) here.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use session_store_redis::flask::{flask_session_layer, FlaskSessionIds, FlaskSessionStore, FLASK_DEFAULT_LIFETIME};
///
/// let store = FlaskSessionStore::connect("redis://127.0.0.1:6379/").await?;
/// let ids = FlaskSessionIds::signed(std::env::var("FLASK_SECRET_KEY")?)?;
/// let layer = flask_session_layer(store, ids, FLASK_DEFAULT_LIFETIME).with_secure(true);
/// let app: axum::Router = axum::Router::new().layer(layer);
/// # Ok(()) }
/// ```
#[must_use]
pub fn flask_session_layer(
    store: impl SessionStore,
    ids: FlaskSessionIds,
    lifetime: time::Duration,
) -> SessionLayer {
    SessionLayer::new(store)
        .with_id_format(ids)
        .with_name("session")
        .with_http_only(true)
        .with_path("/")
        .with_secure(false)
        .without_same_site()
        .with_expiry(Expiry::OnInactivity(lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_flask_session() {
        // Flask-Session 0.8 (itsdangerous 2.2) with SECRET_KEY = "interop-test-key" and
        // SESSION_USE_SIGNER = True signs this sid so: `FlaskSessionInterface._sign`.
        let ids = FlaskSessionIds::signed("interop-test-key").unwrap();
        let sid = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let id = Id::from_raw([0; 32]);
        assert_eq!(ids.encode("session", &id), format!("{sid}.{SIGNED_ZERO_SID}"));
        assert_eq!(ids.decode("session", &format!("{sid}.{SIGNED_ZERO_SID}")).map(|(i, _)| i), Some(id));
    }

    /// `Signer("interop-test-key", salt="flask-session", key_derivation="hmac").sign(sid)`.
    const SIGNED_ZERO_SID: &str = "VlF-3g9y96WLJO_LOrKKb1vIRLs";

    #[test]
    fn bad_cookies_are_no_session_and_never_panic() {
        let signed = FlaskSessionIds::signed("k").unwrap();
        let plain = FlaskSessionIds::plain();
        let good = signed.encode("session", &signed.generate());
        let mut tampered = good.clone().into_bytes();
        tampered[3] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in ["", ".", "é", &good[..70], &tampered, &format!("{good}A"), &good.replace('.', "!")] {
            assert!(signed.decode("session", bad).is_none(), "{bad:?}");
        }
        // The plain format takes only the sid; a signed cookie is not a sid.
        assert!(plain.decode("session", &good).is_none());
        assert!(plain.decode("session", &good[..43]).is_some());
        assert!(FlaskSessionIds::signed("").is_err());
        assert_eq!(format!("{signed:?}"), "FlaskSessionIds { signed: true }");
    }
}
