//! The HTTP side: the router, shared middleware (CSRF, security headers), static assets.

mod auth;
mod bookmarks;
mod csrf;
mod demo;
mod devices;
mod error;
mod home;
mod inspect;
mod notes;
mod page;
mod templates;
mod vault;
mod ws;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use session_core::SessionLayer;

use crate::AppState;

/// `?page=N` on the lists.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    page: Option<u32>,
}

/// The app's router, with the session layer from `state` applied. `main` serves it;
/// tests call it with `oneshot`.
pub fn app(state: AppState) -> Router {
    let sessions = SessionLayer::clone(&state.sessions);
    Router::new()
        .route("/", get(home::home))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/register", get(auth::register_page).post(auth::register))
        .route("/logout", post(auth::logout))
        .route("/password", post(auth::change_password))
        .route("/prefs", post(home::save_prefs))
        .route("/api/search", get(home::search))
        .route("/bookmarks", get(bookmarks::list).post(bookmarks::create))
        .route("/bookmarks/{id}", post(bookmarks::update))
        .route("/bookmarks/{id}/edit", get(bookmarks::edit))
        .route("/bookmarks/{id}/delete", post(bookmarks::delete))
        .route("/notes", get(notes::list).post(notes::create))
        .route("/notes/{id}", post(notes::update))
        .route("/notes/{id}/edit", get(notes::edit))
        .route("/notes/{id}/delete", post(notes::delete))
        .route("/vault", get(vault::list).post(vault::create))
        .route("/vault/{id}", post(vault::update))
        .route("/vault/{id}/edit", get(vault::edit))
        .route("/vault/{id}/reveal", post(vault::reveal))
        .route("/vault/{id}/delete", post(vault::delete))
        .route("/devices", get(devices::list))
        .route("/devices/others/logout", post(devices::revoke_others))
        .route("/devices/{handle}/logout", post(devices::revoke))
        .route("/session", get(inspect::show))
        .route("/demo/global", get(demo::global).post(demo::global_add))
        .route("/demo/session", get(demo::per_session).post(demo::session_add))
        .route("/demo/session/clear", post(demo::session_clear))
        .route("/ws", get(ws::upgrade))
        .route("/static/app.js", get(script))
        .route("/static/style.css", get(stylesheet))
        .fallback(not_found)
        // Inside the session layer: the guard reads the token from the session.
        .layer(middleware::from_fn(csrf::guard))
        .layer(middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(csrf::MAX_BODY))
        .layer(sessions)
        .with_state(state)
}

async fn not_found() -> Response {
    error::AppError::NotFound.into_response()
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../assets/app.js"))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("../assets/style.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    // Short caching: the files change with the binary, and the names carry no version.
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body)
        .into_response()
}

/// Pages show private data: never cache them (so "back" after logout asks the server,
/// which says "log in"). Scripts and styles come only from this site.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    res
}
