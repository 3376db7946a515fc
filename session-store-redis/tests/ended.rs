//! A socket-like task bound to a session on one app instance ends when the session ends:
//! revoked on another instance (two layers over one Redis, events signed with shared keys),
//! or expired by its idle timeout (no event: the watch asks the store when the record's
//! expiry instant passes). Outcomes are asserted after a bounded wait.

mod common;

use std::future::Future;
use std::time::Duration;

use common::{env, event_keys, routes, unique_prefix, wait_for_subscribers};
use session_core::test_client::TestClient;
use session_core::{EndReason, Expiry, SessionHandle, SessionLayer};
use session_store_redis::RedisStore;

async fn store(prefix: &str) -> RedisStore {
    RedisStore::connect(env("REDIS_URL").as_str())
        .await
        .unwrap()
        .with_prefix(prefix)
        .with_event_keys(event_keys())
}

/// A stored session for `client`; its handle.
async fn logged_in(client: &TestClient<axum::Router>) -> SessionHandle {
    client.session(|s| async move { s.insert("user", "ada").await }).await.unwrap();
    client
        .session(|s| async move { s.get::<String>("user").await.map(|_| s.handle()) })
        .await
        .unwrap()
        .expect("a stored session")
}

/// A task serving a "socket" until `ended` resolves; then it closes with 1008.
fn socket(
    ended: impl Future<Output = EndReason> + Send + 'static,
) -> tokio::task::JoinHandle<(u16, EndReason)> {
    tokio::spawn(async move { (1008, ended.await) })
}

#[tokio::test]
async fn a_socket_on_one_instance_ends_within_a_second_of_a_revoke_on_another() {
    let prefix = unique_prefix();
    let (layer_a, layer_b) = (
        SessionLayer::new(store(&prefix).await).with_secure(false),
        SessionLayer::new(store(&prefix).await).with_secure(false),
    );
    let browser = TestClient::new(routes().layer(layer_b.clone())).with_session_layer(&layer_b);
    let handle = logged_in(&browser).await;

    // The socket is served by instance B.
    let task = socket(layer_b.manager().ended(handle));
    wait_for_subscribers(&[env("REDIS_URL")], &format!("{prefix}events"), 1).await;
    // Let the watch look at the store once (a session already gone when it looks is
    // `Gone`, which the assertion below would report).
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(layer_a.manager().revoke(&handle).await.unwrap(), "A revokes it");
    let closed = tokio::time::timeout(Duration::from_secs(1), task).await.expect("still open after 1 s");
    assert_eq!(closed.unwrap(), (1008, EndReason::Revoked));
}

#[tokio::test]
async fn a_socket_ends_when_its_idle_session_expires_in_redis() {
    let prefix = unique_prefix();
    let layer = SessionLayer::new(store(&prefix).await)
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::milliseconds(300)));
    let browser = TestClient::new(routes().layer(layer.clone())).with_session_layer(&layer);
    logged_in(&browser).await;
    let ended = browser.session(|s| async move { Ok(s.ended()) }).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), socket(ended)).await.expect("still open");
    assert_eq!(closed.unwrap(), (1008, EndReason::Expired));
    let user = browser.session(|s| async move { s.get::<String>("user").await }).await.unwrap();
    assert_eq!(user, None, "Redis dropped the record");
}
