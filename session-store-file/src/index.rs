//! The per-user index: which records hold a user's sessions.
//!
//! `users/<key>` (the key is the SHA-256 of the user name, see `UserKey`) lists record
//! ids, one per line as 64 hex characters. It is a hint, not the truth: a listing loads
//! every listed record and keeps only the live ones of that user, so an id left behind by a
//! delete, an expiry or a change of user costs one read and is dropped then (or by the
//! sweep). What it must never do is miss a live session of its user, or "log out
//! everywhere" would miss one. Three rules ensure that:
//!
//! - A writer adds the id *after* its record is on disk, under the index's lock.
//! - A listing (or the sweep) drops an id only on what it read of the record *while it
//!   holds* that lock. A drop based on a record older than the add's therefore happens
//!   before the add, which puts the id back; a drop after the add read the new record.
//!   A listed id holding a forward (`cycle` moved the session and has not indexed the new
//!   id yet) is followed: the session is listed, and indexed, under the id it moved to.
//! - No session lock is held while waiting for an index lock: the record operations
//!   release theirs first. A listing holding an index lock takes a session lock only to
//!   discard a corrupt record, and that holder never waits for an index lock, so the two
//!   kinds of lock cannot deadlock.
//!
//! A crash between the record write and the index update leaves the session unlisted
//! until its next patch, which checks the index again.
//!
//! Indexes are replaced like records (temp file, `fsync`, rename, folder `fsync`) and
//! locked like sessions, with a `users/<key>.lock` file, so processes sharing the folder
//! keep them consistent.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io;

use session_core::store::MAX_FORWARDS;
use session_core::{Record, RecordId, SessionInfo, StoreError};

use crate::disk::{self, Stored};
use crate::layout::{Kind, Layout, UserKey};
use crate::lock::FileLock;
use crate::ops;

/// Called after `record` was created or patched, with no session lock held: makes sure the
/// index of its user lists it. `user_changed` is false when the stored record already had
/// this user.
pub(crate) fn note(layout: &Layout, record: &Record, user_changed: bool) -> Result<(), StoreError> {
    let Some(user) = &record.user else {
        return Ok(());
    };
    // An expired record never lives again (`apply` refuses it): it needs no entry.
    if record.is_expired_at(ops::now()) {
        return Ok(());
    }
    // While the user stays the same, no listing can have a reason to drop the id, so
    // finding it without the lock is enough. After a change a listing may be about to drop
    // it, based on the record as it was: then only the locked add is safe.
    add(layout, &UserKey::of(user), &record.id, !user_changed).map_err(StoreError::backend)
}

fn add(layout: &Layout, key: &UserKey, id: &RecordId, look_first: bool) -> io::Result<()> {
    let path = layout.user_path(key, Kind::Record);
    if look_first && read(&path)?.ids.contains(id) {
        return Ok(());
    }
    if !layout.users_dir().is_dir() {
        // Idempotent, so racing creators are fine; the folder is never removed again.
        disk::create_dir(layout.users_dir())?;
        disk::sync_dir(layout.dir())?;
    }
    let lock = FileLock::acquire(layout.user_path(key, Kind::Lock))?;
    let mut listed = read(&path)?;
    if listed.ids.insert(*id) || !listed.clean() {
        store(layout, key, &listed.ids, lock)?;
    }
    Ok(())
}

/// The live sessions of `user`; drops the ids that no longer are from the index.
pub(crate) fn sessions_of(layout: &Layout, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
    let key = UserKey::of(user);
    let path = layout.user_path(&key, Kind::Record);
    // No index, no sessions; and asking about a name leaves no lock file behind.
    if !path.try_exists().map_err(StoreError::backend)? {
        return Ok(Vec::new());
    }
    let lock = FileLock::acquire(layout.user_path(&key, Kind::Lock)).map_err(StoreError::backend)?;
    let listed = read(&path).map_err(StoreError::backend)?;
    let mut kept = BTreeSet::new();
    let mut found = Vec::with_capacity(listed.ids.len());
    for id in &listed.ids {
        // A record that cannot be read fails the listing: leaving it out would let
        // "log out everywhere" skip a session that may well be live.
        let (mut at, mut record) = (*id, ops::load(layout, id)?);
        if record.is_none() {
            // `cycle` indexes the new id only after releasing its session locks: in
            // between, the listed id holds a forward, and the session is where it leads.
            at = moved_to(layout, id)?;
            if at != *id {
                record = ops::load(layout, &at)?;
            }
        }
        let record = record.filter(|r| r.user.as_deref() == Some(user));
        if let Some(info) = record.as_ref().and_then(SessionInfo::from_record) {
            if kept.insert(at) {
                found.push(info);
            }
        }
    }
    if kept != listed.ids || !listed.clean() || !listed.present {
        store(layout, &key, &kept, lock).map_err(StoreError::backend)?;
    }
    Ok(found)
}

/// Where the forwards a `cycle` left at `id` lead (at most `MAX_FORWARDS` of them); `id`
/// itself when it holds none.
fn moved_to(layout: &Layout, id: &RecordId) -> Result<RecordId, StoreError> {
    let mut at = *id;
    for _ in 0..MAX_FORWARDS {
        match disk::read(layout, &at).map_err(StoreError::backend)? {
            Stored::Forward(forward) if !forward.is_expired_at(ops::now()) => at = forward.to,
            _ => break,
        }
    }
    Ok(at)
}

/// For the sweep: drops the ids whose record file is gone, unless the index is in use
/// (it is then left for the next sweep). Returns whether anything changed.
pub(crate) fn prune(layout: &Layout, key: &UserKey) -> io::Result<bool> {
    let Some(lock) = FileLock::try_acquire(layout.user_path(key, Kind::Lock))? else {
        return Ok(false);
    };
    let listed = read(&layout.user_path(key, Kind::Record))?;
    let mut kept = BTreeSet::new();
    for id in &listed.ids {
        if layout.path(id, Kind::Record).try_exists()? {
            kept.insert(*id);
        }
    }
    if kept.len() == listed.lines && listed.present {
        return Ok(false);
    }
    store(layout, key, &kept, lock)?;
    Ok(true)
}

/// An index as read.
#[derive(Debug, Default)]
struct Listed {
    /// The valid ids, without duplicates.
    ids: BTreeSet<RecordId>,
    /// Lines in the file, valid or not: more than `ids` means it is worth rewriting.
    lines: usize,
    present: bool,
}

impl Listed {
    fn clean(&self) -> bool {
        self.lines == self.ids.len()
    }
}

fn read(path: &std::path::Path) -> io::Result<Listed> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Listed::default()),
        Err(err) => return Err(err),
    };
    // Only this store writes the file, atomically; a line that does not parse (a hand
    // edit) is skipped rather than failing every listing of the user.
    let text = String::from_utf8_lossy(&bytes);
    let mut listed = Listed { present: true, ..Listed::default() };
    for line in text.lines() {
        listed.lines += 1;
        if let Ok(id) = line.parse() {
            listed.ids.insert(id);
        }
    }
    Ok(listed)
}

/// Replaces the index with `ids`, or removes it (and its lock file) when there are none.
/// Takes the lock to show that the caller holds it.
fn store(layout: &Layout, key: &UserKey, ids: &BTreeSet<RecordId>, lock: FileLock) -> io::Result<()> {
    let path = layout.user_path(key, Kind::Record);
    if ids.is_empty() {
        if disk::remove(&path)? {
            disk::sync_dir(layout.users_dir())?;
        }
        return lock.remove_file();
    }
    let mut text = String::with_capacity(ids.len() * 65);
    for id in ids {
        let _ = writeln!(text, "{id}");
    }
    disk::replace(&layout.user_path(key, Kind::Temp), &path, text.as_bytes(), None)?;
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use session_core::Id;
    use time::{Duration, OffsetDateTime};

    use super::*;

    fn owned(user: &str) -> Record {
        let now = OffsetDateTime::now_utc();
        let mut record = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
        record.user = Some(user.to_owned());
        record
    }

    #[test]
    fn the_index_is_one_hex_id_per_line_and_goes_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        let (a, b) = (owned("../alice"), owned("../alice"));
        for r in [&a, &b] {
            ops::create(&layout, r).unwrap();
            note(&layout, r, true).unwrap();
        }
        let path = layout.user_path(&UserKey::of("../alice"), Kind::Record);
        let text = fs::read_to_string(&path).unwrap();
        let mut want = [format!("{}\n", a.id), format!("{}\n", b.id)];
        want.sort();
        assert_eq!(text, want.concat());

        // Garbage and duplicates are dropped by the next listing, with the gone record.
        fs::write(&path, format!("{text}not an id\n{}\n", a.id)).unwrap();
        ops::delete(&layout, &b.id).unwrap();
        let listed = sessions_of(&layout, "../alice").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{}\n", a.id));

        ops::delete(&layout, &a.id).unwrap();
        assert!(prune(&layout, &UserKey::of("../alice")).unwrap());
        assert!(!path.exists());
        assert_eq!(fs::read_dir(layout.users_dir()).unwrap().count(), 0, "no lock file left");
    }

    /// A listing between `cycle`'s move and its indexing of the new id (found by the
    /// history check, `session_core::testing::history`): the index names only the old id,
    /// now a forward. The listing follows it, and indexes the new id.
    #[test]
    fn a_listing_while_a_cycle_indexes_the_new_id_finds_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        let mut r = owned("carol");
        r.entries.insert("k", vec![1].into());
        ops::create(&layout, &r).unwrap();
        note(&layout, &r, true).unwrap();
        let to = Id::random().record_id();
        let now = OffsetDateTime::now_utc();
        // The store indexes the moved record after this returns; the listing comes first.
        crate::cycle::cycle(&layout, &session_core::Patch::new(r.id, r.expires_at, now), to).unwrap();
        let listed: Vec<RecordId> =
            sessions_of(&layout, "carol").unwrap().iter().map(|i| i.handle.record_id()).collect();
        assert_eq!(listed, vec![to], "the moved session is missing from the listing");
        let path = layout.user_path(&UserKey::of("carol"), Kind::Record);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{to}\n"), "indexed under its new id");
    }

    #[test]
    fn a_busy_index_is_left_to_the_next_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        let r = owned("bob");
        ops::create(&layout, &r).unwrap();
        note(&layout, &r, true).unwrap();
        ops::delete(&layout, &r.id).unwrap();
        let key = UserKey::of("bob");
        let held = FileLock::acquire(layout.user_path(&key, Kind::Lock)).unwrap();
        assert!(!prune(&layout, &key).unwrap());
        drop(held);
        assert!(prune(&layout, &key).unwrap());
    }
}
