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

/// An app's own wire format, as [`SessionLayer::client_side`] takes it: the session in
/// plain text (`created.expires.key-hexvalue...`), unprotected, which only a test may use.
/// A value starting with `old:` reads as made with a fallback key; a key named
/// `unencodable` has no form in it.
#[derive(Debug)]
struct PlainText;

impl session_core::client::CookieFormat for PlainText {
    fn encode(
        &self,
        _name: &str,
        s: &session_core::client::ClientSession,
        _now: time::OffsetDateTime,
    ) -> Result<String, session_core::Error> {
        if s.entries.contains_key("unencodable") {
            let source = "this format has no form for it".into();
            return Err(session_core::Error::Encode { key: "unencodable".into(), source });
        }
        let mut out = format!("{}.{}", s.created_at.unix_timestamp(), s.expires_at.unix_timestamp());
        for (key, value) in &s.entries {
            out.push('.');
            out.push_str(key);
            out.push('-');
            out.extend(value.iter().map(|b| format!("{b:02x}")));
        }
        Ok(out)
    }

    fn decode(
        &self,
        _name: &str,
        value: &str,
        _now: time::OffsetDateTime,
    ) -> Option<(session_core::client::ClientSession, bool)> {
        let (value, reissue) = value.strip_prefix("old:").map_or((value, false), |v| (v, true));
        let mut parts = value.split('.');
        let at = |s: &str| time::OffsetDateTime::from_unix_timestamp(s.parse().ok()?).ok();
        let created_at = at(parts.next()?)?;
        let expires_at = at(parts.next()?)?;
        let mut entries = session_core::Entries::new();
        for part in parts {
            let (key, hex) = part.split_once('-')?;
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            entries.insert(key, bytes.into());
        }
        Some((session_core::client::ClientSession { entries, created_at, expires_at, expiry: None }, reissue))
    }
}

#[tokio::test]
async fn an_apps_own_format_carries_the_session() {
    let mut c = Client::new(app(SessionLayer::client_side(PlainText)));
    assert!(c.get("/untouched").await.set_cookie().is_none());
    c.post("/insert-big/note/3").await;
    let cookie = c.cookie().unwrap();
    // "xxx" in MessagePack: a fixstr of 3 bytes (0xa3), then the text.
    assert!(cookie.ends_with(".note-a3787878"), "{cookie}");
    assert_eq!(c.get("/get/note").await.body, "\"xxx\"");
    assert!(c.get("/get/note").await.set_cookie().is_none(), "reads re-send nothing");
    // A cookie the format made with a fallback key is issued again, in the current form.
    c.set_cookie_value(Some(format!("old:{cookie}")));
    let r = c.get("/get/note").await;
    assert_eq!(r.body, "\"xxx\"");
    assert!(!r.set_cookie().expect("re-issued").contains("old:"));
    // Anything the format does not read is no session.
    c.set_cookie_value(Some("garbage".into()));
    assert_eq!(c.get("/get/note").await.body, "none");
}

#[tokio::test]
async fn an_apps_own_format_is_held_to_the_size_limit_and_its_own_refusals() {
    let mut c = Client::new(app(SessionLayer::client_side(PlainText)));
    c.post("/insert-big/a/4").await;
    let before = c.cookie().unwrap();
    // Hex doubles the size: 2100 characters take over 4200 bytes.
    let r = c.post("/insert-big/big/2100").await;
    assert!(r.body.starts_with("too large:") && r.body.contains("4096"), "{}", r.body);
    assert!(r.set_cookie().is_none(), "nothing changed, nothing sent");
    let r = c.post("/insert-big/unencodable/1").await;
    assert!(r.body.contains("`unencodable` could not be encoded"), "{}", r.body);
    assert!(r.set_cookie().is_none());
    assert_eq!(c.cookie(), Some(before));
    assert_eq!(c.get("/get/unencodable").await.body, "none");
}

#[tokio::test]
async fn an_expired_cookie_of_an_apps_own_format_is_refused() {
    let mut c = Client::new(app(SessionLayer::client_side(PlainText)));
    let past = time::OffsetDateTime::now_utc().unix_timestamp() - 10;
    c.set_cookie_value(Some(format!("{}.{past}.a-01", past - 100)));
    assert_eq!(c.get("/get/a").await.body, "none");
    c.set_cookie_value(Some(format!("{}.{}.a-01", past - 100, past + 1000)));
    assert_eq!(c.get("/get/a").await.body, "1");
}

#[tokio::test]
async fn without_same_site_sends_no_same_site_attribute() {
    let mut c = Client::new(app(SessionLayer::client_side(PlainText).without_same_site()));
    let set = c.post("/insert-big/a/1").await.set_cookie().unwrap().to_owned();
    assert!(!set.contains("SameSite"), "{set}");
    assert!(set.contains("HttpOnly") && set.contains("Path=/"), "{set}");
    let mut c = Client::new(app(SessionLayer::client_side(PlainText)));
    assert!(c.post("/insert-big/a/1").await.set_cookie().unwrap().contains("SameSite=Lax"));
}
