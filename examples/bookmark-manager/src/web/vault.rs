//! The password vault: secrets are sealed with AES-256-GCM under the server's vault key,
//! bound to their owner and item (`vault:<user>:<item>` as associated data, so a sealed
//! secret copied to another row does not open), and shown only on an explicit "reveal".

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use session_core::flash::Level;

use super::auth::{too_many, wait_message, ClientAddr, CurrentUser};
use super::error::{error_page, AppError};
use super::page::{
    page, prefs, refuse_form, render_edit, take_form_error, LoginTimes, Pager, KEY_LOGIN_TIMES,
};
use super::templates::render;
use super::ListQuery;
use crate::hub::Change;
use crate::{passwords, AppState};

const MAX_FIELD: usize = 200;
/// What the vault page shows once, after a reveal: see [`Shown`].
const KEY_SHOWN: &str = "vault_shown";
const MAX_SECRET: usize = 1024;

/// The add and edit form. On edit an empty secret keeps the stored one. `Debug` leaves
/// the secret out (see [`redacted`]).
#[derive(Default, Deserialize, Serialize)]
pub(crate) struct VaultForm {
    #[serde(default)]
    site: String,
    #[serde(default)]
    login: String,
    #[serde(default, skip_serializing)]
    secret: String,
}

/// `Debug` for the types of this module that carry a secret or a password: every field but
/// those, which print as `<redacted>`.
mod redacted {
    use std::fmt;

    const REDACTED: &str = "<redacted>";

    impl fmt::Debug for super::VaultForm {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let (site, login) = (&self.site, &self.login);
            f.debug_struct("VaultForm")
                .field("site", site)
                .field("login", login)
                .field("secret", &REDACTED)
                .finish()
        }
    }

    impl fmt::Debug for super::RevealForm {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RevealForm").field("password", &self.password.as_ref().map(|_| REDACTED)).finish()
        }
    }

    impl fmt::Debug for super::Revealed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Revealed").field("id", &self.id).field("secret", &REDACTED).finish()
        }
    }
}

fn context(user: i64, item: i64) -> String {
    format!("vault:{user}:{item}")
}

fn validate(form: &VaultForm, secret_required: bool) -> Result<(), String> {
    if form.site.trim().is_empty() {
        return Err("A vault item needs a site.".into());
    }
    if form.site.trim().chars().count() > MAX_FIELD || form.login.trim().chars().count() > MAX_FIELD {
        return Err(format!("Site and login are at most {MAX_FIELD} characters."));
    }
    if secret_required && form.secret.is_empty() {
        return Err("A vault item needs a secret.".into());
    }
    if form.secret.len() > MAX_SECRET {
        return Err(format!("Secrets are at most {MAX_SECRET} bytes."));
    }
    Ok(())
}

/// `?page=N&q=text` on the vault list.
#[derive(Debug, Deserialize)]
pub(crate) struct VaultQuery {
    page: Option<u32>,
    q: Option<String>,
}

/// The most items a search looks through (a vault is small; this keeps a search bounded).
const MAX_SEARCHED: u32 = 5000;
const MAX_QUERY: usize = 100;

pub(crate) async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<VaultQuery>,
) -> Result<Response, AppError> {
    let (error, form) = match take_form_error(&user.session, "/vault", user.live).await? {
        Some((error, form)) => (Some(error), form),
        None => (None, VaultForm::default()),
    };
    // Taken once, by the page the reveal redirected to; a live update leaves it (the
    // page script keeps a shown secret in place).
    let shown = if user.live || !user.session.contains(KEY_SHOWN).await? {
        None
    } else {
        user.session.remove::<Shown>(KEY_SHOWN).await?
    };
    let (mut revealed, mut reauth, mut unreadable) = (None, None, None);
    match shown {
        Some(Shown::Secret { id }) => {
            let uid = user.auth.user_id;
            // Gone meanwhile (deleted in another tab): nothing to show.
            if let Some(sealed) = state.db.vault_secret(uid, id).await? {
                match state.vault.open(&context(uid, id), &sealed) {
                    Some((plain, _)) => {
                        revealed =
                            Some(Revealed { id, secret: String::from_utf8_lossy(&plain).into_owned() });
                    }
                    // Said on the page rather than as a 500, which would keep the request
                    // from being saved and so show this again on every visit.
                    None => {
                        tracing::error!(item = id, "a vault secret does not open with the vault key");
                        unreadable = Some(id);
                    }
                }
            }
        }
        Some(Shown::Reauth { id, error }) => reauth = Some(Reauth { id, error }),
        None => {}
    }
    let search: String = q.q.unwrap_or_default().trim().chars().take(MAX_QUERY).collect();
    let shown = ItemView { revealed, reauth, unreadable };
    render_list(&state, &user, (q.page, &search), error, &form, shown).await
}

/// An item whose secret is shown on this one response.
#[derive(Serialize)]
struct Revealed {
    id: i64,
    secret: String,
}

/// What the list shows in place of one item's mask.
#[derive(Debug, Default)]
struct ItemView {
    revealed: Option<Revealed>,
    reauth: Option<Reauth>,
    /// The item whose secret does not open (sealed for another item).
    unreadable: Option<i64>,
}

/// What a reveal leaves for the page it redirects to (never the secret itself).
#[derive(Debug, Serialize, Deserialize)]
enum Shown {
    /// The password was recent enough: show item `id`'s secret.
    Secret { id: i64 },
    /// Ask for the password first; `error` says why the last try failed.
    Reauth { id: i64, error: Option<String> },
}

async fn render_list(
    state: &AppState,
    CurrentUser { auth, session, csrf, live }: &CurrentUser,
    (requested, q): (Option<u32>, &str),
    error: Option<String>,
    form: &VaultForm,
    ItemView { revealed, reauth, unreadable }: ItemView,
) -> Result<Response, AppError> {
    let per_page = prefs(session).await?.per_page;
    let total = state.db.count_vault_items(auth.user_id).await?;
    let (pager, items) = if q.is_empty() {
        let pager = Pager::new(requested, per_page, total);
        let items = state.db.vault_items(auth.user_id, pager.req(per_page)).await?;
        (pager, items)
    } else {
        // Sites and logins are sealed nowhere: matched here, on one page.
        let all = crate::db::PageReq { page: 1, per_page: MAX_SEARCHED };
        let needle = q.to_lowercase();
        let mut items = state.db.vault_items(auth.user_id, all).await?;
        items.retain(|v| v.site.to_lowercase().contains(&needle) || v.login.to_lowercase().contains(&needle));
        let found = i64::try_from(items.len()).unwrap_or(i64::MAX);
        (Pager::new(None, u32::try_from(items.len()).unwrap_or(u32::MAX).max(1), found), items)
    };
    let page = page(session, csrf, Some(auth), *live).await?;
    let html = render(
        "vault.html",
        minijinja::context! { page, pager, items, error, form, revealed, reauth, unreadable, q, total },
    )?;
    Ok(html.into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<VaultForm>,
) -> Result<Response, AppError> {
    if let Err(msg) = validate(&form, true) {
        return refuse_form(&user.session, "/vault", msg, &form).await;
    }
    let uid = user.auth.user_id;
    let seal = |id| state.vault.seal(&context(uid, id), form.secret.as_bytes());
    let item = state.db.add_vault_item(uid, form.site.trim(), form.login.trim(), seal).await?;
    state.hub.publish(uid, &Change { kind: "vault", action: "created", id: item.id });
    user.session.flash(Level::Success, "Vault item added.").await?;
    Ok(Redirect::to("/vault").into_response())
}

/// The reveal form: the password, when the page asked for it again.
#[derive(Default, Deserialize)]
pub(crate) struct RevealForm {
    #[serde(default)]
    password: Option<String>,
}

/// Asks for the password before showing item `id`'s secret.
#[derive(Debug, Serialize)]
struct Reauth {
    id: i64,
    /// Why the last attempt failed.
    error: Option<String>,
}

/// Shows one secret. A POST (with the CSRF token) rather than a link, so a secret is never
/// in a URL, the history, or a page another site can make the browser load.
///
/// The password is asked for again when it was last given more than
/// [`REAUTH_AFTER`](super::page::REAUTH_AFTER) ago, so a stolen session cookie alone
/// reveals nothing. Wrong passwords count with the login form's failures (per account and
/// address), so the prompt is no way around the login throttle.
///
/// Answers with a redirect to the vault page (post/redirect/get), which shows the secret
/// once, scrolled into view: reloading or going back never sends the form again.
pub(crate) async fn reveal(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Query(q): Query<ListQuery>,
    Form(form): Form<RevealForm>,
) -> Result<Response, AppError> {
    let uid = user.auth.user_id;
    state.db.vault_secret(uid, id).await?.ok_or(AppError::NotFound)?;
    let times = user.session.get::<LoginTimes>(KEY_LOGIN_TIMES).await?;
    let shown = if times.is_some_and(|t| t.recently_authenticated()) {
        Shown::Secret { id }
    } else if let Some(password) = form.password.filter(|p| !p.is_empty()) {
        let account = state.db.user_by_id(uid).await?.ok_or(AppError::LoginRequired)?;
        if let Err(wait) = state.throttle.begin(&account.name, addr, std::time::Instant::now()) {
            let msg = wait_message(wait);
            return Ok(too_many(error_page(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", &msg), wait));
        }
        if passwords::verify(account.password_hash, password).await {
            state.throttle.succeeded(&account.name, addr);
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let fresh = match times {
                Some(t) => LoginTimes { authenticated_at: now, ..t },
                // A login from before the times were kept: it ends like a browser-session login.
                None => LoginTimes::new(false),
            };
            user.session.insert(KEY_LOGIN_TIMES, fresh).await?;
            Shown::Secret { id }
        } else {
            Shown::Reauth { id, error: Some("Wrong password; the secret stays hidden.".into()) }
        }
    } else {
        Shown::Reauth { id, error: None }
    };
    user.session.insert(KEY_SHOWN, &shown).await?;
    // The item's own anchor, so the page opens with the secret (or the prompt) in view.
    let page = q.page.unwrap_or(1);
    Ok(Redirect::to(&format!("/vault?page={page}#item-{id}")).into_response())
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let item = state.db.vault_item(user.auth.user_id, id).await?.ok_or(AppError::NotFound)?;
    let (error, form) = match take_form_error(&user.session, &format!("/vault/{id}/edit"), user.live).await? {
        Some((error, form)) => (Some(error), form),
        None => (None, VaultForm { site: item.site, login: item.login, secret: String::new() }),
    };
    render_edit(&user, "vault", id, StatusCode::OK, error, &form).await
}

pub(crate) async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<VaultForm>,
) -> Result<Response, AppError> {
    let uid = user.auth.user_id;
    state.db.vault_item(uid, id).await?.ok_or(AppError::NotFound)?;
    if let Err(msg) = validate(&form, false) {
        return refuse_form(&user.session, &format!("/vault/{id}/edit"), msg, &form).await;
    }
    let secret =
        (!form.secret.is_empty()).then(|| state.vault.seal(&context(uid, id), form.secret.as_bytes()));
    let item = state.db.update_vault_item(uid, id, form.site.trim(), form.login.trim(), secret).await?;
    let item = item.ok_or(AppError::NotFound)?;
    state.hub.publish(uid, &Change { kind: "vault", action: "updated", id: item.id });
    user.session.flash(Level::Success, "Vault item saved.").await?;
    Ok(Redirect::to("/vault").into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    if !state.db.delete_vault_item(user.auth.user_id, id).await? {
        return Err(AppError::NotFound);
    }
    state.hub.publish(user.auth.user_id, &Change { kind: "vault", action: "deleted", id });
    user.session.flash(Level::Success, "Vault item deleted.").await?;
    Ok(Redirect::to("/vault").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        let form = VaultForm { site: "bank".into(), login: "al".into(), secret: "pin-4711".into() };
        let reveal = RevealForm { password: Some("pw-4711".into()) };
        let shown = format!("{form:?} {reveal:?} {:?}", Revealed { id: 3, secret: "pin-4711".into() });
        assert!(!shown.contains("4711") && shown.contains("bank") && shown.contains("<redacted>"), "{shown}");
    }
}
