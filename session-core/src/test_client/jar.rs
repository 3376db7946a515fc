//! The cookie jar: what a browser keeps from `Set-Cookie` and sends back in `Cookie`.

use std::fmt;

use http::HeaderValue;
use time::OffsetDateTime;

use crate::store::now;

/// Cookies as a browser keeps them for one host: keyed by name and `Path`, dropped when
/// their `Max-Age` or `Expires` passes or a response removes them, and sent only to
/// requests under their `Path` (longest path first). `Domain` is ignored (one host);
/// `Secure` cookies are sent, as browsers do to `localhost`.
///
/// `Debug` shows cookie names, never values.
#[derive(Clone, Default)]
pub struct CookieJar {
    cookies: Vec<Stored>,
}

#[derive(Clone)]
struct Stored {
    name: String,
    value: String,
    path: String,
    /// `None`: a browser-session cookie.
    expires: Option<OffsetDateTime>,
}

impl Stored {
    fn live(&self, at: OffsetDateTime) -> bool {
        self.expires.is_none_or(|e| e > at)
    }
}

impl CookieJar {
    /// An empty jar.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of the live cookie `name` (the one with the longest `Path` when there are
    /// several).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        let at = now();
        self.cookies
            .iter()
            .filter(|c| c.name == name && c.live(at))
            .max_by_key(|c| c.path.len())
            .map(|c| c.value.as_str())
    }

    /// Sets cookie `name` for every path, as if a response had sent `name=value; Path=/`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.store(Stored { name: name.into(), value: value.into(), path: "/".to_owned(), expires: None });
    }

    /// Removes every cookie named `name`.
    pub fn remove(&mut self, name: &str) {
        self.cookies.retain(|c| c.name != name);
    }

    /// Forgets every browser-session cookie (no `Max-Age` or `Expires`), as closing the
    /// browser does.
    pub fn end_browser_session(&mut self) {
        self.cookies.retain(|c| c.expires.is_some());
    }

    /// The names of the live cookies, in the order they were first set.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        let at = now();
        self.cookies.iter().filter(|c| c.live(at)).map(|c| c.name.as_str()).collect()
    }

    /// Whether no live cookie is left.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names().is_empty()
    }

    /// The `Cookie` header a browser sends to `path`, if any cookie applies.
    #[must_use]
    pub fn header_for(&self, path: &str) -> Option<String> {
        let at = now();
        let mut matching: Vec<&Stored> =
            self.cookies.iter().filter(|c| c.live(at) && path_matches(&c.path, path)).collect();
        // RFC 6265 5.4: longer paths first; the sort is stable, so older cookies come first.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        if matching.is_empty() {
            return None;
        }
        Some(matching.iter().map(|c| format!("{}={}", c.name, c.value)).collect::<Vec<_>>().join("; "))
    }

    /// Takes in one `Set-Cookie` of a response to a request for `request_path`. A value
    /// that is not a cookie is ignored, as browsers do.
    pub fn apply(&mut self, set_cookie: &HeaderValue, request_path: &str) {
        let Ok(text) = set_cookie.to_str() else { return };
        let Ok(cookie) = cookie::Cookie::parse(text) else { return };
        let at = now();
        // Max-Age wins over Expires (RFC 6265 5.3 step 3).
        let expires = match (cookie.max_age(), cookie.expires_datetime()) {
            (Some(age), _) => Some(at.saturating_add(age)),
            (None, Some(when)) => Some(when),
            (None, None) => None,
        };
        let path = match cookie.path() {
            Some(p) if p.starts_with('/') => p.to_owned(),
            _ => default_path(request_path),
        };
        let stored =
            Stored { name: cookie.name().to_owned(), value: cookie.value().to_owned(), path, expires };
        if stored.live(at) {
            self.store(stored);
        } else {
            self.cookies.retain(|c| !(c.name == stored.name && c.path == stored.path));
        }
        self.cookies.retain(|c| c.live(at));
    }

    fn store(&mut self, cookie: Stored) {
        match self.cookies.iter_mut().find(|c| c.name == cookie.name && c.path == cookie.path) {
            Some(old) => *old = cookie,
            None => self.cookies.push(cookie),
        }
    }
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar").field("names", &self.names()).finish_non_exhaustive()
    }
}

/// RFC 6265 5.1.4: does a cookie with `cookie_path` go to `path`?
fn path_matches(cookie_path: &str, path: &str) -> bool {
    path == cookie_path
        || (path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

/// RFC 6265 5.1.4: the directory of the request path.
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(jar: &mut CookieJar, header: &str, path: &str) {
        jar.apply(&HeaderValue::from_str(header).unwrap(), path);
    }

    #[test]
    fn keeps_replaces_and_removes_cookies_by_name() {
        let mut jar = CookieJar::new();
        set(&mut jar, "a=1; Path=/; HttpOnly", "/");
        set(&mut jar, "b=2; Path=/; Max-Age=60", "/");
        assert_eq!(jar.header_for("/x").as_deref(), Some("a=1; b=2"));
        set(&mut jar, "a=3; Path=/", "/");
        assert_eq!((jar.get("a"), jar.get("b")), (Some("3"), Some("2")));
        set(&mut jar, "a=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/");
        assert_eq!(jar.get("a"), None);
        set(&mut jar, "b=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/");
        assert!(jar.is_empty(), "{jar:?}");
        assert_eq!(jar.header_for("/"), None);
    }

    #[test]
    fn honours_paths_and_lifetimes() {
        let mut jar = CookieJar::new();
        set(&mut jar, "s=app; Path=/app", "/");
        set(&mut jar, "s=root; Path=/", "/");
        set(&mut jar, "d=dir", "/docs/page");
        assert_eq!(jar.header_for("/app/x").as_deref(), Some("s=app; s=root"));
        assert_eq!(jar.header_for("/apple").as_deref(), Some("s=root"));
        assert_eq!(jar.header_for("/docs").as_deref(), Some("d=dir; s=root"));
        assert_eq!(jar.get("s"), Some("app"));
        set(&mut jar, "gone=1; Max-Age=600; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/");
        assert_eq!(jar.get("gone"), Some("1"), "Max-Age wins over Expires");
        set(&mut jar, "old=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/");
        assert_eq!(jar.get("old"), None);
        set(&mut jar, "later=1; Expires=Fri, 01 Jan 2100 00:00:00 GMT", "/");
        jar.end_browser_session();
        assert_eq!(jar.names(), vec!["gone", "later"]);
        set(&mut jar, "not a cookie", "/");
        assert_eq!(jar.names().len(), 2);
    }

    #[test]
    fn debug_shows_no_values() {
        let mut jar = CookieJar::new();
        jar.insert("id", "secret-value");
        let shown = format!("{jar:?}");
        assert!(shown.contains("id") && !shown.contains("secret-value"), "{shown}");
    }
}
