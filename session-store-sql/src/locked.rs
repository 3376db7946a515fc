//! The statements that run inside one transaction ([`crate::tx`]), stamped onto each store
//! type by [`impl_locked`] for the same reason as [`crate::store`]: `apply`, `cycle` and
//! the deletes that follow forwards.

/// Inherent methods of a store type with fields `pool: sqlx::Pool<$db>` and
/// `sql: Arc<Statements>`: opening and ending the transaction, and what runs inside it.
macro_rules! impl_locked {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Opens a transaction on a guarded connection: dropped before
            /// [`finish`](Self::finish), the connection is closed, never pooled.
            async fn begin(&self) -> Result<$crate::tx::Locked<$db>, session_core::StoreError> {
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
                Ok(tx)
            }

            /// Commits when `outcome` is a success (also `Ok(None)`: a corrupt row may have
            /// been deleted), rolls back otherwise, and answers `outcome`.
            async fn finish<T: Send>(
                mut tx: $crate::tx::Locked<$db>,
                outcome: Result<T, session_core::StoreError>,
            ) -> Result<T, session_core::StoreError> {
                let end = if outcome.is_ok() { "COMMIT" } else { "ROLLBACK" };
                match sqlx::Executor::execute(tx.conn(), end).await {
                    Ok(_) => tx.release(),
                    // The transaction may still be open (SQLite keeps it on a busy `COMMIT`):
                    // dropping the guard closes the connection, which ends it.
                    Err(err) if outcome.is_ok() => return Err(session_core::StoreError::backend(err)),
                    // The rollback failed, but closing ends the transaction just the same;
                    // the operation's own error is the answer.
                    Err(_) => {}
                }
                outcome
            }

            /// `patch` applied to the live record it names, which the transaction now holds;
            /// `None` when there is none (a corrupt row is deleted, a forward left alone). A
            /// record the patch ends is deleted already.
            async fn patch_locked(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                patch: &session_core::Patch,
                now: time::OffsetDateTime,
            ) -> Result<Option<$crate::locked::Patched>, session_core::StoreError> {
                use session_core::StoreError;
                let id = &patch.id.as_bytes()[..];
                let found: Option<$crate::row::Loaded> = sqlx::query_as(&self.sql.lock_live)
                    .bind(id)
                    .bind($crate::row::unix_ms(now))
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::backend)?;
                let Some(row) = found else { return Ok(None) };
                let mut record = match $crate::row::decode(&patch.id, &row) {
                    Ok(Some(record)) => record,
                    Ok(None) => return Ok(None),
                    Err(why) => {
                        // No session, as for a load; the row is ours until the commit, so
                        // nothing written meanwhile can be deleted with it.
                        $crate::row::warn_discarding(why);
                        self.delete_row(conn, id).await?;
                        return Ok(None);
                    }
                };
                let old_expires_at = record.expires_at;
                let applied = patch.apply_to(&mut record, now)?;
                if applied.ended {
                    self.delete_row(conn, id).await?;
                }
                Ok(Some($crate::locked::Patched { record, applied, old_expires_at }))
            }

            /// `apply` inside its transaction; `None` when no live record is stored.
            async fn apply_locked(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                patch: &session_core::Patch,
                now: time::OffsetDateTime,
            ) -> Result<Option<session_core::Applied>, session_core::StoreError> {
                let Some(patched) = self.patch_locked(conn, patch, now).await? else { return Ok(None) };
                if !patched.applied.ended {
                    // `user_id` is written with `data`, so the per-user index follows the patch.
                    let c = $crate::row::Columns::of(&patched.record)?;
                    self.write_row(conn, &self.sql.update, &c, None).await?;
                }
                Ok(Some(patched.applied))
            }

            /// `cycle` inside its transaction; `None` when no live record is stored. An
            /// error rolls back all of it: a taken `to` leaves the old record as it was.
            async fn cycle_locked(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                patch: &session_core::Patch,
                to: session_core::RecordId,
                now: time::OffsetDateTime,
            ) -> Result<Option<session_core::Applied>, session_core::StoreError> {
                let Some(mut patched) = self.patch_locked(conn, patch, now).await? else { return Ok(None) };
                if patched.applied.ended {
                    return Ok(Some(patched.applied));
                }
                patched.record.id = to;
                let moved = $crate::row::Columns::of(&patched.record)?;
                // `create`'s upsert: an expired row or forward at `to` is replaced, a live
                // one is left alone.
                let at = $crate::row::unix_ms(now);
                if self.write_row(conn, &self.sql.create, &moved, Some(at)).await? != 1 {
                    return Err(session_core::StoreError::Collision);
                }
                let forward = session_core::Forward::new(to, patched.old_expires_at, now);
                let left = $crate::row::Columns::forward(&patch.id, &forward, moved);
                self.write_row(conn, &self.sql.update, &left, None).await?;
                Ok(Some(patched.applied))
            }

            /// Deletes the row `id` and, while it holds an unexpired forward, the row that
            /// leads to, at most [`MAX_FORWARDS`](session_core::store::MAX_FORWARDS) times,
            /// stopping short of `keep`. Returns the id of the live record it ended, if any.
            ///
            /// Each step deletes first and reads what it deleted, so a cycle racing it cannot
            /// escape: one that moved the row first left a forward here, which is followed;
            /// one that comes after finds nothing to move. PostgreSQL re-reads a row whose
            /// lock it waited for, so that also holds for a cycle caught in between.
            async fn delete_locked(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                id: session_core::RecordId,
                keep: Option<&session_core::RecordId>,
                now: i64,
            ) -> Result<Option<session_core::RecordId>, session_core::StoreError> {
                let mut next = id;
                for _ in 0..=session_core::store::MAX_FORWARDS {
                    if keep == Some(&next) {
                        break;
                    }
                    let taken: Option<(Vec<u8>, i64)> = sqlx::query_as(&self.sql.take)
                        .bind(&next.as_bytes()[..])
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(session_core::StoreError::backend)?;
                    // Gone already, or expired: an expired forward is not followed.
                    let Some((data, _)) = taken.filter(|(_, at)| *at > now) else { break };
                    match $crate::row::forward_in(&data) {
                        Some(forward) => next = forward.to,
                        None => return Ok(Some(next)),
                    }
                }
                Ok(None)
            }

            /// `revoke_user` inside its transaction: the user's rows, then the records their
            /// forwards lead to. Returns the ids of the live records ended.
            async fn revoke_user_locked(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                user: &str,
                keep: Option<&session_core::RecordId>,
                now: i64,
            ) -> Result<Vec<session_core::RecordId>, session_core::StoreError> {
                let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(&self.sql.revoke_user)
                    .bind(user)
                    .bind(keep.map_or(&[][..], |id| &id.as_bytes()[..]))
                    .bind(now)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(session_core::StoreError::backend)?;
                let mut ended = Vec::with_capacity(rows.len());
                for (id, data) in rows {
                    match $crate::row::forward_in(&data) {
                        // Its target may be one this statement could not see (moved by a
                        // cycle that committed while it waited) or deleted already.
                        Some(forward) => ended.extend(self.delete_locked(conn, forward.to, keep, now).await?),
                        // The row is gone already: a malformed id (no session's) is skipped.
                        None => ended.extend($crate::row::record_id(&id).ok()),
                    }
                }
                Ok(ended)
            }

            /// Binds `c` to `statement` (`create`, with the clock `at`, or `update`) and
            /// runs it; returns the rows written.
            async fn write_row(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                statement: &str,
                c: &$crate::row::Columns,
                at: Option<i64>,
            ) -> Result<u64, session_core::StoreError> {
                let mut query = c.bind(sqlx::query(statement));
                if let Some(at) = at {
                    query = query.bind(at);
                }
                let done = query.execute(&mut *conn).await.map_err(session_core::StoreError::backend)?;
                Ok(done.rows_affected())
            }

            async fn delete_row(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                id: &[u8],
            ) -> Result<(), session_core::StoreError> {
                sqlx::query(&self.sql.delete)
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(session_core::StoreError::backend)?;
                Ok(())
            }

            /// The record in a loaded row (`None` for a forward); a row that does not decode
            /// is deleted (only if it still holds the bytes that failed, so a record written
            /// meanwhile stays) and is no session.
            async fn decode_or_discard(
                &self,
                id: &session_core::RecordId,
                row: $crate::row::Loaded,
            ) -> Result<Option<session_core::Record>, session_core::StoreError> {
                match $crate::row::decode(id, &row) {
                    Ok(record) => Ok(record),
                    Err(why) => {
                        $crate::row::warn_discarding(why);
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
    };
}

pub(crate) use impl_locked;

/// What [`patch_locked`](impl_locked) found and did: the patched record, and the old
/// record's expiry, which bounds the forward a cycle leaves.
pub(crate) struct Patched {
    pub(crate) record: session_core::Record,
    pub(crate) applied: session_core::Applied,
    pub(crate) old_expires_at: time::OffsetDateTime,
}
