//! The advisory lock that orders writers of one file across processes.
//!
//! A session's lock is taken on `<id>.lock`, a user index's on `users/<key>.lock`, never on
//! the data file: that is replaced by rename, and a lock held on the replaced inode would not
//! exclude a writer that opened the new one. The lock file is never renamed. It is removed
//! only by a holder of its lock, and every taker checks after locking that the path still
//! names the inode it locked; otherwise it locked a file that has just been removed, and it
//! tries again.
//!
//! `File::lock` is `flock` on unix and `LockFileEx` on Windows: both belong to the open
//! file, not the process, so two `FileStore`s in one process exclude each other too.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// An exclusive lock on one session or one user index, released on drop.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Waits for the lock on the lock file `path`. Blocking: call it off the async runtime.
    pub(crate) fn acquire(path: PathBuf) -> io::Result<Self> {
        loop {
            let file = open(&path)?;
            file.lock()?;
            if still_linked(&file, &path)? {
                return Ok(Self { file, path });
            }
        }
    }

    /// The lock on `path` if nobody holds it, without waiting.
    pub(crate) fn try_acquire(path: PathBuf) -> io::Result<Option<Self>> {
        loop {
            let file = open(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(err)) => return Err(err),
            }
            if still_linked(&file, &path)? {
                return Ok(Some(Self { file, path }));
            }
        }
    }

    /// Removes the lock file of a session (or index) that has no data file any more, then
    /// unlocks. Anyone waiting on the removed file sees it unlinked and retries on a fresh one.
    pub(crate) fn remove_file(self) -> io::Result<()> {
        if cfg!(unix) {
            match fs::remove_file(&self.path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        // Elsewhere there are no inode numbers to detect the removal with, so the empty
        // file stays; that costs a directory entry, never exclusion.
        Ok(())
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first just says so.
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    crate::disk::private_mode(&mut options);
    options.open(path)
}

/// Whether `path` still names the file we hold open (it may have been removed while we
/// waited for its lock).
#[cfg(unix)]
fn still_linked(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;

    let held = file.metadata()?;
    match fs::metadata(path) {
        Ok(named) => Ok(held.dev() == named.dev() && held.ino() == named.ino()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(not(unix))]
fn still_linked(_: &File, _: &Path) -> io::Result<bool> {
    // Lock files are never removed off unix, so the path always names the held file.
    Ok(true)
}

#[cfg(test)]
mod tests {
    use session_core::Id;

    use super::*;
    use crate::layout::{Kind, Layout};

    #[test]
    fn the_lock_excludes_a_second_handle_in_the_same_process() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        let id = Id::random().record_id();
        let held = FileLock::acquire(layout.path(&id, Kind::Lock)).unwrap();
        assert!(FileLock::try_acquire(layout.path(&id, Kind::Lock)).unwrap().is_none());
        drop(held);
        assert!(FileLock::try_acquire(layout.path(&id, Kind::Lock)).unwrap().is_some());
    }

    #[cfg(unix)]
    #[test]
    fn a_waiter_on_a_removed_lock_file_moves_to_the_fresh_one() {
        use std::sync::mpsc;
        use std::time::Duration;

        let dir = tempfile::tempdir().unwrap();
        let layout = std::sync::Arc::new(Layout::new(dir.path().to_owned()));
        let id = Id::random().record_id();
        let held = FileLock::acquire(layout.path(&id, Kind::Lock)).unwrap();
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let layout = layout.clone();
            std::thread::spawn(move || {
                let lock = FileLock::acquire(layout.path(&id, Kind::Lock)).unwrap();
                tx.send(()).unwrap();
                // Hold it until the main thread has checked that it excludes others.
                std::thread::sleep(Duration::from_millis(200));
                drop(lock);
            })
        };
        // Let the waiter open the old file and block on it.
        std::thread::sleep(Duration::from_millis(100));
        held.remove_file().unwrap();
        rx.recv().unwrap();
        // Had the waiter kept the removed inode, this fresh file would be free.
        assert!(FileLock::try_acquire(layout.path(&id, Kind::Lock)).unwrap().is_none());
        waiter.join().unwrap();
        assert!(FileLock::try_acquire(layout.path(&id, Kind::Lock)).unwrap().is_some());
    }
}
