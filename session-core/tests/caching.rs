//! The caching store: conformance, cache hits, and versions across stale caches.

mod common;

use common::{Counting, Counts};
use session_core::{CachingStore, Id, Record, SessionStore, StoreError};
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

#[tokio::test]
async fn a_stale_cache_cannot_overwrite_newer_data() {
    // Two app instances, each with its own cache, share one backing store.
    let backing = MemoryStore::default();
    let a = CachingStore::new(MemoryStore::default(), backing.clone());
    let b = CachingStore::new(MemoryStore::default(), backing.clone());
    let r = record();
    a.create(&r).await.unwrap();
    assert!(b.load(&r.id).await.unwrap().is_some()); // b caches version 1
    let mut v2 = r.clone();
    v2.version = 2;
    v2.entries.insert("from_a", vec![2].into());
    a.save(&v2, 1).await.unwrap();
    // b's cached version 1 is stale: its save based on it conflicts...
    let mut stale = b.load(&r.id).await.unwrap().unwrap();
    assert_eq!(stale.version, 1);
    stale.version = 2;
    assert!(matches!(b.save(&stale, 1).await, Err(StoreError::Conflict)));
    // ...and the conflict dropped the stale copy: the reload sees version 2.
    assert_eq!(b.load(&r.id).await.unwrap(), Some(v2.clone()));
    assert_eq!(backing.load(&r.id).await.unwrap(), Some(v2));
}

#[tokio::test]
async fn deletes_and_touches_reach_both() {
    let cache = MemoryStore::default();
    let backing = MemoryStore::default();
    let store = CachingStore::new(cache.clone(), backing.clone());
    let r = record();
    store.create(&r).await.unwrap();
    let later = r.expires_at + Duration::hours(1);
    assert!(store.touch(&r.id, later, r.created_at).await.unwrap());
    assert_eq!(cache.load(&r.id).await.unwrap().unwrap().expires_at, later);
    assert_eq!(backing.load(&r.id).await.unwrap().unwrap().expires_at, later);
    store.delete(&r.id).await.unwrap();
    assert!(cache.is_empty() && backing.is_empty());
}
