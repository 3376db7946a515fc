//! The tower middleware: [`SessionLayer`], [`SessionService`] and [`ResponseFuture`].
//!
//! For each request the service reads the session cookie (strictly: a malformed, oversized,
//! duplicated or forged cookie is no session), puts a lazy [`Session`](crate::Session) into
//! the request's extensions, and after the inner service answers writes back only what
//! changed:
//!
//! | the handler...                      | store calls               | `Set-Cookie`           |
//! |-------------------------------------|---------------------------|------------------------|
//! | never touched the session           | none                      | none                   |
//! | only read it                        | one load (+ a throttled refresh patch) | only on refresh |
//! | changed keys                        | load, one patch of those keys | when Max-Age moves |
//! | inserted into a new session         | create                    | new id                 |
//! | called `flush` / emptied it         | delete                    | removal                |
//! | called `cycle_id`                   | create new, delete old    | new id                 |
//!
//! A store failure becomes a 500 (see [`SessionLayer::with_error_status`]); nothing is
//! saved when the inner service answered 5xx. Responses that set or remove the cookie get
//! `Cache-Control: private, no-store` (unless the app set a `Cache-Control`) and
//! `Vary: Cookie`.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use session_core::{Session, SessionLayer};
//! use session_store_memory::MemoryStore;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new()
//!     .layer(SessionLayer::new(MemoryStore::default()).with_secure(false))
//!     .service(service_fn(|req: Request<String>| async move {
//!         let session = req.extensions().get::<Session>().unwrap().clone();
//!         session.insert("hello", "world").await.unwrap();
//!         Ok::<_, Infallible>(Response::new(String::new()))
//!     }));
//! let res = svc.oneshot(Request::new(String::new())).await.unwrap();
//! assert!(res.headers().contains_key("set-cookie"));
//! # }
//! ```

mod future;
#[allow(clippy::module_inception)]
mod layer;
mod service;

pub use self::future::ResponseFuture;
#[cfg(feature = "csrf")]
pub(crate) use self::future::{keep_private, send_cookie};
pub use self::layer::SessionLayer;
pub use self::service::SessionService;
