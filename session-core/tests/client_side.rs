//! Client-side sessions: the whole session sealed or signed inside the cookie.

mod common;

use base64::Engine as _;
use common::{app, Client};
use session_core::{Expiry, Key, KeyRing, SessionLayer};
use time::Duration;

fn ring() -> KeyRing {
    KeyRing::new(Key::generate())
}

#[tokio::test]
async fn private_sessions_round_trip_and_hide_their_content() {
    let mut c = Client::new(app(SessionLayer::client_side_private(ring())));
    assert!(c.get("/untouched").await.set_cookie().is_none());
    c.post("/insert/user/alice-the-admin").await;
    c.post("/push/list/x").await;
    let cookie = c.cookie().unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&cookie).unwrap();
    assert!(!raw.windows(5).any(|w| w == b"alice"), "sealed, not readable");
    assert_eq!(c.get("/get/user").await.body, "\"alice-the-admin\"");
    assert_eq!(c.get("/get/list").await.body, r#"["x"]"#);
    let r = c.get("/get/user").await;
    assert!(r.set_cookie().is_none(), "reads re-send nothing");
}

#[tokio::test]
async fn signed_sessions_are_readable_but_tamper_proof() {
    let mut c = Client::new(app(SessionLayer::client_side_signed(ring())));
    c.post("/insert/role/user").await;
    let cookie = c.cookie().unwrap();
    let (payload, tag) = cookie.rsplit_once('.').unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = b64.decode(payload).unwrap();
    let at = raw.windows(4).position(|w| w == b"user").expect("signed payloads are readable");
    raw[at..at + 4].copy_from_slice(b"root");
    c.set_cookie_value(Some(format!("{}.{tag}", b64.encode(&raw))));
    assert_eq!(c.get("/get/role").await.body, "none", "a changed payload fails the signature");
    c.set_cookie_value(Some(cookie));
    assert_eq!(c.get("/get/role").await.body, "\"user\"");
}

#[tokio::test]
async fn tampered_or_foreign_cookies_are_no_session() {
    let mut c = Client::new(app(SessionLayer::client_side_private(ring())));
    c.post("/insert/a/1").await;
    let good = c.cookie().unwrap();
    let mut bad = good.clone().into_bytes();
    bad[10] = if bad[10] == b'A' { b'B' } else { b'A' };
    c.set_cookie_value(Some(String::from_utf8(bad).unwrap()));
    assert_eq!(c.get("/get/a").await.body, "none");
    // Sealed by another app's key.
    let mut other = Client::new(app(SessionLayer::client_side_private(ring())));
    other.set_cookie_value(Some(good));
    assert_eq!(other.get("/get/a").await.body, "none");
}

#[tokio::test]
async fn an_insert_that_would_overflow_the_cookie_fails_and_changes_nothing() {
    let mut c = Client::new(app(SessionLayer::client_side_private(ring())));
    c.post("/insert/a/keep-me").await;
    let before = c.cookie().unwrap();
    let r = c.post("/insert-big/big/5000").await;
    assert!(r.body.starts_with("too large:"), "{}", r.body);
    assert!(r.body.contains("4096"));
    assert!(r.set_cookie().is_none(), "nothing changed, nothing sent");
    assert_eq!(c.cookie().as_ref(), Some(&before));
    // The largest value that fits still works, and the cookie stays within the limit.
    let r = c.post("/insert-big/big/2800").await;
    assert_eq!(r.body, "inserted");
    let set = r.set_cookie().unwrap();
    let pair = set.split(';').next().unwrap();
    assert!(pair.len() <= 4096, "{} bytes", pair.len());
    assert_eq!(c.get("/get/a").await.body, "\"keep-me\"");
}

#[tokio::test]
async fn a_replayed_cookie_past_its_expiry_is_refused() {
    let mut c = Client::new(app(SessionLayer::client_side_private(ring())));
    c.post("/insert/a/1").await;
    // The server ends the session: the cookie it sends carries an expiry in the past. An
    // attacker who kept that value replays it anyway.
    let r = c.post("/expire-now").await;
    let set = r.set_cookie().unwrap();
    assert!(set.contains("Max-Age=0"));
    let kept = set.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
    c.set_cookie_value(Some(kept));
    assert_eq!(c.get("/get/a").await.body, "none");
}

#[tokio::test]
async fn idle_expiry_is_sealed_in_and_refreshed() {
    let layer =
        SessionLayer::client_side_private(ring()).with_expiry(Expiry::OnInactivity(Duration::hours(2)));
    let mut c = Client::new(app(layer));
    let r = c.post("/insert/a/1").await;
    assert!(r.set_cookie().unwrap().contains("Max-Age=7200"));
    assert!(c.get("/get/a").await.set_cookie().is_none(), "refresh is throttled");
}

#[tokio::test]
async fn flush_and_clear_remove_the_cookie() {
    let mut c = Client::new(app(SessionLayer::client_side_signed(ring())));
    c.post("/insert/a/1").await;
    assert!(c.post("/flush").await.set_cookie().unwrap().contains("Max-Age=0"));
    assert!(c.cookie().is_none());
    c.post("/insert/a/1").await;
    assert!(c.post("/clear").await.set_cookie().unwrap().contains("Max-Age=0"));
    assert!(c.post("/flush").await.set_cookie().is_none(), "no cookie, nothing to remove");
}

#[tokio::test]
async fn a_fallback_key_cookie_is_accepted_and_resealed() {
    let old = Key::generate();
    let mut c = Client::new(app(SessionLayer::client_side_private(KeyRing::new(old.clone()))));
    c.post("/insert/a/1").await;
    let first = c.cookie().unwrap();
    let new = Key::generate();
    c.set_app(app(SessionLayer::client_side_private(KeyRing::new(new.clone()).with_fallback(old))));
    assert_eq!(c.get("/get/a").await.body, "\"1\"");
    assert_ne!(c.cookie().as_ref(), Some(&first), "re-sealed under the primary");
    c.set_app(app(SessionLayer::client_side_private(KeyRing::new(new))));
    assert_eq!(c.get("/get/a").await.body, "\"1\"");
}

/// Regression (found by `tests/properties.rs`): the insert's size check counted the expiry
/// instant at the size of the creation time's encoding, but an instant past 2106 (an
/// `AtDateTime` or a long idle window) takes four bytes more; and it counted the session's
/// own expiry as it was at the insert, but `set_expiry` afterwards makes the payload up to
/// 20 bytes longer. A session filled to within those bytes of the limit passed every
/// insert and then failed at the save: a 500 instead of the `CookieTooLarge` of the insert
/// that overflowed.
#[tokio::test]
async fn a_far_or_later_expiry_is_counted_when_an_insert_checks_the_size() {
    use axum::routing::post;
    use session_core::Session;

    // The year 9000.
    let far = time::OffsetDateTime::from_unix_timestamp(221_845_392_000)
        .unwrap()
        .replace_nanosecond(123_456_789)
        .unwrap();
    for (sealed, expiry_last) in [(true, false), (false, false), (true, true), (false, true)] {
        let layer = if sealed {
            SessionLayer::client_side_private(ring())
        } else {
            SessionLayer::client_side_signed(ring())
        };
        let app = axum::Router::new()
            .route(
                "/fill/{big}",
                post(move |s: Session, axum::extract::Path(big): axum::extract::Path<usize>| async move {
                    let expiry = Some(Expiry::AtDateTime(far));
                    if !expiry_last {
                        s.set_expiry(expiry);
                    }
                    s.insert("big", "x".repeat(big)).await?;
                    // One small value at a time up to the limit: the last one accepted lands
                    // every few bytes, so some `big` puts it just under the limit.
                    for i in 0.. {
                        match s.insert(&format!("k{i}"), "y").await {
                            Ok(()) => {}
                            Err(session_core::Error::CookieTooLarge { .. }) => break,
                            Err(e) => return Err(e),
                        }
                    }
                    if expiry_last {
                        s.set_expiry(expiry);
                    }
                    Ok::<_, session_core::Error>("full")
                }),
            )
            .layer(layer);
        for big in 2900..2912 {
            let r = Client::new(app.clone()).post(&format!("/fill/{big}")).await;
            assert_eq!(
                r.status, 200,
                "sealed {sealed}, expiry last {expiry_last}, big {big}: the save failed"
            );
            let pair = r.set_cookie().expect("a cookie").split(';').next().unwrap().len();
            assert!(pair <= 4096, "a cookie of {pair} bytes");
        }
    }
}
