//! Shared test plumbing: an axum app that exercises every `Session` method, a client
//! around the library's `TestClient`, and helpers around `FaultStore`.
#![allow(dead_code, unreachable_pub)]

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use session_core::test_client::{TestClient, TestResponse};
use session_core::testing::{Failure, FaultStore, StoreMethod};
use session_core::{Expiry, Record, RecordId, Session, SessionLayer, SessionStore};
use time::OffsetDateTime;

/// Every route touches the session in one way.
pub fn routes() -> Router {
    Router::new()
        .route("/untouched", get(|| async { "ok" }))
        .route(
            "/get/{key}",
            get(|s: Session, Path(k): Path<String>| async move {
                match s.get::<serde_json::Value>(&k).await {
                    Ok(Some(v)) => v.to_string(),
                    Ok(None) => "none".to_owned(),
                    Err(e) => format!("error: {e}"),
                }
            }),
        )
        .route(
            // A wrong type becomes the error response (and its log line).
            "/get-u32-or-fail/{key}",
            get(|s: Session, Path(k): Path<String>| async move {
                s.get::<u32>(&k).await.map(|v| format!("{v:?}"))
            }),
        )
        .route(
            "/get-u32/{key}",
            get(|s: Session, Path(k): Path<String>| async move {
                match s.get::<u32>(&k).await {
                    Ok(v) => format!("{v:?}"),
                    Err(session_core::Error::Decode { key, .. }) => format!("decode error on {key}"),
                    Err(e) => format!("other error: {e}"),
                }
            }),
        )
        .route(
            "/insert/{key}/{value}",
            post(|s: Session, Path((k, v)): Path<(String, String)>| async move {
                s.insert(&k, v).await.map(|()| "inserted")
            }),
        )
        .route(
            "/insert-n/{key}/{n}",
            post(|s: Session, Path((k, n)): Path<(String, u32)>| async move {
                s.insert(&k, n).await.map(|()| "inserted")
            }),
        )
        .route(
            "/insert-big/{key}/{len}",
            post(|s: Session, Path((k, len)): Path<(String, usize)>| async move {
                match s.insert(&k, "x".repeat(len)).await {
                    Ok(()) => "inserted".to_owned(),
                    Err(e @ session_core::Error::CookieTooLarge { .. }) => format!("too large: {e}"),
                    Err(e) => format!("other error: {e}"),
                }
            }),
        )
        .route(
            "/push/{key}/{item}",
            post(|s: Session, Path((k, item)): Path<(String, String)>| async move {
                s.update(&k, move |v: &mut Vec<String>| v.push(item)).await.map(|()| "pushed")
            }),
        )
        .route(
            "/noop-update/{key}",
            post(|s: Session, Path(k): Path<String>| async move {
                s.update(&k, |_: &mut Vec<String>| {}).await.map(|()| "same")
            }),
        )
        .route(
            "/remove/{key}",
            post(|s: Session, Path(k): Path<String>| async move {
                s.remove::<serde_json::Value>(&k).await.map(|v| format!("{v:?}"))
            }),
        )
        .route(
            "/keys",
            get(|s: Session| async move {
                let keys = s.keys().await?;
                let len = s.len().await?;
                let has_a = s.contains("a").await?;
                Ok::<_, session_core::Error>(format!("{keys:?} {len} {has_a}"))
            }),
        )
        .route("/clear", post(|s: Session| async move { s.clear().await.map(|()| "cleared") }))
        .route("/flush", post(|s: Session| async move { s.flush().await.map(|()| "flushed") }))
        .route(
            "/flush-then-insert",
            post(|s: Session| async move {
                s.flush().await?;
                s.insert("flash", "bye").await.map(|()| "flushed")
            }),
        )
        .route("/cycle", post(|s: Session| async move { s.cycle_id().await.map(|()| "cycled") }))
        .route(
            "/remember",
            post(|s: Session| async move {
                s.set_expiry(Some(Expiry::OnInactivity(time::Duration::days(30))));
                "remembered"
            }),
        )
        .route(
            "/expire-now",
            post(|s: Session| async move {
                s.set_expiry(Some(Expiry::AtDateTime(
                    OffsetDateTime::now_utc() - time::Duration::seconds(1),
                )));
                "expired"
            }),
        )
        .route(
            "/swallow",
            get(|s: Session| async move {
                // A handler that ignores the error must not turn an outage into a logout.
                let _ = s.get::<String>("a").await;
                "fine"
            }),
        )
        .route(
            "/fail",
            post(|s: Session| async move {
                s.insert("a", "from a failing request").await.unwrap();
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
        .route(
            // A login whose response fails after the id change was asked for.
            "/cycle-then-fail",
            post(|s: Session| async move {
                s.cycle_id().await.unwrap();
                s.insert("b", "from a failed login").await.unwrap();
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
        .route(
            // A logout whose response fails afterwards.
            "/flush-then-fail",
            post(|s: Session| async move {
                s.flush().await.unwrap();
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
        .route(
            // A logout that ignores the store's error.
            "/flush-swallow",
            post(|s: Session| async move {
                let _ = s.flush().await;
                "fine"
            }),
        )
        .route(
            // The handler's own `Cache-Control`, given as the query string.
            "/cache-control",
            post(|s: Session, axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                s.insert("a", "1").await.unwrap();
                let value = q.unwrap_or_default().replace("%20", " ");
                ([(header::CACHE_CONTROL, value)], "custom")
            }),
        )
        .route(
            // The handler's own `Vary`, given as the query string.
            "/vary",
            post(|s: Session, uri: axum::http::Uri| async move {
                s.insert("a", "1").await.unwrap();
                let vary = uri.query().unwrap_or_default().replace("%20", " ");
                ([(header::VARY, vary)], "custom")
            }),
        )
}

pub fn app(layer: SessionLayer) -> Router {
    routes().layer(layer)
}

/// A browser: the library's `TestClient` (its cookie jar) pointed at `app`, with the
/// session cookie's name for reading or replacing that cookie.
pub struct Client {
    app: Router,
    client: TestClient<Router>,
    name: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn set_cookie(&self) -> Option<&str> {
        self.headers.get(header::SET_COOKIE).map(|v| v.to_str().unwrap())
    }
}

impl From<TestResponse> for Reply {
    fn from(r: TestResponse) -> Self {
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        Self { status: r.status, headers: r.headers, body }
    }
}

impl Client {
    pub fn new(app: Router) -> Self {
        Self { client: TestClient::new(app.clone()), app, name: "id".into() }
    }

    /// The session cookie is called `name` (default `id`).
    pub fn with_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    pub fn app(&self) -> &Router {
        &self.app
    }

    /// The same browser (the same jar) talking to `app` from now on.
    pub fn set_app(&mut self, app: Router) {
        self.client = self.client.on(app.clone());
        self.app = app;
    }

    /// The session cookie the jar holds.
    pub fn cookie(&self) -> Option<String> {
        self.client.jar().get(&self.name).map(str::to_owned)
    }

    /// Puts `value` in the jar as the session cookie, or drops the cookie for `None`.
    pub fn set_cookie_value(&mut self, value: Option<String>) {
        self.client.with_jar(|jar| match value {
            Some(v) => jar.insert(self.name.as_str(), v),
            None => jar.remove(&self.name),
        });
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path).await
    }

    pub async fn post(&mut self, path: &str) -> Reply {
        self.send("POST", path).await
    }

    pub async fn send(&mut self, method: &str, path: &str) -> Reply {
        let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let reply = self.client.send(req).await;
        let jar = self.client.jar();
        assert!(jar.names().iter().all(|n| *n == self.name), "only the session cookie is set: {jar:?}");
        reply.into()
    }
}

/// Sends `req` as it is (its own `Cookie` header, no jar).
pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    TestClient::new(app.clone()).send(req).await.into()
}

/// Fails every write (`create`, `apply`, `cycle`, `delete`) like an unreachable backend.
pub fn fail_writes<S>(store: &FaultStore<S>) {
    for method in WRITES {
        store.fail(method, Failure::outage());
    }
}

/// Ends what `fail_writes` started.
pub fn recover_writes<S>(store: &FaultStore<S>) {
    for method in WRITES {
        store.recover(method);
    }
}

/// The writes a request's layer can make.
pub const WRITES: [StoreMethod; 4] =
    [StoreMethod::Create, StoreMethod::Apply, StoreMethod::Cycle, StoreMethod::Delete];

/// The record behind a plain (unsigned) id cookie value.
pub fn record_id(cookie: &str) -> RecordId {
    cookie.parse::<session_core::Id>().expect("a plain id cookie").record_id()
}

/// Puts `record` in place of the stored one, as a test's way to move time or expiry.
pub async fn replace(store: &impl SessionStore, record: &Record) {
    store.delete(&record.id).await.expect("delete");
    store.create(record).await.expect("create");
}
