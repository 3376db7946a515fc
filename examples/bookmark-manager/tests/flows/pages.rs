//! Pages that need no login: welcome, demo lists, the session page, preferences, flash
//! messages, errors.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use bookmark_manager::StoreKind;
use tower::ServiceExt;

use crate::common::{count_sessions, TestApp};

#[tokio::test]
async fn welcome_page_links_everywhere() {
    let app = TestApp::memory().await;
    let page = app.browser().get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    for link in ["/login", "/register", "/demo/global", "/demo/session", "/session"] {
        page.assert_contains(&format!("href=\"{link}\""));
    }
    page.assert_lacks("data-live-sync");
    // Logging in leads back to the page asked for.
    for (path, next) in [
        ("/bookmarks", "%2Fbookmarks"),
        ("/notes?page=2", "%2Fnotes%3Fpage%3D2"),
        ("/vault", "%2Fvault"),
        ("/devices", "%2Fdevices"),
        ("/bookmarks/1/edit", "%2Fbookmarks%2F1%2Fedit"),
    ] {
        assert_eq!(app.browser().get(path).await.location(), format!("/login?next={next}"), "{path}");
    }
}

/// Showing the pages a visitor without a session sees first writes nothing to the session
/// store (a crawler or a flood of visitors costs no storage), and the CSRF token those
/// forms carry, bound to a cookie of its own, still lets the visitor register and log in.
#[tokio::test]
async fn anonymous_page_views_store_no_session() {
    let app = TestApp::new(StoreKind::Sqlite).await;
    for i in 0..200 {
        let path = ["/", "/login", "/register"][i % 3];
        let req = Request::get(path).body(Body::empty()).unwrap();
        let res = app.router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let cookies: Vec<&str> =
            res.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert!(cookies.iter().all(|c| !c.starts_with("__Host-bm_session=")), "{path}: {cookies:?}");
        assert!(cookies.iter().any(|c| c.starts_with("__Host-bm_csrf=")), "{path}: {cookies:?}");
    }
    assert_eq!(count_sessions(&app).await, 0, "no session was stored");

    // The forms work with the anonymous token: register, then log in from another browser.
    app.browser().register("alice", "correct horse").await;
    let mut b = app.browser();
    b.get("/login").await;
    assert!(!b.cookie_header().contains("__Host-bm_session="), "{}", b.cookie_header());
    assert_eq!(count_sessions(&app).await, 1, "only alice's first login");
    let res = b.login("alice", "correct horse", false).await;
    assert_eq!((res.status, res.location()), (StatusCode::SEE_OTHER, "/"), "{}", res.body);
    b.get("/").await.assert_contains("Welcome back, alice.").assert_contains("Hello, alice");
    // The login changed the id, which ends the anonymous token and its cookie.
    assert!(!b.cookie_header().contains("__Host-bm_csrf="), "{}", b.cookie_header());
    assert_eq!(count_sessions(&app).await, 2);
}

#[tokio::test]
async fn shared_list_versus_session_list() {
    let app = TestApp::memory().await;
    let mut one = app.browser();
    let mut two = app.browser();
    one.get("/demo/global").await.assert_contains("This list is global.");
    one.post("/demo/global", &[("text", "hello everyone")]).await;
    one.post("/demo/session", &[("text", "only mine")]).await;
    two.get("/demo/global").await.assert_contains("hello everyone");
    two.get("/demo/session").await.assert_contains("This list is yours alone.").assert_lacks("only mine");
    let mine = one.get("/demo/session").await;
    mine.assert_contains("only mine").assert_contains("Added to this session&#x27;s list.");
    one.post("/demo/session/clear", &[]).await;
    one.get("/demo/session").await.assert_lacks("only mine");
    let res = one.post("/demo/global", &[("text", "   ")]).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    res.assert_contains("Entries are 1 to 100 characters.");
    for i in 0..25 {
        two.post("/demo/global", &[("text", &format!("entry {i}"))]).await;
    }
    let page = two.get("/demo/global").await;
    page.assert_contains("entry 24").assert_lacks("hello everyone");
}

#[tokio::test]
async fn the_session_page_shows_keys_but_not_secrets() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    a.post("/prefs", &[("theme", "dark"), ("per_page", "20")]).await;
    a.get("/").await;
    let page = a.get("/session").await;
    page.assert_contains("memory: in this server process")
        .assert_contains("Server-side: the cookie carries only");
    // The CSRF secret is derived from the session's id, never stored.
    page.assert_contains("Browser session")
        .assert_contains("<code>auth</code>")
        .assert_contains("<code>_flashes</code>")
        .assert_lacks("csrf</code>");
    page.assert_contains("theme dark, 20 items per page")
        .assert_contains("as alice")
        .assert_contains("Created");
    let token = a.csrf.clone().unwrap();
    page.assert_lacks(&format!("<td>{token}")).assert_lacks("login\":");
    let cookie = a.cookie_header();
    let value = cookie.split('=').nth(1).unwrap();
    page.assert_lacks(value);
}

#[tokio::test]
async fn preferences_and_flash_messages_live_in_the_session() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    let res = a.post("/prefs", &[("theme", "dark"), ("per_page", "20"), ("next", "/notes")]).await;
    assert_eq!(res.location(), "/notes");
    let page = a.get("/notes").await;
    page.assert_contains("data-theme=\"dark\"").assert_contains("Preferences saved.");
    a.get("/notes").await.assert_lacks("Preferences saved.");
    // Another browser of the same user keeps its own preferences: by default the
    // system's light or dark setting.
    let mut b = app.browser();
    b.login("alice", "correct horse", false).await;
    b.get("/").await.assert_contains("data-theme=\"system\"");
    for bad in [[("theme", "pink"), ("per_page", "10")], [("theme", "dark"), ("per_page", "7")]] {
        let res = a.post("/prefs", &bad).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
    }
    // A live refresh does not eat the message meant for the next page.
    a.add_bookmark("x", "https://example.com", "").await;
    let live = axum::http::Request::get("/bookmarks").header("x-live-refresh", "1").body(Default::default());
    a.send(live.unwrap()).await.assert_lacks("Bookmark added.");
    a.get("/bookmarks").await.assert_contains("Bookmark added.");
}

#[tokio::test]
async fn unknown_pages_are_a_friendly_404() {
    let app = TestApp::memory().await;
    let res = app.browser().get("/nope").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    res.assert_contains("There is nothing here");
}
