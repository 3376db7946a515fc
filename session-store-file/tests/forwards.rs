//! `cycle` on disk: the forward it leaves at the old id, what the other operations make of
//! forwards, and what a refused or failed move leaves behind.

mod common;

use std::future::Future;
use std::path::Path;
use std::time::Duration as StdDuration;

use common::{names, record};
use session_core::{
    Change, ExpiredDeletion, Forward, Id, Patch, Record, RecordId, SessionStore, StoreError, Stored,
};
use session_store_file::FileStore;
use time::{Duration, OffsetDateTime};

fn refresh(r: &Record) -> Patch {
    Patch::new(r.id, r.expires_at, OffsetDateTime::now_utc())
}

fn stored_at(dir: &Path, id: &RecordId) -> Stored {
    Stored::from_bytes(&std::fs::read(dir.join(id.to_string())).unwrap()).unwrap()
}

/// Writes a forward from a fresh id to `to`, as a `cycle` would have, expiring at `expires_at`.
fn forward_file(dir: &Path, to: RecordId, expires_at: OffsetDateTime) -> RecordId {
    let at = Id::random().record_id();
    let forward = Forward::new(to, expires_at, expires_at - Duration::minutes(1));
    std::fs::write(dir.join(at.to_string()), forward.to_bytes()).unwrap();
    at
}

#[tokio::test]
async fn the_old_file_becomes_a_forward_that_expires_with_its_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    let to = Id::random().record_id();
    store.cycle(&refresh(&r), to).await.unwrap();

    let Stored::Forward(forward) = stored_at(dir.path(), &r.id) else {
        panic!("the old file holds no forward");
    };
    assert_eq!(forward.to, to);
    assert!(forward.expires_at <= OffsetDateTime::now_utc() + Forward::LIFETIME);
    let mtime = std::fs::metadata(dir.path().join(r.id.to_string())).unwrap().modified().unwrap();
    assert!((OffsetDateTime::from(mtime) - forward.expires_at).abs() < Duration::seconds(1));
    assert!(matches!(stored_at(dir.path(), &to), Stored::Record(moved) if moved.id == to));
    let mut want = [r.id, to].map(|id| [id.to_string(), format!("{id}.lock")]).concat();
    want.sort();
    assert_eq!(names(dir.path()), want, "no temp file left");
}

#[cfg(unix)]
#[tokio::test]
async fn forward_and_moved_record_files_are_0600() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    store.cycle(&refresh(&r), Id::random().record_id()).await.unwrap();
    for name in names(dir.path()) {
        let mode = std::fs::metadata(dir.path().join(&name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
}

#[tokio::test]
async fn a_live_forward_takes_its_id_until_it_expires_and_the_sweep_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let target = record(Duration::hours(1));
    store.create(&target).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let live = forward_file(dir.path(), target.id, now + Duration::minutes(5));
    let dead = forward_file(dir.path(), target.id, now - Duration::seconds(1));

    let mut taker = record(Duration::hours(1));
    taker.id = live;
    assert!(matches!(store.create(&taker).await, Err(StoreError::Collision)));
    assert!(matches!(store.cycle(&refresh(&target), live).await, Err(StoreError::Collision)));
    assert_eq!(store.load(&live).await.unwrap(), None, "a forward is no session");
    assert!(matches!(store.apply(&refresh(&taker)).await, Err(StoreError::NotFound)));

    assert_eq!(store.delete_expired().await.unwrap(), 1, "only the expired forward goes");
    assert!(!dir.path().join(dead.to_string()).exists());
    assert!(matches!(stored_at(dir.path(), &live), Stored::Forward(_)));
    assert!(store.load(&target.id).await.unwrap().is_some());

    // Gone, the expired forward's id is free again.
    taker.id = dead;
    store.create(&taker).await.unwrap();
}

#[tokio::test]
async fn an_expired_forward_is_neither_taken_nor_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let target = record(Duration::hours(1));
    store.create(&target).await.unwrap();
    let dead = forward_file(dir.path(), target.id, OffsetDateTime::now_utc() - Duration::seconds(1));
    store.delete(&dead).await.unwrap();
    assert!(!dir.path().join(dead.to_string()).exists());
    assert!(store.load(&target.id).await.unwrap().is_some(), "an expired forward was followed");

    let dead = forward_file(dir.path(), target.id, OffsetDateTime::now_utc() - Duration::seconds(1));
    let mut patch = refresh(&target);
    patch.changes.push(Change::set("k", Some(vec![1].into())));
    store.cycle(&patch, dead).await.unwrap();
    let moved = store.load(&dead).await.unwrap().expect("moved over the expired forward");
    assert_eq!(moved.entries.get("k").map(|v| &v[..]), Some(&[1][..]));
}

#[tokio::test]
async fn a_corrupt_old_file_is_no_session_to_move_and_a_corrupt_target_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    let bytes = r.to_bytes();
    std::fs::write(dir.path().join(r.id.to_string()), &bytes[..bytes.len() - 3]).unwrap();
    let to = Id::random().record_id();
    assert!(matches!(store.cycle(&refresh(&r), to).await, Err(StoreError::NotFound)));
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));

    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    let to = Id::random().record_id();
    std::fs::write(dir.path().join(to.to_string()), b"\x93\x02 torn forward").unwrap();
    store.cycle(&refresh(&r), to).await.unwrap();
    assert!(store.load(&to).await.unwrap().is_some());
}

#[test]
fn a_cycle_to_its_own_id_is_a_collision_not_a_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = record(Duration::hours(1));
    let finished = within(StdDuration::from_secs(10), async {
        store.create(&r).await.unwrap();
        assert!(matches!(store.cycle(&refresh(&r), r.id).await, Err(StoreError::Collision)));
        assert_eq!(store.load(&r.id).await.unwrap(), Some(r.clone()));
    });
    assert!(finished, "the cycle waited for its own lock");
}

#[tokio::test]
async fn refusals_leave_no_file_for_the_new_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    let before = names(dir.path());
    let mut stale = refresh(&r);
    stale.changes.push(Change::update("init", None, Some(vec![2].into())));
    assert!(matches!(store.cycle(&stale, Id::random().record_id()).await, Err(StoreError::Conflict)));
    let gone = record(Duration::hours(1));
    assert!(matches!(
        store.cycle(&refresh(&gone), Id::random().record_id()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(names(dir.path()), before, "a lock or record file of the new id was left");
}

#[cfg(unix)]
#[tokio::test]
async fn a_failed_write_leaves_the_old_record_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut patch = refresh(&r);
    patch.changes.push(Change::set("k", Some(vec![1].into())));

    // A folder where a temp file must go makes that write fail: first the new record's...
    let to = Id::random().record_id();
    let blocker = dir.path().join(format!("{to}.tmp"));
    std::fs::create_dir(&blocker).unwrap();
    assert!(matches!(store.cycle(&patch, to).await, Err(StoreError::Backend(_))));
    assert_eq!(store.load(&r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(store.load(&to).await.unwrap(), None);
    std::fs::remove_dir(&blocker).unwrap();

    // ...then the forward's, after the new record is written: that one is taken back.
    let blocker = dir.path().join(format!("{}.tmp", r.id));
    std::fs::create_dir(&blocker).unwrap();
    assert!(matches!(store.cycle(&patch, to).await, Err(StoreError::Backend(_))));
    assert_eq!(store.load(&r.id).await.unwrap(), Some(r.clone()));
    assert!(!dir.path().join(to.to_string()).exists(), "the new copy was left");
    std::fs::remove_dir(&blocker).unwrap();

    store.cycle(&patch, to).await.unwrap();
    assert!(store.load(&to).await.unwrap().is_some_and(|m| m.entries.contains_key("k")));
}

#[tokio::test]
async fn the_index_lists_the_new_id_and_drops_the_forward() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let mut r = record(Duration::hours(1));
    r.user = Some("carol".into());
    store.create(&r).await.unwrap();
    let to = Id::random().record_id();
    store.cycle(&refresh(&r), to).await.unwrap();
    let listed: Vec<_> =
        store.sessions_of("carol").await.unwrap().iter().map(|i| i.handle.record_id()).collect();
    assert_eq!(listed, [to]);
    let users = dir.path().join("users");
    let index = names(&users).into_iter().find(|n| !n.contains('.')).expect("an index");
    assert_eq!(std::fs::read_to_string(users.join(index)).unwrap(), format!("{to}\n"));
}

/// Two stores on one folder (so no shared in-process queue), cycling two sessions into
/// each other's ids at once: each takes both file locks, and only a fixed order keeps
/// them from waiting on each other forever.
#[test]
fn crossing_cycles_in_two_stores_never_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (FileStore::new(dir.path()).unwrap(), FileStore::new(dir.path()).unwrap());
    let (a, b) = (record(Duration::hours(1)), record(Duration::hours(1)));
    let finished = within(StdDuration::from_secs(60), async {
        one.create(&a).await.unwrap();
        one.create(&b).await.unwrap();
        for _ in 0..200 {
            let (pa, pb) = (refresh(&a), refresh(&b));
            let (ab, ba) = tokio::join!(one.cycle(&pa, b.id), two.cycle(&pb, a.id));
            assert!(matches!(ab, Err(StoreError::Collision)), "{ab:?}");
            assert!(matches!(ba, Err(StoreError::Collision)), "{ba:?}");
        }
        assert_eq!(one.load(&a.id).await.unwrap(), Some(a.clone()));
        assert_eq!(two.load(&b.id).await.unwrap(), Some(b.clone()));
    });
    assert!(finished, "the cycles deadlocked");
}

/// Runs `work` on a fresh runtime; whether it finished within `limit`. A deadlocked
/// blocking thread is abandoned: a test runtime would wait for it forever when dropped.
fn within(limit: StdDuration, work: impl Future<Output = ()>) -> bool {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let finished = runtime.block_on(async { tokio::time::timeout(limit, work).await }).is_ok();
    runtime.shutdown_background();
    finished
}
