//! Many concurrent requests on one SQLite file: WAL and the busy timeout keep every one of
//! them from failing with "database is locked".

mod common;

use std::sync::Arc;

use session_core::{Change, Patch, RecordId, SessionStore};
use session_store_sql::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use session_store_sql::{sqlx, SqliteStore};
use time::Duration;

const TASKS: usize = 16;
const ROUNDS: usize = 50;

fn one_key(id: &RecordId, key: &str, value: &[u8]) -> Patch {
    let now = time::OffsetDateTime::now_utc();
    let mut patch = Patch::new(*id, now + Duration::hours(1), now);
    patch.changes.push(Change::set(key, Some(value.to_vec().into())));
    patch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_wal_file_serves_many_tasks_without_locking_errors() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        SqliteConnectOptions::new().filename(dir.path().join("sessions.db")).create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(SqliteStore::recommended_options(options))
        .await
        .unwrap();
    let store = SqliteStore::new(pool);
    store.migrate().await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(store.pool()).await.unwrap();
    assert_eq!(mode, "wal");

    let shared = common::record(Duration::hours(1));
    store.create(&shared).await.unwrap();
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = Arc::clone(&store);
            let shared = shared.id;
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let mut r = common::record(Duration::hours(1));
                    store.create(&r).await.unwrap_or_else(|e| panic!("create: {e:?}"));
                    assert_eq!(store.load(&r.id).await.unwrap().as_ref(), Some(&r));
                    store
                        .apply(&one_key(&r.id, "round", &[round as u8]))
                        .await
                        .unwrap_or_else(|e| panic!("apply: {e:?}"));
                    r.entries.insert("round", vec![round as u8].into());
                    assert_eq!(store.load(&r.id).await.unwrap().map(|got| got.entries), Some(r.entries));
                    // Every tenth round, a request to the one session all tasks share.
                    if round % 10 == 0 {
                        let key = format!("task{task}-round{round}");
                        store
                            .apply(&one_key(&shared, &key, key.as_bytes()))
                            .await
                            .expect("distinct keys never conflict");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a task failed");
    }

    let merged = store.load(&shared.id).await.unwrap().unwrap();
    assert_eq!(merged.entries.len(), 1 + TASKS * ROUNDS / 10, "a concurrent change was lost");
    assert_eq!(merged.version, 1 + (TASKS * ROUNDS / 10) as u64);
}

#[tokio::test]
async fn open_sets_wal_and_a_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("new.db")).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(store.pool()).await.unwrap();
    let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(store.pool()).await.unwrap();
    assert_eq!((mode.as_str(), timeout), ("wal", 5_000));
}
