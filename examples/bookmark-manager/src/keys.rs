//! Server keys kept in the data dir: made on first run, reused afterwards, so sessions and
//! vault secrets survive a restart.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use session_core::Key;

/// Creates `dir` (and parents) if missing; a new directory is private to its owner
/// because it holds keys and user data.
pub(crate) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Makes the database file at `path` private to its owner (0600): created empty if missing
/// (SQLite takes an empty file as a new database), its mode tightened if not. SQLite gives
/// the `-wal` and `-shm` files it makes next to it the database file's mode; those left
/// by an earlier run are tightened too.
pub(crate) fn private_db_file(path: &Path) -> io::Result<()> {
    OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        match fs::set_permissions(Path::new(&side), fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Creates the directory `dir` if missing, and makes it private to its owner (0700) either
/// way: it is the app's own (the file store's sessions).
pub(crate) fn private_subdir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// The key stored in `path`, or a fresh one written there with mode 0600.
pub(crate) fn load_or_create(path: &Path) -> io::Result<Key> {
    match OpenOptions::new().read(true).open(path) {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Key::try_from(bytes.as_slice())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = Key::generate();
            // create_new: two processes starting at once must not overwrite each other's key;
            // mode 0600 from the start, so the key is never readable by others, not even briefly.
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
            file.write_all(key.master())?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        ensure_private_dir(&data).unwrap();
        assert_eq!(fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
        let path = data.join("vault.key");
        let first = load_or_create(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_create(&path).unwrap(), first);
        fs::write(&path, b"short").unwrap();
        assert_eq!(load_or_create(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn database_files_and_the_session_dir_are_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        private_db_file(&db).unwrap();
        assert_eq!(fs::metadata(&db).unwrap().len(), 0);
        let wal = dir.path().join("app.db-wal");
        fs::write(&wal, b"x").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&wal, fs::Permissions::from_mode(0o644)).unwrap();
        private_db_file(&db).unwrap();
        for path in [&db, &wal] {
            assert_eq!(fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600, "{}", path.display());
        }
        assert_eq!(fs::read(&wal).unwrap(), b"x", "an existing file is kept as it is");
        let sessions = dir.path().join("sessions");
        fs::create_dir(&sessions).unwrap();
        fs::set_permissions(&sessions, fs::Permissions::from_mode(0o755)).unwrap();
        private_subdir(&sessions).unwrap();
        assert_eq!(fs::metadata(&sessions).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
