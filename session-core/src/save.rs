//! The write-back at the end of a request: what to store, and which cookie to send.
//!
//! Server-side saves are optimistic: the record is saved with the version this request
//! loaded; on a conflict the fresh record is reloaded, only this request's changed and
//! removed keys are applied to it, and the save is retried a bounded number of times.

use bytes::Bytes;
use http::HeaderValue;
use time::OffsetDateTime;

use crate::layer::Backend;
use crate::session::{Meta, State};
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

impl Session {
    /// Writes back what this request changed; called by the layer after the inner service
    /// answered with a non-5xx status.
    pub(crate) async fn finish(&self) -> Result<CookieUpdate, Error> {
        if self.metadata_changed_unloaded() {
            // `set_expiry` alone was called: load so there is something to save.
            self.load().await?;
        }
        let st = self.take_state();
        if st.load_failed {
            return Err(Error::Store(StoreError::backend(
                "the session failed to load earlier in this request",
            )));
        }
        match &self.config().backend {
            Backend::Store(store) => self.finish_store(&**store, st).await,
            Backend::Client(_) => self.finish_client(st),
        }
    }

    async fn finish_store(&self, store: &dyn SessionStore, st: State) -> Result<CookieUpdate, Error> {
        let now = now();
        let changed = st.expiry_changed || st.owner_changed || st.is_dirty();
        let policy = self.policy(st.expiry);
        let (Some(id), Some(rid), Some(meta)) = (st.id, st.rid, st.meta) else {
            // A new session (or one flushed in this request): stored only once it holds data.
            if !st.entries.is_empty() {
                // The id is a placeholder: `create_with_fresh_id` draws the real one.
                let mut record = Record::new(RecordId::from_bytes([0; 32]), now, policy.expires_at(now, now));
                record.expiry = st.expiry;
                record.entries = st.entries;
                record.user = st.user;
                record.label = st.label;
                let id = create_with_fresh_id(store, &mut record).await?;
                return Ok(self.set(&id, policy.max_age(now, record.expires_at)));
            }
            return Ok(if st.ended && self.had_cookie() { CookieUpdate::Remove } else { CookieUpdate::None });
        };
        if changed {
            return self.save_with_merge(store, (id, rid), meta, st, now).await;
        }
        let mut expires_at = meta.expires_at;
        if let Some(fresh) = meta.refresh {
            if !store.touch(&rid, fresh, now).await? {
                return Ok(CookieUpdate::None);
            }
            expires_at = fresh;
            if policy.max_age(now, fresh).is_some() {
                return Ok(self.set(&id, policy.max_age(now, fresh)));
            }
        }
        Ok(if st.cycled || st.reissue {
            self.set(&id, policy.max_age(now, expires_at))
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
        (id, rid): (Id, RecordId),
        meta: Meta,
        st: State,
        now: OffsetDateTime,
    ) -> Result<CookieUpdate, Error> {
        // The cookie only needs re-sending when what it says changed: a new expiry, a new id
        // or a new key (and, below, a rolling Max-Age).
        let resend = st.expiry_changed || st.cycled || st.reissue;
        let (owner_changed, user, label) = (st.owner_changed, st.user, st.label);
        let originals = st.originals;
        // This request's own changes, needed only to merge after a conflict.
        let mut changes: Option<Vec<(String, Option<Bytes>)>> = None;
        let mut record = Record::new(rid, meta.created_at, meta.expires_at);
        record.entries = st.entries;
        record.expiry = st.expiry;
        record.user.clone_from(&user);
        record.label.clone_from(&label);
        let mut expected = meta.version;
        for _ in 0..MAX_SAVE_ATTEMPTS {
            let policy = self.policy(record.expiry);
            let ending = record.entries.is_empty();
            record.version = expected + 1;
            record.expires_at = if ending { now } else { policy.expires_at(now, record.created_at) };
            record.last_seen = now;
            match store.save(&record, expected).await {
                Ok(()) if ending => {
                    let handle = SessionHandle::from_record_id(rid);
                    self.config().manager.emit(SessionEvent::Destroyed { handle }).await;
                    return Ok(CookieUpdate::Remove);
                }
                Ok(()) if resend || matches!(policy.expiry, Expiry::OnInactivity(_)) => {
                    return Ok(self.set(&id, policy.max_age(now, record.expires_at)));
                }
                Ok(()) => return Ok(CookieUpdate::None),
                Err(StoreError::Conflict) => {}
                // Deleted meanwhile (logout raced this request): never resurrect it, and
                // leave the cookie alone, since another response may have set a new one.
                Err(StoreError::NotFound) => return Ok(CookieUpdate::None),
                Err(err) => return Err(err.into()),
            }
            let Some(fresh) = store.load(&rid).await? else { return Ok(CookieUpdate::None) };
            let expiry = if st.expiry_changed { st.expiry } else { fresh.expiry };
            if self.policy(expiry).is_expired(now, fresh.created_at, fresh.expires_at) {
                return Ok(CookieUpdate::None);
            }
            let changes = changes.get_or_insert_with(|| {
                originals
                    .iter()
                    .map(|(k, orig)| (k, orig, record.entries.get(k.as_str())))
                    .filter(|(_, orig, value)| *value != orig.as_ref())
                    .map(|(k, _, value)| (k.clone(), value.cloned()))
                    .collect()
            });
            expected = fresh.version;
            record = fresh;
            record.expiry = expiry;
            if owner_changed {
                record.user.clone_from(&user);
                record.label.clone_from(&label);
            }
            for (key, value) in changes.iter() {
                match value {
                    Some(v) => record.entries.insert(key.clone(), v.clone()),
                    None => record.entries.remove(key),
                };
            }
        }
        Err(Error::ConflictRetriesExhausted)
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
        Ok(CookieUpdate::Set(self.config().cookie.set_cookie(value, policy.max_age(now, expires_at))))
    }

    fn set(&self, id: &Id, max_age: Option<time::Duration>) -> CookieUpdate {
        let config = self.config();
        let value = config.id_codec.encode(&config.cookie.name, id);
        CookieUpdate::Set(config.cookie.set_cookie(value, max_age))
    }
}
