//! A small server for load tests over loopback (`scripts/load` drives it with wrk).
//!
//! `load-server [--impl ours|tower-sessions] [--store memory|redis] [--redis-url URL]
//! [--redis-pool N] [--sessions N] [--cookies FILE]` creates N sessions up front (through
//! the layer, like real logins), writes their `Cookie` header values to FILE one per line,
//! then serves on 127.0.0.1 (a free port, printed on stdout as `listening on http://ADDR`):
//!
//! - `GET /read`: reads the session's counter and answers its value (a read-only request;
//!   also how `scripts/load` reads the counter back after a run),
//! - `POST /visit`: adds one to it (a write of one key): session-core by its in-place
//!   `update`, tower-sessions by `get` then `insert`, as its own example does,
//! - `GET /untouched`: never touches the session.
//!
//! `--impl ours` (the default) is session-core with `--store memory` (the default) or
//! `--store redis`. `--impl tower-sessions` is tower-sessions 0.14 with
//! tower-sessions-redis-store 0.16 (a fred pool of `--redis-pool` connections, default 1:
//! session-store-redis also talks over one multiplexed connection); it needs the benches
//! crate's `peer-redis` feature. Either way the app is a `Router` with the session layer
//! added by `Router::layer`, served by `axum::serve`.

use std::io::Write as _;

use axum::body::Body;
use axum::http::{header, Request};
use axum::routing::{get, post};
use axum::Router;
use session_core::{Session, SessionLayer};
use tower::ServiceExt;

/// The key `/read` and `/visit` use.
const COUNTER: &str = "visits";
/// The CSRF token every login stores.
const CSRF: &str = "q3Jc8v0mX9bYt2LkP5sW7eRzA1nD4fGhJ6uI8oK0lMQ";
/// Bookmarks every login stores, so a session is a few kilobytes, as in real apps.
const BOOKMARKS: usize = 20;

async fn read(session: Session) -> Result<String, session_core::Error> {
    Ok(session.get::<u64>(COUNTER).await?.unwrap_or(0).to_string())
}

async fn visit(session: Session) -> Result<&'static str, session_core::Error> {
    session.update(COUNTER, |n: &mut u64| *n += 1).await?;
    Ok("ok")
}

async fn login(session: Session) -> Result<&'static str, session_core::Error> {
    session.insert("user", 42u64).await?;
    session.insert("csrf", CSRF).await?;
    session.insert("bookmarks", benches::bookmarks(BOOKMARKS)).await?;
    Ok("ok")
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/read", get(read))
        .route("/visit", post(visit))
        .route("/login", post(login))
        .route("/untouched", get(|| async { "ok" }))
        .layer(layer)
}

/// The same app on tower-sessions 0.14 and its Redis store.
#[cfg(feature = "peer-redis")]
mod peer {
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use axum::Router;
    use tower_sessions_014::{Session, SessionManagerLayer};
    use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};
    use tower_sessions_redis_store::RedisStore;

    use super::{BOOKMARKS, COUNTER, CSRF};

    type Reply = Result<&'static str, StatusCode>;

    fn internal(_: tower_sessions_014::session::Error) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    async fn read(session: Session) -> Result<String, StatusCode> {
        Ok(session.get::<u64>(COUNTER).await.map_err(internal)?.unwrap_or(0).to_string())
    }

    async fn visit(session: Session) -> Reply {
        let n: u64 = session.get(COUNTER).await.map_err(internal)?.unwrap_or(0);
        session.insert(COUNTER, n + 1).await.map_err(internal)?;
        Ok("ok")
    }

    async fn login(session: Session) -> Reply {
        session.insert("user", 42u64).await.map_err(internal)?;
        session.insert("csrf", CSRF).await.map_err(internal)?;
        session.insert("bookmarks", benches::bookmarks(BOOKMARKS)).await.map_err(internal)?;
        Ok("ok")
    }

    pub(crate) async fn app(url: &str, pool_size: usize) -> Result<Router, Box<dyn std::error::Error>> {
        let pool = Pool::new(Config::from_url(url)?, None, None, None, pool_size)?;
        // The connection task runs for the life of the process.
        let _task = pool.connect();
        pool.wait_for_connect().await?;
        // Loopback HTTP: the cookie cannot be Secure.
        let layer = SessionManagerLayer::new(RedisStore::new(pool)).with_secure(false);
        Ok(Router::new()
            .route("/read", get(read))
            .route("/visit", post(visit))
            .route("/login", post(login))
            .route("/untouched", get(|| async { "ok" }))
            .layer(layer))
    }
}

struct Args {
    imp: String,
    store: String,
    redis_url: Option<String>,
    redis_pool: usize,
    sessions: usize,
    cookies: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        imp: "ours".into(),
        store: "memory".into(),
        redis_url: None,
        redis_pool: 1,
        sessions: 1000,
        cookies: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--impl" => a.imp = value()?,
            "--store" => a.store = value()?,
            "--redis-url" => a.redis_url = Some(value()?),
            "--redis-pool" => a.redis_pool = value()?.parse().map_err(|e| format!("--redis-pool: {e}"))?,
            "--sessions" => a.sessions = value()?.parse().map_err(|e| format!("--sessions: {e}"))?,
            "--cookies" => a.cookies = Some(value()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

async fn ours(args: &Args) -> Result<Router, Box<dyn std::error::Error>> {
    let layer = match args.store.as_str() {
        "memory" => SessionLayer::new(session_store_memory::MemoryStore::default()),
        "redis" => {
            let url = args.redis_url.as_deref().ok_or("--store redis needs --redis-url")?;
            SessionLayer::new(session_store_redis::RedisStore::connect(url).await?)
        }
        other => return Err(format!("unknown store {other}").into()),
    };
    // Loopback HTTP: the cookie cannot be Secure.
    Ok(app(layer.with_secure(false)))
}

#[cfg(feature = "peer-redis")]
async fn tower_sessions(args: &Args) -> Result<Router, Box<dyn std::error::Error>> {
    if args.store != "redis" {
        return Err("--impl tower-sessions runs only with --store redis".into());
    }
    let url = args.redis_url.as_deref().ok_or("--store redis needs --redis-url")?;
    peer::app(url, args.redis_pool).await
}

#[cfg(not(feature = "peer-redis"))]
async fn tower_sessions(_: &Args) -> Result<Router, Box<dyn std::error::Error>> {
    Err("--impl tower-sessions needs load-server built with --features peer-redis".into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let app = match args.imp.as_str() {
        "ours" => ours(&args).await?,
        "tower-sessions" => tower_sessions(&args).await?,
        other => return Err(format!("unknown impl {other}").into()),
    };
    let mut cookies = Vec::with_capacity(args.sessions);
    for _ in 0..args.sessions {
        let res = app.clone().oneshot(Request::post("/login").body(Body::empty())?).await?;
        let set = res.headers().get(header::SET_COOKIE).ok_or("login set no cookie")?.to_str()?;
        cookies.push(set.split(';').next().unwrap_or_default().to_owned());
    }
    if let Some(path) = &args.cookies {
        let mut f = std::fs::File::create(path)?;
        for c in &cookies {
            writeln!(f, "{c}")?;
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}
