//! The token a handler puts in its forms: [`CsrfToken`], an axum extractor with feature
//! `axum`, or [`CsrfToken::from_extensions`] from any tower service.

use std::fmt;

use http::Extensions;

use super::request::RequestCsrf;
use crate::Session;

/// A freshly masked CSRF token for this visitor, to put in a form's hidden field (named
/// [`field_name`](Self::field_name)) or send in the header. Every extraction gives a
/// different text; all of them check. Getting one for a visitor without a session stores
/// nothing: the response sets the anonymous cookie the token is bound to.
///
/// A token rendered before [`Session::cycle_id`] (at login) stops working with the new id:
/// after a login, redirect, and render forms in the next request.
///
/// `Debug` does not print the token.
#[derive(Clone)]
pub struct CsrfToken {
    token: String,
    field: String,
}

impl CsrfToken {
    /// A token for the request whose extensions these are (the request must have passed
    /// through [`CsrfLayer`](super::CsrfLayer)).
    ///
    /// # Errors
    ///
    /// [`CsrfRejection::MissingLayer`] without the layer, [`CsrfRejection::LayerOrder`]
    /// when the session layer is inside the CSRF layer, [`CsrfRejection::Session`] when
    /// the session failed to load.
    pub async fn from_extensions(extensions: &Extensions) -> Result<Self, CsrfRejection> {
        let csrf = extensions.get::<RequestCsrf>().ok_or(CsrfRejection::MissingLayer)?;
        let session = extensions.get::<Session>();
        if session.is_some() && !csrf.session_seen() {
            return Err(CsrfRejection::LayerOrder);
        }
        let token = csrf.render(session).await.map_err(CsrfRejection::Session)?;
        Ok(Self { token, field: csrf.config().field.clone() })
    }

    /// The token's text (URL- and HTML-safe: base64url).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The form field the layer reads it from (default `csrf_token`).
    #[must_use]
    pub fn field_name(&self) -> &str {
        &self.field
    }
}

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsrfToken").field("field", &self.field).finish_non_exhaustive()
    }
}

/// Why a [`CsrfToken`] could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfRejection {
    /// The route is not behind a [`CsrfLayer`](super::CsrfLayer).
    #[error("no CSRF layer in this request: add `.layer(CsrfLayer::new(keys))` inside the SessionLayer")]
    MissingLayer,
    /// The [`SessionLayer`](crate::SessionLayer) runs inside the CSRF layer, which then
    /// cannot see the session its tokens must be bound to.
    #[error("the SessionLayer must wrap the CsrfLayer: add the CsrfLayer first, then the SessionLayer")]
    LayerOrder,
    /// The session failed to load; the cause is the source.
    #[error("session error")]
    Session(#[source] crate::Error),
}

#[cfg(feature = "axum")]
mod axum {
    use axum_core::extract::FromRequestParts;
    use axum_core::response::{IntoResponse, Response};
    use http::request::Parts;
    use http::StatusCode;

    use super::{CsrfRejection, CsrfToken};
    use crate::csrf::CsrfError;

    impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
        type Rejection = CsrfRejection;

        async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
            Self::from_extensions(&parts.extensions).await
        }
    }

    /// A 500: each is a server-side fault. The message names what is missing; a session
    /// failure says only "session error" (the cause goes to the log).
    impl IntoResponse for CsrfRejection {
        fn into_response(self) -> Response {
            if let Self::Session(err) = &self {
                tracing::error!(error = %err, source = ?std::error::Error::source(err), "session failed while rendering a CSRF token");
            }
            (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
        }
    }

    /// The layer's own response: its status and plain-text reason.
    impl IntoResponse for CsrfError {
        fn into_response(self) -> Response {
            self.to_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_token() {
        let token = CsrfToken { token: "s3cr3t-token".into(), field: "csrf_token".into() };
        assert!(!format!("{token:?}").contains("s3cr3t"));
        assert_eq!(token.as_str(), "s3cr3t-token");
    }

    #[tokio::test]
    async fn without_the_layer_the_rejection_says_so() {
        let err = CsrfToken::from_extensions(&Extensions::new()).await.unwrap_err();
        assert!(matches!(err, CsrfRejection::MissingLayer));
        assert!(err.to_string().contains("CsrfLayer"));
    }
}
