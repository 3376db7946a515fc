//! What one request knows about CSRF: the anonymous cookie it carried, and what the
//! handler rendered (read back by the response future).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use http::HeaderMap;

use super::layer::Config;
use super::token::{self, NONCE_LEN};
use crate::session::csrf::Binding;

use crate::{Error, Session};

/// Put in the request's extensions by [`CsrfService`](super::CsrfService); cheap to clone.
#[derive(Clone)]
pub(crate) struct RequestCsrf(Arc<Inner>);

struct Inner {
    config: Arc<Config>,
    /// The nonce of the anonymous cookie the request carried.
    cookie: Option<[u8; NONCE_LEN]>,
    /// Whether a `Session` was in the request when the layer saw it (else the layers are
    /// in the wrong order, or there is no session layer).
    session_seen: bool,
    /// A nonce drawn for this response's anonymous cookie.
    issued: Mutex<Option<[u8; NONCE_LEN]>>,
    /// Whether a token was rendered: the response is then kept out of shared caches.
    rendered: AtomicBool,
}

impl RequestCsrf {
    pub(crate) fn new(config: Arc<Config>, headers: &HeaderMap, session_seen: bool) -> Self {
        // Longer values are not ours (a nonce is 43 characters).
        let cookie = config.cookie.find(headers, 64).and_then(|text| token::parse_nonce(&text));
        Self(Arc::new(Inner {
            config,
            cookie,
            session_seen,
            issued: Mutex::new(None),
            rendered: AtomicBool::new(false),
        }))
    }

    pub(crate) fn config(&self) -> &Config {
        &self.0.config
    }

    pub(crate) fn cookie(&self) -> Option<[u8; NONCE_LEN]> {
        self.0.cookie
    }

    pub(crate) fn session_seen(&self) -> bool {
        self.0.session_seen
    }

    pub(crate) fn issued(&self) -> Option<[u8; NONCE_LEN]> {
        *self.0.issued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn rendered(&self) -> bool {
        self.0.rendered.load(Ordering::Relaxed)
    }

    /// A freshly masked token for this visitor: bound to their session if they have one,
    /// else to the anonymous cookie (drawn now, and sent with the response, if absent).
    pub(crate) async fn render(&self, session: Option<&Session>) -> Result<String, Error> {
        self.0.rendered.store(true, Ordering::Relaxed);
        let keys = &self.0.config.keys;
        if let Some(session) = session {
            match session.csrf_binding().await? {
                Binding::Record(rid, _) => return Ok(token::mask(&token::record_secret(keys, &rid))),
                Binding::Client(..) => return Ok(token::mask(&session.csrf_client_secret().await?)),
                Binding::None => {}
            }
        }
        let nonce = self.0.cookie.unwrap_or_else(|| {
            *self.0.issued.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(token::random)
        });
        Ok(token::mask(&token::anonymous_secret(keys, &nonce, time::OffsetDateTime::now_utc())))
    }
}

impl std::fmt::Debug for RequestCsrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestCsrf").finish_non_exhaustive()
    }
}
