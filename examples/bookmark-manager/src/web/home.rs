//! The dashboard (or the welcome page), live search and display preferences.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use session_core::csrf::CsrfToken;
use session_core::flash::Level;
use session_core::Session;

use super::auth::current;
use super::error::AppError;
use super::page::{is_live, local_path, page, prefs, KEY_PREFS, PER_PAGE};
use super::templates::render;
use crate::db::PageReq;
use crate::AppState;

/// Results per kind for live search.
const SEARCH_LIMIT: i64 = 10;
const MAX_QUERY: usize = 100;

pub(crate) async fn home(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: axum::http::HeaderMap,
) -> Result<Response, AppError> {
    let Some(auth) = current(&session, &state).await? else {
        let page = page(&session, &csrf, None, false).await?;
        return Ok(render("welcome.html", minijinja::context! { page })?.into_response());
    };
    let uid = auth.user_id;
    let recent = PageReq { page: 1, per_page: 5 };
    let counts = minijinja::context! {
        bookmarks => state.db.count_bookmarks(uid).await?,
        notes => state.db.count_notes(uid).await?,
        vault => state.db.count_vault_items(uid).await?,
    };
    let bookmarks = state.db.bookmarks(uid, recent).await?;
    let notes = state.db.notes(uid, recent).await?;
    let page = page(&session, &csrf, Some(&auth), is_live(&headers)).await?;
    let per_page_choices = PER_PAGE;
    let html =
        render("dashboard.html", minijinja::context! { page, counts, bookmarks, notes, per_page_choices })?;
    Ok(html.into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[derive(Debug, Serialize)]
struct NoteHit {
    id: i64,
    title: String,
    snippet: String,
}

/// JSON for the live search box. 401 without a login (a script, not a person, calls it).
pub(crate) async fn search(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<SearchQuery>,
) -> Result<Response, AppError> {
    let Some(auth) = current(&session, &state).await? else {
        return Ok(
            (StatusCode::UNAUTHORIZED, Json(serde_json::json!({ "error": "log in first" }))).into_response()
        );
    };
    let text: String = q.q.trim().chars().take(MAX_QUERY).collect();
    if text.is_empty() {
        return Ok(Json(serde_json::json!({ "q": text, "bookmarks": [], "notes": [] })).into_response());
    }
    let bookmarks = state.db.search_bookmarks(auth.user_id, &text, SEARCH_LIMIT).await?;
    let notes: Vec<NoteHit> = state
        .db
        .search_notes(auth.user_id, &text, SEARCH_LIMIT)
        .await?
        .into_iter()
        .map(|n| NoteHit { id: n.id, snippet: n.body.chars().take(120).collect(), title: n.title })
        .collect();
    Ok(Json(serde_json::json!({ "q": text, "bookmarks": bookmarks, "notes": notes })).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PrefsForm {
    theme: String,
    per_page: u32,
    next: Option<String>,
}

/// Saves the theme and page size in the session (no login needed: they belong to the
/// browser session, not the account).
pub(crate) async fn save_prefs(session: Session, Form(form): Form<PrefsForm>) -> Result<Response, AppError> {
    if !matches!(form.theme.as_str(), "system" | "light" | "dark") || !PER_PAGE.contains(&form.per_page) {
        return Err(AppError::BadRequest(
            "Pick a theme (system, light or dark) and a page size of 5, 10, 20 or 50.".into(),
        ));
    }
    let mut prefs = prefs(&session).await?;
    prefs.theme = form.theme;
    prefs.per_page = form.per_page;
    session.insert(KEY_PREFS, &prefs).await?;
    session.flash(Level::Success, "Preferences saved.").await?;
    Ok(Redirect::to(&local_path(form.next.as_deref())).into_response())
}

/// `GET /logout` (a typed or bookmarked address): asks before logging out, since only a
/// form with the CSRF token may end the session. Logged out already: home.
pub(crate) async fn logout_page(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
) -> Result<Response, AppError> {
    let Some(auth) = current(&session, &state).await? else { return Ok(Redirect::to("/").into_response()) };
    let page = page(&session, &csrf, Some(&auth), false).await?;
    Ok(render("logout.html", minijinja::context! { page })?.into_response())
}

/// Whether this browser is still logged in: the page script asks when its socket drops,
/// to tell a server that is away from a session that ended. 401 when logged out.
pub(crate) async fn me(State(state): State<AppState>, session: Session) -> Result<Response, AppError> {
    let logged_in = current(&session, &state).await?.is_some();
    let status = if logged_in { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
    Ok((status, Json(serde_json::json!({ "logged_in": logged_in }))).into_response())
}
