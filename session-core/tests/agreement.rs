//! The cookie a response carries agrees with what the store holds, also when the handler
//! answers 5xx or the write-back fails: a `cycle_id` that was not written back leaves the old
//! id valid (and its cookie), a logout holds and removes the cookie whatever happens next.

mod common;

use common::{app, fail_writes, record_id, recover_writes, Client};
use session_core::testing::{Failure, FaultStore, StoreMethod};
use session_core::{SessionLayer, SessionStore};
use session_store_memory::MemoryStore;

fn removes_cookie(reply: &common::Reply) -> bool {
    reply.set_cookie().is_some_and(|c| c.contains("Max-Age=0"))
}

#[tokio::test]
async fn a_cycle_in_a_failed_response_keeps_the_old_id_and_its_cookie() {
    let store = FaultStore::new(MemoryStore::default());
    let mut c = Client::new(app(SessionLayer::new(store.clone())));
    c.post("/insert/a/1").await;
    let cookie = c.cookie().unwrap();
    let r = c.post("/cycle-then-fail").await;
    assert_eq!(r.status, 500);
    assert!(r.set_cookie().is_none(), "a failed response sends no new id");
    assert_eq!(store.calls(StoreMethod::Cycle), 0, "the id change was not written back");
    assert_eq!(store.inner().len(), 1, "no orphan record under a new id");
    assert_eq!(c.cookie().as_deref(), Some(cookie.as_str()));
    assert_eq!(c.get("/get/a").await.body, "\"1\"", "the old id still works");
    assert_eq!(c.get("/get/b").await.body, "none", "the failed request's change was not kept");
}

#[tokio::test]
async fn a_cycle_whose_write_back_fails_keeps_the_old_id_and_its_cookie() {
    let store = FaultStore::<MemoryStore>::default();
    let mut c = Client::new(app(SessionLayer::new(store.clone())));
    c.post("/insert/a/1").await;
    let cookie = c.cookie().unwrap();
    fail_writes(&store);
    let r = c.post("/cycle").await;
    assert_eq!(r.status, 500);
    assert!(r.set_cookie().is_none());
    recover_writes(&store);
    assert_eq!(c.cookie().as_deref(), Some(cookie.as_str()));
    assert_eq!(c.get("/get/a").await.body, "\"1\"", "the store still holds the old id");
    assert_eq!(store.inner().len(), 1);
    // Once the store is back, the id change goes through.
    assert_eq!(c.post("/cycle").await.status, 200);
    assert_ne!(c.cookie().as_deref(), Some(cookie.as_str()));
    assert_eq!(c.get("/get/a").await.body, "\"1\"");
}

#[tokio::test]
async fn a_logout_in_a_failed_response_still_removes_the_cookie() {
    let mem = MemoryStore::default();
    let mut c = Client::new(app(SessionLayer::new(mem.clone())));
    c.post("/insert/a/1").await;
    let cookie = c.cookie().unwrap();
    let r = c.post("/flush-then-fail").await;
    assert_eq!(r.status, 500);
    assert!(removes_cookie(&r), "the logout's cookie removal is sent with the 500");
    assert!(mem.load(&record_id(&cookie)).await.unwrap().is_none(), "the logout held");
    c.set_cookie_value(Some(cookie));
    assert_eq!(c.get("/get/a").await.body, "none", "the old cookie opens nothing");
}

#[tokio::test]
async fn a_logout_whose_write_back_fails_still_removes_the_cookie() {
    let store = FaultStore::<MemoryStore>::default();
    let mut c = Client::new(app(SessionLayer::new(store.clone())));
    c.post("/insert/a/1").await;
    let cookie = c.cookie().unwrap();
    // The logout deletes the record; storing the new session it starts then fails.
    store.fail(StoreMethod::Create, Failure::outage());
    let r = c.post("/flush-then-insert").await;
    assert_eq!(r.status, 500);
    assert!(removes_cookie(&r), "the cookie of the ended session is removed");
    assert!(store.inner().load(&record_id(&cookie)).await.unwrap().is_none());
    assert!(store.inner().is_empty());
}

#[tokio::test]
async fn a_failed_logout_is_a_500_even_when_the_handler_ignores_it() {
    let store = FaultStore::<MemoryStore>::default();
    let mut c = Client::new(app(SessionLayer::new(store.clone())));
    c.post("/insert/a/1").await;
    let cookie = c.cookie().unwrap();
    fail_writes(&store);
    let r = c.post("/flush-swallow").await;
    assert_eq!(r.status, 500, "never a silent 200 for a logout that did not happen");
    assert!(r.set_cookie().is_none(), "the cookie still names the live session");
    recover_writes(&store);
    assert_eq!(c.get("/get/a").await.body, "\"1\"");
    let r = c.post("/flush-swallow").await;
    assert_eq!(r.status, 200, "a retry after recovery logs out");
    assert!(removes_cookie(&r));
    assert!(store.inner().load(&record_id(&cookie)).await.unwrap().is_none());
}
