//! Bookmarks: title, URL, tags.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{like_pattern, Db, PageReq};

/// One bookmark.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bookmark {
    pub(crate) id: i64,
    pub(crate) title: String,
    pub(crate) url: String,
    /// Space-separated, lower case.
    pub(crate) tags: String,
}

/// The order of a bookmark list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BookmarkOrder {
    #[default]
    Newest,
    Oldest,
    Title,
}

impl BookmarkOrder {
    fn sql(self) -> &'static str {
        match self {
            BookmarkOrder::Newest => "id DESC",
            BookmarkOrder::Oldest => "id ASC",
            BookmarkOrder::Title => "title COLLATE NOCASE, id",
        }
    }
}

/// Matches a bookmark carrying `?2` among its space-separated tags (all of them if `?2`
/// is NULL).
const TAGGED: &str = "(?2 IS NULL OR instr(' ' || tags || ' ', ' ' || ?2 || ' ') > 0)";

fn bookmark(row: &sqlx::sqlite::SqliteRow) -> Bookmark {
    Bookmark { id: row.get("id"), title: row.get("title"), url: row.get("url"), tags: row.get("tags") }
}

impl Db {
    pub(crate) async fn add_bookmark(
        &self,
        user: i64,
        title: &str,
        url: &str,
        tags: &str,
    ) -> Result<Bookmark, sqlx::Error> {
        let row = sqlx::query(
            "INSERT INTO bookmarks (user_id, title, url, tags) VALUES (?, ?, ?, ?)
             RETURNING id, title, url, tags",
        )
        .bind(user)
        .bind(title)
        .bind(url)
        .bind(tags)
        .fetch_one(&self.pool)
        .await?;
        Ok(bookmark(&row))
    }

    /// `None` when there is no such bookmark or it is not `user`'s.
    pub(crate) async fn update_bookmark(
        &self,
        user: i64,
        id: i64,
        title: &str,
        url: &str,
        tags: &str,
    ) -> Result<Option<Bookmark>, sqlx::Error> {
        let row = sqlx::query(
            "UPDATE bookmarks SET title = ?, url = ?, tags = ? WHERE id = ? AND user_id = ?
             RETURNING id, title, url, tags",
        )
        .bind(title)
        .bind(url)
        .bind(tags)
        .bind(id)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(bookmark))
    }

    pub(crate) async fn bookmark(&self, user: i64, id: i64) -> Result<Option<Bookmark>, sqlx::Error> {
        let row = sqlx::query("SELECT id, title, url, tags FROM bookmarks WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(bookmark))
    }

    /// Whether a bookmark was deleted.
    pub(crate) async fn delete_bookmark(&self, user: i64, id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM bookmarks WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Newest first.
    pub(crate) async fn bookmarks(&self, user: i64, page: PageReq) -> Result<Vec<Bookmark>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, title, url, tags FROM bookmarks WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
        )
        .bind(user)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(bookmark).collect())
    }

    pub(crate) async fn count_bookmarks(&self, user: i64) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM bookmarks WHERE user_id = ?")
            .bind(user)
            .fetch_one(&self.pool)
            .await
    }

    /// Bookmarks whose title, URL or tags contain `text` (case-insensitive for ASCII).
    pub(crate) async fn search_bookmarks(
        &self,
        user: i64,
        text: &str,
        limit: i64,
    ) -> Result<Vec<Bookmark>, sqlx::Error> {
        let pattern = like_pattern(text);
        let rows = sqlx::query(
            "SELECT id, title, url, tags FROM bookmarks WHERE user_id = ?1
             AND (title LIKE ?2 ESCAPE '\\' OR url LIKE ?2 ESCAPE '\\' OR tags LIKE ?2 ESCAPE '\\')
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(user)
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(bookmark).collect())
    }

    /// `user`'s bookmarks tagged `tag` (all when `None`), in `order`.
    pub(crate) async fn bookmarks_where(
        &self,
        user: i64,
        tag: Option<&str>,
        order: BookmarkOrder,
        page: PageReq,
    ) -> Result<Vec<Bookmark>, sqlx::Error> {
        // The ORDER BY comes from the enum, never from input.
        let sql = format!(
            "SELECT id, title, url, tags FROM bookmarks WHERE user_id = ?1 AND {TAGGED}
             ORDER BY {} LIMIT ?3 OFFSET ?4",
            order.sql()
        );
        let rows = sqlx::query(&sql)
            .bind(user)
            .bind(tag)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(bookmark).collect())
    }

    pub(crate) async fn count_bookmarks_where(
        &self,
        user: i64,
        tag: Option<&str>,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM bookmarks WHERE user_id = ?1 AND {TAGGED}"))
            .bind(user)
            .bind(tag)
            .fetch_one(&self.pool)
            .await
    }

    /// Every bookmark of `user`, oldest first (for the export, and the import's duplicate check).
    pub(crate) async fn all_bookmarks(&self, user: i64) -> Result<Vec<Bookmark>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, title, url, tags FROM bookmarks WHERE user_id = ? ORDER BY id")
            .bind(user)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(bookmark).collect())
    }
}
