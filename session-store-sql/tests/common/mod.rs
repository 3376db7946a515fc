//! Shared test plumbing: the PostgreSQL server `scripts/services` started, scratch stores
//! that remove their database or table when dropped, and an axum app driven through
//! `oneshot`.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code, unreachable_pub)]

pub mod own_postgres;

use std::path::PathBuf;

use async_trait::async_trait;
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use session_core::testing::Guarded;
use session_core::{ExpiredDeletion, Id, Record, RecordId, Session, SessionLayer, SessionStore};
use session_store_sql::sqlx::postgres::PgPoolOptions;
use session_store_sql::sqlx::{self, Connection, PgConnection};
use session_store_sql::{PostgresStore, SqliteStore};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

/// A variable `scripts/services` exports; missing means the server is not running, which
/// must fail the test, never skip it.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} not set: run scripts/test, which starts PostgreSQL (or `eval \"$(scripts/services start)\"`)"
        )
    })
}

/// A fresh table name, so parallel test processes and reruns never see each other's rows.
pub fn unique_table() -> String {
    format!("test_{}", &Id::random().record_id().to_string()[..16])
}

/// A store that takes its database (SQLite: the temp folder) or table (PostgreSQL) with it
/// when dropped (the guard drops after the store, so the pool is gone before its database
/// is). It forwards the store traits, so the conformance suite can own it.
pub type Scratch<S> = Guarded<S, Guard>;

#[derive(Debug)]
pub enum Guard {
    Dir(TempDir),
    Table { url: String, table: String },
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Guard::Table { url, table } = self else { return };
        let (url, sql) = (url.clone(), format!("DROP TABLE IF EXISTS \"{table}\""));
        // Drop cannot await, and the test's runtime may be the one dropping us: a
        // thread with its own runtime does the async work. Failures only leave a table.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&url).await.ok()?;
                session_store_sql::sqlx::query(&sql).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}

/// The database file of an SQLite scratch store, to open it again.
pub fn sqlite_path(scratch: &Scratch<SqliteStore>) -> PathBuf {
    match &scratch.guard {
        Guard::Dir(dir) => dir.path().join("sessions.db"),
        Guard::Table { .. } => unreachable!("an SQLite scratch keeps a folder"),
    }
}

/// An SQLite store on a new file in a temp folder, migrated.
pub async fn sqlite() -> Scratch<SqliteStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("sessions.db")).await.expect("open SQLite file");
    store.migrate().await.expect("migrate");
    Guarded { store, guard: Guard::Dir(dir) }
}

/// A PostgreSQL store on the test database, with a table of its own, migrated.
pub async fn postgres() -> Scratch<PostgresStore> {
    let scratch = postgres_unmigrated().await;
    scratch.migrate().await.expect("migrate");
    scratch
}

/// A PostgreSQL store whose table does not exist yet (and is dropped with the store).
pub async fn postgres_unmigrated() -> Scratch<PostgresStore> {
    let url = env("DATABASE_URL");
    let table = unique_table();
    Guarded { store: postgres_store(&url, &table).await, guard: Guard::Table { url, table } }
}

/// A new pool on the test database, using `table` (not migrated, not dropped).
pub async fn postgres_store(url: &str, table: &str) -> PostgresStore {
    // Small pools: every test process opens its own against one server.
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to PostgreSQL at {url}: {e}"));
    PostgresStore::new(pool).with_table_name(table).expect("valid table name")
}

/// Looks under the store, at the rows themselves.
#[async_trait]
pub trait Rows: ExpiredDeletion {
    async fn count(&self) -> i64;
    async fn overwrite_data(&self, id: &RecordId, data: &[u8]);
}

/// The same body for both engines' pools.
macro_rules! impl_rows {
    ($($store:ty),*) => {$(
        #[async_trait]
        impl Rows for Scratch<$store> {
            async fn count(&self) -> i64 {
                let sql = format!("SELECT COUNT(*) FROM \"{}\"", self.table_name());
                sqlx::query_scalar(&sql).fetch_one(self.pool()).await.unwrap()
            }
            async fn overwrite_data(&self, id: &RecordId, data: &[u8]) {
                let sql = format!("UPDATE \"{}\" SET data = $2 WHERE id = $1", self.table_name());
                sqlx::query(&sql).bind(&id.as_bytes()[..]).bind(data).execute(self.pool()).await.unwrap();
            }
        }
    )*};
}

impl_rows!(SqliteStore, PostgresStore);

/// One `#[tokio::test]` per engine and case, `<engine>::<case>`, each running the async fn
/// `case` of the calling file on a fresh scratch store.
#[allow(unused_macros)] // Not every test binary uses it.
macro_rules! on_each_engine {
    ($($case:ident),* $(,)?) => {
        $crate::common::on_each_engine!(@engine sqlite; $($case),*);
        $crate::common::on_each_engine!(@engine postgres; $($case),*);
    };
    (@engine $engine:ident; $($case:ident),*) => {
        mod $engine {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::common::$engine().await).await;
                }
            )*
        }
    };
}

#[allow(unused_imports)]
pub(crate) use on_each_engine;

/// A fresh record with one entry, expiring after `ttl` (negative: already expired).
pub fn record(ttl: Duration) -> Record {
    let now = OffsetDateTime::now_utc();
    let mut record = Record::new(Id::random().record_id(), now, now + ttl);
    record.entries.insert("init", vec![1].into());
    record
}

/// `GET /get/{key}` answers the value or `none`; `POST /set/{key}/{value}` stores it.
/// Session errors become the layer's 500.
pub fn app(store: impl SessionStore) -> Router {
    Router::new()
        .route(
            "/get/{key}",
            get(|s: Session, Path(key): Path<String>| async move {
                s.get::<String>(&key).await.map(|v| v.unwrap_or_else(|| "none".to_owned()))
            }),
        )
        .route(
            "/set/{key}/{value}",
            post(|s: Session, Path((key, value)): Path<(String, String)>| async move {
                s.insert(&key, value).await.map(|()| "ok")
            }),
        )
        .layer(SessionLayer::new(store).with_secure(false))
}
