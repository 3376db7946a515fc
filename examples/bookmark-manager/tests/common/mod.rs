//! Test helpers: the app on a temp data dir, and a browser (session-core's `TestClient`,
//! whose jar follows `Set-Cookie` like a browser) that drives the router in memory.

#![allow(dead_code, unreachable_pub)]

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use bookmark_manager::{app, setup, AppState, Options, PasswordCost, StoreKind};
use session_core::test_client::TestClient;

/// The app with its data in a temp dir (removed on drop).
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn new(store: StoreKind) -> Self {
        Self::with_options(store, |_| {}).await
    }

    /// With the options `store` gets, changed by `change` (e.g. `--insecure-cookies`).
    pub async fn with_options(store: StoreKind, change: impl FnOnce(&mut Options)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = Options {
            store,
            data_dir: dir.path().join("data"),
            redis_url: std::env::var("REDIS_URL").ok(),
            postgres_url: std::env::var("DATABASE_URL").ok(),
            ..Options::default()
        };
        change(&mut opts);
        let state = setup::open(&opts, PasswordCost::Minimal).await.unwrap();
        Self { router: app(state.clone()), state, dir }
    }

    pub async fn memory() -> Self {
        Self::new(StoreKind::Memory).await
    }

    /// A browser with no cookies; its `client.session` opens its session directly.
    pub fn browser(&self) -> Browser {
        let client = TestClient::new(self.router.clone()).with_session_layer(self.state.session_layer());
        Browser { client, csrf: None }
    }
}

/// A response, body read.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map_or("", |v| v.to_str().unwrap())
    }

    #[track_caller]
    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(self.body.contains(needle), "expected {needle:?} in a {} page:\n{}", self.status, self.body);
        self
    }

    #[track_caller]
    pub fn assert_lacks(&self, needle: &str) -> &Self {
        assert!(!self.body.contains(needle), "did not expect {needle:?} in:\n{}", self.body);
        self
    }
}

/// One browser: cookies (the session-core test client's jar), and the CSRF token of the
/// last page that had one. A clone is a second browser holding copies of the cookies.
#[derive(Clone)]
pub struct Browser {
    pub client: TestClient<Router>,
    pub csrf: Option<String>,
}

impl Browser {
    pub fn new(router: Router) -> Self {
        Browser { client: TestClient::new(router), csrf: None }
    }

    /// The `Cookie` header this browser sends to `/`.
    pub fn cookie_header(&self) -> String {
        self.client.jar().header_for("/").unwrap_or_default()
    }

    pub async fn send(&mut self, req: Request<Body>) -> Page {
        let res = self.client.send(req).await;
        let body = String::from_utf8(res.body.to_vec()).unwrap();
        if let Some(token) = meta_csrf(&body) {
            self.csrf = Some(token);
        }
        Page { status: res.status, headers: res.headers, body }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// Posts a form with this browser's CSRF token (fetched from `/` if none yet).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        if self.csrf.is_none() {
            self.get("/").await;
        }
        let token = self.csrf.clone().unwrap();
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts a form (with the token) and, when the answer redirects (post/redirect/get),
    /// gets the page it redirects to, as a browser does.
    pub async fn post_follow(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let res = self.post(path, fields).await;
        if res.status != StatusCode::SEE_OTHER {
            return res;
        }
        let to = res.location().split('#').next().unwrap_or_default().to_owned();
        self.get(&to).await
    }

    /// Posts exactly `fields`: no token added.
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    /// Posts a form with this browser's CSRF token as if from the client `addr` (the
    /// `ConnectInfo` that `main`'s server adds), with extra `headers`.
    pub async fn post_from(
        &mut self,
        addr: &str,
        headers: &[(&str, &str)],
        path: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        if self.csrf.is_none() {
            self.get("/").await;
        }
        let token = self.csrf.clone().unwrap();
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&all).finish();
        let peer: std::net::SocketAddr = addr.parse().unwrap();
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .extension(axum::extract::ConnectInfo(peer));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    /// Registers (which logs in) and checks it worked.
    pub async fn register(&mut self, name: &str, password: &str) {
        self.get("/register").await;
        let res =
            self.post("/register", &[("name", name), ("password", password), ("confirm", password)]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        self.get("/").await.assert_contains(&format!("Hello, {name}"));
    }

    pub async fn login(&mut self, name: &str, password: &str, remember: bool) -> Page {
        self.get("/login").await;
        let mut fields = vec![("name", name), ("password", password)];
        if remember {
            fields.push(("remember", "on"));
        }
        self.post("/login", &fields).await
    }

    pub async fn add_bookmark(&mut self, title: &str, url: &str, tags: &str) -> Page {
        self.post("/bookmarks", &[("title", title), ("url", url), ("tags", tags)]).await
    }
}

fn meta_csrf(body: &str) -> Option<String> {
    let start = body.find("name=\"csrf-token\" content=\"")? + "name=\"csrf-token\" content=\"".len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_owned()).filter(|t| !t.is_empty())
}

/// `text` as the templates escape it.
pub fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// The ids in `data-id="..."` attributes of a page, in order.
pub fn item_ids(body: &str) -> Vec<i64> {
    body.split("data-id=\"").skip(1).filter_map(|s| s.split('"').next()?.parse().ok()).collect()
}

/// Rows in `table` of the app database, read directly (not through the app).
pub async fn count(app: &TestApp, table: &str) -> i64 {
    let url = format!("sqlite://{}", app.dir.path().join("data/app.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let n = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

/// Rows in the SQLite session store's table (`--session-store sqlite`), read directly.
pub async fn count_sessions(app: &TestApp) -> i64 {
    let url = format!("sqlite://{}", app.dir.path().join("data/sessions.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}
