//! The session operations, written once for both engines.
//!
//! sqlx's traits would make a generic version a wall of higher-ranked bounds, so a macro
//! stamps the same bodies onto each store type; the engine differences live in the SQL
//! ([`crate::statements`]).

/// Implements [`SessionStore`](session_core::SessionStore) and
/// [`ExpiredDeletion`](session_core::ExpiredDeletion) for a type with fields
/// `pool: sqlx::Pool<_>` whose connections are `$conn`, and `sql: Arc<Statements>`.
macro_rules! impl_session_store {
    ($store:ty, $conn:ty) => {
        #[async_trait::async_trait]
        impl session_core::SessionStore for $store {
            async fn create(&self, record: &session_core::Record) -> Result<(), session_core::StoreError> {
                use session_core::StoreError;
                let c = $crate::row::Columns::of(record)?;
                let written = sqlx::query(&self.sql.create)
                    .bind(&c.id[..])
                    .bind(c.data)
                    .bind(c.user_id)
                    .bind(c.created_at)
                    .bind(c.last_seen)
                    .bind(c.expires_at)
                    .bind(c.version)
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
                use session_core::StoreError;
                let conn = self.pool.acquire().await.map_err(StoreError::backend)?;
                let mut tx = $crate::tx::Locked::new(conn);
                // A bare `&str` goes as a simple query: nothing to prepare for one word.
                if let Err(err) = sqlx::Executor::execute(tx.conn(), self.sql.begin).await {
                    // A `BEGIN` that failed (SQLite: still busy after the timeout) opened
                    // nothing: the connection can go back to the pool.
                    tx.release();
                    return Err(StoreError::backend(err));
                }
                let outcome = self.apply_locked(tx.conn(), patch).await;
                // Committed also when no live row was found: a corrupt one may have been deleted.
                let end = if outcome.is_ok() { "COMMIT" } else { "ROLLBACK" };
                match sqlx::Executor::execute(tx.conn(), end).await {
                    Ok(_) => tx.release(),
                    // The transaction may still be open (SQLite keeps it on a busy `COMMIT`):
                    // dropping the guard closes the connection, which ends it.
                    Err(err) if outcome.is_ok() => return Err(StoreError::backend(err)),
                    // The rollback failed, but closing ends the transaction just the same;
                    // the patch's own error is the answer.
                    Err(_) => {}
                }
                outcome?.ok_or(StoreError::NotFound)
            }

            async fn delete(&self, id: &session_core::RecordId) -> Result<(), session_core::StoreError> {
                sqlx::query(&self.sql.delete)
                    .bind(&id.as_bytes()[..])
                    .execute(&self.pool)
                    .await
                    .map_err(session_core::StoreError::backend)?;
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
                        Err(err) => {
                            $crate::row::warn_discarding(&err);
                            continue;
                        }
                    };
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

            async fn revoke(
                &self,
                handle: &session_core::SessionHandle,
            ) -> Result<bool, session_core::StoreError> {
                // One statement: of two concurrent revokes, only one reports the session ended.
                let now = $crate::row::now_ms();
                let expires_at: Option<i64> = sqlx::query_scalar(&self.sql.revoke)
                    .bind(&handle.record_id().as_bytes()[..])
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(session_core::StoreError::backend)?;
                Ok(expires_at.is_some_and(|at| at > now))
            }

            async fn revoke_user(
                &self,
                user: &str,
                except: Option<&session_core::SessionHandle>,
            ) -> Result<Vec<session_core::SessionHandle>, session_core::StoreError> {
                use session_core::StoreError;
                let keep = except.map(|h| *h.record_id().as_bytes());
                let ids: Vec<Vec<u8>> = sqlx::query_scalar(&self.sql.revoke_user)
                    .bind(user)
                    .bind(keep.as_ref().map_or(&[][..], |id| &id[..]))
                    .bind($crate::row::now_ms())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::backend)?;
                // The rows are gone already: a malformed id (no session's) is skipped, not an error.
                Ok(ids
                    .iter()
                    .filter_map(|id| $crate::row::record_id(id).ok())
                    .map(session_core::SessionHandle::from_record_id)
                    .collect())
            }
        }

        impl $store {
            /// The statements of `apply`, inside its transaction on `conn`: the patched
            /// record's outcome, or `None` when no live record is stored.
            async fn apply_locked(
                &self,
                conn: &mut $conn,
                patch: &session_core::Patch,
            ) -> Result<Option<session_core::Applied>, session_core::StoreError> {
                use session_core::StoreError;
                let id = &patch.id.as_bytes()[..];
                // One clock reading for the row's liveness and the patch's.
                let now = time::OffsetDateTime::now_utc();
                let found: Option<$crate::row::Loaded> = sqlx::query_as(&self.sql.lock_live)
                    .bind(id)
                    .bind($crate::row::unix_ms(now))
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::backend)?;
                let Some(row) = found else { return Ok(None) };
                let mut record = match $crate::row::decode(&patch.id, &row) {
                    Ok(record) => record,
                    Err(err) => {
                        // No session, as for a load; the row is ours until the commit, so
                        // nothing written meanwhile can be deleted with it.
                        $crate::row::warn_discarding(&err);
                        sqlx::query(&self.sql.delete)
                            .bind(id)
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::backend)?;
                        return Ok(None);
                    }
                };
                let applied = patch.apply_to(&mut record, now)?;
                if applied.ended {
                    sqlx::query(&self.sql.delete)
                        .bind(id)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::backend)?;
                } else {
                    // `user_id` is written with `data`, so the per-user index follows the patch.
                    let c = $crate::row::Columns::of(&record)?;
                    sqlx::query(&self.sql.update)
                        .bind(id)
                        .bind(c.data)
                        .bind(c.user_id)
                        .bind(c.last_seen)
                        .bind(c.expires_at)
                        .bind(c.version)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::backend)?;
                }
                Ok(Some(applied))
            }

            /// The record in a loaded row; a row that does not decode is deleted (only if it
            /// still holds the bytes that failed, so a record written meanwhile stays) and is
            /// no session.
            async fn decode_or_discard(
                &self,
                id: &session_core::RecordId,
                row: $crate::row::Loaded,
            ) -> Result<Option<session_core::Record>, session_core::StoreError> {
                match $crate::row::decode(id, &row) {
                    Ok(record) => Ok(Some(record)),
                    Err(err) => {
                        $crate::row::warn_discarding(&err);
                        sqlx::query(&self.sql.delete_corrupt)
                            .bind(&id.as_bytes()[..])
                            .bind(row.0)
                            .execute(&self.pool)
                            .await
                            .map_err(session_core::StoreError::backend)?;
                        Ok(None)
                    }
                }
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
