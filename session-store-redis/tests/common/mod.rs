//! Shared test plumbing: the servers `scripts/services` started, unique key prefixes, and an
//! axum app driven through `oneshot`.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code, unreachable_pub)]

pub mod own_redis;

use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{Method, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use session_core::{Id, Key, KeyRing, Session, SessionLayer, SessionStore};
use session_store_redis::redis::cluster_async::ClusterConnection;
use session_store_redis::RedisStore;
use tower::ServiceExt;

/// A variable `scripts/services` exports; missing means the servers are not running, which
/// must fail the test, never skip it.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} not set: run scripts/test, which starts Redis (or `eval \"$(scripts/services start)\"`)"
        )
    })
}

/// The event keys every test app instance shares.
pub fn event_keys() -> KeyRing {
    KeyRing::new(Key::try_from(&[7u8; 32][..]).unwrap())
}

pub fn cluster_urls() -> Vec<String> {
    env("REDIS_CLUSTER_URLS").split(',').filter(|u| !u.is_empty()).map(str::to_owned).collect()
}

/// A fresh key prefix, so parallel test processes and reruns never see each other's keys.
pub fn unique_prefix() -> String {
    format!("test:{}:", &Id::random().record_id().to_string()[..16])
}

pub async fn single_store() -> RedisStore {
    let url = env("REDIS_URL");
    let store = RedisStore::connect(url.as_str()).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    store.with_prefix(unique_prefix())
}

pub async fn cluster_store() -> RedisStore<ClusterConnection> {
    let urls = cluster_urls();
    let store = RedisStore::connect_cluster(urls.iter().map(String::as_str))
        .await
        .unwrap_or_else(|e| panic!("connect cluster {urls:?}: {e}"));
    store.with_prefix(unique_prefix())
}

/// Waits until `want` clients listen on `channel`, summed over `nodes` (on a Cluster,
/// `PUBSUB NUMSUB` counts only the node asked). A listener subscribes in a background task,
/// and an event published before that is lost, so tests wait for it.
pub async fn wait_for_subscribers(nodes: &[String], channel: &str, want: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut total = 0;
        for node in nodes {
            let mut con =
                redis::Client::open(node.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
            let (_, count): (String, i64) =
                redis::cmd("PUBSUB").arg("NUMSUB").arg(channel).query_async(&mut con).await.unwrap();
            total += count;
        }
        if total == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{total} subscribers on {channel}, expected {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET /get/{key}` answers the value or `none`; `POST /set/{key}/{value}` stores it.
/// Session errors become the layer's 500.
pub fn app(store: impl SessionStore) -> Router {
    routes().layer(SessionLayer::new(store).with_secure(false))
}

/// The routes of [`app`] without the session layer, plus `POST /login/{user}`, which logs
/// in as an app would: stores the name, gives the session a new id and ties it to the user.
pub fn routes() -> Router {
    Router::new()
        .route(
            "/get/{key}",
            get(|s: Session, Path(key): Path<String>| async move {
                s.get::<String>(&key).await.map(|v| v.unwrap_or_else(|| "none".to_owned()))
            }),
        )
        .route(
            "/set/{key}/{value}",
            post(|s: Session, Path((key, value)): Path<(String, String)>| async move {
                s.insert(&key, value).await.map(|()| "ok")
            }),
        )
        .route(
            "/login/{user}",
            post(|s: Session, Path(user): Path<String>| async move {
                s.insert("name", user.clone()).await?;
                s.cycle_id().await?;
                s.set_user(user);
                Ok::<_, session_core::Error>("ok")
            }),
        )
        .route("/untouched", get(|| async { "ok" }))
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    /// The `name=value` pair of a `Set-Cookie`, ready for a `Cookie` header.
    pub cookie: Option<String>,
}

/// One request through `app`; a request that hangs fails the test rather than the run.
pub async fn send(app: &Router, method: Method, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        req = req.header(COOKIE, cookie);
    }
    let call = app.clone().oneshot(req.body(Body::empty()).unwrap());
    let res = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| panic!("{path}: no response within 10 s"))
        .unwrap();
    let cookie = res.headers().get(SET_COOKIE).map(|v| {
        let v = v.to_str().unwrap();
        v.split(';').next().unwrap().to_owned()
    });
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Reply { status, body: String::from_utf8(body.to_vec()).unwrap(), cookie }
}
