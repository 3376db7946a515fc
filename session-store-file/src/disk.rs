//! Reading and atomically replacing record files. Everything here blocks.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use session_core::{Forward, Record, RecordId};
use time::OffsetDateTime;

use crate::layout::{Kind, Layout};

/// What the record file of a session holds.
#[derive(Debug)]
pub(crate) enum Stored {
    Absent,
    /// Not a record of this id: torn by a crash outside our write path, or foreign.
    Corrupt,
    Found(Record),
    /// Left by a `cycle`: no session, but a delete follows it.
    Forward(Forward),
}

pub(crate) fn read(layout: &Layout, id: &RecordId) -> io::Result<Stored> {
    let bytes = match fs::read(layout.path(id, Kind::Record)) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Stored::Absent),
        Err(err) => return Err(err),
    };
    Ok(match session_core::Stored::from_bytes(&bytes) {
        // A file copied under another session's name must not become that session.
        Ok(session_core::Stored::Record(record)) if record.id == *id => Stored::Found(record),
        // A forward does not name its own id, so a copied one cannot be told apart; it
        // grants nothing anyway, it only widens what a delete of this id removes.
        Ok(session_core::Stored::Forward(forward)) => Stored::Forward(forward),
        _ => Stored::Corrupt,
    })
}

/// Replaces the record file so that a crash at any point leaves the old or the new
/// record: the bytes reach the disk in a temp file first, then a rename swaps it in, then
/// the folder is synced so the rename itself survives. The caller holds the session lock,
/// which makes the temp name (one per session) ours alone.
pub(crate) fn write(layout: &Layout, record: &Record) -> io::Result<()> {
    let (temp, path) = (layout.path(&record.id, Kind::Temp), layout.path(&record.id, Kind::Record));
    // The mtime is only a hint for the sweep (a record whose mtime is still ahead is live).
    replace(&temp, &path, &record.to_bytes(), system_time(record.expires_at))
}

/// Replaces the record file of `id` with `forward`, as [`write`] does. The mtime is the
/// forward's expiry, so the sweep passes over it until then.
pub(crate) fn write_forward(layout: &Layout, id: &RecordId, forward: &Forward) -> io::Result<()> {
    let (temp, path) = (layout.path(id, Kind::Temp), layout.path(id, Kind::Record));
    replace(&temp, &path, &forward.to_bytes(), system_time(forward.expires_at))
}

/// Replaces `path` with `bytes` through `temp` (in the same folder, and the caller's alone
/// under its lock): written, flushed, renamed, then the folder flushed.
pub(crate) fn replace(temp: &Path, path: &Path, bytes: &[u8], mtime: Option<SystemTime>) -> io::Result<()> {
    remove(temp)?;
    let written = new_file(temp).and_then(|mut file| {
        file.write_all(bytes)?;
        // A file system that cannot set the mtime costs the sweep a read, not the write.
        if let Some(mtime) = mtime {
            let _ = file.set_modified(mtime);
        }
        file.sync_all()
    });
    if let Err(err) = written.and_then(|()| fs::rename(temp, path)) {
        let _ = fs::remove_file(temp);
        return Err(err);
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Removes a file; returns whether it was there.
pub(crate) fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Makes renames and removals in the folder durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    if cfg!(unix) {
        File::open(dir)?.sync_all()
    } else {
        // A folder cannot be opened as a file there; its entries are journaled anyway.
        Ok(())
    }
}

/// Creates the folder (and missing parents) readable by the owner only.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Sets the owner-only mode on files this store creates.
pub(crate) fn private_mode(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = options;
}

fn new_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    private_mode(&mut options);
    options.open(path)
}

/// `t` as a `SystemTime`, or `None` when the platform cannot represent it.
pub(crate) fn system_time(t: OffsetDateTime) -> Option<SystemTime> {
    let secs = t.unix_timestamp();
    let nanos = Duration::from_nanos(u64::from(t.nanosecond()));
    if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))?.checked_add(nanos)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))?.checked_add(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_convert_without_panicking() {
        let now = OffsetDateTime::now_utc();
        let before_1970 = OffsetDateTime::from_unix_timestamp_nanos(-86_400_000_000_001).unwrap();
        let year_9999 = OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap();
        for t in [now, before_1970, year_9999, OffsetDateTime::UNIX_EPOCH] {
            assert_eq!(system_time(t).map(OffsetDateTime::from), Some(t));
        }
    }
}
