//! A socket-like task bound to a session ends when the session does: expired (idle or
//! absolute), revoked, flushed, or moved to a new id. Outcomes are asserted after a bounded
//! wait; nothing else depends on timing.

use std::future::Future;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use session_core::test_client::TestClient;
use session_core::{EndReason, Expiry, Key, KeyRing, Session, SessionHandle, SessionLayer};
use session_store_memory::MemoryStore;
use tokio::sync::mpsc;

const BOUND: Duration = Duration::from_secs(5);

fn routes() -> Router {
    Router::new()
        .route("/logout", post(|s: Session| async move { s.flush().await.map(|()| "bye") }))
        .route("/login", post(|s: Session| async move { s.cycle_id().await.map(|()| "welcome") }))
}

fn client(layer: &SessionLayer) -> TestClient<Router> {
    TestClient::new(routes().layer(layer.clone())).with_session_layer(layer)
}

/// A stored session for `client`; its handle.
async fn logged_in(client: &TestClient<Router>) -> SessionHandle {
    client.session(|s| async move { s.insert("user", "ada").await }).await.unwrap();
    client
        .session(|s| async move { s.get::<String>("user").await.map(|_| s.handle()) })
        .await
        .unwrap()
        .unwrap()
}

/// A task that "serves a socket" until `ended` resolves, then closes with 1008; it also
/// answers pings meanwhile, so it is really running.
fn socket(
    ended: impl Future<Output = EndReason> + Send + 'static,
) -> (mpsc::Sender<()>, tokio::task::JoinHandle<(u16, EndReason, u32)>) {
    let (tx, mut rx) = mpsc::channel::<()>(8);
    let task = tokio::spawn(async move {
        tokio::pin!(ended);
        let mut pings = 0;
        loop {
            tokio::select! {
                reason = &mut ended => return (1008, reason, pings),
                Some(()) = rx.recv() => pings += 1,
            }
        }
    });
    (tx, task)
}

async fn closed(task: tokio::task::JoinHandle<(u16, EndReason, u32)>) -> (u16, EndReason, u32) {
    tokio::time::timeout(BOUND, task).await.expect("the socket was not closed in time").unwrap()
}

#[tokio::test]
async fn an_idle_session_ends_its_socket_when_it_expires() {
    let layer = SessionLayer::new(MemoryStore::default())
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::milliseconds(300)));
    let client = client(&layer);
    logged_in(&client).await;
    let ended = client.session(|s| async move { Ok(s.ended()) }).await.unwrap();
    let (ping, task) = socket(ended);
    ping.send(()).await.unwrap();
    let (code, reason, pings) = closed(task).await;
    assert_eq!((code, reason, pings), (1008, EndReason::Expired, 1));
    let user = client.session(|s| async move { s.get::<String>("user").await }).await.unwrap();
    assert_eq!(user, None, "the session really is over");
}

#[tokio::test]
async fn the_absolute_lifetime_ends_a_busy_session() {
    let layer = SessionLayer::new(MemoryStore::default())
        .with_secure(false)
        .with_max_lifetime(time::Duration::milliseconds(300));
    let client = client(&layer);
    let handle = logged_in(&client).await;
    let (_ping, task) = socket(layer.manager().ended(handle));
    assert_eq!(closed(task).await.1, EndReason::Expired);
}

#[tokio::test]
async fn revoking_flushing_and_cycling_end_the_socket() {
    let layer = SessionLayer::new(MemoryStore::default()).with_secure(false);
    let manager = layer.manager();

    let client = client(&layer);
    let handle = logged_in(&client).await;
    let (_ping, task) = socket(manager.ended(handle));
    assert!(manager.revoke(&handle).await.unwrap());
    assert_eq!(closed(task).await.1, EndReason::Revoked);

    let client = self::client(&layer);
    let handle = logged_in(&client).await;
    let (_ping, task) = socket(manager.ended(handle));
    client.post("/logout", "").await;
    assert_eq!(closed(task).await.1, EndReason::Destroyed);

    let client = self::client(&layer);
    let old = logged_in(&client).await;
    let (_ping, task) = socket(manager.ended(old));
    client.post("/login", "").await;
    let new = client.session(|s| async move { s.get::<String>("user").await.map(|_| s.handle()) }).await;
    let new = new.unwrap().unwrap();
    assert_ne!(new, old);
    assert_eq!(closed(task).await.1, EndReason::Cycled { new });
}

#[tokio::test]
async fn a_session_that_is_not_stored_is_gone_at_once() {
    let layer = SessionLayer::new(MemoryStore::default()).with_secure(false);
    let client = client(&layer);
    let ended = client.session(|s| async move { Ok(s.ended()) }).await.unwrap();
    assert_eq!(closed(socket(ended).1).await.1, EndReason::Gone);
    let handle = logged_in(&client).await;
    layer.manager().revoke(&handle).await.unwrap();
    // Ended before the watch began: no event to hear, the store says so.
    assert_eq!(closed(socket(layer.manager().ended(handle)).1).await.1, EndReason::Gone);
}

#[tokio::test]
async fn a_client_side_session_ends_its_socket_when_its_cookie_expires() {
    let layer = SessionLayer::client_side_private(KeyRing::new(Key::generate()))
        .with_expiry(Expiry::OnInactivity(time::Duration::milliseconds(300)));
    let client = client(&layer);
    client.session(|s| async move { s.insert("user", "ada").await }).await.unwrap();
    let ended = client.session(|s| async move { Ok(s.ended()) }).await.unwrap();
    assert_eq!(closed(socket(ended).1).await.1, EndReason::Expired);
}
