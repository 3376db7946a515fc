//! CSRF protection through a real router: `SessionLayer` (over `MemoryStore`) outside
//! `CsrfLayer`, driven in memory by the library's `TestClient` (one cookie jar per browser).

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt;
use session_core::csrf::{CsrfLayer, CsrfToken};
use session_core::test_client::{CookieJar, TestClient};
use session_core::{Key, KeyRing, Session, SessionLayer};
use session_store_memory::MemoryStore;
use tower::ServiceExt;

const ORIGIN: &str = "https://app.example";

async fn token(token: CsrfToken) -> String {
    token.as_str().to_owned()
}

/// Echoes what the handler received: its content type and the body, byte for byte.
async fn echo(headers: HeaderMap, body: Bytes) -> (StatusCode, HeaderMap, Bytes) {
    let mut out = HeaderMap::new();
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        out.insert("x-seen-content-type", ct.clone());
    }
    (StatusCode::OK, out, body)
}

async fn login(session: Session) -> Result<&'static str, session_core::Error> {
    session.cycle_id().await?;
    session.insert("user", "alice").await?;
    Ok("welcome")
}

async fn cart(session: Session) -> Result<&'static str, session_core::Error> {
    session.insert("cart", vec!["apple"]).await?;
    Ok("added")
}

/// A page that starts a session (a preference) and renders a form in the same response.
async fn pref_and_token(session: Session, token: CsrfToken) -> Result<String, session_core::Error> {
    session.insert("theme", "dark").await?;
    Ok(token.as_str().to_owned())
}

fn routes() -> Router {
    Router::new()
        .route("/token", get(token))
        .route("/echo", post(echo).put(echo).patch(echo).delete(echo).get(echo).head(echo).options(echo))
        .route("/login", post(login))
        .route("/cart", post(cart))
        .route("/pref", get(pref_and_token))
}

fn csrf() -> CsrfLayer {
    CsrfLayer::new(KeyRing::new(Key::generate())).with_allowed_origin(ORIGIN)
}

fn app(store: MemoryStore) -> Router {
    routes().layer(csrf()).layer(SessionLayer::new(store))
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One browser: a router and a cookie jar.
#[derive(Clone)]
struct Browser {
    client: TestClient<Router>,
}

impl Browser {
    fn new(app: Router) -> Self {
        Self { client: TestClient::new(app) }
    }

    /// Sends `req` with the jar's cookies; the library's jar takes in what comes back.
    async fn send(&mut self, req: Request<Body>) -> Reply {
        let res = self.client.send(req).await;
        Reply { status: res.status, headers: res.headers, body: res.body }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.client.with_jar(|jar| jar.get(name).map(str::to_owned))
    }

    fn set_cookie(&self, name: &str, value: String) {
        self.client.with_jar(|jar| jar.insert(name, value));
    }

    /// Another browser (an empty jar) on the same app.
    fn stranger(&self) -> Self {
        let client = self.client.clone();
        client.set_jar(CookieJar::default());
        Self { client }
    }

    fn clear_cookies(&self) {
        self.client.set_jar(CookieJar::default());
    }

    async fn token(&mut self) -> String {
        let r = self.send(Request::get("/token").body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.text()
    }

    /// A same-origin request as a browser sends it, with the token in the header.
    async fn with_token(&mut self, method: Method, uri: &str, token: &str) -> Reply {
        let req = browser_request(method, uri).header("x-csrf-token", token).body(Body::empty()).unwrap();
        self.send(req).await
    }
}

fn browser_request(method: Method, uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ORIGIN, ORIGIN)
        .header("sec-fetch-site", "same-origin")
}

const UNSAFE: [Method; 4] = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

#[tokio::test]
async fn every_unsafe_method_without_a_token_is_refused() {
    let mut b = Browser::new(app(MemoryStore::default()));
    for method in UNSAFE {
        let r = b.send(browser_request(method.clone(), "/echo").body(Body::from("x")).unwrap()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}");
        assert!(r.text().contains("missing"), "{method}: {}", r.text());
        assert_eq!(r.headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    }
    // With a session, a form without the field, or an empty form: still missing.
    b.with_token(Method::POST, "/cart", &b.clone().token().await).await;
    for method in UNSAFE {
        let req = browser_request(method.clone(), "/echo")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("note=hi"))
            .unwrap();
        assert_eq!(b.send(req).await.status, StatusCode::FORBIDDEN, "{method}");
    }
}

#[tokio::test]
async fn every_unsafe_method_with_a_wrong_token_is_refused() {
    let mut b = Browser::new(app(MemoryStore::default()));
    let good = b.token().await;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0x5a; 64]);
    let mut flipped = good.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for method in UNSAFE {
        for bad in ["", "garbage", forged.as_str(), flipped.as_str()] {
            let r = b.with_token(method.clone(), "/echo", bad).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {bad:?}");
        }
        assert_eq!(b.with_token(method.clone(), "/echo", &good).await.status, StatusCode::OK, "{method}");
    }
    // The same, once the browser has a session.
    b.with_token(Method::POST, "/cart", &good).await;
    let good = b.token().await;
    for method in UNSAFE {
        assert_eq!(b.with_token(method.clone(), "/echo", &forged).await.status, StatusCode::FORBIDDEN);
        assert_eq!(b.with_token(method.clone(), "/echo", &flipped).await.status, StatusCode::FORBIDDEN);
        assert_eq!(b.with_token(method.clone(), "/echo", &good).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn another_sessions_token_is_refused() {
    let store = MemoryStore::default();
    let app = app(store.clone());
    let (mut alice, mut mallory) = (Browser::new(app.clone()), Browser::new(app));
    for b in [&mut alice, &mut mallory] {
        let t = b.token().await;
        assert_eq!(b.with_token(Method::POST, "/cart", &t).await.status, StatusCode::OK);
    }
    assert_eq!(store.len(), 2);
    let mallorys = mallory.token().await;
    for method in UNSAFE {
        assert_eq!(alice.with_token(method.clone(), "/echo", &mallorys).await.status, StatusCode::FORBIDDEN);
    }
    // And another visitor's anonymous token is no better.
    let mut stranger = alice.stranger();
    let strangers = stranger.token().await;
    assert_eq!(alice.with_token(Method::POST, "/echo", &strangers).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_token_rendered_before_login_is_refused_after_it() {
    // A visitor with a session before the login (a cart).
    let mut b = Browser::new(app(MemoryStore::default()));
    let anon = b.token().await;
    assert_eq!(b.with_token(Method::POST, "/cart", &anon).await.status, StatusCode::OK);
    let before = b.token().await;
    assert_eq!(b.with_token(Method::POST, "/login", &before).await.status, StatusCode::OK);
    for method in UNSAFE {
        let r = b.with_token(method.clone(), "/echo", &before).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}: the pre-login token replayed");
        assert_eq!(b.with_token(method.clone(), "/echo", &anon).await.status, StatusCode::FORBIDDEN);
    }
    let after = b.token().await;
    assert_eq!(b.with_token(Method::POST, "/echo", &after).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_anonymous_token_is_refused_after_login_even_with_its_old_cookie() {
    // A visitor without a session: the login itself carries the anonymous token.
    let mut b = Browser::new(app(MemoryStore::default()));
    let before = b.token().await;
    let anon_cookie = b.cookie("__Host-csrf").expect("the anonymous cookie");
    let r = b.with_token(Method::POST, "/login", &before).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(b.cookie("__Host-csrf").is_none(), "the login removes the anonymous cookie");
    assert_eq!(b.with_token(Method::POST, "/echo", &before).await.status, StatusCode::FORBIDDEN);
    // A browser that kept the old cookie anyway gains nothing.
    b.set_cookie("__Host-csrf", anon_cookie);
    assert_eq!(b.with_token(Method::POST, "/echo", &before).await.status, StatusCode::FORBIDDEN);
    let after = b.token().await;
    assert_eq!(b.with_token(Method::POST, "/echo", &after).await.status, StatusCode::OK);
}

#[tokio::test]
async fn cross_site_requests_and_foreign_origins_are_refused_even_with_a_good_token() {
    let mut b = Browser::new(app(MemoryStore::default()));
    let t = b.token().await;
    for method in UNSAFE {
        let cross = Request::builder()
            .method(method.clone())
            .uri("/echo")
            .header("sec-fetch-site", "cross-site")
            .header("x-csrf-token", &t)
            .body(Body::empty())
            .unwrap();
        let r = b.send(cross).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}");
        assert!(r.text().contains("cross-site"));
        for origin in
            ["https://evil.example", "null", "https://app.example.evil.example", "http://app.example"]
        {
            let foreign = Request::builder()
                .method(method.clone())
                .uri("/echo")
                .header(header::ORIGIN, origin)
                .header("x-csrf-token", &t)
                .body(Body::empty())
                .unwrap();
            let r = b.send(foreign).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} from {origin}");
            assert!(r.text().contains("origin"));
        }
    }
    // same-site and none go on to the token check, which passes.
    for site in ["same-site", "none"] {
        let req = Request::post("/echo")
            .header("sec-fetch-site", site)
            .header("x-csrf-token", &t)
            .body(Body::empty());
        assert_eq!(b.send(req.unwrap()).await.status, StatusCode::OK, "{site}");
    }
}

#[tokio::test]
async fn the_right_token_in_the_header_passes_and_the_body_streams_on() {
    let mut b = Browser::new(app(MemoryStore::default()));
    let t = b.token().await;
    let json = r#"{"note":"hi","csrf_token":"not read"}"#;
    for method in UNSAFE {
        let req = browser_request(method.clone(), "/echo")
            .header("x-csrf-token", &t)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json))
            .unwrap();
        let r = b.send(req).await;
        assert_eq!(r.status, StatusCode::OK, "{method}");
        assert_eq!(r.text(), json);
    }
}

#[tokio::test]
async fn the_right_token_in_a_urlencoded_form_passes_with_the_whole_body() {
    let mut b = Browser::new(app(MemoryStore::default()));
    for with_session in [false, true] {
        if with_session {
            let t = b.token().await;
            b.with_token(Method::POST, "/cart", &t).await;
        }
        let t = b.token().await;
        let body = format!("note=caf%C3%A9+au+lait&csrf_token={t}&tags=a&tags=b");
        for method in UNSAFE {
            let req = browser_request(method.clone(), "/echo")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body.clone()))
                .unwrap();
            let r = b.send(req).await;
            assert_eq!(r.status, StatusCode::OK, "{method}: {}", r.text());
            assert_eq!(r.text(), body, "the handler sees the body unchanged");
            assert_eq!(r.headers["x-seen-content-type"], "application/x-www-form-urlencoded");
        }
    }
}

#[tokio::test]
async fn the_right_token_in_a_multipart_form_passes_with_the_whole_body() {
    let mut b = Browser::new(app(MemoryStore::default()));
    let t = b.token().await;
    let ct = "multipart/form-data; boundary=----formboundary7MA4YWxk";
    let body = format!(
        "------formboundary7MA4YWxk\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
         ------formboundary7MA4YWxk\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n\x00\x01binary\u{e9}\r\n\
         ------formboundary7MA4YWxk\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{t}\r\n\
         ------formboundary7MA4YWxk--\r\n"
    );
    for method in UNSAFE {
        let req = browser_request(method.clone(), "/echo")
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(body.clone()))
            .unwrap();
        let r = b.send(req).await;
        assert_eq!(r.status, StatusCode::OK, "{method}: {}", r.text());
        assert_eq!(r.body, body.as_bytes(), "the handler sees the body unchanged");
    }
    // The same form without the token part is refused.
    let without = body.replace("name=\"csrf_token\"", "name=\"other\"");
    let req =
        browser_request(Method::POST, "/echo").header(header::CONTENT_TYPE, ct).body(Body::from(without));
    assert_eq!(b.send(req.unwrap()).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_form_over_the_limit_is_413() {
    let mut b = Browser::new(app(MemoryStore::default()));
    let t = b.token().await;
    let body = format!("csrf_token={t}&big={}", "x".repeat(64 * 1024));
    let req = browser_request(Method::POST, "/echo")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(b.send(req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Declared too large: refused before reading.
    let req = browser_request(Method::POST, "/echo")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, "1000000")
        .body(Body::from(format!("csrf_token={t}")))
        .unwrap();
    assert_eq!(b.send(req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A stream of unknown length: the limit holds too.
    let chunks = vec![Bytes::from(format!("csrf_token={t}&big=")), Bytes::from("y".repeat(70 * 1024))];
    let req = browser_request(Method::POST, "/echo")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::new(Chunks(chunks.into())))
        .unwrap();
    assert_eq!(b.send(req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A body in chunks, of unknown length.
struct Chunks(std::collections::VecDeque<Bytes>);

impl axum::body::HttpBody for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[tokio::test]
async fn a_chunked_form_is_reassembled() {
    let mut b = Browser::new(app(MemoryStore::default()));
    let t = b.token().await;
    let chunks = vec![Bytes::from("note=a&csrf_"), Bytes::from(format!("token={t}")), Bytes::from("&end=1")];
    let whole: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
    let req = browser_request(Method::POST, "/echo")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::new(Chunks(chunks.into())))
        .unwrap();
    let r = b.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.body, whole);
}

#[tokio::test]
async fn safe_methods_pass_without_a_token() {
    let mut b = Browser::new(app(MemoryStore::default()));
    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
        let req = Request::builder()
            .method(method.clone())
            .uri("/echo")
            .header("sec-fetch-site", "cross-site")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::empty())
            .unwrap();
        assert_eq!(b.send(req).await.status, StatusCode::OK, "{method}");
    }
}

#[tokio::test]
async fn a_thousand_cookieless_renders_store_nothing() {
    let store = MemoryStore::default();
    let app = app(store.clone());
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        let res = app.clone().oneshot(Request::get("/token").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let cookies: Vec<_> = res.headers().get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies.len(), 1, "only the anonymous CSRF cookie");
        let c = cookies[0].to_str().unwrap();
        assert!(c.starts_with("__Host-csrf="), "{c}");
        for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(c.contains(attr), "{attr} in {c}");
        }
        assert!(res.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("no-store"));
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert!(seen.insert(body), "every render differs");
    }
    assert_eq!(store.len(), 0, "rendering to anonymous visitors writes nothing to the store");
}

#[tokio::test]
async fn renders_are_masked_and_all_of_them_check() {
    let mut b = Browser::new(app(MemoryStore::default()));
    let t = b.token().await;
    b.with_token(Method::POST, "/cart", &t).await;
    let (t1, t2) = (b.token().await, b.token().await);
    assert_ne!(t1, t2, "each render has its own mask");
    assert_eq!(b.with_token(Method::POST, "/echo", &t1).await.status, StatusCode::OK);
    assert_eq!(b.with_token(Method::POST, "/echo", &t2).await.status, StatusCode::OK);
    assert!(b.token().await.len() < 100, "a session token is short");
}

#[tokio::test]
async fn a_form_rendered_as_the_session_begins_still_works() {
    let store = MemoryStore::default();
    let mut b = Browser::new(app(store.clone()));
    let r = b.send(Request::get("/pref").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(store.len(), 1, "the page began a session");
    assert!(b.cookie("id").is_some() && b.cookie("__Host-csrf").is_some());
    assert_eq!(b.with_token(Method::POST, "/echo", &r.text()).await.status, StatusCode::OK);
    // Until the login.
    let fresh = b.token().await;
    assert_eq!(b.with_token(Method::POST, "/login", &fresh).await.status, StatusCode::OK);
    assert_eq!(b.with_token(Method::POST, "/echo", &r.text()).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_anonymous_token_needs_its_cookie() {
    let mut b = Browser::new(app(MemoryStore::default()));
    let t = b.token().await;
    b.clear_cookies();
    let r = b.with_token(Method::POST, "/echo", &t).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("cookie"), "{}", r.text());
}

#[tokio::test]
async fn client_side_sessions_are_protected_too() {
    let keys = KeyRing::new(Key::generate());
    let app = routes().layer(csrf()).layer(SessionLayer::client_side_private(keys));
    let mut b = Browser::new(app);
    let anon = b.token().await;
    assert_eq!(b.with_token(Method::POST, "/cart", &anon).await.status, StatusCode::OK);
    let before = b.token().await;
    assert_eq!(b.with_token(Method::POST, "/echo", &before).await.status, StatusCode::OK);
    assert_eq!(b.with_token(Method::POST, "/login", &before).await.status, StatusCode::OK);
    assert_eq!(b.with_token(Method::POST, "/echo", &before).await.status, StatusCode::FORBIDDEN);
    let after = b.token().await;
    assert_eq!(b.with_token(Method::POST, "/echo", &after).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_wrong_layer_order_is_a_clear_error() {
    let app = routes().layer(SessionLayer::new(MemoryStore::default())).layer(csrf());
    let res = app.oneshot(Request::get("/token").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("SessionLayer must wrap"));
}
