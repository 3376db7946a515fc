//! The lazy load under racing clones: one fetch for all of them, and a load abandoned
//! halfway (its future dropped) never leaves the others waiting.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::routing::{get, post};
use axum::Router;
use common::{Client, Counting, Counts};
use session_core::{Record, RecordId, Session, SessionLayer, SessionStore, StoreError};
use session_store_memory::MemoryStore;
use time::OffsetDateTime;
use tokio::sync::Notify;

/// Counts calls, and holds the first `stalled` loads until `release` is notified.
#[derive(Debug, Clone)]
struct Stalling {
    inner: Counting<MemoryStore>,
    stalled: Arc<AtomicUsize>,
    release: Arc<Notify>,
}

impl Stalling {
    fn new() -> Self {
        Self {
            inner: Counting::new(MemoryStore::default()),
            stalled: Arc::default(),
            release: Arc::default(),
        }
    }

    fn loads(&self) -> usize {
        Counts::get(&self.inner.counts.load)
    }
}

#[async_trait]
impl SessionStore for Stalling {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.inner.create(record).await
    }
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let stall =
            self.stalled.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if stall {
            self.release.notified().await;
        }
        self.inner.load(id).await
    }
    async fn save(&self, record: &Record, expected: u64) -> Result<(), StoreError> {
        self.inner.save(record, expected).await
    }
    async fn touch(
        &self,
        id: &RecordId,
        at: OffsetDateTime,
        seen: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.inner.touch(id, at, seen).await
    }
    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
}

fn app(store: Stalling) -> Router {
    Router::new()
        .route(
            "/seed",
            post(|s: Session| async move {
                s.insert("n", 7u64).await.unwrap();
            }),
        )
        .route(
            "/two-readers",
            get(|s: Session| async move {
                let other = s.clone();
                let (a, b) = tokio::join!(s.get::<u64>("n"), other.get::<u64>("n"));
                format!("{:?} {:?}", a.unwrap(), b.unwrap())
            }),
        )
        .route(
            // The first reader gives up while its load is stalled; the second, already
            // waiting for that load, must load by itself.
            "/abandoned",
            get(|s: Session| async move {
                let other = s.clone();
                let first = tokio::time::timeout(Duration::from_millis(50), s.get::<u64>("n"));
                let second = async {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    tokio::time::timeout(Duration::from_secs(5), other.get::<u64>("n")).await
                };
                let (first, second) = tokio::join!(first, second);
                let second = second.expect("the waiting clone was never woken").unwrap();
                format!("{} {second:?}", if first.is_err() { "gave-up" } else { "finished" })
            }),
        )
        .layer(SessionLayer::new(store))
}

#[tokio::test]
async fn clones_racing_to_load_share_one_fetch() {
    let store = Stalling::new();
    let mut c = Client::new(app(store.clone()));
    c.post("/seed").await;
    let before = store.loads();

    store.stalled.store(1, Ordering::SeqCst);
    let mut request = Box::pin(c.get("/two-readers"));
    // Drive the request until the first load is stalled in the store, so the second clone
    // is certainly waiting for it rather than finding it done.
    while store.loads() == before && store.stalled.load(Ordering::SeqCst) == 1 {
        tokio::select! {
            biased;
            _ = &mut request => panic!("the request finished while its load was stalled"),
            () = tokio::task::yield_now() => {}
        }
    }
    for _ in 0..10 {
        tokio::select! {
            biased;
            _ = &mut request => panic!("the request finished while its load was stalled"),
            () = tokio::task::yield_now() => {}
        }
    }
    store.release.notify_waiters();
    let reply = request.await;
    assert_eq!(reply.body, "Some(7) Some(7)");
    assert_eq!(store.loads() - before, 1, "both clones were served by one fetch");
}

#[tokio::test]
async fn an_abandoned_load_wakes_the_clone_waiting_for_it() {
    let store = Stalling::new();
    let mut c = Client::new(app(store.clone()));
    c.post("/seed").await;
    let before = store.loads();

    store.stalled.store(1, Ordering::SeqCst); // stalled until the end: the first reader gives up
    let reply = c.get("/abandoned").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "gave-up Some(7)");
    assert_eq!(store.loads() - before, 1, "the stalled load never reached the inner store; the retry did");
}
