//! The HTTP side: the router, shared middleware (session-core's CSRF layer, security
//! headers), static assets.

mod auth;
mod bookmarks;
mod demo;
mod devices;
mod error;
mod home;
mod inspect;
mod netscape;
mod notes;
mod page;
mod templates;
mod vault;
mod ws;

use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use session_core::{Session, SessionLayer};

use self::error::AppError;
use crate::AppState;

/// The largest request body the app reads (a 64 KiB note, percent-encoded, fits).
pub(crate) const MAX_BODY: usize = 256 * 1024;

/// No session lives longer than this from its creation, however active (the session
/// layer's cap); a login ends sooner, see [`page::LoginTimes`].
pub(crate) const MAX_SESSION_LIFETIME: time::Duration = page::REMEMBERED_LOGIN_LIFETIME;

/// `?page=N` on the lists.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    page: Option<u32>,
}

/// The app's router, with the session and CSRF layers from `state` applied. `main` serves
/// it; tests call it with `oneshot`.
///
/// # Panics
///
/// When the CSRF layer's settings are invalid (`setup` makes valid ones).
pub fn app(state: AppState) -> Router {
    let sessions = SessionLayer::clone(&state.sessions);
    let csrf = state.csrf.clone();
    Router::new()
        .route("/", get(home::home))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/register", get(auth::register_page).post(auth::register))
        .route("/logout", get(home::logout_page).post(auth::logout))
        .route("/password", post(auth::change_password))
        .route("/prefs", post(home::save_prefs))
        .route("/api/search", get(home::search))
        .route("/api/me", get(home::me))
        .route("/bookmarks", get(bookmarks::list).post(bookmarks::create))
        .route("/bookmarks/export", get(bookmarks::export))
        .route("/bookmarks/import", post(bookmarks::import))
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
        .route("/static/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .fallback(not_found)
        .layer(middleware::from_fn(end_expired_login))
        // Every non-GET request needs the token, checked before any handler runs. Inside
        // the session layer, which it binds tokens to.
        .layer(csrf)
        .layer(middleware::from_fn_with_state(state.clone(), error::error_pages))
        .layer(middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(sessions)
        .with_state(state)
}

/// Ends a login past its absolute end ([`page::LoginTimes`]) before any handler sees it:
/// the session is destroyed as by a logout, so the request goes on logged out.
async fn end_expired_login(session: Session, req: Request, next: Next) -> Result<Response, AppError> {
    if let Some(times) = session.get::<page::LoginTimes>(page::KEY_LOGIN_TIMES).await? {
        if times.ended() {
            session.flush().await?;
            session
                .flash(session_core::flash::Level::Info, "Your login expired; please log in again.")
                .await?;
        }
    }
    Ok(next.run(req).await)
}

async fn not_found() -> Response {
    AppError::NotFound.into_response()
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../assets/app.js"))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("../assets/style.css"))
}

async fn favicon() -> Response {
    asset("image/svg+xml", include_str!("../assets/favicon.svg"))
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
