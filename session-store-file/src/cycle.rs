//! `cycle`: a session moves to a new id and leaves a forward at the old one.
//!
//! Both session locks are held from the first read to the last write, so for every process
//! sharing the folder the move is one step: no patch, delete or create of either id comes
//! in between. Only `cycle` ever holds two session locks, and it takes them in the order
//! of the ids' bytes, so two cycles cannot deadlock; everything else holds one at most.
//!
//! The new record is written before the old one turns into a forward. A crash between the
//! two leaves the session live under its old id, plus a copy under the new id whose cookie
//! was never sent (no one can use it; it expires), never no session at all.

use session_core::{Applied, Forward, Patch, Record, RecordId, StoreError};

use crate::disk::{self, Stored};
use crate::layout::{Kind, Layout};
use crate::lock::FileLock;
use crate::ops;

/// Moves the live record `patch.id`, with `patch` applied, to `to`. Returns the outcome and,
/// when the session goes on with a user, the moved record, for the caller to index once
/// the locks are released (as `apply` does).
pub(crate) fn cycle(
    layout: &Layout,
    patch: &Patch,
    to: RecordId,
) -> Result<(Applied, Option<Record>), StoreError> {
    // As in `apply`: no file, no session, and no lock file made for an unknown id.
    if !layout.path(&patch.id, Kind::Record).try_exists().map_err(StoreError::backend)? {
        return Err(StoreError::NotFound);
    }
    let (from_lock, to_lock) = lock_both(layout, &patch.id, &to)?;
    let moved = move_locked(layout, patch, to, from_lock);
    if let Some(lock) = to_lock {
        release(layout, &to, lock);
    }
    moved
}

/// Both session locks, in the order of the ids' bytes; one lock when the ids are equal (a
/// second `flock` of the same file through another handle would wait for ourselves).
fn lock_both(
    layout: &Layout,
    from: &RecordId,
    to: &RecordId,
) -> Result<(FileLock, Option<FileLock>), StoreError> {
    if from == to {
        return Ok((ops::session_lock(layout, from)?, None));
    }
    if from.as_bytes() < to.as_bytes() {
        let first = ops::session_lock(layout, from)?;
        Ok((first, Some(ops::session_lock(layout, to)?)))
    } else {
        let first = ops::session_lock(layout, to)?;
        Ok((ops::session_lock(layout, from)?, Some(first)))
    }
}

/// The move itself, under both locks. Every refusal returns before the first write.
fn move_locked(
    layout: &Layout,
    patch: &Patch,
    to: RecordId,
    from_lock: FileLock,
) -> Result<(Applied, Option<Record>), StoreError> {
    let now = ops::now();
    let mut record = match disk::read(layout, &patch.id).map_err(StoreError::backend)? {
        Stored::Found(record) if !record.is_expired_at(now) => record,
        // Deleted, expired, or moved already (a forward): the session is not ours to move.
        stored => {
            ops::forget(layout, &patch.id, stored, from_lock).map_err(StoreError::backend)?;
            return Err(StoreError::NotFound);
        }
    };
    let original = record.clone();
    let applied = patch.apply_to(&mut record, now)?;
    if applied.ended {
        disk::remove(&layout.path(&patch.id, Kind::Record)).map_err(StoreError::backend)?;
        disk::sync_dir(layout.dir()).map_err(StoreError::backend)?;
        from_lock.remove_file().map_err(StoreError::backend)?;
        return Ok((applied, None));
    }
    // When `to` is `patch.id`, this reads the live record itself: taken, as it should be.
    match disk::read(layout, &to).map_err(StoreError::backend)? {
        Stored::Found(held) if !held.is_expired_at(now) => return Err(StoreError::Collision),
        Stored::Forward(forward) if !forward.is_expired_at(now) => return Err(StoreError::Collision),
        Stored::Corrupt => ops::report_corrupt(),
        Stored::Found(_) | Stored::Forward(_) | Stored::Absent => {}
    }
    record.id = to;
    disk::write(layout, &record).map_err(StoreError::backend)?;
    let forward = Forward::new(to, original.expires_at, now);
    if let Err(err) = disk::write_forward(layout, &patch.id, &forward) {
        undo(layout, &original, &to);
        return Err(StoreError::backend(err));
    }
    drop(from_lock);
    Ok((applied, record.user.is_some().then_some(record)))
}

/// Puts things back after the forward could not be written. The failure may have come
/// after its rename (from the folder's `fsync`), so the old record is written again rather
/// than assumed intact; then the new copy goes. Best effort: this runs after an I/O error.
fn undo(layout: &Layout, original: &Record, to: &RecordId) {
    let restored = disk::write(layout, original);
    let removed = disk::remove(&layout.path(to, Kind::Record)).and_then(|_| disk::sync_dir(layout.dir()));
    if let Err(err) = restored.and(removed) {
        tracing::warn!(error = %err, "could not undo a failed session id change");
    }
}

/// Releases the lock of `to`, removing its lock file when no record file came of it (a
/// refused or failed move). A failure to remove it is not the caller's: the move is done
/// or refused either way, and the sweep removes lock files without a record.
fn release(layout: &Layout, to: &RecordId, lock: FileLock) {
    if layout.path(to, Kind::Record).try_exists().is_ok_and(|exists| !exists) {
        let _ = lock.remove_file();
    }
}
