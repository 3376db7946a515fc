//! The transactions of `apply`, `cycle` and the deletes, on a pooled connection that a
//! cancelled future cannot hand back to the pool while still inside it.
//!
//! sqlx's `Transaction` rolls back on drop only by queueing a `ROLLBACK` that the pool's
//! return task sends later (the row, or SQLite's write lock, stays held until then), and a
//! future dropped while `BEGIN` is in flight can leave the server in a transaction no
//! `Transaction` knows of (0.8's PostgreSQL `begin` counts it once the server answered). A
//! pooled connection left like that would run the next borrower's statements inside it and
//! keep its locks. So the store sends `BEGIN` and `COMMIT`/`ROLLBACK` itself, awaited, and a
//! connection dropped in between is closed instead: closing ends the transaction on both
//! engines.

use sqlx::pool::PoolConnection;
use sqlx::Database;

/// A pooled connection inside a transaction this crate opened. Dropped before
/// [`Locked::release`], the connection is closed, never pooled.
///
/// It runs no statements itself: a generic async body over sqlx's executor traits fails
/// the `Send` check of `async_trait` futures (higher-ranked lifetimes), so the store's
/// `begin` and `finish` ([`crate::locked`]) send them on the concrete connection.
pub(crate) struct Locked<DB: Database> {
    /// `None` once released.
    conn: Option<PoolConnection<DB>>,
}

impl<DB: Database> Locked<DB> {
    /// Guards `conn`; call it before sending `BEGIN`, so a future dropped while that is in
    /// flight closes the connection too.
    pub(crate) fn new(conn: PoolConnection<DB>) -> Self {
        Self { conn: Some(conn) }
    }

    /// The connection, to run the transaction's statements on.
    pub(crate) fn conn(&mut self) -> &mut DB::Connection {
        self.conn.as_mut().expect("a guard is used only until it is released")
    }

    /// Returns the connection to the pool: its transaction ended (or never began).
    pub(crate) fn release(mut self) {
        drop(self.conn.take());
    }
}

impl<DB: Database> Drop for Locked<DB> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Detached, the connection closes right here (its socket or SQLite handle goes),
            // rather than in a task the runtime may never run; the pool opens a new one.
            drop(conn.detach());
        }
    }
}
