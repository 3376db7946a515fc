//! What a handler can answer instead of its page: a clear status and message, never a 500
//! for bad input. Internal failures are logged (without ids, cookies or secrets) and shown
//! as a generic 500.
//!
//! Every error page, whoever made it (a handler's [`AppError`], an axum rejection such as
//! an unparsable id or a wrong method, the CSRF layer's refusal), is rendered by
//! [`error_pages`] in the normal layout: the user's menu and theme, a working logout form.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use session_core::csrf::CsrfToken;
use session_core::flash::{Flash, Level, FLASH_KEY};
use session_core::Session;
use tower::{Layer as _, ServiceExt as _};

use super::page::{is_live, local_path, page};
use super::templates;
use crate::AppState;

/// A handler's failure.
#[derive(Debug)]
pub(crate) enum AppError {
    /// No such item, or not the user's: the same answer, so ids of others leak nothing.
    NotFound,
    /// The page needs a logged-in user.
    LoginRequired,
    /// Input that cannot be used; the message says why.
    BadRequest(String),
    /// The store or database failed.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        AppError::Internal(err.into())
    }
}

impl From<session_core::Error> for AppError {
    fn from(err: session_core::Error) -> Self {
        match err {
            // Only in cookie mode: the user put more in the session than a cookie holds.
            session_core::Error::CookieTooLarge { .. } => AppError::BadRequest(
                "This session is full: in cookie mode the whole session must fit in a 4 KB cookie. \
                 Remove something first."
                    .into(),
            ),
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<minijinja::Error> for AppError {
    fn from(err: minijinja::Error) -> Self {
        AppError::Internal(err.into())
    }
}

/// What an error page says. A response carrying it is rendered by [`error_pages`].
#[derive(Debug, Clone)]
pub(crate) struct ErrorPage {
    title: &'static str,
    message: String,
    /// The CSRF layer refused a form: the page explains and offers the way back.
    refused: bool,
}

/// A redirect to the login page, which [`error_pages`] completes with `next`.
#[derive(Debug, Clone, Copy)]
struct LoginRedirect;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            AppError::LoginRequired => {
                let mut res = Redirect::to("/login").into_response();
                res.extensions_mut().insert(LoginRedirect);
                return res;
            }
            AppError::NotFound => {
                (StatusCode::NOT_FOUND, "Not found", "There is nothing here, or it is not yours.".to_owned())
            }
            AppError::BadRequest(msg) => (StatusCode::BAD_REQUEST, "Cannot do that", msg),
            AppError::Internal(err) => {
                let source = err.source().map(ToString::to_string);
                tracing::error!(error = %err, source = ?source, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not finish this request. Try again in a moment.".to_owned(),
                )
            }
        };
        error_page(status, title, &message)
    }
}

/// An error page with `status`, rendered in the layout by [`error_pages`]. The body is the
/// plain message, in case the page cannot be rendered.
pub(crate) fn error_page(status: StatusCode, title: &'static str, message: &str) -> Response {
    let mut res =
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.to_owned()).into_response();
    res.extensions_mut().insert(ErrorPage { title, message: message.to_owned(), refused: false });
    res
}

/// The page an answer without one of its own gets: axum's rejections (plain text, or an
/// empty 405) and the CSRF layer's refusals. `None` for answers that are fine as they are:
/// successes, the app's own pages, JSON, the socket's refusals.
fn page_for(res: &Response, path: &str) -> Option<ErrorPage> {
    if let Some(page) = res.extensions().get::<ErrorPage>() {
        return Some(page.clone());
    }
    let status = res.status();
    let content_type = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if status.as_u16() < 400
        || content_type.starts_with("text/html")
        || content_type.starts_with("application/json")
        || path == "/ws"
    {
        return None;
    }
    let (title, message) = match status {
        // The CSRF layer's refusal (the socket's own 403 is left alone above).
        StatusCode::FORBIDDEN => {
            let title = "This form was not accepted";
            return Some(ErrorPage { title, message: String::new(), refused: true });
        }
        StatusCode::NOT_FOUND => ("Not found", "There is nothing here, or it is not yours."),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Not here",
            "This address is only for the buttons and forms of the app's pages; opening it directly does nothing.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("Too large", "That request is too large."),
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("Cannot do that", "The form was incomplete or could not be read. Go back and try again.")
        }
        s if s.is_server_error() => {
            ("Something went wrong", "The server could not finish this request. Try again in a moment.")
        }
        _ => (
            "Cannot do that",
            "This address has something the app cannot read, such as a page or item number that is not a number.",
        ),
    };
    Some(ErrorPage { title, message: message.to_owned(), refused: false })
}

/// Renders every error page in the layout, and completes login redirects with `next`.
/// Sits inside the session layer and outside the CSRF layer (whose refusals it renders):
/// the page's own token comes from the CSRF layer, asked again for a GET of this session.
pub(crate) async fn error_pages(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let session = req.extensions().get::<Session>().cloned();
    let headers = req.headers().clone();
    let method = req.method().clone();
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    if res.extensions().get::<LoginRedirect>().is_some() {
        // Not for a live update: the page script follows its redirect in the background,
        // and the login page it fetches would take the message meant for the user.
        if let Some(session) = session.as_ref().filter(|_| !is_live(&headers)) {
            if let Err(err) = explain_ended(&state, session, &headers).await {
                tracing::error!(error = %err, "could not flash why the login is needed");
            }
        }
        // Back to this page after the login: a GET's own address, a form's page.
        let back = if method == Method::GET { local_path(Some(&target)) } else { referer_path(&headers) };
        if back != "/" {
            let query =
                url::form_urlencoded::Serializer::new(String::new()).append_pair("next", &back).finish();
            if let Ok(v) = header::HeaderValue::from_str(&format!("/login?{query}")) {
                res.headers_mut().insert(header::LOCATION, v);
            }
        }
        return res;
    }
    let (Some(page), Some(session)) = (page_for(&res, &path), session) else { return res };
    let back = referer_path(&headers);
    let live = is_live(&headers);
    let csrf = state.csrf.clone();
    let status = res.status();
    let shown = session.clone();
    let render = tower::service_fn(move |req: Request<session_core::csrf::RequestBody<Body>>| {
        let (state, session, page, back) = (state.clone(), shown.clone(), page.clone(), back.clone());
        async move {
            let res = match render(&state, &session, req.extensions(), &page, &back, live).await {
                Ok(html) => (status, html).into_response(),
                Err(err) => {
                    tracing::error!(error = ?err, "the error page could not be rendered in the layout");
                    bare_page(status, &page)
                }
            };
            Ok::<_, std::convert::Infallible>(res)
        }
    });
    // A GET of this session and cookies: the CSRF layer checks nothing and hands out a token.
    let mut get = Request::new(Body::empty());
    *get.headers_mut() = headers;
    get.headers_mut().remove(header::CONTENT_LENGTH);
    get.extensions_mut().insert(session);
    let Ok(rendered) = csrf.layer(render).oneshot(get).await;
    merge(res, rendered)
}

/// Tells a browser whose login is gone why it lands on the login page: it sent a session
/// cookie, but the session it names is gone from the store (logged out in another tab,
/// logged out from another device, expired, the server restarted with the memory store),
/// or it still holds the traces of a login the app ended (cookie mode). Not when another
/// notice already explains (an expired login).
async fn explain_ended(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
) -> Result<(), session_core::Error> {
    let prefix = format!("{}=", state.cookie_name);
    let sent = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(';').any(|c| c.trim_start().starts_with(&prefix)));
    let waiting: Vec<Flash> = session.get(FLASH_KEY).await?.unwrap_or_default();
    if !sent || waiting.iter().any(|f| f.level() == Level::Info) {
        return Ok(());
    }
    let gone = state.store != crate::StoreKind::Cookie && session.id().is_none();
    if gone || session.contains(super::page::KEY_LOGIN_TIMES).await? {
        let text = "Your session has ended: you logged out in another tab, it was logged out from \
                    another device, it expired, or the server restarted. Log in again to go on.";
        session.flash(Level::Info, text).await?;
    }
    Ok(())
}

/// `original`'s status and headers (`Allow`, `Retry-After`, cookies) with `rendered`'s
/// body and its cookies (an anonymous visitor's CSRF cookie), which come last and so win.
fn merge(original: Response, rendered: Response) -> Response {
    let (mut parts, _) = original.into_parts();
    let (rendered, body) = rendered.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &rendered.headers {
        if name == header::SET_COOKIE {
            parts.headers.append(name, value.clone());
        } else {
            parts.headers.insert(name, value.clone());
        }
    }
    Response::from_parts(parts, body)
}

/// The error page's HTML, with the user's menu and theme and a fresh token for its forms.
async fn render(
    state: &AppState,
    session: &Session,
    extensions: &axum::http::Extensions,
    error: &ErrorPage,
    back: &str,
    live: bool,
) -> Result<axum::response::Html<String>, AppError> {
    let csrf = CsrfToken::from_extensions(extensions).await.map_err(|e| AppError::Internal(e.into()))?;
    let auth = super::auth::current(session, state).await?;
    let page = page(session, &csrf, auth.as_ref(), live).await?;
    let login = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", back).finish();
    let ctx = minijinja::context! {
        page, back, title => error.title, message => error.message, refused => error.refused,
        login => format!("/login?{login}"),
    };
    Ok(templates::render("error.html", ctx)?)
}

/// The last resort when even the error page cannot be rendered with the layout (the
/// session failed): the standalone page, light theme, no user.
fn bare_page(status: StatusCode, error: &ErrorPage) -> Response {
    let page =
        minijinja::context! { theme => "system", flashes => Vec::<()>::new(), csrf => "", csrf_field => "" };
    let ctx = minijinja::context! { page, title => error.title, message => error.message, refused => false };
    match templates::render("error.html", ctx) {
        Ok(html) => (status, html).into_response(),
        Err(_) => (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], error.message.clone())
            .into_response(),
    }
}

/// The path of the page a form was sent from (the `Referer`, which the app's
/// `Referrer-Policy: same-origin` sends only for its own pages), else `/`.
pub(crate) fn referer_path(headers: &HeaderMap) -> String {
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok());
    let path = referer.and_then(|r| url::Url::parse(r).ok()).map(|u| match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    });
    local_path(path.as_deref())
}
