//! The test client against a Router: the jar follows the session cookie like a browser,
//! and `session` presets and reads values around requests on a store and in client-side mode.

use axum::http::header::SET_COOKIE;
use axum::response::AppendHeaders;
use axum::routing::{get, post};
use axum::Router;
use session_core::test_client::TestClient;
use session_core::{Expiry, Key, KeyRing, Session, SessionLayer};
use session_store_memory::MemoryStore;

fn routes() -> Router {
    Router::new()
        .route(
            "/count",
            post(|s: Session| async move {
                s.update("n", |n: &mut u32| *n += 1).await?;
                Ok::<_, session_core::Error>(s.get::<u32>("n").await?.unwrap_or_default().to_string())
            }),
        )
        .route(
            "/user",
            get(|s: Session| async move { s.get::<String>("user").await.map(|u| format!("{u:?}")) }),
        )
        .route("/logout", post(|s: Session| async move { s.flush().await.map(|()| "bye") }))
        .route("/login", post(|s: Session| async move { s.cycle_id().await.map(|()| "hi") }))
        .route(
            "/app/other",
            get(|| async {
                (
                    AppendHeaders([(SET_COOKIE, "theme=dark; Path=/app"), (SET_COOKIE, "lang=en; Path=/")]),
                    "ok",
                )
            }),
        )
        .route("/app/echo", get(|h: axum::http::HeaderMap| async move { format!("{:?}", h.get("cookie")) }))
}

async fn presets_and_reads_around_requests(layer: SessionLayer, server_side: bool) {
    let client = TestClient::new(routes().layer(layer.clone())).with_session_layer(&layer);
    assert_eq!(client.get("/user").await.text(), "None");
    client.session(|s| async move { s.insert("user", "ada").await }).await.unwrap();
    assert_eq!(client.get("/user").await.text(), "Some(\"ada\")");
    client.session(|s| async move { s.insert("n", 41u32).await }).await.unwrap();
    assert_eq!(client.post("/count", "").await.text(), "42");
    let n = client.session(|s| async move { s.get::<u32>("n").await }).await.unwrap();
    assert_eq!(n, Some(42), "what the request stored");

    // A new id at login: the jar follows it, the old cookie no longer works.
    let before = client.clone();
    client.post("/login", "").await;
    assert_eq!(client.get("/user").await.text(), "Some(\"ada\")");
    // (A client-side cookie holds the data itself: the old one still reads.)
    if server_side {
        assert_eq!(before.get("/user").await.text(), "None", "the old id is dead");
    }
    // Logout removes the cookie from the jar.
    client.post("/logout", "").await;
    assert_eq!(client.jar().get("id"), None);
    assert_eq!(client.get("/user").await.text(), "None");
}

#[tokio::test]
async fn presets_and_reads_around_requests_on_a_store() {
    presets_and_reads_around_requests(SessionLayer::new(MemoryStore::default()), true).await;
}

#[tokio::test]
async fn presets_and_reads_around_requests_in_client_side_mode() {
    presets_and_reads_around_requests(
        SessionLayer::client_side_private(KeyRing::new(Key::generate())),
        false,
    )
    .await;
    presets_and_reads_around_requests(SessionLayer::client_side_signed(KeyRing::new(Key::generate())), false)
        .await;
}

#[tokio::test]
async fn the_jar_keeps_several_cookies_by_name_and_path() {
    let layer =
        SessionLayer::new(MemoryStore::default()).with_expiry(Expiry::OnInactivity(time::Duration::hours(1)));
    let client = TestClient::new(routes().layer(layer.clone())).with_session_layer(&layer);
    client.post("/count", "").await;
    client.get("/app/other").await;
    let id = client.jar().get("id").unwrap().to_owned();
    assert_eq!(client.jar().names(), vec!["id", "theme", "lang"]);
    assert_eq!(client.get("/app/echo").await.text(), format!("Some(\"theme=dark; id={id}; lang=en\")"));
    // Closing the browser keeps the lasting session cookie (Max-Age) and drops the others.
    client.with_jar(session_core::test_client::CookieJar::end_browser_session);
    assert_eq!(client.jar().names(), vec!["id"]);
    assert_eq!(client.post("/count", "").await.text(), "2");
}

#[tokio::test]
async fn one_browser_on_two_instances_shares_its_jar() {
    let store = std::sync::Arc::new(MemoryStore::default());
    let (a, b) = (SessionLayer::from_arc(store.clone()), SessionLayer::from_arc(store));
    let on_a = TestClient::new(routes().layer(a));
    let on_b = on_a.on(routes().layer(b));
    assert_eq!(on_a.post("/count", "").await.text(), "1");
    assert_eq!(on_b.post("/count", "").await.text(), "2");
    on_b.post("/logout", "").await;
    assert!(on_a.jar().is_empty());
}
