//! The bookmarks manager: list (paged), add, edit, delete. Every change is announced to the
//! user's other browsers.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use session_core::flash::Level;

use super::auth::CurrentUser;
use super::error::AppError;
use super::netscape;
use super::page::{page, prefs, refuse_form, render_edit, take_form_error, Pager};
use super::templates::render;
use crate::db::BookmarkOrder;
use crate::hub::Change;
use crate::AppState;

const MAX_TITLE: usize = 200;
const MAX_URL: usize = 2048;
const MAX_TAGS: usize = 10;
const MAX_TAG: usize = 32;
/// The most links one import adds.
const MAX_IMPORT: usize = 1000;

/// `?page=N&tag=rust&sort=title` on the list.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    page: Option<u32>,
    tag: Option<String>,
    #[serde(default)]
    sort: BookmarkOrder,
}

impl ListQuery {
    /// The tag filter, normalized as tags are stored; `None` for none.
    fn tag(&self) -> Option<String> {
        let tag = self.tag.as_deref().unwrap_or_default().trim().to_lowercase();
        (!tag.is_empty()).then_some(tag)
    }

    /// The filter and order as a query suffix for the pager's links (`&tag=…&sort=…`).
    fn suffix(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(tag) = self.tag() {
            q.append_pair("tag", &tag);
        }
        if self.sort != BookmarkOrder::Newest {
            q.append_pair("sort", sort_name(self.sort));
        }
        let q = q.finish();
        if q.is_empty() {
            q
        } else {
            format!("&{q}")
        }
    }
}

fn sort_name(order: BookmarkOrder) -> &'static str {
    match order {
        BookmarkOrder::Newest => "newest",
        BookmarkOrder::Oldest => "oldest",
        BookmarkOrder::Title => "title",
    }
}

/// The add and edit form.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct BookmarkForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    tags: String,
}

/// A bookmark as the list shows it.
#[derive(Debug, Serialize)]
struct Listed {
    id: i64,
    title: String,
    url: String,
    tags: Vec<TagLink>,
}

/// A tag, and the list filtered by it.
#[derive(Debug, Serialize)]
struct TagLink {
    name: String,
    href: String,
}

/// Checked and normalized input: title, URL, tags.
#[derive(Debug)]
struct Valid(String, String, String);

fn validate(form: &BookmarkForm) -> Result<Valid, String> {
    let title = form.title.trim();
    if title.is_empty() {
        return Err("A bookmark needs a title.".into());
    }
    if title.chars().count() > MAX_TITLE {
        return Err(format!("Titles are at most {MAX_TITLE} characters."));
    }
    let url = form.url.trim();
    if url.len() > MAX_URL {
        return Err(format!("URLs are at most {MAX_URL} characters."));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("That is not a valid URL ({e})."))?;
    // Only web links: `javascript:` or `data:` URLs in a link would run in the app's page.
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err("Only web addresses (http or https) can be bookmarked.".into());
    }
    let mut tags: Vec<String> = Vec::new();
    for tag in form.tags.split([',', ' ']).map(str::trim).filter(|t| !t.is_empty()) {
        let tag = tag.to_lowercase();
        if tag.chars().count() > MAX_TAG {
            return Err(format!("Tags are at most {MAX_TAG} characters."));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(format!("At most {MAX_TAGS} tags."));
    }
    Ok(Valid(title.to_owned(), parsed.to_string(), tags.join(" ")))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let (error, form) = match take_form_error(&user.session, "/bookmarks", user.live).await? {
        Some((error, form)) => (Some(error), form),
        None => (None, BookmarkForm::default()),
    };
    render_list(&state, &user, &q, StatusCode::OK, error, &form).await
}

async fn render_list(
    state: &AppState,
    CurrentUser { auth, session, csrf, live }: &CurrentUser,
    q: &ListQuery,
    status: StatusCode,
    error: Option<String>,
    form: &BookmarkForm,
) -> Result<Response, AppError> {
    let per_page = prefs(session).await?.per_page;
    let tag = q.tag();
    let total = state.db.count_bookmarks_where(auth.user_id, tag.as_deref()).await?;
    let pager = Pager::new(q.page, per_page, total);
    let items: Vec<Listed> = state
        .db
        .bookmarks_where(auth.user_id, tag.as_deref(), q.sort, pager.req(per_page))
        .await?
        .into_iter()
        .map(|b| Listed {
            tags: b
                .tags
                .split_whitespace()
                .map(|t| {
                    let filter = ListQuery { page: None, tag: Some(t.to_owned()), sort: q.sort };
                    TagLink { name: t.to_owned(), href: format!("/bookmarks?page=1{}", filter.suffix()) }
                })
                .collect(),
            id: b.id,
            title: b.title,
            url: b.url,
        })
        .collect();
    let page = page(session, csrf, Some(auth), *live).await?;
    let (sort, suffix) = (sort_name(q.sort), q.suffix());
    let html =
        render("bookmarks.html", minijinja::context! { page, pager, items, error, form, tag, sort, suffix })?;
    Ok((status, html).into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<BookmarkForm>,
) -> Result<Response, AppError> {
    let Valid(title, url, tags) = match validate(&form) {
        Ok(v) => v,
        Err(msg) => return refuse_form(&user.session, "/bookmarks", msg, &form).await,
    };
    let b = state.db.add_bookmark(user.auth.user_id, &title, &url, &tags).await?;
    state.hub.publish(user.auth.user_id, &Change { kind: "bookmarks", action: "created", id: b.id });
    user.session.flash(Level::Success, "Bookmark added.").await?;
    Ok(Redirect::to("/bookmarks").into_response())
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let b = state.db.bookmark(user.auth.user_id, id).await?.ok_or(AppError::NotFound)?;
    let (error, form) =
        match take_form_error(&user.session, &format!("/bookmarks/{id}/edit"), user.live).await? {
            Some((error, form)) => (Some(error), form),
            None => (None, BookmarkForm { title: b.title, url: b.url, tags: b.tags }),
        };
    render_edit(&user, "bookmarks", id, StatusCode::OK, error, &form).await
}

pub(crate) async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<BookmarkForm>,
) -> Result<Response, AppError> {
    // Someone else's id is "not found" before any validation message can say otherwise.
    state.db.bookmark(user.auth.user_id, id).await?.ok_or(AppError::NotFound)?;
    let Valid(title, url, tags) = match validate(&form) {
        Ok(v) => v,
        Err(msg) => return refuse_form(&user.session, &format!("/bookmarks/{id}/edit"), msg, &form).await,
    };
    let b = state
        .db
        .update_bookmark(user.auth.user_id, id, &title, &url, &tags)
        .await?
        .ok_or(AppError::NotFound)?;
    state.hub.publish(user.auth.user_id, &Change { kind: "bookmarks", action: "updated", id: b.id });
    user.session.flash(Level::Success, "Bookmark saved.").await?;
    Ok(Redirect::to("/bookmarks").into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    if !state.db.delete_bookmark(user.auth.user_id, id).await? {
        return Err(AppError::NotFound);
    }
    state.hub.publish(user.auth.user_id, &Change { kind: "bookmarks", action: "deleted", id });
    user.session.flash(Level::Success, "Bookmark deleted.").await?;
    Ok(Redirect::to("/bookmarks").into_response())
}

/// The bookmarks as a Netscape bookmark file, which every browser imports.
pub(crate) async fn export(State(state): State<AppState>, user: CurrentUser) -> Result<Response, AppError> {
    let all = state.db.all_bookmarks(user.auth.user_id).await?;
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_DISPOSITION, "attachment; filename=\"bookmarks.html\""),
    ];
    Ok((headers, netscape::export(&all)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImportForm {
    /// The file's text (the page script reads the chosen file into this field).
    #[serde(default)]
    html: String,
}

/// Adds the links of a browser's bookmark file: valid web links only, none already here.
pub(crate) async fn import(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<ImportForm>,
) -> Result<Response, AppError> {
    let uid = user.auth.user_id;
    let mut known: std::collections::HashSet<String> =
        state.db.all_bookmarks(uid).await?.into_iter().map(|b| b.url).collect();
    let (mut added, mut skipped) = (0usize, 0usize);
    for link in netscape::parse(&form.html) {
        let form = BookmarkForm { title: link.title.clone(), url: link.url, tags: link.tags };
        let form = if form.title.trim().is_empty() {
            BookmarkForm { title: form.url.clone(), ..form }
        } else {
            form
        };
        match validate(&form) {
            Ok(Valid(title, url, tags)) if added < MAX_IMPORT && known.insert(url.clone()) => {
                state.db.add_bookmark(uid, &title, &url, &tags).await?;
                added += 1;
            }
            _ => skipped += 1,
        }
    }
    if added == 0 && skipped == 0 {
        let msg = "No bookmarks found: choose a bookmark file exported by a browser (HTML).".to_owned();
        return refuse_form(&user.session, "/bookmarks", msg, &BookmarkForm::default()).await;
    }
    if added > 0 {
        state.hub.publish(uid, &Change { kind: "bookmarks", action: "created", id: 0 });
    }
    let text = format!(
        "Imported {added} bookmark{}{}.",
        if added == 1 { "" } else { "s" },
        if skipped > 0 {
            format!("; skipped {skipped} (already here, not a web link, or over {MAX_IMPORT})")
        } else {
            String::new()
        }
    );
    user.session.flash(Level::Success, text).await?;
    Ok(Redirect::to("/bookmarks").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(title: &str, url: &str, tags: &str) -> BookmarkForm {
        BookmarkForm { title: title.into(), url: url.into(), tags: tags.into() }
    }

    #[test]
    fn urls_are_parsed_and_limited_to_the_web() {
        let Valid(t, u, tags) =
            validate(&form(" Rust ", "https://Rust-Lang.org", "Lang, rust lang")).unwrap();
        assert_eq!((t.as_str(), u.as_str(), tags.as_str()), ("Rust", "https://rust-lang.org/", "lang rust"));
        for bad in ["javascript:alert(1)", "data:text/html,x", "ftp://x.org", "not a url", "http://", ""] {
            assert!(validate(&form("t", bad, "")).is_err(), "{bad}");
        }
        assert!(validate(&form("  ", "https://x.org", "")).unwrap_err().contains("title"));
        assert!(validate(&form("t", "https://x.org", &"a".repeat(33))).unwrap_err().contains("Tags"));
        assert!(validate(&form("t", "https://x.org", "1 2 3 4 5 6 7 8 9 10 11")).is_err());
    }
}
