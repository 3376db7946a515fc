//! Instruction counts per request, for comparisons that the shared machine's noise cannot
//! blur: `valgrind --tool=callgrind` counts instructions, which repeat exactly.
//!
//! `cargo build --release -p benches --example count`, then for each APP in `bare`,
//! `session-core`, `tower-sessions` and SCENARIO in `untouched`, `read`, `write`, `new`,
//! `large`: `valgrind --tool=callgrind target/release/examples/count APP SCENARIO N` with
//! N = 0 and N = 2000; (I(2000) - I(0)) / 2000 is the cost of one request.
//! `scripts/count` does exactly that and prints the table.

#[path = "../benches/common/apps.rs"]
#[allow(dead_code)] // the private-cookie layer is only for the criterion bench
mod apps;

use apps::request;
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use session_core::SessionLayer;
use session_store_memory::MemoryStore;
use tower::{Layer, ServiceExt};

async fn run<S>(app: S, scenario: &str, n: usize)
where
    S: tower::Service<Request<Body>, Response = axum::response::Response, Error = std::convert::Infallible>
        + Clone,
{
    let (method, path, setup) = match scenario {
        "untouched" => ("GET", "/untouched", None),
        "read" => ("GET", "/read", Some("/new")),
        "write" => ("POST", "/incr", Some("/new")),
        "new" => ("POST", "/new", None),
        "large" => ("POST", "/incr", Some("/setup-large")),
        other => panic!("unknown scenario {other}"),
    };
    let mut cookie = None;
    if let Some(setup) = setup {
        let res = app.clone().oneshot(request("POST", setup, None)).await.unwrap();
        cookie = apps::cookie_of(&res);
    }
    for _ in 0..n {
        let res = app.clone().oneshot(request(method, path, cookie.as_deref())).await.unwrap();
        assert!(res.status().is_success());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (which, scenario, n) = (&args[1], &args[2], args[3].parse::<usize>().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        match which.as_str() {
            "bare" => run(apps::bare(), scenario, n).await,
            "session-core" => {
                let app: Router = apps::ours();
                run(SessionLayer::new(MemoryStore::default()).with_secure(false).layer(app), scenario, n)
                    .await
            }
            "tower-sessions" => {
                let layer = tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                    .with_secure(false);
                run(layer.layer(apps::theirs()), scenario, n).await
            }
            other => panic!("unknown app {other}"),
        }
    });
}
