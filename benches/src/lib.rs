//! Shared fixtures for the criterion benches: a realistic session and its parts.
//!
//! Run the benches with `cargo bench -p benches`; figures and the machine they came from
//! are in `docs/BENCHMARKS.md`.

use serde::{Deserialize, Serialize};

/// A bookmark as the example app keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bookmark {
    /// Shown title.
    pub title: String,
    /// The link.
    pub url: String,
    /// Free-form tags.
    pub tags: Vec<String>,
}

/// Theme and paging preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preferences {
    /// `light` or `dark`.
    pub theme: String,
    /// Page size.
    pub per_page: u32,
    /// Preferred language.
    pub language: String,
}

/// A realistic logged-in session: user id, CSRF token, flash messages, preferences, and
/// a list of 100 bookmarks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealisticSession {
    /// The user.
    pub user_id: u64,
    /// A 32-byte token in base64url.
    pub csrf: String,
    /// Messages for the next page.
    pub flash: Vec<String>,
    /// Preferences.
    pub prefs: Preferences,
    /// The big part.
    pub bookmarks: Vec<Bookmark>,
}

/// `n` bookmarks with plausible sizes.
#[must_use]
pub fn bookmarks(n: usize) -> Vec<Bookmark> {
    (0..n)
        .map(|i| Bookmark {
            title: format!("Bookmark number {i}: an interesting article"),
            url: format!("https://example.com/articles/{i}/an-interesting-article-title"),
            tags: vec!["rust".into(), "web".into(), format!("tag{}", i % 7)],
        })
        .collect()
}

/// The realistic session.
#[must_use]
pub fn realistic() -> RealisticSession {
    RealisticSession {
        user_id: 421_337,
        csrf: "q3Jc8v0mX9bYt2LkP5sW7eRzA1nD4fGhJ6uI8oK0lMQ".into(),
        flash: vec!["Bookmark added".into(), "Welcome back!".into()],
        prefs: Preferences { theme: "dark".into(), per_page: 25, language: "en".into() },
        bookmarks: bookmarks(100),
    }
}
