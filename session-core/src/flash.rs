//! Flash messages: shown once, on the next page the user sees.
//!
//! [`Session::flash`] adds a message with a typed [`Level`]; [`Session::take_flashes`]
//! returns the waiting messages and removes them. They live in the session under
//! [`FLASH_KEY`], so they survive a redirect (and any number of them) until taken, on every
//! store and in client-side mode.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Session};

/// The session key flash messages are kept under (Flask's name). Apps should not use it.
pub const FLASH_KEY: &str = "_flashes";

/// How a [`Flash`] message should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Neutral news.
    Info,
    /// Something the user did worked.
    Success,
    /// Something worked, but with a caveat.
    Warning,
    /// Something failed.
    Error,
}

impl Level {
    /// The level's lower-case name (`"info"`, `"success"`, `"warning"`, `"error"`), e.g.
    /// for a CSS class.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One flash message, as [`Session::take_flashes`] returns it. Serializes as
/// `{"level": "...", "message": "...", "id": ...}`, so it can go straight into a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    level: Level,
    message: String,
    /// Tells two equal messages apart, so a take removes exactly the ones it read.
    id: u64,
}

impl Flash {
    /// How the message should look.
    #[must_use]
    pub fn level(&self) -> Level {
        self.level
    }

    /// The text.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Session {
    /// Adds a message for the user to see on the next page that calls
    /// [`take_flashes`](Session::take_flashes): typically the page a POST redirects to.
    ///
    /// It is appended with an exact in-place [`update`](Session::update), so flashes of
    /// concurrent requests are all kept. Messages stay in the session until taken: they
    /// survive any number of redirects, and count towards the cookie size in client-side mode.
    ///
    /// ```
    /// use axum::{response::Redirect, routing::{get, post}, Router};
    /// use session_core::{flash::Level, Session, SessionLayer};
    /// use session_store_memory::MemoryStore;
    ///
    /// async fn save(session: Session) -> Result<Redirect, session_core::Error> {
    ///     session.flash(Level::Success, "Preferences saved.").await?;
    ///     Ok(Redirect::to("/"))
    /// }
    ///
    /// async fn home(session: Session) -> Result<String, session_core::Error> {
    ///     let flashes = session.take_flashes().await?;
    ///     Ok(flashes.iter().map(|f| format!("[{}] {}\n", f.level(), f.message())).collect())
    /// }
    ///
    /// let app: Router = Router::new()
    ///     .route("/prefs", post(save))
    ///     .route("/", get(home))
    ///     .layer(SessionLayer::new(MemoryStore::default()));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`update`](Session::update): [`Error::Store`] if loading failed, and in
    /// client-side mode [`Error::CookieTooLarge`] when the message no longer fits.
    pub async fn flash(&self, level: Level, message: impl Into<String>) -> Result<(), Error> {
        let flash = Flash { level, message: message.into(), id: flash_id() };
        self.update(FLASH_KEY, move |list: &mut Vec<Flash>| list.push(flash)).await
    }

    /// The flash messages waiting for this session, oldest first, and removes them.
    ///
    /// Only the messages returned are removed (with an exact in-place
    /// [`update`](Session::update)), so a message a concurrent request adds meanwhile waits
    /// for the next take. The key stays (an empty list) rather than being removed, so taking
    /// never empties, and thereby deletes, a session that a concurrent flash is being written
    /// to. Two requests taking at the same instant may both see a message; none is lost.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading failed, [`Error::Decode`] if the key holds something else.
    pub async fn take_flashes(&self) -> Result<Vec<Flash>, Error> {
        let flashes: Vec<Flash> = self.get(FLASH_KEY).await?.unwrap_or_default();
        if !flashes.is_empty() {
            let taken: Vec<u64> = flashes.iter().map(|f| f.id).collect();
            self.update(FLASH_KEY, move |list: &mut Vec<Flash>| list.retain(|f| !taken.contains(&f.id)))
                .await?;
        }
        Ok(flashes)
    }
}

/// A random tag: unique among the few messages a session holds at once.
fn flash_id() -> u64 {
    let mut bytes = [0u8; 8];
    // Uniqueness, not secrecy: without OS randomness the clock's nanoseconds will do.
    match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        // The low bits are the ones that differ: the truncation is the point.
        #[allow(clippy::cast_possible_truncation)]
        Err(_) => crate::store::now().unix_timestamp_nanos().unsigned_abs() as u64,
    }
}
