//! What every request's session needs from the layer.

use std::sync::Arc;

use http::StatusCode;
use time::Duration;

use super::WriteQueue;
use crate::client::ClientCodec;
use crate::clock::Clock;
use crate::cookie::{CookieConfig, IdCodec, MAX_COOKIE_BYTES};
use crate::{Expiry, SessionManager, SessionStore};

/// Where sessions live.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Store(Arc<dyn SessionStore>),
    Client(ClientCodec),
}

/// Everything a request's [`Session`](crate::Session) needs from the layer.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) backend: Backend,
    pub(crate) cookie: CookieConfig,
    pub(crate) id_codec: IdCodec,
    pub(crate) expiry: Expiry,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) error_status: StatusCode,
    /// Shared by every clone of the layer, so sessions and the app see one event stream.
    pub(crate) manager: SessionManager,
    /// Coalesces the write-backs of one session in this process (see `queue`).
    pub(crate) queue: Arc<WriteQueue>,
    /// What every expiry decision reads the time from.
    pub(crate) clock: Arc<dyn Clock>,
}

impl Config {
    /// The layer's current time.
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// The longest cookie value worth looking at; anything longer is not ours.
    pub(crate) fn max_cookie_len(&self) -> usize {
        match self.backend {
            Backend::Store(_) => self.id_codec.cookie_len(),
            Backend::Client(_) => MAX_COOKIE_BYTES,
        }
    }
}
