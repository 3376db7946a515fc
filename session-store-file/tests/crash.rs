//! What a crash can leave in the folder, and how the store deals with it.

mod common;

use common::{names, record};
use session_core::{ExpiredDeletion, SessionStore};
use session_store_file::FileStore;
use time::Duration;

#[tokio::test]
async fn a_leftover_temp_file_is_ignored_then_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let live = record(Duration::hours(1));
    store.create(&live).await.unwrap();
    // A crash between writing the next version and renaming it in, for a live session
    // and for a session that never made it to disk.
    let mut newer = live.clone();
    newer.version = 2;
    std::fs::write(dir.path().join(format!("{}.tmp", live.id)), newer.to_bytes()).unwrap();
    let unborn = record(Duration::hours(1));
    let half = &unborn.to_bytes()[..10];
    std::fs::write(dir.path().join(format!("{}.tmp", unborn.id)), half).unwrap();

    assert_eq!(store.load(&live.id).await.unwrap(), Some(live.clone()));
    assert_eq!(store.load(&unborn.id).await.unwrap(), None);

    assert_eq!(store.delete_expired().await.unwrap(), 0, "no record had expired");
    assert_eq!(names(dir.path()), [format!("{}", live.id), format!("{}.lock", live.id)]);
    assert_eq!(store.load(&live.id).await.unwrap(), Some(live));
}

#[tokio::test]
async fn a_truncated_record_file_loads_as_none_and_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    let path = dir.path().join(r.id.to_string());
    let bytes = r.to_bytes();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    assert_eq!(store.load(&r.id).await.unwrap(), None);
    assert!(!path.exists(), "the torn file is removed");
    assert!(names(dir.path()).is_empty(), "and so is its lock file: {:?}", names(dir.path()));
    // The id is free again.
    store.create(&r).await.unwrap();
    assert_eq!(store.load(&r.id).await.unwrap(), Some(r));
}

#[tokio::test]
async fn garbage_or_another_sessions_record_is_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let garbage = record(Duration::hours(1));
    std::fs::write(dir.path().join(garbage.id.to_string()), b"\xc1 not a record").unwrap();
    let empty = record(Duration::hours(1));
    std::fs::write(dir.path().join(empty.id.to_string()), b"").unwrap();
    // A valid record copied under another session's name must not log anyone in.
    let victim = record(Duration::hours(1));
    let copied = record(Duration::hours(1));
    std::fs::write(dir.path().join(copied.id.to_string()), victim.to_bytes()).unwrap();

    for id in [garbage.id, empty.id, copied.id] {
        assert_eq!(store.load(&id).await.unwrap(), None);
    }
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
}

#[tokio::test]
async fn apply_on_a_corrupt_file_finds_no_session_and_create_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = record(Duration::hours(1));
    let path = dir.path().join(r.id.to_string());
    std::fs::write(&path, b"torn").unwrap();
    let mut patch = session_core::Patch::new(r.id, r.expires_at, r.last_seen);
    patch.changes.push(session_core::Change::set("k", Some(vec![1].into())));
    assert!(matches!(store.apply(&patch).await, Err(session_core::StoreError::NotFound)));
    assert!(!path.exists());
    std::fs::write(&path, b"torn").unwrap();
    let refresh = session_core::Patch::new(r.id, r.expires_at, r.last_seen);
    assert!(matches!(store.apply(&refresh).await, Err(session_core::StoreError::NotFound)));
    assert!(!path.exists());
    std::fs::write(&path, b"torn").unwrap();
    store.create(&r).await.unwrap();
    assert_eq!(store.load(&r.id).await.unwrap(), Some(r));
}

#[tokio::test]
async fn the_sweep_removes_orphan_lock_files_and_leaves_foreign_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let orphan = record(Duration::hours(1));
    std::fs::write(dir.path().join(format!("{}.lock", orphan.id)), b"").unwrap();
    let expired = record(-Duration::seconds(1));
    store.create(&expired).await.unwrap();
    let foreign = ["README", "notes.tmp", "0123.lock"];
    for name in foreign {
        std::fs::write(dir.path().join(name), b"keep me").unwrap();
    }
    std::fs::create_dir(dir.path().join("sub")).unwrap();

    assert_eq!(store.delete_expired().await.unwrap(), 1);
    assert_eq!(names(dir.path()), ["0123.lock", "README", "notes.tmp", "sub"]);
}
