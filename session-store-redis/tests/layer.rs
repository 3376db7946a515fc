//! Two app instances, each with its own connection and layer, share sessions through Redis.

mod common;

use axum::http::{Method, StatusCode};
use common::{app, env, send, unique_prefix};
use session_store_redis::RedisStore;

#[tokio::test]
async fn two_app_instances_share_one_session() {
    let prefix = unique_prefix();
    let url = env("REDIS_URL");
    let a = app(RedisStore::connect(url.as_str()).await.unwrap().with_prefix(prefix.as_str()));
    let b = app(RedisStore::connect(url.as_str()).await.unwrap().with_prefix(prefix.as_str()));

    let created = send(&a, Method::POST, "/set/k/from-a", None).await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    let cookie = created.cookie.expect("a new session sets a cookie");

    assert_eq!(send(&b, Method::GET, "/get/k", Some(&cookie)).await.body, "from-a");
    let changed = send(&b, Method::POST, "/set/k/from-b", Some(&cookie)).await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    assert_eq!(send(&a, Method::GET, "/get/k", Some(&cookie)).await.body, "from-b");
}
