//! Two app instances, each with its own connection and layer, share sessions through Redis:
//! one browser (session-core's test client, one cookie jar) talks to both.

mod common;

use axum::http::StatusCode;
use common::{app, env, unique_prefix};
use session_core::test_client::TestClient;
use session_store_redis::RedisStore;

#[tokio::test]
async fn two_app_instances_share_one_session() {
    let prefix = unique_prefix();
    let url = env("REDIS_URL");
    let a = app(RedisStore::connect(url.as_str()).await.unwrap().with_prefix(prefix.as_str()));
    let b = app(RedisStore::connect(url.as_str()).await.unwrap().with_prefix(prefix.as_str()));
    let on_a = TestClient::new(a);
    let on_b = on_a.on(b);

    let created = on_a.post("/set/k/from-a", "").await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    assert!(on_a.jar().get("id").is_some(), "a new session sets a cookie");

    assert_eq!(on_b.get("/get/k").await.text(), "from-a");
    let changed = on_b.post("/set/k/from-b", "").await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    assert_eq!(on_a.get("/get/k").await.text(), "from-b");
}
