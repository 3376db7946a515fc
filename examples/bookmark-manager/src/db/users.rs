//! Accounts.

use sqlx::Row;

use super::Db;

/// A registered user. `Debug` leaves out the password hash.
#[derive(Clone)]
pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) password_hash: String,
    /// Bumped by every password change: sessions logged in under an older epoch are over.
    pub(crate) session_epoch: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("session_epoch", &self.session_epoch)
            .finish_non_exhaustive()
    }
}

pub(super) fn user(row: &sqlx::sqlite::SqliteRow) -> User {
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

    /// Replaces the password hash, starts a new session epoch and ends every login of the
    /// user but `keep`; returns the new epoch.
    pub(crate) async fn set_password(&self, id: i64, hash: &str, keep: &str) -> Result<i64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let epoch = sqlx::query_scalar(
            "UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1 WHERE id = ?
             RETURNING session_epoch",
        )
        .bind(hash)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        end_other_logins(&mut tx, id, keep).await?;
        tx.commit().await?;
        Ok(epoch)
    }
}

impl Db {
    /// Starts a new session epoch and ends every login of the user but `keep` (which is
    /// then told the new epoch); returns it.
    pub(crate) async fn bump_epoch(&self, id: i64, keep: &str) -> Result<i64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let epoch = sqlx::query_scalar(
            "UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ? RETURNING session_epoch",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        end_other_logins(&mut tx, id, keep).await?;
        tx.commit().await?;
        Ok(epoch)
    }
}

async fn end_other_logins(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user: i64,
    keep: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM logins WHERE user_id = ? AND id <> ?")
        .bind(user)
        .bind(keep)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_out_the_hash() {
        let u = User {
            id: 1,
            name: "alice".into(),
            password_hash: "$argon2id$secret-hash".into(),
            session_epoch: 0,
        };
        let shown = format!("{u:?}");
        assert!(shown.contains("alice") && !shown.contains("secret-hash"), "{shown}");
    }
}
