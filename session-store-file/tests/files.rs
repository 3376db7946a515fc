//! What the store puts on disk: names and permissions.

mod common;

use common::{names, record};
use session_core::SessionStore;
use session_store_file::FileStore;
use time::Duration;

#[tokio::test]
async fn a_record_is_a_file_named_by_its_64_hex_id_directly_in_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    let name = r.id.to_string();
    assert_eq!(name.len(), 64);
    assert!(name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert_eq!(names(dir.path()), [name.clone(), format!("{name}.lock")]);
    let bytes = std::fs::read(store.dir().join(&name)).unwrap();
    assert_eq!(session_core::Record::from_bytes(&bytes).unwrap(), r);
}

#[test]
fn new_creates_missing_folders_and_resolves_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/sessions");
    let store = FileStore::new(&nested).unwrap();
    assert!(nested.is_dir());
    assert!(store.dir().is_absolute());
    assert_eq!(store.dir(), std::fs::canonicalize(&nested).unwrap());
    // Opening an existing folder is fine.
    FileStore::new(&nested).unwrap();
}

#[test]
fn new_fails_on_a_path_that_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taken");
    std::fs::write(&file, b"").unwrap();
    let err = FileStore::new(&file).unwrap_err();
    assert!(matches!(err, session_core::StoreError::Backend(_)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some(), "the I/O error is kept");
}

#[cfg(unix)]
#[tokio::test]
async fn the_folder_is_0700_and_every_file_0600() {
    use std::os::unix::fs::PermissionsExt;

    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions");
    let store = FileStore::new(&sessions).unwrap();
    assert_eq!(mode(&sessions), 0o700);
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    store.apply(&session_core::Patch::new(r.id, r.expires_at, r.last_seen)).await.unwrap();
    let names = names(&sessions);
    assert_eq!(names.len(), 2, "the record and its lock file");
    for name in names {
        assert_eq!(mode(&sessions.join(&name)), 0o600, "{name}");
    }
}

#[tokio::test]
async fn the_mtime_is_the_expiry_but_the_sweep_trusts_only_the_content() {
    use session_core::ExpiredDeletion;

    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let r = record(Duration::hours(1));
    store.create(&r).await.unwrap();
    let path = dir.path().join(r.id.to_string());
    let mtime = time::OffsetDateTime::from(std::fs::metadata(&path).unwrap().modified().unwrap());
    assert!((mtime - r.expires_at).abs() < Duration::seconds(1), "mtime {mtime} for {}", r.expires_at);

    // Someone touched the file: its mtime no longer says "live", so the sweep reads it.
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    assert_eq!(store.load(&r.id).await.unwrap(), Some(r));
}
