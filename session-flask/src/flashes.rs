//! Flask's flash messages (`flask.flash`, `get_flashed_messages`) from Rust.
//!
//! Flask keeps them under `_flashes` as a list of `(category, message)` tuples. That is not
//! the shape of session-core's [`flash`](session_core::flash) module (which stores levels
//! and ids under the same key), so with a Flask cookie use these functions instead of
//! `Session::flash`/`take_flashes`: what one app flashes, the other shows.
//!
//! ```
//! # async fn handler(session: session_core::Session) -> Result<(), session_core::Error> {
//! session_flask::flash(&session, "error", "Wrong password").await?;
//! // ...on the next page, in Rust or in Flask:
//! for (category, message) in session_flask::take_flashes(&session).await? {
//!     println!("{category}: {message}");
//! }
//! # Ok(()) }
//! ```

use session_core::{Error, Session};

use crate::value::FlaskValue;

/// The key Flask keeps flash messages under.
pub const FLASHES_KEY: &str = "_flashes";

/// Adds a message, as `flask.flash(message, category)` does (Flask's default category is
/// `"message"`).
///
/// # Errors
///
/// As [`Session::update`]: [`Error::Decode`] if `_flashes` holds something that is not a
/// list, [`Error::CookieTooLarge`] if the cookie would get too large.
pub async fn flash(session: &Session, category: &str, message: &str) -> Result<(), Error> {
    let flash = FlaskValue::Tuple(vec![category.into(), message.into()]);
    session.update::<Vec<FlaskValue>, _>(FLASHES_KEY, move |list| list.push(flash)).await
}

/// Removes and returns the waiting messages as `(category, message)`, as
/// `get_flashed_messages(with_categories=True)` does. A message that is not text (Markup
/// is text) is given in Python notation.
///
/// # Errors
///
/// As [`Session::remove`]: [`Error::Decode`] if `_flashes` holds something that is not a
/// list.
pub async fn take_flashes(session: &Session) -> Result<Vec<(String, String)>, Error> {
    let list = session.remove::<Vec<FlaskValue>>(FLASHES_KEY).await?.unwrap_or_default();
    let text = |v: &FlaskValue| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    Ok(list
        .iter()
        .map(|f| match f.as_slice() {
            Some([category, message]) => (text(category), text(message)),
            _ => ("message".to_owned(), text(f)),
        })
        .collect())
}
