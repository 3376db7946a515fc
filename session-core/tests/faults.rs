//! The layer against a store that fails one method at a time (`FaultStore`): every failure
//! is a loud error status, never a silent logout, a half-written session or a lost logout;
//! requests that do not need the store never reach it.

mod common;

use axum::http::StatusCode;
use common::{app, record_id, Client, Reply, WRITES};
use session_core::testing::{Failure, FaultStore, StoreMethod};
use session_core::{Record, SessionEvent, SessionHandle, SessionLayer, SessionStore, StoreError};
use session_store_memory::MemoryStore;

type Store = FaultStore<MemoryStore>;

/// A client with a stored session holding `a = "1"` and `list = ["x"]`, and its store.
async fn signed_in() -> (Store, Client) {
    let store = Store::default();
    let mut c = Client::new(app(SessionLayer::new(store.clone())));
    assert_eq!(c.post("/insert/a/1").await.status, 200);
    assert_eq!(c.post("/push/list/x").await.status, 200);
    (store, c)
}

/// What the store holds for the client's cookie.
async fn stored(store: &Store, c: &Client) -> Option<Record> {
    store.inner().load(&record_id(c.cookie().as_deref().expect("a cookie"))).await.expect("load")
}

fn removes_cookie(reply: &Reply) -> bool {
    reply.set_cookie().is_some_and(|c| c.contains("Max-Age=0"))
}

/// Every route that needs the stored session before it can answer.
const LOADING: [(&str, &str); 8] = [
    ("GET", "/get/a"),
    ("GET", "/swallow"),
    ("GET", "/keys"),
    ("POST", "/insert/b/2"),
    ("POST", "/push/list/y"),
    ("POST", "/remove/a"),
    ("POST", "/clear"),
    ("POST", "/cycle"),
];

#[tokio::test]
async fn a_load_error_is_a_500_with_no_set_cookie() {
    let (store, mut c) = signed_in().await;
    let cookie = c.cookie();
    let before = stored(&store, &c).await.expect("stored").to_bytes();
    store.fail(StoreMethod::Load, Failure::outage());
    for (method, path) in LOADING {
        let r = c.send(method, path).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {path}");
        assert!(r.set_cookie().is_none(), "{method} {path}: no cookie is set or removed");
    }
    assert_eq!(store.calls_to(&WRITES), 2, "the create and the push before the outage, nothing since");
    store.recover(StoreMethod::Load);
    assert_eq!(c.cookie(), cookie);
    assert_eq!(stored(&store, &c).await.expect("still stored").to_bytes(), before, "nothing was written");
    assert_eq!(c.get("/get/a").await.body, "\"1\"", "still signed in after the outage");
}

#[tokio::test]
async fn a_load_error_for_one_call_fails_only_that_request() {
    let (store, mut c) = signed_in().await;
    store.fail(StoreMethod::Load, Failure::outage().times(1));
    assert_eq!(c.get("/get/a").await.status, 500);
    let r = c.get("/get/a").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "\"1\""));
}

/// Every route that saves a change of a stored session with one `apply`.
const SAVING: [&str; 5] = ["/insert/b/2", "/insert/a/2", "/push/list/y", "/remove/a", "/remember"];

#[tokio::test]
async fn a_save_error_is_a_500_and_the_record_is_left_exactly_as_it_was() {
    let (store, mut c) = signed_in().await;
    let cookie = c.cookie();
    let before = stored(&store, &c).await.expect("stored");
    store.fail(StoreMethod::Apply, Failure::outage());
    for path in SAVING {
        let applies = store.calls(StoreMethod::Apply);
        let r = c.post(path).await;
        assert_eq!(r.status, 500, "{path}");
        assert!(r.set_cookie().is_none(), "{path}: no cookie is set or removed");
        assert!(store.calls(StoreMethod::Apply) > applies, "{path} tried to save");
        let after = stored(&store, &c).await.expect("the record survives a failed save");
        let bytes =
            |r: &Record| r.entries.iter().map(|(k, v)| (k.to_owned(), v.to_vec())).collect::<Vec<_>>();
        assert_eq!(bytes(&after), bytes(&before), "{path}: byte-identical entries");
        assert_eq!(after.version, before.version, "{path}: same version");
        assert_eq!(after.to_bytes(), before.to_bytes(), "{path}: the whole record is unchanged");
    }
    assert_eq!(c.cookie(), cookie);
    store.recover(StoreMethod::Apply);
    assert_eq!(c.post("/insert/b/2").await.status, 200, "saves work again after recovery");
    assert_eq!(stored(&store, &c).await.expect("stored").version, before.version + 1);
}

#[tokio::test]
async fn a_failed_create_of_a_new_session_sets_no_cookie_and_stores_nothing() {
    let store = Store::default().with_failure(StoreMethod::Create, Failure::outage());
    let mut c = Client::new(app(SessionLayer::new(store.clone())));
    let r = c.post("/insert/a/1").await;
    assert_eq!(r.status, 500);
    assert!(r.set_cookie().is_none(), "no cookie for a session that was not stored");
    assert!(store.inner().is_empty());
}

#[tokio::test]
async fn a_single_conflict_is_retried_and_the_update_lands_once() {
    let (store, mut c) = signed_in().await;
    store.fail(StoreMethod::Apply, Failure::error(|| StoreError::Conflict).times(1));
    assert_eq!(c.post("/push/list/y").await.status, 200);
    assert_eq!(store.calls(StoreMethod::Apply), 1 + 2, "the push before, then a conflict and its retry");
    assert_eq!(c.get("/get/list").await.body, r#"["x","y"]"#, "applied once, not twice");
}

#[tokio::test]
async fn a_delete_error_at_logout_is_a_500_and_a_retry_after_recovery_logs_out() {
    for path in ["/flush", "/flush-swallow"] {
        let (store, mut c) = signed_in().await;
        let cookie = c.cookie();
        let before = stored(&store, &c).await.expect("stored").to_bytes();
        store.fail(StoreMethod::Delete, Failure::outage());
        let r = c.post(path).await;
        assert_eq!(r.status, 500, "{path}: never a silent 200 for a logout that did not happen");
        assert!(r.set_cookie().is_none(), "{path}: the cookie still names the live session");
        assert_eq!(c.cookie(), cookie);
        assert_eq!(stored(&store, &c).await.expect("still stored").to_bytes(), before);

        store.recover(StoreMethod::Delete);
        let r = c.post(path).await;
        assert_eq!(r.status, 200, "{path}: a retry after recovery logs out");
        assert!(removes_cookie(&r), "{path}");
        assert!(store.inner().load(&record_id(cookie.as_deref().unwrap())).await.unwrap().is_none());
        assert!(store.inner().is_empty(), "{path}");
        c.set_cookie_value(cookie);
        assert_eq!(c.get("/get/a").await.body, "none", "{path}: the old cookie opens nothing");
    }
}

#[tokio::test]
async fn a_failed_cycle_is_a_500_and_the_old_id_still_works() {
    let (store, mut c) = signed_in().await;
    let cookie = c.cookie();
    let before = stored(&store, &c).await.expect("stored").to_bytes();
    store.fail(StoreMethod::Cycle, Failure::outage());
    let r = c.post("/cycle").await;
    assert_eq!(r.status, 500);
    assert!(r.set_cookie().is_none(), "no new id is sent");
    assert_eq!(store.calls(StoreMethod::Cycle), 1);
    assert_eq!(store.inner().len(), 1, "no record or forward under a new id");
    assert_eq!(stored(&store, &c).await.expect("still stored").to_bytes(), before);
    assert_eq!(c.cookie(), cookie);
    assert_eq!(c.get("/get/a").await.body, "\"1\"", "the old id still works");

    store.recover(StoreMethod::Cycle);
    assert_eq!(c.post("/cycle").await.status, 200);
    assert_ne!(c.cookie(), cookie, "the id changes once the store is back");
    assert_eq!(c.get("/get/a").await.body, "\"1\"");
}

#[tokio::test]
async fn an_untouched_request_makes_no_store_call_even_when_every_method_fails() {
    let (store, mut c) = signed_in().await;
    for method in StoreMethod::ALL {
        store.fail(method, Failure::outage());
    }
    let before = store.total_calls();
    for cookie in [c.cookie(), None, Some("garbage".to_owned())] {
        c.set_cookie_value(cookie);
        let r = c.get("/untouched").await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok"));
        assert!(r.set_cookie().is_none());
    }
    assert_eq!(store.total_calls(), before, "0 store calls");
}

#[tokio::test]
async fn read_only_requests_make_no_write_even_when_every_write_fails() {
    let (store, mut c) = signed_in().await;
    for method in StoreMethod::WRITES {
        store.fail(method, Failure::outage());
    }
    let (writes, loads) = (store.calls_to(&WRITES), store.calls(StoreMethod::Load));
    let requests = [
        ("GET", "/get/a"),
        ("GET", "/get/missing"),
        ("GET", "/get-u32/a"),
        ("GET", "/keys"),
        ("GET", "/swallow"),
        ("POST", "/noop-update/list"),
        ("POST", "/insert/a/1"),
    ];
    for (method, path) in requests {
        let r = c.send(method, path).await;
        assert_eq!(r.status, 200, "{path}: only reads, or writes what is stored already");
        assert!(r.set_cookie().is_none(), "{path}");
    }
    assert!(store.calls(StoreMethod::Load) > loads, "the reads did reach the store");
    assert_eq!(store.calls_to(&WRITES), writes, "no create, apply, cycle or delete");
}

#[tokio::test]
async fn the_response_waits_for_its_save() {
    let (store, mut c) = signed_in().await;
    store.hold(StoreMethod::Apply);
    let mut request = Box::pin(c.post("/insert/b/2"));
    while store.held(StoreMethod::Apply) == 0 {
        tokio::select! {
            biased;
            _ = &mut request => panic!("the response came before its save was stored"),
            () = tokio::task::yield_now() => {}
        }
    }
    store.release(StoreMethod::Apply);
    assert_eq!(request.await.status, 200);
    assert_eq!(c.get("/get/b").await.body, "\"2\"");
}

#[tokio::test]
async fn a_failing_publish_never_fails_a_logout_and_local_subscribers_still_hear_it() {
    let store = Store::default().with_failure(StoreMethod::Publish, Failure::outage());
    let layer = SessionLayer::new(store.clone());
    let mut events = layer.manager().subscribe();
    let mut c = Client::new(app(layer));
    c.post("/insert/a/1").await;
    let handle = SessionHandle::from_record_id(record_id(c.cookie().as_deref().unwrap()));
    let r = c.post("/flush").await;
    assert_eq!(r.status, 200);
    assert!(removes_cookie(&r));
    assert_eq!(store.calls(StoreMethod::Publish), 1, "the event was offered to the store");
    assert_eq!(events.try_recv().expect("a local event"), SessionEvent::Destroyed { handle });
    assert!(store.inner().is_empty());
}

#[tokio::test]
async fn a_failing_revoke_is_an_error_and_announces_nothing() {
    let (store, c) = signed_in().await;
    let layer = SessionLayer::new(store.clone());
    let manager = layer.manager();
    let mut events = manager.subscribe();
    let handle = SessionHandle::from_record_id(record_id(c.cookie().as_deref().unwrap()));
    store.fail(StoreMethod::Revoke, Failure::outage());
    assert!(manager.revoke(&handle).await.is_err());
    assert!(events.try_recv().is_err(), "no Revoked event for a session still live");
    assert!(stored(&store, &c).await.is_some());
    store.recover(StoreMethod::Revoke);
    assert!(manager.revoke(&handle).await.unwrap());
    assert_eq!(events.try_recv().expect("an event"), SessionEvent::Revoked { handle });
    assert!(stored(&store, &c).await.is_none());
}
