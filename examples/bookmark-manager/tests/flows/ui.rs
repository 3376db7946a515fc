//! The user-facing defects of issue #15 at the HTTP level: post/redirect/get, error pages in
//! the layout, refused forms that explain, login destinations, ended sessions explained,
//! the devices and session pages.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};

use crate::common::{html, item_ids, Browser, Page, TestApp};

/// Posts `fields` with `token` (or none) as sent from the page `from`.
async fn post_from_page(
    b: &mut Browser,
    from: &str,
    path: &str,
    token: Option<&str>,
    fields: &[(&str, &str)],
) -> Page {
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    if let Some(token) = token {
        all.push(("csrf_token", token));
    }
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&all).finish();
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::REFERER, format!("http://127.0.0.1:3000{from}"))
        .body(Body::from(body))
        .unwrap();
    b.send(req).await
}

/// A logged-in page in the layout: the user's menu and theme, a token its forms can use.
#[track_caller]
fn assert_in_layout(page: &Page, theme: &str) {
    page.assert_contains("class=\"who\"")
        .assert_contains(&format!("data-theme=\"{theme}\""))
        .assert_contains("href=\"/vault\"")
        .assert_lacks("name=\"csrf-token\" content=\"\"");
}

#[tokio::test]
async fn error_pages_have_the_layout_the_theme_and_no_framework_text() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    a.post("/prefs", &[("theme", "dark"), ("per_page", "10")]).await;
    for (path, status, says) in [
        ("/nope", StatusCode::NOT_FOUND, "There is nothing here"),
        ("/bookmarks/abc/edit", StatusCode::BAD_REQUEST, "not a number"),
        ("/notes?page=x", StatusCode::BAD_REQUEST, "not a number"),
        ("/bookmarks/1", StatusCode::METHOD_NOT_ALLOWED, "only for the buttons and forms"),
        ("/devices/others/logout", StatusCode::METHOD_NOT_ALLOWED, "only for the buttons and forms"),
    ] {
        let res = a.get(path).await;
        assert_eq!(res.status, status, "{path}");
        res.assert_contains(says).assert_lacks("Cannot parse").assert_lacks("Failed to deserialize");
        assert_in_layout(&res, "dark");
    }
    // The error page's own logout form works (its token is fresh and bound to the session).
    a.get("/nope").await;
    let out = a.post("/logout", &[]).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/"));
    // Logged out: the visitor's menu.
    let res = a.get("/nope").await;
    res.assert_contains("href=\"/login\"").assert_lacks("class=\"who\"");
}

#[tokio::test]
async fn get_logout_asks_instead_of_an_empty_405() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    assert_eq!(a.get("/logout").await.location(), "/");
    a.register("alice", "correct horse").await;
    let page = a.get("/logout").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("Log out?").assert_contains("action=\"/logout\"");
    assert_in_layout(&page, "system");
    assert_eq!(a.post("/logout", &[]).await.location(), "/");
    a.get("/").await.assert_contains("You are logged out.");
}

#[tokio::test]
async fn a_refused_form_explains_and_leads_back() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    a.get("/notes").await;
    let fields = [("title", "typed"), ("body", "text")];

    // Still logged in, with a stale token: back to the form.
    let res = post_from_page(&mut a, "/notes?page=1", "/notes", Some("stale"), &fields).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    res.assert_contains("data-form-refused")
        .assert_contains(&format!("href=\"{}\"", html("/notes?page=1")))
        .assert_contains("Back to the form")
        .assert_lacks("not sent by this site");
    assert_in_layout(&res, "system");

    // The session ended under the page (logged out in another tab): log in again, then back.
    let token = a.csrf.clone().unwrap();
    let mut other_tab = a.clone();
    other_tab.post("/logout", &[]).await;
    let res = post_from_page(&mut a, "/notes", "/notes", Some(&token), &fields).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    res.assert_contains("Your session ended before this form was sent")
        .assert_contains(&format!("href=\"{}\"", html("/login?next=%2Fnotes")))
        .assert_lacks("class=\"who\"");
    // A foreign Referer leads nowhere else.
    let res = post_from_page(&mut a, "//evil.example/x", "/notes", Some(&token), &fields).await;
    res.assert_contains(&format!("href=\"{}\"", html("/login?next=%2F"))).assert_lacks("evil.example");
    assert_eq!(crate::common::count(&app, "notes").await, 0);
}

#[tokio::test]
async fn logging_in_returns_to_the_page_asked_for() {
    let app = TestApp::memory().await;
    app.browser().register("alice", "correct horse").await;
    let mut b = app.browser();
    let res = b.get("/notes?page=2").await;
    assert_eq!(res.location(), "/login?next=%2Fnotes%3Fpage%3D2");
    let login = b.get(res.location()).await;
    login
        .assert_contains("name=\"next\" value=\"&#x2f;notes?page=2\"")
        .assert_lacks("Your session has ended");
    let res = b
        .post("/login", &[("name", "alice"), ("password", "correct horse"), ("next", "/notes?page=2")])
        .await;
    assert_eq!((res.status, res.location()), (StatusCode::SEE_OTHER, "/notes?page=2"));
}

#[tokio::test]
async fn a_device_logged_out_elsewhere_is_told_why() {
    for store in [bookmark_manager::StoreKind::Memory, bookmark_manager::StoreKind::Cookie] {
        let app = TestApp::new(store).await;
        let mut laptop = app.browser();
        laptop.register("alice", "correct horse").await;
        let mut phone = app.browser();
        phone.login("alice", "correct horse", false).await;
        laptop.post("/devices/others/logout", &[]).await;
        let res = phone.get("/vault").await;
        assert_eq!(res.location(), "/login?next=%2Fvault", "{store}");
        let login = phone.get(res.location()).await;
        assert!(login.body.contains("Your session has ended"), "{store}: {}", login.body);
        login.assert_contains("<h1>Log in</h1>");
        // Said once.
        phone.get("/login").await.assert_lacks("Your session has ended");
    }
}

#[tokio::test]
async fn refused_forms_redirect_and_a_live_refresh_leaves_the_message() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    a.add_bookmark("ok", "https://example.com", "").await;
    let id = item_ids(&a.get("/bookmarks").await.body)[0];
    let res = a.post(&format!("/bookmarks/{id}"), &[("title", ""), ("url", "https://example.com")]).await;
    assert_eq!(
        (res.status, res.location()),
        (StatusCode::SEE_OTHER, format!("/bookmarks/{id}/edit").as_str())
    );
    // A live refresh (which the page script never sends for a POST's answer: there is none)
    // does not take the message meant for the page itself.
    let live =
        Request::get(format!("/bookmarks/{id}/edit")).header("x-live-refresh", "1").body(Body::empty());
    a.send(live.unwrap()).await.assert_lacks("data-form-error");
    let page = a.get(&format!("/bookmarks/{id}/edit")).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("A bookmark needs a title.").assert_contains("data-form-error");
    a.get(&format!("/bookmarks/{id}/edit")).await.assert_lacks("data-form-error");
}

#[tokio::test]
async fn the_vault_is_searchable_and_its_forms_carry_the_helpers() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    for (site, login) in [("bank.example", "alice"), ("mail.example", "al@mail"), ("Forum", "bankrobber")] {
        a.post("/vault", &[("site", site), ("login", login), ("secret", "s")]).await;
    }
    let page = a.get("/vault?q=BANK").await;
    page.assert_contains("bank.example").assert_contains("Forum").assert_lacks("mail.example");
    page.assert_contains("2 of 3 match");
    a.get("/vault?q=zzz").await.assert_contains("Nothing matches").assert_contains("0 of 3 match");
    let all = a.get("/vault").await;
    all.assert_contains("mail.example")
        .assert_contains("data-generate=\"new-secret\"")
        .assert_contains("data-confirm=\"Delete the vault item for bank.example?");
    // The secret field is never kept by the page script.
    all.assert_contains("id=\"new-secret\" data-secret");
}

#[tokio::test]
async fn the_session_page_counts_only_your_own_sockets() {
    let app = TestApp::memory().await;
    let mut anon = app.browser();
    let page = anon.get("/session").await;
    page.assert_contains("none: pages update live only for logged-in users").assert_lacks("all users");
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    a.get("/session").await.assert_contains("0 open for this login").assert_contains("0 for your account");
}

#[tokio::test]
async fn devices_list_the_current_one_first_with_relative_times() {
    let app = TestApp::memory().await;
    let ua = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36";
    let mut browsers = Vec::new();
    for i in 0..3 {
        let mut b = app.browser();
        let req = Request::get("/login").header(header::USER_AGENT, ua).body(Body::empty()).unwrap();
        b.send(req).await;
        if i == 0 {
            b.register("alice", "correct horse").await;
        } else {
            // The login request itself carries the User-Agent the label comes from.
            let token = b.csrf.clone().unwrap();
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("csrf_token", token.as_str()),
                    ("name", "alice"),
                    ("password", "correct horse"),
                ])
                .finish();
            let req = Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::USER_AGENT, ua)
                .body(Body::from(body))
                .unwrap();
            assert_eq!(b.send(req).await.status, StatusCode::SEE_OTHER);
        }
        browsers.push(b);
    }
    // The middle one looks at the list: it comes first, marked, among identical labels.
    let page = browsers[1].get("/devices").await;
    let rows: Vec<&str> = page.body.split("<li class=\"item").skip(1).collect();
    assert_eq!(rows.len(), 3, "{}", page.body);
    let marked = "class=\"tag\">this device";
    assert!(rows[0].contains(marked) && rows[0].contains("id=\"this-device\""), "{}", rows[0]);
    assert!(rows[1..].iter().all(|r| !r.contains(marked) && r.contains("Log out this device")));
    // The two logins made with the same browser look alike but for their tags.
    assert_eq!(page.body.matches("Chrome on Linux").count(), 2);
    page.assert_contains("signed in <time").assert_contains("just now").assert_contains("in 7 days");
    // Short tags tell the rows apart; they are a few characters of the public handle.
    let tags: std::collections::HashSet<&str> =
        page.body.split("device-tag\"").skip(1).filter_map(|s| s.split('#').nth(1)?.get(..4)).collect();
    assert_eq!(tags.len(), 3, "{}", page.body);
    // Never the session id (the cookie's value) or the cookie.
    let cookie = browsers[1].cookie_header();
    for part in cookie.split(';') {
        let value = part.split_once('=').map_or("", |(_, v)| v.trim());
        assert!(value.len() < 8 || !page.body.contains(value), "a cookie value is on the page");
    }
}

#[tokio::test]
async fn bookmarks_sort_filter_by_tag_and_round_trip_through_a_browser_file() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    a.register("alice", "correct horse").await;
    a.post("/prefs", &[("theme", "system"), ("per_page", "5")]).await;
    let file = r#"<!DOCTYPE NETSCAPE-Bookmark-file-1>
<DL><p>
    <DT><H3>Toolbar</H3>
    <DL><p>
        <DT><A HREF="https://b.example/" ADD_DATE="1" TAGS="rust,web">Beta &amp; co</A>
        <DT><A HREF="https://a.example/" TAGS="rust">Alpha</A>
        <DT><A HREF="javascript:alert(1)">Evil</A>
        <DT><A HREF="https://c.example/">Gamma</A>
        <DT><A HREF="https://a.example/">Alpha again</A>
    </DL><p>
</DL>"#;
    let res = a.post("/bookmarks/import", &[("html", file)]).await;
    assert_eq!(res.location(), "/bookmarks");
    a.get("/bookmarks").await.assert_contains("Imported 3 bookmarks; skipped 2");
    // Importing the same file again adds nothing.
    a.post("/bookmarks/import", &[("html", file)]).await;
    a.get("/bookmarks").await.assert_contains("Imported 0 bookmarks; skipped 5");
    a.post_follow("/bookmarks/import", &[("html", "not a bookmark file")])
        .await
        .assert_contains("No bookmarks found");

    let titles = |body: &str| -> Vec<String> {
        body.split("class=\"item-title\"")
            .skip(1)
            .filter_map(|s| s.split('>').nth(1)?.split('<').next())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(titles(&a.get("/bookmarks?sort=title").await.body), ["Alpha", "Beta &amp; co", "Gamma"]);
    assert_eq!(titles(&a.get("/bookmarks?sort=oldest").await.body), ["Beta &amp; co", "Alpha", "Gamma"]);
    assert_eq!(titles(&a.get("/bookmarks").await.body), ["Gamma", "Alpha", "Beta &amp; co"]);
    let rust = a.get("/bookmarks?tag=Rust&sort=title").await;
    assert_eq!(titles(&rust.body), ["Alpha", "Beta &amp; co"]);
    rust.assert_contains("tagged “rust”");
    assert_eq!(titles(&a.get("/bookmarks?tag=web").await.body), ["Beta &amp; co"]);
    // A sort that does not exist: a friendly 400, not the framework's text.
    let bad = a.get("/bookmarks?sort=evil").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    bad.assert_lacks("Failed to deserialize").assert_contains("class=\"who\"");

    // The export is a file browsers import, and reads back the same.
    let export = a.get("/bookmarks/export").await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.headers[header::CONTENT_DISPOSITION].to_str().unwrap().starts_with("attachment"));
    export.assert_contains("<!DOCTYPE NETSCAPE-Bookmark-file-1>").assert_contains("TAGS=\"rust,web\"");
    let mut b = app.browser();
    b.register("bob", "correct horse").await;
    b.post("/bookmarks/import", &[("html", &export.body)]).await;
    b.get("/bookmarks").await.assert_contains("Imported 3 bookmarks.");
    assert_eq!(titles(&b.get("/bookmarks?sort=title").await.body), ["Alpha", "Beta &amp; co", "Gamma"]);
}

#[tokio::test]
async fn the_page_script_can_tell_an_ended_session_and_a_live_update_keeps_the_explanation() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    let me = a.get("/api/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    me.assert_contains("\"logged_in\":false");
    a.register("alice", "correct horse").await;
    a.get("/api/me").await.assert_contains("\"logged_in\":true");
    let mut other_tab = a.clone();
    other_tab.post("/logout", &[]).await;
    assert_eq!(a.get("/api/me").await.status, StatusCode::UNAUTHORIZED);
    // The page script's live update sees the redirect but does not eat the message...
    let live = Request::get("/notes").header("x-live-refresh", "1").body(Body::empty()).unwrap();
    assert_eq!(a.send(live).await.location(), "/login?next=%2Fnotes");
    // (fetch follows that redirect, with the same header)
    let followed = Request::get("/login?next=%2Fnotes").header("x-live-refresh", "1").body(Body::empty());
    a.send(followed.unwrap()).await.assert_lacks("Your session has ended");
    // ...which the navigation it then makes gets.
    let res = a.get("/notes").await;
    a.get(res.location()).await.assert_contains("Your session has ended");
}

#[tokio::test]
async fn favicon_and_assets_are_served() {
    let app = TestApp::memory().await;
    let mut a = app.browser();
    for path in ["/favicon.ico", "/static/favicon.svg"] {
        let res = a.get(path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        assert_eq!(res.headers[header::CONTENT_TYPE], "image/svg+xml", "{path}");
        res.assert_contains("<svg");
    }
    a.get("/").await.assert_contains("rel=\"icon\"");
    // The stylesheet follows the system's dark mode for the default theme.
    a.get("/static/style.css").await.assert_contains("prefers-color-scheme: dark");
}
