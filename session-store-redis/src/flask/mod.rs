//! Sessions shared with a Flask app that uses Flask-Session 0.8 on the same Redis
//! (feature `flask`).
//!
//! [`FlaskSessionStore`] reads and writes Flask-Session's own records, so a request served
//! by Flask and the next one served by Rust see one session: log in on Flask and Rust sees
//! the user; Rust changes a value and Flask reads it with the same Python type; a logout on
//! either side ends the session for both.
//!
//! TODO(fredis): full docs.

mod cycle;
mod datetime;
mod ids;
mod keys;
mod meta;
mod scripts;
mod store;
mod wire;

pub use self::datetime::FlaskDateTime;
pub use self::ids::{flask_session_layer, FlaskIdError, FlaskSessionIds, FLASK_DEFAULT_LIFETIME};
pub use self::store::FlaskSessionStore;
