//! The commands each operation sends, counted on the connection: a load is one `HGETALL`,
//! a write-back one `EVALSHA`, a delete one script per key it takes, and only a user's session costs the index script on top.

mod common;

use std::sync::{Arc, Mutex};

use session_core::{Change, Id, Patch, Record, SessionStore};
use session_store_redis::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use session_store_redis::redis::{self, Arg, Cmd, Pipeline, RedisFuture, Value};
use session_store_redis::RedisStore;
use time::{Duration, OffsetDateTime};

/// A connection that notes the name of every command it sends.
#[derive(Clone)]
struct Counting {
    inner: ConnectionManager,
    sent: Arc<Mutex<Vec<String>>>,
}

impl Counting {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

impl ConnectionLike for Counting {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if let Some(Arg::Simple(name)) = cmd.args_iter().next() {
            self.sent.lock().unwrap().push(String::from_utf8_lossy(name).into_owned());
        }
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.sent.lock().unwrap().push("pipeline".to_owned());
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

fn record(user: Option<&str>) -> Record {
    let now = OffsetDateTime::now_utc();
    let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
    r.entries.insert("k", vec![1].into());
    r.user = user.map(str::to_owned);
    r
}

fn patch(r: &Record, expires_in: Duration) -> Patch {
    let now = OffsetDateTime::now_utc();
    let mut p = Patch::new(r.id, now + expires_in, now);
    p.changes.push(Change::set("k", Some(vec![2].into())));
    p
}

#[tokio::test]
async fn every_operation_is_one_round_trip_and_users_cost_one_more() {
    let client = redis::Client::open(common::env("REDIS_URL")).unwrap();
    let inner = ConnectionManager::new_with_config(client, ConnectionManagerConfig::new()).await.unwrap();
    let con = Counting { inner, sent: Arc::default() };
    let store = RedisStore::new(con.clone()).with_prefix(common::unique_prefix());
    // Loads the scripts (`NOSCRIPT`, `SCRIPT LOAD`) if this server has not seen them yet.
    let warm = record(Some("warm-up"));
    store.create(&warm).await.unwrap();
    store.apply(&patch(&warm, Duration::hours(2))).await.unwrap();
    let warm_to = Id::random().record_id();
    store.cycle(&patch(&warm, Duration::hours(2)), warm_to).await.unwrap();
    store.delete(&warm.id).await.unwrap();
    con.take();

    let anonymous = record(None);
    store.create(&anonymous).await.unwrap();
    assert_eq!(con.take(), ["EVALSHA"], "create");
    store.load(&anonymous.id).await.unwrap().unwrap();
    assert_eq!(con.take(), ["HGETALL"], "load");
    store.apply(&patch(&anonymous, Duration::hours(2))).await.unwrap();
    assert_eq!(con.take(), ["EVALSHA"], "apply");
    // A new id: move to a forward, create, commit; each a script on one key.
    let to = Id::random().record_id();
    store.cycle(&patch(&anonymous, Duration::hours(2)), to).await.unwrap();
    assert_eq!(con.take(), ["EVALSHA"; 3], "cycle");
    // Take the forward, then the record it leads to.
    store.delete(&anonymous.id).await.unwrap();
    assert_eq!(con.take(), ["EVALSHA", "EVALSHA"], "delete through a forward");
    store.delete(&to).await.unwrap();
    assert_eq!(con.take(), ["EVALSHA"], "delete");

    let user = format!("u-{}", &Id::random().record_id().to_string()[..12]);
    let owned = record(Some(&user));
    store.create(&owned).await.unwrap();
    assert_eq!(con.take(), ["EVALSHA", "EVALSHA"], "create + index");
    let moved = record(Some(&user));
    store.create(&moved).await.unwrap();
    con.take();
    store.cycle(&patch(&moved, Duration::hours(1)), Id::random().record_id()).await.unwrap();
    assert_eq!(con.take(), ["EVALSHA"; 4], "cycle + index of the new id");
    // Later expiry: the user's set may need to live longer.
    store.apply(&patch(&owned, Duration::hours(2))).await.unwrap();
    assert_eq!(con.take(), ["EVALSHA", "EVALSHA"], "apply + index");
    // Earlier expiry, same user: the set lives long enough already.
    store.apply(&patch(&owned, Duration::minutes(30))).await.unwrap();
    assert_eq!(con.take(), ["EVALSHA"], "apply that needs no index");
    // A patch that sets the user lists the session again, whatever the expiry.
    let mut login = patch(&owned, Duration::minutes(20));
    login.user = Some(user.clone());
    store.apply(&login).await.unwrap();
    assert_eq!(con.take(), ["EVALSHA", "EVALSHA"], "apply that sets the user + index");
    // One that ends the session needs no index.
    let mut end =
        Patch::new(owned.id, OffsetDateTime::now_utc() + Duration::hours(9), OffsetDateTime::now_utc());
    end.changes.push(Change::set("k", None));
    assert!(store.apply(&end).await.unwrap().ended);
    assert_eq!(con.take(), ["EVALSHA"], "apply that ends the session");
}
