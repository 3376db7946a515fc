//! CSRF protection for every state-changing request: the session holds a random token;
//! forms send it as the `csrf` field, scripts as the `x-csrf-token` header. A request
//! without it, or with a wrong one, is refused with 403 before any handler runs.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use session_core::Session;
use subtle::ConstantTimeEq;

use super::error::AppError;
use super::page::KEY_CSRF;

/// The largest request body the app reads (a 64 KiB note, percent-encoded, fits).
pub(crate) const MAX_BODY: usize = 256 * 1024;

/// The header scripts send the token in.
pub(crate) const HEADER: &str = "x-csrf-token";

/// The middleware: safe methods pass; others need the session's token.
pub(crate) async fn guard(session: Session, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    // The body is read here (bounded) because the token may be in it; the handler gets
    // the same bytes back.
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return AppError::TooLarge.into_response();
    };
    let sent = parts
        .headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| is_form(&parts.headers).then(|| form_field(&bytes, "csrf")).flatten());
    let expected = match session.get::<String>(KEY_CSRF).await {
        Ok(token) => token,
        Err(err) => return AppError::from(err).into_response(),
    };
    match (sent, expected) {
        (Some(sent), Some(expected)) if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) => {
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        _ => AppError::Csrf.into_response(),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_form_field() {
        assert_eq!(form_field(b"a=1&csrf=x%2By&csrf=z", "csrf").as_deref(), Some("x+y"));
        assert_eq!(form_field(b"a=1", "csrf"), None);
    }
}
