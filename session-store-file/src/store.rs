//! `FileStore`: the async face of the blocking operations.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use session_core::{
    Applied, ExpiredDeletion, Patch, Record, RecordId, SessionInfo, SessionStore, StoreError,
};
use tokio::sync::Mutex;

use crate::layout::Layout;
use crate::{cycle, disk, index, ops, sweep};

/// In-process lock stripes, picked by the first byte of the (uniform) record id.
const STRIPES: usize = 256;

/// A durable session store keeping one file per session in a folder. Clones share their
/// state, so one store can sit behind several layers and a sweep task.
///
/// See the [crate docs](crate) for the file layout, the locking scheme and the limits.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    layout: Layout,
    /// Writers of one session queue here before taking its file lock, so they wait on
    /// the runtime instead of each occupying a blocking thread inside `flock`.
    stripes: Box<[Arc<Mutex<()>>]>,
}

impl FileStore {
    /// Opens the store in `dir`, creating the folder (and missing parents) with mode 0700
    /// on unix if it does not exist.
    ///
    /// This is a synchronous constructor: it does a little blocking I/O once (creating and
    /// resolving the folder), which is fine at startup. Every later operation runs its file
    /// I/O on tokio's blocking pool, so the store needs a tokio runtime.
    ///
    /// A folder that exists already keeps its mode; if others can read it, a warning is
    /// logged, since its listing tells how many sessions there are (the files themselves
    /// are always created 0600).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] with the I/O error when the folder cannot be created or
    /// resolved, or `dir` exists and is not a folder.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        disk::create_dir(dir).map_err(StoreError::backend)?;
        // Absolute, so a later change of the working directory cannot move the store.
        let dir = std::fs::canonicalize(dir).map_err(StoreError::backend)?;
        warn_if_shared(&dir);
        let stripes = (0..STRIPES).map(|_| Arc::new(Mutex::new(()))).collect();
        Ok(Self { inner: Arc::new(Inner { layout: Layout::new(dir), stripes }) })
    }

    /// The folder the store keeps its files in (absolute).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.inner.layout.dir()
    }

    /// Runs blocking work that takes file locks only as it needs them (reads, listings, the
    /// sweep).
    async fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Layout) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || op(&inner.layout)).await.map_err(StoreError::backend)?
    }

    /// Runs a blocking change of sessions on the blocking pool, after queueing on their
    /// in-process stripes. The guards move into the blocking task, so a caller that gives
    /// up early does not let the next writer in while the work still runs.
    ///
    /// Stripes are taken in index order (and each once), so two callers naming the same
    /// two sessions cannot deadlock. No file lock is held while waiting for a stripe, so
    /// stripes and file locks cannot wait on each other in a circle either.
    async fn run_locked<T, F>(&self, ids: &[RecordId], op: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Layout) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let mut stripes: Vec<usize> = ids.iter().map(|id| usize::from(id.as_bytes()[0]) % STRIPES).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(Arc::clone(&self.inner.stripes[stripe]).lock_owned().await);
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let result = op(&inner.layout);
            drop(guards);
            result
        })
        .await
        .map_err(StoreError::backend)?
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore").field("dir", &self.dir()).finish_non_exhaustive()
    }
}

#[cfg(unix)]
fn warn_if_shared(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;

    if std::fs::metadata(dir).is_ok_and(|meta| meta.permissions().mode() & 0o077 != 0) {
        tracing::warn!("the session folder is accessible to other users; mode 0700 is advised");
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_: &Path) {}

#[async_trait]
impl SessionStore for FileStore {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let (id, record) = (record.id, record.clone());
        self.run_locked(&[id], move |layout| {
            ops::create(layout, &record)?;
            // A failed index update fails the call even though the record is stored: a
            // session its user's listing misses would survive "log out everywhere".
            index::note(layout, &record, true)
        })
        .await
    }

    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let id = *id;
        self.run(move |layout| ops::load(layout, &id)).await
    }

    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        let (id, patch) = (patch.id, patch.clone());
        self.run_locked(&[id], move |layout| {
            let (applied, owned) = ops::apply(layout, &patch)?;
            if let Some((record, user_changed)) = owned {
                index::note(layout, &record, user_changed)?;
            }
            Ok(applied)
        })
        .await
    }

    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        let (id, patch) = (patch.id, patch.clone());
        self.run_locked(&[id, to], move |layout| {
            let (applied, moved) = cycle::cycle(layout, &patch, to)?;
            // The old id stays listed until a listing finds its forward and drops it. A
            // failed index update fails the call, as in `create`: then the cookie of a
            // session that "log out everywhere" would miss is never sent.
            if let Some(record) = moved {
                index::note(layout, &record, true)?;
            }
            Ok(applied)
        })
        .await
    }

    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        let id = *id;
        // The user index keeps the id until the next listing or sweep drops it: it is a
        // hint, and rewriting it would cost every logout two more fsyncs. The records a
        // forward leads to are not queued for on their stripes: their file locks suffice.
        self.run_locked(&[id], move |layout| ops::delete(layout, &id)).await
    }

    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let user = user.to_owned();
        self.run(move |layout| index::sessions_of(layout, &user)).await
    }
}

#[async_trait]
impl ExpiredDeletion for FileStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.run(sweep::delete_expired).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_in_process_locks() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path()).unwrap();
        let clone = store.clone();
        assert!(Arc::ptr_eq(&store.inner, &clone.inner));
        let other = FileStore::new(dir.path()).unwrap();
        assert!(!Arc::ptr_eq(&store.inner, &other.inner));
    }

    #[test]
    fn debug_shows_the_folder_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path()).unwrap();
        let debug = format!("{store:?}");
        assert!(debug.starts_with("FileStore { dir: "), "{debug}");
        assert!(!debug.contains("Mutex"), "{debug}");
    }
}
