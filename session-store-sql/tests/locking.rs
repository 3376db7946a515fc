//! How `apply` locks, on both engines: two pools on one database (as two app processes
//! would have) patching one session lose nothing and never conflict, and a request
//! cancelled inside the transaction leaves no pooled connection inside it.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use session_core::{Change, Patch, RecordId, SessionStore};
use session_store_sql::sqlx::postgres::PgPoolOptions;
use session_store_sql::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use session_store_sql::sqlx::{self, Connection, PgConnection, SqliteConnection};
use session_store_sql::{PostgresStore, SqliteStore};
use time::{Duration, OffsetDateTime};

const TASKS_PER_POOL: usize = 24;

fn set(id: &RecordId, key: &str) -> Patch {
    let now = OffsetDateTime::now_utc();
    let mut patch = Patch::new(*id, now + Duration::hours(1), now);
    patch.changes.push(Change::set(key, Some(key.as_bytes().to_vec().into())));
    patch
}

/// Each store sets `TASKS_PER_POOL` distinct keys of one session at once: every patch
/// succeeds on its first try, and every key and version is counted.
async fn two_pools_lose_nothing<S: SessionStore + Clone>(stores: [S; 2]) {
    let session = common::record(Duration::hours(1));
    stores[0].create(&session).await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(2 * TASKS_PER_POOL));
    let mut tasks = tokio::task::JoinSet::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..TASKS_PER_POOL {
            let (store, start, id) = (store.clone(), Arc::clone(&start), session.id);
            tasks.spawn(async move {
                start.wait().await;
                store.apply(&set(&id, &format!("pool{s}-task{t}"))).await.expect("no conflict, no error");
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let stored = stores[1].load(&session.id).await.unwrap().expect("session kept");
    assert_eq!(stored.entries.len(), 1 + 2 * TASKS_PER_POOL, "a key was lost");
    assert_eq!(stored.version, 1 + 2 * TASKS_PER_POOL as u64, "one version per patch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sqlite_pools_on_one_file_lose_nothing() {
    let first = common::sqlite().await;
    let second = SqliteStore::open(common::sqlite_path(&first)).await.unwrap();
    two_pools_lose_nothing([first.store.clone(), second]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_pools_on_one_table_lose_nothing() {
    let first = common::postgres().await;
    let url = common::env("DATABASE_URL");
    let second = common::postgres_store(&url, first.table_name()).await;
    two_pools_lose_nothing([first.store.clone(), second]).await;
}

/// Starts a patch while `hold` keeps the row (or the database) locked, gives up on it
/// mid-transaction, then releases the lock: the store's single connection must come back
/// outside any transaction, so a later write is committed (seen by another connection)
/// and a later patch gets the lock.
async fn a_cancelled_apply_leaks_no_transaction<S: SessionStore>(
    store: &S,
    session: RecordId,
    release: impl std::future::Future<Output = ()>,
    seen_elsewhere: impl AsyncFnOnce(RecordId) -> bool,
) {
    let lost = set(&session, "lost");
    let cancelled = tokio::time::timeout(StdDuration::from_millis(300), store.apply(&lost)).await;
    assert!(cancelled.is_err(), "the patch waited for the lock");
    release.await;
    let next = common::record(Duration::hours(1));
    store.create(&next).await.unwrap();
    assert!(seen_elsewhere(next.id).await, "a create ran inside a transaction that never ended");
    store.apply(&set(&session, "later")).await.unwrap();
    let stored = store.load(&session).await.unwrap().unwrap();
    assert!(stored.entries.contains_key("later"));
    assert!(!stored.entries.contains_key("lost"), "a cancelled patch was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_sqlite_apply_leaks_no_transaction() {
    let scratch = common::sqlite().await;
    let path = common::sqlite_path(&scratch);
    let options = SqliteStore::recommended_options(SqliteConnectOptions::new().filename(&path));
    let one = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await.unwrap();
    let store = SqliteStore::new(one);
    let session = common::record(Duration::hours(1));
    store.create(&session).await.unwrap();
    // Another connection holds the write lock: the patch waits in `BEGIN IMMEDIATE`.
    let mut holder = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    let table = store.table_name().to_owned();
    let release = async { sqlx::raw_sql("COMMIT").execute(&mut holder).await.map(drop).unwrap() };
    let seen = async |id: RecordId| {
        let mut other = SqliteConnection::connect_with(&options).await.unwrap();
        let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE id = $1");
        let n: i64 = sqlx::query_scalar(&sql).bind(&id.as_bytes()[..]).fetch_one(&mut other).await.unwrap();
        n == 1
    };
    a_cancelled_apply_leaks_no_transaction(&store, session.id, release, seen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_postgres_apply_leaks_no_transaction() {
    let scratch = common::postgres().await;
    let url = common::env("DATABASE_URL");
    let one = PgPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    let store = PostgresStore::new(one).with_table_name(scratch.table_name()).unwrap();
    let session = common::record(Duration::hours(1));
    store.create(&session).await.unwrap();
    // Another connection holds the row: the patch waits in `SELECT ... FOR UPDATE`.
    let table = store.table_name().to_owned();
    let mut holder = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query(&format!("SELECT 1 FROM \"{table}\" WHERE id = $1 FOR UPDATE"))
        .bind(&session.id.as_bytes()[..])
        .execute(&mut holder)
        .await
        .unwrap();
    let release = async { sqlx::raw_sql("COMMIT").execute(&mut holder).await.map(drop).unwrap() };
    let seen = async |id: RecordId| {
        let mut other = PgConnection::connect(&url).await.unwrap();
        let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE id = $1");
        let n: i64 = sqlx::query_scalar(&sql).bind(&id.as_bytes()[..]).fetch_one(&mut other).await.unwrap();
        n == 1
    };
    a_cancelled_apply_leaks_no_transaction(&store, session.id, release, seen).await;
}
