//! The write-back at the end of a request: what to store, and which cookie to send.
//!
//! Server-side saves are optimistic: the record is saved with the version this request
//! loaded; on a conflict the fresh record is reloaded, only this request's changed and
//! removed keys are applied to it, and the save is retried a bounded number of times.

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;
use time::OffsetDateTime;

use crate::layer::Backend;
use crate::session::State;
use crate::store::now;
use crate::{
    Error, Expiry, Id, Record, RecordId, Session, SessionEvent, SessionHandle, SessionStore, StoreError,
};

/// Attempts at a conflicting save before giving up with
/// [`Error::ConflictRetriesExhausted`].
const MAX_SAVE_ATTEMPTS: usize = 8;
/// Attempts at finding an unused id.
const MAX_CREATE_ATTEMPTS: usize = 4;

/// What the response must do with the cookie.
#[derive(Debug)]
pub(crate) enum CookieUpdate {
    None,
    Set(HeaderValue),
    Remove,
}

/// Stores `record` under a fresh random id, retrying on the (astronomically unlikely)
/// collision; returns the id.
pub(crate) async fn create_with_fresh_id(
    store: &dyn SessionStore,
    record: &mut Record,
) -> Result<Id, StoreError> {
    let mut last = StoreError::Collision;
    for _ in 0..MAX_CREATE_ATTEMPTS {
        let id = Id::random();
        record.id = id.record_id();
        record.version = 1;
        match store.create(record).await {
            Ok(()) => return Ok(id),
            Err(StoreError::Collision) => last = StoreError::Collision,
            Err(err) => return Err(err),
        }
    }
    Err(last)
}

/// A changed server-side session, ready for its versioned save.
struct Pending {
    id: Id,
    /// The record to save; its version and expiry are set per attempt.
    record: Record,
    /// The version this request loaded (or last saw, after a conflict).
    expected: u64,
    /// The cookie must be re-sent whatever the expiry mode: a new expiry, id or key.
    resend: bool,
    /// `set_expiry` was called: this request's expiry wins over a concurrent one.
    expiry_changed: bool,
    /// `set_user`/`set_label` was called: this request's owner wins over a concurrent one.
    owner_changed: bool,
    /// The dirty log: what each written key held when loaded.
    originals: Vec<(Arc<str>, Option<Bytes>)>,
}

/// What the end of a server-side request does, decided without awaiting anything, so the
/// write-back future keeps only what its one store call needs.
enum Plan {
    Done(CookieUpdate),
    Create(Record),
    /// A due expiry refresh; `update` is the cookie to send once it succeeded.
    Touch {
        rid: RecordId,
        fresh: OffsetDateTime,
        update: CookieUpdate,
    },
    Save(Pending),
}

impl Session {
    /// Writes back what this request changed; called by the layer after the inner service
    /// answered with a non-5xx status.
    pub(crate) async fn finish(&self) -> Result<CookieUpdate, Error> {
        let st = match self.take_state_if_loaded() {
            Some(st) => st,
            None => {
                // `set_expiry` alone was called: load so there is something to save. Rare,
                // so boxed, which keeps the common write-back future small.
                std::mem::take(&mut *Box::pin(self.load()).await?)
            }
        };
        if st.load_failed {
            return Err(Error::Store(StoreError::backend(
                "the session failed to load earlier in this request",
            )));
        }
        let store = match &self.config().backend {
            Backend::Store(store) => &**store,
            Backend::Client(_) => return self.finish_client(st),
        };
        let now = now();
        // The plan stays in this frame and the steps borrow it: a value passed into an
        // async fn is kept twice in its future (as argument and as local).
        let mut plan = self.plan(st, now);
        match &mut plan {
            Plan::Done(update) => Ok(std::mem::replace(update, CookieUpdate::None)),
            Plan::Create(record) => {
                let id = create_with_fresh_id(store, record).await?;
                let policy = self.policy(record.expiry);
                Ok(self.set(&id, policy.max_age(now, record.expires_at)))
            }
            Plan::Touch { rid, fresh, update } => {
                let touched = store.touch(rid, *fresh, now).await?;
                Ok(if touched { std::mem::replace(update, CookieUpdate::None) } else { CookieUpdate::None })
            }
            Plan::Save(pending) => self.save_with_merge(store, pending, now).await,
        }
    }

    /// Decides the end of a server-side request from its state.
    fn plan(&self, mut st: State, now: OffsetDateTime) -> Plan {
        let changed = st.expiry_changed || st.owner_changed || st.is_dirty();
        let policy = self.policy(st.expiry);
        let (Some(id), Some(rid), Some(meta)) = (st.id, st.rid, st.meta) else {
            // A new session (or one flushed in this request): stored only once it holds data.
            if !st.entries.is_empty() {
                // The id is a placeholder: `create_with_fresh_id` draws the real one.
                let placeholder = RecordId::from_bytes([0; 32]);
                return Plan::Create(st.take_record(placeholder, now, policy.expires_at(now, now)));
            }
            let remove = st.ended && self.had_cookie();
            return Plan::Done(if remove { CookieUpdate::Remove } else { CookieUpdate::None });
        };
        if changed {
            return Plan::Save(Pending {
                id,
                record: st.take_record(rid, meta.created_at, meta.expires_at),
                expected: meta.version,
                // The cookie only needs re-sending when what it says changed: a new expiry, a
                // new id or a new key (and, for a rolling expiry, a new Max-Age).
                resend: st.expiry_changed || st.cycled || st.reissue,
                expiry_changed: st.expiry_changed,
                owner_changed: st.owner_changed,
                originals: st.originals,
            });
        }
        let resend = st.cycled || st.reissue;
        if let Some(fresh) = meta.refresh {
            // The expiry policy is unchanged here (`changed` is false), so `policy` holds.
            let max_age = policy.max_age(now, fresh);
            let update =
                if resend || max_age.is_some() { self.set(&id, max_age) } else { CookieUpdate::None };
            return Plan::Touch { rid, fresh, update };
        }
        Plan::Done(if resend {
            self.set(&id, policy.max_age(now, meta.expires_at))
        } else {
            CookieUpdate::None
        })
    }

    /// Saves with the version this request loaded; on a conflict reloads, re-applies only
    /// this request's changed and removed keys, and tries again (bounded). A session left
    /// empty is saved already expired instead of deleted, so its end is version-checked too:
    /// a key another request added meanwhile is merged in, not deleted with it.
    async fn save_with_merge(
        &self,
        store: &dyn SessionStore,
        p: &mut Pending,
        now: OffsetDateTime,
    ) -> Result<CookieUpdate, Error> {
        for attempt in 0..MAX_SAVE_ATTEMPTS {
            if attempt > 0 {
                // Conflicts are rare: the reload and merge live in their own boxed future.
                if !Box::pin(self.reload_and_merge(store, p, now)).await? {
                    return Ok(CookieUpdate::None);
                }
            }
            let policy = self.policy(p.record.expiry);
            let ending = p.record.entries.is_empty();
            p.record.version = p.expected + 1;
            p.record.expires_at = if ending { now } else { policy.expires_at(now, p.record.created_at) };
            p.record.last_seen = now;
            match store.save(&p.record, p.expected).await {
                Ok(()) if ending => {
                    let handle = SessionHandle::from_record_id(p.record.id);
                    Box::pin(self.config().manager.emit(SessionEvent::Destroyed { handle })).await;
                    return Ok(CookieUpdate::Remove);
                }
                Ok(()) if p.resend || matches!(policy.expiry, Expiry::OnInactivity(_)) => {
                    return Ok(self.set(&p.id, policy.max_age(now, p.record.expires_at)));
                }
                Ok(()) => return Ok(CookieUpdate::None),
                Err(StoreError::Conflict) => {}
                // Deleted meanwhile (logout raced this request): never resurrect it, and
                // leave the cookie alone, since another response may have set a new one.
                Err(StoreError::NotFound) => return Ok(CookieUpdate::None),
                Err(err) => return Err(err.into()),
            }
        }
        Err(Error::ConflictRetriesExhausted)
    }

    /// After a conflict: reloads the record and applies this request's own changes to it.
    /// `false` when the session is gone or expired meanwhile (nothing to save).
    async fn reload_and_merge(
        &self,
        store: &dyn SessionStore,
        p: &mut Pending,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let Some(mut fresh) = store.load(&p.record.id).await? else { return Ok(false) };
        let expiry = if p.expiry_changed { p.record.expiry } else { fresh.expiry };
        if self.policy(expiry).is_expired(now, fresh.created_at, fresh.expires_at) {
            return Ok(false);
        }
        // This request's own changes: the keys whose bytes differ from what it loaded (the
        // dirty log keeps the loaded bytes; the record being replaced has the new ones). After
        // the merge the record holds them again, so a later conflict finds the same set.
        let ours = &p.record.entries;
        for (key, orig) in &p.originals {
            let value = ours.get(key);
            if value != orig.as_ref() {
                match value {
                    Some(v) => fresh.entries.insert(Arc::clone(key), v.clone()),
                    None => fresh.entries.remove(key),
                };
            }
        }
        fresh.expiry = expiry;
        if p.owner_changed {
            fresh.user = p.record.user.take();
            fresh.label = p.record.label.take();
        }
        p.expected = fresh.version;
        p.record = fresh;
        Ok(true)
    }

    fn finish_client(&self, st: State) -> Result<CookieUpdate, Error> {
        let Backend::Client(codec) = &self.config().backend else { unreachable!("checked by the caller") };
        let now = now();
        let changed = st.is_dirty() || st.expiry_changed || st.cycled || st.reissue;
        let policy = self.policy(st.expiry);
        let created_at = st.meta.map_or(now, |m| m.created_at);
        let refresh = st.meta.and_then(|m| m.refresh);
        if !changed && refresh.is_none() {
            return Ok(if st.ended && self.had_cookie() { CookieUpdate::Remove } else { CookieUpdate::None });
        }
        if st.entries.is_empty() {
            return Ok(if self.had_cookie() { CookieUpdate::Remove } else { CookieUpdate::None });
        }
        let expires_at = policy.expires_at(now, created_at);
        let payload = crate::codec::encode_client(&st.entries, created_at, expires_at, st.expiry);
        let name = &self.config().cookie.name;
        let size = name.len() + 1 + codec.encoded_len(payload.len());
        if size > crate::cookie::MAX_COOKIE_BYTES {
            return Err(Error::CookieTooLarge { size, limit: crate::cookie::MAX_COOKIE_BYTES });
        }
        let value = codec.encode(name, &payload);
        Ok(CookieUpdate::Set(self.config().cookie.set_cookie(&value, policy.max_age(now, expires_at))))
    }

    fn set(&self, id: &Id, max_age: Option<time::Duration>) -> CookieUpdate {
        let config = self.config();
        let (codec, name) = (&config.id_codec, &config.cookie.name);
        CookieUpdate::Set(config.cookie.set_cookie_with(
            codec.cookie_len(),
            |out| codec.encode_into(name, id, out),
            max_age,
        ))
    }
}
