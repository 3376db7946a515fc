//! Shared versus per-session state, no login needed: `/demo/global` is one list for every
//! visitor (kept in the server process), `/demo/session` a list in each browser's session.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use session_core::csrf::CsrfToken;
use session_core::flash::Level;
use session_core::Session;

use super::auth::current;
use super::error::AppError;
use super::page::{page, KEY_DEMO};
use super::templates::render;
use crate::AppState;

const MAX_ENTRIES: usize = 20;
const MAX_TEXT: usize = 100;

#[derive(Debug, Deserialize)]
pub(crate) struct EntryForm {
    #[serde(default)]
    text: String,
}

fn entry(form: &EntryForm) -> Result<String, AppError> {
    let text = form.text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Err(AppError::BadRequest(format!("Entries are 1 to {MAX_TEXT} characters.")));
    }
    Ok(text.to_owned())
}

async fn show(
    state: &AppState,
    session: &Session,
    csrf: &CsrfToken,
    shared: bool,
) -> Result<Response, AppError> {
    let auth = current(session, state).await?;
    let items: Vec<String> = if shared {
        state.demo().iter().cloned().collect()
    } else {
        session.get(KEY_DEMO).await?.unwrap_or_default()
    };
    let page = page(session, csrf, auth.as_ref(), false).await?;
    let html = render("demo.html", minijinja::context! { page, shared, items, max => MAX_ENTRIES })?;
    Ok(html.into_response())
}

pub(crate) async fn global(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
) -> Result<Response, AppError> {
    show(&state, &session, &csrf, true).await
}

pub(crate) async fn per_session(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
) -> Result<Response, AppError> {
    show(&state, &session, &csrf, false).await
}

pub(crate) async fn global_add(
    session: Session,
    State(state): State<AppState>,
    Form(form): Form<EntryForm>,
) -> Result<Response, AppError> {
    let text = entry(&form)?;
    {
        let mut list = state.demo();
        list.push_front(text);
        list.truncate(MAX_ENTRIES);
    }
    session.flash(Level::Success, "Added to the list everyone sees.").await?;
    Ok(Redirect::to("/demo/global").into_response())
}

pub(crate) async fn session_add(session: Session, Form(form): Form<EntryForm>) -> Result<Response, AppError> {
    let text = entry(&form)?;
    session
        .update(KEY_DEMO, move |list: &mut Vec<String>| {
            // Runs again on the stored list if a parallel request changed it first.
            list.insert(0, text);
            list.truncate(MAX_ENTRIES);
        })
        .await?;
    session.flash(Level::Success, "Added to this session's list.").await?;
    Ok(Redirect::to("/demo/session").into_response())
}

pub(crate) async fn session_clear(session: Session) -> Result<Response, AppError> {
    session.remove::<Vec<String>>(KEY_DEMO).await?;
    session.flash(Level::Success, "This session's list is empty again.").await?;
    Ok(Redirect::to("/demo/session").into_response())
}
