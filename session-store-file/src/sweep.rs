//! Removing what no session needs: expired and corrupt records, expired forwards, temp
//! files left by a crash, lock files of sessions that are gone, and index entries of records that are gone.
//!
//! The sweep only ever *tries* a lock: a file whose session (or index) is busy is left for
//! the next sweep, so a sweep never waits on (or stalls) a request, and a temp file being
//! written (its writer holds the lock) is never taken for a leftover.

use std::fs::{self, DirEntry};
use std::io;
use std::path::{Path, PathBuf};

use session_core::{RecordId, StoreError};
use time::OffsetDateTime;

use crate::disk::{self, Stored};
use crate::layout::{self, Kind, Layout};
use crate::lock::FileLock;
use crate::{index, ops};

/// Returns the number of expired records (and forwards) removed.
pub(crate) fn delete_expired(layout: &Layout) -> Result<u64, StoreError> {
    let now = ops::now();
    let mut expired = 0;
    let mut changed = false;
    for entry in fs::read_dir(layout.dir()).map_err(StoreError::backend)? {
        let entry = entry.map_err(StoreError::backend)?;
        let Some((id, kind)) = layout::classify(&entry.file_name()) else {
            continue;
        };
        let (record, lock) = (layout.path(&id, Kind::Record), layout.path(&id, Kind::Lock));
        let swept = match kind {
            Kind::Record => sweep_record(layout, &id, &entry, now),
            Kind::Temp => sweep_temp(&record, &layout.path(&id, Kind::Temp), lock),
            Kind::Lock => sweep_lock(&record, lock),
        };
        match swept {
            Ok(Swept::Kept) => {}
            Ok(Swept::Removed) => changed = true,
            Ok(Swept::Expired) => {
                changed = true;
                expired += 1;
            }
            // One unreadable file must not stop the sweep of the others.
            Err(err) => tracing::warn!(error = %err, "could not sweep a session file"),
        }
    }
    if changed {
        disk::sync_dir(layout.dir()).map_err(StoreError::backend)?;
    }
    // After the records, so the ids of the records just removed go in the same sweep.
    sweep_users(layout)?;
    Ok(expired)
}

fn sweep_users(layout: &Layout) -> Result<(), StoreError> {
    let entries = match fs::read_dir(layout.users_dir()) {
        Ok(entries) => entries,
        // No user was ever indexed.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(StoreError::backend(err)),
    };
    let mut changed = false;
    for entry in entries {
        let entry = entry.map_err(StoreError::backend)?;
        let Some((key, kind)) = layout::classify_user(&entry.file_name()) else {
            continue;
        };
        let (index, lock) = (layout.user_path(&key, Kind::Record), layout.user_path(&key, Kind::Lock));
        let swept = match kind {
            Kind::Record => {
                index::prune(layout, &key).map(|pruned| if pruned { Swept::Removed } else { Swept::Kept })
            }
            Kind::Temp => sweep_temp(&index, &layout.user_path(&key, Kind::Temp), lock),
            Kind::Lock => sweep_lock(&index, lock),
        };
        match swept {
            Ok(Swept::Kept) => {}
            Ok(_) => changed = true,
            Err(err) => tracing::warn!(error = %err, "could not sweep a user index file"),
        }
    }
    if changed {
        disk::sync_dir(layout.users_dir()).map_err(StoreError::backend)?;
    }
    Ok(())
}

enum Swept {
    Kept,
    Removed,
    Expired,
}

fn sweep_record(layout: &Layout, id: &RecordId, entry: &DirEntry, now: OffsetDateTime) -> io::Result<Swept> {
    // Writes set the mtime to the expiry, so a live record is passed over without being
    // read. Anything else (a clock that cannot hold the expiry, a file touched by hand)
    // has an mtime in the past and is decided by its content.
    let ahead = disk::system_time(now)
        .zip(entry.metadata().and_then(|meta| meta.modified()).ok())
        .is_some_and(|(now, modified)| modified > now);
    if ahead {
        return Ok(Swept::Kept);
    }
    let Some(lock) = FileLock::try_acquire(layout.path(id, Kind::Lock))? else {
        return Ok(Swept::Kept);
    };
    match disk::read(layout, id)? {
        Stored::Found(record) if !record.is_expired_at(now) => Ok(Swept::Kept),
        Stored::Forward(forward) if !forward.is_expired_at(now) => Ok(Swept::Kept),
        Stored::Found(_) | Stored::Forward(_) => {
            disk::remove(&layout.path(id, Kind::Record))?;
            lock.remove_file()?;
            Ok(Swept::Expired)
        }
        Stored::Corrupt => ops::discard(layout, id, lock).map(|()| Swept::Removed),
        Stored::Absent => lock.remove_file().map(|()| Swept::Removed),
    }
}

/// A temp file is a crash leftover once its lock is free: a writer holds the lock.
fn sweep_temp(data: &Path, temp: &Path, lock: PathBuf) -> io::Result<Swept> {
    let Some(lock) = FileLock::try_acquire(lock)? else {
        return Ok(Swept::Kept);
    };
    disk::remove(temp)?;
    if !data.try_exists()? {
        lock.remove_file()?;
    }
    Ok(Swept::Removed)
}

/// A lock file whose data file (record or index) is gone.
fn sweep_lock(data: &Path, lock: PathBuf) -> io::Result<Swept> {
    if data.try_exists()? {
        return Ok(Swept::Kept);
    }
    let Some(lock) = FileLock::try_acquire(lock)? else {
        return Ok(Swept::Kept);
    };
    // A create may have finished between the check and the lock.
    if data.try_exists()? {
        return Ok(Swept::Kept);
    }
    lock.remove_file().map(|()| Swept::Removed)
}
