//! The layer in process (`Router` + `oneshot`, no sockets): each scenario beside a bare
//! handler doing the same work without sessions, and beside tower-sessions with its
//! MemoryStore.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use criterion::{criterion_group, criterion_main, Criterion};
use session_core::{Key, KeyRing, SessionLayer};
use session_store_memory::MemoryStore;
use tower::{Layer, Service, ServiceExt};

#[path = "common/apps.rs"]
mod apps;
use apps::request;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

/// Runs `method path` once and returns the `name=value` of the cookie it set.
fn cookie_from<S: App>(rt: &tokio::runtime::Runtime, app: &S, method: &str, path: &str) -> String {
    rt.block_on(async {
        let res = app.clone().oneshot(request(method, path, None)).await.unwrap();
        assert!(res.status().is_success());
        apps::cookie_of(&res).expect("the setup request sets a cookie")
    })
}

/// What every benched app is: a cloneable service from requests to responses.
trait App:
    Service<Request<Body>, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static
{
}
impl<S> App for S where
    S: Service<Request<Body>, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static
{
}

/// One scenario: the same request to the bare app, session-core and tower-sessions.
struct Scenario<'a> {
    group: criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>,
    rt: tokio::runtime::Runtime,
    method: &'static str,
    path: &'static str,
}

impl<'a> Scenario<'a> {
    fn new(c: &'a mut Criterion, name: &str, method: &'static str, path: &'static str) -> Self {
        Self { group: c.benchmark_group(format!("layer/{name}")), rt: runtime(), method, path }
    }

    fn run<S: App>(&mut self, label: &str, app: &S, cookie: Option<&str>) -> &mut Self {
        let (method, path) = (self.method, self.path);
        self.group.bench_function(label, |b| {
            b.to_async(&self.rt).iter(|| async {
                let res = app.clone().oneshot(request(method, path, cookie)).await.unwrap();
                assert!(res.status().is_success());
                res
            })
        });
        self
    }

    /// Like `run`, for requests that each create a session: a fresh app (so a fresh,
    /// empty store) every `CHUNK` requests, so neither store's growth decides the figure.
    fn run_fresh<S: App>(&mut self, label: &str, make: impl Fn() -> S) -> &mut Self {
        const CHUNK: u64 = 10_000;
        let (method, path) = (self.method, self.path);
        let rt = &self.rt;
        self.group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = std::time::Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let app = make();
                        let n = CHUNK.min(iters - done);
                        let start = std::time::Instant::now();
                        for _ in 0..n {
                            let res = app.clone().oneshot(request(method, path, None)).await.unwrap();
                            assert!(res.status().is_success());
                        }
                        total += start.elapsed();
                        done += n;
                    }
                    total
                })
            })
        });
        self
    }
}

fn layer(c: &mut Criterion) {
    let rt = runtime();
    let bare = apps::bare();
    // The layer around the whole router (`ServiceBuilder` style): one layer per request.
    let ours = SessionLayer::new(MemoryStore::default()).with_secure(false).layer(apps::ours());
    let theirs = tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
        .with_secure(false)
        .layer(apps::theirs());

    Scenario::new(c, "untouched-no-cookie", "GET", "/untouched")
        .run("bare", &bare, None)
        .run("session-core", &ours, None)
        .run("tower-sessions", &theirs, None);
    // `Router::layer` wraps every route on its own, which adds axum's per-route boxing to
    // any middleware; shown once for scale.
    let ours_routed = apps::ours().layer(SessionLayer::new(MemoryStore::default()).with_secure(false));
    let theirs_routed = apps::theirs().layer(
        tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default()).with_secure(false),
    );
    Scenario::new(c, "untouched-no-cookie-router-layer", "GET", "/untouched")
        .run("bare", &bare, None)
        .run("session-core", &ours_routed, None)
        .run("tower-sessions", &theirs_routed, None);
    Scenario::new(c, "new-session-write", "POST", "/new")
        .run("bare", &bare, None)
        .run_fresh("session-core", || {
            SessionLayer::new(MemoryStore::default()).with_secure(false).layer(apps::ours())
        })
        .run_fresh("tower-sessions", || {
            tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                .with_secure(false)
                .layer(apps::theirs())
        });

    let our_cookie = cookie_from(&rt, &ours, "POST", "/new");
    let their_cookie = cookie_from(&rt, &theirs, "POST", "/new");
    Scenario::new(c, "read-existing", "GET", "/read")
        .run("bare", &bare, None)
        .run("session-core", &ours, Some(&our_cookie))
        .run("tower-sessions", &theirs, Some(&their_cookie));
    Scenario::new(c, "write-existing", "POST", "/incr")
        .run("bare", &bare, None)
        .run("session-core", &ours, Some(&our_cookie))
        .run("tower-sessions", &theirs, Some(&their_cookie));

    let our_large = cookie_from(&rt, &ours, "POST", "/setup-large");
    let their_large = cookie_from(&rt, &theirs, "POST", "/setup-large");
    Scenario::new(c, "write-one-key-of-large-session", "POST", "/incr")
        .run("bare", &bare, None)
        .run("session-core", &ours, Some(&our_large))
        .run("tower-sessions", &theirs, Some(&their_large));

    let bogus = "id=this-is-not-a-session-id-at-all";
    Scenario::new(c, "bogus-cookie", "GET", "/read")
        .run("bare", &bare, None)
        .run("session-core", &ours, Some(bogus))
        .run("tower-sessions", &theirs, Some(bogus));

    let ours_client = SessionLayer::client_side_private(KeyRing::new(Key::generate()))
        .with_secure(false)
        .layer(apps::ours());
    let theirs_private = apps::their_private_layer().layer(apps::theirs());
    let our_client_cookie = cookie_from(&rt, &ours_client, "POST", "/new");
    let their_private_cookie = cookie_from(&rt, &theirs_private, "POST", "/new");
    Scenario::new(c, "private-cookie-write-existing", "POST", "/incr")
        .run("bare", &bare, None)
        .run("session-core (client-side)", &ours_client, Some(&our_client_cookie))
        .run("tower-sessions (private id)", &theirs_private, Some(&their_private_cookie));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = layer
}
criterion_main!(benches);
