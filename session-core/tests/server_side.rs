//! Server-side sessions through an axum `Router`, cookies carried between requests.

mod common;

use axum::http::header;
use common::{app, record_id, Client};
use session_core::testing::{FaultStore, StoreMethod};
use session_core::{ExpiredDeletion, Expiry, Id, Key, KeyRing, SameSite, SessionLayer, SessionStore};
use session_store_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

fn plain(store: impl SessionStore) -> SessionLayer {
    SessionLayer::new(store)
}

#[tokio::test]
async fn an_untouched_session_costs_nothing() {
    let store = FaultStore::new(MemoryStore::default());
    let mut c = Client::new(app(plain(store.clone())));
    let r = c.get("/untouched").await;
    assert_eq!(r.body, "ok");
    assert!(r.set_cookie().is_none());
    assert!(!r.headers.contains_key(header::CACHE_CONTROL));
    assert_eq!(store.total_calls(), 0);

    c.post("/insert/a/1").await;
    let before = store.total_calls();
    let r = c.get("/untouched").await;
    assert!(r.set_cookie().is_none());
    assert_eq!(store.total_calls(), before, "a cookie alone makes no store call");
}

#[tokio::test]
async fn values_keep_their_types_across_requests() {
    let mut c = Client::new(app(plain(MemoryStore::default())));
    assert_eq!(c.get("/get/a").await.body, "none");
    let r = c.post("/insert/a/hello").await;
    let set = r.set_cookie().expect("new session sets a cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Max-Age"), "browser-session cookie by default: {set}");
    assert_eq!(c.get("/get/a").await.body, "\"hello\"");
    c.post("/push/list/x").await;
    c.post("/push/list/y").await;
    assert_eq!(c.get("/get/list").await.body, r#"["x","y"]"#);
    c.post("/insert-n/n/7").await;
    assert_eq!(c.get("/get-u32/n").await.body, "Some(7)");
    assert_eq!(c.get("/get-u32/a").await.body, "decode error on a", "a type mismatch is a typed error");
    assert_eq!(c.get("/keys").await.body, r#"["a", "list", "n"] 3 true"#);
}

#[tokio::test]
async fn reads_and_unchanged_writes_write_nothing() {
    let store = FaultStore::new(MemoryStore::default());
    let mut c = Client::new(app(plain(store.clone())));
    c.post("/insert/a/1").await;
    c.post("/push/list/x").await;
    let (saves, creates) = (store.calls(StoreMethod::Apply), store.calls(StoreMethod::Create));
    assert_eq!(creates, 1);
    assert_eq!(saves, 1, "the push, and no refresh");

    for path in ["/get/a", "/keys"] {
        let r = c.get(path).await;
        assert!(r.set_cookie().is_none(), "{path} only reads");
    }
    for path in ["/insert/a/1", "/noop-update/list"] {
        let r = c.post(path).await;
        assert!(r.set_cookie().is_none(), "{path} changes nothing");
    }
    assert_eq!(store.calls(StoreMethod::Apply), saves, "no save (and no refresh) without a change");
    assert_eq!(store.calls(StoreMethod::Create), 1);
}

#[tokio::test]
async fn a_new_session_is_stored_only_once_it_holds_data() {
    let store = FaultStore::new(MemoryStore::default());
    let mut c = Client::new(app(plain(store.clone())));
    let r = c.get("/get/a").await;
    assert!(r.set_cookie().is_none());
    c.post("/remove/a").await;
    c.post("/noop-update/list").await;
    assert_eq!(store.calls(StoreMethod::Create), 0);
    assert!(store.inner().is_empty());
    assert!(c.cookie().is_none());
}

#[tokio::test]
async fn only_changed_keys_are_written_and_removal_works() {
    let mem = MemoryStore::default();
    let mut c = Client::new(app(plain(mem.clone())));
    c.post("/insert/a/1").await;
    c.post("/insert/b/2").await;
    assert_eq!(c.post("/remove/b").await.body, "Some(String(\"2\"))");
    assert_eq!(c.get("/keys").await.body, r#"["a"] 1 true"#);
    let rec = mem.load(&record_id(c.cookie().as_deref().unwrap())).await.unwrap().unwrap();
    assert_eq!(rec.entries.keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(rec.version, 3, "create, insert b, remove b");
}

#[tokio::test]
async fn clear_empties_and_ends_the_session() {
    let mem = MemoryStore::default();
    let mut c = Client::new(app(plain(mem.clone())));
    c.post("/insert/a/1").await;
    let id = record_id(c.cookie().as_deref().unwrap());
    let r = c.post("/clear").await;
    assert!(r.set_cookie().unwrap().contains("Max-Age=0"), "an emptied session loses its cookie");
    assert!(mem.load(&id).await.unwrap().is_none(), "the empty record is gone");
    mem.delete_expired().await.unwrap();
    assert!(mem.is_empty(), "and swept");
}

#[tokio::test]
async fn flush_expires_the_cookie_and_kills_the_old_id() {
    let layer = plain(MemoryStore::default()).with_domain("example.com").with_path("/");
    let mut c = Client::new(app(layer));
    c.post("/insert/a/secret").await;
    let old = c.cookie().unwrap();
    let r = c.post("/flush").await;
    let set = r.set_cookie().unwrap();
    for attr in ["id=;", "Max-Age=0", "Path=/", "Domain=example.com", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert_eq!(r.headers[header::CACHE_CONTROL], "private, no-store");
    assert_eq!(r.headers[header::VARY], "Cookie");
    c.set_cookie_value(Some(old));
    assert_eq!(c.get("/get/a").await.body, "none", "the old cookie no longer loads");
}

#[tokio::test]
async fn data_inserted_after_flush_starts_a_new_session() {
    let mem = MemoryStore::default();
    let mut c = Client::new(app(plain(mem.clone())));
    c.post("/insert/a/secret").await;
    let old = c.cookie().unwrap();
    c.post("/flush-then-insert").await;
    let new = c.cookie().unwrap();
    assert_ne!(old, new);
    assert_eq!(c.get("/get/a").await.body, "none");
    assert_eq!(c.get("/get/flash").await.body, "\"bye\"");
    assert_eq!(mem.len(), 1);
}

#[tokio::test]
async fn cycle_id_changes_the_id_and_keeps_the_data() {
    let mem = MemoryStore::default();
    let mut c = Client::new(app(plain(mem.clone())));
    c.post("/insert/a/1").await;
    let old = c.cookie().unwrap();
    let r = c.post("/cycle").await;
    assert_eq!(r.body, "cycled");
    let new = c.cookie().unwrap();
    assert_ne!(old, new);
    assert_eq!(c.get("/get/a").await.body, "\"1\"");
    assert!(mem.load(&record_id(&old)).await.unwrap().is_none(), "old record deleted");
    assert_eq!(mem.len(), 2, "the new record, and the old id's forward");
    c.set_cookie_value(Some(old));
    assert_eq!(c.get("/get/a").await.body, "none");
}

#[tokio::test]
async fn an_unknown_id_is_never_adopted() {
    let store = FaultStore::new(MemoryStore::default());
    let mut c = Client::new(app(plain(store.clone())));
    let planted = Id::random().to_string();
    c.set_cookie_value(Some(planted.clone()));
    assert_eq!(c.get("/get/a").await.body, "none");
    assert!(store.inner().is_empty(), "reading with an unknown id creates nothing");
    c.post("/insert/a/1").await;
    let issued = c.cookie().unwrap();
    assert_ne!(issued, planted, "a fixated id gets replaced by a fresh one");
    assert!(store.inner().load(&record_id(&planted)).await.unwrap().is_none());
}

#[tokio::test]
async fn garbage_cookies_are_no_session_and_reach_no_store() {
    let store = FaultStore::new(MemoryStore::default());
    let app = app(plain(store.clone()));
    let long = "A".repeat(5000);
    let bad: [&[u8]; 7] = [
        b"id=short",
        b"id=!!!!!!!!!!!!!!!!!!!!!!",
        long.as_bytes(),
        b"id=\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec\xeb\xea",
        b"id=AAAAAAAAAAAAAAAAAAAAAA; id=BBBBBBBBBBBBBBBBBBBBBA",
        b"id",
        b";;;===;;",
    ];
    for cookie in bad {
        let req = axum::http::Request::get("/get/a")
            .header(header::COOKIE, axum::http::HeaderValue::from_bytes(cookie).unwrap())
            .body(axum::body::Body::empty())
            .unwrap();
        let r = common::send(&app, req).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "none");
        assert!(r.set_cookie().is_none());
    }
    assert_eq!(store.total_calls(), 0, "no malformed cookie reaches the store");
}

fn signed_layer(store: impl SessionStore, ring: KeyRing) -> SessionLayer {
    SessionLayer::new(store).with_signed(ring)
}

fn private_layer(store: impl SessionStore, ring: KeyRing) -> SessionLayer {
    SessionLayer::new(store).with_private(ring)
}

#[tokio::test]
async fn tampered_signed_and_private_cookies_are_no_session() {
    type Make = fn(FaultStore<MemoryStore>, KeyRing) -> SessionLayer;
    for make in [signed_layer as Make, private_layer as Make] {
        let store = FaultStore::new(MemoryStore::default());
        let mut c = Client::new(app(make(store.clone(), KeyRing::new(Key::generate()))));
        c.post("/insert/a/1").await;
        let good = c.cookie().unwrap();
        assert!(good.parse::<Id>().is_err(), "the cookie is not a bare id");
        assert_eq!(c.get("/get/a").await.body, "\"1\"");
        let loads = store.calls(StoreMethod::Load);
        for i in [0, good.len() / 2, good.len() - 1] {
            let mut forged = good.clone().into_bytes();
            forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
            c.set_cookie_value(Some(String::from_utf8(forged).unwrap()));
            assert_eq!(c.get("/get/a").await.body, "none");
        }
        // A signed cookie's id part with a new random id and the old tag.
        c.set_cookie_value(Some(format!("{}{}", Id::random(), &good[22..])));
        assert_eq!(c.get("/get/a").await.body, "none");
        assert_eq!(store.calls(StoreMethod::Load), loads, "forged ids never reach the store");
    }
}

#[tokio::test]
async fn a_cookie_made_with_a_fallback_key_is_accepted_and_reissued() {
    type Make = fn(MemoryStore, KeyRing) -> SessionLayer;
    for make in [signed_layer as Make, private_layer as Make] {
        let mem = MemoryStore::default();
        let old = Key::generate();
        let mut c = Client::new(app(make(mem.clone(), KeyRing::new(old.clone()))));
        c.post("/insert/a/1").await;
        let old_cookie = c.cookie().unwrap();

        let rotated = KeyRing::new(Key::generate()).with_fallback(old);
        c.set_app(app(make(mem.clone(), rotated.clone())));
        let r = c.get("/get/a").await;
        assert_eq!(r.body, "\"1\"");
        let reissued = c.cookie().unwrap();
        assert_ne!(reissued, old_cookie, "re-issued under the primary key");
        // The re-issued cookie works with the new primary alone.
        c.set_app(app(make(mem.clone(), KeyRing::new(rotated.primary().clone()))));
        assert_eq!(c.get("/get/a").await.body, "\"1\"");
        assert!(c.get("/get/a").await.set_cookie().is_none(), "re-issued once, not every time");
    }
}

#[tokio::test]
async fn idle_expiry_ends_the_session() {
    let mem = MemoryStore::default();
    let layer = plain(mem.clone()).with_expiry(Expiry::OnInactivity(Duration::hours(1)));
    let mut c = Client::new(app(layer));
    let r = c.post("/insert/a/1").await;
    assert!(r.set_cookie().unwrap().contains("Max-Age=3600"));
    // An hour without requests: rewind the record's expiry into the past.
    let id = record_id(c.cookie().as_deref().unwrap());
    let mut rec = mem.load(&id).await.unwrap().unwrap();
    rec.expires_at = OffsetDateTime::now_utc() - Duration::seconds(1);
    common::replace(&mem, &rec).await;
    assert_eq!(c.get("/get/a").await.body, "none");
}

#[tokio::test]
async fn idle_refresh_is_throttled() {
    let store = FaultStore::new(MemoryStore::default());
    let layer = plain(store.clone()).with_expiry(Expiry::OnInactivity(Duration::hours(1)));
    let mut c = Client::new(app(layer));
    c.post("/insert/a/1").await;
    let r = c.get("/get/a").await;
    assert!(r.set_cookie().is_none(), "just written: no refresh");
    assert_eq!(store.calls(StoreMethod::Apply), 0);

    // 20 minutes later (more than a quarter of the window): one touch, cookie re-sent.
    let id = record_id(c.cookie().as_deref().unwrap());
    let mut rec = store.inner().load(&id).await.unwrap().unwrap();
    let version = rec.version;
    rec.expires_at -= Duration::minutes(20);
    common::replace(store.inner(), &rec).await;
    let r = c.get("/get/a").await;
    assert!(r.set_cookie().unwrap().contains("Max-Age=3600"));
    assert_eq!(store.calls(StoreMethod::Apply), 3 - 2, "one refresh");
    let entries = rec.entries.clone();
    rec = store.inner().load(&id).await.unwrap().unwrap();
    assert_eq!(rec.entries, entries, "a refresh changes no key");
    assert_eq!(rec.version, version + 1, "one refresh, nothing else");
    assert!(rec.expires_at > OffsetDateTime::now_utc() + Duration::minutes(59));
    assert!(
        rec.last_seen > OffsetDateTime::now_utc() - Duration::minutes(1),
        "the refresh records last_seen"
    );
}

#[tokio::test]
async fn the_absolute_lifetime_ends_even_an_active_session() {
    let mem = MemoryStore::default();
    let layer = plain(mem.clone())
        .with_expiry(Expiry::OnInactivity(Duration::hours(1)))
        .with_max_lifetime(Duration::hours(8));
    let mut c = Client::new(app(layer));
    c.post("/insert/a/1").await;
    let id = record_id(c.cookie().as_deref().unwrap());
    let mut rec = mem.load(&id).await.unwrap().unwrap();
    // Created nine hours ago but used a minute ago.
    rec.created_at -= Duration::hours(9);
    common::replace(&mem, &rec).await;
    assert_eq!(c.get("/get/a").await.body, "none");
}

#[tokio::test]
async fn remember_me_overrides_the_default_expiry_and_persists() {
    let mut c = Client::new(app(plain(MemoryStore::default())));
    c.post("/insert/a/1").await;
    let r = c.post("/remember").await;
    let thirty_days = Duration::days(30).whole_seconds();
    assert!(r.set_cookie().unwrap().contains(&format!("Max-Age={thirty_days}")), "{:?}", r.set_cookie());
    // A later write keeps the session's own expiry.
    let r = c.post("/insert/b/2").await;
    assert!(r.set_cookie().unwrap().contains(&format!("Max-Age={thirty_days}")));
}

#[tokio::test]
async fn cookie_attributes_follow_the_configuration() {
    let layer = plain(MemoryStore::default())
        .with_name("__Host-s")
        .with_same_site(SameSite::Strict)
        .with_partitioned(true)
        .with_http_only(true);
    let mut c = Client::new(app(layer)).with_name("__Host-s");
    let set = c.post("/insert/a/1").await.set_cookie().unwrap().to_owned();
    for attr in ["__Host-s=", "SameSite=Strict", "Partitioned", "Secure", "HttpOnly", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Domain"));
}

#[test]
#[should_panic(expected = "__Host- prefix")]
fn a_host_cookie_with_a_domain_is_a_configuration_bug() {
    let _ = app(plain(MemoryStore::default()).with_name("__Host-id").with_domain("example.com"));
}

#[test]
#[should_panic(expected = "__Host- prefix requires Secure")]
fn a_host_cookie_without_secure_is_a_configuration_bug() {
    let _ = app(plain(MemoryStore::default()).with_name("__Host-id").with_secure(false));
}

#[test]
#[should_panic(expected = "__Host- prefix requires Path=/")]
fn a_host_cookie_with_a_path_is_a_configuration_bug() {
    let _ = app(plain(MemoryStore::default()).with_name("__Host-id").with_path("/app"));
}

#[tokio::test]
async fn cache_headers_accompany_every_cookie_and_respect_the_app() {
    let mut c = Client::new(app(plain(MemoryStore::default())));
    let r = c.post("/insert/a/1").await;
    assert_eq!(r.headers[header::CACHE_CONTROL], "private, no-store");
    assert_eq!(r.headers[header::VARY], "Cookie");
    // An app's own header stays when it already keeps shared caches out; anything that
    // lets a shared cache store the response (and hand the cookie to others) is replaced.
    for (own, want) in [
        ("no-store", "no-store"),
        ("private,%20max-age=60", "private, max-age=60"),
        ("public,%20max-age=600", "private, no-store"),
        ("no-cache", "private, no-store"),
        ("max-age=600", "private, no-store"),
        ("private,%20public", "private, no-store"),
    ] {
        let mut fresh = Client::new(c.app().clone());
        let r = fresh.post(&format!("/cache-control?{own}")).await;
        assert!(r.set_cookie().is_some());
        assert_eq!(r.headers[header::CACHE_CONTROL], want, "app said {own}");
        assert_eq!(r.headers[header::VARY], "Cookie");
    }
}

#[tokio::test]
async fn vary_cookie_is_added_to_the_apps_own_vary_once() {
    let app = app(plain(MemoryStore::default()));
    for (own, want) in [
        ("Accept-Encoding", &["Accept-Encoding", "Cookie"][..]),
        ("Accept-Encoding,%20cookie", &["Accept-Encoding, cookie"][..]),
        ("*", &["*"][..]),
    ] {
        let r = Client::new(app.clone()).post(&format!("/vary?{own}")).await;
        assert!(r.set_cookie().is_some());
        let got: Vec<&str> = r.headers.get_all(header::VARY).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(got, want, "the app said Vary: {own}");
    }
}

#[tokio::test]
async fn a_write_resends_the_cookie_only_when_it_says_something_new() {
    let mut c = Client::new(app(plain(MemoryStore::default())));
    c.post("/insert/a/1").await;
    let r = c.post("/insert/a/2").await;
    assert!(r.set_cookie().is_none(), "browser-session cookie: same id, same attributes");
    let mut idle =
        Client::new(app(plain(MemoryStore::default()).with_expiry(Expiry::OnInactivity(Duration::hours(1)))));
    idle.post("/insert/a/1").await;
    let r = idle.post("/insert/a/2").await;
    assert!(r.set_cookie().unwrap().contains("Max-Age=3600"), "a rolling Max-Age moves with each write");
}

/// An app's own id format, as [`SessionLayer::with_id_format`] takes it: 32 random bytes in
/// hex, each id its own record id (as a framework sharing the store might key them). A
/// value with the prefix `old-` reads as made with a fallback key.
#[derive(Debug)]
struct HexIds;

impl session_core::IdFormat for HexIds {
    fn generate(&self) -> Id {
        let mut bytes = [0; 32];
        getrandom::fill(&mut bytes).unwrap();
        Id::from_raw(bytes)
    }

    fn encode(&self, _name: &str, id: &Id) -> String {
        id.raw().unwrap().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(&self, _name: &str, value: &str) -> Option<(Id, bool)> {
        let (value, reissue) = value.strip_prefix("old-").map_or((value, false), |v| (v, true));
        if value.len() != 64 {
            return None;
        }
        let mut bytes = [0; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(value.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some((Id::from_raw(bytes), reissue))
    }

    fn max_len(&self) -> usize {
        68
    }
}

fn raw_record_id(hex: &str) -> session_core::RecordId {
    let mut bytes = [0; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    session_core::RecordId::from_bytes(bytes)
}

#[tokio::test]
async fn an_apps_own_id_format_makes_carries_and_cycles_its_ids() {
    let mem = MemoryStore::default();
    let mut c = Client::new(app(SessionLayer::new(mem.clone()).with_id_format(HexIds)));
    c.post("/insert/a/1").await;
    let first = c.cookie().unwrap();
    assert_eq!(first.len(), 64, "{first}");
    // The store is keyed by the id's own bytes, no digest.
    assert!(mem.load(&raw_record_id(&first)).await.unwrap().is_some());
    assert_eq!(c.get("/get/a").await.body, "\"1\"");
    // An id change draws the next id from the format too, and the old one stops working.
    c.post("/cycle").await;
    let second = c.cookie().unwrap();
    assert_eq!(second.len(), 64);
    assert_ne!(second, first);
    assert!(mem.load(&raw_record_id(&second)).await.unwrap().is_some());
    assert_eq!(c.get("/get/a").await.body, "\"1\"");
    // Re-issue, garbage, and values longer than the format's longest.
    c.set_cookie_value(Some(format!("old-{second}")));
    let r = c.get("/get/a").await;
    assert_eq!(r.body, "\"1\"");
    assert!(r.set_cookie().unwrap().starts_with(&format!("id={second};")), "re-issued in the current form");
    for bad in [first.clone(), "zz".repeat(32), format!("old-{second}x"), "a".repeat(5000)] {
        c.set_cookie_value(Some(bad));
        assert_eq!(c.get("/get/a").await.body, "none");
    }
    // The layer's own format still refuses the app's ids.
    let mut plain_client = Client::new(app(plain(mem.clone())));
    plain_client.set_cookie_value(Some(second));
    assert_eq!(plain_client.get("/get/a").await.body, "none");
}
