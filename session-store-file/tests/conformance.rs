//! The shared store conformance suite, each case on a fresh folder.

use std::sync::Arc;

use async_trait::async_trait;
use session_core::{ExpiredDeletion, Record, RecordId, SessionInfo, SessionStore, StoreError};
use session_store_file::FileStore;
use tempfile::TempDir;
use time::OffsetDateTime;

/// A store that owns its temp folder, so the folder lives exactly as long as the case.
#[derive(Debug, Clone)]
struct TempStore {
    store: FileStore,
    _dir: Arc<TempDir>,
}

async fn fresh() -> TempStore {
    let dir = tempfile::tempdir().expect("temp dir");
    TempStore { store: FileStore::new(dir.path()).expect("store"), _dir: Arc::new(dir) }
}

#[async_trait]
impl SessionStore for TempStore {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.store.create(record).await
    }
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        self.store.load(id).await
    }
    async fn save(&self, record: &Record, expected: u64) -> Result<(), StoreError> {
        self.store.save(record, expected).await
    }
    async fn touch(
        &self,
        id: &RecordId,
        expires_at: OffsetDateTime,
        last_seen: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.store.touch(id, expires_at, last_seen).await
    }
    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        self.store.delete(id).await
    }
    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.store.sessions_of(user).await
    }
}

#[async_trait]
impl ExpiredDeletion for TempStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.store.delete_expired().await
    }
}

mod conformance {
    use super::fresh;

    session_core::store_conformance_tests!(fresh());
    session_core::expired_deletion_tests!(fresh());
}

mod user_index {
    use super::fresh;

    session_core::user_index_tests!(fresh());
}
