//! Shared test plumbing: an axum app that exercises every `Session` method, a cookie-jar
//! client driving it through `oneshot`, and helpers around `FaultStore`.
#![allow(dead_code, unreachable_pub)]

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use session_core::testing::{Failure, FaultStore, StoreMethod};
use session_core::{Expiry, Record, RecordId, Session, SessionLayer, SessionStore};
use time::OffsetDateTime;
use tower::ServiceExt;

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

/// A browser with a one-cookie jar.
pub struct Client {
    pub app: Router,
    pub cookie: Option<String>,
    pub name: String,
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

impl Client {
    pub fn new(app: Router) -> Self {
        Self { app, cookie: None, name: "id".into() }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path).await
    }

    pub async fn post(&mut self, path: &str) -> Reply {
        self.send("POST", path).await
    }

    pub async fn send(&mut self, method: &str, path: &str) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, format!("{}={c}", self.name));
        }
        let reply = send(&self.app, req.body(Body::empty()).unwrap()).await;
        if let Some(set) = reply.set_cookie() {
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            assert_eq!(name, self.name);
            self.cookie = if attrs.contains("Max-Age=0") { None } else { Some(value.to_owned()) };
        }
        reply
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res: Response = app.clone().oneshot(req).await.unwrap().into_response();
    let status = res.status();
    let headers = res.headers().clone();
    let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Reply { status, headers, body }
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
