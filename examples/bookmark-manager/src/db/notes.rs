//! Notes: title and body.

use serde::Serialize;
use sqlx::Row;

use super::{like_pattern, Db, PageReq};

/// One note.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Note {
    pub(crate) id: i64,
    pub(crate) title: String,
    pub(crate) body: String,
}

fn note(row: &sqlx::sqlite::SqliteRow) -> Note {
    Note { id: row.get("id"), title: row.get("title"), body: row.get("body") }
}

impl Db {
    pub(crate) async fn add_note(&self, user: i64, title: &str, body: &str) -> Result<Note, sqlx::Error> {
        let row = sqlx::query(
            "INSERT INTO notes (user_id, title, body) VALUES (?, ?, ?) RETURNING id, title, body",
        )
        .bind(user)
        .bind(title)
        .bind(body)
        .fetch_one(&self.pool)
        .await?;
        Ok(note(&row))
    }

    /// `None` when there is no such note or it is not `user`'s.
    pub(crate) async fn update_note(
        &self,
        user: i64,
        id: i64,
        title: &str,
        body: &str,
    ) -> Result<Option<Note>, sqlx::Error> {
        let row = sqlx::query(
            "UPDATE notes SET title = ?, body = ? WHERE id = ? AND user_id = ? RETURNING id, title, body",
        )
        .bind(title)
        .bind(body)
        .bind(id)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(note))
    }

    pub(crate) async fn note(&self, user: i64, id: i64) -> Result<Option<Note>, sqlx::Error> {
        let row = sqlx::query("SELECT id, title, body FROM notes WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(note))
    }

    /// Whether a note was deleted.
    pub(crate) async fn delete_note(&self, user: i64, id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM notes WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Newest first.
    pub(crate) async fn notes(&self, user: i64, page: PageReq) -> Result<Vec<Note>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, title, body FROM notes WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
        )
        .bind(user)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(note).collect())
    }

    pub(crate) async fn count_notes(&self, user: i64) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM notes WHERE user_id = ?")
            .bind(user)
            .fetch_one(&self.pool)
            .await
    }

    /// Notes whose title or body contain `text` (case-insensitive for ASCII).
    pub(crate) async fn search_notes(
        &self,
        user: i64,
        text: &str,
        limit: i64,
    ) -> Result<Vec<Note>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, title, body FROM notes WHERE user_id = ?1
             AND (title LIKE ?2 ESCAPE '\\' OR body LIKE ?2 ESCAPE '\\') ORDER BY id DESC LIMIT ?3",
        )
        .bind(user)
        .bind(like_pattern(text))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(note).collect())
    }
}
