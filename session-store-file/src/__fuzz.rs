//! Entry points for the fuzz targets in `fuzz/`, only with the `fuzzing` feature.
//!
//! The store reads two kinds of file it wrote itself, which a crash, a disk fault or a
//! hand edit can leave holding anything: a session's record file and a user's index.
//! These wrappers put the given bytes where the store looks and run its real read paths.

use std::path::Path;

use session_core::{Record, RecordId, SessionInfo, StoreError};

use crate::layout::{Kind, Layout, UserKey};
use crate::{index, ops};

/// Writes `contents` as the record file of `id` in `dir` (an existing folder) and loads
/// `id` as `FileStore::load` does: a live record, or `None` (a corrupt file is removed).
///
/// # Errors
///
/// The I/O error when the file cannot be written; otherwise what the load answers.
pub fn load(dir: &Path, id: &RecordId, contents: &[u8]) -> Result<Option<Record>, StoreError> {
    let layout = Layout::new(dir.to_path_buf());
    std::fs::write(layout.path(id, Kind::Record), contents).map_err(StoreError::backend)?;
    ops::load(&layout, id)
}

/// Writes `contents` (unless `None`: the index stays as it is) as the index of `user` in
/// `dir` and lists the user's sessions as `FileStore::sessions_of` does, which rewrites an
/// index that names ids with no live session of the user.
///
/// # Errors
///
/// The I/O error when the file cannot be written; otherwise what the listing answers.
pub fn sessions_of(dir: &Path, user: &str, contents: Option<&[u8]>) -> Result<Vec<SessionInfo>, StoreError> {
    let layout = Layout::new(dir.to_path_buf());
    if let Some(contents) = contents {
        std::fs::create_dir_all(layout.users_dir()).map_err(StoreError::backend)?;
        std::fs::write(layout.user_path(&UserKey::of(user), Kind::Record), contents)
            .map_err(StoreError::backend)?;
    }
    index::sessions_of(&layout, user)
}
