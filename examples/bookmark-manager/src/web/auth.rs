//! Accounts: register, log in (with "remember me"), log out, change password; and the
//! [`CurrentUser`] extractor that every private page uses.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use session_core::csrf::CsrfToken;
use session_core::flash::Level;
use session_core::{Expiry, Session};

use super::error::{error_page, AppError};
use super::page::{
    is_live, local_path, page, random_token, Auth, LoginTimes, Prefs, KEY_AUTH, KEY_LOGIN_TIMES, KEY_PREFS,
};
use super::templates::render;
use crate::passwords;
use crate::throttle::retry_after;
use crate::AppState;

/// How long "remember me" keeps an idle login.
const REMEMBER_FOR: time::Duration = time::Duration::days(30);

/// A logged-in user, their session and a CSRF token for the page's forms. Rejects with a
/// redirect to `/login`.
#[derive(Debug)]
pub(crate) struct CurrentUser {
    pub(crate) auth: Auth,
    pub(crate) session: Session,
    pub(crate) csrf: CsrfToken,
    /// The request is a live update of a page (see [`page`]).
    pub(crate) live: bool,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::Internal(e.to_string().into()))?;
        let Some(auth) = current(&session, state).await? else { return Err(AppError::LoginRequired) };
        let csrf =
            CsrfToken::from_extensions(&parts.extensions).await.map_err(|e| AppError::Internal(e.into()))?;
        Ok(CurrentUser { auth, session, csrf, live: is_live(&parts.headers) })
    }
}

/// The client's address, for throttling: the socket's peer (`ConnectInfo`, set by `main`),
/// or with `--trust-proxy` the last `X-Forwarded-For` entry (the one the proxy added).
/// `None` when unknown (the router called without `ConnectInfo`, as in tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        if state.trust_proxy {
            let forwarded = parts.headers.get_all("x-forwarded-for").iter().next_back();
            let last = forwarded.and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next());
            if let Some(ip) = last.and_then(|ip| ip.trim().parse().ok()) {
                return Ok(ClientAddr(Some(ip)));
            }
        }
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip())))
    }
}

/// 429 with `Retry-After` for `wait`.
pub(crate) fn too_many(mut res: Response, wait: Duration) -> Response {
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(v) = header::HeaderValue::from_str(&retry_after(wait)) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

pub(crate) fn wait_message(wait: Duration) -> String {
    format!("Too many failed attempts. Try again in {}.", minutes(wait))
}

/// "1 minute", "15 minutes": `wait` rounded up to whole minutes.
fn minutes(wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("{minutes} {unit}")
}

/// The session's user, if its login is live (not logged out: see `db::logins`) and under
/// the user's current epoch. A login that ended, or from before a password change, is
/// forgotten here: this is what makes a logout final in every session mode.
pub(crate) async fn current(session: &Session, state: &AppState) -> Result<Option<Auth>, AppError> {
    let Some(auth) = session.get::<Auth>(KEY_AUTH).await? else { return Ok(None) };
    match state.db.login_user(auth.user_id, &auth.login).await? {
        Some(user) if user.session_epoch == auth.epoch => Ok(Some(auth)),
        _ => {
            session.remove::<Auth>(KEY_AUTH).await?;
            Ok(None)
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

pub(crate) async fn login_page(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    axum::extract::Query(q): axum::extract::Query<NextQuery>,
) -> Result<Response, AppError> {
    if current(&session, &state).await?.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let next = local_path(q.next.as_deref());
    form_page(&session, &csrf, "login.html", StatusCode::OK, None, "", &next).await
}

pub(crate) async fn register_page(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
) -> Result<Response, AppError> {
    if current(&session, &state).await?.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    form_page(&session, &csrf, "register.html", StatusCode::OK, None, "", "/").await
}

/// The login or register form, again with `error` when a submission failed. Only ever
/// rendered by responses that keep the session id (a successful login redirects).
async fn form_page(
    session: &Session,
    csrf: &CsrfToken,
    template: &str,
    status: StatusCode,
    error: Option<&str>,
    name: &str,
    next: &str,
) -> Result<Response, AppError> {
    let page = page(session, csrf, None, false).await?;
    Ok((status, render(template, minijinja::context! { page, error, name, next })?).into_response())
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    name: String,
    password: String,
    remember: Option<String>,
    next: Option<String>,
}

/// Passwords never reach a log: the forms that carry one print it as `<redacted>`.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("name", &self.name)
            .field("password", &REDACTED)
            .field("remember", &self.remember)
            .field("next", &self.next)
            .finish()
    }
}

pub(crate) async fn login(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let name = form.name.trim();
    let next = local_path(form.next.as_deref());
    // Before any lookup or hash, for known and unknown names alike.
    if let Err(wait) = state.throttle.begin(name, addr, Instant::now()) {
        let msg = wait_message(wait);
        let page = form_page(&session, &csrf, "login.html", StatusCode::OK, Some(&msg), name, &next).await?;
        return Ok(too_many(page, wait));
    }
    let user = state.db.user_by_name(name).await?;
    // Verify against a dummy hash for unknown names, so timing does not tell which exist.
    let hash = user.as_ref().map_or_else(|| state.dummy_hash.to_string(), |u| u.password_hash.clone());
    let ok = passwords::verify(hash, form.password).await;
    let Some(user) = user.filter(|_| ok) else {
        let msg = Some("Wrong user name or password.");
        return form_page(&session, &csrf, "login.html", StatusCode::UNAUTHORIZED, msg, name, &next).await;
    };
    state.throttle.succeeded(name, addr);
    start_login(&state, &session, &headers, &user, form.remember.is_some()).await?;
    session.flash(Level::Success, format!("Welcome back, {}.", user.name)).await?;
    // A redirect, never a page: a token rendered in this response, which changes the
    // session id, would be refused.
    Ok(Redirect::to(&next).into_response())
}

/// Logs `user` in on this session: a clean session (see below) under a new id (so an id
/// planted before login is worthless, and so are CSRF tokens rendered before it), a login
/// row (which logout deletes), the user and device label for the devices page.
async fn start_login(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    user: &crate::db::User,
    remember: bool,
) -> Result<(), AppError> {
    // Whatever the session held belongs to no one who just proved who they are: another
    // user's login and data, or an earlier visitor's. It all goes, except the display
    // preferences, which are the browser's rather than a person's. A login it held ends.
    let prefs = session.get::<Prefs>(KEY_PREFS).await?;
    if let Some(old) = session.get::<Auth>(KEY_AUTH).await? {
        state.db.end_login(&old.login).await?;
        state.hub.close_login(&old.login);
    }
    session.clear().await?;
    if let Some(prefs) = prefs {
        session.insert(KEY_PREFS, prefs).await?;
    }
    session.cycle_id().await?;
    let auth =
        Auth { user_id: user.id, name: user.name.clone(), epoch: user.session_epoch, login: random_token() };
    // The login's absolute end (12 hours, or 30 days remembered) and the instant the
    // password was given, which revealing a vault secret checks.
    let times = LoginTimes::new(remember);
    state.db.add_login(user.id, &auth.login, times.ends_at).await?;
    session.insert(KEY_AUTH, &auth).await?;
    session.insert(KEY_LOGIN_TIMES, times).await?;
    session.set_user(user.id.to_string());
    session.set_label(device_label(headers));
    // None: the layer's default, a browser-session cookie.
    session.set_expiry(remember.then_some(Expiry::OnInactivity(REMEMBER_FOR)));
    Ok(())
}

#[derive(Deserialize)]
pub(crate) struct RegisterForm {
    name: String,
    password: String,
    confirm: String,
}

impl std::fmt::Debug for RegisterForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterForm")
            .field("name", &self.name)
            .field("password", &REDACTED)
            .field("confirm", &REDACTED)
            .finish()
    }
}

pub(crate) async fn register(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<RegisterForm>,
) -> Result<Response, AppError> {
    let name = form.name.trim();
    // Before the strength estimate and the hash, which are what a flood would cost us.
    if let Err(wait) = state.registrations.begin(name, addr, Instant::now()) {
        let msg = format!("Too many sign-ups from here. Try again in {}.", minutes(wait));
        let page = form_page(&session, &csrf, "register.html", StatusCode::OK, Some(&msg), name, "/").await?;
        return Ok(too_many(page, wait));
    }
    let problem = if !(3..=32).contains(&name.chars().count())
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        Some("User names are 3 to 32 letters, digits, '_', '.' or '-'.".to_owned())
    } else if let Some(msg) = password_problem(&form.password, &form.confirm) {
        Some(msg.to_owned())
    } else {
        passwords::weakness(form.password.clone(), vec![name.to_owned()]).await
    };
    if let Some(msg) = problem {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return form_page(&session, &csrf, "register.html", status, Some(&msg), name, "/").await;
    }
    let hash = state.password_cost.hash(form.password).await;
    let Some(user) = state.db.create_user(name, &hash).await? else {
        let msg = Some("That user name is taken.");
        return form_page(&session, &csrf, "register.html", StatusCode::CONFLICT, msg, name, "/").await;
    };
    start_login(&state, &session, &headers, &user, false).await?;
    session.flash(Level::Success, format!("Welcome, {}! Your account is ready.", user.name)).await?;
    Ok(Redirect::to("/").into_response())
}

fn password_problem(password: &str, confirm: &str) -> Option<&'static str> {
    if !(8..=128).contains(&password.chars().count()) {
        Some("Passwords are 8 to 128 characters.")
    } else if password != confirm {
        Some("The two passwords differ.")
    } else {
        None
    }
}

/// Ends the login (its row goes, so a copy of the cookie is dead too, in every mode),
/// destroys the session server-side and closes its sockets.
pub(crate) async fn logout(State(state): State<AppState>, session: Session) -> Result<Response, AppError> {
    if let Some(auth) = session.get::<Auth>(KEY_AUTH).await? {
        state.db.end_login(&auth.login).await?;
        // With a store, the flush alone ends the sockets' watch; in cookie mode nothing
        // hears it, so the hub closes them.
        state.hub.close_login(&auth.login);
    }
    session.flush().await?;
    // Starts a fresh, anonymous session that only carries this message.
    session.flash(Level::Success, "You are logged out.").await?;
    Ok(Redirect::to("/").into_response())
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    current: String,
    password: String,
    confirm: String,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordForm")
            .field("current", &REDACTED)
            .field("password", &REDACTED)
            .field("confirm", &REDACTED)
            .finish()
    }
}

/// Changes the password and ends every other session of the user: the epoch moves on
/// (which ends them in every mode), stores revoke their records, sockets close.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    CurrentUser { auth, session, .. }: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let user = state.db.user_by_id(auth.user_id).await?.ok_or(AppError::LoginRequired)?;
    // Counted with the login form's failures: a stolen session must not guess the password.
    if let Err(wait) = state.throttle.begin(&user.name, addr, Instant::now()) {
        let page = error_page(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", &wait_message(wait));
        return Ok(too_many(page, wait));
    }
    if !passwords::verify(user.password_hash, form.current).await {
        session.flash(Level::Error, "The current password is wrong; nothing was changed.").await?;
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/devices")]).into_response());
    }
    state.throttle.succeeded(&user.name, addr);
    let problem = match password_problem(&form.password, &form.confirm) {
        Some(msg) => Some(msg.to_owned()),
        None => passwords::weakness(form.password.clone(), vec![user.name.clone()]).await,
    };
    if let Some(msg) = problem {
        session.flash(Level::Error, format!("{msg} Nothing was changed.")).await?;
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/devices")]).into_response());
    }
    let hash = state.password_cost.hash(form.password).await;
    let epoch = state.db.set_password(user.id, &hash, &auth.login).await?;
    session.cycle_id().await?;
    session.insert(KEY_AUTH, &Auth { epoch, ..auth.clone() }).await?;
    // The password was just given: revealing a vault secret need not ask for it again.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let times = match session.get::<LoginTimes>(KEY_LOGIN_TIMES).await? {
        Some(t) => LoginTimes { authenticated_at: now, ..t },
        // A login from before the times were kept: it ends like a browser-session login.
        None => LoginTimes::new(false),
    };
    session.insert(KEY_LOGIN_TIMES, times).await?;
    super::devices::end_other_sessions(&state, &session, &auth).await?;
    session.flash(Level::Success, "Password changed. Your other devices were logged out.").await?;
    Ok(Redirect::to("/devices").into_response())
}

/// "Firefox on Linux" from a User-Agent; the raw header is not stored.
fn device_label(headers: &HeaderMap) -> String {
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let browser = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map_or("A browser", |(_, name)| name);
    let os = [("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows")]
        .iter()
        .chain(&[("Mac OS", "macOS"), ("Linux", "Linux")])
        .find(|(needle, _)| ua.contains(needle))
        .map_or("an unknown system", |(_, name)| name);
    format!("{browser} on {os}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_browser_and_system() {
        let mut h = HeaderMap::new();
        assert_eq!(device_label(&h), "A browser on an unknown system");
        h.insert(
            header::USER_AGENT,
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36".parse().unwrap(),
        );
        assert_eq!(device_label(&h), "Chrome on Linux");
        assert_eq!(password_problem("short", "short"), Some("Passwords are 8 to 128 characters."));
        assert_eq!(password_problem("longenough", "different"), Some("The two passwords differ."));
    }

    #[test]
    fn forms_print_no_password() {
        let login = LoginForm {
            name: "alice".into(),
            password: "pw-login-4711".into(),
            remember: None,
            next: Some("/vault".into()),
        };
        let register = RegisterForm {
            name: "alice".into(),
            password: "pw-reg-4711".into(),
            confirm: "pw-conf-4711".into(),
        };
        let change = PasswordForm {
            current: "pw-cur-4711".into(),
            password: "pw-new-4711".into(),
            confirm: "pw-new2-4711".into(),
        };
        let shown = format!("{login:?} {register:?} {change:?} {login:#?}");
        assert!(!shown.contains("4711"), "{shown}");
        assert!(shown.contains("alice") && shown.contains("/vault") && shown.contains(REDACTED), "{shown}");
    }
}
