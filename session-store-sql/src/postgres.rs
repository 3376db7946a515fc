//! [`PostgresStore`]: sessions in a PostgreSQL table.

use std::fmt;
use std::sync::Arc;

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::statements::{Dialect, Statements};
use crate::table::{Table, DEFAULT_TABLE};
use crate::Error;

/// The advisory lock `migrate` holds, so app instances starting together do not race
/// `CREATE TABLE IF NOT EXISTS` into a unique violation in the catalog. ASCII "sessions".
const MIGRATE_LOCK: i64 = 0x7365_7373_696f_6e73;

/// A session store in a PostgreSQL table, through an sqlx [`PgPool`]: the store to use
/// when several app instances share sessions and a database is already there.
///
/// Call [`PostgresStore::migrate`] once at startup to create the table. Clones share the
/// pool.
///
/// The pool reconnects by itself after the server restarts: sqlx tests an idle connection
/// before handing it out and opens a new one for a dead one. While the server is away, a
/// request waits for a connection up to the pool's `acquire_timeout` (sqlx's default:
/// 30 s) and then fails with a 500; build the pool with a shorter one (say 1 to 5 s) so an
/// outage costs each request that long at most (`tests/outage.rs` drills both).
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    sql: Arc<Statements>,
}

impl PostgresStore {
    /// A store on a pool you built (for TLS, credentials, pool sizes), using the table
    /// `sessions` in the connection's `search_path`.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::with_table(pool, Table::new(DEFAULT_TABLE).expect("the default table name is valid"))
    }

    fn with_table(pool: PgPool, table: Table) -> Self {
        Self { pool, sql: Arc::new(Statements::new(table, Dialect::Postgres)) }
    }

    /// Uses the table `name` instead of `sessions`. The name is quoted in SQL, so it is
    /// case-sensitive: `Sessions` and `sessions` are two tables.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTableName`] unless `name` is 1 to 63 ASCII letters, digits or
    /// underscores, not starting with a digit.
    pub fn with_table_name(self, name: &str) -> Result<Self, Error> {
        Ok(Self::with_table(self.pool, Table::new(name)?))
    }

    /// Connects to the database a URL names, such as
    /// `postgres://app:secret@db.internal/app`, with sqlx's default pool.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if the URL is malformed or the server cannot be reached now.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Ok(Self::new(PgPoolOptions::new().connect(url).await?))
    }

    /// Creates the table and its indexes (expiry, user) if they do not exist, in one
    /// transaction; safe to call on every startup, from several instances at once.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if the server refuses, e.g. the role may not create tables.
    pub async fn migrate(&self) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATE_LOCK).execute(&mut *tx).await?;
        for statement in &self.sql.schema {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The pool, e.g. to close it on shutdown.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The table the sessions are kept in.
    #[must_use]
    pub fn table_name(&self) -> &str {
        self.sql.table.name()
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No pool: its settings may carry the password.
        f.debug_struct("PostgresStore").field("table", &self.table_name()).finish_non_exhaustive()
    }
}

crate::store::impl_session_store!(PostgresStore, sqlx::Postgres);
