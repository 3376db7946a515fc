//! [`FaultStore`]: any store, with outages, chosen errors, latency and gates injected per
//! method, and its calls counted.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{broadcast, watch};

use crate::{
    Applied, ExpiredDeletion, Patch, Record, RecordId, SessionEvent, SessionHandle, SessionInfo,
    SessionStore, StoreError,
};

/// One method of [`SessionStore`], the unit [`FaultStore`] injects faults into and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreMethod {
    /// [`SessionStore::create`]
    Create,
    /// [`SessionStore::load`]
    Load,
    /// [`SessionStore::apply`]
    Apply,
    /// [`SessionStore::cycle`]
    Cycle,
    /// [`SessionStore::delete`]
    Delete,
    /// [`SessionStore::sessions_of`]
    SessionsOf,
    /// [`SessionStore::revoke`]
    Revoke,
    /// [`SessionStore::revoke_user`]
    RevokeUser,
    /// [`SessionStore::publish`]
    Publish,
    /// [`SessionStore::listen`]
    Listen,
}

impl StoreMethod {
    /// Every method, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::Create,
        Self::Load,
        Self::Apply,
        Self::Cycle,
        Self::Delete,
        Self::SessionsOf,
        Self::Revoke,
        Self::RevokeUser,
        Self::Publish,
        Self::Listen,
    ];

    /// The methods that change what a store holds: `create`, `apply`, `cycle`, `delete`,
    /// `revoke` and `revoke_user`.
    pub const WRITES: [Self; 6] =
        [Self::Create, Self::Apply, Self::Cycle, Self::Delete, Self::Revoke, Self::RevokeUser];

    fn index(self) -> usize {
        self as usize
    }
}

/// What a failing method answers: an outage ([`Failure::outage`]) or a chosen
/// [`StoreError`] ([`Failure::error`]), on every call or on the next few
/// ([`Failure::times`]).
///
/// `Debug` shows how many calls are left to fail, not the error.
#[derive(Clone)]
pub struct Failure {
    make: Arc<dyn Fn() -> StoreError + Send + Sync>,
    /// `None`: every call until the failure is cleared.
    left: Option<usize>,
}

impl Failure {
    /// A [`StoreError::Backend`] like an unreachable server's: its source is an I/O error
    /// of kind `ConnectionRefused` whose message says "connection refused".
    #[must_use]
    pub fn outage() -> Self {
        Self::error(|| {
            StoreError::backend(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused (injected by FaultStore)",
            ))
        })
    }

    /// The error `make` builds, e.g. `|| StoreError::Conflict` (a [`StoreError`] is not
    /// `Clone`, so each failing call builds its own).
    #[must_use]
    pub fn error(make: impl Fn() -> StoreError + Send + Sync + 'static) -> Self {
        Self { make: Arc::new(make), left: None }
    }

    /// Only the next `n` calls fail; the method then works again by itself.
    #[must_use]
    pub fn times(mut self, n: usize) -> Self {
        self.left = Some(n);
        self
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure").field("left", &self.left).finish_non_exhaustive()
    }
}

/// Which calls of a method wait at its gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Open,
    Next(usize),
    All,
}

/// One method's faults and count.
struct MethodState {
    calls: AtomicUsize,
    failure: Mutex<Option<Failure>>,
    latency: Mutex<Duration>,
    hold: Mutex<Hold>,
    /// Bumped by every release; a held call waits for the value to change.
    released: watch::Sender<u64>,
    held: AtomicUsize,
}

impl Default for MethodState {
    fn default() -> Self {
        Self {
            calls: AtomicUsize::new(0),
            failure: Mutex::new(None),
            latency: Mutex::new(Duration::ZERO),
            hold: Mutex::new(Hold::Open),
            released: watch::Sender::new(0),
            held: AtomicUsize::new(0),
        }
    }
}

/// A lock that a panic elsewhere cannot poison for good: every state here is valid at
/// every step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Undoes the `held` count of a call that stops waiting, also when it is cancelled.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MethodState {
    /// What every call goes through before it reaches the inner store: counted, held at
    /// the gate, delayed, then failed or let through.
    async fn enter(&self) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let waiting = {
            let mut hold = lock(&self.hold);
            let held = match *hold {
                Hold::Open => false,
                Hold::All => true,
                Hold::Next(n) => {
                    *hold = if n > 1 { Hold::Next(n - 1) } else { Hold::Open };
                    true
                }
            };
            // Subscribed under the lock that `release` takes: a release cannot slip
            // between the decision to wait and the wait.
            held.then(|| {
                self.held.fetch_add(1, Ordering::SeqCst);
                self.released.subscribe()
            })
        };
        if let Some(mut released) = waiting {
            let _guard = Waiting(&self.held);
            // The sender lives as long as the store, so this only ends with a release.
            let _ = released.changed().await;
        }
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut failure = lock(&self.failure);
        let Some(f) = failure.as_mut() else { return Ok(()) };
        match &mut f.left {
            None => Err((f.make)()),
            Some(0) => {
                *failure = None;
                Ok(())
            }
            Some(n) => {
                *n -= 1;
                let err = (f.make)();
                if *n == 0 {
                    *failure = None;
                }
                Err(err)
            }
        }
    }
}

struct Faults([MethodState; 10]);

/// A [`SessionStore`] around another one that fails, slows down or holds the calls you
/// choose, per method, and counts every call. It is how this crate tests that a store
/// outage is a loud 500 and never a silent logout or a half-written session; store authors
/// can wrap their own store in it the same way.
///
/// Every method is forwarded to the inner store, the optional ones too, so the inner
/// store's own `sessions_of`, `revoke`, `listen`... are what runs. A call goes through, in
/// order: the count ([`calls`](FaultStore::calls)), the gate ([`hold`](FaultStore::hold),
/// [`release`](FaultStore::release)), the latency ([`delay`](FaultStore::delay)), the
/// failure ([`fail`](FaultStore::fail)); only a call that passes all of them reaches the
/// inner store. A failed call never reaches it.
///
/// Clones share the faults and the counts, so keep a clone to steer the store after
/// handing it to a [`SessionLayer`](crate::SessionLayer). The `with_*` methods configure
/// it when it is built; [`fail`](FaultStore::fail), [`recover`](FaultStore::recover),
/// [`delay`](FaultStore::delay), [`hold`](FaultStore::hold) and
/// [`release`](FaultStore::release) change it at any time. Nothing here panics.
///
/// `Debug` shows the inner store and the call counts, never what was stored.
///
/// ```
/// use session_core::testing::{Failure, FaultStore, StoreMethod};
/// use session_core::{Id, Record, SessionStore, StoreError};
/// use session_store_memory::MemoryStore;
/// use time::{Duration, OffsetDateTime};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// // The first load fails like an unreachable server; every apply conflicts.
/// let store = FaultStore::new(MemoryStore::default())
///     .with_failure(StoreMethod::Load, Failure::outage().times(1))
///     .with_failure(StoreMethod::Apply, Failure::error(|| StoreError::Conflict));
///
/// let now = OffsetDateTime::now_utc();
/// let record = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
/// store.create(&record).await.unwrap();
/// assert!(matches!(store.load(&record.id).await, Err(StoreError::Backend(_))));
/// assert!(store.load(&record.id).await.unwrap().is_some(), "only the first load failed");
///
/// // Held calls wait at the gate until released.
/// store.hold(StoreMethod::Delete);
/// let deleting = tokio::spawn({
///     let (store, id) = (store.clone(), record.id);
///     async move { store.delete(&id).await }
/// });
/// while store.held(StoreMethod::Delete) == 0 {
///     tokio::task::yield_now().await;
/// }
/// assert!(store.inner().load(&record.id).await.unwrap().is_some(), "not deleted yet");
/// store.release(StoreMethod::Delete);
/// deleting.await.unwrap().unwrap();
///
/// assert_eq!(store.calls(StoreMethod::Load), 2);
/// assert_eq!(store.calls(StoreMethod::Delete), 1);
/// # });
/// ```
#[derive(Clone)]
pub struct FaultStore<S> {
    inner: S,
    faults: Arc<Faults>,
}

impl<S: Default> Default for FaultStore<S> {
    fn default() -> Self {
        Self::new(S::default())
    }
}

impl<S> FaultStore<S> {
    /// `inner` with no faults: every call goes straight through (and is counted).
    #[must_use]
    pub fn new(inner: S) -> Self {
        Self { inner, faults: Arc::new(Faults(Default::default())) }
    }

    fn state(&self, method: StoreMethod) -> &MethodState {
        &self.faults.0[method.index()]
    }

    /// The store this one wraps, to look at it without faults or counts.
    #[must_use]
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Fails `method`'s calls as `failure` says, from the next call on.
    #[must_use]
    pub fn with_failure(self, method: StoreMethod, failure: Failure) -> Self {
        self.fail(method, failure);
        self
    }

    /// Delays each of `method`'s calls by `latency`.
    #[must_use]
    pub fn with_latency(self, method: StoreMethod, latency: Duration) -> Self {
        self.delay(method, latency);
        self
    }

    /// Holds `method`'s calls at its gate until [`release`](FaultStore::release).
    #[must_use]
    pub fn with_hold(self, method: StoreMethod) -> Self {
        self.hold(method);
        self
    }

    /// Fails `method`'s calls as `failure` says, from the next call on, replacing any
    /// failure set before.
    pub fn fail(&self, method: StoreMethod, failure: Failure) {
        *lock(&self.state(method).failure) = Some(failure);
    }

    /// Ends `method`'s failure: its calls reach the inner store again.
    pub fn recover(&self, method: StoreMethod) {
        *lock(&self.state(method).failure) = None;
    }

    /// Delays each of `method`'s calls by `latency` (`Duration::ZERO`: no delay).
    pub fn delay(&self, method: StoreMethod, latency: Duration) {
        *lock(&self.state(method).latency) = latency;
    }

    /// Holds every call of `method` at its gate from now on, until
    /// [`release`](FaultStore::release).
    pub fn hold(&self, method: StoreMethod) {
        *lock(&self.state(method).hold) = Hold::All;
    }

    /// Holds the next `n` calls of `method` at its gate, until
    /// [`release`](FaultStore::release); later calls go through.
    pub fn hold_next(&self, method: StoreMethod, n: usize) {
        *lock(&self.state(method).hold) = if n == 0 { Hold::Open } else { Hold::Next(n) };
    }

    /// Opens `method`'s gate: the calls held there go on, and later calls are not held.
    pub fn release(&self, method: StoreMethod) {
        let state = self.state(method);
        let mut hold = lock(&state.hold);
        *hold = Hold::Open;
        state.released.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// How many calls of `method` wait at its gate now.
    #[must_use]
    pub fn held(&self, method: StoreMethod) -> usize {
        self.state(method).held.load(Ordering::SeqCst)
    }

    /// Ends every fault of every method: no failure, no latency, gates open.
    pub fn clear(&self) {
        for method in StoreMethod::ALL {
            self.recover(method);
            self.delay(method, Duration::ZERO);
            self.release(method);
        }
    }

    /// How many times `method` was called (failed and held calls included).
    #[must_use]
    pub fn calls(&self, method: StoreMethod) -> usize {
        self.state(method).calls.load(Ordering::SeqCst)
    }

    /// How many calls `methods` got together, e.g. `store.calls_to(&StoreMethod::WRITES)`.
    #[must_use]
    pub fn calls_to(&self, methods: &[StoreMethod]) -> usize {
        methods.iter().map(|&m| self.calls(m)).sum()
    }

    /// How many calls every method got together.
    #[must_use]
    pub fn total_calls(&self) -> usize {
        self.calls_to(&StoreMethod::ALL)
    }
}

impl<S: fmt::Debug> fmt::Debug for FaultStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultStore").field("inner", &self.inner).field("calls", &Calls(&self.faults)).finish()
    }
}

/// The call counts by method, for `Debug`.
struct Calls<'a>(&'a Faults);

impl fmt::Debug for Calls<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = StoreMethod::ALL.iter().map(|&m| (m, self.0 .0[m.index()].calls.load(Ordering::SeqCst)));
        f.debug_map().entries(counts).finish()
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for FaultStore<S> {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.state(StoreMethod::Create).enter().await?;
        self.inner.create(record).await
    }
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        self.state(StoreMethod::Load).enter().await?;
        self.inner.load(id).await
    }
    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        self.state(StoreMethod::Apply).enter().await?;
        self.inner.apply(patch).await
    }
    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        self.state(StoreMethod::Cycle).enter().await?;
        self.inner.cycle(patch, to).await
    }
    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        self.state(StoreMethod::Delete).enter().await?;
        self.inner.delete(id).await
    }
    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.state(StoreMethod::SessionsOf).enter().await?;
        self.inner.sessions_of(user).await
    }
    async fn revoke(&self, handle: &SessionHandle) -> Result<bool, StoreError> {
        self.state(StoreMethod::Revoke).enter().await?;
        self.inner.revoke(handle).await
    }
    async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<Vec<SessionHandle>, StoreError> {
        self.state(StoreMethod::RevokeUser).enter().await?;
        self.inner.revoke_user(user, except).await
    }
    async fn publish(&self, event: &SessionEvent) -> Result<(), StoreError> {
        self.state(StoreMethod::Publish).enter().await?;
        self.inner.publish(event).await
    }
    async fn listen(&self, sink: broadcast::Sender<SessionEvent>) -> Result<(), StoreError> {
        self.state(StoreMethod::Listen).enter().await?;
        self.inner.listen(sink).await
    }
}

/// Expired deletion is passed through without faults or counts: the layer never calls it.
#[async_trait]
impl<S: ExpiredDeletion> ExpiredDeletion for FaultStore<S> {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.inner.delete_expired().await
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::Id;

    /// Answers every method, the optional ones with something their defaults never
    /// give, and counts the calls that reach it.
    #[derive(Debug, Default)]
    struct Answering(AtomicUsize);

    impl Answering {
        fn reached(&self) -> usize {
            self.0.fetch_add(1, Ordering::SeqCst) + 1
        }
    }

    #[async_trait]
    impl SessionStore for Answering {
        async fn create(&self, _: &Record) -> Result<(), StoreError> {
            self.reached();
            Ok(())
        }
        async fn load(&self, _: &RecordId) -> Result<Option<Record>, StoreError> {
            self.reached();
            Ok(None)
        }
        async fn apply(&self, _: &Patch) -> Result<Applied, StoreError> {
            self.reached();
            Err(StoreError::NotFound)
        }
        async fn cycle(&self, _: &Patch, _: RecordId) -> Result<Applied, StoreError> {
            self.reached();
            Err(StoreError::NotFound)
        }
        async fn delete(&self, _: &RecordId) -> Result<(), StoreError> {
            self.reached();
            Ok(())
        }
        async fn sessions_of(&self, _: &str) -> Result<Vec<SessionInfo>, StoreError> {
            self.reached();
            Ok(Vec::new())
        }
        async fn revoke(&self, _: &SessionHandle) -> Result<bool, StoreError> {
            Ok(self.reached() > 0)
        }
        async fn revoke_user(
            &self,
            _: &str,
            _: Option<&SessionHandle>,
        ) -> Result<Vec<SessionHandle>, StoreError> {
            self.reached();
            Ok(Vec::new())
        }
        async fn publish(&self, _: &SessionEvent) -> Result<(), StoreError> {
            self.reached();
            Ok(())
        }
        async fn listen(&self, _: broadcast::Sender<SessionEvent>) -> Result<(), StoreError> {
            self.reached();
            Ok(())
        }
    }

    /// Calls `method` once; whether it succeeded.
    async fn call(store: &FaultStore<Answering>, method: StoreMethod) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let record = Record::new(Id::random().record_id(), now, now);
        let patch = Patch::new(record.id, now, now);
        let handle = SessionHandle::from_record_id(record.id);
        match method {
            StoreMethod::Create => store.create(&record).await,
            StoreMethod::Load => store.load(&record.id).await.map(drop),
            StoreMethod::Apply => store.apply(&patch).await.map(drop).or_else(not_found_is_ok),
            StoreMethod::Cycle => store.cycle(&patch, record.id).await.map(drop).or_else(not_found_is_ok),
            StoreMethod::Delete => store.delete(&record.id).await,
            StoreMethod::SessionsOf => store.sessions_of("u").await.map(drop),
            StoreMethod::Revoke => store.revoke(&handle).await.map(drop),
            StoreMethod::RevokeUser => store.revoke_user("u", None).await.map(drop),
            StoreMethod::Publish => store.publish(&SessionEvent::Revoked { handle }).await,
            StoreMethod::Listen => store.listen(broadcast::channel(1).0).await,
        }
    }

    /// `Answering` says `NotFound` to patches: that is its answer, not a fault.
    fn not_found_is_ok(err: StoreError) -> Result<(), StoreError> {
        match err {
            StoreError::NotFound => Ok(()),
            other => Err(other),
        }
    }

    #[tokio::test]
    async fn every_method_is_forwarded_counted_and_can_fail() {
        let store = FaultStore::new(Answering::default());
        for (i, method) in StoreMethod::ALL.into_iter().enumerate() {
            call(&store, method).await.unwrap_or_else(|e| panic!("{method:?} was not forwarded: {e}"));
            assert_eq!(store.inner().0.load(Ordering::SeqCst), i + 1, "{method:?} reached the inner store");
            assert_eq!(store.calls(method), 1);
        }
        for method in StoreMethod::ALL {
            store.fail(method, Failure::outage());
            let err = call(&store, method).await.expect_err("fails");
            assert!(matches!(err, StoreError::Backend(_)), "{method:?}: {err:?}");
            let cause = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
            assert!(cause.contains("connection refused"), "{cause}");
            assert_eq!(store.calls(method), 2, "failed calls count too");
        }
        assert_eq!(store.inner().0.load(Ordering::SeqCst), 10, "a failed call never reaches the store");
        assert_eq!(store.total_calls(), 20);
        assert_eq!(store.calls_to(&StoreMethod::WRITES), 12);
        store.clear();
        for method in StoreMethod::ALL {
            call(&store, method).await.unwrap_or_else(|e| panic!("{method:?} still fails: {e}"));
        }
    }

    #[tokio::test]
    async fn a_failure_for_n_calls_ends_by_itself_and_a_chosen_error_is_returned() {
        let store = FaultStore::new(Answering::default())
            .with_failure(StoreMethod::Load, Failure::error(|| StoreError::Conflict).times(2));
        for _ in 0..2 {
            assert!(matches!(call(&store, StoreMethod::Load).await, Err(StoreError::Conflict)));
        }
        call(&store, StoreMethod::Load).await.unwrap();
        assert!(call(&store, StoreMethod::Create).await.is_ok(), "other methods are not affected");
        store.fail(StoreMethod::Load, Failure::outage().times(0));
        call(&store, StoreMethod::Load).await.expect("times(0) fails nothing");
        store.fail(StoreMethod::Load, Failure::outage());
        for _ in 0..3 {
            assert!(call(&store, StoreMethod::Load).await.is_err(), "until recovered");
        }
        store.recover(StoreMethod::Load);
        call(&store, StoreMethod::Load).await.unwrap();
    }

    #[tokio::test]
    async fn held_calls_wait_for_the_release_and_cancelled_ones_are_not_counted_as_held() {
        let store = Arc::new(FaultStore::new(Answering::default()));
        store.hold_next(StoreMethod::Load, 2);
        let spawn = || {
            let store = Arc::clone(&store);
            tokio::spawn(async move { call(&store, StoreMethod::Load).await })
        };
        let (a, b) = (spawn(), spawn());
        while store.held(StoreMethod::Load) < 2 {
            tokio::task::yield_now().await;
        }
        call(&store, StoreMethod::Load).await.expect("the third call is not held");
        assert_eq!(store.inner().0.load(Ordering::SeqCst), 1, "the held calls have not reached the store");
        a.abort();
        let _ = a.await;
        assert_eq!(store.held(StoreMethod::Load), 1, "a cancelled call leaves the gate");
        store.release(StoreMethod::Load);
        b.await.expect("task").expect("released");
        assert_eq!(store.held(StoreMethod::Load), 0);
        assert_eq!(store.inner().0.load(Ordering::SeqCst), 2);
        assert_eq!(store.calls(StoreMethod::Load), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_delays_each_call() {
        let store =
            FaultStore::new(Answering::default()).with_latency(StoreMethod::Apply, Duration::from_secs(30));
        let start = tokio::time::Instant::now();
        call(&store, StoreMethod::Apply).await.unwrap();
        // Paused time: the clock moves exactly by the sleeps, so this is no timing race.
        assert_eq!(start.elapsed().as_secs(), 30);
        store.delay(StoreMethod::Apply, Duration::ZERO);
        call(&store, StoreMethod::Apply).await.unwrap();
        assert_eq!(start.elapsed().as_secs(), 30);
    }

    #[test]
    fn debug_shows_counts_not_errors_or_data() {
        let store = FaultStore::new(Answering::default())
            .with_failure(StoreMethod::Apply, Failure::error(|| StoreError::Unsupported("SECRET")));
        let shown = format!("{store:?} {:?}", Failure::error(|| StoreError::Unsupported("SECRET")).times(3));
        assert!(shown.contains("Apply: 0") && shown.contains("left: Some(3)"), "{shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
