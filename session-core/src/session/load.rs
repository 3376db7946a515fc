//! The lazy load: verify the cookie, fetch the record, check its expiry.

use super::state::Load;
use super::{Backend, Meta, Session, StateGuard};
use crate::record::Entries;
use crate::{Error, Expiry, Id, RecordId};

impl Session {
    /// Loads the session on first use, and returns the locked state (so the caller's work
    /// on it takes no second lock). Clones racing to load share one fetch: the first claims
    /// the load, the others wait for its outcome (and after a failure, try again).
    pub(crate) async fn load(&self) -> Result<StateGuard<'_>, Error> {
        let claimed = {
            let mut st = self.state();
            match st.load {
                Load::Done => return Ok(st),
                Load::Pending if self.0.cookie.is_none() => {
                    // Nothing to fetch: a new session, loaded as it is.
                    st.load = Load::Done;
                    return Ok(st);
                }
                // The common case: nobody else is loading, so claim it under this same lock.
                Load::Pending => {
                    st.load = Load::InProgress { waiting: false };
                    true
                }
                Load::InProgress { .. } => false,
            }
        };
        if !claimed {
            // Another clone is loading: wait for it, then use its result or (after a
            // failure, or if it was dropped halfway) claim the load.
            loop {
                let notified = self.0.loaded.notified();
                let mut notified = std::pin::pin!(notified);
                {
                    let mut st = self.state();
                    match st.load {
                        Load::Done => return Ok(st),
                        Load::Pending => {
                            st.load = Load::InProgress { waiting: false };
                            break;
                        }
                        Load::InProgress { .. } => {
                            // Registered under the state lock, so the loader's wake-up cannot
                            // be missed.
                            st.load = Load::InProgress { waiting: true };
                            notified.as_mut().enable();
                        }
                    }
                }
                notified.await;
            }
        }
        let mut claim = Claim { session: self, done: false };
        let fetched = self.fetch().await;
        let mut st = self.state();
        claim.done = true;
        let wake = matches!(std::mem::take(&mut st.load), Load::InProgress { waiting: true });
        if wake {
            // The waiters take the state lock after this guard is released.
            self.0.loaded.notify_waiters();
        }
        match fetched {
            Ok(found) => {
                st.load = Load::Done;
                if let Some(Fetched::Live(found)) = found {
                    st.id = found.id.map(|(id, _)| id);
                    st.rid = found.id.map(|(_, rid)| rid);
                    st.meta = Some(found.meta);
                    st.base = found.entries;
                    st.reissue = found.reissue;
                    st.expiry.loaded(found.expiry);
                    st.user.loaded(found.user);
                    st.label.loaded(found.label);
                } else if let Some(Fetched::Gone(rid)) = found {
                    st.gone = Some(rid);
                }
                Ok(st)
            }
            Err(err) => {
                st.failed = true;
                tracing::error!(error = %err, source = ?std::error::Error::source(&err), "loading the session failed");
                Err(err)
            }
        }
    }

    async fn fetch(&self) -> Result<Option<Fetched>, Error> {
        let Some(cookie) = self.0.cookie.as_ref() else { return Ok(None) };
        let config = &*self.0.config;
        let name = &config.cookie.name;
        let now = config.now();
        match &config.backend {
            Backend::Store(store) => {
                let Some((id, reissue)) = config.id_codec.decode(name, cookie.as_bytes()) else {
                    return Ok(None);
                };
                let rid = id.record_id();
                let Some(record) = store.load(&rid).await? else { return Ok(Some(Fetched::Gone(rid))) };
                if self.policy(record.expiry).is_expired(now, record.created_at, record.expires_at) {
                    return Ok(Some(Fetched::Gone(rid)));
                }
                let policy = self.policy(record.expiry);
                let meta = Meta {
                    created_at: record.created_at,
                    expires_at: record.expires_at,
                    refresh: policy.refresh_due(now, record.created_at, record.expires_at),
                };
                Ok(Some(Fetched::Live(Found {
                    id: Some((id, record.id)),
                    meta,
                    entries: record.entries,
                    expiry: record.expiry,
                    reissue,
                    user: record.user,
                    label: record.label,
                })))
            }
            Backend::Client(codec) => {
                let Some((p, reissue)) = codec.open(name, cookie, now) else { return Ok(None) };
                if self.policy(p.expiry).is_expired(now, p.created_at, p.expires_at) {
                    return Ok(None);
                }
                let refresh = self.policy(p.expiry).refresh_due(now, p.created_at, p.expires_at);
                let meta = Meta { created_at: p.created_at, expires_at: p.expires_at, refresh };
                Ok(Some(Fetched::Live(Found {
                    id: None,
                    meta,
                    entries: p.entries,
                    expiry: p.expiry,
                    reissue,
                    user: None,
                    label: None,
                })))
            }
        }
    }
}

/// What a cookie led to.
enum Fetched {
    Live(Found),
    /// A well-formed id with no live record: gone, expired, or the old id of a session that
    /// changed id (a forward, which `flush` must still follow).
    Gone(RecordId),
}

struct Found {
    id: Option<(Id, RecordId)>,
    meta: Meta,
    entries: Entries,
    expiry: Option<Expiry>,
    reissue: bool,
    user: Option<String>,
    label: Option<String>,
}

/// The claim on a load in progress: if the loading future is dropped before it finishes,
/// the claim is released and any waiting clone wakes up to load by itself.
struct Claim<'a> {
    session: &'a Session,
    done: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let wake = {
            let mut st = self.session.state();
            matches!(std::mem::take(&mut st.load), Load::InProgress { waiting: true })
        };
        if wake {
            self.session.0.loaded.notify_waiters();
        }
    }
}
