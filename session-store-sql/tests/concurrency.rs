//! Many concurrent requests on one SQLite file: WAL and the busy timeout keep every one of
//! them from failing with "database is locked".

mod common;

use std::sync::Arc;

use session_core::{RecordId, SessionStore, StoreError};
use session_store_sql::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use session_store_sql::{sqlx, SqliteStore};
use time::Duration;

const TASKS: usize = 16;
const ROUNDS: usize = 50;

/// What a request does through the layer: load, change one key, save with the loaded
/// version, and on `Conflict` reload and retry.
async fn set_key(store: &SqliteStore, id: &RecordId, key: &str) {
    loop {
        let mut record = store.load(id).await.expect("load").expect("session exists");
        let expected = record.version;
        record.entries.insert(key.to_owned(), key.as_bytes().to_vec().into());
        record.version = expected + 1;
        match store.save(&record, expected).await {
            Ok(()) => return,
            Err(StoreError::Conflict) => tokio::task::yield_now().await,
            Err(err) => panic!("save failed: {err:?}"),
        }
    }
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
                    r.entries.insert("round", vec![round as u8].into());
                    r.version = 2;
                    store.save(&r, 1).await.unwrap_or_else(|e| panic!("save: {e:?}"));
                    assert_eq!(store.load(&r.id).await.unwrap(), Some(r));
                    // Every tenth round, a request to the one session all tasks share.
                    if round % 10 == 0 {
                        set_key(&store, &shared, &format!("task{task}-round{round}")).await;
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
