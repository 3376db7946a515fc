//! The app's own data (users, bookmarks, notes, vault items) in SQLite, apart from the
//! sessions. Every query on an item is scoped by its owner's id, so another user's id
//! reads as "not found".

mod bookmarks;
mod logins;
mod notes;
mod users;
mod vault;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub(crate) use self::bookmarks::{Bookmark, BookmarkOrder};
pub(crate) use self::users::User;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        session_epoch INTEGER NOT NULL DEFAULT 0
    )",
    "CREATE TABLE IF NOT EXISTS bookmarks (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        url TEXT NOT NULL,
        tags TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS bookmarks_user ON bookmarks(user_id, id)",
    "CREATE TABLE IF NOT EXISTS notes (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        body TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS notes_user ON notes(user_id, id)",
    "CREATE TABLE IF NOT EXISTS vault (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        site TEXT NOT NULL,
        login TEXT NOT NULL,
        secret BLOB NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS vault_user ON vault(user_id, id)",
    "CREATE TABLE IF NOT EXISTS logins (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        ends_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS logins_user ON logins(user_id)",
];

/// The app database: a cheap-to-clone pool.
#[derive(Debug, Clone)]
pub struct Db {
    pool: SqlitePool,
}

impl Db {
    /// Opens (creating it if missing) the database file at `path` and creates the tables.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or is not a database.
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL and a busy timeout: concurrent requests queue for the write lock instead
            // of failing with "database is locked".
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        Self::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let pool = SqlitePoolOptions::new().connect_with(options).await?;
        Self::migrate(pool).await
    }

    async fn migrate(pool: SqlitePool) -> Result<Self, sqlx::Error> {
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Self { pool })
    }
}

/// One page of a list: `LIMIT`/`OFFSET` from a 1-based page number.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageReq {
    pub(crate) page: u32,
    pub(crate) per_page: u32,
}

impl PageReq {
    fn limit(self) -> i64 {
        i64::from(self.per_page)
    }

    fn offset(self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.per_page)
    }
}

/// `text` as a LIKE pattern that matches it anywhere, with `\` as the escape character so
/// `%` and `_` typed by the user match themselves.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
        let p = PageReq { page: 3, per_page: 10 };
        assert_eq!((p.limit(), p.offset()), (10, 20));
        assert_eq!(PageReq { page: 0, per_page: 5 }.offset(), 0);
    }
}
