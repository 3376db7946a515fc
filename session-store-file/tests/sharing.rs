//! Several stores on one folder, as several processes of one app (or one app restarted)
//! would have: each `FileStore::new` has its own in-process locks, so only the file locks
//! keep them apart.

mod common;

use std::sync::Arc;

use common::{record, set_key};
use session_core::{Change, Patch, SessionStore, StoreError};
use session_store_file::FileStore;
use time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_writing_different_keys_of_one_session_lose_nothing() {
    const TASKS_PER_STORE: usize = 24;
    let dir = tempfile::tempdir().unwrap();
    let stores = [FileStore::new(dir.path()).unwrap(), FileStore::new(dir.path()).unwrap()];
    let session = record(Duration::hours(1));
    stores[0].create(&session).await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(2 * TASKS_PER_STORE));

    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..TASKS_PER_STORE {
            let (store, start, id) = (store.clone(), start.clone(), session.id);
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                set_key(&store, &id, &format!("store{s}-task{t}")).await
            }));
        }
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }

    for store in &stores {
        let stored = store.load(&session.id).await.unwrap().expect("session kept");
        assert_eq!(stored.entries.len(), 1 + 2 * TASKS_PER_STORE, "a key was lost");
        for s in 0..2 {
            for t in 0..TASKS_PER_STORE {
                assert!(stored.entries.contains_key(&format!("store{s}-task{t}")));
            }
        }
        assert_eq!(stored.version, 1 + 2 * TASKS_PER_STORE as u64, "one save per key");
    }
    assert_eq!(conflicts, 0, "patches of different keys never conflict");
}

fn patch(id: &session_core::RecordId) -> Patch {
    let now = time::OffsetDateTime::now_utc();
    Patch::new(*id, now + Duration::hours(1), now)
}

#[tokio::test]
async fn an_update_based_on_a_value_the_other_store_replaced_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (FileStore::new(dir.path()).unwrap(), FileStore::new(dir.path()).unwrap());
    let session = record(Duration::hours(1));
    a.create(&session).await.unwrap();
    // Both loaded `init = [1]`; a changes it first.
    let mut from_a = patch(&session.id);
    from_a.changes.push(Change::update("init", Some(vec![1].into()), Some(vec![2].into())));
    a.apply(&from_a).await.unwrap();
    let mut from_b = patch(&session.id);
    from_b.changes.push(Change::update("init", Some(vec![1].into()), Some(vec![3].into())));
    from_b.changes.push(Change::set("b", Some(vec![2].into())));
    assert!(matches!(b.apply(&from_b).await, Err(StoreError::Conflict)));
    let now = b.load(&session.id).await.unwrap().unwrap();
    assert_eq!(now.entries.get("init").map(|v| v[0]), Some(2), "b's write changed nothing");
    assert!(!now.entries.contains_key("b"));
    // The retry the layer does: the update again on the value now stored.
    let mut retry = patch(&session.id);
    retry.changes.push(Change::update("init", Some(vec![2].into()), Some(vec![3].into())));
    retry.changes.push(Change::set("b", Some(vec![2].into())));
    b.apply(&retry).await.unwrap();
    let keys: Vec<String> =
        a.load(&session.id).await.unwrap().unwrap().entries.keys().map(str::to_owned).collect();
    assert_eq!(keys, ["b", "init"]);
}

#[tokio::test]
async fn create_and_delete_are_seen_by_the_other_store() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (FileStore::new(dir.path()).unwrap(), FileStore::new(dir.path()).unwrap());
    let session = record(Duration::hours(1));
    a.create(&session).await.unwrap();
    assert!(matches!(b.create(&session).await, Err(StoreError::Collision)));
    b.delete(&session.id).await.unwrap();
    assert!(matches!(a.apply(&patch(&session.id)).await, Err(StoreError::NotFound)));
    assert_eq!(a.load(&session.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_new_store_on_the_same_folder_sees_every_session_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sessions: Vec<_> = (0..20).map(|_| record(Duration::hours(1))).collect();
    {
        let before = FileStore::new(dir.path()).unwrap();
        for r in &sessions {
            before.create(r).await.unwrap();
        }
        let mut changed = patch(&sessions[0].id);
        changed.changes.push(Change::set("cart", Some(vec![3].into())));
        before.apply(&changed).await.unwrap();
        let (later, seen) =
            (sessions[1].expires_at + Duration::hours(1), sessions[1].created_at + Duration::minutes(1));
        before.apply(&Patch::new(sessions[1].id, later, seen)).await.unwrap();
    }
    let after = FileStore::new(dir.path()).unwrap();
    let first = after.load(&sessions[0].id).await.unwrap().unwrap();
    assert_eq!((first.version, first.entries.len()), (2, 2));
    let second = after.load(&sessions[1].id).await.unwrap().unwrap();
    assert_eq!(second.expires_at, sessions[1].expires_at + Duration::hours(1));
    assert_eq!(
        second.last_seen,
        sessions[1].created_at + Duration::minutes(1),
        "a refresh persists last_seen"
    );
    for r in &sessions[2..] {
        assert_eq!(after.load(&r.id).await.unwrap().as_ref(), Some(r));
    }
}
