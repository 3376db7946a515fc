//! Logins: one row per login, made at login and deleted at logout. The session carries the
//! login's id; a session whose login row is gone is logged out, in every session mode. In
//! cookie mode, where the whole session lives in the browser, this row is the only thing
//! the server can take back, so a copy of the cookie made before "Log out" is worthless
//! after it.
//!
//! The id is stored as is: it proves nothing without a session that names it (a sealed
//! cookie needs the server's session key, a store's session its id), so a leaked row
//! does not open a login.

use super::Db;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Db {
    /// Records login `id` of `user`, over at `ends_at` (Unix seconds) at the latest. Logins
    /// already over are deleted on the way, so the table holds only live ones.
    pub(crate) async fn add_login(&self, user: i64, id: &str, ends_at: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM logins WHERE ends_at <= ?").bind(now()).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO logins (id, user_id, ends_at) VALUES (?, ?, ?)")
            .bind(id)
            .bind(user)
            .bind(ends_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// The user of login `id`, when that login is live and `user`'s.
    pub(crate) async fn login_user(&self, user: i64, id: &str) -> Result<Option<super::User>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT users.id, users.name, users.password_hash, users.session_epoch
             FROM logins JOIN users ON users.id = logins.user_id
             WHERE logins.id = ? AND logins.user_id = ? AND logins.ends_at > ?",
        )
        .bind(id)
        .bind(user)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(super::users::user))
    }

    /// Ends login `id` (a logout); ending one that is already over is not an error.
    pub(crate) async fn end_login(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM logins WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }
}
