//! Through the layer: an axum app writes a session and reads it back, across requests,
//! app restarts and app instances, driven by one browser (session-core's test client).

mod common;

use axum::http::StatusCode;
use common::app;
use session_core::test_client::TestClient;
use session_store_sql::SqliteStore;

#[tokio::test]
async fn a_session_written_through_the_layer_reads_back_on_sqlite() {
    let store = common::sqlite().await;
    let path = common::sqlite_path(&store);
    let browser = TestClient::new(app(store.store.clone()));

    let created = browser.post("/set/user/ada", "").await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    assert!(browser.jar().get("id").is_some(), "a new session sets a cookie");
    assert_eq!(browser.get("/get/user").await.text(), "ada");
    let stranger = TestClient::new(app(store.store.clone()));
    assert_eq!(stranger.get("/get/user").await.text(), "none");

    // A restarted app: a new pool on the same file, the same browser.
    store.pool().close().await;
    let restarted = browser.on(app(SqliteStore::open(&path).await.unwrap()));
    let changed = restarted.post("/set/user/grace", "").await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    assert_eq!(restarted.get("/get/user").await.text(), "grace");
}

#[tokio::test]
async fn two_app_instances_share_one_session_on_postgres() {
    let store = common::postgres().await;
    let url = common::env("DATABASE_URL");
    // One browser, two instances behind a load balancer.
    let on_a = TestClient::new(app(store.store.clone()));
    let on_b = on_a.on(app(common::postgres_store(&url, store.table_name()).await));

    let created = on_a.post("/set/k/from-a", "").await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    assert!(on_a.jar().get("id").is_some(), "a new session sets a cookie");
    assert_eq!(on_b.get("/get/k").await.text(), "from-a");
    let changed = on_b.post("/set/k/from-b", "").await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    assert_eq!(on_a.get("/get/k").await.text(), "from-b");
}
