//! The layer scenarios measured *interleaved*: each round times a batch of requests to the
//! bare app, to session-core and to tower-sessions one after the other (in rotating order),
//! and the ratios are taken per round. Noise from other tenants of a shared machine then
//! hits all three apps of a round alike, so the median ratio holds still even when the
//! absolute times wander (criterion runs each app for seconds on its own, so a busy minute
//! can land on one of them only).
//!
//! `cargo run --release -p benches --example ratios [ROUNDS] [BATCH] [FILTER]` (default 400
//! rounds of 200 requests per app; FILTER picks the scenarios whose name contains it) prints a
//! Markdown table; `scripts/ratios` runs it.

#[path = "../benches/common/apps.rs"]
#[allow(dead_code)] // the private-cookie layer is only for the criterion bench
mod apps;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use apps::{cookie_of, request};
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use session_core::SessionLayer;
use session_store_memory::MemoryStore;
use tower::{Layer, Service, ServiceExt};

/// One scenario: the request each app gets, and how its session is prepared.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    /// A request that sets the cookie the measured requests then carry.
    setup: Option<&'static str>,
    /// A fixed cookie instead (the bogus-cookie case).
    cookie: Option<&'static str>,
    /// Each request creates a session: rebuild the apps (and so their stores) every
    /// `FRESH_EVERY` requests, so neither store's growth decides the figure.
    fresh: bool,
}

const FRESH_EVERY: usize = 10_000;

const CASES: &[Case] = &[
    Case {
        name: "untouched, no cookie",
        method: "GET",
        path: "/untouched",
        setup: None,
        cookie: None,
        fresh: false,
    },
    Case { name: "new session write", method: "POST", path: "/new", setup: None, cookie: None, fresh: true },
    Case {
        name: "read existing",
        method: "GET",
        path: "/read",
        setup: Some("/new"),
        cookie: None,
        fresh: false,
    },
    Case {
        name: "write existing",
        method: "POST",
        path: "/incr",
        setup: Some("/new"),
        cookie: None,
        fresh: false,
    },
    Case {
        name: "write one key of a 20-key session",
        method: "POST",
        path: "/incr",
        setup: Some("/setup-large"),
        cookie: None,
        fresh: false,
    },
    Case {
        name: "bogus cookie",
        method: "GET",
        path: "/read",
        setup: None,
        cookie: Some("id=this-is-not-a-session-id-at-all"),
        fresh: false,
    },
];

trait App: Service<Request<Body>, Response = Response, Error = Infallible> + Clone {}
impl<S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone> App for S {}

/// An app and the cookie its measured requests carry.
struct Subject<S> {
    app: S,
    cookie: Option<String>,
}

impl<S: App> Subject<S> {
    async fn new(app: S, case: &Case) -> Self {
        let mut cookie = case.cookie.map(str::to_owned);
        if let Some(setup) = case.setup {
            let res = app.clone().oneshot(request("POST", setup, None)).await.unwrap();
            cookie = cookie_of(&res);
        }
        Self { app, cookie }
    }

    /// Mean time per request over a batch of `n`.
    async fn batch(&self, case: &Case, n: usize) -> f64 {
        let start = Instant::now();
        for _ in 0..n {
            let res = self
                .app
                .clone()
                .oneshot(request(case.method, case.path, self.cookie.as_deref()))
                .await
                .unwrap();
            assert!(res.status().is_success(), "{} {}: {}", case.method, case.path, res.status());
        }
        duration_ns(start.elapsed()) / n as f64
    }
}

fn duration_ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn ours() -> impl App {
    SessionLayer::new(MemoryStore::default()).with_secure(false).layer(apps::ours())
}

fn theirs() -> impl App {
    tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
        .with_secure(false)
        .layer(apps::theirs())
}

/// Per-round times (ns per request) of bare, session-core and tower-sessions.
async fn measure(case: &Case, rounds: usize, batch: usize) -> [Vec<f64>; 3] {
    let mut times: [Vec<f64>; 3] = Default::default();
    let mut bare = Subject::new(apps::bare(), case).await;
    let mut us = Subject::new(ours(), case).await;
    let mut them = Subject::new(theirs(), case).await;
    // Warm-up: caches, allocator, the stores' first growth.
    for _ in 0..3 {
        bare.batch(case, batch).await;
        us.batch(case, batch).await;
        them.batch(case, batch).await;
    }
    let mut since_fresh = 0;
    for round in 0..rounds {
        if case.fresh && since_fresh + batch > FRESH_EVERY {
            bare = Subject::new(apps::bare(), case).await;
            us = Subject::new(ours(), case).await;
            them = Subject::new(theirs(), case).await;
            since_fresh = 0;
        }
        since_fresh += batch;
        for k in 0..3 {
            let which = (round + k) % 3;
            let t = match which {
                0 => bare.batch(case, batch).await,
                1 => us.batch(case, batch).await,
                _ => them.batch(case, batch).await,
            };
            times[which].push(t);
        }
    }
    times
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| {
        args.get(i).map_or(default, |a| a.parse().expect("ROUNDS and BATCH are numbers"))
    };
    let (rounds, batch) = (number(0, 400), number(1, 200));
    let filter = args.get(2).map_or("", String::as_str);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    println!("{rounds} rounds of {batch} requests per app; medians of per-round figures\n");
    println!("| scenario | bare | session-core | tower-sessions | session-core / bare | tower-sessions / session-core |");
    println!("|---|---:|---:|---:|---:|---:|");
    for case in CASES.iter().filter(|c| c.name.contains(filter)) {
        let [bare, us, them] = rt.block_on(measure(case, rounds, batch));
        let us_over_bare = median(us.iter().zip(&bare).map(|(u, b)| u / b).collect());
        let them_over_us = median(them.iter().zip(&us).map(|(t, u)| t / u).collect());
        println!(
            "| {} | {:.0} ns | {:.0} ns | {:.0} ns | {us_over_bare:.2}× | {them_over_us:.2}× |",
            case.name,
            median(bare),
            median(us),
            median(them)
        );
    }
}
