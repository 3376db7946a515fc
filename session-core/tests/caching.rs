//! The caching store: conformance, cache hits, versions across stale caches, and ends
//! (logout, revoke) reaching other instances within the maximum staleness.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use session_core::caching::DEFAULT_MAX_STALENESS;
use session_core::testing::{FaultStore, StoreMethod};
use session_core::{
    Applied, CachingStore, Change, Id, Patch, Record, RecordId, SessionEvent, SessionHandle, SessionInfo,
    SessionStore, StoreError,
};
use session_store_memory::MemoryStore;
use time::{Duration, OffsetDateTime};
use tokio::sync::{broadcast, Notify};

session_core::store_conformance_tests!(async {
    CachingStore::new(MemoryStore::default(), MemoryStore::default())
});
session_core::user_index_tests!(async { CachingStore::new(MemoryStore::default(), MemoryStore::default()) });
session_core::history_tests!(async { CachingStore::new(MemoryStore::default(), MemoryStore::default()) });

/// Every load goes to the backing store, so every load fills the cache: the fill path
/// against the whole suite, its races included.
mod always_revalidating {
    use super::*;

    session_core::store_conformance_tests!(async {
        CachingStore::new(MemoryStore::default(), MemoryStore::default()).with_max_staleness(Duration::ZERO)
    });
}

/// Long enough that no copy goes stale during a test: what is refused is refused for
/// another reason than its age.
const LONG: Duration = Duration::hours(1);

/// Short enough for tests that wait it out.
const SHORT: Duration = Duration::milliseconds(50);

fn record() -> Record {
    let now = OffsetDateTime::now_utc();
    let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
    r.entries.insert("k", vec![1].into());
    r
}

#[tokio::test]
async fn loads_are_served_from_the_cache() {
    let backing = FaultStore::<MemoryStore>::default();
    let store = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(LONG);
    let r = record();
    store.create(&r).await.unwrap();
    for _ in 0..5 {
        assert_eq!(store.load(&r.id).await.unwrap(), Some(r.clone()));
    }
    assert_eq!(backing.calls(StoreMethod::Load), 0, "every load hit the cache");
    // A cold cache (e.g. after a restart) is filled on the first miss.
    let cold = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(LONG);
    cold.load(&r.id).await.unwrap();
    cold.load(&r.id).await.unwrap();
    assert_eq!(backing.calls(StoreMethod::Load), 1);
}

fn patch(r: &Record) -> Patch {
    let now = OffsetDateTime::now_utc();
    Patch::new(r.id, now + Duration::hours(1), now)
}

#[tokio::test]
async fn a_stale_cache_cannot_overwrite_newer_data() {
    // Two app instances, each with its own cache, share one backing store.
    let backing = MemoryStore::default();
    let a = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(LONG);
    let b = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(LONG);
    let r = record();
    a.create(&r).await.unwrap();
    assert!(b.load(&r.id).await.unwrap().is_some()); // b caches version 1
    let mut from_a = patch(&r);
    from_a.changes.push(Change::update("k", Some(vec![1].into()), Some(vec![2].into())));
    assert_eq!(a.apply(&from_a).await.unwrap().version, 2);
    // b's cached copy is stale: an update based on it conflicts in the backing store...
    let stale = b.load(&r.id).await.unwrap().unwrap();
    assert_eq!(stale.version, 1);
    let mut from_b = patch(&r);
    from_b.changes.push(Change::update("k", Some(vec![1].into()), Some(vec![3].into())));
    assert!(matches!(b.apply(&from_b).await, Err(StoreError::Conflict)));
    // ...and the conflict dropped the stale copy: the reload sees version 2.
    let fresh = b.load(&r.id).await.unwrap().unwrap();
    assert_eq!((fresh.version, fresh.entries.get("k").map(|v| v[0])), (2, Some(2)));
    assert_eq!(backing.load(&r.id).await.unwrap(), Some(fresh));
}

#[tokio::test]
async fn a_current_cache_follows_patches_and_deletes_reach_both() {
    let cache = MemoryStore::default();
    let backing = MemoryStore::default();
    let store = CachingStore::new(cache.clone(), backing.clone()).with_max_staleness(LONG);
    let r = record();
    store.create(&r).await.unwrap();
    let mut p = patch(&r);
    p.changes.push(Change::set("more", Some(vec![9].into())));
    store.apply(&p).await.unwrap();
    let (cached, stored) =
        (cache.load(&r.id).await.unwrap().unwrap(), backing.load(&r.id).await.unwrap().unwrap());
    assert_eq!(cached, stored, "the cached copy followed the patch");
    assert_eq!(cached.expires_at, p.expires_at);
    // A cache that missed a write (another instance's) is dropped rather than patched.
    let mut elsewhere = patch(&r);
    elsewhere.changes.push(Change::set("other", Some(vec![1].into())));
    backing.apply(&elsewhere).await.unwrap();
    store.apply(&p).await.unwrap();
    assert!(cache.load(&r.id).await.unwrap().is_none(), "a stale copy is not kept");
    assert_eq!(store.load(&r.id).await.unwrap(), backing.load(&r.id).await.unwrap());
    store.delete(&r.id).await.unwrap();
    assert!(cache.is_empty() && backing.is_empty());
}

#[test]
fn the_bound_defaults_to_one_second_and_can_be_set() {
    let store = CachingStore::new(MemoryStore::default(), MemoryStore::default());
    assert_eq!((DEFAULT_MAX_STALENESS, store.max_staleness()), (Duration::SECOND, Duration::SECOND));
    assert_eq!(store.clone().with_max_staleness(SHORT).max_staleness(), SHORT);
    assert_eq!(store.with_max_staleness(Duration::seconds(-1)).max_staleness(), Duration::ZERO);
}

/// How a test ends a session on an instance.
#[derive(Debug, Clone, Copy)]
enum End {
    Logout,
    Revoke,
}

async fn end(store: &impl SessionStore, id: RecordId, how: End) {
    match how {
        End::Logout => store.delete(&id).await.unwrap(),
        End::Revoke => assert!(store.revoke(&SessionHandle::from_record_id(id)).await.unwrap()),
    }
}

#[tokio::test]
async fn an_end_on_one_instance_is_refused_on_another_once_the_bound_has_passed() {
    for how in [End::Logout, End::Revoke] {
        // Two app instances over one backing store, and no events between them.
        let backing = MemoryStore::default();
        let a = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(SHORT);
        let b = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(SHORT);
        let r = record();
        a.create(&r).await.unwrap();
        assert_eq!(b.load(&r.id).await.unwrap(), Some(r.clone()), "{how:?}");
        let cached = std::time::Instant::now();
        end(&a, r.id, how).await;
        assert!(a.load(&r.id).await.unwrap().is_none(), "{how:?}: the ending instance still serves it");
        // b read its copy before `cached`: once SHORT has passed since, the copy is too old.
        while cached.elapsed() <= std::time::Duration::try_from(SHORT).unwrap() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(b.load(&r.id).await.unwrap().is_none(), "{how:?}: b still serves a session ended on a");
    }
}

/// Lets the next `hold` loads read from `inner`, then holds them until `release`: a cache
/// miss that has its record and is about to put it into the cache.
#[derive(Debug, Clone, Default)]
struct HeldLoads {
    inner: MemoryStore,
    hold: Arc<AtomicUsize>,
    loaded: Arc<Notify>,
    release: Arc<Notify>,
}

#[async_trait]
impl SessionStore for HeldLoads {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.inner.create(record).await
    }
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let found = self.inner.load(id).await;
        if self.hold.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            self.loaded.notify_one();
            self.release.notified().await;
        }
        found
    }
    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        self.inner.apply(patch).await
    }
    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        self.inner.cycle(patch, to).await
    }
    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.inner.sessions_of(user).await
    }
}

/// Found by the history check: a load that read version 1, slower than a write of version 2
/// made through this instance (which found no copy to update), must not leave version 1
/// vouched for: later reads would miss the write for up to the staleness bound.
#[tokio::test]
async fn a_slow_load_of_an_older_version_is_never_served_after_a_newer_write() {
    let cache = MemoryStore::default();
    let backing = HeldLoads::default();
    let store = CachingStore::new(cache.clone(), backing.clone()).with_max_staleness(LONG);
    let r = record();
    backing.inner.create(&r).await.unwrap(); // not in this instance's cache
    backing.hold.store(1, Ordering::SeqCst);
    let (loader, id) = (store.clone(), r.id);
    let loading = tokio::spawn(async move { loader.load(&id).await });
    backing.loaded.notified().await;
    let mut p = patch(&r);
    p.changes.push(Change::set("k", Some(vec![2].into())));
    assert_eq!(store.apply(&p).await.unwrap().version, 2);
    backing.release.notify_one();
    assert_eq!(loading.await.unwrap().unwrap().map(|r| r.version), Some(1), "the slow load read first");
    let now = store.load(&r.id).await.unwrap().expect("the session");
    assert_eq!(now.version, 2, "a later read sees the acknowledged write");
    assert_eq!(now.entries.get("k").map(|v| v.to_vec()), Some(vec![2]));
}

#[tokio::test]
async fn a_load_racing_an_end_never_puts_the_ended_session_back() {
    for how in [End::Logout, End::Revoke] {
        let cache = MemoryStore::default();
        let backing = HeldLoads::default();
        let store = CachingStore::new(cache.clone(), backing.clone()).with_max_staleness(LONG);
        let r = record();
        backing.inner.create(&r).await.unwrap(); // not in this instance's cache yet
        backing.hold.store(1, Ordering::SeqCst);
        let (loader, id) = (store.clone(), r.id);
        let loading = tokio::spawn(async move { loader.load(&id).await });
        backing.loaded.notified().await;
        end(&store, r.id, how).await;
        backing.release.notify_one();
        assert_eq!(loading.await.unwrap().unwrap(), Some(r.clone()), "{how:?}: the racing load read first");
        assert!(
            cache.load(&r.id).await.unwrap().is_none(),
            "{how:?}: the ended session is back in the cache"
        );
        assert!(store.load(&r.id).await.unwrap().is_none(), "{how:?}: the ended session is served");
    }
}

#[tokio::test]
async fn a_load_racing_a_logout_of_an_old_id_never_caches_the_new_one() {
    let cache = MemoryStore::default();
    let backing = HeldLoads::default();
    let a = CachingStore::new(cache.clone(), backing.clone()).with_max_staleness(LONG);
    let b = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(LONG);
    let r = record();
    b.create(&r).await.unwrap();
    // A login on instance b changes the id; a never hears of it.
    let to = Id::random().record_id();
    b.cycle(&patch(&r), to).await.unwrap();
    // A request with the new cookie reaches a and misses its cache...
    backing.hold.store(1, Ordering::SeqCst);
    let loader = a.clone();
    let loading = tokio::spawn(async move { loader.load(&to).await });
    backing.loaded.notified().await;
    // ...while a logout sent with the old cookie ends the session through the forward.
    a.delete(&r.id).await.unwrap();
    backing.release.notify_one();
    assert!(loading.await.unwrap().unwrap().is_some(), "the racing load read first");
    assert!(backing.inner.load(&to).await.unwrap().is_none(), "the logout followed the forward");
    assert!(cache.load(&to).await.unwrap().is_none(), "the ended session is in the cache");
    assert!(a.load(&to).await.unwrap().is_none(), "the ended session is served");
}

#[tokio::test]
async fn a_logout_of_the_old_id_after_a_cycle_here_ends_the_new_id_here() {
    let backing = MemoryStore::default();
    let store = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(LONG);
    // Warm: the cache moves along and keeps a forward of its own. Cold: the cache never held
    // the record (another instance created it), so only the caching store knows the move.
    for warm in [true, false] {
        let r = record();
        if warm {
            store.create(&r).await.unwrap();
        } else {
            backing.create(&r).await.unwrap();
        }
        let to = Id::random().record_id();
        store.cycle(&patch(&r), to).await.unwrap();
        assert!(store.load(&r.id).await.unwrap().is_none(), "warm={warm}: the old id is served");
        assert!(store.load(&to).await.unwrap().is_some(), "warm={warm}");
        store.delete(&r.id).await.unwrap();
        assert!(backing.load(&to).await.unwrap().is_none(), "warm={warm}: the logout followed the forward");
        assert!(store.load(&to).await.unwrap().is_none(), "warm={warm}: the new id outlived the logout");
    }
}

/// A backing store whose `listen` says it started (`listening`), waits for `go`, delivers
/// `script` all at once and returns: events from other instances, or a burst of them.
#[derive(Debug, Clone, Default)]
struct Scripted {
    inner: MemoryStore,
    script: Arc<Mutex<Vec<SessionEvent>>>,
    listening: Arc<Notify>,
    go: Arc<Notify>,
}

#[async_trait]
impl SessionStore for Scripted {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.inner.create(record).await
    }
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        self.inner.load(id).await
    }
    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        self.inner.apply(patch).await
    }
    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        self.inner.cycle(patch, to).await
    }
    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn listen(&self, sink: broadcast::Sender<SessionEvent>) -> Result<(), StoreError> {
        self.listening.notify_one();
        self.go.notified().await;
        let script = std::mem::take(&mut *self.script.lock().unwrap());
        for event in script {
            let _ = sink.send(event);
        }
        Ok(())
    }
}

fn ended_elsewhere() -> SessionEvent {
    SessionEvent::Destroyed { handle: SessionHandle::from_record_id(Id::random().record_id()) }
}

#[tokio::test]
async fn a_lagging_event_stream_revalidates_every_cached_session() {
    let backing = Scripted::default();
    let store = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(LONG);
    let r = record();
    store.create(&r).await.unwrap();
    // More events at once than the store buffers: the one for `r` would be among those lost.
    *backing.script.lock().unwrap() = (0..4096).map(|_| ended_elsewhere()).collect();
    let (sink, _rx) = broadcast::channel(16);
    let listener = store.clone();
    let listening = tokio::spawn(async move { listener.listen(sink).await });
    backing.listening.notified().await;
    // Cached while the store listens, then ended on another instance.
    assert!(store.load(&r.id).await.unwrap().is_some());
    backing.inner.delete(&r.id).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_some(), "served from the cache, as nothing said otherwise");
    backing.go.notify_one();
    listening.await.unwrap().unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none(), "a copy cached before the lag is still served");
}

#[tokio::test]
async fn events_missed_while_not_listening_revalidate_every_cached_session() {
    let backing = Scripted::default();
    let store = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(LONG);
    let r = record();
    store.create(&r).await.unwrap();
    // Ended elsewhere before this instance listened (or while its listener reconnected).
    backing.inner.delete(&r.id).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_some(), "served from the cache, as nothing said otherwise");
    backing.go.notify_one();
    store.listen(broadcast::channel(16).0).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none(), "a copy cached before listening is still served");
}

#[tokio::test]
async fn a_cycle_heard_from_another_instance_lets_a_logout_of_the_old_id_end_the_new_one() {
    let backing = Scripted::default();
    let a = CachingStore::new(MemoryStore::default(), backing.clone()).with_max_staleness(LONG);
    let b = CachingStore::new(MemoryStore::default(), backing.inner.clone()).with_max_staleness(LONG);
    let (sink, mut events) = broadcast::channel(16);
    let listener = a.clone();
    let listening = tokio::spawn(async move { listener.listen(sink).await });
    backing.listening.notified().await;
    let r = record();
    b.create(&r).await.unwrap();
    let to = Id::random().record_id();
    b.cycle(&patch(&r), to).await.unwrap();
    assert!(a.load(&to).await.unwrap().is_some()); // a caches the session under its new id
    let cycled = SessionEvent::Cycled {
        old: SessionHandle::from_record_id(r.id),
        new: SessionHandle::from_record_id(to),
    };
    backing.script.lock().unwrap().push(cycled);
    backing.go.notify_one();
    listening.await.unwrap().unwrap();
    assert_eq!(events.try_recv().ok(), Some(cycled), "the event reaches the app");
    a.delete(&r.id).await.unwrap(); // a logout with the old cookie
    assert!(a.load(&to).await.unwrap().is_none(), "the new id outlived the logout");
}
