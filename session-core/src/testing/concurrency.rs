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
    /// `cycle_id` (as at login), and a key written with it.
    Cycle,
}

/// A request extension: after the barrier, wait for this before acting.
#[derive(Clone)]
struct Gate(Arc<tokio::sync::Notify>);

/// A request extension for the first request of a session: the user to tie it to.
#[derive(Clone)]
struct Owner(String);

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
            if let Some(Owner(user)) = req.extensions().get::<Owner>() {
                session.set_user(user.clone());
            }
            return Ok(Response::new(()));
        };
        // Every request loads before any writes back.
        let _: Option<u8> = session.get("init").await.expect("load");
        barrier.wait().await;
        if let Some(Gate(gate)) = req.extensions().get::<Gate>() {
            gate.notified().await;
        }
        match op {
            Op::Increment => session.update("counter", |n: &mut u64| *n += 1).await.expect("update"),
            Op::Key(i) => session.insert(&format!("key{i}"), i).await.expect("insert"),
            Op::Append(i) => session.update("list", move |l: &mut Vec<u32>| l.push(i)).await.expect("update"),
            Op::Flush => session.flush().await.expect("flush"),
            Op::Insert(i) => session.insert("last", i).await.expect("insert"),
            Op::Cycle => {
                session.cycle_id().await.expect("cycle_id");
                session.insert("cycled", 1u8).await.expect("insert");
            }
        }
        Ok(Response::new(()))
    })
}

/// Creates a session through `svc`; returns its cookie pair and record id.
async fn start(svc: &mut Svc) -> (String, crate::RecordId) {
    start_as(svc, None).await
}

/// Creates a session through `svc`, tied to `user` if given.
async fn start_as(svc: &mut Svc, user: Option<&str>) -> (String, crate::RecordId) {
    let mut req = Request::get("/").body(()).expect("request");
    if let Some(user) = user {
        req.extensions_mut().insert(Owner(user.to_owned()));
    }
    let res = svc.call(req).await.expect("infallible");
    cookie_of(&res).expect("a new session sets its cookie")
}

/// The cookie pair and record id a response sets, if it sets a live one.
fn cookie_of(res: &Response<()>) -> Option<(String, crate::RecordId)> {
    let set = res.headers().get(SET_COOKIE)?;
    let pair = set.to_str().expect("ascii").split(';').next().expect("pair").to_owned();
    let id: Id = pair.split_once('=').expect("name=value").1.parse().ok()?;
    Some((pair, id.record_id()))
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

/// How a round of `a_cycle_racing_a_logout_or_revoke_leaves_nothing` ends the session.
#[derive(Clone, Copy, Debug)]
enum Ender {
    Flush,
    Revoke,
    RevokeUser,
}

/// A `cycle_id` (a login) racing the end of the same session: a logout request, a revoke
/// of its handle, or `revoke_user`, landing at the same moment, after the id changed in the
/// store (having loaded before), or entirely after it (with the old cookie or handle).
/// Whichever lands first, no live session is left under the old id or the new one, and
/// neither request fails.
pub async fn a_cycle_racing_a_logout_or_revoke_leaves_nothing(store: impl SessionStore) {
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let mut svc = service(Arc::clone(&store));
    let user = format!("racer-{}", Id::random());
    let indexed = !matches!(store.sessions_of(&user).await, Err(crate::StoreError::Unsupported(_)));
    for round in 0..36u32 {
        let ender = match round % 3 {
            0 => Ender::Flush,
            1 => Ender::Revoke,
            _ if indexed => Ender::RevokeUser,
            _ => Ender::Revoke,
        };
        // 0: at once; 1: loaded before, acts after the change; 2: entirely after.
        let timing = (round / 3) % 3;
        let (pair, rid) = start_as(&mut svc, Some(&user)).await;
        let barrier = Arc::new(Barrier::new(if timing == 2 { 1 } else { 2 }));
        let done = Arc::new(tokio::sync::Notify::new());
        let mut cycle = Request::get("/").header(COOKIE, &pair).body(()).expect("request");
        cycle.extensions_mut().insert((Op::Cycle, Arc::clone(&barrier)));
        let (mut cycling, cycle_done) = (svc.clone(), Arc::clone(&done));
        let cycled = tokio::spawn(async move {
            let res = cycling.call(cycle).await.expect("infallible");
            cycle_done.notify_one();
            res
        });
        let (ending_store, mut ending_svc, owner) = (Arc::clone(&store), svc.clone(), user.clone());
        let ended = tokio::spawn(async move {
            if timing == 2 {
                done.notified().await;
            }
            match ender {
                Ender::Flush => {
                    let mut req = Request::get("/").header(COOKIE, &pair).body(()).expect("request");
                    req.extensions_mut().insert((Op::Flush, barrier));
                    if timing == 1 {
                        req.extensions_mut().insert(Gate(done));
                    }
                    ending_svc.call(req).await.expect("infallible").status()
                }
                Ender::Revoke | Ender::RevokeUser => {
                    barrier.wait().await;
                    if timing == 1 {
                        done.notified().await;
                    }
                    if let Ender::Revoke = ender {
                        let handle = crate::SessionHandle::from_record_id(rid);
                        ending_store.revoke(&handle).await.expect("revoke");
                    } else {
                        ending_store.revoke_user(&owner, None).await.expect("revoke_user");
                    }
                    StatusCode::OK
                }
            }
        });
        let cycled = cycled.await.expect("cycle task");
        let ended = ended.await.expect("ending task");
        assert_all_ok(&[cycled.status(), ended]);
        let case = format!("round {round} ({ender:?}, timing {timing})");
        assert!(store.load(&rid).await.expect("load").is_none(), "{case}: the old id lives");
        if let Some((_, new)) = cookie_of(&cycled) {
            assert!(store.load(&new).await.expect("load").is_none(), "{case}: the new id lives");
        }
        if indexed {
            let left = store.sessions_of(&user).await.expect("sessions_of");
            assert!(left.is_empty(), "{case}: {} sessions of the user live", left.len());
        }
    }
}
