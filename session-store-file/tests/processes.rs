//! Real processes sharing one folder: this test binary starts copies of itself, each
//! running `child_writer` (distinct keys, then conditional increments of one counter),
//! `child_indexer`, or `child_cycler` beside `child_deleter`, so the file locks are tested
//! across process boundaries.

mod common;

use std::process::{Child, Command, Stdio};

use common::{record, set_key};
use session_core::{Change, Id, Patch, RecordId, SessionStore, StoreError};
use session_store_file::FileStore;
use time::Duration;

/// Set in a child: `<folder>\n<record id>\n<child number>`.
const CHILD_ENV: &str = "SESSION_STORE_FILE_TEST_CHILD";
/// Set in an indexing child: the folder.
const INDEXER_ENV: &str = "SESSION_STORE_FILE_TEST_INDEXER";
/// Set in a cycling or deleting child: `<folder>\n<record id>\n<record id>...`.
const CYCLE_ENV: &str = "SESSION_STORE_FILE_TEST_CYCLE";
/// The user whose sessions the indexing children create.
const USER: &str = "shared-user";
const CHILDREN: usize = 3;
const TASKS_PER_CHILD: usize = 12;

/// What the layer does for an in-place update: read the counter, patch it conditionally
/// on that value, and on `Conflict` (another writer counted first) read it again.
async fn increment(store: &FileStore, id: &RecordId) {
    loop {
        let current = store.load(id).await.unwrap().expect("session kept");
        let n = current.entries.get("n").map_or(0, |v| u64::from_be_bytes(v[..].try_into().unwrap()));
        let now = time::OffsetDateTime::now_utc();
        let mut patch = Patch::new(*id, now + Duration::hours(1), now);
        let expected = current.entries.get("n").cloned();
        patch.changes.push(Change::update("n", expected, Some((n + 1).to_be_bytes().to_vec().into())));
        match store.apply(&patch).await {
            Ok(_) => return,
            Err(StoreError::Conflict) => tokio::task::yield_now().await,
            Err(err) => panic!("increment failed: {err}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_patching_one_session_lose_no_key_and_no_increment() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let session = record(Duration::hours(1));
    store.create(&session).await.unwrap();

    run_children("child_writer", |n| (CHILD_ENV, format!("{}\n{}\n{n}", dir.path().display(), session.id)));

    let stored = store.load(&session.id).await.unwrap().expect("session kept");
    for n in 0..CHILDREN {
        for t in 0..TASKS_PER_CHILD {
            assert!(stored.entries.contains_key(&format!("child{n}-task{t}")), "child{n}-task{t} lost");
        }
    }
    let writes = (CHILDREN * TASKS_PER_CHILD) as u64;
    let counted = stored.entries.get("n").map(|v| u64::from_be_bytes(v[..].try_into().unwrap()));
    assert_eq!(counted, Some(writes), "an increment was lost or counted twice");
    // One version per key set and per increment that held; refused patches count none.
    assert_eq!(stored.version, 1 + 2 * writes);
}

/// The body of a child process; does nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut lines = spec.lines();
    let (Some(dir), Some(id), Some(n)) = (lines.next(), lines.next(), lines.next()) else {
        panic!("malformed {CHILD_ENV}: {spec:?}");
    };
    let store = FileStore::new(dir).unwrap();
    let id: RecordId = id.parse().unwrap();
    let tasks: Vec<_> = (0..TASKS_PER_CHILD)
        .map(|t| {
            let (store, key) = (store.clone(), format!("child{n}-task{t}"));
            tokio::spawn(async move {
                assert_eq!(set_key(&store, &id, &key).await, 0, "a patch of a distinct key conflicted");
                increment(&store, &id).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_adding_sessions_of_one_user_lose_no_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    run_children("child_indexer", |_| (INDEXER_ENV, dir.path().display().to_string()));
    let store = FileStore::new(dir.path()).unwrap();
    let listed = store.sessions_of(USER).await.unwrap();
    assert_eq!(listed.len(), CHILDREN * TASKS_PER_CHILD, "an index entry was lost");
}

/// The body of an indexing child: creates sessions of one user, all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_indexer() {
    let Ok(dir) = std::env::var(INDEXER_ENV) else {
        return;
    };
    let store = FileStore::new(dir).unwrap();
    let tasks: Vec<_> = (0..TASKS_PER_CHILD)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut r = record(Duration::hours(1));
                r.user = Some(USER.into());
                store.create(&r).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// A login (`cycle`, twice) in one process racing a logout (`delete` of the old id) in
/// another, for many sessions at once: whichever lands first, nothing is left live, under
/// the old id or either new one, and no record file at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_racing_a_delete_in_another_process_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let mut spec = dir.path().display().to_string();
    for _ in 0..CHILDREN * TASKS_PER_CHILD {
        let mut r = record(Duration::hours(1));
        r.user = Some(USER.into());
        store.create(&r).await.unwrap();
        spec.push_str(&format!("\n{}", r.id));
    }
    let children =
        [spawn_child("child_cycler", CYCLE_ENV, &spec), spawn_child("child_deleter", CYCLE_ENV, &spec)];
    children.into_iter().for_each(wait_child);

    assert!(store.sessions_of(USER).await.unwrap().is_empty(), "a session of the user lives");
    let records: Vec<_> =
        common::names(dir.path()).into_iter().filter_map(|n| n.parse::<RecordId>().ok()).collect();
    for id in &records {
        assert_eq!(store.load(id).await.unwrap(), None, "a session lives");
    }
    assert!(records.is_empty(), "{} record or forward files left", records.len());
}

/// The ids of a cycling or deleting child, in a store on its folder.
fn cycle_spec() -> Option<(FileStore, Vec<RecordId>)> {
    let spec = std::env::var(CYCLE_ENV).ok()?;
    let mut lines = spec.lines();
    let store = FileStore::new(lines.next().expect("a folder")).unwrap();
    Some((store, lines.map(|id| id.parse().unwrap()).collect()))
}

/// The body of a cycling child: moves every session to a new id, then to another, each
/// one as long as no delete got there first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_cycler() {
    let Some((store, ids)) = cycle_spec() else {
        return;
    };
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|mut id| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..2 {
                    let now = time::OffsetDateTime::now_utc();
                    let to = Id::random().record_id();
                    match store.cycle(&Patch::new(id, now + Duration::hours(1), now), to).await {
                        Ok(_) => id = to,
                        Err(StoreError::NotFound) => return,
                        Err(err) => panic!("cycle failed: {err}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// The body of a deleting child: logs every session out by its first id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_deleter() {
    let Some((store, ids)) = cycle_spec() else {
        return;
    };
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move { store.delete(&id).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// Runs `CHILDREN` copies of this binary, each running only the test `name` with the
/// environment variable `env(n)`, and waits for all of them to pass.
fn run_children(name: &str, env: impl Fn(usize) -> (&'static str, String)) {
    let children: Vec<_> = (0..CHILDREN)
        .map(|n| {
            let (key, value) = env(n);
            spawn_child(name, key, &value)
        })
        .collect();
    children.into_iter().for_each(wait_child);
}

/// Starts a copy of this binary running only the test `name`, with `key` set to `value`.
fn spawn_child(name: &str, key: &str, value: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(key, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_child(child: Child) {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    // A filter that matched nothing would also exit 0.
    assert!(stdout.contains("1 passed"), "the child test did not run: {stdout}");
}
