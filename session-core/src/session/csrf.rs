//! What the CSRF protection needs from a session (feature `csrf`): which secret a token is
//! bound to, and the two reserved keys it may keep.

use bytes::Bytes;

use super::state::{Fate, Load};
use super::{Backend, Session};
use crate::codec::{decode_value, encode_value};
use crate::{Error, RecordId};

/// Client-side mode: the session's random CSRF secret (server-side mode derives it from
/// the record digest and stores nothing).
pub(crate) const SECRET_KEY: &str = "session_core.csrf";
/// The anonymous CSRF cookie's nonce, kept by a session that began in a response that
/// carried it, so forms rendered before the session existed still work (see `csrf`).
pub(crate) const ADOPTED_KEY: &str = "session_core.csrf_anon";

/// What binds a CSRF token to this request's session. (No `Debug`: it holds secrets.)
pub(crate) enum Binding {
    /// No live session: anonymous (double-submit cookie) tokens.
    None,
    /// A live server-side session: its record digest.
    Record(RecordId, Option<Bytes>),
    /// A live client-side session: its stored secret, if it has one yet.
    Client(Option<Bytes>, Option<Bytes>),
}

impl Binding {
    /// The adopted anonymous nonce, if the session holds one.
    pub(crate) fn adopted(&self) -> Option<&[u8]> {
        match self {
            Self::None => None,
            Self::Record(_, adopted) | Self::Client(_, adopted) => adopted.as_deref(),
        }
    }
}

/// What the end of a request means for the anonymous CSRF cookie.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Nothing to do.
    Unchanged,
    /// The session changes id (a login): anonymous tokens must stop working.
    Cycled,
    /// A session begins with this response, without an id change: it may adopt the nonce.
    Begins,
}

impl Session {
    /// Loads the session and says what a CSRF token of this request must be bound to.
    pub(crate) async fn csrf_binding(&self) -> Result<Binding, Error> {
        let st = self.load().await?;
        if st.fate == Fate::Ended {
            return Ok(Binding::None);
        }
        let raw = |key: &str| st.get(key).and_then(|b| decode_value::<serde_bytes::ByteBuf>(b).ok());
        let adopted = raw(ADOPTED_KEY).map(|b| Bytes::from(b.into_vec()));
        Ok(match (&self.config().backend, st.rid, st.meta) {
            (Backend::Store(_), Some(rid), _) => Binding::Record(rid, adopted),
            (Backend::Client(_), _, Some(_)) => {
                Binding::Client(raw(SECRET_KEY).map(|b| Bytes::from(b.into_vec())), adopted)
            }
            _ => Binding::None,
        })
    }

    /// The client-side session's CSRF secret, drawn and stored (in the cookie) on first use.
    ///
    /// # Errors
    ///
    /// As [`Session::insert`].
    pub(crate) async fn csrf_client_secret(&self) -> Result<Bytes, Error> {
        let mut st = self.load().await?;
        if let Some(b) = st.get(SECRET_KEY).and_then(|b| decode_value::<serde_bytes::ByteBuf>(b).ok()) {
            return Ok(Bytes::from(b.into_vec()));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the OS random number generator failed");
        self.put_raw(&mut st, SECRET_KEY, &secret)?;
        Ok(Bytes::copy_from_slice(&secret))
    }

    /// Called by the CSRF layer when the handler has answered, before the write-back.
    pub(crate) fn csrf_ending(&self) -> Ending {
        let st = self.state();
        match (st.load, st.fate) {
            (Load::Done, Fate::Cycled) => Ending::Cycled,
            (Load::Done, Fate::Kept) if st.meta.is_none() && !st.base.is_empty() => Ending::Begins,
            _ => Ending::Unchanged,
        }
    }

    /// Keeps the anonymous cookie's nonce in a session that begins with this response.
    pub(crate) fn csrf_adopt(&self, nonce: &[u8]) {
        let mut st = self.state();
        // A session too large to take it (client-side) simply does not adopt: its forms
        // rendered before it began then need a reload, which is safe.
        let _ = self.put_raw(&mut st, ADOPTED_KEY, nonce);
    }

    fn put_raw(&self, st: &mut super::State, key: &str, value: &[u8]) -> Result<(), Error> {
        let bytes = encode_value(serde_bytes::Bytes::new(value))
            .map_err(|source| Error::Encode { key: key.to_owned(), source })?;
        self.write(st, key, Some(bytes), None)
    }

    /// Forgets both CSRF keys: called by `cycle_id`, so tokens rendered before stop working.
    pub(super) fn csrf_forget(st: &mut super::State) {
        st.write(SECRET_KEY, None, false, None);
        st.write(ADOPTED_KEY, None, false, None);
    }
}
