//! The shared store conformance suite, each case on a fresh folder.

use std::sync::Arc;

use session_core::testing::Guarded;
use session_store_file::FileStore;
use tempfile::TempDir;

/// A store that owns its temp folder, so the folder lives exactly as long as the case.
type TempStore = Guarded<FileStore, Arc<TempDir>>;

async fn fresh() -> TempStore {
    let dir = tempfile::tempdir().expect("temp dir");
    Guarded { store: FileStore::new(dir.path()).expect("store"), guard: Arc::new(dir) }
}

mod conformance {
    use super::fresh;

    session_core::store_conformance_tests!(fresh());
    session_core::expired_deletion_tests!(fresh());
    session_core::history_tests!(fresh());
}

mod user_index {
    use super::fresh;

    session_core::user_index_tests!(fresh());
}
