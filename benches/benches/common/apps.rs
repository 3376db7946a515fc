//! The same routes three times: without sessions, with session-core, with tower-sessions.
//! Shared by the layer bench and the instruction-count example.
use axum::body::Body;
use axum::http::{header, Request};
use axum::routing::{get, post};
use axum::Router;
use benches::{bookmarks, Preferences};

/// One request as every bench sends it: no body, an optional `Cookie` header.
pub(crate) fn request(method: &str, path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::empty()).unwrap()
}

/// The `name=value` part of the cookie a response set, if it set one.
pub(crate) fn cookie_of(res: &axum::response::Response) -> Option<String> {
    let set = res.headers().get(header::SET_COOKIE)?.to_str().ok()?;
    Some(set.split(';').next()?.to_owned())
}

const COUNTER: &str = "counter";

pub(crate) fn bare() -> Router {
    Router::new()
        .route("/untouched", get(|| async { "ok" }))
        .route("/new", post(|| async { "1" }))
        .route("/read", get(|| async { "1" }))
        .route("/incr", post(|| async { "2" }))
}

async fn incr(session: session_core::Session) -> String {
    let n: u64 = session.get(COUNTER).await.unwrap().unwrap_or(0);
    session.insert(COUNTER, n + 1).await.unwrap();
    (n + 1).to_string()
}

pub(crate) fn ours() -> Router {
    Router::new()
        .route("/untouched", get(|| async { "ok" }))
        .route(
            "/new",
            post(|s: session_core::Session| async move {
                s.insert(COUNTER, 1u64).await.unwrap();
                "1"
            }),
        )
        .route(
            "/read",
            get(|s: session_core::Session| async move {
                s.get::<u64>(COUNTER).await.unwrap().unwrap_or(0).to_string()
            }),
        )
        .route("/incr", post(incr))
        .route(
            "/setup-large",
            post(|s: session_core::Session| async move {
                large_session(|k, v| {
                    let s = s.clone();
                    async move { s.insert(&k, v).await.unwrap() }
                })
                .await;
                "ok"
            }),
        )
}

async fn their_incr(session: tower_sessions::Session) -> String {
    let n: u64 = session.get(COUNTER).await.unwrap().unwrap_or(0);
    session.insert(COUNTER, n + 1).await.unwrap();
    (n + 1).to_string()
}

pub(crate) fn their_private_layer(
) -> tower_sessions::SessionManagerLayer<tower_sessions::MemoryStore, tower_sessions::service::PrivateCookie>
{
    tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
        .with_secure(false)
        .with_private(tower_sessions::cookie::Key::generate())
}

pub(crate) fn theirs() -> Router {
    Router::new()
        .route("/untouched", get(|| async { "ok" }))
        .route(
            "/new",
            post(|s: tower_sessions::Session| async move {
                s.insert(COUNTER, 1u64).await.unwrap();
                "1"
            }),
        )
        .route(
            "/read",
            get(|s: tower_sessions::Session| async move {
                s.get::<u64>(COUNTER).await.unwrap().unwrap_or(0).to_string()
            }),
        )
        .route("/incr", post(their_incr))
        .route(
            "/setup-large",
            post(|s: tower_sessions::Session| async move {
                large_session(|k, v| {
                    let s = s.clone();
                    async move { s.insert(&k, v).await.unwrap() }
                })
                .await;
                "ok"
            }),
        )
}

/// 20 keys, one of them a list of 100 bookmarks.
async fn large_session<F, Fut>(mut put: F)
where
    F: FnMut(String, serde_json::Value) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    put("bookmarks".into(), serde_json::to_value(bookmarks(100)).unwrap()).await;
    put(
        "prefs".into(),
        serde_json::to_value(Preferences { theme: "dark".into(), per_page: 25, language: "en".into() })
            .unwrap(),
    )
    .await;
    put(COUNTER.into(), 0.into()).await;
    for i in 0..17 {
        put(format!("key{i}"), format!("value number {i}").into()).await;
    }
}
