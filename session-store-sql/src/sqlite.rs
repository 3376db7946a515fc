//! [`SqliteStore`]: sessions in an SQLite database.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::statements::{Dialect, Statements};
use crate::table::{Table, DEFAULT_TABLE};
use crate::Error;

/// How long a statement waits for another connection's write to finish before failing
/// with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A session store in an SQLite database, through an sqlx [`SqlitePool`].
///
/// SQLite is compiled into the binary (feature `sqlite`, the default): nothing to install
/// or run. [`SqliteStore::open`] opens a database file with the settings concurrent
/// requests need (WAL, a busy timeout); call [`SqliteStore::migrate`] once at startup to
/// create the table. Clones share the pool.
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    sql: Arc<Statements>,
}

impl SqliteStore {
    /// A store on a pool you built, using the table `sessions`.
    ///
    /// Build the pool's options with [`SqliteStore::recommended_options`], or requests
    /// that write at the same time fail with "database is locked".
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self::with_table(pool, Table::new(DEFAULT_TABLE).expect("the default table name is valid"))
    }

    fn with_table(pool: SqlitePool, table: Table) -> Self {
        Self { pool, sql: Arc::new(Statements::new(table, Dialect::Sqlite)) }
    }

    /// Uses the table `name` instead of `sessions`, e.g. to keep several apps in one
    /// database.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTableName`] unless `name` is 1 to 63 ASCII letters, digits or
    /// underscores, not starting with a digit.
    pub fn with_table_name(self, name: &str) -> Result<Self, Error> {
        Ok(Self::with_table(self.pool, Table::new(name)?))
    }

    /// `options` with the settings this store relies on: WAL journaling, so reads never
    /// wait for a write and a write waits only for another write; a 5 s busy timeout, so
    /// such a wait queues instead of failing with "database is locked"; and
    /// `synchronous = NORMAL`, which in WAL mode stays consistent after a crash and loses
    /// at most the last commits on a power cut, at a fraction of `FULL`'s fsyncs.
    ///
    /// Start from this when you need other settings, then pass the pool to
    /// [`SqliteStore::new`].
    #[must_use]
    pub fn recommended_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
        options
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal)
    }

    /// Opens (creating it if missing) the database file at `path` with the
    /// [recommended options](SqliteStore::recommended_options) and sqlx's default pool.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if the file cannot be opened or created, or is not a database.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
        Self::connect_with(options).await
    }

    /// Opens the database an sqlx URL names, such as `sqlite://sessions.db?mode=rwc` or
    /// `sqlite::memory:`, with the [recommended options](SqliteStore::recommended_options).
    /// Without `mode=rwc` a missing file is an error, as in sqlx; an in-memory database
    /// lives as long as the pool.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if the URL is malformed or the database cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(SqliteConnectOptions::from_str(url)?).await
    }

    async fn connect_with(options: SqliteConnectOptions) -> Result<Self, Error> {
        // `connect_with` opens a first connection, which switches a new file to WAL before
        // the pool opens more: doing that under concurrent readers would fail.
        let pool = SqlitePoolOptions::new().connect_with(Self::recommended_options(options)).await?;
        Ok(Self::new(pool))
    }

    /// Creates the table and its indexes (expiry, user) if they do not exist; safe to call
    /// on every startup.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if the database refuses, e.g. a read-only file.
    pub async fn migrate(&self) -> Result<(), Error> {
        for statement in &self.sql.schema {
            sqlx::query(statement).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// The pool, e.g. to close it on shutdown.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The table the sessions are kept in.
    #[must_use]
    pub fn table_name(&self) -> &str {
        self.sql.table.name()
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("table", &self.table_name()).finish_non_exhaustive()
    }
}

crate::store::impl_session_store!(SqliteStore, sqlx::Sqlite);
