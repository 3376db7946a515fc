//! The app on every session store: register, add a bookmark, read it back, log out, and
//! the old cookie is no longer logged in. Redis and PostgreSQL need the servers from
//! `scripts/services` (`REDIS_URL`, `DATABASE_URL`); without them these tests fail.

mod common;

use axum::http::StatusCode;
use bookmark_manager::StoreKind;

use common::{html, TestApp};

async fn round_trip(store: StoreKind) {
    let app = TestApp::new(store).await;
    assert_eq!(app.state.store(), store);
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    let res = a.add_bookmark("On every store", "https://example.com/everywhere", "store").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{store}: {}", res.body);
    let page = a.get("/bookmarks").await;
    page.assert_contains("Bookmark added.").assert_contains(&html("https://example.com/everywhere"));
    a.get("/session").await.assert_contains(&format!("{store}:")).assert_contains("as alice");

    // A second browser of the same user sees the same data; an anonymous one does not.
    let mut b = app.browser();
    b.login("alice", "correct horse", true).await;
    b.get("/bookmarks").await.assert_contains("On every store");
    app.browser().get("/bookmarks").await.assert_lacks("On every store");

    let old = a.clone();
    a.post("/logout", &[]).await;
    assert_eq!(a.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks", "{store}");
    // The login is over, not only this copy of it: a copy of the cookie is dead too, in
    // cookie mode as well (where the whole session lives in the cookie).
    let mut copy = old;
    assert_eq!(copy.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks", "{store}");
    assert_eq!(b.get("/bookmarks").await.status, StatusCode::OK, "{store}: the other browser stays in");
}

/// Fails (never skips) when the test servers are not running.
fn require(var: &str) {
    assert!(
        std::env::var(var).is_ok_and(|v| !v.is_empty()),
        "{var} is not set: start the test servers first, e.g. `eval \"$(scripts/services start)\"` \
         from the repository root (scripts/test does this)"
    );
}

#[tokio::test]
async fn memory() {
    round_trip(StoreKind::Memory).await;
}

#[tokio::test]
async fn file() {
    round_trip(StoreKind::File).await;
}

#[tokio::test]
async fn sqlite() {
    round_trip(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn cookie() {
    round_trip(StoreKind::Cookie).await;
}

#[tokio::test]
async fn redis() {
    require("REDIS_URL");
    round_trip(StoreKind::Redis).await;
}

#[tokio::test]
async fn postgres() {
    require("DATABASE_URL");
    round_trip(StoreKind::Postgres).await;
}

#[tokio::test]
async fn keys_and_data_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = bookmark_manager::Options {
        data_dir: dir.path().join("data"),
        store: StoreKind::Sqlite,
        ..Default::default()
    };
    let cost = bookmark_manager::PasswordCost::Minimal;
    let first = bookmark_manager::setup::open(&opts, cost).await.unwrap();
    let mut a = common::Browser::new(bookmark_manager::app(first));
    a.register("alice", "correct horse").await;
    a.post("/vault", &[("site", "bank"), ("login", "alice"), ("secret", "pin 1234")]).await;
    let id = common::item_ids(&a.get("/vault").await.body)[0];

    // Same data dir, new process state: the session cookie and the vault still work.
    let second = bookmark_manager::setup::open(&opts, cost).await.unwrap();
    let mut again = common::Browser::new(bookmark_manager::app(second));
    again.client.set_jar(a.client.jar());
    again.get("/vault").await.assert_contains("bank");
    again.post_follow(&format!("/vault/{id}/reveal"), &[]).await.assert_contains("pin 1234");

    use std::os::unix::fs::PermissionsExt;
    for key in ["vault.key", "session.key"] {
        let mode = std::fs::metadata(opts.data_dir.join(key)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
}

#[tokio::test]
async fn a_store_that_needs_a_url_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for store in [StoreKind::Redis, StoreKind::Postgres] {
        let opts =
            bookmark_manager::Options { data_dir: dir.path().join("data"), store, ..Default::default() };
        let err =
            bookmark_manager::setup::open(&opts, bookmark_manager::PasswordCost::Minimal).await.unwrap_err();
        assert!(err.to_string().contains(&format!("--{store}-url")), "{err}");
    }
}
