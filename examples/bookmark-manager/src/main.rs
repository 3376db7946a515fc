//! The example app, for now a per-session bookmark list: every browser session keeps its
//! own list in a server-side session (in memory). The full multi-user manager replaces it.
//!
//! `cargo run -p bookmark-manager` serves it on <http://127.0.0.1:3000> (`--addr` to change).

use std::net::SocketAddr;

use axum::extract::Form;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use session_core::{Session, SessionLayer};
use session_store_memory::MemoryStore;

#[derive(Deserialize)]
struct NewBookmark {
    url: String,
}

/// Longest URL the demo keeps; longer input is refused, not truncated.
const MAX_URL: usize = 2048;

async fn index(session: Session) -> Result<Html<String>, session_core::Error> {
    let list: Vec<String> = session.get("bookmarks").await?.unwrap_or_default();
    let items: String = list.iter().map(|u| format!("<li>{}</li>", escape(u))).collect();
    Ok(Html(format!(
        "<!doctype html><title>Bookmarks</title><h1>Your bookmarks ({})</h1><ul>{items}</ul>\
         <form method=post action=/add><input name=url placeholder=https://... required>\
         <button>Add</button></form><form method=post action=/clear><button>Forget me</button></form>",
        list.len()
    )))
}

async fn add(session: Session, Form(new): Form<NewBookmark>) -> Result<Redirect, session_core::Error> {
    let url = new.url.trim();
    if !url.is_empty() && url.len() <= MAX_URL {
        session.update("bookmarks", |list: &mut Vec<String>| list.push(url.to_owned())).await?;
    }
    Ok(Redirect::to("/"))
}

async fn clear(session: Session) -> Result<Redirect, session_core::Error> {
    session.flush().await?;
    Ok(Redirect::to("/"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The router; `main` only parses flags and serves it.
fn app(secure_cookies: bool) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/add", post(add))
        .route("/clear", post(clear))
        .layer(SessionLayer::new(MemoryStore::default()).with_secure(secure_cookies))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 3000).into();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => {
                addr = value.parse().map_err(|e| std::io::Error::other(format!("--addr {value}: {e}")))?;
            }
            _ => return Err(std::io::Error::other("usage: bookmark-manager [--addr HOST:PORT]")),
        }
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("bookmark-manager listening on http://{}", listener.local_addr()?);
    // Plain-HTTP localhost, so the cookie cannot be Secure here.
    axum::serve(listener, app(false))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn body(res: axum::response::Response) -> String {
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn bookmarks_follow_the_session_and_are_escaped() {
        let app = app(false);
        let res = app
            .clone()
            .oneshot(
                Request::post("/add")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from("url=https%3A%2F%2Fexample.com%2F%3Ca%3E"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let cookie =
            res.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
        let page = body(
            app.clone()
                .oneshot(Request::get("/").header(header::COOKIE, &cookie).body(Body::empty()).unwrap())
                .await
                .unwrap(),
        )
        .await;
        assert!(page.contains("<li>https://example.com/&lt;a&gt;</li>"), "{page}");
        let other = body(app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap()).await;
        assert!(other.contains("Your bookmarks (0)"));
    }
}
