//! A test client for app authors (feature `test-client`): drives a [`Router`](https://docs.rs/axum/latest/axum/struct.Router.html)
//! or any tower service in memory, keeps cookies like a browser, and opens the session
//! around requests, like Flask's `session_transaction()`.
//!
//! [`TestClient::session`] runs a closure on the session the client's cookie names,
//! through the same [`SessionLayer`](crate::SessionLayer) the app uses (its store or, in
//! client-side mode, its keys), and writes it back as a request would, cookie included. So a
//! test can log a user in without the login form, or check what a request stored.
//!
//! ```
//! use axum::{routing::get, Router};
//! use session_core::{test_client::TestClient, Session, SessionLayer};
//! use session_store_memory::MemoryStore;
//!
//! async fn whoami(session: Session) -> Result<String, session_core::Error> {
//!     session.insert("seen", true).await?;
//!     Ok(session.get::<String>("user").await?.unwrap_or_else(|| "nobody".into()))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), session_core::Error> {
//! let layer = SessionLayer::new(MemoryStore::default());
//! let app = Router::new().route("/", get(whoami)).layer(layer.clone());
//! let client = TestClient::new(app).with_session_layer(&layer);
//!
//! // Before a request: log in without the form.
//! client.session(|s| async move { s.insert("user", "ada").await }).await?;
//! assert_eq!(client.get("/").await.text(), "ada");
//! // After it: read what the handler stored.
//! let seen = client.session(|s| async move { s.get::<bool>("seen").await }).await?;
//! assert_eq!(seen, Some(true));
//! // A second browser with no cookies.
//! let stranger = TestClient::new(Router::new().route("/", get(whoami)).layer(layer.clone()));
//! assert_eq!(stranger.get("/").await.text(), "nobody");
//! # Ok(()) }
//! ```

mod client;
mod jar;
mod response;

pub use self::client::TestClient;
pub use self::jar::CookieJar;
pub use self::response::TestResponse;
