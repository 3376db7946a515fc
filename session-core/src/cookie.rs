//! The session cookie: attributes, reading it from a request, writing it to a response.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
pub use cookie::SameSite;
use http::header::{HeaderMap, HeaderValue, COOKIE};
use time::Duration;

use crate::crypto::{KeyRing, SEAL_OVERHEAD, SIG_LEN};
use crate::id::ID_TEXT_LEN;
use crate::Id;
use std::fmt;
use std::sync::Arc;

/// Browsers keep at most about 4096 bytes of name and value per cookie.
pub(crate) const MAX_COOKIE_BYTES: usize = 4096;

/// The attributes of the session cookie. Defaults are the secure ones.
#[derive(Debug, Clone)]
pub(crate) struct CookieConfig {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    /// `None`: no SameSite attribute (browsers then treat the cookie as `Lax`).
    pub(crate) same_site: Option<SameSite>,
    pub(crate) partitioned: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "id".to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: Some(SameSite::Lax),
            partitioned: false,
        }
    }
}

/// `Max-Age` in whole seconds, rounded up: a live session never gets `Max-Age=0` (which
/// tells the browser to delete the cookie), and an expiry computed a moment earlier in the
/// request still says the whole window.
fn max_age_seconds(age: Duration) -> u64 {
    if age <= Duration::ZERO {
        return 0;
    }
    let whole = age.whole_seconds();
    let up = if age > Duration::seconds(whole) { whole.saturating_add(1) } else { whole };
    up.unsigned_abs()
}

/// Whether `name` starts with the cookie prefix `prefix`, which browsers match without
/// regard to case (RFC 6265bis): `__host-x` gets the `__Host-` rules.
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// A layer configuration that browsers would defeat, found by
/// [`SessionLayer::check`](crate::SessionLayer::check) (and `CsrfLayer::check`). Applying
/// such a layer to a service panics, since every cookie it sent would be dropped silently.
///
/// ```
/// use session_core::{ConfigError, SessionLayer};
/// use session_store_memory::MemoryStore;
///
/// let layer = SessionLayer::new(MemoryStore::default()).with_name("__Host-id").with_secure(false);
/// assert!(matches!(layer.check(), Err(ConfigError::NeedsSecure { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cookie name is not an RFC 6265 token (empty, or with spaces, separators or
    /// control characters).
    #[error("cookie name {name:?} is not a valid cookie token")]
    Name {
        /// The name.
        name: String,
    },
    /// The Path does not start with `/`, or holds `;` or control characters.
    #[error("cookie {name:?}: Path {path:?} must start with / and hold no ';' or control characters")]
    Path {
        /// The cookie name.
        name: String,
        /// The path.
        path: String,
    },
    /// The Domain is empty or not a host name.
    #[error("cookie {name:?}: Domain {domain:?} is not a host name")]
    Domain {
        /// The cookie name.
        name: String,
        /// The domain.
        domain: String,
    },
    /// A `__Host-` cookie with a Domain attribute.
    #[error("cookie {name:?}: the __Host- prefix forbids a Domain attribute")]
    HostPrefixDomain {
        /// The cookie name.
        name: String,
    },
    /// A `__Host-` cookie with a Path other than `/`.
    #[error("cookie {name:?}: the __Host- prefix requires Path=/")]
    HostPrefixPath {
        /// The cookie name.
        name: String,
    },
    /// Secure is off, but the name's prefix or an attribute requires it.
    #[error("cookie {name:?}: {what} requires Secure")]
    NeedsSecure {
        /// The cookie name.
        name: String,
        /// What requires it: `the __Host- prefix`, `the __Secure- prefix`, `Partitioned` or
        /// `SameSite=None`.
        what: &'static str,
    },
    /// An allowed origin of the CSRF layer is not `scheme://host[:port]`.
    #[error(
        "allowed origin {origin:?} must be scheme://host[:port], with no path (e.g. https://example.com)"
    )]
    Origin {
        /// The origin as configured.
        origin: String,
    },
}

impl CookieConfig {
    /// Checks the cookie-prefix rules of RFC 6265bis and the attributes' syntax.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let name = || self.name.clone();
        if self.name.is_empty()
            || !self.name.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        {
            return Err(ConfigError::Name { name: name() });
        }
        let attribute_ok = |v: &str| v.bytes().all(|b| b.is_ascii_graphic() && b != b';' || b == b' ');
        if !attribute_ok(&self.path) || !self.path.starts_with('/') {
            return Err(ConfigError::Path { name: name(), path: self.path.clone() });
        }
        if let Some(domain) = &self.domain {
            if domain.is_empty() || !attribute_ok(domain) || domain.contains(' ') {
                return Err(ConfigError::Domain { name: name(), domain: domain.clone() });
            }
        }
        let needs_secure = |what| Err(ConfigError::NeedsSecure { name: name(), what });
        if has_prefix(&self.name, "__Host-") {
            if self.domain.is_some() {
                return Err(ConfigError::HostPrefixDomain { name: name() });
            }
            if !self.secure {
                return needs_secure("the __Host- prefix");
            }
            if self.path != "/" {
                return Err(ConfigError::HostPrefixPath { name: name() });
            }
        } else if has_prefix(&self.name, "__Secure-") && !self.secure {
            return needs_secure("the __Secure- prefix");
        }
        if self.partitioned && !self.secure {
            return needs_secure("Partitioned");
        }
        if self.same_site == Some(SameSite::None) && !self.secure {
            return needs_secure("SameSite=None");
        }
        Ok(())
    }

    /// The `Set-Cookie` value for `value`; `max_age` `None` makes a browser-session cookie.
    pub(crate) fn set_cookie(&self, value: &str, max_age: Option<Duration>) -> HeaderValue {
        self.set_cookie_with(value.len(), |out| out.push_str(value), max_age)
    }

    /// Like `set_cookie`, with the value written straight into the header's buffer by
    /// `write_value` (at most `value_len` bytes): one allocation for the whole header.
    pub(crate) fn set_cookie_with(
        &self,
        value_len: usize,
        write_value: impl FnOnce(&mut String),
        max_age: Option<Duration>,
    ) -> HeaderValue {
        let max_age = max_age.map(max_age_seconds);
        let max_age_len = max_age.map_or(0, |secs| "; Max-Age=".len() + decimal_len(secs));
        // Exactly sized, so the header takes the buffer over without another allocation
        // (a larger one would cost `Bytes` a second allocation, a shrink a `realloc`).
        let len = self.name.len() + 1 + value_len + self.attributes_len() + max_age_len;
        let mut out = String::with_capacity(len);
        out.push_str(&self.name);
        out.push('=');
        write_value(&mut out);
        self.push_attributes(&mut out);
        if let Some(secs) = max_age {
            out.push_str("; Max-Age=");
            push_decimal(&mut out, secs);
        }
        debug_assert_eq!(out.len(), len, "the Set-Cookie length was computed wrongly");
        to_header(out)
    }

    /// A `Set-Cookie` that removes the cookie, repeating its attributes.
    pub(crate) fn removal(&self) -> HeaderValue {
        let mut out = String::with_capacity(self.name.len() + 128);
        out.push_str(&self.name);
        out.push('=');
        self.push_attributes(&mut out);
        out.push_str("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        to_header(out)
    }

    /// Written by hand rather than through `cookie::Cookie`: session values are base64url,
    /// which needs no escaping, and this runs on every response that sets the cookie.
    fn push_attributes(&self, out: &mut String) {
        for part in self.attribute_parts() {
            out.push_str(part);
        }
    }

    /// The attributes' pieces, in order (absent ones empty).
    fn attribute_parts(&self) -> [&str; 8] {
        let (domain_key, domain) = self.domain.as_deref().map_or(("", ""), |d| ("; Domain=", d));
        [
            if self.http_only { "; HttpOnly" } else { "" },
            match self.same_site {
                Some(SameSite::Strict) => "; SameSite=Strict",
                Some(SameSite::Lax) => "; SameSite=Lax",
                Some(SameSite::None) => "; SameSite=None",
                None => "",
            },
            if self.secure { "; Secure" } else { "" },
            if self.partitioned { "; Partitioned" } else { "" },
            "; Path=",
            &self.path,
            domain_key,
            domain,
        ]
    }

    /// The length `push_attributes` writes.
    fn attributes_len(&self) -> usize {
        self.attribute_parts().iter().map(|p| p.len()).sum()
    }

    /// The raw value of our cookie in the request, if it is there exactly once, is
    /// printable ASCII and no longer than `max_len`. Anything else is treated as no cookie.
    ///
    /// Works on bytes: every request with a cookie comes through here, and other
    /// applications' cookies in the same header may hold any bytes.
    pub(crate) fn find(&self, headers: &HeaderMap, max_len: usize) -> Option<CookieText> {
        let name = self.name.as_bytes();
        let mut found: Option<&[u8]> = None;
        for header in headers.get_all(COOKIE) {
            let mut rest = header.as_bytes();
            while !rest.is_empty() {
                // `memchr`, not `split`: every request with a cookie comes through here, and
                // the byte-at-a-time split cost about 300 instructions per request.
                let pair = match memchr::memchr(b';', rest) {
                    Some(i) => {
                        let pair = &rest[..i];
                        rest = &rest[i + 1..];
                        pair
                    }
                    None => std::mem::take(&mut rest),
                };
                let pair = pair.trim_ascii();
                let Some(rest) = pair.strip_prefix(name) else { continue };
                let Some(value) = rest.trim_ascii_start().strip_prefix(b"=") else { continue };
                if found.is_some() {
                    // Two cookies of one name: one may have been planted by a sibling
                    // domain. Trust neither.
                    return None;
                }
                found = Some(value.trim_ascii());
            }
        }
        let value = found?;
        // Printable ASCII (0x21 to 0x7e), in a form the compiler vectorizes.
        if value.is_empty() || value.len() > max_len || !value.iter().all(|&b| b.wrapping_sub(0x21) < 0x5e) {
            return None;
        }
        CookieText::new(value)
    }
}

/// Longest cookie value kept inline: every server-side id form (plain 22, sealed 59,
/// signed 66 characters) fits, so a request with a session cookie allocates nothing for it.
const INLINE_COOKIE: usize = 72;

/// The session cookie's value as the request sent it (printable ASCII, checked by
/// [`CookieConfig::find`]): short values inline, longer ones (client-side sessions) boxed.
/// `Debug` shows its length, never its text.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum CookieText {
    Inline(u8, [u8; INLINE_COOKIE]),
    Boxed(Box<str>),
}

impl CookieText {
    fn new(value: &[u8]) -> Option<Self> {
        if value.len() <= INLINE_COOKIE {
            let mut buf = [0; INLINE_COOKIE];
            buf[..value.len()].copy_from_slice(value);
            // Lossless: the length is at most INLINE_COOKIE.
            #[allow(clippy::cast_possible_truncation)]
            return Some(Self::Inline(value.len() as u8, buf));
        }
        std::str::from_utf8(value).ok().map(|s| Self::Boxed(s.into()))
    }
}

impl CookieText {
    /// The value's bytes, without the UTF-8 check `Deref` makes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline(len, buf) => &buf[..usize::from(*len)],
            Self::Boxed(text) => text.as_bytes(),
        }
    }
}

impl std::ops::Deref for CookieText {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            // Printable ASCII (checked by `find`) is UTF-8, so this never falls back.
            Self::Inline(len, buf) => std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or_default(),
            Self::Boxed(text) => text,
        }
    }
}

impl std::fmt::Debug for CookieText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CookieText({} bytes)", self.len())
    }
}

/// The number of decimal digits of `n`.
fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Appends `n` in decimal, without the formatting machinery.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // A digit: the truncation is the point.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (n % 10) as u8;
        digits[i] = b'0' + digit;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

fn to_header(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("cookie attributes are validated when the layer is built")
}

/// How a server-side session's id is made and carried in its cookie, for a layer that
/// shares its cookie and store with another framework (the built-in formats are chosen
/// with [`SessionLayer::with_signed`](crate::SessionLayer::with_signed) and
/// [`with_private`](crate::SessionLayer::with_private); plain by default). Given to
/// [`SessionLayer::with_id_format`](crate::SessionLayer::with_id_format).
///
/// ```
/// use session_core::{Id, IdFormat, SessionLayer};
/// use session_store_memory::MemoryStore;
///
/// /// Ids of 32 random bytes in hex, their own record id (as some frameworks key them).
/// #[derive(Debug)]
/// struct Hex;
///
/// impl IdFormat for Hex {
///     fn generate(&self) -> Id {
///         let mut bytes = [0; 32];
///         getrandom::fill(&mut bytes).expect("no OS randomness");
///         Id::from_raw(bytes)
///     }
///     fn encode(&self, _name: &str, id: &Id) -> String {
///         id.raw().map(|b| b.iter().map(|x| format!("{x:02x}")).collect()).unwrap_or_default()
///     }
///     fn decode(&self, _name: &str, value: &str) -> Option<(Id, bool)> {
///         let mut bytes = [0; 32];
///         for (i, b) in bytes.iter_mut().enumerate() {
///             *b = u8::from_str_radix(value.get(2 * i..2 * i + 2)?, 16).ok()?;
///         }
///         (value.len() == 64).then(|| (Id::from_raw(bytes), false))
///     }
///     fn max_len(&self) -> usize {
///         64
///     }
/// }
///
/// let layer = SessionLayer::new(MemoryStore::default()).with_id_format(Hex);
/// # let _ = layer;
/// ```
pub trait IdFormat: fmt::Debug + Send + Sync + 'static {
    /// A fresh id, for a new session or an id change: unguessable (at least 128 bits from
    /// the operating system's CSPRNG).
    fn generate(&self) -> Id;

    /// The cookie value for `id` (an id `generate` or `decode` made): only characters
    /// allowed in a cookie value.
    fn encode(&self, name: &str, id: &Id) -> String;

    /// The id in cookie `value`, and whether to issue the cookie again even if nothing
    /// changed (a fallback key made it). `None` for anything this format did not make: a
    /// garbage or forged cookie is no session. Must not panic on any input.
    fn decode(&self, name: &str, value: &str) -> Option<(Id, bool)>;

    /// The longest cookie value this format makes; longer values are ignored unread.
    fn max_len(&self) -> usize;
}

/// How a server-side session's id travels in its cookie.
#[derive(Debug, Clone)]
pub(crate) enum IdCodec {
    /// The id as is: 128 random bits are unguessable already.
    Plain,
    /// `id.tag`: HMAC-SHA256 over the cookie name and id, so forged ids never reach a store.
    Signed(KeyRing),
    /// The id sealed with AES-256-GCM, the cookie name as associated data.
    Private(KeyRing),
    /// The app's own ids and format.
    Custom(Arc<dyn IdFormat>),
}

const SIGNED_LEN: usize = ID_TEXT_LEN + 1 + 43;
const PRIVATE_LEN: usize = 59; // base64url of 16 + 28 bytes

impl IdCodec {
    /// The longest cookie value this codec produces (the built-in ones make only this length).
    pub(crate) fn cookie_len(&self) -> usize {
        match self {
            Self::Plain => ID_TEXT_LEN,
            Self::Signed(_) => SIGNED_LEN,
            Self::Private(_) => PRIVATE_LEN,
            Self::Custom(format) => format.max_len(),
        }
    }

    /// A fresh id.
    pub(crate) fn generate(&self) -> Id {
        match self {
            Self::Custom(format) => format.generate(),
            _ => Id::random(),
        }
    }

    #[cfg(test)]
    pub(crate) fn encode(&self, name: &str, id: &Id) -> String {
        let mut out = String::with_capacity(self.cookie_len());
        self.encode_into(name, id, &mut out);
        out
    }

    /// The `Set-Cookie` header carrying `id`.
    pub(crate) fn set_cookie(
        &self,
        cookie: &CookieConfig,
        id: &Id,
        max_age: Option<Duration>,
    ) -> HeaderValue {
        match self {
            Self::Custom(format) => cookie.set_cookie(&format.encode(&cookie.name, id), max_age),
            // The built-in formats write the value straight into the header's buffer.
            _ => cookie.set_cookie_with(
                self.cookie_len(),
                |out| self.encode_into(&cookie.name, id, out),
                max_age,
            ),
        }
    }

    /// Appends the cookie value for `id` to `out` (`cookie_len` bytes).
    pub(crate) fn encode_into(&self, name: &str, id: &Id, out: &mut String) {
        match self {
            Self::Plain => id.push_text(out),
            Self::Signed(ring) => {
                let start = out.len();
                id.push_text(out);
                let tag = ring.sign(name, &out.as_bytes()[start..]);
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(tag, out);
            }
            Self::Private(ring) => URL_SAFE_NO_PAD.encode_string(ring.seal(name, id.as_bytes()), out),
            Self::Custom(format) => out.push_str(&format.encode(name, id)),
        }
    }

    /// The id in a cookie value, and whether it was made with a fallback key (so it
    /// should be re-issued under the primary).
    /// Works on bytes: the common plain form needs no UTF-8 check (the cookie is printable
    /// ASCII, checked by `CookieConfig::find`).
    pub(crate) fn decode(&self, name: &str, value: &[u8]) -> Option<(Id, bool)> {
        match self {
            Self::Custom(format) if value.len() <= format.max_len() => {
                format.decode(name, std::str::from_utf8(value).ok()?)
            }
            // The built-in formats make one length only: anything else is not theirs.
            _ if value.len() != self.cookie_len() => None,
            Self::Custom(_) => None,
            Self::Plain => Id::from_text(value).map(|id| (id, false)),
            Self::Signed(ring) => {
                let dot = memchr::memchr(b'.', value)?;
                let (text, tag) = (&value[..dot], &value[dot + 1..]);
                let mut raw = [0u8; SIG_LEN + 2];
                let n = URL_SAFE_NO_PAD.decode_slice(tag, &mut raw).ok()?;
                let key = ring.verify(name, text, &raw[..n])?;
                Id::from_text(text).map(|id| (id, key != 0))
            }
            Self::Private(ring) => {
                let mut raw = [0u8; 16 + SEAL_OVERHEAD + 2];
                let n = URL_SAFE_NO_PAD.decode_slice(value, &mut raw).ok()?;
                let (plain, key) = ring.open(name, &raw[..n])?;
                Id::from_bytes(&plain).map(|id| (id, key != 0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn decimals_are_written_like_display() {
        for n in [0, 7, 10, 99, 100, 86_400, 1_209_600, u64::MAX] {
            let mut out = String::from("x=");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x={n}"));
            assert_eq!(decimal_len(n), n.to_string().len());
        }
    }

    #[test]
    fn finds_exactly_one_cookie() {
        let c = CookieConfig::default();
        assert_eq!(c.find(&headers(&[b"a=1; id=abc; b=2"]), 100).as_deref(), Some("abc"));
        assert_eq!(c.find(&headers(&[b"a=1", b"id=xyz"]), 100).as_deref(), Some("xyz"));
        assert_eq!(c.find(&headers(&[b"id=abc; id=def"]), 100), None, "duplicates");
        assert_eq!(c.find(&headers(&[b"id=a", b"id=b"]), 100), None, "duplicates");
        assert_eq!(c.find(&headers(&[b"id=toolong"]), 3), None);
        assert_eq!(c.find(&headers(&[b"id="]), 100), None);
        assert_eq!(c.find(&headers(&[b"ids=abc"]), 100), None);
        assert_eq!(c.find(&headers(&[b"id=\xff\xfe"]), 100), None, "non-UTF-8");
        assert_eq!(c.find(&headers(&[b"id=a b"]), 100), None, "not a token");
        assert_eq!(
            c.find(&headers(&[b"other=\xff\xfe; id=abc"]), 100).as_deref(),
            Some("abc"),
            "another app's odd cookie does not hide ours"
        );
        assert_eq!(c.find(&headers(&[b"  id = abc ;x=1"]), 100).as_deref(), Some("abc"));
    }

    #[test]
    fn max_age_rounds_up_and_never_deletes_a_live_session() {
        assert_eq!(max_age_seconds(Duration::milliseconds(400)), 1);
        assert_eq!(max_age_seconds(Duration::nanoseconds(1)), 1);
        assert_eq!(max_age_seconds(Duration::seconds(3600) - Duration::microseconds(3)), 3600);
        assert_eq!(max_age_seconds(Duration::seconds(2)), 2);
        assert_eq!(max_age_seconds(Duration::seconds(1) + Duration::nanoseconds(1)), 2);
        assert_eq!(max_age_seconds(Duration::ZERO), 0);
        assert_eq!(max_age_seconds(-Duration::seconds(5)), 0);
        assert_eq!(max_age_seconds(Duration::MAX), i64::MAX.unsigned_abs());
    }

    #[test]
    fn prefix_rules() {
        let host = |f: fn(&mut CookieConfig)| {
            let mut c = CookieConfig { name: "__Host-s".into(), ..CookieConfig::default() };
            f(&mut c);
            c.check()
        };
        let name = || "__Host-s".to_owned();
        assert_eq!(host(|_| {}), Ok(()));
        assert_eq!(
            host(|c| c.domain = Some("example.com".into())),
            Err(ConfigError::HostPrefixDomain { name: name() })
        );
        assert_eq!(
            host(|c| c.secure = false),
            Err(ConfigError::NeedsSecure { name: name(), what: "the __Host- prefix" })
        );
        assert_eq!(host(|c| c.path = "/app".into()), Err(ConfigError::HostPrefixPath { name: name() }));
        // Browsers match prefixes without regard to case.
        for name in ["__host-s", "__HOST-s", "__hOsT-s"] {
            let c = CookieConfig { name: name.into(), secure: false, ..CookieConfig::default() };
            assert!(c.check().unwrap_err().to_string().contains("__Host-"), "{name}");
        }
        for name in ["__secure-s", "__SECURE-s"] {
            let c = CookieConfig { name: name.into(), secure: false, ..CookieConfig::default() };
            assert!(c.check().unwrap_err().to_string().contains("__Secure-"), "{name}");
        }
        let bad = CookieConfig { name: "a b".into(), ..CookieConfig::default() };
        assert_eq!(bad.check(), Err(ConfigError::Name { name: "a b".into() }));
        let bad_path = CookieConfig { path: "/a;b=c".into(), ..CookieConfig::default() };
        assert!(matches!(bad_path.check(), Err(ConfigError::Path { .. })));
        let bad_domain = CookieConfig { domain: Some("a.com; x".into()), ..CookieConfig::default() };
        assert!(matches!(bad_domain.check(), Err(ConfigError::Domain { .. })));
        let none_insecure =
            CookieConfig { same_site: Some(SameSite::None), secure: false, ..CookieConfig::default() };
        assert_eq!(
            none_insecure.check().unwrap_err().to_string(),
            "cookie \"id\": SameSite=None requires Secure"
        );
    }

    #[test]
    fn removal_repeats_attributes() {
        let c = CookieConfig {
            domain: Some("example.com".into()),
            path: "/app".into(),
            ..CookieConfig::default()
        };
        let v = c.removal().to_str().unwrap().to_owned();
        for part in
            ["id=", "Path=/app", "Domain=example.com", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=0"]
        {
            assert!(v.contains(part), "{v} lacks {part}");
        }
    }

    #[test]
    fn id_codecs_round_trip_and_reject_forgery() {
        let ring = KeyRing::new(Key::generate());
        for codec in [IdCodec::Plain, IdCodec::Signed(ring.clone()), IdCodec::Private(ring)] {
            let id = Id::random();
            let value = codec.encode("id", &id);
            assert_eq!(value.len(), codec.cookie_len());
            assert_eq!(codec.decode("id", value.as_bytes()), Some((id, false)));
            if !matches!(codec, IdCodec::Plain) {
                assert_eq!(codec.decode("other", value.as_bytes()), None, "name is bound");
                let mut forged = value.into_bytes();
                forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
                assert_eq!(codec.decode("id", &forged), None);
            }
        }
    }
}
