//! Concurrent requests of one session through the layer, the way browsers send them: all
//! load before any writes back (a barrier in the handler), on every store.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use tokio::sync::Barrier;
use tower_layer::Layer;
use tower_service::Service;

use super::FnService;
use crate::{Id, Record, Session, SessionLayer, SessionStore};

/// What one request does after it loaded the session and waited for the others.
#[derive(Clone, Copy)]
enum Op {
    Increment,
    Key(u32),
    Append(u32),
    Flush,
    Insert(u32),
}

type Svc = crate::SessionService<FnService<fn(Request<()>) -> BoxResponse>>;
type BoxResponse =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<()>, Infallible>> + Send>>;

/// A service over `store` whose handler runs the request's op (from its extensions) after
/// the round's barrier lets every request go.
fn service(store: Arc<dyn SessionStore>) -> Svc {
    SessionLayer::from_arc(store)
        .with_secure(false)
        .layer(FnService(handle as fn(Request<()>) -> BoxResponse))
}

fn handle(req: Request<()>) -> BoxResponse {
    Box::pin(async move {
        let session = req.extensions().get::<Session>().cloned().expect("the layer adds a session");
        let round = req.extensions().get::<(Op, Arc<Barrier>)>().cloned();
        let Some((op, barrier)) = round else {
            session.insert("init", 1u8).await.expect("insert");
            return Ok(Response::new(()));
        };
        // Every request loads before any writes back.
        let _: Option<u8> = session.get("init").await.expect("load");
        barrier.wait().await;
        match op {
            Op::Increment => session.update("counter", |n: &mut u64| *n += 1).await.expect("update"),
            Op::Key(i) => session.insert(&format!("key{i}"), i).await.expect("insert"),
            Op::Append(i) => session.update("list", move |l: &mut Vec<u32>| l.push(i)).await.expect("update"),
            Op::Flush => session.flush().await.expect("flush"),
            Op::Insert(i) => session.insert("last", i).await.expect("insert"),
        }
        Ok(Response::new(()))
    })
}

/// Creates a session through `svc`; returns its cookie pair and record id.
async fn start(svc: &mut Svc) -> (String, crate::RecordId) {
    let res = svc.call(Request::get("/").body(()).expect("request")).await.expect("infallible");
    let set = res.headers().get(SET_COOKIE).expect("a new session sets its cookie");
    let pair = set.to_str().expect("ascii").split(';').next().expect("pair").to_owned();
    let id: Id = pair.split_once('=').expect("name=value").1.parse().expect("an id");
    (pair, id.record_id())
}

/// Sends one request per op through the services (round robin), all at once, and returns
/// their statuses.
async fn round(svcs: &[Svc], pair: &str, ops: &[Op]) -> Vec<StatusCode> {
    let barrier = Arc::new(Barrier::new(ops.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, op) in ops.iter().enumerate() {
        let mut svc = svcs[i % svcs.len()].clone();
        let mut req = Request::get("/").header(COOKIE, pair).body(()).expect("request");
        req.extensions_mut().insert((*op, Arc::clone(&barrier)));
        tasks.spawn(async move { svc.call(req).await.expect("infallible").status() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.expect("request task"));
    }
    statuses
}

fn assert_all_ok(statuses: &[StatusCode]) {
    let failed = statuses.iter().filter(|s| !s.is_success()).count();
    assert_eq!(failed, 0, "{failed} of {} concurrent requests failed: {statuses:?}", statuses.len());
}

async fn stored(store: &dyn SessionStore, rid: &crate::RecordId) -> Record {
    store.load(rid).await.expect("load").expect("the session is still stored")
}

fn decode<T: serde::de::DeserializeOwned>(record: &Record, key: &str) -> Option<T> {
    record.entries.get(key).map(|v| crate::codec::decode_value(v).expect("decodes"))
}

/// 64 concurrent `update` increments of one counter end at exactly 64, with no error.
pub async fn concurrent_increments_through_the_layer_are_exact(store: impl SessionStore) {
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let mut svc = service(Arc::clone(&store));
    let (pair, rid) = start(&mut svc).await;
    assert_all_ok(&round(&[svc], &pair, &[Op::Increment; 64]).await);
    assert_eq!(decode::<u64>(&stored(&*store, &rid).await, "counter"), Some(64));
}

/// The same through two layers (two app instances, each with its own write queue): their
/// writes conflict in the store, and the retries still count every increment.
pub async fn concurrent_increments_from_two_instances_are_exact(store: impl SessionStore) {
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let mut a = service(Arc::clone(&store));
    let b = service(Arc::clone(&store));
    let (pair, rid) = start(&mut a).await;
    assert_all_ok(&round(&[a, b], &pair, &[Op::Increment; 64]).await);
    assert_eq!(decode::<u64>(&stored(&*store, &rid).await, "counter"), Some(64));
}

/// 32 concurrent writers of distinct keys, with plain `insert`: every key is kept.
pub async fn concurrent_writers_of_distinct_keys_all_land(store: impl SessionStore) {
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let mut a = service(Arc::clone(&store));
    let b = service(Arc::clone(&store));
    let (pair, rid) = start(&mut a).await;
    let ops: Vec<Op> = (0..32).map(Op::Key).collect();
    assert_all_ok(&round(&[a, b], &pair, &ops).await);
    let record = stored(&*store, &rid).await;
    for i in 0..32u32 {
        assert_eq!(decode::<u32>(&record, &format!("key{i}")), Some(i), "key{i}");
    }
}

/// 12 concurrent appends to one list keep all 12 entries.
pub async fn concurrent_appends_keep_every_entry(store: impl SessionStore) {
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let mut svc = service(Arc::clone(&store));
    let (pair, rid) = start(&mut svc).await;
    let ops: Vec<Op> = (0..12).map(Op::Append).collect();
    assert_all_ok(&round(&[svc], &pair, &ops).await);
    let mut list: Vec<u32> = decode(&stored(&*store, &rid).await, "list").expect("a list");
    list.sort_unstable();
    assert_eq!(list, (0..12).collect::<Vec<_>>());
}

/// A logout racing 16 writers of the same session: nothing is left behind, and no
/// request fails.
pub async fn a_logout_racing_writers_leaves_nothing(store: impl SessionStore) {
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let mut svc = service(Arc::clone(&store));
    let (pair, rid) = start(&mut svc).await;
    let mut ops: Vec<Op> = (0..16).map(|i| if i % 2 == 0 { Op::Increment } else { Op::Insert(i) }).collect();
    ops.insert(7, Op::Flush);
    assert_all_ok(&round(&[svc], &pair, &ops).await);
    assert!(store.load(&rid).await.expect("load").is_none(), "a write brought the session back");
}
