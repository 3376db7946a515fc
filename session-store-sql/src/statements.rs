//! The SQL, written once per store so each call only binds values (and sqlx's
//! per-connection statement cache reuses the prepared statement).
//!
//! Both engines run the same statements (SQLite 3.24+ has PostgreSQL's upsert, and sqlx
//! numbers SQLite's `$n` parameters like PostgreSQL's) except for the column types and
//! the batched delete of the sweep.

use crate::table::Table;

/// Where the engines' SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// The statements of one table. Parameters: `$1` the record id, and the app's clock as
/// Unix ms wherever an expiry is compared.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) table: Table,
    pub(crate) schema: [String; 2],
    pub(crate) create: String,
    pub(crate) load: String,
    pub(crate) save: String,
    pub(crate) is_live: String,
    pub(crate) touch: String,
    pub(crate) delete: String,
    pub(crate) delete_corrupt: String,
    pub(crate) delete_expired: String,
}

impl Statements {
    pub(crate) fn new(table: Table, dialect: Dialect) -> Self {
        let t = table.sql();
        let index = table.index_sql();
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
        Self {
            schema: [
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (id {bytes} NOT NULL PRIMARY KEY, data {bytes} NOT NULL, \
                     created_at {int} NOT NULL, expires_at {int} NOT NULL, version {int} NOT NULL)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at)"),
            ],
            // One atomic statement: an expired row counts as absent and is replaced, a live
            // one is left alone and no row changes (`Collision`).
            create: format!(
                "INSERT INTO {t} (id, data, created_at, expires_at, version) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, created_at = excluded.created_at, \
                 expires_at = excluded.expires_at, version = excluded.version WHERE {t}.expires_at <= $6"
            ),
            load: format!("SELECT data, expires_at, version FROM {t} WHERE id = $1 AND expires_at > $2"),
            save: format!(
                "UPDATE {t} SET data = $3, created_at = $4, expires_at = $5, version = $6 \
                 WHERE id = $1 AND version = $2 AND expires_at > $7"
            ),
            is_live: format!("SELECT 1 FROM {t} WHERE id = $1 AND expires_at > $2"),
            touch: format!("UPDATE {t} SET expires_at = $2 WHERE id = $1 AND expires_at > $3"),
            delete: format!("DELETE FROM {t} WHERE id = $1"),
            delete_corrupt: format!("DELETE FROM {t} WHERE id = $1 AND data = $2"),
            delete_expired,
            table,
        }
    }
}
