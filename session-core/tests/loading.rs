//! The lazy load under racing clones: one fetch for all of them, and a load abandoned
//! halfway (its future dropped) never leaves the others waiting.

mod common;

use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use common::Client;
use session_core::testing::{FaultStore, StoreMethod};
use session_core::{Session, SessionLayer};
use session_store_memory::MemoryStore;

type Stalling = FaultStore<MemoryStore>;

fn loads(store: &Stalling) -> usize {
    store.calls(StoreMethod::Load)
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
    let store = Stalling::default();
    let mut c = Client::new(app(store.clone()));
    c.post("/seed").await;
    let before = loads(&store);

    store.hold_next(StoreMethod::Load, 1);
    let mut request = Box::pin(c.get("/two-readers"));
    // Drive the request until the first load is stalled in the store, and a little more, so
    // the second clone is certainly waiting for it rather than finding it done.
    let mut polls_while_stalled = 0;
    while polls_while_stalled < 10 {
        if store.held(StoreMethod::Load) == 1 {
            polls_while_stalled += 1;
        }
        tokio::select! {
            biased;
            _ = &mut request => panic!("the request finished while its load was stalled"),
            () = tokio::task::yield_now() => {}
        }
    }
    store.release(StoreMethod::Load);
    let reply = request.await;
    assert_eq!(reply.body, "Some(7) Some(7)");
    assert_eq!(loads(&store) - before, 1, "both clones were served by one fetch");
}

#[tokio::test]
async fn an_abandoned_load_wakes_the_clone_waiting_for_it() {
    let store = Stalling::default();
    let mut c = Client::new(app(store.clone()));
    c.post("/seed").await;
    let before = loads(&store);

    store.hold_next(StoreMethod::Load, 1); // stalled until the end: the first reader gives up
    let reply = c.get("/abandoned").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "gave-up Some(7)");
    assert_eq!(loads(&store) - before, 2, "the abandoned load, then the waiting clone's own");
}
