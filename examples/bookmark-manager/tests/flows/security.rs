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

/// The stores every machine has (Redis and PostgreSQL are in tests/stores.rs).
const LOCAL_STORES: [StoreKind; 4] =
    [StoreKind::Memory, StoreKind::File, StoreKind::Sqlite, StoreKind::Cookie];

/// `GET /ws` with `b`'s cookies, as a script would open the live socket; its status.
async fn socket_status(b: &mut Browser) -> StatusCode {
    let req = Request::get("/ws")
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Body::empty())
        .unwrap();
    b.send(req).await.status
}

/// A cookie copied before "Log out" opens nothing afterwards, in every store mode: in
/// cookie mode the whole session is in the cookie, so the logout must end the login
/// server-side. "Log out all other devices" ends copies of the other logins the same way.
#[tokio::test]
async fn a_logout_ends_copies_of_the_cookie_in_every_store_mode() {
    for store in LOCAL_STORES {
        let app = TestApp::new(store).await;
        let mut a = app.browser();
        a.register("alice", "correct horse").await;
        a.add_bookmark("private", "https://example.com/private", "").await;
        let mut copy = a.clone();
        copy.get("/bookmarks").await.assert_contains("private");

        a.post("/logout", &[]).await;
        let res = copy.get("/bookmarks").await;
        assert_eq!(res.location(), "/login?next=%2Fbookmarks", "{store}: the copy still opened {}", res.body);
        copy.get("/").await.assert_lacks("Hello, alice");
        assert_eq!(socket_status(&mut copy).await, StatusCode::UNAUTHORIZED, "{store}");
        let res = copy.post("/notes", &[("title", "t"), ("body", "")]).await;
        assert!(res.location().starts_with("/login"), "{store}: {} {}", res.status, res.location());
        assert_eq!(crate::common::count(&app, "notes").await, 0);

        // Logging in again on the first browser does not bring the copy back.
        a.login("alice", "correct horse", false).await;
        assert_eq!(a.get("/bookmarks").await.status, StatusCode::OK);
        assert_eq!(copy.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks", "{store}");

        // "Log out all other devices" from a: a copy of the phone's cookie is dead too.
        let mut phone = app.browser();
        phone.login("alice", "correct horse", true).await;
        let mut phone_copy = phone.clone();
        a.get("/devices").await;
        a.post("/devices/others/logout", &[]).await;
        assert_eq!(phone_copy.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks", "{store}");
        assert_eq!(phone.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks", "{store}");
        assert_eq!(a.get("/bookmarks").await.status, StatusCode::OK, "{store}: this device stays in");
    }
}

/// Whether `b`'s per-session demo list shows `text`.
async fn demo_shows(b: &mut Browser, text: &str) -> bool {
    b.get("/demo/session").await.body.contains(text)
}

/// A login on a browser whose session holds someone else's data (another user's login,
/// or what an anonymous visitor left) starts from a clean session under a new id; only
/// the display preferences stay. The login it replaced is over.
#[tokio::test]
async fn a_login_starts_from_a_clean_session() {
    for store in [StoreKind::Memory, StoreKind::Cookie] {
        let app = TestApp::new(store).await;
        app.browser().register("bob", "battery staple").await;

        // Anonymous leftovers.
        let mut shared = app.browser();
        shared.get("/demo/session").await;
        shared.post("/demo/session", &[("text", "left by a visitor")]).await;
        shared.post("/prefs", &[("theme", "dark"), ("per_page", "5")]).await;
        assert!(demo_shows(&mut shared, "left by a visitor").await);
        shared.register("alice", "correct horse").await;
        assert!(!demo_shows(&mut shared, "left by a visitor").await, "{store}");
        shared.get("/").await.assert_contains("data-theme=\"dark\"");

        // Alice's own data in the session, then bob logs in on the same browser.
        shared.post("/demo/session", &[("text", "alices entry")]).await;
        assert!(demo_shows(&mut shared, "alices entry").await);
        let alices = shared.clone();
        let before = shared.cookie_header();
        let res = shared.post("/login", &[("name", "bob"), ("password", "battery staple")]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{store}: {}", res.body);
        assert_ne!(shared.cookie_header(), before, "{store}: a new session cookie");
        shared.get("/").await.assert_contains("Hello, bob").assert_lacks("alice");
        assert!(!demo_shows(&mut shared, "alices entry").await, "{store}: bob sees alice's entry");
        shared.get("/").await.assert_contains("data-theme=\"dark\"");
        let keys = shared.client.session(|s| async move { s.keys().await }).await.unwrap();
        let mut keys: Vec<String> =
            keys.into_iter().filter(|k| !k.starts_with('_') && !k.starts_with("session_core.")).collect();
        keys.sort();
        assert_eq!(keys, ["auth", "login_times", "prefs"], "{store}");

        // Alice's login on this browser is over, copies of it included.
        let mut alices = alices;
        assert_eq!(alices.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks", "{store}");
    }
}

/// Mode of `path` (permission bits only).
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir` with its mode, directories included (recursively).
fn modes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut out = vec![(dir.to_owned(), mode(dir))];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(modes(&path));
        } else {
            out.push((path.clone(), mode(&path)));
        }
    }
    out
}

/// The data dir and its folders are 0700, every file in it 0600 (keys, the app database
/// and its WAL files, the session store's files), whatever the umask; a database file
/// left readable by an earlier version is tightened at start.
#[tokio::test]
async fn data_files_are_private_to_the_owner() {
    for store in [StoreKind::Sqlite, StoreKind::File, StoreKind::Cookie] {
        let app = TestApp::new(store).await;
        let mut a = app.browser();
        a.register("alice", "correct horse").await;
        a.add_bookmark("kept", "https://example.com", "").await;
        a.post("/vault", &[("site", "bank"), ("login", "al"), ("secret", "pin")]).await;
        let data = app.dir.path().join("data");
        let all = modes(&data);
        let names: Vec<String> =
            all.iter().map(|(p, _)| p.strip_prefix(&data).unwrap().display().to_string()).collect();
        for expected in ["app.db", "app.db-wal", "vault.key", "session.key"] {
            assert!(names.iter().any(|n| n == expected), "{store}: no {expected} in {names:?}");
        }
        if store == StoreKind::Sqlite {
            assert!(names.iter().any(|n| n == "sessions.db-wal"), "{names:?}");
        }
        if store == StoreKind::File {
            assert!(names.iter().filter(|n| n.starts_with("sessions/")).count() >= 1, "{names:?}");
        }
        for (path, m) in &all {
            let want = if path.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(*m, want, "{store}: {} is {m:o}", path.display());
        }

        // An app.db made readable by others (an older version, a copy) is fixed at start.
        use std::os::unix::fs::PermissionsExt;
        let db = data.join("app.db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let opts = bookmark_manager::Options { store, data_dir: data.clone(), ..Default::default() };
        let again =
            bookmark_manager::setup::open(&opts, bookmark_manager::PasswordCost::Minimal).await.unwrap();
        assert_eq!(mode(&db), 0o600, "{store}");
        drop(again);
    }
}

/// `Debug` of what the app holds prints no secret: the options (database URLs with
/// passwords) and the state (vault and session keys).
#[tokio::test]
async fn debug_output_holds_no_secret() {
    let opts = bookmark_manager::Options {
        postgres_url: Some("postgres://app:pg-pass-4711@db.example/app".into()),
        redis_url: Some("redis://:redis-pass-4711@cache.example:6379/0".into()),
        ..Default::default()
    };
    let shown = format!("{opts:?}");
    assert!(!shown.contains("4711"), "{shown}");
    assert!(shown.contains("db.example") && shown.contains("cache.example"), "{shown}");

    let app = TestApp::memory().await;
    let shown = format!("{:?} {:#?}", app.state, app.state);
    for file in ["vault.key", "session.key"] {
        let key = std::fs::read(app.dir.path().join("data").join(file)).unwrap();
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let bytes = format!("{:?}", &key[..8]);
        let bytes = bytes.trim_matches(|c| c == '[' || c == ']');
        for form in [&hex[..16], bytes] {
            assert!(!shown.contains(form), "{file} appears as {form:?} in the state's Debug");
        }
    }
}

/// Changing the password counts as giving it: revealing a vault secret right after does
/// not ask again.
#[tokio::test]
async fn a_password_change_counts_as_giving_the_password() {
    for store in [StoreKind::Memory, StoreKind::Cookie] {
        let app = TestApp::new(store).await;
        let mut a = app.browser();
        a.register("alice", "correct horse").await;
        a.post("/vault", &[("site", "bank"), ("login", "al"), ("secret", "pin-4711")]).await;
        let id = crate::common::item_ids(&a.get("/vault").await.body)[0];
        let reveal = format!("/vault/{id}/reveal");
        shift(&a, "authenticated_at", -360).await;
        a.post_follow(&reveal, &[]).await.assert_contains("id=\"reauth\"").assert_lacks("pin-4711");

        let (ends_before, _) = login_times(&a).await;
        a.get("/devices").await;
        let change =
            [("current", "correct horse"), ("password", "battery staple"), ("confirm", "battery staple")];
        assert_eq!(a.post("/password", &change).await.location(), "/devices", "{store}");
        let (ends_after, at) = login_times(&a).await;
        assert_eq!(ends_after, ends_before, "{store}: the login's end does not move");
        assert!(at >= time::OffsetDateTime::now_utc().unix_timestamp() - 5, "{store}");
        a.get("/vault").await;
        a.post_follow(&reveal, &[]).await.assert_contains("pin-4711").assert_lacks("id=\"reauth\"");
    }
}
