//! The SQL, written once per store so each call only binds values (and sqlx's
//! per-connection statement cache reuses the prepared statement).
//!
//! Both engines run the same statements (SQLite 3.24+ has PostgreSQL's upsert, and sqlx
//! numbers SQLite's `$n` parameters like PostgreSQL's) except for the column types, how
//! `apply` locks the row it patches, and the batched delete of the sweep.

use crate::table::Table;

/// Where the engines' SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// The statements of one table. Parameters: `$1` the record id (or the user), and the app's
/// clock as Unix ms wherever an expiry is compared.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) table: Table,
    pub(crate) schema: [String; 3],
    pub(crate) create: String,
    pub(crate) load: String,
    /// Opens the transaction of `apply`, `cycle` and the deletes that follow forwards.
    pub(crate) begin: &'static str,
    /// `load` inside that transaction, holding the row until it ends.
    pub(crate) lock_live: String,
    /// Writes a patched record, or the forward `cycle` leaves; run under the lock
    /// `lock_live` took, so it needs no version or expiry check of its own. Same
    /// parameters as `create` (without its clock).
    pub(crate) update: String,
    pub(crate) delete: String,
    /// Deletes a row and returns what it held, so `delete` can follow a forward.
    pub(crate) take: String,
    pub(crate) delete_corrupt: String,
    pub(crate) delete_expired: String,
    pub(crate) sessions_of: String,
    pub(crate) revoke_user: String,
}

impl Statements {
    pub(crate) fn new(table: Table, dialect: Dialect) -> Self {
        let t = table.sql();
        let index = table.index_sql();
        let user_index = table.user_index_sql();
        let (bytes, int) = match dialect {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => ("BLOB", "INTEGER"),
            #[cfg(feature = "postgres")]
            Dialect::Postgres => ("BYTEA", "BIGINT"),
        };
        let delete_expired = match dialect {
            // SQLite has no `DELETE ... LIMIT` unless compiled with it; the rowids come
            // from the expiry index alone.
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => format!(
                "DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE expires_at <= $1 LIMIT $2)"
            ),
            // SKIP LOCKED: a sweep never waits on a request's row, and the sweeps of several
            // app instances split the rows instead of queueing on each other.
            #[cfg(feature = "postgres")]
            Dialect::Postgres => format!(
                "DELETE FROM {t} WHERE id IN \
                 (SELECT id FROM {t} WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
        };
        let (begin, lock_row) = match dialect {
            // The write lock up front: a deferred transaction that reads, then writes, fails
            // with SQLITE_BUSY (no busy timeout helps) when another connection wrote in
            // between. IMMEDIATE waits for the lock on the busy timeout instead, and holds
            // it, so the row read is the row written.
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => ("BEGIN IMMEDIATE", ""),
            // Only this row is locked: patches of other sessions go on in parallel.
            #[cfg(feature = "postgres")]
            Dialect::Postgres => ("BEGIN", " FOR UPDATE"),
        };
        Self {
            begin,
            schema: [
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (id {bytes} NOT NULL PRIMARY KEY, data {bytes} NOT NULL, \
                     user_id TEXT, created_at {int} NOT NULL, last_seen {int} NOT NULL, \
                     expires_at {int} NOT NULL, version {int} NOT NULL)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at)"),
                // Partial: anonymous sessions, often most of them, stay out of it. Both
                // engines use it for `user_id = $1`, which implies `IS NOT NULL`.
                format!("CREATE INDEX IF NOT EXISTS {user_index} ON {t} (user_id) WHERE user_id IS NOT NULL"),
            ],
            // One atomic statement: an expired row counts as absent and is replaced, a live
            // one is left alone and no row changes (`Collision`).
            create: format!(
                "INSERT INTO {t} (id, data, user_id, created_at, last_seen, expires_at, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, user_id = excluded.user_id, \
                 created_at = excluded.created_at, last_seen = excluded.last_seen, \
                 expires_at = excluded.expires_at, version = excluded.version WHERE {t}.expires_at <= $8"
            ),
            load: format!(
                "SELECT data, expires_at, last_seen, version FROM {t} WHERE id = $1 AND expires_at > $2"
            ),
            lock_live: format!(
                "SELECT data, expires_at, last_seen, version FROM {t} WHERE id = $1 AND expires_at > $2{lock_row}"
            ),
            update: format!(
                "UPDATE {t} SET data = $2, user_id = $3, created_at = $4, last_seen = $5, expires_at = $6, \
                 version = $7 WHERE id = $1"
            ),
            delete: format!("DELETE FROM {t} WHERE id = $1"),
            // The row goes even if expired; its expiry tells whether it was a live session
            // (or a forward still to follow).
            take: format!("DELETE FROM {t} WHERE id = $1 RETURNING data, expires_at"),
            delete_corrupt: format!("DELETE FROM {t} WHERE id = $1 AND data = $2"),
            delete_expired,
            sessions_of: format!(
                "SELECT id, data, expires_at, last_seen, version FROM {t} WHERE user_id = $1 AND expires_at > $2"
            ),
            // `$2` is the id to keep, or an empty string of bytes, which no id equals. Expired
            // rows are left to the sweep: they are no session to report as ended. `data`
            // tells the user's forwards, still to follow, from their records.
            revoke_user: format!(
                "DELETE FROM {t} WHERE user_id = $1 AND id <> $2 AND expires_at > $3 RETURNING id, data"
            ),
            table,
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    /// SQLite's plan for the per-user statements searches the partial user index, not the
    /// table or the expiry index.
    #[tokio::test]
    async fn per_user_statements_use_the_user_index_on_sqlite() {
        let sql = Statements::new(Table::new("sessions").unwrap(), Dialect::Sqlite);
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        for statement in &sql.schema {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        for statement in [&sql.sessions_of, &sql.revoke_user] {
            // Unbound parameters are NULL, which does not change the plan.
            let explain = format!("EXPLAIN QUERY PLAN {statement}");
            let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&explain).fetch_all(&pool).await.unwrap();
            let detail: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
            assert!(
                detail.iter().any(|d| d.contains("USING INDEX sessions_user_id_idx (user_id=?)")),
                "{statement}: {detail:?}"
            );
        }
    }
}
