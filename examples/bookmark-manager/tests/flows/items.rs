//! Bookmarks, notes and the vault: CRUD, validation, authorization, search.

use axum::http::StatusCode;

use crate::common::{count, html, item_ids, TestApp};

#[tokio::test]
async fn bookmarks_add_edit_delete() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    let res = a.add_bookmark("Rust <3", "https://www.rust-lang.org", "Lang, rust").await;
    assert_eq!((res.status, res.location()), (StatusCode::SEE_OTHER, "/bookmarks"));
    let page = a.get("/bookmarks").await;
    page.assert_contains("Bookmark added.").assert_contains("Rust &lt;3").assert_contains(">lang</a>");
    let id = item_ids(&page.body)[0];
    a.get("/bookmarks").await.assert_lacks("Bookmark added.");

    a.get(&format!("/bookmarks/{id}/edit")).await.assert_contains(&html("https://www.rust-lang.org/"));
    let res = a
        .post(&format!("/bookmarks/{id}"), &[("title", "Rust"), ("url", "https://docs.rs"), ("tags", "")])
        .await;
    assert_eq!(res.location(), "/bookmarks");
    a.get("/bookmarks").await.assert_contains("Bookmark saved.").assert_contains(&html("https://docs.rs/"));

    assert_eq!(a.post(&format!("/bookmarks/{id}/delete"), &[]).await.location(), "/bookmarks");
    a.get("/bookmarks").await.assert_contains("No bookmarks yet.");
    assert_eq!(a.post(&format!("/bookmarks/{id}/delete"), &[]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_bookmarks_are_refused_with_a_message() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    for (title, url, msg) in [
        ("", "https://example.com", "A bookmark needs a title."),
        ("x", "javascript:alert(1)", "Only web addresses (http or https)"),
        ("x", "ftp://example.com/file", "Only web addresses (http or https)"),
        ("x", "example.com", "That is not a valid URL"),
        ("x", "http://", "That is not a valid URL"),
    ] {
        // Post/redirect/get: the refusal redirects to the form, which shows why.
        let res = a.add_bookmark(title, url, "").await;
        assert_eq!((res.status, res.location()), (StatusCode::SEE_OTHER, "/bookmarks"), "{url}");
        a.get("/bookmarks").await.assert_contains(msg).assert_contains("data-form-error");
    }
    // The typed values come back, escaped, so nothing is lost; once.
    let fields = [("title", "<typed>"), ("url", "nope"), ("tags", "")];
    a.post_follow("/bookmarks", &fields).await.assert_contains("value=\"&lt;typed&gt;\"");
    a.get("/bookmarks").await.assert_lacks("&lt;typed&gt;").assert_lacks("data-form-error");
    assert_eq!(count(&app, "bookmarks").await, 0);
    a.add_bookmark("ok", "https://example.com", "").await;
    let id = item_ids(&a.get("/bookmarks").await.body)[0];
    let res = a.post(&format!("/bookmarks/{id}"), &[("title", "ok"), ("url", "data:text/html,hi")]).await;
    assert_eq!(res.location(), format!("/bookmarks/{id}/edit"));
    let edit = a.get(&format!("/bookmarks/{id}/edit")).await;
    edit.assert_contains("Only web addresses").assert_contains(&html("data:text/html,hi"));
    a.get("/bookmarks").await.assert_contains(&html("https://example.com/"));
    assert_eq!(a.get("/bookmarks/999/edit").await.status, StatusCode::NOT_FOUND);
    // An id that is not a number: a page in the layout, not the framework's text.
    let res = a.get("/bookmarks/abc/edit").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    res.assert_contains("class=\"who\"").assert_contains("not a number").assert_lacks("Cannot parse");
}

#[tokio::test]
async fn notes_and_their_size_limit() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    assert_eq!(
        a.post("/notes", &[("title", "Groceries"), ("body", "milk\neggs")]).await.location(),
        "/notes"
    );
    let page = a.get("/notes").await;
    page.assert_contains("Note added.").assert_contains("milk\neggs");
    let id = item_ids(&page.body)[0];

    let big = "x".repeat(64 * 1024 + 1);
    let res = a.post_follow("/notes", &[("title", "Big"), ("body", &big)]).await;
    // The title comes back; the body is too long to keep in the session (the page script
    // keeps it in the browser instead).
    res.assert_contains("Notes are at most 64 KiB").assert_contains("value=\"Big\"").assert_lacks(&big);
    let res = a.post_follow(&format!("/notes/{id}"), &[("title", "Groceries"), ("body", &big)]).await;
    res.assert_contains("Notes are at most 64 KiB");
    let exact = "y".repeat(64 * 1024);
    assert_eq!(
        a.post("/notes", &[("title", "Exactly 64 KiB"), ("body", &exact)]).await.status,
        StatusCode::SEE_OTHER
    );
    let huge = "z".repeat(600 * 1024);
    assert_eq!(
        a.post("/notes", &[("title", "Huge"), ("body", &huge)]).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    a.post_follow("/notes", &[("title", " "), ("body", "b")]).await.assert_contains("A note needs a title.");
    assert_eq!(count(&app, "notes").await, 2);

    a.post(&format!("/notes/{id}"), &[("title", "Shopping"), ("body", "bread")]).await;
    a.get("/notes").await.assert_contains("Shopping").assert_contains("bread").assert_lacks("eggs");
    a.post(&format!("/notes/{id}/delete"), &[]).await;
    a.get("/notes").await.assert_lacks("Shopping");
}

#[tokio::test]
async fn vault_secrets_are_encrypted_and_shown_on_request() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    let secret = "hunter2-very-secret";
    let res = a
        .post("/vault", &[("site", "example.com"), ("login", "alice@example.com"), ("secret", secret)])
        .await;
    assert_eq!(res.location(), "/vault");
    let page = a.get("/vault").await;
    page.assert_contains("example.com").assert_contains("alice@example.com").assert_lacks(secret);
    let id = item_ids(&page.body)[0];

    // At rest: ciphertext only.
    let url = format!("sqlite://{}", app.dir.path().join("data/app.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret FROM vault").fetch_one(&pool).await.unwrap();
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert!(stored.len() >= secret.len() + 28, "nonce and tag added");

    // Post/redirect/get: the reveal redirects to the item's anchor, and the page shows the
    // secret once (a reload or "back" shows it masked, and never sends the form again).
    let res = a.post(&format!("/vault/{id}/reveal"), &[]).await;
    assert_eq!(
        (res.status, res.location()),
        (StatusCode::SEE_OTHER, format!("/vault?page=1#item-{id}").as_str())
    );
    assert!(!res.body.contains(secret));
    a.get("/vault?page=1").await.assert_contains(secret).assert_contains(&format!("id=\"item-{id}\""));
    a.get("/vault?page=1").await.assert_lacks(secret);
    a.post(&format!("/vault/{id}"), &[("site", "example.org"), ("login", "al"), ("secret", "")]).await;
    a.post_follow(&format!("/vault/{id}/reveal"), &[])
        .await
        .assert_contains(secret)
        .assert_contains("example.org");
    a.post(&format!("/vault/{id}"), &[("site", "example.org"), ("login", "al"), ("secret", "new one")]).await;
    a.post_follow(&format!("/vault/{id}/reveal"), &[]).await.assert_contains("new one").assert_lacks(secret);

    // A sealed secret moved to another row does not open there.
    a.post("/vault", &[("site", "other"), ("login", ""), ("secret", "s2")]).await;
    sqlx::query("UPDATE vault SET secret = (SELECT secret FROM vault WHERE id = ?) WHERE id != ?")
        .bind(id)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let other = item_ids(&a.get("/vault").await.body).into_iter().find(|i| *i != id).unwrap();
    let res = a.post_follow(&format!("/vault/{other}/reveal"), &[]).await;
    assert_eq!(res.status, StatusCode::OK);
    res.assert_contains("id=\"unreadable\"").assert_lacks(secret);
    a.get("/vault").await.assert_lacks("id=\"unreadable\"");
    pool.close().await;

    let res =
        a.post_follow("/vault", &[("site", ""), ("login", "kept login"), ("secret", "typed-secret")]).await;
    // The login comes back, the secret never does (not even to the session).
    res.assert_contains("A vault item needs a site.")
        .assert_contains("kept login")
        .assert_lacks("typed-secret");
    a.post_follow("/vault", &[("site", "s"), ("secret", "")])
        .await
        .assert_contains("A vault item needs a secret.");
}

#[tokio::test]
async fn users_cannot_touch_each_others_items() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    a.add_bookmark("Alice's", "https://alice.example", "").await;
    a.post("/notes", &[("title", "Alice's note"), ("body", "private")]).await;
    a.post("/vault", &[("site", "bank"), ("login", "alice"), ("secret", "alice-pin")]).await;
    let b_id = item_ids(&a.get("/bookmarks").await.body)[0];
    let n_id = item_ids(&a.get("/notes").await.body)[0];
    let v_id = item_ids(&a.get("/vault").await.body)[0];

    let mut m = app.browser();
    m.register("mallory", "mallorys pass").await;
    m.get("/bookmarks").await.assert_lacks("Alice's");
    m.get("/notes").await.assert_lacks("private");
    m.get("/vault").await.assert_lacks("bank");
    for path in
        [format!("/bookmarks/{b_id}/edit"), format!("/notes/{n_id}/edit"), format!("/vault/{v_id}/edit")]
    {
        assert_eq!(m.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/bookmarks/{b_id}"), vec![("title", "pwned"), ("url", "https://evil.example")]),
        (format!("/bookmarks/{b_id}/delete"), vec![]),
        (format!("/notes/{n_id}"), vec![("title", "pwned"), ("body", "")]),
        (format!("/notes/{n_id}/delete"), vec![]),
        (format!("/vault/{v_id}"), vec![("site", "pwned"), ("login", ""), ("secret", "x")]),
        (format!("/vault/{v_id}/reveal"), vec![]),
        (format!("/vault/{v_id}/delete"), vec![]),
    ];
    for (path, fields) in posts {
        let res = m.post(&path, &fields).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        res.assert_lacks("alice-pin");
    }
    a.get("/bookmarks").await.assert_contains("Alice&#x27;s").assert_lacks("pwned");
    a.get("/notes").await.assert_contains("private");
    a.post_follow(&format!("/vault/{v_id}/reveal"), &[])
        .await
        .assert_contains("alice-pin")
        .assert_contains("bank");
}

#[tokio::test]
async fn live_search_finds_bookmarks_and_notes() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    assert_eq!(a.get("/api/search?q=x").await.status, StatusCode::UNAUTHORIZED);
    a.register("alice", "correct horse").await;
    a.add_bookmark("Tokio docs", "https://tokio.rs", "async").await;
    a.add_bookmark("100% pure", "https://example.com/pure", "").await;
    a.post("/notes", &[("title", "Ideas"), ("body", "try tokio-console")]).await;
    let mut m = app.browser();
    m.register("mallory", "mallorys pass").await;
    m.add_bookmark("Mallory tokio", "https://evil.example", "").await;

    let res = a.get("/api/search?q=TOKIO").await;
    assert_eq!(res.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(json["bookmarks"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json["bookmarks"][0]["url"], "https://tokio.rs/");
    assert_eq!(json["notes"][0]["title"], "Ideas");
    // `%` is matched literally, not as a wildcard.
    let json: serde_json::Value = serde_json::from_str(&a.get("/api/search?q=%25").await.body).unwrap();
    assert_eq!(json["bookmarks"].as_array().unwrap().len(), 1, "{json}");
    let json: serde_json::Value = serde_json::from_str(&a.get("/api/search?q=").await.body).unwrap();
    assert!(json["bookmarks"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn lists_are_paged_by_the_session_preference() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    for i in 0..7 {
        a.add_bookmark(&format!("B{i}"), &format!("https://example.com/{i}"), "").await;
    }
    assert_eq!(item_ids(&a.get("/bookmarks").await.body).len(), 7);
    a.post("/prefs", &[("theme", "dark"), ("per_page", "5"), ("next", "/bookmarks")]).await;
    let first = a.get("/bookmarks").await;
    first.assert_contains("Page 1 of 2").assert_contains("data-theme=\"dark\"");
    assert_eq!(item_ids(&first.body).len(), 5);
    assert_eq!(item_ids(&a.get("/bookmarks?page=2").await.body).len(), 2);
    assert_eq!(item_ids(&a.get("/bookmarks?page=99").await.body).len(), 2, "clamped to the last page");
    assert_eq!(a.get("/bookmarks?page=x").await.status, StatusCode::BAD_REQUEST);
}
