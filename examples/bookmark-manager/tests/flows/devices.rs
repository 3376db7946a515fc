//! The devices page, revoking sessions, and the WebSocket's login check.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use bookmark_manager::StoreKind;

use crate::common::TestApp;

/// The revoke forms' handles on a devices page.
fn handles(body: &str) -> Vec<String> {
    body.split("action=\"/devices/")
        .skip(1)
        .filter_map(|s| s.split('/').next())
        .filter(|h| h.len() == 64)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn lists_devices_and_logs_out_one() {
    let app = TestApp::memory().await;
    let mut laptop = app.browser();
    laptop.register("alice", "correct horse").await;
    let mut phone = app.browser();
    let login = axum::http::Request::builder()
        .method("GET")
        .uri("/login")
        .header(header::USER_AGENT, "Mozilla/5.0 (Linux; Android 14) Firefox/120.0")
        .body(Body::empty())
        .unwrap();
    phone.send(login).await;
    phone.login("alice", "correct horse", false).await;

    let page = laptop.get("/devices").await;
    page.assert_contains("this device").assert_contains("Log out this device");
    let others = handles(&page.body);
    assert_eq!(others.len(), 1, "{}", page.body);

    // Bob cannot see or end Alice's sessions.
    let mut bob = app.browser();
    bob.register("bob", "bobs quiet pumpkin").await;
    bob.get("/devices").await.assert_lacks(&others[0]);
    let res = bob.post(&format!("/devices/{}/logout", others[0]), &[]).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(phone.get("/bookmarks").await.status, StatusCode::OK);
    assert_eq!(bob.post("/devices/not-a-handle/logout", &[]).await.status, StatusCode::NOT_FOUND);

    let res = laptop.post(&format!("/devices/{}/logout", others[0]), &[]).await;
    assert_eq!(res.location(), "/devices");
    laptop.get("/devices").await.assert_contains("That device is logged out.");
    assert_eq!(phone.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks");
    assert!(handles(&laptop.get("/devices").await.body).is_empty());
}

#[tokio::test]
async fn logs_out_all_other_devices() {
    for store in [StoreKind::Memory, StoreKind::Cookie] {
        let app = TestApp::new(store).await;
        let mut laptop = app.browser();
        laptop.register("alice", "correct horse").await;
        let mut phone = app.browser();
        phone.login("alice", "correct horse", false).await;
        let mut tablet = app.browser();
        tablet.login("alice", "correct horse", false).await;
        let page = laptop.get("/devices").await;
        if store == StoreKind::Cookie {
            page.assert_contains("In cookie mode each session lives only in its browser");
        }
        assert_eq!(laptop.post("/devices/others/logout", &[]).await.location(), "/devices");
        let page = laptop.get("/devices").await;
        if store == StoreKind::Cookie {
            page.assert_contains("Every other login is over.");
        } else {
            page.assert_contains("2 other devices are logged out.");
        }
        assert_eq!(phone.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks", "{store}");
        assert_eq!(tablet.get("/notes").await.location(), "/login?next=%2Fnotes", "{store}");
        assert_eq!(laptop.get("/bookmarks").await.status, StatusCode::OK, "{store}");
    }
}

fn upgrade_request(cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::get("/ws")
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    req.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn websocket_upgrades_need_a_live_login() {
    let app = TestApp::memory().await;
    let mut anon = app.browser();
    assert_eq!(anon.send(upgrade_request(None)).await.status, StatusCode::UNAUTHORIZED);

    let mut alice = app.browser();
    alice.register("alice", "correct horse").await;
    let cookie = alice.cookie_header();
    // Logged in: the login check passes; oneshot cannot really upgrade, so axum refuses
    // with its own "not upgradable" status rather than 401.
    let res = alice.send(upgrade_request(Some(&cookie))).await;
    assert_ne!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.status.is_client_error(), "{:?}", res.status);

    alice.post("/logout", &[]).await;
    let mut replay = app.browser();
    assert_eq!(replay.send(upgrade_request(Some(&cookie))).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        replay.send(upgrade_request(Some("__Host-bm_session=garbage"))).await.status,
        StatusCode::UNAUTHORIZED
    );

    let mut cross = app.browser();
    cross.register("carol", "carols password").await;
    let req = {
        let mut r = upgrade_request(Some(&cross.cookie_header()));
        r.headers_mut().insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
        r.headers_mut().insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        r
    };
    assert_eq!(cross.send(req).await.status, StatusCode::FORBIDDEN);
}
