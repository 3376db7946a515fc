use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::BoxError;

/// Why [`CsrfLayer`](super::CsrfLayer) refused a request. Its `Display` is the short,
/// plain-text reason the response carries; it never holds a token, cookie or session id.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfError {
    /// `Sec-Fetch-Site: cross-site`: the browser says another site sent it.
    #[error("cross-site request refused")]
    CrossSite,
    /// An `Origin` header outside the allowed origins.
    #[error("request origin not allowed")]
    ForeignOrigin,
    /// No token in the header nor in the form field.
    #[error("CSRF token missing: send it in the form field or the header")]
    MissingToken,
    /// An anonymous visitor's token without the cookie it is bound to (cookies blocked,
    /// or the cookie was cleared since the form was rendered).
    #[error("CSRF cookie missing: allow cookies and reload the page")]
    MissingCookie,
    /// A token that is not one this app rendered for this visitor and session.
    #[error("CSRF token invalid")]
    InvalidToken,
    /// An anonymous visitor's token older than its lifetime: reload the form.
    #[error("CSRF token expired: reload the page")]
    ExpiredToken,
    /// A form body larger than the layer reads (413).
    #[error("request body over {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The request body could not be read (400); the cause is the source.
    #[error("could not read the request body")]
    Body(#[source] BoxError),
    /// The session failed to load (500); the cause is the source.
    #[error("session error")]
    Session(#[source] crate::Error),
}

impl CsrfError {
    /// The status the layer answers with: 403 for a refused request, 413 for a body over
    /// the limit, 400 for an unreadable body, 500 for a session failure.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(_) => StatusCode::BAD_REQUEST,
            Self::Session(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::FORBIDDEN,
        }
    }

    /// The response: [`status`](Self::status), the reason as `text/plain`, `no-store`.
    pub(crate) fn to_response<B: From<String>>(&self) -> Response<B> {
        let mut res = Response::new(B::from(self.to_string()));
        *res.status_mut() = self.status();
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}
