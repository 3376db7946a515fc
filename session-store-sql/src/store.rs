//! The session operations, written once for both engines.
//!
//! sqlx's traits would make a generic version a wall of higher-ranked bounds, so a macro
//! stamps the same bodies onto each store type; the engine differences live in the SQL
//! ([`crate::statements`]).

/// Implements [`SessionStore`](session_core::SessionStore) and
/// [`ExpiredDeletion`](session_core::ExpiredDeletion) for a type with fields
/// `pool: sqlx::Pool<_>` and `sql: Arc<Statements>`.
macro_rules! impl_session_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl session_core::SessionStore for $store {
            async fn create(&self, record: &session_core::Record) -> Result<(), session_core::StoreError> {
                use session_core::StoreError;
                let c = $crate::row::Columns::of(record)?;
                let written = sqlx::query(&self.sql.create)
                    .bind(&c.id[..])
                    .bind(c.data)
                    .bind(c.created_at)
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
                let found: Option<(Vec<u8>, i64, i64)> = sqlx::query_as(&self.sql.load)
                    .bind(&id.as_bytes()[..])
                    .bind($crate::row::now_ms())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::backend)?;
                let Some((data, expires_at, version)) = found else { return Ok(None) };
                match $crate::row::decode(id, &data, expires_at, version) {
                    Ok(record) => Ok(Some(record)),
                    Err(err) => {
                        $crate::row::warn_discarding(&err);
                        // Only the bytes that failed: a record written meanwhile stays.
                        sqlx::query(&self.sql.delete_corrupt)
                            .bind(&id.as_bytes()[..])
                            .bind(data)
                            .execute(&self.pool)
                            .await
                            .map_err(StoreError::backend)?;
                        Ok(None)
                    }
                }
            }

            async fn save(
                &self,
                record: &session_core::Record,
                expected: u64,
            ) -> Result<(), session_core::StoreError> {
                use session_core::StoreError;
                let c = $crate::row::Columns::of(record)?;
                let now = $crate::row::now_ms();
                let written = sqlx::query(&self.sql.save)
                    .bind(&c.id[..])
                    .bind($crate::row::version_column(expected)?)
                    .bind(c.data)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .bind(c.version)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::backend)?
                    .rows_affected();
                if written == 1 {
                    return Ok(());
                }
                // Nothing written: another version is live, or no row is. Asked at the same
                // `now`, so an expiry in between cannot pass a conflict off as missing.
                let live = sqlx::query(&self.sql.is_live)
                    .bind(&c.id[..])
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::backend)?;
                Err(if live.is_some() { StoreError::Conflict } else { StoreError::NotFound })
            }

            async fn touch(
                &self,
                id: &session_core::RecordId,
                expires_at: time::OffsetDateTime,
            ) -> Result<bool, session_core::StoreError> {
                let written = sqlx::query(&self.sql.touch)
                    .bind(&id.as_bytes()[..])
                    .bind($crate::row::unix_ms(expires_at))
                    .bind($crate::row::now_ms())
                    .execute(&self.pool)
                    .await
                    .map_err(session_core::StoreError::backend)?
                    .rows_affected();
                Ok(written == 1)
            }

            async fn delete(&self, id: &session_core::RecordId) -> Result<(), session_core::StoreError> {
                sqlx::query(&self.sql.delete)
                    .bind(&id.as_bytes()[..])
                    .execute(&self.pool)
                    .await
                    .map_err(session_core::StoreError::backend)?;
                Ok(())
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
