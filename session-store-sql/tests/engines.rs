//! What the shared suite does not cover, on both engines: stale updates, sweeps of more
//! than one batch, corrupt rows, restarts, and the per-user index's edge cases.

mod common;

use common::{record, Rows};
use session_core::{Change, Patch, Record, RecordId, SessionHandle, SessionStore, StoreError};
use session_store_sql::SqliteStore;
use time::Duration;

fn patch(id: &RecordId) -> Patch {
    let now = time::OffsetDateTime::now_utc();
    Patch::new(*id, now + Duration::hours(1), now)
}

/// An update expecting a value that another writer replaced is refused whole; a patch of
/// a deleted session writes no row.
async fn rejects_a_stale_update(store: impl Rows) {
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    let mut theirs = patch(&r.id);
    theirs.changes.push(Change::set("who", Some(b"theirs".to_vec().into())));
    store.apply(&theirs).await.unwrap();
    // Based on "who" being absent, which it no longer is: refused, nothing written.
    let mut mine = patch(&r.id);
    mine.changes.push(Change::update("who", None, Some(b"mine".to_vec().into())));
    mine.changes.push(Change::set("also", Some(b"x".to_vec().into())));
    assert!(matches!(store.apply(&mine).await, Err(StoreError::Conflict)));
    let stored = store.load(&r.id).await.unwrap().unwrap();
    assert_eq!(stored.entries.get("who").map(|v| &v[..]), Some(&b"theirs"[..]));
    assert!(!stored.entries.contains_key("also"));
    assert_eq!(stored.version, 2);
    store.delete(&r.id).await.unwrap();
    assert!(matches!(store.apply(&theirs).await, Err(StoreError::NotFound)));
    assert_eq!(store.count().await, 0, "a refused patch wrote a row");
}

async fn sweeps_more_than_one_batch(store: impl Rows) {
    const EXPIRED: usize = 2_500;
    let live: Vec<_> = (0..3).map(|_| record(Duration::hours(1))).collect();
    for r in &live {
        store.create(r).await.unwrap();
    }
    for _ in 0..EXPIRED {
        store.create(&record(-Duration::seconds(1))).await.unwrap();
    }
    assert_eq!(store.count().await, 2_503);

    assert_eq!(store.delete_expired().await.unwrap(), 2_500);
    assert_eq!(store.count().await, 3);
    for r in &live {
        assert_eq!(store.load(&r.id).await.unwrap().as_ref(), Some(r));
    }
    assert_eq!(store.delete_expired().await.unwrap(), 0);
}

async fn corrupt_rows_are_no_session(store: impl Rows) {
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    store.overwrite_data(&r.id, b"\xc1 not a record").await;
    assert!(store.load(&r.id).await.unwrap().is_none());
    assert_eq!(store.count().await, 0, "the corrupt row stayed");

    // A row holding another session's (valid) record is just as corrupt.
    let a = record(Duration::hours(1));
    let b = record(Duration::hours(1));
    store.create(&a).await.unwrap();
    store.overwrite_data(&a.id, &b.to_bytes()).await;
    assert!(store.load(&a.id).await.unwrap().is_none());
    store.create(&a).await.unwrap();
    assert_eq!(store.load(&a.id).await.unwrap(), Some(a));
}

fn owned(user: &str, ttl: Duration) -> Record {
    let mut r = record(ttl);
    r.user = Some(user.to_owned());
    r
}

fn handle(r: &Record) -> SessionHandle {
    SessionHandle::from_record_id(r.id)
}

/// `revoke_user` without an exception ends every live session of the user and reports
/// only those; `revoke` reports an expired session as not ended; a touch shows in the list.
async fn users_edge_cases(store: impl Rows) {
    let user = common::unique_table();
    let (a, b) = (owned(&user, Duration::hours(1)), owned(&user, Duration::hours(1)));
    let expired = owned(&user, -Duration::seconds(1));
    for r in [&a, &b, &expired] {
        store.create(r).await.unwrap();
    }
    let later = a.expires_at + Duration::hours(1);
    let seen = a.created_at + Duration::minutes(2);
    store.apply(&Patch::new(a.id, later, seen)).await.unwrap();
    let list = store.sessions_of(&user).await.unwrap();
    let info = list.iter().find(|i| i.handle == handle(&a)).expect("a listed");
    assert!((info.last_seen - seen).abs() < Duration::milliseconds(1));
    assert!((info.expires_at - later).abs() < Duration::milliseconds(1));

    let mut ended = store.revoke_user(&user, None).await.unwrap();
    ended.sort();
    let mut want = vec![handle(&a), handle(&b)];
    want.sort();
    assert_eq!(ended, want, "the expired session is not reported as ended");
    assert!(store.sessions_of(&user).await.unwrap().is_empty());
    assert!(store.revoke_user(&user, None).await.unwrap().is_empty());
    assert_eq!(store.count().await, 1, "the expired row is left for the sweep");
    // `revoke` removes it, but it was no session.
    assert!(!store.revoke(&handle(&expired)).await.unwrap());
    assert_eq!(store.count().await, 0);
    assert!(!store.revoke(&handle(&a)).await.unwrap());

    // A row that does not decode is neither listed nor kept.
    let bad = owned(&user, Duration::hours(1));
    store.create(&bad).await.unwrap();
    store.overwrite_data(&bad.id, b"\xc1 not a record").await;
    assert!(store.sessions_of(&user).await.unwrap().is_empty());
    assert_eq!(store.count().await, 0, "the corrupt row stayed");
}

common::on_each_engine!(
    users_edge_cases,
    rejects_a_stale_update,
    sweeps_more_than_one_batch,
    corrupt_rows_are_no_session,
);

#[tokio::test]
async fn sqlite_sessions_survive_a_restart() {
    let first = common::sqlite().await;
    let r = record(Duration::hours(1));
    first.create(&r).await.unwrap();
    let mut change = patch(&r.id);
    change.changes.push(Change::set("after", Some(b"save".to_vec().into())));
    first.apply(&change).await.unwrap();
    let next = first.load(&r.id).await.unwrap().unwrap();
    let later = next.expires_at + Duration::hours(1);
    let seen = next.created_at + Duration::minutes(1);
    first.apply(&Patch::new(r.id, later, seen)).await.unwrap();
    first.pool().close().await;

    let reopened = SqliteStore::open(common::sqlite_path(&first)).await.unwrap();
    let got = reopened.load(&r.id).await.unwrap().expect("session kept across a restart");
    assert_eq!((got.entries, got.version), (next.entries, 3));
    assert!((got.expires_at - later).abs() < Duration::milliseconds(1));
    assert!((got.last_seen - seen).abs() < Duration::milliseconds(1));
}

#[tokio::test]
async fn postgres_sessions_survive_a_restart() {
    let first = common::postgres().await;
    let r = record(Duration::hours(1));
    first.create(&r).await.unwrap();
    first.apply(&patch(&r.id)).await.unwrap();
    let next = first.load(&r.id).await.unwrap().unwrap();
    first.pool().close().await;

    let url = common::env("DATABASE_URL");
    let reopened = common::postgres_store(&url, first.table_name()).await;
    reopened.migrate().await.expect("migrating an existing table is a no-op");
    assert_eq!(reopened.load(&r.id).await.unwrap(), Some(next));
}
