//! The record cases every store runs.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response};
use time::{Duration, OffsetDateTime};
use tower_layer::Layer;
use tower_service::Service;

use super::FnService;
use crate::{ExpiredDeletion, Expiry, Id, Record, Session, SessionLayer, SessionStore, StoreError};

pub(super) fn record(entries: &[(&str, &[u8])], ttl: Duration) -> Record {
    let now = OffsetDateTime::now_utc();
    let mut r = Record::new(Id::random().record_id(), now, now + ttl);
    for (k, v) in entries {
        r.entries.insert((*k).to_owned(), Bytes::copy_from_slice(v));
    }
    r
}

async fn must_load(store: &impl SessionStore, r: &Record) -> Record {
    store.load(&r.id).await.expect("load failed").expect("record missing")
}

pub(super) fn assert_same(got: &Record, want: &Record) {
    assert_eq!(got.id, want.id);
    assert_eq!(got.entries, want.entries);
    assert_eq!(got.version, want.version);
    assert_eq!(got.expiry, want.expiry);
    // Stores may keep instants at millisecond precision.
    assert!((got.created_at - want.created_at).abs() < Duration::milliseconds(1), "created_at changed");
    assert!((got.expires_at - want.expires_at).abs() < Duration::milliseconds(1), "expires_at changed");
    assert!((got.last_seen - want.last_seen).abs() < Duration::milliseconds(1), "last_seen changed");
    assert_eq!(got.user, want.user);
    assert_eq!(got.label, want.label);
}

/// A created record loads back unchanged.
pub async fn create_then_load_round_trips(store: impl SessionStore) {
    let mut r = record(&[("user", b"\x2a"), ("cart", b"\x93\x01\x02\x03")], Duration::hours(1));
    r.expiry = Some(Expiry::OnInactivity(Duration::minutes(20)));
    r.user = Some("alice".into());
    r.label = Some("Firefox on Linux".into());
    r.last_seen = r.created_at + Duration::seconds(7);
    store.create(&r).await.unwrap();
    assert_same(&must_load(&store, &r).await, &r);
}

/// An id never created loads as `None`.
pub async fn loading_a_missing_record_gives_none(store: impl SessionStore) {
    assert!(store.load(&Id::random().record_id()).await.unwrap().is_none());
}

/// `create` on a live id fails with `Collision` and leaves the record alone.
pub async fn create_never_overwrites(store: impl SessionStore) {
    let r = record(&[("k", b"first")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut clash = r.clone();
    clash.entries.insert("k", Bytes::from_static(b"second"));
    assert!(matches!(store.create(&clash).await, Err(StoreError::Collision)));
    assert_same(&must_load(&store, &r).await, &r);
}

/// An expired record counts as absent for `create`.
pub async fn create_replaces_an_expired_record(store: impl SessionStore) {
    let old = record(&[("k", b"old")], -Duration::seconds(5));
    store.create(&old).await.unwrap();
    let mut new = record(&[("k", b"new")], Duration::hours(1));
    new.id = old.id;
    store.create(&new).await.unwrap();
    assert_same(&must_load(&store, &new).await, &new);
}

/// Expired records are never returned, even while the store still holds them.
pub async fn expired_records_are_never_loaded(store: impl SessionStore) {
    let r = record(&[("k", b"v")], -Duration::seconds(1));
    store.create(&r).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none());
    // Saving an expiry in the past ends a live record too.
    let live = record(&[("k", b"v")], Duration::hours(1));
    store.create(&live).await.unwrap();
    let mut ended = live.clone();
    ended.version = 2;
    ended.expires_at = OffsetDateTime::now_utc() - Duration::seconds(1);
    store.save(&ended, 1).await.unwrap();
    assert!(store.load(&live.id).await.unwrap().is_none());
    // An expired record is absent for `save` too: no write, no conflict.
    let mut late = live.clone();
    late.version = 3;
    assert!(matches!(store.save(&late, 2).await, Err(StoreError::NotFound)));
    assert!(store.load(&live.id).await.unwrap().is_none());
    let now = OffsetDateTime::now_utc();
    assert!(!store.touch(&live.id, now + Duration::hours(1), now).await.unwrap());
}

/// `save` with the loaded version replaces the record.
pub async fn save_with_the_loaded_version_succeeds(store: impl SessionStore) {
    let r = record(&[("a", b"1"), ("b", b"2")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut next = must_load(&store, &r).await;
    next.entries.remove("a");
    next.entries.insert("c", Bytes::from_static(b"3"));
    next.expires_at += Duration::minutes(5);
    next.version = 2;
    store.save(&next, 1).await.unwrap();
    assert_same(&must_load(&store, &r).await, &next);
}

/// A save based on an old version is refused with `Conflict` and changes nothing.
pub async fn save_with_a_stale_version_conflicts(store: impl SessionStore) {
    let r = record(&[("a", b"1")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut first = r.clone();
    first.entries.insert("a", Bytes::from_static(b"first"));
    first.version = 2;
    store.save(&first, 1).await.unwrap();
    let mut stale = r.clone();
    stale.entries.insert("a", Bytes::from_static(b"stale"));
    stale.version = 2;
    assert!(matches!(store.save(&stale, 1).await, Err(StoreError::Conflict)));
    assert_same(&must_load(&store, &r).await, &first);
}

/// `save` of a deleted (or never created) record is `NotFound` and creates nothing.
pub async fn save_never_resurrects_a_deleted_record(store: impl SessionStore) {
    let r = record(&[("a", b"1")], Duration::hours(1));
    store.create(&r).await.unwrap();
    store.delete(&r.id).await.unwrap();
    let mut next = r.clone();
    next.version = 2;
    assert!(matches!(store.save(&next, 1).await, Err(StoreError::NotFound)));
    assert!(store.load(&r.id).await.unwrap().is_none());
    let never = record(&[("a", b"1")], Duration::hours(1));
    assert!(matches!(store.save(&never, 0).await, Err(StoreError::NotFound)));
    assert!(store.load(&never.id).await.unwrap().is_none());
}

/// `touch` moves the expiry and nothing else; on a missing record it returns false.
pub async fn touch_moves_only_the_expiry(store: impl SessionStore) {
    let r = record(&[("a", b"1")], Duration::minutes(10));
    store.create(&r).await.unwrap();
    let later = r.expires_at + Duration::hours(2);
    let seen = r.created_at + Duration::minutes(3);
    assert!(store.touch(&r.id, later, seen).await.unwrap());
    let got = must_load(&store, &r).await;
    let mut want = r.clone();
    want.expires_at = later;
    want.last_seen = seen;
    assert_same(&got, &want);
    assert!(!store.touch(&Id::random().record_id(), later, seen).await.unwrap());
    assert!(store.load(&Id::random().record_id()).await.unwrap().is_none());
}

/// `delete` removes the record; deleting again is fine.
pub async fn delete_is_idempotent(store: impl SessionStore) {
    let r = record(&[("a", b"1")], Duration::hours(1));
    store.create(&r).await.unwrap();
    store.delete(&r.id).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none());
    store.delete(&r.id).await.unwrap();
}

/// Records with different ids never mix.
pub async fn many_records_stay_apart(store: impl SessionStore) {
    let records: Vec<Record> =
        (0..200u32).map(|i| record(&[("n", &i.to_be_bytes())], Duration::hours(1))).collect();
    for r in &records {
        store.create(r).await.unwrap();
    }
    for r in &records {
        assert_same(&must_load(&store, r).await, r);
    }
}

/// Through the layer: two concurrent requests of one session that change different keys
/// both keep their change (the version conflict is merged, not lost).
pub async fn concurrent_requests_changing_different_keys_both_survive(store: impl SessionStore) {
    let store = Arc::new(store);
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let layer = SessionLayer::from_arc(store.clone()).with_secure(false);
    let svc = layer.layer(FnService(move |req: Request<()>| {
        let barrier = Arc::clone(&barrier);
        async move {
            let session = req.extensions().get::<Session>().cloned().expect("layer");
            let key = req.uri().path().trim_start_matches('/').to_owned();
            if key == "init" {
                session.insert("init", 1u8).await.unwrap();
            } else {
                // Both requests load version 1 before either saves.
                let _: Option<u8> = session.get("init").await.unwrap();
                barrier.wait().await;
                session.insert(&key, key.len()).await.unwrap();
            }
            Ok::<_, Infallible>(Response::new(()))
        }
    }));
    let res = svc.clone().call(Request::get("/init").body(()).unwrap()).await.unwrap();
    let set = res.headers().get(SET_COOKIE).expect("a cookie").to_str().unwrap().to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    let request = |path: &str| Request::get(path).header(COOKIE, &pair).body(()).unwrap();
    let (a, b) = tokio::join!(svc.clone().call(request("/left")), svc.clone().call(request("/right-hand")));
    assert!(a.unwrap().status().is_success());
    assert!(b.unwrap().status().is_success());
    let id: Id = pair.split_once('=').unwrap().1.parse().unwrap();
    let stored = store.load(&id.record_id()).await.unwrap().expect("session kept");
    let keys: Vec<&str> = stored.entries.keys().collect();
    assert_eq!(keys, ["init", "left", "right-hand"]);
    assert_eq!(stored.version, 3, "one create and two saves");
}

/// `delete_expired` removes expired records and keeps live ones.
pub async fn delete_expired_removes_only_expired_records(store: impl ExpiredDeletion) {
    let live = record(&[("a", b"1")], Duration::hours(1));
    let dead: Vec<Record> = (0..5).map(|_| record(&[("a", b"1")], -Duration::seconds(1))).collect();
    store.create(&live).await.unwrap();
    for r in &dead {
        store.create(r).await.unwrap();
    }
    let removed = store.delete_expired().await.unwrap();
    assert!(removed >= 5, "removed {removed}, expected at least the 5 expired records");
    assert_same(&must_load(&store, &live).await, &live);
    // A second sweep finds nothing of ours to remove, and the live record stays.
    store.delete_expired().await.unwrap();
    assert!(store.load(&live.id).await.unwrap().is_some());
}
