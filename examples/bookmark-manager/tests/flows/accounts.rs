//! Register, log in, remember me, log out, change password.

use axum::http::{header, StatusCode};

use crate::common::{html, Page, TestApp};

#[tokio::test]
async fn register_log_out_and_log_in_again() {
    let app = TestApp::memory().await;
    let mut alice = app.browser();
    alice.register("alice", "correct horse").await;
    alice.add_bookmark("Rust", "https://www.rust-lang.org", "lang").await;
    let out = alice.post("/logout", &[]).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/"));
    alice.get("/").await.assert_contains("You are logged out.").assert_lacks("Hello, alice");
    assert_eq!(alice.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks");

    let res = alice.login("alice", "correct horse", false).await;
    assert_eq!((res.status, res.location()), (StatusCode::SEE_OTHER, "/"));
    alice.get("/").await.assert_contains("Welcome back, alice.").assert_contains("Hello, alice");
    alice.get("/bookmarks").await.assert_contains(&html("https://www.rust-lang.org/"));
}

#[tokio::test]
async fn logout_destroys_the_session_on_the_server() {
    let app = TestApp::memory().await;
    let mut alice = app.browser();
    alice.register("alice", "correct horse").await;
    alice.add_bookmark("Secret plans", "https://example.com/plans", "").await;
    // Someone copied the cookie before the logout.
    let mut thief = alice.clone();
    alice.post("/logout", &[]).await;
    let page = thief.get("/bookmarks").await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/login?next=%2Fbookmarks"));
    thief.get("/").await.assert_lacks("Secret plans").assert_lacks("Hello, alice");
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_the_same_answer() {
    let app = TestApp::memory().await;
    app.browser().register("alice", "correct horse").await;
    let mut b = app.browser();
    let wrong = b.login("alice", "wrong horse", false).await;
    let unknown = b.login("nobody", "wrong horse", false).await;
    for res in [&wrong, &unknown] {
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        res.assert_contains("Wrong user name or password.");
    }
    assert_eq!(b.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks");
}

#[tokio::test]
async fn registration_checks_its_input() {
    let app = TestApp::memory().await;
    app.browser().register("alice", "correct horse").await;
    let mut b = app.browser();
    b.get("/register").await;
    let strong = "violet otter harbor";
    let taken = b.post("/register", &[("name", "ALICE"), ("password", strong), ("confirm", strong)]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    taken.assert_contains("That user name is taken.");
    for (name, pw, confirm, msg) in [
        ("al", "12345678", "12345678", "User names are 3 to 32"),
        ("a b c", "12345678", "12345678", "User names are 3 to 32"),
        ("bob", "short", "short", "Passwords are 8 to 128"),
        ("bob", "12345678", "87654321", "The two passwords differ."),
        // Weak or common (zxcvbn scores them below 3), the user name counting as guessed.
        ("bob", "12345678", "12345678", "This password is too easy to guess"),
        ("bob", "password1", "password1", "This password is too easy to guess"),
        ("carol", "carol2024", "carol2024", "This password is too easy to guess"),
        ("bob", "bobs password", "bobs password", "This password is too easy to guess"),
    ] {
        let res = b.post("/register", &[("name", name), ("password", pw), ("confirm", confirm)]).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        // The name is kept in the form; the password is never sent back.
        res.assert_contains(msg).assert_lacks(pw);
        if name.len() >= 3 && !name.contains(' ') {
            res.assert_contains(&format!("value=\"{name}\""));
        }
    }
    // A strong password is accepted.
    b.register("bob", strong).await;
    assert_eq!(crate::common::count(&app, "users").await, 2);
}

/// A new password must be strong too; a weak one changes nothing.
#[tokio::test]
async fn weak_new_passwords_are_refused() {
    let app = TestApp::memory().await;
    let mut laptop = app.browser();
    laptop.register("alice", "correct horse").await;
    for weak in ["alice123", "password1", "qwertyuiop"] {
        laptop.get("/devices").await;
        let fields = [("current", "correct horse"), ("password", weak), ("confirm", weak)];
        assert_eq!(laptop.post("/password", &fields).await.location(), "/devices");
        laptop
            .get("/devices")
            .await
            .assert_contains("This password is too easy to guess")
            .assert_contains("Nothing was changed.")
            .assert_lacks(weak);
        assert_eq!(app.browser().login("alice", weak, false).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.browser().login("alice", "correct horse", false).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_gives_a_new_session_id() {
    let app = TestApp::memory().await;
    app.browser().register("alice", "correct horse").await;
    let mut b = app.browser();
    b.get("/login").await;
    let before = b.clone();
    b.login("alice", "correct horse", false).await;
    assert_ne!(before.cookie_header(), b.cookie_header(), "the id was cycled");
    // An id planted before login (session fixation) is worth nothing after it.
    let mut planted = before;
    assert_eq!(planted.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks");
}

/// The session cookie a response sets (beside it, a login removes the anonymous CSRF one).
fn session_cookie(res: &Page) -> String {
    let mut set = res.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap());
    set.find(|c| c.starts_with("__Host-bm_session=")).expect("a session cookie").to_ascii_lowercase()
}

#[tokio::test]
async fn remember_me_sets_a_lasting_cookie() {
    let app = TestApp::memory().await;
    app.browser().register("alice", "correct horse").await;
    let mut b = app.browser();
    let short = b.login("alice", "correct horse", false).await;
    let cookie = session_cookie(&short);
    assert!(!cookie.contains("max-age"), "browser-session cookie: {cookie}");
    assert!(cookie.contains("httponly") && cookie.contains("samesite=lax"), "{cookie}");
    let mut c = app.browser();
    let long = c.login("alice", "correct horse", true).await;
    let cookie = session_cookie(&long);
    let max_age: i64 = cookie.split("max-age=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    assert!((29 * 86_400..=30 * 86_400).contains(&max_age), "{cookie}");
    c.get("/session").await.assert_contains("Remembered: ends after 30 days without use");
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    let app = TestApp::memory().await;
    let mut laptop = app.browser();
    laptop.register("alice", "correct horse").await;
    let mut phone = app.browser();
    phone.login("alice", "correct horse", true).await;
    phone.get("/bookmarks").await.assert_contains("Your bookmarks");

    laptop.get("/devices").await;
    let wrong = [("current", "nope nope"), ("password", "battery staple"), ("confirm", "battery staple")];
    laptop.post("/password", &wrong).await;
    laptop.get("/devices").await.assert_contains("The current password is wrong; nothing was changed.");
    assert_eq!(phone.get("/bookmarks").await.status, StatusCode::OK, "a failed change ends nothing");

    let ok = [("current", "correct horse"), ("password", "battery staple"), ("confirm", "battery staple")];
    assert_eq!(laptop.post("/password", &ok).await.location(), "/devices");
    laptop.get("/devices").await.assert_contains("Password changed.");
    assert_eq!(
        phone.get("/bookmarks").await.location(),
        "/login?next=%2Fbookmarks",
        "the other device is logged out"
    );
    assert_eq!(laptop.get("/bookmarks").await.status, StatusCode::OK, "this device stays in");

    let mut again = app.browser();
    assert_eq!(again.login("alice", "correct horse", false).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.login("alice", "battery staple", false).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_only_redirects_within_the_site() {
    let app = TestApp::memory().await;
    app.browser().register("alice", "correct horse").await;
    let mut b = app.browser();
    b.get("/login?next=/notes").await.assert_contains(&format!("value=\"{}\"", html("/notes")));
    let res = b.post("/login", &[("name", "alice"), ("password", "correct horse"), ("next", "/notes")]).await;
    assert_eq!(res.location(), "/notes");
    let mut c = app.browser();
    c.get("/login").await;
    let res = c
        .post("/login", &[("name", "alice"), ("password", "correct horse"), ("next", "//evil.example")])
        .await;
    assert_eq!(res.location(), "/");
}

#[tokio::test]
async fn hostile_next_values_fall_back_to_the_dashboard() {
    let app = TestApp::memory().await;
    app.browser().register("alice", "correct horse").await;
    let long = format!("/{}", "a".repeat(5000));
    let cases = [
        ("/bookmarks?tag=a", "/bookmarks?tag=a"),
        ("/notes", "/notes"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/%09/evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("/%0A/x", "/"),
        ("/\n/x", "/"),
        ("/%5C/evil", "/"),
        ("/%2F/evil.example", "/"),
        ("https://evil.example", "/"),
        ("javascript:alert(1)", "/"),
        (long.as_str(), "/"),
    ];
    for (next, expected) in cases {
        // As the login form sends it, and as the query string of the login page carries it.
        let mut b = app.browser();
        b.get("/login").await;
        let fields = [("name", "alice"), ("password", "correct horse"), ("next", next)];
        let res = b.post("/login", &fields).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(res.location(), expected, "{next:?}");
        let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
        let page = app.browser().get(&format!("/login?{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{next:?}");
        page.assert_contains(&format!("name=\"next\" value=\"{}\"", html(expected)));
    }
}
