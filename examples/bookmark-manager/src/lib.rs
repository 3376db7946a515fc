//! The example app of the session workspace: a multi-user bookmark manager with notes and a
//! password vault, live sync between a user's browsers over WebSockets, and pages that show
//! what the session layer does.
//!
//! `cargo run -p bookmark-manager` serves it on <http://127.0.0.1:3000>; `--help` lists the
//! flags. [`app`] builds the router from an [`AppState`]; [`setup::open`] makes that state
//! from [`Options`] the way `main` does, so tests drive the same app without a socket.
//!
//! | module | holds |
//! |---|---|
//! | `cli` | flags |
//! | `setup`, `keys` | data dir, key files, the session store chosen by flag |
//! | `db` | the app's SQLite tables and queries, each scoped to its owner |
//! | `web` | the router (inside session-core's session and CSRF layers), the login extractor, handlers, templates, static assets |
//! | `throttle` | counts failed password checks per account and address |
//! | `hub` | the WebSocket hub: per-user change events, closing the sockets of logins the app ends |

mod cli;
mod db;
mod hub;
mod keys;
mod passwords;
pub mod setup;
mod state;
mod throttle;
mod web;

pub use crate::cli::{Options, StoreKind, USAGE};
pub use crate::db::Db;
pub use crate::passwords::PasswordCost;
pub use crate::state::AppState;
pub use crate::web::app;
