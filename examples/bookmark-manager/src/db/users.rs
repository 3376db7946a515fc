//! Accounts.

use sqlx::Row;

use super::Db;

/// A registered user.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) password_hash: String,
    /// Bumped by every password change: sessions logged in under an older epoch are over.
    pub(crate) session_epoch: i64,
}

fn user(row: &sqlx::sqlite::SqliteRow) -> User {
    User {
        id: row.get("id"),
        name: row.get("name"),
        password_hash: row.get("password_hash"),
        session_epoch: row.get("session_epoch"),
    }
}

impl Db {
    /// Adds a user; `None` when the name is taken (names compare case-insensitively).
    pub(crate) async fn create_user(&self, name: &str, hash: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query(
            "INSERT INTO users (name, password_hash) VALUES (?, ?) ON CONFLICT(name) DO NOTHING
             RETURNING id, name, password_hash, session_epoch",
        )
        .bind(name)
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user))
    }

    pub(crate) async fn user_by_name(&self, name: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query("SELECT id, name, password_hash, session_epoch FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user))
    }

    pub(crate) async fn user_by_id(&self, id: i64) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query("SELECT id, name, password_hash, session_epoch FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user))
    }

    /// Replaces the password hash and starts a new session epoch; returns the new epoch.
    pub(crate) async fn set_password(&self, id: i64, hash: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1 WHERE id = ?
             RETURNING session_epoch",
        )
        .bind(hash)
        .bind(id)
        .fetch_one(&self.pool)
        .await
    }
}

impl Db {
    /// Starts a new session epoch (ends every login of the user but the ones told the new
    /// epoch); returns it.
    pub(crate) async fn bump_epoch(&self, id: i64) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ? RETURNING session_epoch",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
    }
}
