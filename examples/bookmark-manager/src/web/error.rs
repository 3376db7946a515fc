//! What a handler can answer instead of its page: a clear status and message, never a 500
//! for bad input. Internal failures are logged (without ids, cookies or secrets) and shown
//! as a generic 500.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::templates;

/// A handler's failure.
#[derive(Debug)]
pub(crate) enum AppError {
    /// No such item, or not the user's: the same answer, so ids of others leak nothing.
    NotFound,
    /// The page needs a logged-in user.
    LoginRequired,
    /// The CSRF layer refused the request: no token, a wrong or expired one, or another
    /// site's origin.
    Csrf,
    /// The request body is over the limit.
    TooLarge,
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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            AppError::LoginRequired => return Redirect::to("/login").into_response(),
            AppError::NotFound => {
                (StatusCode::NOT_FOUND, "Not found", "There is nothing here, or it is not yours.".to_owned())
            }
            AppError::Csrf => (
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form was not sent by this site, or it has expired. Reload the page and try again."
                    .to_owned(),
            ),
            AppError::TooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "Too large", "That request is too large.".to_owned())
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

/// A standalone error page (no user context: it may be rendered before any is known).
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page =
        minijinja::context! { theme => "light", flashes => Vec::<()>::new(), csrf => "", csrf_field => "" };
    let ctx = minijinja::context! { page, title, message, status => status.as_u16() };
    match templates::render("error.html", ctx) {
        Ok(html) => (status, html).into_response(),
        // The templates are compiled in and tested; this is only a last resort.
        Err(_) => (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.to_owned())
            .into_response(),
    }
}
