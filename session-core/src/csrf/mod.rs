//! CSRF protection (feature `csrf`): [`CsrfLayer`] refuses state-changing requests that do
//! not prove they come from your pages, and [`CsrfToken`] gives handlers the token to put
//! in their forms.
//!
//! Every request whose method is not GET, HEAD, OPTIONS or TRACE is checked, in order:
//!
//! 1. **Fetch Metadata**: `Sec-Fetch-Site: cross-site` is refused (`same-origin`,
//!    `same-site` and `none` go on to the next checks).
//! 2. **Origin**: a request carrying an `Origin` header must come from an origin you
//!    allowed with [`CsrfLayer::with_allowed_origin`]. None is allowed by default, and
//!    browsers send `Origin` with every POST: list the origins your pages are served from.
//! 3. **The token**, from the `x-csrf-token` header or else the `csrf_token` field of an
//!    `application/x-www-form-urlencoded` or `multipart/form-data` body, compared in constant
//!    time. To find the field the body is read (at most 64 KiB, else 413) and handed on
//!    unchanged, byte for byte.
//!
//! A refusal is a 403 with a short plain-text reason ([`CsrfError`]); nothing about the
//! token, cookie or session is logged.
//!
//! ## Tokens
//!
//! Each rendered token is a fresh random mask followed by the mask XOR the secret, so no
//! two renders are alike (a compressed page never repeats the secret: BREACH). The secret:
//!
//! - for a visitor **with a session**: server-side, an HMAC of the session's record digest,
//!   so nothing is stored and a new id ([`Session::cycle_id`](crate::Session::cycle_id), at
//!   login) means a new secret; client-side, a random value kept in the session (under
//!   `session_core.csrf`), which `cycle_id` replaces. A token rendered before the login, or
//!   for another session, is refused.
//! - for a visitor **without a session**: a signed, short-lived (2 hours by default) token
//!   bound to a random nonce in a cookie of its own (`__Host-csrf`: Secure, HttpOnly,
//!   SameSite=Lax, like the session cookie). Rendering a form to such a visitor writes
//!   nothing to the session store. When a session begins beside that cookie without an id
//!   change (say, the page that rendered the form also stored a preference), it keeps the
//!   nonce (under `session_core.csrf_anon`) so that form still works; a `cycle_id` forgets it
//!   and removes the cookie, so tokens from before a login never work after it.
//!
//! ## Layer order
//!
//! The [`SessionLayer`](crate::SessionLayer) goes **outside** the CSRF layer: the check
//! needs the session to know what a token is bound to, and what the CSRF layer leaves in the
//! session on the way out must reach the session's write-back. With axum's
//! `Router::layer`, the layer added last is the outermost, so add the CSRF layer first:
//!
//! ```
//! use axum::{routing::get, Router};
//! use http::{header, Request, StatusCode};
//! use http_body_util::BodyExt;
//! use session_core::csrf::{CsrfLayer, CsrfToken};
//! use session_core::{Key, KeyRing, SessionLayer};
//! use session_store_memory::MemoryStore;
//! use tower::ServiceExt;
//!
//! async fn page(token: CsrfToken) -> String {
//!     format!(r#"<form method="post"><input type="hidden" name="{}" value="{}">"#,
//!         token.field_name(), token.as_str())
//! }
//!
//! // The handler gets the whole body, the token field included.
//! async fn save(body: String) -> String {
//!     format!("{} bytes", body.len())
//! }
//!
//! fn app() -> Router {
//!     let keys = KeyRing::new(Key::generate());
//!     Router::new()
//!         .route("/", get(page).post(save))
//!         .layer(CsrfLayer::new(keys).with_allowed_origin("https://app.example"))
//!         .layer(SessionLayer::new(MemoryStore::default()))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let app = app();
//! let res = app.clone().oneshot(Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
//! // A visitor without a session: the token is bound to the cookie the response sets.
//! let cookie = res.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
//! let html = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
//! let token = html.split("value=\"").nth(1).unwrap().split('"').next().unwrap();
//!
//! let post = |body: String| {
//!     Request::post("/")
//!         .header(header::COOKIE, &cookie)
//!         .header(header::ORIGIN, "https://app.example")
//!         .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
//!         .body(axum::body::Body::from(body))
//!         .unwrap()
//! };
//! let ok = app.clone().oneshot(post(format!("csrf_token={token}&note=hi"))).await.unwrap();
//! assert_eq!(ok.status(), StatusCode::OK);
//! let refused = app.oneshot(post("note=hi".into())).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::FORBIDDEN);
//! # }
//! ```
//!
//! Scripts send the token in the header instead (render it into a `<meta>` tag):
//!
//! ```
//! use http::HeaderName;
//! use session_core::csrf::CsrfLayer;
//! use session_core::{Key, KeyRing};
//!
//! let layer = CsrfLayer::new(KeyRing::new(Key::generate()))
//!     .with_allowed_origin("https://app.example")
//!     .with_allowed_origin("https://www.app.example")
//!     .with_header_name(HeaderName::from_static("x-xsrf-token"))
//!     .with_max_body(16 * 1024)
//!     .with_anonymous_lifetime(time::Duration::minutes(30));
//! # let _ = layer;
//! ```

mod body;
mod check;
mod error;
mod extract;
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod request;
mod service;
mod token;

pub use self::body::RequestBody;
pub use self::error::CsrfError;
pub use self::extract::{CsrfRejection, CsrfToken};
pub use self::future::ResponseFuture;
pub use self::layer::CsrfLayer;
pub use self::service::CsrfService;
