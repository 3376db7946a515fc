//! The record cases every store runs.

use std::sync::Arc;

use bytes::Bytes;
use time::{Duration, OffsetDateTime};

use crate::{Change, ExpiredDeletion, Expiry, ExpiryChange, Id, Patch, Record, SessionStore, StoreError};

pub(super) fn record(entries: &[(&str, &[u8])], ttl: Duration) -> Record {
    let now = OffsetDateTime::now_utc();
    let mut r = Record::new(Id::random().record_id(), now, now + ttl);
    for (k, v) in entries {
        r.entries.insert((*k).to_owned(), Bytes::copy_from_slice(v));
    }
    r
}

pub(super) async fn must_load(store: &impl SessionStore, r: &Record) -> Record {
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

fn b(v: &[u8]) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(v))
}

/// A patch of `r` that keeps its expiry policy, expiring in an hour.
pub(super) fn patch_of(r: &Record) -> Patch {
    let now = OffsetDateTime::now_utc();
    let mut p = Patch::new(r.id, now + Duration::hours(1), now);
    p.expiry = ExpiryChange::Keep(r.expiry);
    p
}

/// Expired records are never returned, even while the store still holds them.
pub async fn expired_records_are_never_loaded(store: impl SessionStore) {
    let r = record(&[("k", b"v")], -Duration::seconds(1));
    store.create(&r).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none());
    // A patch that moves the expiry into the past ends a live record.
    let live = record(&[("k", b"v")], Duration::hours(1));
    store.create(&live).await.unwrap();
    let mut end = patch_of(&live);
    end.expires_at = OffsetDateTime::now_utc() - Duration::seconds(1);
    let applied = store.apply(&end).await.unwrap();
    assert!(applied.ended, "an expired result ends the record");
    assert!(store.load(&live.id).await.unwrap().is_none());
    // An expired record is absent for `apply` too: no write, no conflict.
    let mut late = patch_of(&live);
    late.changes.push(Change::set("k", b(b"late")));
    assert!(matches!(store.apply(&late).await, Err(StoreError::NotFound)));
    assert!(store.load(&live.id).await.unwrap().is_none());
    assert!(matches!(store.apply(&patch_of(&r)).await, Err(StoreError::NotFound)));
}

/// `apply` sets and removes exactly the named keys and the metadata it carries, and
/// counts a version.
pub async fn apply_changes_only_the_named_keys(store: impl SessionStore) {
    let r = record(&[("a", b"1"), ("b", b"2"), ("keep", b"k")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut p = patch_of(&r);
    p.changes.push(Change::set("a", None));
    p.changes.push(Change::set("b", b(b"two")));
    p.changes.push(Change::set("c", b(b"3")));
    p.changes.push(Change::set("never-there", None));
    p.expiry = ExpiryChange::Set(Some(Expiry::OnInactivity(Duration::days(30))));
    p.expires_at = r.created_at + Duration::days(30);
    p.last_seen = r.created_at + Duration::seconds(9);
    p.user = Some("bob".into());
    p.label = Some("Phone".into());
    let applied = store.apply(&p).await.unwrap();
    assert_eq!(applied.version, 2);
    assert!(!applied.ended);
    assert!((applied.expires_at - p.expires_at).abs() < Duration::milliseconds(1));
    let mut want = r.clone();
    want.entries.remove("a");
    want.entries.insert("b", Bytes::from_static(b"two"));
    want.entries.insert("c", Bytes::from_static(b"3"));
    want.expiry = Some(Expiry::OnInactivity(Duration::days(30)));
    want.expires_at = p.expires_at;
    want.last_seen = p.last_seen;
    want.user = Some("bob".into());
    want.label = Some("Phone".into());
    want.version = 2;
    assert_same(&must_load(&store, &r).await, &want);
    // A patch that names no user or label keeps them.
    let mut q = patch_of(&want);
    q.changes.push(Change::set("c", b(b"three")));
    assert_eq!(store.apply(&q).await.unwrap().version, 3);
    let got = must_load(&store, &r).await;
    assert_eq!(got.user.as_deref(), Some("bob"));
    assert_eq!(got.label.as_deref(), Some("Phone"));
    assert_eq!(got.expiry, want.expiry);
    assert_eq!(got.entries.get("c").map(|v| &v[..]), Some(&b"three"[..]));
}

/// Values and keys are kept byte for byte: every byte value, empty values, keys that look
/// like markup, separators or other stores' field names.
pub async fn values_and_keys_are_kept_exactly(store: impl SessionStore) {
    let all: Vec<u8> = (0..=255u8).collect();
    let keys =
        ["", "k", "kk", "_", "v", "#v", "user:1", "a b\tc", "\u{e9}t\u{e9} \u{1f36a}", "x\0y", "{tag}"];
    let mut r = record(&[], Duration::hours(1));
    for (i, k) in keys.iter().enumerate() {
        r.entries.insert(*k, Bytes::from(all[..i * 20].to_vec()));
    }
    store.create(&r).await.unwrap();
    assert_same(&must_load(&store, &r).await, &r);
    let mut p = patch_of(&r);
    for k in keys {
        p.changes.push(Change::set(k, b(&all)));
    }
    store.apply(&p).await.unwrap();
    let got = must_load(&store, &r).await;
    assert_eq!(got.entries.len(), keys.len());
    for k in keys {
        assert_eq!(got.entries.get(k).map(|v| &v[..]), Some(&all[..]), "key {k:?}");
    }
}

/// A patch with an expectation that does not hold is refused whole with `Conflict`.
pub async fn apply_with_a_failed_expectation_changes_nothing(store: impl SessionStore) {
    let r = record(&[("n", b"1"), ("m", b"x")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut p = patch_of(&r);
    p.changes.push(Change::set("other", b(b"o")));
    p.changes.push(Change::update("n", b(b"0"), b(b"2")));
    assert!(matches!(store.apply(&p).await, Err(StoreError::Conflict)));
    // Expecting absence of a present key fails too; of a present value with other bytes too.
    let mut q = patch_of(&r);
    q.changes.push(Change::update("m", None, b(b"y")));
    assert!(matches!(store.apply(&q).await, Err(StoreError::Conflict)));
    let mut q = patch_of(&r);
    q.changes.push(Change::update("m", b(b"x\0"), b(b"y")));
    assert!(matches!(store.apply(&q).await, Err(StoreError::Conflict)));
    assert_same(&must_load(&store, &r).await, &r);
    // Expectations that hold: present with its bytes, absent when absent.
    let mut ok = patch_of(&r);
    ok.changes.push(Change::update("n", b(b"1"), b(b"2")));
    ok.changes.push(Change::update("fresh", None, b(b"f")));
    ok.changes.push(Change::update("m", b(b"x"), None));
    assert_eq!(store.apply(&ok).await.unwrap().version, 2);
    let got = must_load(&store, &r).await;
    assert_eq!(got.entries.keys().collect::<Vec<_>>(), ["fresh", "n"]);
}

/// `apply` on a deleted (or never created) record is `NotFound` and creates nothing.
pub async fn apply_never_resurrects_a_deleted_record(store: impl SessionStore) {
    let r = record(&[("a", b"1")], Duration::hours(1));
    store.create(&r).await.unwrap();
    store.delete(&r.id).await.unwrap();
    let mut p = patch_of(&r);
    p.changes.push(Change::set("a", b(b"2")));
    assert!(matches!(store.apply(&p).await, Err(StoreError::NotFound)));
    assert!(store.load(&r.id).await.unwrap().is_none());
    let never = record(&[("a", b"1")], Duration::hours(1));
    assert!(matches!(store.apply(&patch_of(&never)).await, Err(StoreError::NotFound)));
    assert!(store.load(&never.id).await.unwrap().is_none());
}

/// A patch that removes the last key deletes the record and says so.
pub async fn apply_that_empties_the_record_deletes_it(store: impl SessionStore) {
    let r = record(&[("a", b"1"), ("b", b"2")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut p = patch_of(&r);
    p.changes.push(Change::set("a", None));
    p.changes.push(Change::set("b", None));
    assert!(store.apply(&p).await.unwrap().ended);
    assert!(store.load(&r.id).await.unwrap().is_none());
    // And it stays gone: a later patch cannot bring it back.
    let mut q = patch_of(&r);
    q.changes.push(Change::set("a", b(b"1")));
    assert!(matches!(store.apply(&q).await, Err(StoreError::NotFound)));
}

/// A patch without changes (the throttled refresh) moves the expiry and `last_seen`, and
/// nothing else.
pub async fn a_refresh_moves_only_the_expiry(store: impl SessionStore) {
    let mut r = record(&[("a", b"1")], Duration::minutes(10));
    r.user = Some("carol".into());
    store.create(&r).await.unwrap();
    let mut p = patch_of(&r);
    p.expires_at = r.expires_at + Duration::hours(2);
    p.last_seen = r.created_at + Duration::minutes(3);
    let applied = store.apply(&p).await.unwrap();
    let mut want = r.clone();
    want.expires_at = p.expires_at;
    want.last_seen = p.last_seen;
    want.version = applied.version;
    assert_same(&must_load(&store, &r).await, &want);
}

/// A patch computed for another expiry than the record holds now (a concurrent request
/// changed it) leaves the stored expiry instant alone: a refresh never undoes a shorter
/// expiry that a later save decided.
pub async fn a_stale_refresh_never_lengthens_a_changed_expiry(store: impl SessionStore) {
    let mut r = record(&[("a", b"1")], Duration::minutes(5));
    r.expiry = Some(Expiry::OnInactivity(Duration::minutes(5)));
    store.create(&r).await.unwrap();
    // Loaded while "remember me" (30 days) was on.
    let mut p = patch_of(&r);
    p.expiry = ExpiryChange::Keep(Some(Expiry::OnInactivity(Duration::days(30))));
    p.expires_at = r.created_at + Duration::days(30);
    let applied = store.apply(&p).await.unwrap();
    assert!((applied.expires_at - r.expires_at).abs() < Duration::milliseconds(1));
    let got = must_load(&store, &r).await;
    assert!((got.expires_at - r.expires_at).abs() < Duration::milliseconds(1), "expiry lengthened");
    assert_eq!(got.expiry, r.expiry);
}

/// Many patches of one record at once, straight to the store: writers of distinct keys
/// all land, with no conflict; conditional increments that retry on `Conflict` count
/// exactly. A store whose `apply` is not atomic loses some here.
pub async fn concurrent_patches_are_atomic(store: impl SessionStore) {
    let store = Arc::new(store);
    let r = record(&[("n", &0u64.to_be_bytes())], Duration::hours(1));
    store.create(&r).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64u64 {
        let (store, barrier, base) = (Arc::clone(&store), Arc::clone(&barrier), patch_of(&r));
        tasks.spawn(async move {
            barrier.wait().await;
            let mut p = base.clone();
            p.changes.push(Change::set(format!("key{i}"), b(&i.to_be_bytes())));
            store.apply(&p).await.expect("a patch of distinct keys never conflicts");
            let mut conflicts = 0u32;
            loop {
                let current = store.load(&base.id).await.unwrap().expect("record");
                let n =
                    current.entries.get("n").map(|v| u64::from_be_bytes(v[..].try_into().unwrap())).unwrap();
                let mut p = base.clone();
                p.changes.push(Change::update("n", b(&n.to_be_bytes()), b(&(n + 1).to_be_bytes())));
                match store.apply(&p).await {
                    Ok(_) => return conflicts,
                    Err(StoreError::Conflict) => conflicts += 1,
                    Err(err) => panic!("increment failed: {err}"),
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let got = must_load(&*store, &r).await;
    assert_eq!(got.entries.get("n").map(|v| &v[..]), Some(&64u64.to_be_bytes()[..]), "increments lost");
    for i in 0..64u64 {
        assert!(got.entries.contains_key(&format!("key{i}")), "key{i} lost");
    }
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
