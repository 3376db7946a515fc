//! Through the layer: an axum app writes a session and reads it back, across requests,
//! app restarts and app instances.

mod common;

use axum::http::{Method, StatusCode};
use common::{app, send};
use session_store_sql::SqliteStore;

#[tokio::test]
async fn a_session_written_through_the_layer_reads_back_on_sqlite() {
    let store = common::sqlite().await;
    let path = common::sqlite_path(&store);
    let first = app(store.store.clone());

    let created = send(&first, Method::POST, "/set/user/ada", None).await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    let cookie = created.cookie.expect("a new session sets a cookie");
    assert_eq!(send(&first, Method::GET, "/get/user", Some(&cookie)).await.body, "ada");
    assert_eq!(send(&first, Method::GET, "/get/user", None).await.body, "none");

    // A restarted app: a new pool on the same file.
    store.pool().close().await;
    let restarted = app(SqliteStore::open(&path).await.unwrap());
    let changed = send(&restarted, Method::POST, "/set/user/grace", Some(&cookie)).await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    assert_eq!(send(&restarted, Method::GET, "/get/user", Some(&cookie)).await.body, "grace");
}

#[tokio::test]
async fn two_app_instances_share_one_session_on_postgres() {
    let store = common::postgres().await;
    let url = common::env("DATABASE_URL");
    let a = app(store.store.clone());
    let b = app(common::postgres_store(&url, store.table_name()).await);

    let created = send(&a, Method::POST, "/set/k/from-a", None).await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    let cookie = created.cookie.expect("a new session sets a cookie");
    assert_eq!(send(&b, Method::GET, "/get/k", Some(&cookie)).await.body, "from-a");
    let changed = send(&b, Method::POST, "/set/k/from-b", Some(&cookie)).await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    assert_eq!(send(&a, Method::GET, "/get/k", Some(&cookie)).await.body, "from-b");
}
