//! The session operations, written once for both engines.
//!
//! sqlx's traits would make a generic version a wall of higher-ranked bounds, so a macro
//! stamps the same bodies onto each store type; the engine differences live in the SQL
//! ([`crate::statements`]).

/// Implements [`SessionStore`](session_core::SessionStore) and
/// [`ExpiredDeletion`](session_core::ExpiredDeletion) for a type with fields
/// `pool: sqlx::Pool<$db>` and `sql: Arc<Statements>`.
macro_rules! impl_session_store {
    ($store:ty, $db:ty) => {
        $crate::locked::impl_locked!($store, $db);

        #[async_trait::async_trait]
        impl session_core::SessionStore for $store {
            async fn create(&self, record: &session_core::Record) -> Result<(), session_core::StoreError> {
                use session_core::StoreError;
                let c = $crate::row::Columns::of(record)?;
                let written = c
                    .bind(sqlx::query(&self.sql.create))
                    .bind($crate::row::now_ms())
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::backend)?
                    .rows_affected();
                if written == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Collision)
                }
            }

            async fn load(
                &self,
                id: &session_core::RecordId,
            ) -> Result<Option<session_core::Record>, session_core::StoreError> {
                use session_core::StoreError;
                let found: Option<$crate::row::Loaded> = sqlx::query_as(&self.sql.load)
                    .bind(&id.as_bytes()[..])
                    .bind($crate::row::now_ms())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::backend)?;
                let Some(row) = found else { return Ok(None) };
                self.decode_or_discard(id, row).await
            }

            /// One transaction holds the session's row from the read to the write (SQLite:
            /// the database's write lock, taken by `BEGIN IMMEDIATE`; PostgreSQL: the row,
            /// by `SELECT ... FOR UPDATE`), so concurrent patches of one session, from any
            /// number of processes, queue instead of conflicting or retrying.
            async fn apply(
                &self,
                patch: &session_core::Patch,
            ) -> Result<session_core::Applied, session_core::StoreError> {
                let mut tx = self.begin().await?;
                // One clock reading for the row's liveness and the patch's.
                let now = time::OffsetDateTime::now_utc();
                let outcome = self.apply_locked(tx.conn(), patch, now).await;
                Self::finish(tx, outcome).await?.ok_or(session_core::StoreError::NotFound)
            }

            /// As `apply`, in one transaction: the patched record is inserted under `to`
            /// and the old row becomes a forward to it, or nothing changes.
            async fn cycle(
                &self,
                patch: &session_core::Patch,
                to: session_core::RecordId,
            ) -> Result<session_core::Applied, session_core::StoreError> {
                let mut tx = self.begin().await?;
                let now = time::OffsetDateTime::now_utc();
                let outcome = self.cycle_locked(tx.conn(), patch, to, now).await;
                Self::finish(tx, outcome).await?.ok_or(session_core::StoreError::NotFound)
            }

            /// In one transaction, so a failure halfway leaves the forward in place for a
            /// retry to follow, rather than a record no delete can reach.
            async fn delete(&self, id: &session_core::RecordId) -> Result<(), session_core::StoreError> {
                let mut tx = self.begin().await?;
                let outcome = self.delete_locked(tx.conn(), *id, None, $crate::row::now_ms()).await;
                Self::finish(tx, outcome).await?;
                Ok(())
            }

            async fn sessions_of(
                &self,
                user: &str,
            ) -> Result<Vec<session_core::SessionInfo>, session_core::StoreError> {
                use session_core::StoreError;
                let rows: Vec<(Vec<u8>, Vec<u8>, i64, i64, i64)> = sqlx::query_as(&self.sql.sessions_of)
                    .bind(user)
                    .bind($crate::row::now_ms())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::backend)?;
                let mut found = Vec::with_capacity(rows.len());
                for (id, data, expires_at, last_seen, version) in rows {
                    // A malformed id names no session (and no handle): skip the row.
                    let id = match $crate::row::record_id(&id) {
                        Ok(id) => id,
                        Err(why) => {
                            $crate::row::warn_discarding(why);
                            continue;
                        }
                    };
                    // The user's forwards are listed by the query too, and skipped here.
                    let record = self.decode_or_discard(&id, (data, expires_at, last_seen, version)).await?;
                    // `user_id` and `data` are written together, so they agree; a row where
                    // they do not is not listed under a user it does not belong to.
                    found.extend(
                        record
                            .as_ref()
                            .and_then(session_core::SessionInfo::from_record)
                            .filter(|i| i.user == user),
                    );
                }
                Ok(found)
            }

            /// Reports the session ended when a live record was deleted, also one reached
            /// through a forward: the handle named a session that was live until now.
            async fn revoke(
                &self,
                handle: &session_core::SessionHandle,
            ) -> Result<bool, session_core::StoreError> {
                // Deleted and read in one statement per row: of two concurrent revokes, only
                // one reports the session ended.
                let mut tx = self.begin().await?;
                let id = handle.record_id();
                let outcome = self.delete_locked(tx.conn(), id, None, $crate::row::now_ms()).await;
                Ok(Self::finish(tx, outcome).await?.is_some())
            }

            async fn revoke_user(
                &self,
                user: &str,
                except: Option<&session_core::SessionHandle>,
            ) -> Result<Vec<session_core::SessionHandle>, session_core::StoreError> {
                let keep = except.map(session_core::SessionHandle::record_id);
                let mut tx = self.begin().await?;
                let outcome =
                    self.revoke_user_locked(tx.conn(), user, keep.as_ref(), $crate::row::now_ms()).await;
                let ended = Self::finish(tx, outcome).await?;
                Ok(ended.into_iter().map(session_core::SessionHandle::from_record_id).collect())
            }
        }

        #[async_trait::async_trait]
        impl session_core::ExpiredDeletion for $store {
            async fn delete_expired(&self) -> Result<u64, session_core::StoreError> {
                use $crate::row::DELETE_BATCH;
                // One `now` for the whole sweep, so rows expiring meanwhile wait for the next
                // one and the loop ends. On PostgreSQL a short batch can also mean locked rows
                // were skipped; the next sweep gets them.
                let now = $crate::row::now_ms();
                let mut deleted = 0;
                loop {
                    let batch = sqlx::query(&self.sql.delete_expired)
                        .bind(now)
                        .bind(DELETE_BATCH)
                        .execute(&self.pool)
                        .await
                        .map_err(session_core::StoreError::backend)?
                        .rows_affected();
                    deleted += batch;
                    if batch < DELETE_BATCH.unsigned_abs() {
                        return Ok(deleted);
                    }
                }
            }
        }
    };
}

pub(crate) use impl_session_store;
