//! The forwards `cycle` leaves, as rows: what the shared suite cannot see from outside.
//! They are kept (not discarded as corrupt), followed by the deletes up to the limit and
//! not past their expiry, and swept; and on PostgreSQL, a delete or `revoke_user` that
//! waited for a cycle's row lock still ends the record the cycle moved.

mod common;

use std::time::Duration as StdDuration;

use common::{record, Rows};
use session_core::store::MAX_FORWARDS;
use session_core::{Id, Patch, Record, RecordId, SessionHandle, SessionStore, StoreError};
use session_store_sql::sqlx::{self, Connection, PgConnection};
use time::{Duration, OffsetDateTime};

fn patch(id: &RecordId) -> Patch {
    let now = OffsetDateTime::now_utc();
    Patch::new(*id, now + Duration::hours(1), now)
}

fn owned(user: &str) -> Record {
    let mut r = record(Duration::hours(1));
    r.user = Some(user.to_owned());
    r
}

fn handle(id: RecordId) -> SessionHandle {
    SessionHandle::from_record_id(id)
}

/// The old id's row stays, as a forward: no session for any read or write, taken for
/// `create`, never discarded as a corrupt record; a revoke through it reports the session
/// it ended.
async fn a_forward_is_kept_and_is_no_session(store: impl Rows) {
    let user = common::unique_table();
    let r = owned(&user);
    store.create(&r).await.unwrap();
    let to = Id::random().record_id();
    store.cycle(&patch(&r.id), to).await.unwrap();
    assert_eq!(store.count().await, 2);
    assert!(store.load(&r.id).await.unwrap().is_none());
    assert!(matches!(store.apply(&patch(&r.id)).await, Err(StoreError::NotFound)));
    let elsewhere = Id::random().record_id();
    assert!(matches!(store.cycle(&patch(&r.id), elsewhere).await, Err(StoreError::NotFound)));
    assert!(matches!(store.create(&r).await, Err(StoreError::Collision)), "a forward was overwritten");
    let listed: Vec<_> = store.sessions_of(&user).await.unwrap().iter().map(|i| i.handle).collect();
    assert_eq!(listed, vec![handle(to)]);
    assert_eq!(store.count().await, 2, "a forward was discarded");
    assert!(store.revoke(&handle(r.id)).await.unwrap(), "the revoke ended the moved session");
    assert_eq!(store.count().await, 0);
    assert!(!store.revoke(&handle(r.id)).await.unwrap());
}

/// "Log out my other devices" right after a login: the user's forward to the kept
/// session is deleted, but not followed into it.
async fn revoke_user_keeps_a_cycled_exception(store: impl Rows) {
    let user = common::unique_table();
    let (current, other) = (owned(&user), owned(&user));
    store.create(&current).await.unwrap();
    store.create(&other).await.unwrap();
    let (first, kept) = (Id::random().record_id(), Id::random().record_id());
    store.cycle(&patch(&current.id), first).await.unwrap();
    store.cycle(&patch(&first), kept).await.unwrap();
    let ended = store.revoke_user(&user, Some(&handle(kept))).await.unwrap();
    assert_eq!(ended, vec![handle(other.id)]);
    assert!(store.load(&kept).await.unwrap().is_some(), "the exception was revoked");
    assert_eq!(store.count().await, 1, "forwards of the user stayed");
}

/// A forward lives no longer than the record it replaced: once expired, a delete of the
/// old id no longer reaches the new record, and the sweep removes it.
async fn expired_forwards_are_not_followed_and_are_swept(store: impl Rows) {
    let (a, b) = (record(Duration::milliseconds(300)), record(Duration::milliseconds(300)));
    let (a_to, b_to) = (Id::random().record_id(), Id::random().record_id());
    for (r, to) in [(&a, a_to), (&b, b_to)] {
        store.create(r).await.unwrap();
        store.cycle(&patch(&r.id), to).await.unwrap();
    }
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    store.delete(&a.id).await.unwrap();
    assert!(store.load(&a_to).await.unwrap().is_some(), "an expired forward was followed");
    assert_eq!(store.delete_expired().await.unwrap(), 1);
    assert_eq!(store.count().await, 2);
    assert!(store.load(&b_to).await.unwrap().is_some());
}

/// A chain of `MAX_FORWARDS` forwards is followed to its record; a longer one is cut.
async fn delete_follows_at_most_max_forwards(store: impl Rows) {
    for (cycles, outlives) in [(MAX_FORWARDS, false), (MAX_FORWARDS + 1, true)] {
        let r = record(Duration::hours(1));
        store.create(&r).await.unwrap();
        let mut last = r.id;
        for _ in 0..cycles {
            let to = Id::random().record_id();
            store.cycle(&patch(&last), to).await.unwrap();
            last = to;
        }
        store.delete(&r.id).await.unwrap();
        assert_eq!(store.load(&last).await.unwrap().is_some(), outlives, "after {cycles} cycles");
    }
}

common::on_each_engine!(
    a_forward_is_kept_and_is_no_session,
    revoke_user_keeps_a_cycled_exception,
    expired_forwards_are_not_followed_and_are_swept,
    delete_follows_at_most_max_forwards,
);

/// How many statements on `table` wait for a lock.
async fn waiting_on(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'",
    )
    .bind(table)
    .fetch_one(conn)
    .await
    .unwrap()
}

async fn wait_for_waiters(conn: &mut PgConnection, table: &str, n: i64) {
    for _ in 0..500 {
        if waiting_on(conn, table).await >= n {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("{n} statements never queued for the row lock");
}

/// The PostgreSQL race the forward's `user_id` is kept for: a cycle holds the old row
/// while an end of the session queues for it (READ COMMITTED: its snapshot predates the
/// new record). When the cycle commits, the waiting statement re-reads only the old row,
/// now a forward, and must follow it. The old row is held by a third connection first,
/// so the cycle is sure to queue before the ender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ends_a_session_whose_cycle_it_waited_for() {
    let scratch = common::postgres().await;
    let store = scratch.store.clone();
    let url = common::env("DATABASE_URL");
    let mut holder = PgConnection::connect(&url).await.unwrap();
    let mut watcher = PgConnection::connect(&url).await.unwrap();
    let table = store.table_name().to_owned();
    for by_user in [false, true] {
        let user = common::unique_table();
        let r = owned(&user);
        store.create(&r).await.unwrap();
        sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
        let lock = format!("SELECT 1 FROM \"{table}\" WHERE id = $1 FOR UPDATE");
        sqlx::query(&lock).bind(&r.id.as_bytes()[..]).execute(&mut holder).await.unwrap();

        let to = Id::random().record_id();
        let cycling = tokio::spawn({
            let (store, patch) = (store.clone(), patch(&r.id));
            async move { store.cycle(&patch, to).await }
        });
        wait_for_waiters(&mut watcher, &table, 1).await;
        let ending = tokio::spawn({
            let (store, user) = (store.clone(), user.clone());
            async move {
                if by_user {
                    store.revoke_user(&user, None).await
                } else {
                    store.delete(&r.id).await.map(|()| Vec::new())
                }
            }
        });
        wait_for_waiters(&mut watcher, &table, 2).await;
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

        cycling.await.unwrap().expect("the cycle went first");
        let ended = ending.await.unwrap().unwrap();
        let case = if by_user { "revoke_user" } else { "delete" };
        assert!(store.load(&to).await.unwrap().is_none(), "{case}: the moved session outlived it");
        if by_user {
            assert_eq!(ended, vec![handle(to)], "{case}: the moved session is the one reported");
        }
        assert_eq!(scratch.count().await, 0, "{case}: rows left");
    }
    holder.close().await.unwrap();
    watcher.close().await.unwrap();
}
