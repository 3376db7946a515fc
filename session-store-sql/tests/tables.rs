//! Table names: bad ones are refused with a typed error, keywords work, migrations are
//! idempotent, and stores on different tables never see each other's sessions.

mod common;

use common::record;
use session_core::SessionStore;
use session_store_sql::sqlx::postgres::PgPoolOptions;
use session_store_sql::{Error, PostgresStore, SqliteStore};
use time::Duration;

const BAD: [&str; 8] =
    ["", "1st", "my-sessions", "a b", "sessions; DROP TABLE users", "s\"", "public.sessions", "séance"];

fn assert_refused(result: Result<impl std::fmt::Debug, Error>, name: &str) {
    match result {
        Err(err @ Error::InvalidTableName(_)) => {
            assert!(matches!(&err, Error::InvalidTableName(n) if n == name));
            assert!(err.to_string().contains("invalid session table name"), "{err}");
        }
        other => panic!("{name:?} was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn bad_table_names_are_refused() {
    let sqlite = SqliteStore::connect("sqlite::memory:").await.unwrap();
    // Lazy: nothing connects, so this needs no server.
    let postgres =
        PostgresStore::new(PgPoolOptions::new().connect_lazy("postgres://localhost/none").unwrap());
    let too_long = "x".repeat(64);
    for name in BAD.iter().copied().chain([too_long.as_str()]) {
        assert_refused(sqlite.clone().with_table_name(name), name);
        assert_refused(postgres.clone().with_table_name(name), name);
    }
    let longest = "x".repeat(63);
    for name in ["Sessions_2", "_", longest.as_str()] {
        assert_eq!(sqlite.clone().with_table_name(name).unwrap().table_name(), name);
        assert_eq!(postgres.clone().with_table_name(name).unwrap().table_name(), name);
    }
    assert_eq!(sqlite.table_name(), "sessions");
}

#[tokio::test]
async fn sqlite_tables_stay_apart_and_migrate_twice() {
    let main = common::sqlite().await;
    // A keyword: names are quoted.
    let other =
        SqliteStore::open(common::sqlite_path(&main)).await.unwrap().with_table_name("order").unwrap();
    for _ in 0..2 {
        main.migrate().await.unwrap();
        other.migrate().await.unwrap();
    }
    let r = record(Duration::hours(1));
    main.create(&r).await.unwrap();
    assert!(other.load(&r.id).await.unwrap().is_none());
    other.create(&r).await.unwrap();
    other.delete(&r.id).await.unwrap();
    assert_eq!(main.load(&r.id).await.unwrap(), Some(r));
}

#[tokio::test]
async fn postgres_tables_stay_apart_and_migrate_concurrently() {
    let main = common::postgres().await;
    let url = common::env("DATABASE_URL");
    // A fresh table migrated by several "instances" at once: the advisory lock keeps
    // `CREATE TABLE IF NOT EXISTS` from racing into a catalog error.
    let other = common::postgres_unmigrated().await;
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let (url, table) = (url.clone(), other.table_name().to_owned());
            tokio::spawn(async move { common::postgres_store(&url, &table).await.migrate().await })
        })
        .collect();
    for racer in racers {
        racer.await.unwrap().expect("concurrent migrate");
    }
    main.migrate().await.unwrap();

    let r = record(Duration::hours(1));
    main.create(&r).await.unwrap();
    assert!(other.load(&r.id).await.unwrap().is_none());
    other.create(&r).await.unwrap();
    other.delete(&r.id).await.unwrap();
    assert_eq!(main.load(&r.id).await.unwrap(), Some(r));
}

#[tokio::test]
async fn debug_shows_the_table_but_no_credentials() {
    let pool = PgPoolOptions::new().connect_lazy("postgres://app:hunter2@localhost/none").unwrap();
    let postgres = PostgresStore::new(pool).with_table_name("app_sessions").unwrap();
    assert_eq!(format!("{postgres:?}"), r#"PostgresStore { table: "app_sessions", .. }"#);
    let sqlite = SqliteStore::connect("sqlite::memory:").await.unwrap();
    assert_eq!(format!("{sqlite:?}"), r#"SqliteStore { table: "sessions", .. }"#);
}
