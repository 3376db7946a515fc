//! CSRF tokens, caching and security headers.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use crate::common::{count, TestApp};

#[tokio::test]
async fn state_changes_without_the_right_token_are_refused() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    a.add_bookmark("kept", "https://example.com", "").await;
    let mut other = app.browser();
    other.get("/").await;
    let foreign = other.csrf.clone().unwrap();

    let attempts: [(&str, Vec<(&str, &str)>); 6] = [
        ("/bookmarks", vec![("title", "t"), ("url", "https://evil.example")]),
        ("/notes", vec![("title", "t"), ("body", "b")]),
        ("/vault", vec![("site", "s"), ("login", "l"), ("secret", "x")]),
        ("/prefs", vec![("theme", "dark"), ("per_page", "5")]),
        ("/devices/others/logout", vec![]),
        ("/logout", vec![]),
    ];
    for (path, fields) in attempts {
        for token in [None, Some("wrong"), Some(foreign.as_str()), Some("")] {
            let mut all = fields.clone();
            if let Some(t) = token {
                all.push(("csrf_token", t));
            }
            let res = a.post_raw(path, &all).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{path} with {token:?}");
            res.assert_contains("Reload the page and try again.");
        }
    }
    assert_eq!(
        (count(&app, "bookmarks").await, count(&app, "notes").await, count(&app, "vault").await),
        (1, 0, 0)
    );
    let page = a.get("/bookmarks").await;
    page.assert_contains("class=\"who\"")
        .assert_lacks("evil.example")
        .assert_contains("data-theme=\"light\"");

    // Scripts send the token in a header instead.
    let token = a.csrf.clone().unwrap();
    let req = Request::post("/bookmarks")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-csrf-token", token)
        .body(Body::from("title=via+header&url=https%3A%2F%2Fexample.org"))
        .unwrap();
    assert_eq!(a.send(req).await.status, StatusCode::SEE_OTHER);
    assert_eq!(count(&app, "bookmarks").await, 2);

    // Login forms are protected too (login CSRF), and a fresh visitor has no token yet.
    let mut fresh = app.browser();
    let res = fresh.post_raw("/login", &[("name", "alice"), ("password", "correct horse")]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(
        !res.headers.contains_key(header::SET_COOKIE) || fresh.get("/bookmarks").await.location() == "/login"
    );
}

#[tokio::test]
async fn the_token_changes_at_login() {
    let app = TestApp::memory().await;
    app.browser().register("alice", "correct horse").await;
    let mut b = app.browser();
    b.get("/login").await;
    let before = b.csrf.clone().unwrap();
    b.login("alice", "correct horse", false).await;
    b.get("/").await;
    assert_ne!(b.csrf.clone().unwrap(), before);
    let res = b.post_raw("/notes", &[("csrf_token", &before), ("title", "t"), ("body", "")]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn private_pages_are_not_cached_and_scripts_are_locked_down() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    for path in ["/", "/bookmarks", "/notes", "/vault", "/devices", "/session"] {
        let res = a.get(path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        let cache = res.headers[header::CACHE_CONTROL].to_str().unwrap();
        assert!(cache.contains("no-store"), "{path}: {cache}");
        let csp = res.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(res.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let js = a.get("/static/app.js").await;
    assert_eq!(js.headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert!(js.body.contains("WebSocket") && !js.headers.contains_key(header::SET_COOKIE));
    assert!(a.get("/static/style.css").await.body.contains("--accent"));
}

#[tokio::test]
async fn user_text_is_escaped_everywhere() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    let evil = "<script>alert(1)</script>";
    a.add_bookmark(evil, "https://example.com/\"><script>", evil).await;
    a.post("/notes", &[("title", evil), ("body", evil)]).await;
    a.post("/vault", &[("site", evil), ("login", evil), ("secret", evil)]).await;
    a.post("/demo/session", &[("text", evil)]).await;
    a.post("/demo/global", &[("text", evil)]).await;
    for path in ["/", "/bookmarks", "/notes", "/vault", "/demo/session", "/demo/global", "/session"] {
        a.get(path).await.assert_lacks("<script>alert").assert_lacks("\"><script>");
    }
}
