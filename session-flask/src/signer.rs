//! itsdangerous' URL-safe timed serializer, configured as Flask configures it for the
//! session cookie: `PAYLOAD.TIMESTAMP.SIGNATURE`, HMAC-SHA1 with the key derived from
//! `SECRET_KEY` and the salt `cookie-session`.

use std::fmt;
use std::io::{Read as _, Write as _};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::error::{KeyError, LoadError};
use crate::json;
use crate::value::FlaskValue;

type HmacSha1 = Hmac<Sha1>;

/// Flask's salt for the session cookie (`SecureCookieSessionInterface.salt`).
const SALT: &[u8] = b"cookie-session";

/// Flask's default `PERMANENT_SESSION_LIFETIME`: 31 days.
pub const DEFAULT_LIFETIME: Duration = Duration::days(31);

/// Largest decompressed payload accepted: a cookie of at most 4 KiB that inflates past this
/// is a zlib bomb, not a session. Real Flask sessions are far smaller.
pub const MAX_DECOMPRESSED: usize = 256 * 1024;

/// Python's `base64.urlsafe_b64decode` after itsdangerous re-pads: padding optional,
/// stray low bits ignored.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// One of Flask's `SECRET_KEY` or `SECRET_KEY_FALLBACKS`, kept only in its derived form
/// (`HMAC-SHA1(secret, "cookie-session")`).
///
/// `Debug` shows no key material.
///
/// ```
/// use session_flask::SecretKey;
///
/// let key = SecretKey::new("the Flask app's SECRET_KEY").unwrap();
/// assert_eq!(format!("{key:?}"), "SecretKey(..)");
/// assert!(SecretKey::new("").is_err());
/// ```
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 20]>);

impl SecretKey {
    /// The key for Flask's `SECRET_KEY = secret` (a `str` secret is its UTF-8 bytes, as in
    /// Flask).
    ///
    /// # Errors
    ///
    /// [`KeyError::Empty`] for an empty secret: Flask refuses to sign sessions without one.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(KeyError::Empty);
        }
        let mut mac = HmacSha1::new_from_slice(secret).map_err(|_| KeyError::Empty)?;
        mac.update(SALT);
        Ok(Self(Zeroizing::new(mac.finalize().into_bytes().into())))
    }

    fn mac(&self) -> HmacSha1 {
        // HMAC takes keys of any length.
        HmacSha1::new_from_slice(&self.0[..]).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// What [`FlaskSerializer::loads`] found in a valid cookie.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Loaded {
    /// The session: a [`FlaskValue::Dict`] for any cookie Flask wrote.
    pub value: FlaskValue,
    /// When it was signed.
    pub signed_at: OffsetDateTime,
    /// Whether a fallback key verified it, so it should be signed again with the current one.
    pub by_fallback: bool,
}

/// Flask's session cookie serializer: `dumps` and `loads` as
/// `SecureCookieSessionInterface.get_signing_serializer(app)` does them.
///
/// ```
/// use session_flask::{FlaskSerializer, FlaskValue, SecretKey};
/// use time::OffsetDateTime;
///
/// let old = FlaskSerializer::new(SecretKey::new("old secret")?);
/// let now = OffsetDateTime::now_utc();
/// let session = FlaskValue::Dict([("user_id".to_owned(), 42.into())].into());
/// let cookie = old.dumps(&session, now);
///
/// // After rotation: SECRET_KEY = "new secret", SECRET_KEY_FALLBACKS = ["old secret"].
/// let new = FlaskSerializer::new(SecretKey::new("new secret")?)
///     .with_fallbacks([SecretKey::new("old secret")?]);
/// let loaded = new.loads(&cookie, now)?;
/// assert_eq!(loaded.value, session);
/// assert!(loaded.by_fallback);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FlaskSerializer {
    /// `SECRET_KEY` first, then the fallbacks in the order Flask tries them.
    keys: Vec<SecretKey>,
    max_age: Duration,
}

impl FlaskSerializer {
    /// A serializer for `SECRET_KEY`, with no fallbacks and Flask's default lifetime.
    #[must_use]
    pub fn new(secret: SecretKey) -> Self {
        Self { keys: vec![secret], max_age: DEFAULT_LIFETIME }
    }

    /// Adds `SECRET_KEY_FALLBACKS`, listed as in Flask's config (oldest first); cookies they
    /// verify are accepted and flagged for re-signing. Tried after `SECRET_KEY`, newest first.
    #[must_use]
    pub fn with_fallbacks(mut self, fallbacks: impl IntoIterator<Item = SecretKey>) -> Self {
        let mut fallbacks: Vec<_> = fallbacks.into_iter().collect();
        fallbacks.reverse();
        self.keys.truncate(1);
        self.keys.extend(fallbacks);
        self
    }

    /// Flask's `PERMANENT_SESSION_LIFETIME` (default 31 days): older cookies are refused,
    /// permanent or not, as Flask does. Whole seconds count, as in Flask.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The lifetime set with [`with_max_age`](Self::with_max_age).
    #[must_use]
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The cookie value for `value` signed at `now` with `SECRET_KEY`, byte for byte what
    /// Flask writes (compressed with zlib when that is shorter, as Flask decides).
    #[must_use]
    pub fn dumps(&self, value: &FlaskValue, now: OffsetDateTime) -> String {
        let mut text = String::new();
        json::write(value, &mut text);
        let mut out = String::new();
        match compress(text.as_bytes()) {
            Some(z) if z.len() < text.len() - 1 => {
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(z, &mut out);
            }
            _ => URL_SAFE_NO_PAD.encode_string(&text, &mut out),
        }
        out.push('.');
        // itsdangerous: big-endian, leading zero bytes stripped. Before 1970 is not a time
        // Flask can sign at.
        let ts = u64::try_from(now.unix_timestamp()).unwrap_or(0).to_be_bytes();
        let first = ts.iter().position(|&b| b != 0).unwrap_or(ts.len());
        URL_SAFE_NO_PAD.encode_string(&ts[first..], &mut out);
        let mut mac = self.keys[0].mac();
        mac.update(out.as_bytes());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut out);
        out
    }

    /// The session in a cookie value, checked as Flask checks it at `now`: signature (with
    /// `SECRET_KEY`, then the fallbacks; constant-time), age, then payload. Unauthenticated
    /// bytes reach no decompressor or parser.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] saying which check failed; it never quotes the cookie.
    pub fn loads(&self, cookie: &str, now: OffsetDateTime) -> Result<Loaded, LoadError> {
        let (signed, sig) = cookie.rsplit_once('.').ok_or(LoadError::BadSignature)?;
        let sig = LENIENT.decode(sig).map_err(|_| LoadError::BadSignature)?;
        let key = self
            .keys
            .iter()
            .position(|key| {
                let mut mac = key.mac();
                mac.update(signed.as_bytes());
                mac.verify_slice(&sig).is_ok()
            })
            .ok_or(LoadError::BadSignature)?;
        let (payload, ts) = signed.rsplit_once('.').ok_or(LoadError::BadTimestamp)?;
        let ts = LENIENT.decode(ts).map_err(|_| LoadError::BadTimestamp)?;
        if ts.len() > 8 {
            return Err(LoadError::BadTimestamp);
        }
        let mut be = [0u8; 8];
        be[8 - ts.len()..].copy_from_slice(&ts);
        let ts = i64::try_from(u64::from_be_bytes(be)).map_err(|_| LoadError::BadTimestamp)?;
        let signed_at = OffsetDateTime::from_unix_timestamp(ts).map_err(|_| LoadError::BadTimestamp)?;
        let age = now.unix_timestamp().saturating_sub(ts);
        if age < 0 {
            return Err(LoadError::FromTheFuture);
        }
        if age > self.max_age.whole_seconds() {
            return Err(LoadError::Expired);
        }
        let bytes = match payload.strip_prefix('.') {
            Some(z) => decompress(&LENIENT.decode(z).map_err(|_| LoadError::BadPayload("not base64"))?)?,
            None => LENIENT.decode(payload).map_err(|_| LoadError::BadPayload("not base64"))?,
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| LoadError::BadPayload("not UTF-8"))?;
        let value = json::parse(text).map_err(|e| LoadError::BadPayload(e.0))?;
        Ok(Loaded { value, signed_at, by_fallback: key != 0 })
    }
}

/// zlib at level 6, as Python's `zlib.compress`.
fn compress(data: &[u8]) -> Option<Vec<u8>> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    z.write_all(data).ok()?;
    z.finish().ok()
}

/// Inflates at most [`MAX_DECOMPRESSED`] bytes.
fn decompress(data: &[u8]) -> Result<Vec<u8>, LoadError> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_DECOMPRESSED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| LoadError::BadPayload("not a zlib stream"))?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(LoadError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn key(s: &str) -> SecretKey {
        SecretKey::new(s).unwrap()
    }

    fn session(pairs: &[(&str, FlaskValue)]) -> FlaskValue {
        FlaskValue::Dict(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<BTreeMap<_, _>>())
    }

    const T: OffsetDateTime = datetime!(2023-11-14 22:13:20 UTC); // 1700000000

    #[test]
    fn derived_key_and_timestamp_match_flask() {
        // FLASK-FORMAT.md: K('interop-test-key') and 1700000000 -> ZVPxAA.
        let k = key("interop-test-key");
        let hex: String = k.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "3c6c8e6eb4749f578dbd2f5a0a1da9048e51ffbb");
        let cookie = FlaskSerializer::new(k).dumps(&session(&[]), T);
        assert_eq!(cookie.split('.').nth(1), Some("ZVPxAA"));
        assert_eq!(format!("{:?}", key("interop-test-key")), "SecretKey(..)");
    }

    #[test]
    fn round_trip_and_checks() {
        let s = FlaskSerializer::new(key("k"));
        let v = session(&[("user_id", 42.into())]);
        let cookie = s.dumps(&v, T);
        let loaded = s.loads(&cookie, T + Duration::hours(1)).unwrap();
        assert_eq!((loaded.value, loaded.signed_at, loaded.by_fallback), (v, T, false));
        assert_eq!(s.loads(&cookie, T - Duration::seconds(1)), Err(LoadError::FromTheFuture));
        assert!(s.loads(&cookie, T + DEFAULT_LIFETIME).is_ok());
        assert_eq!(s.loads(&cookie, T + DEFAULT_LIFETIME + Duration::seconds(1)), Err(LoadError::Expired));
        let short = s.clone().with_max_age(Duration::minutes(5));
        assert_eq!(short.loads(&cookie, T + Duration::minutes(6)), Err(LoadError::Expired));
        assert_eq!(FlaskSerializer::new(key("other")).loads(&cookie, T), Err(LoadError::BadSignature));
        // Any change to payload, timestamp or signature breaks it.
        for i in 0..cookie.len() {
            let mut b = cookie.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            if let Ok(c) = String::from_utf8(b) {
                assert!(s.loads(&c, T).is_err(), "byte {i}");
            }
        }
    }

    #[test]
    fn fallbacks_verify_and_are_flagged() {
        let v = session(&[("a", "b".into())]);
        let cookie = FlaskSerializer::new(key("old")).dumps(&v, T);
        let s = FlaskSerializer::new(key("new")).with_fallbacks([key("older"), key("old")]);
        let loaded = s.loads(&cookie, T).unwrap();
        assert!(loaded.by_fallback);
        assert!(!s.loads(&s.dumps(&v, T), T).unwrap().by_fallback);
        assert!(FlaskSerializer::new(key("new")).loads(&cookie, T).is_err());
    }

    #[test]
    fn compresses_only_when_shorter() {
        let s = FlaskSerializer::new(key("k"));
        let small = s.dumps(&session(&[("a", 1.into())]), T);
        assert!(!small.starts_with('.'));
        let big = session(&[("a", FlaskValue::from(vec!["repeated text"; 200]))]);
        let cookie = s.dumps(&big, T);
        assert!(cookie.starts_with('.') && cookie.len() < 200, "{}", cookie.len());
        assert_eq!(s.loads(&cookie, T).unwrap().value, big);
    }

    fn sign(s: &FlaskSerializer, payload: &str) -> String {
        let mut out = format!("{payload}.ZVPxAA");
        let mut mac = s.keys[0].mac();
        mac.update(out.as_bytes());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut out);
        out
    }

    #[test]
    fn zlib_bomb_is_refused_without_inflating_it() {
        let s = FlaskSerializer::new(key("k"));
        // 16 MiB of spaces inside a JSON string, ~16 KB compressed: the same ratio makes a
        // 4 KiB cookie inflate to 4 MiB, and nested streams far more. Only the cap is read.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(b"{\"a\":\"").unwrap();
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..16 {
            z.write_all(&chunk).unwrap();
        }
        z.write_all(b"\"}").unwrap();
        let bomb = z.finish().unwrap();
        let cookie = sign(&s, &format!(".{}", URL_SAFE_NO_PAD.encode(&bomb)));
        assert_eq!(s.loads(&cookie, T), Err(LoadError::TooLarge));
    }

    #[test]
    fn garbage_is_refused() {
        let s = FlaskSerializer::new(key("k"));
        for c in ["", ".", "..", "a.b.c", "...", "e30.ZVPxAA.", "e30.ZVPxAA.!!!!", "\u{e9}.\u{e9}.\u{e9}"] {
            assert!(s.loads(c, T).is_err(), "{c:?}");
        }
        // Validly signed, but not a session.
        for payload in
            [URL_SAFE_NO_PAD.encode("{"), URL_SAFE_NO_PAD.encode([0xff, 0xfe]), ".AAAA".into(), "!".into()]
        {
            assert!(matches!(s.loads(&sign(&s, &payload), T), Err(LoadError::BadPayload(_))));
        }
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert_eq!(
            s.loads(&sign(&s, &URL_SAFE_NO_PAD.encode(&deep)), T),
            Err(LoadError::BadPayload("nested too deeply"))
        );
        // A timestamp of more than 8 bytes.
        let mut long_ts = format!("e30.{}", URL_SAFE_NO_PAD.encode([1u8; 9]));
        let mut mac = s.keys[0].mac();
        mac.update(long_ts.as_bytes());
        long_ts.push('.');
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut long_ts);
        assert_eq!(s.loads(&long_ts, T), Err(LoadError::BadTimestamp));
    }
}
