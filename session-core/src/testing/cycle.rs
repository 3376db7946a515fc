//! The id-change cases every store runs: [`SessionStore::cycle`] moves a record atomically
//! and leaves a forward that a later delete follows.

use bytes::Bytes;
use time::Duration;

use super::records::{must_load, patch_of, record};
use crate::{Change, Id, SessionHandle, SessionStore, StoreError};

fn b(v: &[u8]) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(v))
}

/// `cycle` stores the patched record under the new id (same `created_at`, user and data),
/// and the old id is no session any more: `load` gives nothing, `apply` is `NotFound`, and
/// user listings name only the new id.
pub async fn cycle_moves_the_record_with_the_patch_applied(store: impl SessionStore) {
    let mut old = record(&[("keep", b"1"), ("drop", b"2")], Duration::hours(1));
    let user = format!("cycler-{}", Id::random());
    old.user = Some(user.clone());
    store.create(&old).await.unwrap();
    let mut patch = patch_of(&old);
    patch.changes.push(Change::set("drop", None));
    patch.changes.push(Change::update("added", None, b(b"3")));
    let to = Id::random().record_id();
    let applied = store.cycle(&patch, to).await.unwrap();
    assert!(!applied.ended);
    let moved = store.load(&to).await.unwrap().expect("the record under its new id");
    assert_eq!(moved.id, to);
    assert_eq!(moved.entries.get("keep"), b(b"1").as_ref());
    assert_eq!(moved.entries.get("added"), b(b"3").as_ref());
    assert!(!moved.entries.contains_key("drop"));
    assert_eq!(moved.user.as_deref(), Some(user.as_str()));
    assert_eq!(moved.version, applied.version);
    assert!((moved.created_at - old.created_at).abs() < Duration::milliseconds(1), "created_at kept");
    assert!(store.load(&old.id).await.unwrap().is_none(), "the old id still loads");
    assert!(matches!(store.apply(&patch_of(&old)).await, Err(StoreError::NotFound)));
    match store.sessions_of(&user).await {
        Ok(list) => {
            let handles: Vec<_> = list.iter().map(|i| i.handle).collect();
            assert_eq!(handles, vec![SessionHandle::from_record_id(to)]);
        }
        Err(StoreError::Unsupported(_)) => {}
        Err(err) => panic!("sessions_of failed: {err}"),
    }
}

/// `cycle` of a record that is gone (deleted, or moved already) is `NotFound` and creates
/// nothing: a logout that landed first is never undone under a new id.
pub async fn cycle_of_a_missing_or_moved_record_creates_nothing(store: impl SessionStore) {
    let r = record(&[("k", b"v")], Duration::hours(1));
    store.create(&r).await.unwrap();
    store.delete(&r.id).await.unwrap();
    let to = Id::random().record_id();
    assert!(matches!(store.cycle(&patch_of(&r), to).await, Err(StoreError::NotFound)));
    assert!(store.load(&to).await.unwrap().is_none(), "a deleted session came back");

    let r = record(&[("k", b"v")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let first = Id::random().record_id();
    store.cycle(&patch_of(&r), first).await.unwrap();
    let second = Id::random().record_id();
    assert!(matches!(store.cycle(&patch_of(&r), second).await, Err(StoreError::NotFound)));
    assert!(store.load(&second).await.unwrap().is_none(), "one session became two");
    assert!(store.load(&first).await.unwrap().is_some());
}

/// A failed expectation (`Conflict`) or a taken new id (`Collision`) changes nothing: the
/// old record stays live and whole.
pub async fn cycle_refusals_change_nothing(store: impl SessionStore) {
    let r = record(&[("n", b"1")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut stale = patch_of(&r);
    stale.changes.push(Change::update("n", b(b"0"), b(b"2")));
    let to = Id::random().record_id();
    assert!(matches!(store.cycle(&stale, to).await, Err(StoreError::Conflict)));
    assert!(store.load(&to).await.unwrap().is_none());
    super::records::assert_same(&must_load(&store, &r).await, &r);

    let taken = record(&[("other", b"x")], Duration::hours(1));
    store.create(&taken).await.unwrap();
    let mut patch = patch_of(&r);
    patch.changes.push(Change::set("n", b(b"9")));
    assert!(matches!(store.cycle(&patch, taken.id).await, Err(StoreError::Collision)));
    super::records::assert_same(&must_load(&store, &r).await, &r);
    super::records::assert_same(&must_load(&store, &taken).await, &taken);
}

/// Deleting the old id after a cycle (a logout or revoke that raced the id change) ends
/// the session under its new id too, through a chain of two changes as well.
pub async fn deleting_the_old_id_after_a_cycle_ends_the_new_record(store: impl SessionStore) {
    let r = record(&[("k", b"v")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let first = Id::random().record_id();
    store.cycle(&patch_of(&r), first).await.unwrap();
    store.delete(&r.id).await.unwrap();
    assert!(store.load(&first).await.unwrap().is_none(), "the moved session outlived the logout");

    let r = record(&[("k", b"v")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let first = Id::random().record_id();
    let second = Id::random().record_id();
    store.cycle(&patch_of(&r), first).await.unwrap();
    let mut moved = patch_of(&r);
    moved.id = first;
    store.cycle(&moved, second).await.unwrap();
    store.revoke(&SessionHandle::from_record_id(r.id)).await.unwrap();
    assert!(store.load(&second).await.unwrap().is_none(), "a revoke missed a session cycled twice");

    // Deleting the new id leaves nothing live either, and the old id stays dead.
    let r = record(&[("k", b"v")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let to = Id::random().record_id();
    store.cycle(&patch_of(&r), to).await.unwrap();
    store.delete(&to).await.unwrap();
    assert!(store.load(&to).await.unwrap().is_none());
    assert!(store.load(&r.id).await.unwrap().is_none());
}

/// A cycle whose patch removes the last key deletes the session instead of moving it.
pub async fn a_cycle_that_empties_the_record_deletes_it(store: impl SessionStore) {
    let r = record(&[("only", b"1")], Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut patch = patch_of(&r);
    patch.changes.push(Change::set("only", None));
    let to = Id::random().record_id();
    let applied = store.cycle(&patch, to).await.unwrap();
    assert!(applied.ended);
    assert!(store.load(&to).await.unwrap().is_none());
    assert!(store.load(&r.id).await.unwrap().is_none());
}
