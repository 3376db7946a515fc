//! [`FlaskCookie`]: Flask's session cookie as a client-side format of [`SessionLayer`].

use bytes::Bytes;
use session_core::client::{ClientSession, CookieFormat};
use session_core::{Entries, Error, Expiry, SessionLayer};
use time::OffsetDateTime;

use crate::error::KeyError;
use crate::signer::{FlaskSerializer, SecretKey};
use crate::value::FlaskValue;

/// The key Flask keeps `session.permanent` under. In Rust it is the session's expiry, not
/// an entry: see [`FlaskCookie`].
pub const PERMANENT_KEY: &str = "_permanent";

/// Flask's default session cookie as a [`CookieFormat`], for
/// [`SessionLayer::client_side`]: the Rust service and the Flask app read and write the
/// same cookie.
///
/// How a cookie maps to a [`Session`](session_core::Session):
/// - each top-level key is an entry, stored as MessagePack (see [`FlaskValue`]), so
///   `session.get::<i64>("user_id")` reads the id Flask stored;
/// - `_permanent` is the session's expiry, not an entry: a permanent Flask session reads
///   with `session.expiry() == Some(Expiry::OnInactivity(lifetime))`, and a session with
///   any expiry of its own other than [`Expiry::BrowserSession`] is written permanent;
/// - the signing time is both `created_at` (Flask keeps no creation time) and the start
///   of the lifetime: `expires_at` is signing time + `PERMANENT_SESSION_LIFETIME`;
/// - a cookie verified with a fallback key is issued again, signed with `SECRET_KEY`.
///
/// Writing fails with [`Error::Encode`] for a value Flask's JSON cannot hold: a map with
/// keys that are not strings.
///
/// ```
/// use session_flask::{FlaskCookie, FlaskSerializer, SecretKey};
/// use time::Duration;
///
/// // PERMANENT_SESSION_LIFETIME = timedelta(days=7)
/// let serializer = FlaskSerializer::new(SecretKey::new("the Flask app's SECRET_KEY")?)
///     .with_max_age(Duration::days(7));
/// let layer = FlaskCookie::new(serializer).into_layer();
/// # let _ = layer;
/// # Ok::<(), session_flask::KeyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FlaskCookie {
    serializer: FlaskSerializer,
}

impl FlaskCookie {
    /// The format for cookies `serializer` signs and verifies.
    #[must_use]
    pub fn new(serializer: FlaskSerializer) -> Self {
        Self { serializer }
    }

    /// A client-side [`SessionLayer`] in this format with Flask's cookie defaults: name
    /// `session`, `Path=/`, `HttpOnly`, no `Secure`, no `SameSite`, and browser-session
    /// cookies unless a session is permanent. Change them with the layer's `with_*` setters
    /// to match the Flask app's `SESSION_COOKIE_*` settings.
    ///
    /// # Security
    ///
    /// Flask's defaults are weaker than this workspace's: no `Secure` and no `SameSite`.
    /// They are what the Flask app sends, and both apps must send the same attributes, or
    /// browsers keep two cookies. Set `SESSION_COOKIE_SECURE = True` and
    /// `SESSION_COOKIE_SAMESITE = "Lax"` in Flask and the same here where you can.
    #[must_use]
    pub fn into_layer(self) -> SessionLayer {
        SessionLayer::client_side(self)
            .with_name("session")
            .with_path("/")
            .with_http_only(true)
            .with_secure(false)
            .without_same_site()
            .with_expiry(Expiry::BrowserSession)
    }

    /// The expiry that makes a session permanent, as `session.permanent = True` does in
    /// Flask: its cookie lasts `PERMANENT_SESSION_LIFETIME`.
    ///
    /// ```
    /// # async fn login(session: session_core::Session, flask: &session_flask::FlaskCookie) {
    /// session.set_expiry(Some(flask.permanent()));
    /// # }
    /// ```
    #[must_use]
    pub fn permanent(&self) -> Expiry {
        Expiry::OnInactivity(self.serializer.max_age())
    }
}

/// A [`SessionLayer`] sharing sessions with a Flask app whose `SECRET_KEY` is `secret` and
/// `SECRET_KEY_FALLBACKS` is `fallbacks` (as listed in Flask's config), with Flask's
/// default lifetime (31 days) and cookie attributes (see [`FlaskCookie::into_layer`]).
///
/// ```
/// use axum::{routing::get, Router};
/// use session_core::Session;
///
/// async fn whoami(session: Session) -> Result<String, session_core::Error> {
///     Ok(match session.get::<i64>("user_id").await? {
///         Some(id) => format!("user {id}"),
///         None => "not logged in".into(),
///     })
/// }
///
/// let layer = session_flask::flask_cookie_layer("the Flask app's SECRET_KEY", ["the previous one"])?;
/// let app: Router = Router::new().route("/whoami", get(whoami)).layer(layer);
/// # Ok::<(), session_flask::KeyError>(())
/// ```
///
/// # Errors
///
/// [`KeyError::Empty`] if `secret` or a fallback is empty.
pub fn flask_cookie_layer<S, F>(secret: S, fallbacks: F) -> Result<SessionLayer, KeyError>
where
    S: AsRef<[u8]>,
    F: IntoIterator,
    F::Item: AsRef<[u8]>,
{
    let fallbacks = fallbacks.into_iter().map(SecretKey::new).collect::<Result<Vec<_>, _>>()?;
    let serializer = FlaskSerializer::new(SecretKey::new(secret)?).with_fallbacks(fallbacks);
    Ok(FlaskCookie::new(serializer).into_layer())
}

impl CookieFormat for FlaskCookie {
    fn encode(&self, _name: &str, session: &ClientSession, now: OffsetDateTime) -> Result<String, Error> {
        let mut dict = std::collections::BTreeMap::new();
        for (key, bytes) in session.entries.iter() {
            if key == PERMANENT_KEY {
                continue;
            }
            let value = rmp_serde::from_slice::<FlaskValue>(bytes)
                .map_err(|e| Error::Encode { key: key.to_owned(), source: flask_has_no_form(e) })?;
            dict.insert(key.to_owned(), value);
        }
        if session.expiry.is_some_and(|e| e != Expiry::BrowserSession) {
            dict.insert(PERMANENT_KEY.to_owned(), FlaskValue::Bool(true));
        }
        Ok(self.serializer.dumps(&FlaskValue::Dict(dict), now))
    }

    fn decode(&self, _name: &str, value: &str, now: OffsetDateTime) -> Option<(ClientSession, bool)> {
        // Every failure is "no session", as in Flask; `LoadError` says which, but a log
        // line per bad cookie would let any client fill the logs.
        let loaded = self.serializer.loads(value, now).ok()?;
        let FlaskValue::Dict(dict) = loaded.value else {
            return None;
        };
        let mut entries = Entries::new();
        let mut permanent = false;
        for (key, value) in dict {
            if key == PERMANENT_KEY {
                permanent = value == FlaskValue::Bool(true);
                continue;
            }
            let mut buf = Vec::new();
            rmp_serde::encode::write_named(&mut buf, &value).ok()?;
            entries.insert(key, Bytes::from(buf));
        }
        let session = ClientSession {
            entries,
            created_at: loaded.signed_at,
            expires_at: loaded.signed_at.saturating_add(self.serializer.max_age()),
            expiry: permanent.then(|| self.permanent()),
        };
        Some((session, loaded.by_fallback))
    }
}

/// Why a stored value has no form in Flask's JSON, without quoting it.
fn flask_has_no_form(e: rmp_serde::decode::Error) -> session_core::BoxError {
    let reason = match e {
        rmp_serde::decode::Error::Syntax(_) => {
            "a map whose keys are not all strings, or a MessagePack extension Flask has no type for"
        }
        _ => "a value that is not MessagePack",
    };
    format!("Flask's session JSON cannot hold it: {reason}").into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::Duration;

    const T: OffsetDateTime = datetime!(2023-11-14 22:13:20 UTC);

    fn format() -> FlaskCookie {
        FlaskCookie::new(FlaskSerializer::new(SecretKey::new("k").unwrap()))
    }

    fn entry<T: serde::Serialize>(v: T) -> Bytes {
        let mut buf = Vec::new();
        rmp_serde::encode::write_named(&mut buf, &v).unwrap();
        buf.into()
    }

    #[test]
    fn entries_and_permanence_round_trip() {
        let f = format();
        let mut entries = Entries::new();
        entries.insert("user_id", entry(42));
        entries.insert("tags", entry(vec!["a", "b"]));
        entries.insert("t", entry(FlaskValue::Tuple(vec![1.into()])));
        for expiry in [None, Some(Expiry::BrowserSession), Some(f.permanent())] {
            let session = ClientSession { entries: entries.clone(), created_at: T, expires_at: T, expiry };
            let cookie = f.encode("session", &session, T).unwrap();
            let (back, reissue) = f.decode("session", &cookie, T + Duration::seconds(5)).unwrap();
            assert!(!reissue);
            assert_eq!(back.entries, entries);
            assert_eq!((back.created_at, back.expires_at), (T, T + Duration::days(31)));
            let permanent = expiry == Some(f.permanent());
            assert_eq!(back.expiry, permanent.then(|| f.permanent()));
        }
    }

    #[test]
    fn values_flask_cannot_hold_are_encode_errors() {
        let mut entries = Entries::new();
        entries.insert("m", entry(std::collections::BTreeMap::from([(1, 2)])));
        let session = ClientSession { entries, created_at: T, expires_at: T, expiry: None };
        let err = format().encode("session", &session, T).unwrap_err();
        assert!(matches!(&err, Error::Encode { key, .. } if key == "m"), "{err}");
    }

    #[test]
    fn bad_cookies_are_no_session() {
        let f = format();
        let session = ClientSession { entries: Entries::new(), created_at: T, expires_at: T, expiry: None };
        let cookie = f.encode("session", &session, T).unwrap();
        assert!(f.decode("session", &cookie, T).is_some());
        assert!(f.decode("session", &cookie, T - Duration::seconds(1)).is_none(), "future");
        assert!(f.decode("session", &cookie, T + Duration::days(32)).is_none(), "expired");
        assert!(f.decode("session", "garbage", T).is_none());
        // Signed, but a list rather than a dict.
        let list = f.serializer.dumps(&FlaskValue::List(vec![]), T);
        assert!(f.decode("session", &list, T).is_none());
    }
}
