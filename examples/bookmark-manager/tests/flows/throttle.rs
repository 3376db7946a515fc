//! Password guessing is throttled per account and per client address.

use axum::http::{header, StatusCode};

use crate::common::{Browser, Page, TestApp};

#[track_caller]
fn assert_throttled(res: &Page) {
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
    let secs: u64 = res.headers.get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&secs), "Retry-After: {secs}");
    res.assert_contains("Too many failed attempts");
}

#[tokio::test]
async fn the_sixth_wrong_password_is_refused_and_so_is_the_right_one() {
    let app = TestApp::memory().await;
    app.browser().register("alice", "correct horse").await;
    app.browser().register("bob", "battery staple").await;
    let mut guesser = app.browser();
    for i in 0..5 {
        let res = guesser.login("alice", &format!("guess {i}"), false).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    assert_throttled(&guesser.login("alice", "guess 5", false).await);
    // Right or wrong, from any browser, any spelling of the name: refused until the window passes.
    assert_throttled(&guesser.login("alice", "correct horse", false).await);
    let mut owner = app.browser();
    let res = owner.login(" ALICE ", "correct horse", false).await;
    assert_throttled(&res);
    res.assert_contains("name=\"next\"");
    assert_eq!(owner.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks", "not logged in");
    // Another account is unaffected.
    assert_eq!(app.browser().login("bob", "battery staple", false).await.status, StatusCode::SEE_OTHER);

    // Unknown names are counted the same way.
    for _ in 0..5 {
        assert_eq!(guesser.login("nobody", "x", false).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_throttled(&guesser.login("nobody", "x", false).await);
}

#[tokio::test]
async fn a_success_keeps_earlier_failures_and_other_addresses_counts() {
    let app = TestApp::memory().await;
    app.browser().register("alice", "correct horse").await;
    app.browser().register("bob", "battery staple").await;
    let login = |name: &'static str, password: &'static str| [("name", name), ("password", password)];
    // One address guesses at several accounts: the address is throttled.
    let mut guesser = app.browser();
    guesser.get("/login").await;
    for name in ["carol", "dave", "erin", "frank", "grace"] {
        let res = guesser.post_from("203.0.113.7:5000", &[], "/login", &login(name, "guess")).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let res = guesser.post_from("203.0.113.7:5001", &[], "/login", &login("bob", "battery staple")).await;
    assert_throttled(&res);

    // Bob logs in from his own address; the guesser's count stays.
    let mut bob = app.browser();
    bob.get("/login").await;
    let res = bob.post_from("198.51.100.2:4000", &[], "/login", &login("bob", "battery staple")).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let mut again = app.browser();
    again.get("/login").await;
    assert_throttled(
        &again.post_from("203.0.113.7:5002", &[], "/login", &login("alice", "correct horse")).await,
    );

    // A client header is ignored unless the app is told to trust a proxy.
    let spoofed = [("x-forwarded-for", "192.0.2.1")];
    let res = again.post_from("203.0.113.7:5003", &spoofed, "/login", &login("alice", "correct horse")).await;
    assert_throttled(&res);
    let mut behind_proxy = Browser::new(bookmark_manager::app(app.state.clone().trust_proxy(true)));
    behind_proxy.get("/login").await;
    let forwarded = [("x-forwarded-for", "203.0.113.7, 192.0.2.1")];
    let res =
        behind_proxy.post_from("10.0.0.1:80", &forwarded, "/login", &login("alice", "correct horse")).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "the proxy's last entry is the client");
    let mut behind_proxy = Browser::new(bookmark_manager::app(app.state.clone().trust_proxy(true)));
    behind_proxy.get("/login").await;
    let forwarded = [("x-forwarded-for", "192.0.2.1, 203.0.113.7")];
    let res =
        behind_proxy.post_from("10.0.0.1:80", &forwarded, "/login", &login("alice", "correct horse")).await;
    assert_throttled(&res);
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_too() {
    let app = TestApp::memory().await;
    let mut alice = app.browser();
    alice.register("alice", "correct horse").await;
    for _ in 0..5 {
        alice.get("/devices").await;
        let fields = [("current", "guess"), ("password", "new password"), ("confirm", "new password")];
        let res = alice.post("/password", &fields).await;
        assert_eq!(res.location(), "/devices");
    }
    alice.get("/devices").await;
    let fields = [("current", "correct horse"), ("password", "new password"), ("confirm", "new password")];
    assert_throttled(&alice.post("/password", &fields).await);
    // Nothing changed, and the login form counts the same failures.
    assert_throttled(&app.browser().login("alice", "correct horse", false).await);
    assert_throttled(&app.browser().login("alice", "new password", false).await);
}

/// The vault's password prompt counts with the login form: five wrong passwords, then even
/// the right one is refused with 429 and no secret, and so is a login to the account.
#[tokio::test]
async fn the_vault_password_prompt_is_throttled_too() {
    let app = TestApp::memory().await;
    let mut alice = app.browser();
    alice.register("alice", "correct horse").await;
    alice.post("/vault", &[("site", "bank"), ("login", "al"), ("secret", "pin-4711")]).await;
    let id = crate::common::item_ids(&alice.get("/vault").await.body)[0];
    let reveal = format!("/vault/{id}/reveal");
    // The password was given more than five minutes ago: the prompt comes.
    let age = |s: session_core::Session| async move {
        let mut t: serde_json::Value = s.get("login_times").await?.expect("login times");
        t["authenticated_at"] = (t["authenticated_at"].as_i64().unwrap() - 360).into();
        s.insert("login_times", t).await
    };
    alice.client.session(age).await.unwrap();
    for _ in 0..5 {
        let res = alice.post_follow(&reveal, &[("password", "a guess")]).await;
        res.assert_contains("Wrong password").assert_lacks("pin-4711");
    }
    let res = alice.post(&reveal, &[("password", "correct horse")]).await;
    assert_throttled(&res);
    res.assert_lacks("pin-4711");
    assert_throttled(&app.browser().login("alice", "correct horse", false).await);
}

#[tokio::test]
async fn registrations_are_limited_per_address_and_per_name() {
    let app = TestApp::memory().await;
    let mut flood = app.browser();
    flood.get("/register").await;
    let form = |name: &'static str| [("name", name), ("password", "x"), ("confirm", "x")];
    // Ten attempts from one address (refused for their short password, or not: all count).
    let names = ["u01", "u02", "u03", "u04", "u05", "u06", "u07", "u08", "u09", "u10"];
    for name in names {
        let res = flood.post_from("198.51.100.9:4000", &[], "/register", &form(name)).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {}", res.body);
    }
    // The eleventh is refused before any check, even a good one, from another port.
    let good =
        [("name", "newcomer"), ("password", "correct horse battery"), ("confirm", "correct horse battery")];
    let res = flood.post_from("198.51.100.9:4001", &[], "/register", &good).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
    assert!(res.headers.get(header::RETRY_AFTER).is_some());
    res.assert_contains("Too many sign-ups from here");
    // Another address registers the same account at once; the flood made no account.
    let mut person = app.browser();
    person.get("/register").await;
    let res = person.post_from("192.0.2.1:5000", &[], "/register", &good).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(app.browser().login("u01", "x", false).await.status, StatusCode::UNAUTHORIZED);
}
