//! The per-user index on disk: its names, its format, its upkeep, and several stores
//! sharing it.

mod common;

use std::sync::Arc;

use common::{names, record};
use session_core::{ExpiredDeletion, Patch, Record, SessionStore};
use session_store_file::FileStore;
use sha2::{Digest, Sha256};
use time::Duration;

fn owned(user: &str, ttl: Duration) -> Record {
    let mut r = record(ttl);
    r.user = Some(user.to_owned());
    r
}

/// The index file name of a user: the hex SHA-256 of the name.
fn index_name(user: &str) -> String {
    Sha256::digest(user.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_index_is_named_by_the_users_digest_and_lists_ids_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    // A name that would escape the folder, were it ever used as a path.
    let user = "../../etc/passwd";
    let (a, b) = (owned(user, Duration::hours(1)), owned(user, Duration::hours(1)));
    store.create(&a).await.unwrap();
    store.create(&b).await.unwrap();

    let users = dir.path().join("users");
    let name = index_name(user);
    assert_eq!(names(&users), [name.clone(), format!("{name}.lock")]);
    let text = std::fs::read_to_string(users.join(&name)).unwrap();
    let mut want = vec![a.id.to_string(), b.id.to_string()];
    want.sort();
    assert_eq!(text.lines().collect::<Vec<_>>(), want);
    assert!(text.ends_with('\n'));
    assert!(!text.contains("passwd"), "the index holds ids only");
    assert_eq!(store.sessions_of(user).await.unwrap().len(), 2);
}

#[tokio::test]
async fn sessions_without_a_user_make_no_users_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    store.create(&record(Duration::hours(1))).await.unwrap();
    assert!(store.sessions_of("nobody").await.unwrap().is_empty());
    assert!(!dir.path().join("users").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn the_users_folder_is_0700_and_its_files_0600() {
    use std::os::unix::fs::PermissionsExt;

    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    store.create(&owned("alice", Duration::hours(1))).await.unwrap();
    let users = dir.path().join("users");
    assert_eq!(mode(&users), 0o700);
    for name in names(&users) {
        assert_eq!(mode(&users.join(&name)), 0o600, "{name}");
    }
}

#[tokio::test]
async fn the_sweep_prunes_entries_of_gone_records_and_empty_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let live = owned("alice", Duration::hours(1));
    // Indexed while live, then it expires on its own.
    let expired = owned("alice", Duration::milliseconds(200));
    let deleted = owned("bob", Duration::hours(1));
    for r in [&live, &expired, &deleted] {
        store.create(r).await.unwrap();
    }
    store.delete(&deleted.id).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Leftovers of a crash and a lock file whose index is gone.
    let users = dir.path().join("users");
    let stray = index_name("carol");
    std::fs::write(users.join(format!("{stray}.tmp")), b"half").unwrap();
    std::fs::write(users.join(format!("{stray}.lock")), b"").unwrap();
    std::fs::write(users.join("README"), b"keep me").unwrap();

    assert_eq!(store.delete_expired().await.unwrap(), 1);
    let alice = index_name("alice");
    assert_eq!(names(&users), [alice.clone(), format!("{alice}.lock"), "README".into()]);
    assert_eq!(std::fs::read_to_string(users.join(&alice)).unwrap(), format!("{}\n", live.id));
    assert_eq!(store.sessions_of("alice").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_changed_user_moves_between_indexes_and_touch_keeps_it_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = owned("alice", Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut to_bob = Patch::new(r.id, r.expires_at, r.created_at);
    to_bob.user = Some("bob".into());
    store.apply(&to_bob).await.unwrap();
    let seen = r.created_at + Duration::minutes(5);
    store.apply(&Patch::new(r.id, r.expires_at + Duration::hours(1), seen)).await.unwrap();

    assert!(store.sessions_of("alice").await.unwrap().is_empty());
    assert!(!dir.path().join("users").join(index_name("alice")).exists(), "the empty index went");
    let bobs = store.sessions_of("bob").await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].last_seen, seen);
    assert_eq!(bobs[0].expires_at, r.expires_at + Duration::hours(1));
}

#[tokio::test]
async fn a_lost_index_entry_comes_back_with_the_next_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = owned("alice", Duration::hours(1));
    store.create(&r).await.unwrap();
    // As a crash between the record write and the index update would leave it.
    std::fs::remove_file(dir.path().join("users").join(index_name("alice"))).unwrap();
    assert!(store.sessions_of("alice").await.unwrap().is_empty());
    let mut next = Patch::new(r.id, r.expires_at, r.created_at);
    next.changes.push(session_core::Change::set("k", Some(vec![2].into())));
    store.apply(&next).await.unwrap();
    assert_eq!(store.sessions_of("alice").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_adding_sessions_of_one_user_lose_no_entry() {
    const PER_STORE: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let stores = [FileStore::new(dir.path()).unwrap(), FileStore::new(dir.path()).unwrap()];
    let start = Arc::new(tokio::sync::Barrier::new(2 * PER_STORE));
    let mut tasks = Vec::new();
    for store in &stores {
        for _ in 0..PER_STORE {
            let (store, start) = (store.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                let r = owned("alice", Duration::hours(1));
                start.wait().await;
                store.create(&r).await.unwrap();
                r.id
            }));
        }
    }
    let mut want = Vec::new();
    for task in tasks {
        want.push(task.await.unwrap());
    }
    want.sort();
    for store in &stores {
        let mut got: Vec<_> =
            store.sessions_of("alice").await.unwrap().iter().map(|i| i.handle.record_id()).collect();
        got.sort();
        assert_eq!(got, want);
    }
}
