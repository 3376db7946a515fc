//! What every page shows from the session: who is logged in, the theme, flash messages
//! (session-core's, taken once) and the CSRF token its forms carry (session-core's, bound
//! to the session, or for a visitor without one to a cookie of its own, so showing a form
//! stores nothing).

use base64::Engine;
use serde::{Deserialize, Serialize};
use session_core::csrf::CsrfToken;
use session_core::flash::Flash;
use session_core::Session;

use super::error::AppError;

/// Session keys the app uses. `auth` is a secret of the session and never shown; flash
/// messages live under session-core's `flash::FLASH_KEY`.
pub(crate) const KEY_AUTH: &str = "auth";
pub(crate) const KEY_PREFS: &str = "prefs";
pub(crate) const KEY_DEMO: &str = "demo";
/// When this login ends at the latest and when the user last gave their password: see
/// [`LoginTimes`].
pub(crate) const KEY_LOGIN_TIMES: &str = "login_times";

/// How long a login lasts at most, however active: without "remember me" ...
pub(crate) const BROWSER_LOGIN_LIFETIME: time::Duration = time::Duration::hours(12);
/// ... and with it.
pub(crate) const REMEMBERED_LOGIN_LIFETIME: time::Duration = time::Duration::days(30);
/// How long after the password was last given a vault secret is shown without asking again.
pub(crate) const REAUTH_AFTER: time::Duration = time::Duration::minutes(5);

/// The instants of a login, as kept in the session (Unix seconds).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LoginTimes {
    /// The login ends here, however active the session (checked on every request).
    pub(crate) ends_at: i64,
    /// The user last gave their password here: at login, or again to reveal a secret.
    pub(crate) authenticated_at: i64,
}

impl LoginTimes {
    /// For a login now, remembered or not.
    pub(crate) fn new(remember: bool) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let life = if remember { REMEMBERED_LOGIN_LIFETIME } else { BROWSER_LOGIN_LIFETIME };
        Self { ends_at: (now + life).unix_timestamp(), authenticated_at: now.unix_timestamp() }
    }

    /// The login is over.
    pub(crate) fn ended(&self) -> bool {
        time::OffsetDateTime::now_utc().unix_timestamp() >= self.ends_at
    }

    /// The password was given recently enough to show a secret.
    pub(crate) fn recently_authenticated(&self) -> bool {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        now.saturating_sub(self.authenticated_at) < REAUTH_AFTER.whole_seconds()
    }
}

/// The logged-in user, as kept in the session. `Debug` leaves out the login id.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Auth {
    pub(crate) user_id: i64,
    pub(crate) name: String,
    /// The user's session epoch at login; a password change moves it on and so ends
    /// this login, in every session mode (cookie mode included).
    pub(crate) epoch: i64,
    /// Random per login: names this login's WebSockets in the hub.
    pub(crate) login: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { user_id, name, epoch, login: _ } = self;
        f.debug_struct("Auth")
            .field("user_id", user_id)
            .field("name", name)
            .field("epoch", epoch)
            .finish_non_exhaustive()
    }
}

/// Display preferences.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Prefs {
    /// `system` (the OS setting, via `prefers-color-scheme`), `light` or `dark`.
    pub(crate) theme: String,
    pub(crate) per_page: u32,
}

impl Default for Prefs {
    fn default() -> Self {
        Self { theme: "system".into(), per_page: 10 }
    }
}

/// The per-page choices offered (anything else is refused).
pub(crate) const PER_PAGE: [u32; 4] = [5, 10, 20, 50];

/// The context every template gets as `page`.
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    pub(crate) user: Option<String>,
    pub(crate) theme: String,
    pub(crate) per_page: u32,
    /// A freshly masked token, and the form field the CSRF layer reads it from.
    pub(crate) csrf: String,
    pub(crate) csrf_field: String,
    pub(crate) flashes: Vec<Flash>,
}

/// The header the page script sends when it re-fetches a page to update it live.
pub(crate) const LIVE_HEADER: &str = "x-live-refresh";

/// Whether this request is a live update of a page already shown (see [`page`]).
pub(crate) fn is_live(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(LIVE_HEADER)
}

/// Loads the page context. Flash messages are taken (shown once), except by a live
/// update, which must not eat a message meant for the page the user goes to next.
///
/// Never call it in a response that changes the session id (`cycle_id`): the token would
/// be refused. Such handlers redirect, and the next page renders the form.
pub(crate) async fn page(
    session: &Session,
    csrf: &CsrfToken,
    auth: Option<&Auth>,
    live: bool,
) -> Result<Page, AppError> {
    let prefs = prefs(session).await?;
    let flashes = if live { Vec::new() } else { session.take_flashes().await? };
    Ok(Page {
        user: auth.map(|a| a.name.clone()),
        theme: prefs.theme,
        per_page: prefs.per_page,
        csrf: csrf.as_str().to_owned(),
        csrf_field: csrf.field_name().to_owned(),
        flashes,
    })
}

/// The edit page of one item of a manager (`kind`: "bookmarks", "notes" or "vault"),
/// with `status` and an optional error message above the form.
pub(crate) async fn render_edit<F: Serialize>(
    user: &super::auth::CurrentUser,
    kind: &str,
    id: i64,
    status: axum::http::StatusCode,
    error: Option<String>,
    form: &F,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse as _;
    let page = page(&user.session, &user.csrf, Some(&user.auth), user.live).await?;
    let html = super::templates::render("edit.html", minijinja::context! { page, kind, id, error, form })?;
    Ok((status, html).into_response())
}

/// A refused form, kept for the page that shows it after the redirect (post/redirect/get):
/// see [`refuse_form`].
pub(crate) const KEY_FORM_ERROR: &str = "form_error";

/// Field values longer than this are not kept for the redirect, so a cookie-mode session
/// stays small; the page script's copy of the form (`sessionStorage`) brings them back.
const MAX_ECHO: usize = 1024;

#[derive(Debug, Serialize, Deserialize)]
struct FormError {
    /// The page (path) that shows the form.
    at: String,
    error: String,
    form: serde_json::Value,
}

/// Answers a refused form with a redirect to the page `at` that shows it, which gets
/// `error` and the typed values from [`take_form_error`]: no page is the answer to a POST,
/// so reloading it or going back never sends the form again.
pub(crate) async fn refuse_form<F: Serialize>(
    session: &Session,
    at: &str,
    error: String,
    form: &F,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse as _;
    let mut form = serde_json::to_value(form).map_err(|e| AppError::Internal(e.into()))?;
    if let Some(fields) = form.as_object_mut() {
        for value in fields.values_mut() {
            if value.as_str().is_some_and(|v| v.len() > MAX_ECHO) {
                *value = serde_json::Value::String(String::new());
            }
        }
    }
    session.insert(KEY_FORM_ERROR, FormError { at: at.to_owned(), error, form }).await?;
    Ok(axum::response::Redirect::to(at).into_response())
}

/// The refused form kept for the page `at`, taken once (a live update leaves it). One kept
/// for another page is stale and dropped.
pub(crate) async fn take_form_error<F: serde::de::DeserializeOwned>(
    session: &Session,
    at: &str,
    live: bool,
) -> Result<Option<(String, F)>, AppError> {
    // `contains` first: removing an absent key would still count as a change to save.
    if live || !session.contains(KEY_FORM_ERROR).await? {
        return Ok(None);
    }
    let Some(kept) = session.remove::<FormError>(KEY_FORM_ERROR).await? else { return Ok(None) };
    if kept.at != at {
        return Ok(None);
    }
    Ok(serde_json::from_value(kept.form).ok().map(|form| (kept.error, form)))
}

pub(crate) async fn prefs(session: &Session) -> Result<Prefs, AppError> {
    Ok(session.get::<Prefs>(KEY_PREFS).await?.unwrap_or_default())
}

/// 256 random bits, base64url (the id of a login).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Page numbers for a list of `total` items.
#[derive(Debug, Serialize)]
pub(crate) struct Pager {
    pub(crate) page: u32,
    pub(crate) pages: u32,
    pub(crate) total: i64,
}

impl Pager {
    /// Clamps the requested page into range.
    pub(crate) fn new(requested: Option<u32>, per_page: u32, total: i64) -> Self {
        let pages = u32::try_from((total.max(0) as u64).div_ceil(u64::from(per_page.max(1))))
            .unwrap_or(u32::MAX)
            .max(1);
        Self { page: requested.unwrap_or(1).clamp(1, pages), pages, total }
    }

    pub(crate) fn req(&self, per_page: u32) -> crate::db::PageReq {
        crate::db::PageReq { page: self.page, per_page }
    }
}

/// `next` when it is a path on this site, else `/`: a login link must not be able to send
/// the user to another site afterwards.
pub(crate) fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if is_local_path(p) => p.to_owned(),
        _ => "/".to_owned(),
    }
}

/// The longest `next` kept; a longer one falls back to `/`.
const MAX_NEXT: usize = 2048;

/// Whether `p` is a path on this site, as typed and after percent-decoding: one leading
/// `/` (not `//` or `/\`, which browsers read as another host), no backslash, no
/// whitespace or control characters anywhere (browsers drop tabs and newlines, so
/// `/\t/evil.example` would be `//evil.example`), printable ASCII as sent (so it is a
/// valid `Location`), and at most [`MAX_NEXT`] bytes.
fn is_local_path(p: &str) -> bool {
    fn same_origin(p: &str) -> bool {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.contains('\\')
            && !p.chars().any(|c| c.is_control() || c.is_whitespace())
    }
    p.len() <= MAX_NEXT
        && p.bytes().all(|b| b.is_ascii_graphic())
        && same_origin(p)
        && same_origin(&percent_decode(p))
}

/// `s` with each `%XX` replaced by its byte (invalid UTF-8 replaced); other `%` kept.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b))) {
            (b'%', Some(hi), Some(lo)) => {
                // Two hex digits: below 256.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pager_and_local_paths() {
        let p = Pager::new(Some(9), 10, 25);
        assert_eq!((p.page, p.pages), (3, 3));
        assert_eq!(Pager::new(None, 10, 0).pages, 1);
        assert_eq!(Pager::new(Some(0), 5, 6).page, 1);
        assert_eq!(local_path(Some("/notes?page=2")), "/notes?page=2");
        assert_eq!(local_path(Some("/bookmarks?tag=a&q=%C3%A9")), "/bookmarks?tag=a&q=%C3%A9");
        let long = format!("/{}", "a".repeat(MAX_NEXT));
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "/\tx",
            "/%09/evil.example",
            "/%0A/x",
            "/%5C/evil",
            "/%2F/evil",
            "/a b",
            "/a?q=%20",
            "/\u{e9}",
            "javascript:alert(1)",
            &long,
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
        assert_eq!(random_token().len(), 43);
    }
}
