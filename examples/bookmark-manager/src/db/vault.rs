//! Vault items. The secret column holds only AES-256-GCM ciphertext: this module stores
//! and returns it sealed; sealing and opening happen in the web layer with the server key.

use serde::Serialize;
use sqlx::Row;

use super::{Db, PageReq};

/// One vault item, without its secret.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VaultItem {
    pub(crate) id: i64,
    pub(crate) site: String,
    pub(crate) login: String,
}

fn item(row: &sqlx::sqlite::SqliteRow) -> VaultItem {
    VaultItem { id: row.get("id"), site: row.get("site"), login: row.get("login") }
}

impl Db {
    /// Adds an item; `seal` gets the new item's id (so the ciphertext can be bound to it)
    /// and returns the sealed secret. Both writes are one transaction.
    pub(crate) async fn add_vault_item(
        &self,
        user: i64,
        site: &str,
        login: &str,
        seal: impl FnOnce(i64) -> Vec<u8>,
    ) -> Result<VaultItem, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO vault (user_id, site, login, secret) VALUES (?, ?, ?, x'') RETURNING id, site, login",
        )
        .bind(user)
        .bind(site)
        .bind(login)
        .fetch_one(&mut *tx)
        .await?;
        let item = item(&row);
        sqlx::query("UPDATE vault SET secret = ? WHERE id = ?")
            .bind(seal(item.id))
            .bind(item.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(item)
    }

    /// Updates site and login, and the secret when `secret` is `Some`. `None` when there is
    /// no such item or it is not `user`'s.
    pub(crate) async fn update_vault_item(
        &self,
        user: i64,
        id: i64,
        site: &str,
        login: &str,
        secret: Option<Vec<u8>>,
    ) -> Result<Option<VaultItem>, sqlx::Error> {
        let row = sqlx::query(
            "UPDATE vault SET site = ?, login = ?, secret = COALESCE(?, secret) WHERE id = ? AND user_id = ?
             RETURNING id, site, login",
        )
        .bind(site)
        .bind(login)
        .bind(secret)
        .bind(id)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(item))
    }

    pub(crate) async fn vault_item(&self, user: i64, id: i64) -> Result<Option<VaultItem>, sqlx::Error> {
        let row = sqlx::query("SELECT id, site, login FROM vault WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(item))
    }

    /// The sealed secret of `user`'s item `id`.
    pub(crate) async fn vault_secret(&self, user: i64, id: i64) -> Result<Option<Vec<u8>>, sqlx::Error> {
        sqlx::query_scalar("SELECT secret FROM vault WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user)
            .fetch_optional(&self.pool)
            .await
    }

    /// Whether an item was deleted.
    pub(crate) async fn delete_vault_item(&self, user: i64, id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM vault WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sorted by site.
    pub(crate) async fn vault_items(&self, user: i64, page: PageReq) -> Result<Vec<VaultItem>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, site, login FROM vault WHERE user_id = ? ORDER BY site COLLATE NOCASE, id LIMIT ? OFFSET ?",
        )
        .bind(user)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(item).collect())
    }

    pub(crate) async fn count_vault_items(&self, user: i64) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM vault WHERE user_id = ?")
            .bind(user)
            .fetch_one(&self.pool)
            .await
    }
}
