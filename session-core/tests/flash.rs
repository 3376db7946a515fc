//! Flash messages through a Router: read once, survive a redirect, typed levels, client-side
//! mode, and no message lost or repeated under concurrent requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;
use session_core::flash::{Flash, Level};
use session_core::test_client::TestClient;
use session_core::{Key, KeyRing, Session, SessionLayer};
use session_store_memory::MemoryStore;
use tokio::sync::{Notify, Semaphore};

fn routes() -> Router {
    Router::new()
        .route(
            "/flash/{level}/{message}",
            post(|s: Session, Path((level, message)): Path<(String, String)>| async move {
                let level: Level = serde_json::from_value(serde_json::Value::String(level)).unwrap();
                s.flash(level, message).await?;
                Ok::<_, session_core::Error>(Redirect::to("/"))
            }),
        )
        .route(
            "/",
            get(|s: Session| async move {
                let flashes: Vec<Flash> = s.take_flashes().await?;
                Ok::<_, session_core::Error>(serde_json::to_string(&flashes).unwrap())
            }),
        )
        .route("/untouched", get(|| async { "ok" }))
}

/// The (level, message) pairs of a page.
fn shown(body: &str) -> Vec<(String, String)> {
    let list: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
    list.iter()
        .map(|f| (f["level"].as_str().unwrap().to_owned(), f["message"].as_str().unwrap().to_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(l, m)| ((*l).to_owned(), (*m).to_owned())).collect()
}

async fn read_once_after_a_redirect(layer: SessionLayer) {
    let client = TestClient::new(routes().layer(layer.clone())).with_session_layer(&layer);
    let res = client.post("/flash/success/saved", "").await;
    assert_eq!((res.status, res.location()), (StatusCode::SEE_OTHER, "/"));
    client.post("/flash/error/oops", "").await;
    // Requests that do not take them leave them alone.
    client.get("/untouched").await;
    assert_eq!(shown(&client.get("/").await.text()), pairs(&[("success", "saved"), ("error", "oops")]));
    assert!(shown(&client.get("/").await.text()).is_empty(), "shown twice");
    // Set before a request through the test client, taken by the app.
    client.session(|s| async move { s.flash(Level::Warning, "careful").await }).await.unwrap();
    assert_eq!(shown(&client.get("/").await.text()), pairs(&[("warning", "careful")]));
    let left = client.session(|s| async move { s.take_flashes().await }).await.unwrap();
    assert!(left.is_empty());
}

#[tokio::test]
async fn flashes_are_read_once_after_a_redirect() {
    read_once_after_a_redirect(SessionLayer::new(MemoryStore::default()).with_secure(false)).await;
}

#[tokio::test]
async fn flashes_work_in_client_side_mode() {
    read_once_after_a_redirect(SessionLayer::client_side_private(KeyRing::new(Key::generate()))).await;
    read_once_after_a_redirect(SessionLayer::client_side_signed(KeyRing::new(Key::generate()))).await;
}

#[test]
fn levels_are_typed_and_serialize_in_lower_case() {
    for (level, name) in [
        (Level::Info, "info"),
        (Level::Success, "success"),
        (Level::Warning, "warning"),
        (Level::Error, "error"),
    ] {
        assert_eq!(serde_json::to_value(level).unwrap(), serde_json::json!(name));
        assert_eq!(serde_json::from_value::<Level>(serde_json::json!(name)).unwrap(), level);
        assert_eq!(level.to_string(), name);
    }
    assert!(serde_json::from_value::<Level>(serde_json::json!("debug")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_flashes_are_each_delivered_exactly_once() {
    let layer = SessionLayer::new(MemoryStore::default()).with_secure(false);
    // A page that takes the flashes, says so, and answers only when the test lets it: the
    // 16 flashes land between its take and its write-back.
    let (took, release) = (Arc::new(Notify::new()), Arc::new(Semaphore::new(0)));
    let slow = {
        let (took, release) = (Arc::clone(&took), Arc::clone(&release));
        get(|s: Session| async move {
            let flashes = s.take_flashes().await?;
            took.notify_one();
            release.acquire().await.unwrap().forget();
            Ok::<_, session_core::Error>(serde_json::to_string(&flashes).unwrap())
        })
    };
    let app = routes().route("/slow", slow).layer(layer.clone());
    let client = TestClient::new(app.clone()).with_session_layer(&layer);
    client.session(|s| async move { s.insert("user", "ada").await }).await.unwrap();
    for i in 0..2 {
        client.post(&format!("/flash/info/before{i}"), "").await;
    }

    let reader = {
        let client = client.on(app.clone());
        tokio::spawn(async move { shown(&client.get("/slow").await.text()) })
    };
    took.notified().await;
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let client = client.on(app.clone());
            tokio::spawn(async move { client.post(&format!("/flash/info/m{i}"), "").await.status })
        })
        .collect();
    for w in writers {
        assert_eq!(w.await.unwrap(), StatusCode::SEE_OTHER);
    }
    release.add_permits(1);
    let mut seen = reader.await.unwrap();
    assert_eq!(seen, pairs(&[("info", "before0"), ("info", "before1")]));
    seen.extend(shown(&client.get("/").await.text()));
    assert!(shown(&client.get("/").await.text()).is_empty());

    let mut counts = BTreeMap::new();
    for (level, message) in seen {
        assert_eq!(level, "info");
        *counts.entry(message).or_insert(0) += 1;
    }
    let mut expected: BTreeMap<String, i32> = (0..16).map(|i| (format!("m{i}"), 1)).collect();
    expected.extend((0..2).map(|i| (format!("before{i}"), 1)));
    assert_eq!(counts, expected, "every flash exactly once");
    // The rest of the session is untouched.
    let user = client.session(|s| async move { s.get::<String>("user").await }).await.unwrap();
    assert_eq!(user.as_deref(), Some("ada"));
}
