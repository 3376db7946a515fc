//! The notes manager: list (paged), add, edit, delete. Every change is announced to the
//! user's other browsers.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use session_core::flash::Level;

use super::auth::CurrentUser;
use super::error::AppError;
use super::page::{page, prefs, refuse_form, render_edit, take_form_error, Pager};
use super::templates::render;
use super::ListQuery;
use crate::hub::Change;
use crate::AppState;

const MAX_TITLE: usize = 200;
/// The largest note body, in bytes.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The add and edit form.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct NoteForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

/// What is wrong with the form.
fn validate(form: &NoteForm) -> Result<(), String> {
    let title = form.title.trim();
    if title.is_empty() {
        return Err("A note needs a title.".into());
    }
    if title.chars().count() > MAX_TITLE {
        return Err(format!("Titles are at most {MAX_TITLE} characters."));
    }
    if form.body.len() > MAX_BODY {
        return Err(format!("Notes are at most 64 KiB; this one is {} KiB.", form.body.len().div_ceil(1024)));
    }
    Ok(())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let (error, form) = match take_form_error(&user.session, "/notes", user.live).await? {
        Some((error, form)) => (Some(error), form),
        None => (None, NoteForm::default()),
    };
    render_list(&state, &user, q.page, StatusCode::OK, error, &form).await
}

async fn render_list(
    state: &AppState,
    CurrentUser { auth, session, csrf, live }: &CurrentUser,
    requested: Option<u32>,
    status: StatusCode,
    error: Option<String>,
    form: &NoteForm,
) -> Result<Response, AppError> {
    let per_page = prefs(session).await?.per_page;
    let pager = Pager::new(requested, per_page, state.db.count_notes(auth.user_id).await?);
    let items = state.db.notes(auth.user_id, pager.req(per_page)).await?;
    let page = page(session, csrf, Some(auth), *live).await?;
    let html = render("notes.html", minijinja::context! { page, pager, items, error, form })?;
    Ok((status, html).into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<NoteForm>,
) -> Result<Response, AppError> {
    if let Err(msg) = validate(&form) {
        return refuse_form(&user.session, "/notes", msg, &form).await;
    }
    let n = state.db.add_note(user.auth.user_id, form.title.trim(), &form.body).await?;
    state.hub.publish(user.auth.user_id, &Change { kind: "notes", action: "created", id: n.id });
    user.session.flash(Level::Success, "Note added.").await?;
    Ok(Redirect::to("/notes").into_response())
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let n = state.db.note(user.auth.user_id, id).await?.ok_or(AppError::NotFound)?;
    let (error, form) = match take_form_error(&user.session, &format!("/notes/{id}/edit"), user.live).await? {
        Some((error, form)) => (Some(error), form),
        None => (None, NoteForm { title: n.title, body: n.body }),
    };
    render_edit(&user, "notes", id, StatusCode::OK, error, &form).await
}

pub(crate) async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<NoteForm>,
) -> Result<Response, AppError> {
    state.db.note(user.auth.user_id, id).await?.ok_or(AppError::NotFound)?;
    if let Err(msg) = validate(&form) {
        return refuse_form(&user.session, &format!("/notes/{id}/edit"), msg, &form).await;
    }
    let n = state.db.update_note(user.auth.user_id, id, form.title.trim(), &form.body).await?;
    let n = n.ok_or(AppError::NotFound)?;
    state.hub.publish(user.auth.user_id, &Change { kind: "notes", action: "updated", id: n.id });
    user.session.flash(Level::Success, "Note saved.").await?;
    Ok(Redirect::to("/notes").into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    if !state.db.delete_note(user.auth.user_id, id).await? {
        return Err(AppError::NotFound);
    }
    state.hub.publish(user.auth.user_id, &Change { kind: "notes", action: "deleted", id });
    user.session.flash(Level::Success, "Note deleted.").await?;
    Ok(Redirect::to("/notes").into_response())
}
