//! Outage drill: PostgreSQL restarts (`pg_ctl restart -m fast`) in the middle of a bounded
//! load. Requests meanwhile answer 200 or 500 within 2 s, never hang or panic; the same app
//! and pool serve again once the server is back; and no session, nor any acknowledged
//! increment of its counter, is lost.
//!
//! The server is the test's own (the shared one must not restart under other tests).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use common::own_postgres::OwnPostgres;
use session_core::test_client::{TestClient, TestResponse};
use session_core::{Session, SessionLayer};
use session_store_sql::sqlx::postgres::PgPoolOptions;
use session_store_sql::PostgresStore;

/// Browsers, one session and one task each.
const SESSIONS: usize = 4;
/// Requests per session before the restart starts, and after it has finished.
const BEFORE: usize = 10;
const AFTER: usize = 20;
/// A request that takes longer has hung.
const REQUEST_BOUND: Duration = Duration::from_secs(2);
/// How long a request may wait for a connection while the server is away. sqlx keeps
/// retrying a refused connect until this runs out (its default is 30 s), so it bounds
/// what a request costs during an outage.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between one task's requests, so the load spans the restart without flooding.
const PACE: Duration = Duration::from_millis(5);

/// `POST /count` reads the session's counter, stores it plus one and answers the new value.
/// A store failure is the layer's 500.
fn app(store: PostgresStore) -> Router {
    Router::new()
        .route(
            "/count",
            post(|s: Session| async move {
                let n = s.get::<u64>("n").await?.unwrap_or(0) + 1;
                s.insert("n", n).await?;
                Ok::<_, session_core::Error>(n.to_string())
            })
            .get(|s: Session| async move {
                Ok::<_, session_core::Error>(
                    s.get::<u64>("n").await?.map_or("none".into(), |n| n.to_string()),
                )
            }),
        )
        .layer(SessionLayer::new(store).with_secure(false))
}

/// One request of the load: when it ran relative to the restart, and what it answered.
#[derive(Debug)]
struct Outcome {
    started: Instant,
    finished: Instant,
    /// `None`: no answer within [`REQUEST_BOUND`].
    status: Option<StatusCode>,
    /// The counter a 200 acknowledged.
    count: Option<u64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_load_costs_a_few_500s_and_no_session() {
    // Like every PostgreSQL test here: no DATABASE_URL means scripts/services did not run,
    // which fails the test rather than skipping it. (The drill runs its own server.)
    let _ = common::env("DATABASE_URL");
    let drill = Instant::now();
    let server = Arc::new(OwnPostgres::start());
    let store = drill_store(&server).await;
    let app = app(store.clone());

    let before_done = Arc::new(AtomicUsize::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..SESSIONS)
        .map(|_| {
            let (browser, before_done, restarted) =
                (TestClient::new(app.clone()), before_done.clone(), restarted.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let mut after = 0;
                // Bounded: BEFORE requests, then as many as the restart lasts (at most
                // pg_ctl's 20 s at PACE or slower), then AFTER.
                while after < AFTER {
                    let restart_over = restarted.load(Ordering::SeqCst);
                    outcomes.push(count(&browser).await);
                    if outcomes.len() == BEFORE {
                        before_done.fetch_add(1, Ordering::SeqCst);
                    }
                    if restart_over {
                        after += 1;
                    }
                    tokio::time::sleep(PACE).await;
                }
                (browser, outcomes)
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(20);
    while before_done.load(Ordering::SeqCst) < SESSIONS {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let restart_started = Instant::now();
    let restarting = server.clone();
    tokio::task::spawn_blocking(move || restarting.restart_fast()).await.expect("pg_ctl restart");
    let restart_finished = Instant::now();
    restarted.store(true, Ordering::SeqCst);

    let mut during = (0, 0);
    for task in tasks {
        let (browser, outcomes) = task.await.expect("a load task panicked");
        let mut acknowledged = 0;
        for (i, o) in outcomes.iter().enumerate() {
            let took = o.finished - o.started;
            let Some(status) = o.status else {
                panic!("request {i} hung: no answer within {REQUEST_BOUND:?}");
            };
            assert!(took <= REQUEST_BOUND, "request {i} took {took:?}");
            let overlapped = o.finished >= restart_started && o.started <= restart_finished;
            if o.started > restart_finished || o.finished < restart_started {
                // Before the restart, and after it: the pool reconnected by itself.
                assert_eq!(
                    status,
                    StatusCode::OK,
                    "request {i}, {}",
                    when(o, restart_started, restart_finished)
                );
            } else {
                assert!(
                    [StatusCode::OK, StatusCode::INTERNAL_SERVER_ERROR].contains(&status),
                    "request {i} during the restart: {status}"
                );
            }
            if overlapped {
                during.0 += 1;
                during.1 += usize::from(status != StatusCode::OK);
            }
            if let Some(n) = o.count {
                // A 500 may still have committed (the answer was lost, not the write), so
                // the counter can jump, but never go back or stand still.
                assert!(n > acknowledged, "request {i}: counter {n} after {acknowledged} acknowledged");
                acknowledged = n;
            }
        }
        // Every session made before the restart is still there, with every increment
        // that was acknowledged.
        let read = browser.get("/count").await;
        assert_eq!(read.status, StatusCode::OK, "reading the session after the drill");
        let stored: u64 = read.text().parse().expect("the session survived the restart");
        assert!(stored >= acknowledged, "{stored} stored, {acknowledged} acknowledged");
    }
    eprintln!(
        "restart took {:?}; {} requests overlapped it, {} of them failed (500); drill {:?}",
        restart_finished - restart_started,
        during.0,
        during.1,
        drill.elapsed()
    );
    assert!(during.0 > 0, "no request overlapped the restart: the drill tested nothing");
    store.pool().close().await;
}

/// The server stays down longer than a request may wait for a connection: every request
/// meanwhile is a 500 within the bound (nothing waits for the server), and once it is back
/// the same app serves the same sessions again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_while_the_server_is_down_are_500s_within_the_bound() {
    let _ = common::env("DATABASE_URL");
    let server = Arc::new(OwnPostgres::start());
    let store = drill_store(&server).await;
    let app = app(store.clone());
    let browsers: Vec<_> = (0..2).map(|_| TestClient::new(app.clone())).collect();
    for browser in &browsers {
        assert_eq!(count(browser).await.count, Some(1), "a session is created");
    }

    let stopping = server.clone();
    tokio::task::spawn_blocking(move || stopping.stop_fast()).await.expect("pg_ctl stop");
    // All at once, more than the pool's connections: none waits longer than the bound,
    // whether for a connection slot or for the server.
    let stranger = TestClient::new(app.clone());
    let (written, stranger_written, read) = tokio::join!(
        async { tokio::join!(count(&browsers[0]), count(&browsers[1])) },
        count(&stranger),
        async { tokio::join!(count_read(&browsers[0]), count_read(&browsers[1])) },
    );
    for o in [written.0, written.1, stranger_written, read.0, read.1] {
        assert_eq!(o.status, Some(StatusCode::INTERNAL_SERVER_ERROR), "while the server is down");
        assert!(o.finished - o.started <= REQUEST_BOUND);
    }
    // Without a cookie there is nothing to load: the store is not asked.
    assert_eq!(stranger.get("/count").await.text(), "none");

    let starting = server.clone();
    tokio::task::spawn_blocking(move || starting.start_again()).await.expect("pg_ctl start");
    for browser in &browsers {
        // The first request after the start reconnects; the failed ones changed nothing.
        assert_eq!(count(browser).await.count, Some(2), "the session and its count survived");
    }
    assert_eq!(count(&stranger).await.count, Some(1), "new sessions work again");
    store.pool().close().await;
}

/// A migrated store on `server`, on a pool whose requests wait at most
/// [`ACQUIRE_TIMEOUT`] for a connection.
async fn drill_store(server: &OwnPostgres) -> PostgresStore {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(&server.url())
        .await
        .expect("connect to the drill's server");
    let store = PostgresStore::new(pool);
    store.migrate().await.expect("migrate");
    store
}

/// `POST /count`: one increment.
async fn count(browser: &TestClient<Router>) -> Outcome {
    timed(browser.post("/count", "")).await
}

/// `GET /count`: the counter, unchanged.
async fn count_read(browser: &TestClient<Router>) -> Outcome {
    timed(browser.get("/count")).await
}

async fn timed(request: impl std::future::Future<Output = TestResponse>) -> Outcome {
    let started = Instant::now();
    let answer = tokio::time::timeout(REQUEST_BOUND, request).await.ok();
    let finished = Instant::now();
    let status = answer.as_ref().map(|r| r.status);
    let count = answer.filter(|r| r.status == StatusCode::OK).map(|r| r.text().parse().expect("a count"));
    Outcome { started, finished, status, count }
}

fn when(o: &Outcome, restart_started: Instant, restart_finished: Instant) -> &'static str {
    if o.finished < restart_started {
        "before the restart"
    } else if o.started > restart_finished {
        "after the restart"
    } else {
        "during the restart"
    }
}
