//! The write-back at the end of a request: what to store, and which cookie to send.
//!
//! A stored session is never saved whole: the request's changed keys become a
//! [`Patch`](crate::Patch) that the store applies to whatever it holds, through the
//! session's write queue (see `queue`), which combines concurrent write-backs of one
//! session and re-runs in-place updates when their key changed underneath them.

use http::HeaderValue;
use time::OffsetDateTime;

use super::queue::{self, Job, Outcome};
use super::state::{self, Fate, Load};
use super::{Backend, State};
use crate::client::{ClientCodec, ClientSession};
use crate::cookie::IdCodec;
use crate::expiry::Policy;
use crate::{Error, Expiry, ExpiryChange, Id, Patch, Record, RecordId, Session, SessionStore, StoreError};

/// Attempts at finding an unused id.
pub(super) const MAX_CREATE_ATTEMPTS: usize = 4;

/// What the response must do with the cookie.
#[derive(Debug)]
pub(crate) enum CookieUpdate {
    None,
    Set(HeaderValue),
    Remove,
}

/// Stores `record` under a fresh id, retrying on the (astronomically unlikely) collision;
/// returns the id.
pub(crate) async fn create_with_fresh_id(
    store: &dyn SessionStore,
    ids: &IdCodec,
    record: &mut Record,
) -> Result<Id, StoreError> {
    for _ in 0..MAX_CREATE_ATTEMPTS {
        let id = ids.generate();
        record.id = id.record_id();
        record.version = 1;
        match store.create(record).await {
            Ok(()) => return Ok(id),
            Err(StoreError::Collision) => {}
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::Collision)
}

/// What the end of a request does, decided under the state lock without awaiting
/// anything, so the write-back future keeps only what its one store call needs. A patch's
/// job is written to the caller's slot, never moved (see `finish`).
enum Plan {
    Done(CookieUpdate),
    /// A new session: its record is in the write-back's slot (`Work::Record`).
    Create,
    /// Changes (or only a due expiry refresh) for the stored session.
    Patch {
        id: Id,
        policy: Policy,
        /// The cookie must be re-sent whatever the expiry mode: a new expiry, id or key.
        resend: bool,
    },
}

/// What the write-back's one store call works on: filled by the plan in a slot of the
/// `finish` future and only borrowed from there, never moved across an await (an async fn
/// keeps a moved value twice), so the future holds one of them and allocates for neither.
enum Work {
    Idle,
    /// A patch of the stored session (`Plan::Patch`).
    Job(Job),
    /// A new session's record (`Plan::Create`).
    Record(Record),
}

impl Work {
    /// The job, moved out (to a queue), leaving `Idle`.
    fn take_job(&mut self) -> Option<Job> {
        match std::mem::replace(self, Self::Idle) {
            Self::Job(job) => Some(job),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl Session {
    /// Writes back what this request changed; called by the layer after the inner service
    /// answered with a non-5xx status.
    pub(crate) async fn finish(&self) -> Result<CookieUpdate, Error> {
        let now = self.config().now();
        let mut work = Work::Idle;
        let plan = match self.plan_if_loaded(now, &mut work) {
            Some(plan) => plan?,
            // `set_expiry` alone was called: load so there is something to save. Rare, so
            // boxed, which keeps the common write-back future small.
            None => {
                let mut st = Box::pin(self.load()).await?;
                self.plan(&mut st, now, &mut work)?
            }
        };
        let config = &self.0.config;
        let (id, rid, policy, resend) = match (plan, &mut work) {
            (Plan::Done(update), _) => return Ok(update),
            (Plan::Create, Work::Record(record)) => {
                let Backend::Store(store) = &config.backend else {
                    unreachable!("a client-side session is never created in a store")
                };
                let id = create_with_fresh_id(&**store, &config.id_codec, record).await?;
                let policy = self.policy(record.expiry);
                return Ok(self.set(&id, policy.max_age(now, record.expires_at)));
            }
            (Plan::Patch { id, policy, resend }, Work::Job(job)) => (id, job.patch.id, policy, resend),
            _ => unreachable!("the plan fills the slot it names"),
        };
        let queued = queue::enter(&config.queue, rid, || work.take_job());
        let reply = match (queued, &mut work) {
            (Some(queued), _) => queue::wait(queued).await,
            (None, Work::Job(job)) => queue::lead(config, job).await,
            (None, _) => unreachable!("a job that did not queue stays here"),
        };
        match reply? {
            Outcome::Applied { applied, .. } if applied.ended => Ok(CookieUpdate::Remove),
            // Measured from the instant the new expiry was computed from, so the rounded-up
            // Max-Age never exceeds the window.
            Outcome::Applied { applied, at, moved: Some(new) } => {
                Ok(self.set(&new, policy.max_age(at, applied.expires_at)))
            }
            Outcome::Applied { applied, at, moved: None }
                if resend || matches!(policy.expiry, Expiry::OnInactivity(_)) =>
            {
                Ok(self.set(&id, policy.max_age(at, applied.expires_at)))
            }
            Outcome::Applied { .. } => Ok(CookieUpdate::None),
            // Deleted meanwhile (logout raced this request): never resurrect it, and leave
            // the cookie alone, since another response may have set a new one.
            Outcome::Gone => Ok(CookieUpdate::None),
        }
    }

    /// The plan, under the state lock, unless `set_expiry`, `set_user` or `set_label` was
    /// called on a session nothing has loaded: it must load first (`None`).
    fn plan_if_loaded(&self, now: OffsetDateTime, work: &mut Work) -> Option<Result<Plan, Error>> {
        let mut st = self.state();
        if st.attributes_set() && st.load != Load::Done {
            return None;
        }
        Some(self.plan(&mut st, now, work))
    }

    /// Decides the end of the request from its state, and leaves a fresh state behind (a
    /// clone of the session used after the response starts over). A patch or a new record
    /// goes to `work`.
    fn plan(&self, st: &mut State, now: OffsetDateTime, work: &mut Work) -> Result<Plan, Error> {
        let plan = if st.failed {
            Err(Error::FailedEarlier)
        } else {
            match &self.config().backend {
                Backend::Store(_) => Ok(self.plan_stored(st, now, work)),
                Backend::Client(codec) => self.finish_client(codec, st, now).map(Plan::Done),
            }
        };
        // Dropped in place: the state is never copied out.
        *st = State::default();
        plan
    }

    /// The plan of a server-side session.
    fn plan_stored(&self, st: &mut State, now: OffsetDateTime, work: &mut Work) -> Plan {
        let policy = self.policy(st.expiry.value);
        let (Some(id), Some(rid), Some(meta)) = (st.id, st.rid, st.meta) else {
            // A new session (or one flushed in this request): stored only once it holds data.
            if !st.base.is_empty() {
                // The id is a placeholder: `create_with_fresh_id` draws the real one.
                let placeholder = RecordId::from_bytes([0; 32]);
                *work = Work::Record(st.take_record(placeholder, now, policy.expires_at(now, now)));
                return Plan::Create;
            }
            let remove = st.fate == Fate::Ended && self.had_cookie();
            return Plan::Done(if remove { CookieUpdate::Remove } else { CookieUpdate::None });
        };
        // The log (which holds each written key's value over the loaded entries) becomes
        // the patch's changes in place: a key set outright drops its expectation, a key
        // written back to what it was goes. No value is copied.
        let mut changes = std::mem::take(&mut st.log);
        let mut updates = std::mem::take(&mut st.updates).into_iter().peekable();
        let mut redo = Vec::new();
        let mut kept = 0;
        for i in 0..changes.len() {
            let in_place = updates.next_if(|(j, _)| *j == i).map(|(_, fs)| fs);
            let change = &mut changes[i];
            if change.value.as_ref() == state::loaded_value(change) {
                // Written, but back to what it was: nothing to store.
                continue;
            }
            match in_place {
                Some(fs) => redo.push((kept, fs)),
                None => change.expect = None,
            }
            if kept != i {
                changes.swap(kept, i);
            }
            kept += 1;
        }
        changes.truncate(kept);
        let cycle = st.fate == Fate::Cycled;
        let changed = st.attributes_set() || cycle || !changes.is_empty();
        let resend = st.expiry.set || cycle || st.reissue;
        if changed || meta.refresh.is_some() {
            let mut patch = Patch::new(rid, policy.expires_at(now, meta.created_at), now);
            patch.changes = changes;
            patch.expiry = if st.expiry.set {
                ExpiryChange::Set(st.expiry.value)
            } else {
                ExpiryChange::Keep(st.expiry.value)
            };
            patch.user = st.user.take_if_set().flatten();
            patch.label = st.label.take_if_set().flatten();
            *work = Work::Job(Job { patch, redo, policy, created_at: meta.created_at, cycle });
            return Plan::Patch { id, policy, resend };
        }
        Plan::Done(if resend {
            self.set(&id, policy.max_age(now, meta.expires_at))
        } else {
            CookieUpdate::None
        })
    }

    fn finish_client(
        &self,
        codec: &ClientCodec,
        st: &mut State,
        now: OffsetDateTime,
    ) -> Result<CookieUpdate, Error> {
        let changed = st.is_dirty() || st.expiry.set || st.fate == Fate::Cycled || st.reissue;
        let policy = self.policy(st.expiry.value);
        let created_at = st.meta.map_or(now, |m| m.created_at);
        let refresh = st.meta.and_then(|m| m.refresh);
        if !changed && refresh.is_none() {
            return Ok(if st.fate == Fate::Ended && self.had_cookie() {
                CookieUpdate::Remove
            } else {
                CookieUpdate::None
            });
        }
        // Client-side, the state's `base` is the entries themselves.
        if st.base.is_empty() {
            return Ok(if self.had_cookie() { CookieUpdate::Remove } else { CookieUpdate::None });
        }
        let expires_at = policy.expires_at(now, created_at);
        let entries = std::mem::take(&mut st.base);
        let session = ClientSession { entries, created_at, expires_at, expiry: st.expiry.value };
        let value = codec.seal(&self.config().cookie.name, &session, now)?;
        let header = self.config().cookie.set_cookie(&value, policy.max_age(now, expires_at));
        #[cfg(feature = "testing")]
        crate::testing::audit::issued(&header, None);
        Ok(CookieUpdate::Set(header))
    }

    /// The cookie a failed response (a 5xx, or a failed write-back) still carries: the
    /// removal, when this request flushed the session its cookie named, so a logout holds
    /// whatever went wrong after it. Everything else is left as the store has it: a
    /// `cycle_id` or a change not written back leaves the old id valid, and its cookie with it.
    pub(crate) fn cookie_after_failure(&self) -> Option<HeaderValue> {
        (self.flushed() && self.had_cookie()).then(|| self.config().cookie.removal())
    }

    fn set(&self, id: &Id, max_age: Option<time::Duration>) -> CookieUpdate {
        let config = self.config();
        let header = config.id_codec.set_cookie(&config.cookie, id, max_age);
        #[cfg(feature = "testing")]
        crate::testing::audit::issued(&header, Some(id));
        CookieUpdate::Set(header)
    }
}
