//! The per-request session handle: a typed "magic dictionary".
//!
//! ```
//! use axum::{routing::post, Router};
//! use session_core::{Session, SessionLayer};
//! use session_store_memory::MemoryStore;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct Cart { items: Vec<String> }
//!
//! async fn add(session: Session) -> Result<String, session_core::Error> {
//!     // In-place mutation is seen: the key is written only if its bytes changed.
//!     session.update("cart", |cart: &mut Cart| cart.items.push("apple".into())).await?;
//!     let cart: Cart = session.get("cart").await?.unwrap_or_default();
//!     Ok(format!("{} items", cart.items.len()))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/cart", post(add))
//!     .layer(SessionLayer::new(MemoryStore::default()));
//! ```

mod batch;
mod config;
#[cfg(feature = "csrf")]
pub(crate) mod csrf;
mod load;
mod queue;
mod state;
mod writeback;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) use self::config::{Backend, Config};
pub(crate) use self::queue::WriteQueue;
use self::state::{Fate, Load, Updater};
pub(crate) use self::state::{Meta, State};
pub(crate) use self::writeback::CookieUpdate;
use crate::codec::{decode_value, encode_value};
use crate::cookie::CookieText;
use crate::expiry::Policy;
use crate::{Error, Expiry, Id, SessionEvent, SessionHandle};

/// A session: cheap to clone (clones share one state), lazily loaded on first use.
///
/// Nothing is read from the store until a method that needs the data is awaited, and a
/// request that never touches the session costs no store call and sends no cookie. Keys
/// that were only read are never written back; a key is written when its encoded bytes
/// differ from what was loaded, whether it changed through [`insert`](Session::insert),
/// [`remove`](Session::remove) or in-place through [`update`](Session::update).
///
/// `Debug` shows no id and no data.
#[derive(Clone)]
pub struct Session(Arc<Inner>);

struct Inner {
    config: Arc<Config>,
    /// The raw cookie value, verified lazily on first use.
    cookie: Option<CookieText>,
    state: Mutex<State>,
    /// Whether the end of the request has work to do, as of the last release of the state
    /// lock (see `StateGuard`): read without the lock when the response is ready.
    pending: AtomicBool,
    /// Wakes clones waiting for a load another clone is doing (see `State::loading`).
    loaded: tokio::sync::Notify,
    /// `flush` ended the session this request came with: whatever happens next, the
    /// response removes the cookie. An atomic, so the response path need not lock.
    flushed: AtomicBool,
}

/// The locked state. Every change to a session goes through one, and releasing it records
/// whether the end of the request now has work to do (`State::has_pending_work`), so the
/// response path reads one atomic instead of taking the lock.
pub(crate) struct StateGuard<'a> {
    guard: MutexGuard<'a, State>,
    pending: &'a AtomicBool,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.guard
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        // Still under the lock: the flag follows the state's own order of changes.
        self.pending.store(self.guard.has_pending_work(), Ordering::Release);
    }
}

impl Session {
    pub(crate) fn new(config: Arc<Config>, cookie: Option<CookieText>) -> Self {
        Self(Arc::new(Inner {
            config,
            cookie,
            state: Mutex::new(State::default()),
            pending: AtomicBool::new(false),
            loaded: tokio::sync::Notify::new(),
            flushed: AtomicBool::new(false),
        }))
    }

    pub(super) fn state(&self) -> StateGuard<'_> {
        // A panic in another holder cannot leave the state half-written (every update is a
        // single assignment), so a poisoned lock is still usable.
        let guard = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        StateGuard { guard, pending: &self.0.pending }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.0.config
    }

    pub(crate) fn flushed(&self) -> bool {
        self.0.flushed.load(Ordering::Acquire)
    }

    pub(crate) fn had_cookie(&self) -> bool {
        self.0.cookie.is_some()
    }

    /// Whether the end of the request has anything to do: a failed load to report, a
    /// possible change, a cookie to (re)send or remove, or a due expiry refresh. Checked
    /// synchronously so untouched and read-only requests never allocate a write-back.
    pub(crate) fn needs_write_back(&self) -> bool {
        // Kept current by every release of the state lock, so no lock is taken here.
        self.0.pending.load(Ordering::Acquire)
    }

    pub(crate) fn policy(&self, expiry: Option<Expiry>) -> Policy {
        Policy { expiry: expiry.unwrap_or(self.0.config.expiry), max_lifetime: self.0.config.max_lifetime }
    }

    /// The value under `key`, decoded as `T`; `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed, [`Error::Decode`] if the stored value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let st = self.load().await?;
        match st.get(key) {
            None => Ok(None),
            // A small value (a counter, an id, a flag) decodes in a moment: under the lock,
            // without touching the shared buffer's reference count.
            Some(bytes) if bytes.len() <= SMALL_VALUE => decode(key, bytes).map(Some),
            // A large one decodes outside the lock, so clones of the session are not held up.
            Some(bytes) => {
                let bytes = bytes.clone();
                drop(st);
                decode(key, &bytes).map(Some)
            }
        }
    }

    /// Stores `value` under `key`. Storing the value that is already there (the same
    /// encoded bytes) is not a change.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed, [`Error::Encode`] if `value` cannot be encoded,
    /// and in client-side mode [`Error::CookieTooLarge`] when the session would no longer
    /// fit in a cookie (the session is then left as it was).
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), Error> {
        let bytes = encode_value(&value).map_err(|source| Error::Encode { key: key.to_owned(), source })?;
        let mut st = self.load().await?;
        self.write(&mut st, key, Some(bytes), None)
    }

    /// Removes `key` and returns its value decoded as `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed; [`Error::Decode`] if the value is not a `T`, in
    /// which case it is not removed.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut st = self.load().await?;
        let value = st.get(key).map(|b| decode(key, b)).transpose()?;
        st.write(key, None, false, None);
        Ok(value)
    }

    /// Changes the value under `key` in place: decodes it (or starts from `T::default()`),
    /// runs `f`, and writes it back only if its encoding changed (an absent key left at its
    /// default stays absent). This is the mutation Flask's session cannot see
    /// (`session["list"].append(x)`), and it is exact under concurrency: when another
    /// request changed the key first, `f` runs again, at the end of this request, on the
    /// value that request stored. So 64 concurrent requests that each add one to a counter
    /// leave it 64 higher. That is why `f` must be `Clone + Send + 'static` (a `move`
    /// closure over owned, cloneable values), and why it should do nothing but change the
    /// value: it may run more than once.
    ///
    /// ```
    /// # async fn f(session: session_core::Session) -> Result<(), session_core::Error> {
    /// session.update("visits", |n: &mut u64| *n += 1).await?;
    /// let tag = String::from("rust");
    /// session.update("tags", move |tags: &mut Vec<String>| tags.push(tag)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// By contrast [`insert`](Session::insert) is last-writer-wins: two requests that read
    /// a counter and insert one more both store the same number. Never torn: a value is
    /// always one request's whole value.
    ///
    /// # Errors
    ///
    /// As [`get`](Session::get) and [`insert`](Session::insert). A value that another
    /// request stored with a type `f` cannot read makes the write-back fail ([`Error::Decode`],
    /// a 500 from the layer).
    pub async fn update<T, F>(&self, key: &str, f: F) -> Result<(), Error>
    where
        T: Serialize + DeserializeOwned + Default,
        F: FnOnce(&mut T) + Clone + Send + 'static,
    {
        let current = self.load().await?.get(key).cloned();
        let mut redo = updater::<T, F>(f);
        let bytes = redo(key, current.as_ref())?;
        let mut st = self.state();
        if st.get(key) != current.as_ref() {
            // A clone changed the key while `f` ran: run it again on the value now there.
            let now = st.get(key).cloned();
            drop(st);
            let bytes = redo(key, now.as_ref())?;
            return self.write(&mut self.state(), key, bytes, Some(redo));
        }
        self.write(&mut st, key, bytes, Some(redo))
    }

    /// Whether `key` holds a value.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed.
    pub async fn contains(&self, key: &str) -> Result<bool, Error> {
        Ok(self.load().await?.get(key).is_some())
    }

    /// The keys, in order.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed.
    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        Ok(self.load().await?.keys().into_iter().map(str::to_owned).collect())
    }

    /// The number of keys.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed.
    pub async fn len(&self) -> Result<usize, Error> {
        Ok(self.load().await?.len())
    }

    /// Whether the session holds no keys.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len().await? == 0)
    }

    /// Removes every key. A session left empty is deleted from the store and its cookie
    /// removed at the end of the request: like a logout, it then wins against a concurrent
    /// request of the same session that adds another key (that key is dropped), whereas a
    /// key added first survives the clear.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed.
    pub async fn clear(&self) -> Result<(), Error> {
        let mut st = self.load().await?;
        let keys: Vec<String> = st.keys().into_iter().map(str::to_owned).collect();
        for key in keys {
            st.write(&key, None, false, None);
        }
        Ok(())
    }

    /// Destroys the session now: deletes its record and expires the cookie with the
    /// response, even when the response is a 5xx (a logout holds whatever the handler does
    /// next). Values inserted afterwards start a new session under a new id.
    ///
    /// When the deletion fails, the response becomes the layer's error status (500) even
    /// if the handler ignores the error, and the cookie is left alone, so the user sees the
    /// failure and a retry logs out.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading or deleting failed.
    pub async fn flush(&self) -> Result<(), Error> {
        let (rid, gone) = {
            let st = self.load().await?;
            (st.rid, st.gone)
        };
        // A cookie whose record is gone may still name the forward a racing `cycle_id`
        // left: deleting it ends the session that moved away, as this logout intends.
        if let (Some(target), Backend::Store(store)) = (rid.or(gone), &self.0.config.backend) {
            if let Err(err) = store.delete(&target).await {
                self.state().failed = true;
                return Err(err.into());
            }
            if let Some(rid) = rid {
                let handle = SessionHandle::from_record_id(rid);
                self.0.config.manager.emit(SessionEvent::Destroyed { handle }).await;
            }
        }
        *self.state() = State { load: Load::Done, fate: Fate::Ended, ..State::default() };
        self.0.flushed.store(true, Ordering::Release);
        Ok(())
    }

    /// Gives the session a new id and keeps its data; the old id stops working. Call it
    /// when privileges change (at login, after a password change) so an id planted before
    /// is worthless after.
    ///
    /// The change happens when the response is written back, in one atomic store call
    /// ([`SessionStore::cycle`](crate::SessionStore::cycle)), together with this request's
    /// other changes, and only if the response is not a 5xx: a failed login keeps the old
    /// session and its cookie, which still agree. Until then [`id`](Session::id) and
    /// [`handle`](Session::handle) name the old id. A logout or revoke of the old id racing
    /// the change ends the new one too. In client-side mode the cookie is sealed afresh.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed.
    pub async fn cycle_id(&self) -> Result<(), Error> {
        let mut st = self.load().await?;
        if st.fate == Fate::Kept {
            st.fate = Fate::Cycled;
        }
        // Tokens rendered before the change must not work after it.
        #[cfg(feature = "csrf")]
        Self::csrf_forget(&mut st);
        Ok(())
    }

    /// Overrides the layer's expiry for this session (`None`: back to the default), e.g. a
    /// long [`Expiry::OnInactivity`] for "remember me". Counts as a change: the session is
    /// saved and its cookie re-sent.
    pub fn set_expiry(&self, expiry: Option<Expiry>) {
        let mut st = self.state();
        st.expiry.set(expiry);
    }

    /// This session's own expiry, if it has one: set with [`set_expiry`](Session::set_expiry)
    /// in this request, or stored with the session (known once it is loaded). `None` means
    /// the layer's default applies.
    #[must_use]
    pub fn expiry(&self) -> Option<Expiry> {
        self.state().expiry.value
    }

    /// The session's id, once it is loaded and stored (server-side mode only). `None` for a
    /// new session that has not been saved yet, before the first async call loads it, and
    /// in client-side mode.
    ///
    /// The id is the bearer secret the cookie carries: never log it.
    #[must_use]
    pub fn id(&self) -> Option<Id> {
        self.state().id
    }

    /// Ties the session to `user` (call it at login, after [`cycle_id`](Session::cycle_id)),
    /// so [`SessionManager`](crate::SessionManager) can list and revoke the user's sessions.
    /// Counts as a change: the session is saved. Client-side sessions have no store to index
    /// them in, so there it records nothing.
    pub fn set_user(&self, user: impl Into<String>) {
        let mut st = self.state();
        st.user.set(Some(user.into()));
    }

    /// Names this session for the user's device list, e.g. "Firefox on Linux". Counts as a
    /// change.
    pub fn set_label(&self, label: impl Into<String>) {
        let mut st = self.state();
        st.label.set(Some(label.into()));
    }

    /// The user set with [`set_user`](Session::set_user), in this or an earlier request.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed.
    pub async fn user(&self) -> Result<Option<String>, Error> {
        Ok(self.load().await?.user.value.clone())
    }

    /// This session's handle, as [`SessionManager`](crate::SessionManager) lists it: known
    /// once the session is loaded and stored (server-side mode). Unlike [`id`](Session::id)
    /// it is not a secret.
    #[must_use]
    pub fn handle(&self) -> Option<SessionHandle> {
        self.state().rid.map(SessionHandle::from_record_id)
    }

    fn write(
        &self,
        st: &mut State,
        key: &str,
        value: Option<Bytes>,
        redo: Option<Updater>,
    ) -> Result<(), Error> {
        let client = matches!(self.0.config.backend, Backend::Client(_));
        let Some(previous) = st.write(key, value, client, redo) else { return Ok(()) };
        if let Backend::Client(codec) = &self.0.config.backend {
            let now = self.0.config.now();
            let created = st.meta.map_or(now, |m| m.created_at);
            // Client-side, the state's `base` is the entries themselves.
            if let Err(err) = codec.check_fits(&self.0.config.cookie.name, &st.base, created, now) {
                st.undo(key, previous);
                return Err(err);
            }
        }
        Ok(())
    }
}

/// `f` as a re-runnable update of encoded values: stored bytes (or absent) in, new bytes
/// out; an absent key left at its default stays absent.
fn updater<T, F>(f: F) -> Updater
where
    T: Serialize + DeserializeOwned + Default,
    F: FnOnce(&mut T) + Clone + Send + 'static,
{
    Box::new(move |key: &str, current: Option<&Bytes>| {
        let mut value: T = match current {
            Some(bytes) => decode(key, bytes)?,
            None => T::default(),
        };
        f.clone()(&mut value);
        let encode = |v: &T| encode_value(v).map_err(|source| Error::Encode { key: key.to_owned(), source });
        let bytes = encode(&value)?;
        if current.is_none() && encode(&T::default())? == bytes {
            return Ok(None);
        }
        Ok(Some(bytes))
    })
}

/// Values up to this many encoded bytes are decoded while the state is locked.
const SMALL_VALUE: usize = 64;

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    decode_value(bytes).map_err(|source| Error::Decode { key: key.to_owned(), source })
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Session")
            .field("loaded", &(st.load == Load::Done))
            .field("keys", &st.len())
            .field("expiry", &st.expiry.value)
            .finish_non_exhaustive()
    }
}
