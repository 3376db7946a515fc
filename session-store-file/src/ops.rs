//! The store operations as blocking functions, run on tokio's blocking pool.
//!
//! Every change reads the record and writes its replacement under the session's file lock,
//! so reading, patching and writing are one step for every process sharing the folder.
//! Reads take no lock: a rename swaps the whole file, so a reader sees the old record or
//! the new one. Every change releases the session's lock before it returns, so the caller
//! can update a user index without holding a session lock (see `index` for the order).
//!
//! A record file may hold a forward that `cycle` left instead of a record: no session for
//! `load` and `apply`, a taken id for `create` until it expires, and followed by `delete`.

use std::io;

use session_core::store::MAX_FORWARDS;
use session_core::{Applied, Patch, Record, RecordId, StoreError};
use time::OffsetDateTime;

use crate::disk::{self, Stored};
use crate::layout::{Kind, Layout};
use crate::lock::FileLock;

pub(crate) fn create(layout: &Layout, record: &Record) -> Result<(), StoreError> {
    let lock = session_lock(layout, &record.id)?;
    let absent = match disk::read(layout, &record.id).map_err(StoreError::backend)? {
        Stored::Found(current) if !current.is_expired_at(now()) => return Err(StoreError::Collision),
        // A delete of the old id may still follow it here: the id must not hold another
        // session until the forward is gone.
        Stored::Forward(forward) if !forward.is_expired_at(now()) => return Err(StoreError::Collision),
        Stored::Corrupt => {
            report_corrupt();
            false
        }
        Stored::Found(_) | Stored::Forward(_) => false,
        Stored::Absent => true,
    };
    if let Err(err) = disk::write(layout, record) {
        // A session that never reached the disk needs no lock file: without this, every
        // create refused by a full or read-only disk would leave one until the next sweep.
        if absent {
            let _ = lock.remove_file();
        }
        return Err(StoreError::backend(err));
    }
    drop(lock);
    Ok(())
}

pub(crate) fn load(layout: &Layout, id: &RecordId) -> Result<Option<Record>, StoreError> {
    match disk::read(layout, id).map_err(StoreError::backend)? {
        Stored::Absent | Stored::Forward(_) => Ok(None),
        Stored::Found(record) => Ok(live(record)),
        Stored::Corrupt => {
            // A writer may have swapped a good record in since; decide under the lock.
            let lock = session_lock(layout, id)?;
            match disk::read(layout, id).map_err(StoreError::backend)? {
                Stored::Found(record) => Ok(live(record)),
                Stored::Forward(_) => Ok(None),
                Stored::Absent => lock.remove_file().map(|()| None).map_err(StoreError::backend),
                Stored::Corrupt => discard(layout, id, lock).map(|()| None).map_err(StoreError::backend),
            }
        }
    }
}

/// Applies `patch` under the session's file lock: read, change, write (or delete when it
/// ends the session) as one step for every process sharing the folder, so writers of
/// different keys never conflict. Returns the outcome and, when the session goes on with a
/// user, the record (for the caller to index once the lock is released: a lost index entry
/// comes back with the next write) with whether its user changed.
pub(crate) fn apply(layout: &Layout, patch: &Patch) -> Result<(Applied, Option<(Record, bool)>), StoreError> {
    let lock = match lock_if_present(layout, &patch.id)? {
        Some(lock) => lock,
        None => return Err(StoreError::NotFound),
    };
    match disk::read(layout, &patch.id).map_err(StoreError::backend)? {
        Stored::Found(mut record) if !record.is_expired_at(now()) => {
            let user_before = record.user.clone();
            let applied = patch.apply_to(&mut record, now())?;
            if applied.ended {
                disk::remove(&layout.path(&patch.id, Kind::Record)).map_err(StoreError::backend)?;
                disk::sync_dir(layout.dir()).map_err(StoreError::backend)?;
                lock.remove_file().map_err(StoreError::backend)?;
                return Ok((applied, None));
            }
            disk::write(layout, &record).map_err(StoreError::backend)?;
            drop(lock);
            let changed = user_before != record.user;
            Ok((applied, record.user.is_some().then_some((record, changed))))
        }
        stored => {
            forget(layout, &patch.id, stored, lock).map_err(StoreError::backend)?;
            Err(StoreError::NotFound)
        }
    }
}

/// Deletes the record and, when `id` holds a forward, the chain of records it leads to.
///
/// One lock at a time: the forward is removed before its target is locked, so a `cycle` of
/// the target in between (which holds both of its locks) has either not started, and the
/// target is deleted, or finished, and the target is a forward that is followed in turn.
/// Holding no lock while taking the next also keeps this out of the lock order of `cycle`.
pub(crate) fn delete(layout: &Layout, id: &RecordId) -> Result<(), StoreError> {
    let mut next = Some(*id);
    for _ in 0..=MAX_FORWARDS {
        let Some(id) = next.take() else {
            break;
        };
        next = delete_one(layout, &id)?;
    }
    Ok(())
}

/// Removes one record file; returns where it led if it was a live forward.
fn delete_one(layout: &Layout, id: &RecordId) -> Result<Option<RecordId>, StoreError> {
    let Some(lock) = lock_if_present(layout, id)? else {
        return Ok(None);
    };
    // Under the lock, so a writer that read the record before cannot rename it back, and
    // a forward read here is the one removed.
    let next = match disk::read(layout, id).map_err(StoreError::backend)? {
        // An expired forward's target may since be another session's id.
        Stored::Forward(forward) if !forward.is_expired_at(now()) => Some(forward.to),
        _ => None,
    };
    disk::remove(&layout.path(id, Kind::Record)).map_err(StoreError::backend)?;
    disk::sync_dir(layout.dir()).map_err(StoreError::backend)?;
    lock.remove_file().map_err(StoreError::backend)?;
    Ok(next)
}

/// The session's lock, or `None` without taking it when there is no record file. A
/// missing file is a valid answer on its own (the operation happened before any later
/// create), and skipping the lock spares a lock file for every unknown id a client sends.
fn lock_if_present(layout: &Layout, id: &RecordId) -> Result<Option<FileLock>, StoreError> {
    if !layout.path(id, Kind::Record).try_exists().map_err(StoreError::backend)? {
        return Ok(None);
    }
    session_lock(layout, id).map(Some)
}

pub(crate) fn session_lock(layout: &Layout, id: &RecordId) -> Result<FileLock, StoreError> {
    FileLock::acquire(layout.path(id, Kind::Lock)).map_err(StoreError::backend)
}

/// Cleans up after finding no live record under the lock. An expired record stays for
/// the sweep (it may still count there), and so does a forward (a delete may still need
/// it); a corrupt one goes now.
pub(crate) fn forget(layout: &Layout, id: &RecordId, stored: Stored, lock: FileLock) -> io::Result<()> {
    match stored {
        Stored::Absent => lock.remove_file(),
        Stored::Corrupt => discard(layout, id, lock),
        Stored::Found(_) | Stored::Forward(_) => Ok(()),
    }
}

/// Removes a corrupt record file: it holds no session anyone can use.
pub(crate) fn discard(layout: &Layout, id: &RecordId, lock: FileLock) -> io::Result<()> {
    report_corrupt();
    disk::remove(&layout.path(id, Kind::Record))?;
    disk::sync_dir(layout.dir())?;
    lock.remove_file()
}

pub(crate) fn report_corrupt() {
    // Neither the id nor the bytes: a log is no place for session data, and the decode
    // error could quote some of it.
    tracing::warn!("session file is not a valid record (torn or foreign); treating it as no session");
}

fn live(record: Record) -> Option<Record> {
    Some(record).filter(|r| !r.is_expired_at(now()))
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
