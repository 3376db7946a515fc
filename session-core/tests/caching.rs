//! The caching store: conformance, cache hits, and versions across stale caches.

mod common;

use common::{Counting, Counts};
use session_core::{CachingStore, Change, Id, Patch, Record, SessionStore, StoreError};
use session_store_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

session_core::store_conformance_tests!(async {
    CachingStore::new(MemoryStore::default(), MemoryStore::default())
});

fn record() -> Record {
    let now = OffsetDateTime::now_utc();
    let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
    r.entries.insert("k", vec![1].into());
    r
}

#[tokio::test]
async fn loads_are_served_from_the_cache() {
    let backing = Counting::<MemoryStore>::default();
    let store = CachingStore::new(MemoryStore::default(), backing.clone());
    let r = record();
    store.create(&r).await.unwrap();
    for _ in 0..5 {
        assert_eq!(store.load(&r.id).await.unwrap(), Some(r.clone()));
    }
    assert_eq!(Counts::get(&backing.counts.load), 0, "every load hit the cache");
    // A cold cache (e.g. after a restart) is filled on the first miss.
    let cold = CachingStore::new(MemoryStore::default(), backing.clone());
    cold.load(&r.id).await.unwrap();
    cold.load(&r.id).await.unwrap();
    assert_eq!(Counts::get(&backing.counts.load), 1);
}

fn patch(r: &Record) -> Patch {
    let now = OffsetDateTime::now_utc();
    Patch::new(r.id, now + Duration::hours(1), now)
}

#[tokio::test]
async fn a_stale_cache_cannot_overwrite_newer_data() {
    // Two app instances, each with its own cache, share one backing store.
    let backing = MemoryStore::default();
    let a = CachingStore::new(MemoryStore::default(), backing.clone());
    let b = CachingStore::new(MemoryStore::default(), backing.clone());
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
    let store = CachingStore::new(cache.clone(), backing.clone());
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
