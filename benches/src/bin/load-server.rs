//! A small server for load tests over loopback (`scripts/load` drives it with wrk).
//!
//! `load-server --store memory|redis [--redis-url URL] [--sessions N] [--cookies FILE]`
//! creates N sessions up front (through the layer, like real logins), writes their
//! `Cookie` header values to FILE one per line, then serves on 127.0.0.1 (a free port,
//! printed on stdout as `listening on http://ADDR`):
//!
//! - `GET /read`: reads the session's counter (a read-only request),
//! - `POST /visit`: increments it (a write of one key),
//! - `GET /untouched`: never touches the session.

use std::io::Write as _;

use axum::body::Body;
use axum::http::{header, Request};
use axum::routing::{get, post};
use axum::Router;
use session_core::{Session, SessionLayer};
use tower::ServiceExt;

async fn read(session: Session) -> Result<String, session_core::Error> {
    Ok(session.get::<u64>("visits").await?.unwrap_or(0).to_string())
}

async fn visit(session: Session) -> Result<String, session_core::Error> {
    session.update("visits", |n: &mut u64| *n += 1).await?;
    Ok("ok".into())
}

async fn login(session: Session) -> Result<&'static str, session_core::Error> {
    session.insert("user", 42u64).await?;
    session.insert("csrf", "q3Jc8v0mX9bYt2LkP5sW7eRzA1nD4fGhJ6uI8oK0lMQ").await?;
    session.insert("bookmarks", benches::bookmarks(20)).await?;
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

struct Args {
    store: String,
    redis_url: Option<String>,
    sessions: usize,
    cookies: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args { store: "memory".into(), redis_url: None, sessions: 1000, cookies: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--store" => a.store = value()?,
            "--redis-url" => a.redis_url = Some(value()?),
            "--sessions" => a.sessions = value()?.parse().map_err(|e| format!("--sessions: {e}"))?,
            "--cookies" => a.cookies = Some(value()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let layer = match args.store.as_str() {
        "memory" => SessionLayer::new(session_store_memory::MemoryStore::default()),
        "redis" => {
            let url = args.redis_url.as_deref().ok_or("--store redis needs --redis-url")?;
            SessionLayer::new(session_store_redis::RedisStore::connect(url).await?)
        }
        other => return Err(format!("unknown store {other}").into()),
    }
    // Loopback HTTP: the cookie cannot be Secure.
    .with_secure(false);
    let app = app(layer);
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
