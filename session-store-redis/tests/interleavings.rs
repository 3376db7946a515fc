//! A delete, a revoke or a `revoke_user` landing between any two steps of a `cycle`, placed
//! deterministically: a connection wrapper runs it just before the cycle's n-th script.
//! Whatever the step, nothing stays live and the cycle answers `NotFound`.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use session_core::{Change, Id, Patch, Record, SessionHandle, SessionStore, StoreError};
use session_store_redis::redis::aio::ConnectionLike;
use session_store_redis::redis::{Arg, Cmd, Pipeline, RedisFuture, Value};
use session_store_redis::RedisStore;
use time::{Duration, OffsetDateTime};

type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `hook` before the `at`-th `EVALSHA` it sends (counting from 0).
#[derive(Clone)]
struct Interleave<C> {
    inner: C,
    sent: Arc<AtomicUsize>,
    at: Arc<AtomicUsize>,
    hook: Arc<Mutex<Option<Hook>>>,
}

impl<C: ConnectionLike + Send> ConnectionLike for Interleave<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let script = matches!(cmd.args_iter().next(), Some(Arg::Simple(b"EVALSHA")));
        let hook = if script && self.sent.fetch_add(1, Ordering::SeqCst) == self.at.load(Ordering::SeqCst) {
            self.hook.lock().unwrap().take()
        } else {
            None
        };
        Box::pin(async move {
            if let Some(hook) = hook {
                hook.await;
            }
            self.inner.req_packed_command(cmd).await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

#[derive(Clone, Copy, Debug)]
enum Ender {
    Delete,
    Revoke,
    RevokeUser,
}

async fn every_step<C, O>(inner: C, other: RedisStore<O>, prefix: &str)
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
    O: ConnectionLike + Clone + Send + Sync + 'static,
{
    let con = Interleave {
        inner,
        sent: Arc::default(),
        at: Arc::new(AtomicUsize::new(usize::MAX)),
        hook: Arc::default(),
    };
    let store = RedisStore::new(con.clone()).with_prefix(prefix);
    let other = Arc::new(other.with_prefix(prefix));
    let user = format!("interleaved-{}", Id::random());
    // Loads the scripts if the server lacks them, so every later cycle sends exactly four.
    let now = OffsetDateTime::now_utc();
    let mut warm = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
    warm.entries.insert("k", vec![1].into());
    warm.user = Some(user.clone());
    store.create(&warm).await.unwrap();
    store.cycle(&Patch::new(warm.id, warm.expires_at, now), Id::random().record_id()).await.unwrap();
    store.revoke_user(&user, None).await.unwrap();
    // The cycle of a user's session sends MOVE, CREATE, INDEX, COMMIT: 0..4 puts the ender
    // before each of them.
    for at in 0..4 {
        for ender in [Ender::Delete, Ender::Revoke, Ender::RevokeUser] {
            let case = format!("{ender:?} before script {at}");
            let now = OffsetDateTime::now_utc();
            let mut old = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
            old.entries.insert("k", vec![1].into());
            old.user = Some(user.clone());
            store.create(&old).await.unwrap();
            let (other, owner, id) = (Arc::clone(&other), user.clone(), old.id);
            *con.hook.lock().unwrap() = Some(Box::pin(async move {
                match ender {
                    Ender::Delete => other.delete(&id).await.unwrap(),
                    Ender::Revoke => {
                        other.revoke(&SessionHandle::from_record_id(id)).await.unwrap();
                    }
                    Ender::RevokeUser => {
                        other.revoke_user(&owner, None).await.unwrap();
                    }
                }
            }));
            con.sent.store(0, Ordering::SeqCst);
            con.at.store(at, Ordering::SeqCst);
            let mut patch = Patch::new(old.id, now + Duration::hours(1), now);
            patch.changes.push(Change::set("k", Some(vec![2].into())));
            let to = Id::random().record_id();
            let cycled = store.cycle(&patch, to).await;
            con.at.store(usize::MAX, Ordering::SeqCst);
            assert!(con.hook.lock().unwrap().is_none(), "{case}: the ender never ran");
            assert!(matches!(cycled, Err(StoreError::NotFound)), "{case}: {cycled:?}");
            assert_eq!(store.load(&old.id).await.unwrap(), None, "{case}: the old id lives");
            assert_eq!(store.load(&to).await.unwrap(), None, "{case}: the new id lives");
            assert!(store.sessions_of(&user).await.unwrap().is_empty(), "{case}: the user has sessions");
        }
    }
}

#[tokio::test]
async fn single_node() {
    let prefix = common::unique_prefix();
    let url = common::env("REDIS_URL");
    let client = session_store_redis::redis::Client::open(url.as_str()).unwrap();
    let manager = session_store_redis::redis::aio::ConnectionManager::new(client).await.unwrap();
    every_step(manager, common::single_store().await, &prefix).await;
}

#[tokio::test]
async fn cluster() {
    let prefix = common::unique_prefix();
    let urls = common::cluster_urls();
    let client = session_store_redis::redis::cluster::ClusterClient::new(urls).unwrap();
    let con = client.get_async_connection().await.unwrap();
    every_step(con, common::cluster_store().await, &prefix).await;
}
