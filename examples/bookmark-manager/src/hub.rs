//! The WebSocket hub: which sockets are open for which user and login, so a change made in
//! one browser reaches the user's other browsers, and the sockets of a login that the app
//! ends itself (logout, "log out all other devices", password change) are closed.
//!
//! A socket is known by the user and the login it was opened under (a random id kept in
//! the session at login, which exists in every session mode). The end of the socket's
//! session (flush, revoke, expiry) is watched by the socket itself, with
//! `Session::ended` (see `web::ws`); the hub covers what that cannot see: cookie mode,
//! where no store hears a logout, and logins ended by the user's session epoch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::mpsc;

/// How many messages a socket may have queued; a client that falls further behind is
/// disconnected (it reloads and catches up) rather than holding memory for it.
const QUEUE: usize = 64;

/// Live sockets one login may hold (one per open tab of one browser): enough for a few
/// tabs, while a script that keeps opening sockets with a stolen or its own cookie cannot
/// pile them up. A socket past the limit is refused; the page retries with back-off and
/// gets in when a tab closes.
pub(crate) const SOCKETS_PER_LOGIN: usize = 6;

/// What the hub tells one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Msg {
    /// A JSON change event to forward.
    Event(String),
    /// The login ended: say so and close.
    Close,
}

/// A change to one of a user's items, as the browser receives it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Change {
    /// `bookmarks`, `notes` or `vault`.
    pub(crate) kind: &'static str,
    /// `created`, `updated` or `deleted`.
    pub(crate) action: &'static str,
    pub(crate) id: i64,
}

struct Conn {
    user: i64,
    login: String,
    tx: mpsc::Sender<Msg>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    conns: HashMap<u64, Conn>,
}

/// Cheap to clone; clones share the registry.
#[derive(Clone, Default)]
pub(crate) struct Hub(Arc<Mutex<Inner>>);

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("sockets", &self.inner().conns.len()).finish()
    }
}

/// Unregisters its socket when dropped, however the socket task ends.
#[derive(Debug)]
pub(crate) struct Registration {
    hub: Hub,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.inner().conns.remove(&self.id);
    }
}

impl Hub {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update is a single map operation: a panic elsewhere cannot leave it torn.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a socket; it receives messages until the registration is dropped. `None`
    /// when `login` already holds [`SOCKETS_PER_LOGIN`] sockets.
    pub(crate) fn register(&self, user: i64, login: String) -> Option<(Registration, mpsc::Receiver<Msg>)> {
        let mut inner = self.inner();
        // Sockets whose task is gone no longer count.
        inner.conns.retain(|_, c| !c.tx.is_closed());
        if inner.conns.values().filter(|c| c.login == login).count() >= SOCKETS_PER_LOGIN {
            return None;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        inner.next += 1;
        let id = inner.next;
        inner.conns.insert(id, Conn { user, login, tx });
        Some((Registration { hub: self.clone(), id }, rx))
    }

    /// Sends `msg` to every socket `pick` selects. Sockets told to close, and those whose
    /// queue is full or whose task is gone, leave the registry (their task sees the channel
    /// close and ends).
    fn send(&self, msg: &Msg, pick: impl Fn(&Conn) -> bool) {
        let closing = *msg == Msg::Close;
        self.inner().conns.retain(|_, c| !pick(c) || (c.tx.try_send(msg.clone()).is_ok() && !closing));
    }

    /// Tells every socket of `user` about a change.
    pub(crate) fn publish(&self, user: i64, change: &Change) {
        let json = serde_json::to_string(change).expect("a change serializes");
        self.send(&Msg::Event(json), |c| c.user == user);
    }

    /// Closes the sockets opened under `login` (its session ended).
    pub(crate) fn close_login(&self, login: &str) {
        self.send(&Msg::Close, |c| c.login == login);
    }

    /// Closes every socket of `user` except those of the login `keep`.
    pub(crate) fn close_user_except(&self, user: i64, keep: &str) {
        self.send(&Msg::Close, |c| c.user == user && c.login != keep);
    }

    /// Number of open sockets (for the session page and tests).
    pub(crate) fn len(&self) -> usize {
        self.inner().conns.len()
    }

    /// Open sockets of the login `login`, and of all of `user`'s logins.
    pub(crate) fn count_for(&self, user: i64, login: &str) -> (usize, usize) {
        let inner = self.inner();
        let mine = inner.conns.values().filter(|c| c.user == user);
        mine.fold((0, 0), |(this, all), c| (this + usize::from(c.login == login), all + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn routes_changes_and_closes() {
        let hub = Hub::default();
        let (_a, mut a) = hub.register(1, "la".into()).unwrap();
        let (_b, mut b) = hub.register(1, "lb".into()).unwrap();
        let (c_reg, mut c) = hub.register(2, "lc".into()).unwrap();
        hub.publish(1, &Change { kind: "notes", action: "created", id: 7 });
        assert!(matches!(a.try_recv(), Ok(Msg::Event(j)) if j.contains("\"id\":7")));
        assert!(matches!(b.try_recv(), Ok(Msg::Event(_))));
        assert!(c.try_recv().is_err());
        hub.close_user_except(1, "la");
        assert_eq!(b.try_recv(), Ok(Msg::Close));
        assert!(a.try_recv().is_err());
        hub.close_login("la");
        assert_eq!(a.try_recv(), Ok(Msg::Close));
        drop(c_reg);
        assert_eq!(hub.len(), 0, "closed sockets were dropped from the registry");
    }

    #[test]
    fn a_login_holds_a_few_sockets_at_most() {
        let hub = Hub::default();
        let mut held: Vec<_> =
            (0..SOCKETS_PER_LOGIN).map(|_| hub.register(1, "la".into()).unwrap()).collect();
        assert!(hub.register(1, "la".into()).is_none());
        // Another login of the same user has its own allowance.
        assert!(hub.register(1, "lb".into()).is_some());
        // A socket whose task ended frees its place.
        drop(held.pop());
        assert!(hub.register(1, "la".into()).is_some());
    }
}
