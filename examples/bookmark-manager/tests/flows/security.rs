//! CSRF tokens, caching and security headers.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use bookmark_manager::StoreKind;

use crate::common::{count, Browser, TestApp};

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
        .assert_contains("data-theme=\"system\"");

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
        !res.headers.contains_key(header::SET_COOKIE)
            || fresh.get("/bookmarks").await.location() == "/login?next=%2Fbookmarks"
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

/// The `Set-Cookie` values of a response.
fn set_cookies(res: &crate::common::Page) -> Vec<String> {
    res.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_ascii_lowercase()).collect()
}

/// Both cookies are Secure with the `__Host-` prefix by default (browsers keep them on
/// http://127.0.0.1 and localhost too); `--insecure-cookies` drops Secure and the prefix.
#[tokio::test]
async fn cookies_are_secure_host_cookies_unless_asked_otherwise() {
    for store in [StoreKind::Memory, StoreKind::Cookie] {
        let app = TestApp::new(store).await;
        let mut b = app.browser();
        let anon = b.get("/login").await;
        let csrf = set_cookies(&anon).into_iter().find(|c| c.starts_with("__host-bm_csrf=")).expect("csrf");
        let login = b
            .post(
                "/register",
                &[("name", "alice"), ("password", "correct horse"), ("confirm", "correct horse")],
            )
            .await;
        let session =
            set_cookies(&login).into_iter().find(|c| c.starts_with("__host-bm_session=")).expect("session");
        for c in [&csrf, &session] {
            assert!(
                c.contains("; secure") && c.contains("; path=/") && !c.contains("domain="),
                "{store}: {c}"
            );
        }
        b.get("/session")
            .await
            .assert_contains("__Host-bm_session")
            .assert_contains("Secure (browsers send it");
    }

    let app = TestApp::with_options(StoreKind::Memory, |o| o.insecure_cookies = true).await;
    let mut b = app.browser();
    let anon = b.get("/login").await;
    let csrf = set_cookies(&anon).into_iter().find(|c| c.starts_with("bm_csrf=")).expect("csrf");
    let login = b
        .post("/register", &[("name", "alice"), ("password", "correct horse"), ("confirm", "correct horse")])
        .await;
    let session = set_cookies(&login).into_iter().find(|c| c.starts_with("bm_session=")).expect("session");
    for c in [&csrf, &session] {
        assert!(!c.contains("secure"), "{c}");
    }
    b.get("/").await.assert_contains("Hello, alice");
    b.get("/session").await.assert_contains("not Secure (--insecure-cookies)");
    assert!(
        bookmark_manager::USAGE.contains("--insecure-cookies")
            && bookmark_manager::USAGE.contains("TLS proxy")
    );
}

/// The login's instants as the session keeps them (Unix seconds).
async fn login_times(b: &Browser) -> (i64, i64) {
    b.client
        .session(|s| async move {
            let t: serde_json::Value = s.get("login_times").await?.expect("login times");
            Ok((t["ends_at"].as_i64().unwrap(), t["authenticated_at"].as_i64().unwrap()))
        })
        .await
        .unwrap()
}

/// Moves one of the login's stored instants `by` seconds.
async fn shift(b: &Browser, field: &'static str, by: i64) {
    b.client
        .session(|s| async move {
            let mut t: serde_json::Value = s.get("login_times").await?.expect("login times");
            t[field] = (t[field].as_i64().unwrap() + by).into();
            s.insert("login_times", t).await
        })
        .await
        .unwrap();
}

/// A login ends 12 hours after it (30 days with "remember me"), however active; `/session`
/// shows when.
#[tokio::test]
async fn logins_have_an_absolute_lifetime() {
    for store in [StoreKind::Memory, StoreKind::Cookie] {
        let app = TestApp::new(store).await;
        app.browser().register("alice", "correct horse").await;
        for (remember, life) in [(false, 12 * 3600), (true, 30 * 86_400)] {
            let mut b = app.browser();
            b.login("alice", "correct horse", remember).await;
            let (ends, at) = login_times(&b).await;
            assert_eq!(ends - at, life, "{store} remember={remember}");
            let shown = time::OffsetDateTime::from_unix_timestamp(ends).unwrap();
            let shown = format!("{}-{:02}-{:02}", shown.year(), u8::from(shown.month()), shown.day());
            b.get("/session").await.assert_contains("Ends at the latest").assert_contains(&shown);
            b.get("/bookmarks").await.assert_contains("Your bookmarks");

            // Still in use, but past its end: logged out.
            shift(&b, "ends_at", -life).await;
            assert_eq!(
                b.get("/bookmarks").await.location(),
                "/login?next=%2Fbookmarks",
                "{store} remember={remember}"
            );
            b.get("/").await.assert_contains("Your login expired").assert_lacks("Hello, alice");
        }
    }
}

/// Revealing a secret asks for the password again when it was given more than 5 minutes
/// ago: a stolen cookie alone shows no secret.
#[tokio::test]
async fn revealing_a_secret_asks_for_the_password_after_a_while() {
    for store in [StoreKind::Memory, StoreKind::Cookie] {
        let app = TestApp::new(store).await;
        let mut a = app.browser();
        a.register("alice", "correct horse").await;
        a.post("/vault", &[("site", "bank"), ("login", "al"), ("secret", "pin-4711")]).await;
        let page = a.get("/vault").await;
        let id = crate::common::item_ids(&page.body)[0];
        let reveal = format!("/vault/{id}/reveal");

        // Right after login: shown.
        a.post_follow(&reveal, &[]).await.assert_contains("pin-4711");

        // Six minutes later (a thief's copy of the cookie is no better): the password first.
        shift(&a, "authenticated_at", -360).await;
        let thief = a.clone();
        for mut who in [a.clone(), thief] {
            let res = who.post_follow(&reveal, &[]).await;
            assert_eq!(res.status, StatusCode::OK);
            res.assert_contains("id=\"reauth\"").assert_lacks("pin-4711");
            let res = who.post_follow(&reveal, &[("password", "wrong password")]).await;
            assert_eq!(res.status, StatusCode::OK, "{store}");
            res.assert_contains("Wrong password").assert_lacks("pin-4711");
        }
        let (_, before) = login_times(&a).await;
        a.post_follow(&reveal, &[("password", "correct horse")])
            .await
            .assert_contains("pin-4711")
            .assert_lacks("id=\"reauth\"");
        let (_, after) = login_times(&a).await;
        assert!(after >= before + 360, "the re-authentication instant moved on");
        // And for the next few minutes, no prompt.
        a.post_follow(&reveal, &[]).await.assert_contains("pin-4711");
    }
}
