//! Redis dies and comes back: the app answers 500 meanwhile and recovers by itself, and the
//! session event listener subscribes again.

mod common;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::own_redis::OwnRedis;
use common::{app, event_keys, send};
use session_core::test_client::TestClient;
use session_core::{Id, SessionEvent, SessionHandle, SessionLayer, SessionStore};
use session_store_redis::RedisStore;
use tokio::sync::broadcast;
use tokio::time::timeout;

#[tokio::test]
async fn an_outage_is_a_500_and_the_store_recovers_by_itself() {
    let mut server = OwnRedis::start().await;
    let app = app(RedisStore::connect(server.url()).await.unwrap());
    let created = send(&app, Method::POST, "/set/k/before", None).await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    let old_cookie = created.cookie.expect("a new session sets a cookie");
    assert_eq!(send(&app, Method::GET, "/get/k", Some(&old_cookie)).await.body, "before");

    server.kill();
    for (method, path, cookie) in [
        (Method::GET, "/get/k", Some(old_cookie.as_str())),
        (Method::POST, "/set/k/during", Some(&old_cookie)),
        (Method::POST, "/set/k/new", None),
    ] {
        let r = send(&app, method, path, cookie).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{path} during the outage: {r:?}");
    }
    assert_eq!(send(&app, Method::GET, "/untouched", None).await.status, StatusCode::OK);

    // Same port, same app: nothing is rebuilt.
    server.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let cookie = loop {
        let r = send(&app, Method::POST, "/set/k/after", None).await;
        if r.status == StatusCode::OK {
            break r.cookie.expect("a new session sets a cookie");
        }
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "only errors while reconnecting: {r:?}");
        assert!(Instant::now() < deadline, "the store did not recover within 10 s: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(send(&app, Method::GET, "/get/k", Some(&cookie)).await.body, "after");
    // A write-back runs the apply script, which the fresh server must load again (NOSCRIPT),
    // as the create above did with the create script.
    assert_eq!(send(&app, Method::POST, "/set/k2/saved", Some(&cookie)).await.status, StatusCode::OK);
    assert_eq!(send(&app, Method::GET, "/get/k2", Some(&cookie)).await.body, "saved");
    // Without persistence the old session died with the server: logged out, not an error.
    let old = send(&app, Method::GET, "/get/k", Some(&old_cookie)).await;
    assert_eq!((old.status, old.body.as_str()), (StatusCode::OK, "none"));
}

#[tokio::test]
async fn the_event_listener_resubscribes_after_a_restart() {
    let mut server = OwnRedis::start().await;
    let nodes = [server.url()];
    let listening = RedisStore::connect(server.url()).await.unwrap().with_event_keys(event_keys());
    let publishing = RedisStore::connect(server.url()).await.unwrap().with_event_keys(event_keys());
    let (tx, mut rx) = broadcast::channel(8);
    let listener = tokio::spawn(async move { listening.listen(tx).await });
    common::wait_for_subscribers(&nodes, "session:events", 1).await;
    let before = SessionEvent::Revoked { handle: SessionHandle::from_record_id(Id::random().record_id()) };
    publishing.publish(&before).await.unwrap();
    assert_eq!(timeout(Duration::from_secs(1), rx.recv()).await.unwrap(), Ok(before));

    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart().await;
    // Back-off is at most 5 s between attempts.
    common::wait_for_subscribers(&nodes, "session:events", 1).await;
    let after = SessionEvent::Destroyed { handle: SessionHandle::from_record_id(Id::random().record_id()) };
    let deadline = Instant::now() + Duration::from_secs(10);
    // The publisher's own connection may still be reconnecting.
    while let Err(err) = publishing.publish(&after).await {
        assert!(Instant::now() < deadline, "publishing after the restart: {err}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(timeout(Duration::from_secs(1), rx.recv()).await.unwrap(), Ok(after));
    assert!(!listener.is_finished());
    drop(rx);
    assert!(timeout(Duration::from_secs(3), listener)
        .await
        .expect("the listener kept running")
        .unwrap()
        .is_ok());
}

/// Redis restarted without persistence (`--save "" --appendonly no`, as `OwnRedis` runs it)
/// forgets every session: old cookies are "no session" (a 200 from the handler, not a 500),
/// and logging in again works, through the same app and store.
#[tokio::test]
async fn after_a_restart_without_persistence_old_cookies_are_no_session_and_logins_work() {
    let mut server = OwnRedis::start().await;
    let store = RedisStore::connect(server.url()).await.unwrap();
    let app = common::routes().layer(SessionLayer::new(store.clone()).with_secure(false));
    let user = TestClient::new(app.clone());
    assert_eq!(user.post("/login/ada", "").await.status, StatusCode::OK);
    assert_eq!(user.get("/get/name").await.text(), "ada");
    let visitor = TestClient::new(app.clone());
    assert_eq!(visitor.post("/set/k/before", "").await.status, StatusCode::OK);
    assert_eq!(store.sessions_of("ada").await.unwrap().len(), 1);
    let old_cookie = user.jar().get("id").map(str::to_owned).expect("logged in");

    server.kill();
    server.restart().await;
    // The store reconnects by itself; a new visitor's first write shows when.
    let newcomer = TestClient::new(app.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = newcomer.post("/set/k/new", "").await.status;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "only errors while reconnecting");
        assert!(Instant::now() < deadline, "the store did not recover within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(newcomer.get("/get/k").await.text(), "new");

    // The old cookies name sessions the server no longer has: logged out, not an error.
    for (browser, key) in [(&user, "name"), (&visitor, "k")] {
        let read = browser.get(&format!("/get/{key}")).await;
        assert_eq!((read.status, read.text().as_str()), (StatusCode::OK, "none"), "an old cookie");
    }
    assert!(store.sessions_of("ada").await.unwrap().is_empty(), "the user index went with the server");
    // Logging in again from the browser that still sends its old cookie.
    assert_eq!(user.post("/login/ada", "").await.status, StatusCode::OK);
    assert_eq!(user.get("/get/name").await.text(), "ada");
    let new_cookie = user.jar().get("id").map(str::to_owned).expect("logged in again");
    assert!(new_cookie != old_cookie, "the new login has a new id");
    assert_eq!(store.sessions_of("ada").await.unwrap().len(), 1);
    // And a write with an old cookie starts a new session instead of failing.
    assert_eq!(visitor.post("/set/k/after", "").await.status, StatusCode::OK);
    assert_eq!(visitor.get("/get/k").await.text(), "after");
}
