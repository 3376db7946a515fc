//! Removing what no session needs: expired and corrupt records, temp files left by a
//! crash, and lock files of sessions that are gone.
//!
//! The sweep only ever *tries* a session's lock: a file whose session is busy is left for
//! the next sweep, so a sweep never waits on (or stalls) a request, and a temp file being
//! written (its writer holds the lock) is never taken for a leftover.

use std::fs::{self, DirEntry};
use std::io;

use session_core::{RecordId, StoreError};
use time::OffsetDateTime;

use crate::disk::{self, Stored};
use crate::layout::{self, Kind, Layout};
use crate::lock::SessionLock;
use crate::ops;

/// Returns the number of expired records removed.
pub(crate) fn delete_expired(layout: &Layout) -> Result<u64, StoreError> {
    let now = ops::now();
    let mut expired = 0;
    let mut changed = false;
    for entry in fs::read_dir(layout.dir()).map_err(StoreError::backend)? {
        let entry = entry.map_err(StoreError::backend)?;
        let Some((id, kind)) = layout::classify(&entry.file_name()) else {
            continue;
        };
        let swept = match kind {
            Kind::Record => sweep_record(layout, &id, &entry, now),
            Kind::Temp => sweep_temp(layout, &id),
            Kind::Lock => sweep_lock(layout, &id),
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
    Ok(expired)
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
    let Some(lock) = SessionLock::try_acquire(layout, id)? else {
        return Ok(Swept::Kept);
    };
    match disk::read(layout, id)? {
        Stored::Found(record) if !record.is_expired_at(now) => Ok(Swept::Kept),
        Stored::Found(_) => {
            disk::remove(&layout.path(id, Kind::Record))?;
            lock.remove_file()?;
            Ok(Swept::Expired)
        }
        Stored::Corrupt => ops::discard(layout, id, lock).map(|()| Swept::Removed),
        Stored::Absent => lock.remove_file().map(|()| Swept::Removed),
    }
}

fn sweep_temp(layout: &Layout, id: &RecordId) -> io::Result<Swept> {
    let Some(lock) = SessionLock::try_acquire(layout, id)? else {
        return Ok(Swept::Kept);
    };
    disk::remove(&layout.path(id, Kind::Temp))?;
    if !layout.path(id, Kind::Record).try_exists()? {
        lock.remove_file()?;
    }
    Ok(Swept::Removed)
}

fn sweep_lock(layout: &Layout, id: &RecordId) -> io::Result<Swept> {
    if layout.path(id, Kind::Record).try_exists()? {
        return Ok(Swept::Kept);
    }
    let Some(lock) = SessionLock::try_acquire(layout, id)? else {
        return Ok(Swept::Kept);
    };
    // A create may have finished between the check and the lock.
    if layout.path(id, Kind::Record).try_exists()? {
        return Ok(Swept::Kept);
    }
    lock.remove_file().map(|()| Swept::Removed)
}
