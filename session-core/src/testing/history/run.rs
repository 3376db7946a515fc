//! Running a history: the handler, the clients with their cookie jars, the final reads.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use tokio::sync::Barrier;
use tower_layer::Layer;
use tower_service::Service;

use super::{Event, HistoryConfig, Op, Rng, Seen, SetCookie, Value};
use crate::testing::FnService;
use crate::{Error, Id, Session, SessionHandle, SessionLayer, SessionManager, SessionStore, StoreError};

type BoxResponse = Pin<Box<dyn Future<Output = Result<Response<()>, Infallible>> + Send>>;
type Svc = crate::SessionService<FnService<fn(Request<()>) -> BoxResponse>>;

/// How many of the last cookies a jar remembers for stale sends.
const RECENT: usize = 4;

/// A request extension: what the handler does, and where it leaves what it saw.
#[derive(Clone)]
struct Call {
    op: Op,
    tag: u32,
    user: Arc<str>,
    /// Times the handler yields between its load and its action, to vary interleavings.
    yields: usize,
    report: Arc<Mutex<Report>>,
}

#[derive(Default)]
struct Report {
    seen: Option<Seen>,
    error: Option<String>,
}

/// One browser's cookie for one shared session.
#[derive(Default)]
struct Jar {
    current: Option<String>,
    recent: VecDeque<String>,
}

struct Shared {
    managers: Vec<SessionManager>,
    jars: Vec<Mutex<Jar>>,
    users: Vec<Arc<str>>,
    clock: AtomicU64,
    /// The store lists sessions per user, so `revoke_user` can run.
    indexed: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) async fn record(store: impl SessionStore, config: HistoryConfig, seed: u64) -> Vec<Event> {
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let run = Id::random().record_id().to_string();
    let users: Vec<Arc<str>> =
        (0..config.sessions.div_ceil(2)).map(|u| Arc::from(format!("history-{}-{u}", &run[..12]))).collect();
    let indexed = !matches!(store.sessions_of(&users[0]).await, Err(StoreError::Unsupported(_)));
    // Two app instances: their write queues meet only in the store.
    let layers: Vec<SessionLayer> =
        (0..2).map(|_| SessionLayer::from_arc(Arc::clone(&store)).with_secure(false)).collect();
    let managers = layers.iter().map(SessionLayer::manager).collect();
    let svcs: Vec<Svc> =
        layers.into_iter().map(|l| l.layer(FnService(handle as fn(Request<()>) -> BoxResponse))).collect();
    let jars = (0..config.sessions).map(|_| Mutex::default()).collect();
    let shared = Arc::new(Shared { managers, jars, users, clock: AtomicU64::new(0), indexed });

    let start = Arc::new(Barrier::new(config.clients));
    let mut tasks = tokio::task::JoinSet::new();
    for me in 0..config.clients {
        let rng = Rng(Rng(seed ^ (me as u64).wrapping_mul(0xA076_1D64_78BD_642F)).next());
        let (shared, svc, start) = (Arc::clone(&shared), svcs[me % svcs.len()].clone(), Arc::clone(&start));
        tasks.spawn(client(shared, svc, me, rng, config.ops_per_client, start));
    }
    let mut events = Vec::with_capacity(config.clients * config.ops_per_client);
    while let Some(done) = tasks.join_next().await {
        events.extend(done.expect("a client task panicked"));
    }
    // At rest, every cookie ever issued is read once more.
    let mut cookies: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.set_cookie {
            SetCookie::Set(pair) => Some(pair.clone()),
            _ => None,
        })
        .collect();
    cookies.sort_unstable();
    cookies.dedup();
    let mut svc = svcs[0].clone();
    let mut tag = u32::try_from(config.clients * config.ops_per_client).expect("fewer than 2^32 operations");
    for cookie in cookies {
        tag += 1;
        events.push(request(&shared, &mut svc, None, Op::Get, tag, Some(cookie), 0, 0).await);
    }
    events.sort_by_key(|e| e.inv);
    events
}

/// Picks the next operation: mostly reads and writes, a few id changes and ends.
fn pick(rng: &mut Rng) -> Op {
    const WEIGHTS: [(Op, usize); 9] = [
        (Op::Get, 26),
        (Op::Insert, 15),
        (Op::Remove, 5),
        (Op::Increment, 22),
        (Op::Append, 20),
        (Op::Cycle, 6),
        (Op::Flush, 3),
        (Op::Revoke, 2),
        (Op::RevokeUser, 1),
    ];
    let mut roll = rng.below(100);
    for (op, weight) in WEIGHTS {
        if roll < weight {
            return op;
        }
        roll -= weight;
    }
    Op::Get
}

async fn client(
    shared: Arc<Shared>,
    mut svc: Svc,
    me: usize,
    mut rng: Rng,
    ops: usize,
    start: Arc<Barrier>,
) -> Vec<Event> {
    let manager = shared.managers[me % shared.managers.len()].clone();
    let mut events = Vec::with_capacity(ops);
    start.wait().await;
    for i in 0..ops {
        let tag = u32::try_from(1 + me * ops + i).expect("fewer than 2^32 operations");
        let slot = rng.below(shared.jars.len());
        let mut op = pick(&mut rng);
        let stale = rng.below(10) == 0;
        let yields = rng.below(4);
        let cookie = {
            let jar = lock(&shared.jars[slot]);
            if stale && !jar.recent.is_empty() {
                Some(jar.recent[rng.below(jar.recent.len())].clone())
            } else {
                jar.current.clone()
            }
        };
        if op == Op::RevokeUser && !shared.indexed {
            op = Op::Revoke;
        }
        if op == Op::Revoke && cookie.is_none() {
            op = Op::Get;
        }
        let user = slot / 2;
        let event = match op {
            Op::Revoke | Op::RevokeUser => revoke(&shared, &manager, op, tag, cookie, user).await,
            _ => request(&shared, &mut svc, Some(me), op, tag, cookie, user, yields).await,
        };
        // The jar follows the response, as a browser's does.
        let mut jar = lock(&shared.jars[slot]);
        match &event.set_cookie {
            SetCookie::Set(pair) => {
                jar.current = Some(pair.clone());
                if !jar.recent.contains(pair) {
                    jar.recent.push_back(pair.clone());
                    if jar.recent.len() > RECENT {
                        jar.recent.pop_front();
                    }
                }
            }
            SetCookie::Remove => jar.current = None,
            SetCookie::None => {}
        }
        drop(jar);
        events.push(event);
    }
    events
}

#[allow(clippy::too_many_arguments)]
async fn request(
    shared: &Shared,
    svc: &mut Svc,
    client: Option<usize>,
    op: Op,
    tag: u32,
    cookie: Option<String>,
    user: usize,
    yields: usize,
) -> Event {
    let report = Arc::new(Mutex::new(Report::default()));
    let mut req = Request::get("/");
    if let Some(pair) = &cookie {
        req = req.header(COOKIE, pair.as_str());
    }
    let mut req = req.body(()).expect("request");
    let call = Call { op, tag, user: Arc::clone(&shared.users[user]), yields, report: Arc::clone(&report) };
    req.extensions_mut().insert(call);
    let inv = shared.clock.fetch_add(1, Ordering::SeqCst);
    let res = svc.call(req).await.expect("infallible");
    let comp = shared.clock.fetch_add(1, Ordering::SeqCst);
    let report = std::mem::take(&mut *lock(&report));
    let result = match (res.status().is_success(), report.error) {
        (_, Some(err)) => Err(err),
        (true, None) => Ok(()),
        (false, None) => Err(format!("status {}", res.status())),
    };
    Event {
        client,
        op,
        tag,
        cookie,
        user,
        inv,
        comp,
        result,
        seen: report.seen,
        set_cookie: set_cookie(&res),
    }
}

async fn revoke(
    shared: &Shared,
    manager: &SessionManager,
    op: Op,
    tag: u32,
    cookie: Option<String>,
    user: usize,
) -> Event {
    let inv = shared.clock.fetch_add(1, Ordering::SeqCst);
    let result = match (op, &cookie) {
        (Op::Revoke, Some(pair)) => manager.revoke(&handle_of(pair)).await.map(drop),
        _ => manager.revoke_user(&shared.users[user], None).await.map(drop),
    };
    let comp = shared.clock.fetch_add(1, Ordering::SeqCst);
    let result = result.map_err(|err| err.to_string());
    Event { client: None, op, tag, cookie, user, inv, comp, result, seen: None, set_cookie: SetCookie::None }
}

fn handle_of(pair: &str) -> SessionHandle {
    let id: Id = pair.split_once('=').expect("name=value").1.parse().expect("an issued cookie holds an id");
    SessionHandle::from_record_id(id.record_id())
}

fn set_cookie(res: &Response<()>) -> SetCookie {
    let Some(header) = res.headers().get(SET_COOKIE) else { return SetCookie::None };
    let pair = header.to_str().expect("ascii").split(';').next().expect("pair");
    match pair.split_once('=').map(|(_, value)| value.parse::<Id>()) {
        Some(Ok(_)) => SetCookie::Set(pair.to_owned()),
        _ => SetCookie::Remove,
    }
}

fn handle(req: Request<()>) -> BoxResponse {
    Box::pin(async move {
        let session = req.extensions().get::<Session>().cloned().expect("the layer adds a session");
        let call = req.extensions().get::<Call>().cloned().expect("every request carries its call");
        let status = match act(&session, &call).await {
            Ok(()) => StatusCode::OK,
            Err(err) => {
                // Error texts name keys, never ids or values.
                lock(&call.report).error = Some(err.to_string());
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Ok(Response::builder().status(status).body(()).expect("response"))
    })
}

/// Reads the whole session (one load, so one snapshot), then does the call's operation.
async fn act(session: &Session, call: &Call) -> Result<(), Error> {
    let born = session.get::<u32>("born").await?;
    let live = session.id().is_some();
    let seen = Seen {
        live,
        born,
        k: session.get("k").await?,
        n: session.get("n").await?,
        list: session.get("list").await?,
    };
    lock(&call.report).seen = Some(seen);
    for _ in 0..call.yields {
        tokio::task::yield_now().await;
    }
    if !live && call.op.writes() {
        // A new session: it is stored with its creator's tag (never removed, so no write
        // empties it) and tied to the session's user.
        session.insert("born", call.tag).await?;
        session.set_user(call.user.to_string());
    }
    match call.op {
        Op::Get | Op::Revoke | Op::RevokeUser => {}
        Op::Insert => session.insert("k", Value::of(call.tag)).await?,
        Op::Remove => drop(session.remove::<Value>("k").await?),
        Op::Increment => session.update("n", |n: &mut u64| *n += 1).await?,
        Op::Append => {
            let tag = call.tag;
            session.update("list", move |l: &mut Vec<u32>| l.push(tag)).await?;
        }
        Op::Flush => session.flush().await?,
        Op::Cycle => session.cycle_id().await?,
    }
    Ok(())
}
