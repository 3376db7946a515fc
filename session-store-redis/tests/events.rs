//! Session events cross app instances through Redis pub/sub: revoking a user's sessions on
//! one instance reaches the subscribers of another, which also refuses the revoked cookie.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{cluster_urls, env, event_keys, routes, send, unique_prefix, wait_for_subscribers};
use session_core::{Id, SessionEvent, SessionHandle, SessionLayer, SessionStore, StoreError};
use session_store_redis::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use session_store_redis::{redis, RedisStore};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::time::timeout;

fn handle_of(cookie: &str) -> SessionHandle {
    let id: Id = cookie.split_once('=').unwrap().1.parse().unwrap();
    SessionHandle::from_record_id(id.record_id())
}

/// Two app instances, A and B, each with its own store connection, layer and manager.
async fn revoking_on_one_instance_reaches_the_other(
    a: impl SessionStore,
    b: impl SessionStore,
    nodes: &[String],
    prefix: &str,
) {
    let channel = format!("{prefix}events");
    let (layer_a, layer_b) =
        (SessionLayer::new(a).with_secure(false), SessionLayer::new(b).with_secure(false));
    let (manager_a, manager_b) = (layer_a.manager(), layer_b.manager());
    let (app_a, app_b) = (routes().layer(layer_a), routes().layer(layer_b));
    let mut on_a = manager_a.subscribe();
    let mut on_b = manager_b.subscribe();
    wait_for_subscribers(nodes, &channel, 2).await;

    // A visitor's session on B, then a login: `cycle_id` moves it to a new id.
    let visit = send(&app_b, Method::POST, "/set/cart/1", None).await;
    let anonymous = visit.cookie.expect("a new session sets a cookie");
    let login = send(&app_b, Method::POST, "/login/alice", Some(&anonymous)).await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    let cookie = login.cookie.expect("login sets a new cookie");
    for app in [&app_a, &app_b] {
        assert_eq!(send(app, Method::GET, "/get/name", Some(&cookie)).await.body, "alice");
    }
    let handle = handle_of(&cookie);
    let cycled = SessionEvent::Cycled { old: handle_of(&anonymous), new: handle };
    // B's own event reaches B's subscribers locally, and A's through Redis.
    assert_eq!(on_b.try_recv(), Ok(cycled));
    let heard = timeout(Duration::from_secs(1), on_a.recv()).await.expect("A heard nothing within 1 s");
    assert_eq!(heard, Ok(cycled));

    assert_eq!(manager_a.revoke_user("alice", None).await.unwrap(), vec![handle]);

    let heard = timeout(Duration::from_secs(1), on_b.recv()).await.expect("B heard nothing within 1 s");
    assert_eq!(heard.unwrap(), SessionEvent::Revoked { handle });
    let after = send(&app_b, Method::GET, "/get/name", Some(&cookie)).await;
    assert_eq!((after.status, after.body.as_str()), (StatusCode::OK, "none"), "B still accepts the cookie");
    assert!(manager_b.sessions_of("alice").await.unwrap().is_empty());

    // A got its own event once, locally, and never a second time through Redis.
    assert_eq!(on_a.try_recv(), Ok(SessionEvent::Revoked { handle }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(on_a.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(on_b.try_recv(), Err(TryRecvError::Empty));
}

#[tokio::test]
async fn single_node_revocation_crosses_instances() {
    let prefix = unique_prefix();
    let url = env("REDIS_URL");
    let a = RedisStore::connect(url.as_str())
        .await
        .unwrap()
        .with_prefix(prefix.as_str())
        .with_event_keys(event_keys());
    let b = RedisStore::connect(url.as_str())
        .await
        .unwrap()
        .with_prefix(prefix.as_str())
        .with_event_keys(event_keys());
    revoking_on_one_instance_reaches_the_other(a, b, &[url], &prefix).await;
}

#[tokio::test]
async fn cluster_revocation_crosses_instances() {
    let prefix = unique_prefix();
    let urls = cluster_urls();
    let a = RedisStore::connect_cluster(urls.iter().map(String::as_str))
        .await
        .unwrap()
        .with_prefix(prefix.as_str())
        .with_event_keys(event_keys());
    // B knows the nodes in another order, so it listens on another node than A: the
    // Cluster forwards every PUBLISH to every node.
    let b = RedisStore::connect_cluster(urls.iter().rev().map(String::as_str))
        .await
        .unwrap()
        .with_prefix(prefix.as_str())
        .with_event_keys(event_keys());
    revoking_on_one_instance_reaches_the_other(a, b, &urls, &prefix).await;
}

#[tokio::test]
async fn a_clone_hears_the_original_and_the_listener_ends_without_receivers() {
    // Clones of one store are separate instances: each skips only what it published.
    let prefix = unique_prefix();
    let url = env("REDIS_URL");
    let a = RedisStore::connect(url.as_str())
        .await
        .unwrap()
        .with_prefix(prefix.as_str())
        .with_event_keys(event_keys());
    let b = a.clone();
    let (tx, mut rx) = broadcast::channel(8);
    let listener = tokio::spawn({
        let b = b.clone();
        async move { b.listen(tx).await }
    });
    wait_for_subscribers(std::slice::from_ref(&url), &format!("{prefix}events"), 1).await;
    let mine = SessionEvent::Destroyed { handle: SessionHandle::from_record_id(Id::random().record_id()) };
    a.publish(&mine).await.unwrap();
    assert_eq!(timeout(Duration::from_secs(1), rx.recv()).await.unwrap().unwrap(), mine);
    drop(rx);
    // No receiver left: the listener ends by itself (it checks every second).
    let ended = timeout(Duration::from_secs(3), listener).await.expect("the listener kept running");
    assert!(ended.unwrap().is_ok());
}

#[tokio::test]
async fn a_store_without_pubsub_nodes_says_it_cannot_listen() {
    let client = redis::Client::open(env("REDIS_URL")).unwrap();
    let manager = ConnectionManager::new_with_config(client, ConnectionManagerConfig::new()).await.unwrap();
    let store = RedisStore::new(manager).with_prefix(unique_prefix());
    let event = SessionEvent::Revoked { handle: SessionHandle::from_record_id(Id::random().record_id()) };
    // Without keys, events are refused both ways: unsigned ones could be forged.
    let (tx, _rx) = broadcast::channel(1);
    assert!(
        matches!(store.clone().listen(tx).await, Err(StoreError::Unsupported(m)) if m.contains("with_event_keys"))
    );
    assert!(
        matches!(store.publish(&event).await, Err(StoreError::Unsupported(m)) if m.contains("with_event_keys"))
    );
    let store = store.with_event_keys(event_keys());
    let (tx, _rx) = broadcast::channel(1);
    assert!(matches!(store.listen(tx).await, Err(StoreError::Unsupported(m)) if m.contains("subscribe")));
    // Publishing needs no subscription.
    store.publish(&event).await.unwrap();
}
