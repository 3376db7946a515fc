use std::sync::Arc;

use http::HeaderName;
use time::Duration;
use tower_layer::Layer;

use super::CsrfService;
use crate::cookie::CookieConfig;
use crate::{ConfigError, KeyRing, SameSite};

/// Refuses state-changing requests that do not prove they come from the app. See the
/// [module docs](super) for what is checked, the layer order and an example.
///
/// # Panics
///
/// Applying the layer panics when the anonymous cookie's attributes break a browser rule
/// (as [`SessionLayer`](crate::SessionLayer) does), or when an allowed origin is not of the
/// form `scheme://host[:port]`.
#[derive(Debug, Clone)]
pub struct CsrfLayer {
    config: Arc<Config>,
}

/// What every request needs from the layer.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) keys: KeyRing,
    /// Lower case, no trailing slash.
    pub(crate) origins: Vec<String>,
    pub(crate) header: HeaderName,
    pub(crate) field: String,
    pub(crate) max_body: usize,
    pub(crate) lifetime: Duration,
    pub(crate) cookie: CookieConfig,
}

impl CsrfLayer {
    /// CSRF protection with tokens signed by `keys` (use a key of its own, or the session
    /// layer's: every use has its own context). No origin is allowed until you add one.
    #[must_use]
    pub fn new(keys: KeyRing) -> Self {
        let cookie = CookieConfig { name: "__Host-csrf".to_owned(), ..CookieConfig::default() };
        Self {
            config: Arc::new(Config {
                keys,
                origins: Vec::new(),
                header: HeaderName::from_static("x-csrf-token"),
                field: "csrf_token".to_owned(),
                max_body: 64 * 1024,
                lifetime: Duration::hours(2),
                cookie,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Allows requests whose `Origin` is `origin` (e.g. `https://app.example`). Browsers
    /// send `Origin` with every POST, so list every origin your pages are served from.
    #[must_use]
    pub fn with_allowed_origin(mut self, origin: impl Into<String>) -> Self {
        let origin = origin.into().trim_end_matches('/').to_ascii_lowercase();
        self.config_mut().origins.push(origin);
        self
    }

    /// The header scripts send the token in (default `x-csrf-token`).
    #[must_use]
    pub fn with_header_name(mut self, name: HeaderName) -> Self {
        self.config_mut().header = name;
        self
    }

    /// The form field forms send the token in (default `csrf_token`).
    #[must_use]
    pub fn with_field_name(mut self, name: impl Into<String>) -> Self {
        self.config_mut().field = name.into();
        self
    }

    /// The largest form body read to find the field (default 64 KiB); a larger one is
    /// refused with 413. Requests that send the token in the header are not read.
    #[must_use]
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.config_mut().max_body = bytes;
        self
    }

    /// How long a token rendered to a visitor without a session stays valid (default
    /// 2 hours). Session-bound tokens live as long as the session's id.
    #[must_use]
    pub fn with_anonymous_lifetime(mut self, lifetime: Duration) -> Self {
        self.config_mut().lifetime = lifetime;
        self
    }

    /// The name of the anonymous visitor's cookie (default `__Host-csrf`).
    #[must_use]
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.config_mut().cookie.name = name.into();
        self
    }

    /// The anonymous cookie's Secure attribute (default true).
    ///
    /// # Security
    ///
    /// Without Secure (and the `__Host-` prefix it allows) a network attacker can plant
    /// a cookie of their own over plain HTTP and submit forms with a token that matches
    /// it. Turn it off only for local development over `http://`, with another name.
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.config_mut().cookie.secure = secure;
        self
    }

    /// The anonymous cookie's SameSite attribute (default `Lax`).
    ///
    /// # Security
    ///
    /// `SameSite::None` lets other sites send the cookie along; the token still protects,
    /// but one defence fewer stands.
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.config_mut().cookie.same_site = Some(same_site);
        self
    }

    /// Whether browsers would keep this layer's cookie and every allowed origin is well
    /// formed: the checks that applying the layer panics on, as an error instead.
    ///
    /// # Errors
    ///
    /// The first problem found.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.config.cookie.check()?;
        self.config.origins.iter().try_for_each(|o| check_origin(o))
    }
}

/// Why an allowed origin is not `scheme://host[:port]`.
fn check_origin(origin: &str) -> Result<(), ConfigError> {
    let bad = origin.split_once("://").is_none_or(|(scheme, host)| {
        scheme.is_empty() || host.is_empty() || host.contains(['/', '?', '#', '@', ' '])
    });
    if bad {
        return Err(ConfigError::Origin { origin: origin.to_owned() });
    }
    Ok(())
}

impl<S> Layer<S> for CsrfLayer {
    type Service = CsrfService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        if let Err(problem) = self.check() {
            panic!("invalid CsrfLayer configuration: {problem}");
        }
        CsrfService::new(inner, Arc::clone(&self.config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        assert_eq!(check_origin("https://app.example"), Ok(()));
        assert_eq!(check_origin("http://localhost:3000"), Ok(()));
        assert_eq!(check_origin("app.example"), Err(ConfigError::Origin { origin: "app.example".into() }));
        assert!(check_origin("https://app.example/path").is_err());
        assert!(check_origin("://app.example").is_err());
    }

    #[test]
    #[should_panic(expected = "__Host- prefix requires Secure")]
    fn an_insecure_host_cookie_panics() {
        let _ = CsrfLayer::new(KeyRing::new(crate::Key::generate())).with_secure(false).layer(());
    }
}
