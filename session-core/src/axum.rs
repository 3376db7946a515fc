//! `Session` as an axum extractor (feature `axum`).
//!
//! ```
//! use axum::{routing::get, Router};
//! use session_core::{Session, SessionLayer};
//! use session_store_memory::MemoryStore;
//!
//! async fn handler(session: Session) -> String {
//!     let name: Option<String> = session.get("name").await.ok().flatten();
//!     format!("hello {}", name.as_deref().unwrap_or("stranger"))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(handler))
//!     .layer(SessionLayer::new(MemoryStore::default()));
//! ```

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::Session;

/// Why a [`Session`] could not be extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not behind a [`SessionLayer`](crate::SessionLayer).
    #[error("no session in this request: add `.layer(SessionLayer::new(store))` to the router that serves this route")]
    MissingLayer,
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// Lets handlers use `?` on session operations, with a generic body (the details go to the
/// log, never to the client). A store failure ([`Error::Store`](crate::Error::Store),
/// [`Error::FailedEarlier`](crate::Error::FailedEarlier),
/// [`Error::ConflictRetriesExhausted`](crate::Error::ConflictRetriesExhausted)) answers the
/// layer's error status, as a failed load or save does
/// ([`SessionLayer::with_error_status`](crate::SessionLayer::with_error_status), default
/// 500); any other error is a bug of the app's (a value of the wrong type, one too large
/// for a cookie) and answers 500.
impl IntoResponse for crate::Error {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, source = ?std::error::Error::source(&self), "session operation failed");
        let store = matches!(self, Self::Store(_) | Self::FailedEarlier | Self::ConflictRetriesExhausted);
        let mut res = (StatusCode::INTERNAL_SERVER_ERROR, "session error").into_response();
        if store {
            res.extensions_mut().insert(crate::error::StoreFailure);
        }
        res
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Session>().cloned().ok_or(SessionRejection::MissingLayer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_layer_is_a_clear_500() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let err = Session::from_request_parts(&mut parts, &()).await.unwrap_err();
        assert_eq!(err, SessionRejection::MissingLayer);
        assert!(err.to_string().contains("SessionLayer"));
        assert_eq!(err.into_response().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
