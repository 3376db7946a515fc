//! Outage drills: the store's folder fills up, or turns read-only. A write is a 500
//! through the layer (`StoreError::Backend` from the store), the record it would have
//! replaced stays byte for byte, no temp file is left, reads go on, and once the disk
//! has room (or is writable) again the same app writes again.
//!
//! The machine these run on runs tests as root, for whom permission bits stop no write,
//! so the drills mount a small tmpfs of their own: filled up for "full", remounted
//! read-only for "read-only". Without the right to mount, they say so and skip.

mod common;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use common::{names, record};
use session_core::test_client::TestClient;
use session_core::{Session, SessionLayer, SessionStore, StoreError};
use session_store_file::FileStore;
use tempfile::TempDir;

/// A tmpfs mounted on a temp dir of its own, unmounted when dropped (also when the test
/// fails), so no mount outlives the test.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    /// `None`, after saying why, when this process may not mount.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = format!("size={size},mode=0700");
        let out =
            Command::new("mount").args(["-t", "tmpfs", "-o", &options, "tmpfs"]).arg(dir.path()).output();
        match out {
            Ok(out) if out.status.success() => Some(Self { dir }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(err) => {
                eprintln!("SKIPPED: cannot run mount: {err}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, mode: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,{mode}")]).arg(self.path()).output();
        assert!(out.as_ref().is_ok_and(|o| o.status.success()), "remount {mode}: {out:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.path()).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Busy (a file still open): detach it now, the kernel frees it when closed.
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// `GET /get/{key}` answers the value or `none`; `POST /set/{key}` stores the body.
fn app(store: FileStore) -> Router {
    Router::new()
        .route(
            "/get/{key}",
            get(|s: Session, UrlPath(key): UrlPath<String>| async move {
                s.get::<String>(&key).await.map(|v| v.unwrap_or_else(|| "none".to_owned()))
            }),
        )
        .route(
            "/set/{key}",
            post(|s: Session, UrlPath(key): UrlPath<String>, value: String| async move {
                s.insert(&key, value).await.map(|()| "ok")
            }),
        )
        .layer(SessionLayer::new(store).with_secure(false))
}

/// Fills the file system under `dir` with one file until a write fails; returns the file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = File::create(&path).expect("create filler");
    let chunk = [0u8; 4096];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::StorageFull => return path,
            Err(err) => panic!("filling the disk: {err}"),
        }
    }
}

/// The one record file in `dir` (its name is a bare id; the lock file's ends in `.lock`).
fn record_file(dir: &Path) -> PathBuf {
    let records: Vec<String> = names(dir).into_iter().filter(|n| !n.contains('.') && n != "users").collect();
    assert_eq!(records.len(), 1, "one record file");
    dir.join(&records[0])
}

fn no_temp_files(dir: &Path) {
    assert!(!names(dir).iter().any(|n| n.ends_with(".tmp")), "a temp file was left behind");
}

#[tokio::test]
async fn a_full_disk_is_a_500_and_leaves_the_old_record_as_it_was() {
    let Some(disk) = Tmpfs::mount("256k") else { return };
    let folder = disk.path().join("sessions");
    let store = FileStore::new(&folder).unwrap();
    let browser = TestClient::new(app(store.clone()));
    assert_eq!(browser.post("/set/k", "before").await.status, StatusCode::OK);
    let path = record_file(&folder);
    let (bytes, files) = (fs::read(&path).unwrap(), names(&folder));

    let filler = fill(disk.path());
    // Bigger than any partial page left: the new version cannot be written.
    let changed = browser.post("/set/k", "after".repeat(2000)).await;
    assert_eq!(changed.status, StatusCode::INTERNAL_SERVER_ERROR, "a write on a full disk");
    // Compared, never printed: the bytes are session data.
    assert!(fs::read(&path).unwrap() == bytes, "the old record changed");
    no_temp_files(&folder);
    // A new session cannot be stored either, and leaves nothing behind.
    let stranger = TestClient::new(app(store.clone()));
    assert_eq!(stranger.post("/set/k", "x".repeat(10_000)).await.status, StatusCode::INTERNAL_SERVER_ERROR);
    let created = record(time::Duration::hours(1));
    match store.create(&created).await {
        Err(StoreError::Backend(err)) => {
            let io = err.downcast_ref::<io::Error>().expect("the I/O error is the source");
            assert_eq!(io.kind(), io::ErrorKind::StorageFull);
        }
        other => panic!("create on a full disk: {other:?}"),
    }
    // Compared, never printed: the names are record ids.
    assert!(names(&folder) == files, "a failed write left a file behind (or removed one)");
    // Reads need no space.
    assert_eq!(browser.get("/get/k").await.text(), "before");

    fs::remove_file(filler).unwrap();
    assert_eq!(browser.post("/set/k", "after").await.status, StatusCode::OK, "room again");
    assert_eq!(browser.get("/get/k").await.text(), "after");
    no_temp_files(&folder);
}

#[tokio::test]
async fn a_read_only_folder_is_a_500_and_leaves_the_old_record_as_it_was() {
    let Some(disk) = Tmpfs::mount("1m") else { return };
    let folder = disk.path().join("sessions");
    let store = FileStore::new(&folder).unwrap();
    let browser = TestClient::new(app(store.clone()));
    assert_eq!(browser.post("/set/k", "before").await.status, StatusCode::OK);
    let path = record_file(&folder);
    let (bytes, files) = (fs::read(&path).unwrap(), names(&folder));

    disk.remount("ro");
    assert_eq!(browser.get("/get/k").await.text(), "before", "reads take no lock and write nothing");
    let changed = browser.post("/set/k", "after").await;
    assert_eq!(changed.status, StatusCode::INTERNAL_SERVER_ERROR, "a write to a read-only folder");
    let stranger = TestClient::new(app(store.clone()));
    assert_eq!(stranger.post("/set/k", "new").await.status, StatusCode::INTERNAL_SERVER_ERROR);
    match store.create(&record(time::Duration::hours(1))).await {
        Err(StoreError::Backend(err)) => {
            let io = err.downcast_ref::<io::Error>().expect("the I/O error is the source");
            assert_eq!(io.kind(), io::ErrorKind::ReadOnlyFilesystem);
        }
        other => panic!("create in a read-only folder: {other:?}"),
    }
    // Compared, never printed: the bytes are session data.
    assert!(fs::read(&path).unwrap() == bytes, "the old record changed");
    assert!(names(&folder) == files, "a failed write left a file behind (or removed one)");

    disk.remount("rw");
    assert_eq!(browser.post("/set/k", "after").await.status, StatusCode::OK, "writable again");
    assert_eq!(browser.get("/get/k").await.text(), "after");
    no_temp_files(&folder);
}

/// The same failure anywhere, without a mount: the temp name of a new session is taken by
/// a folder, so its record cannot be written. The create fails and leaves no lock file.
#[tokio::test]
async fn a_create_that_cannot_write_leaves_no_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let created = record(time::Duration::hours(1));
    fs::create_dir(dir.path().join(format!("{}.tmp", created.id))).unwrap();
    let before = names(dir.path());
    assert!(matches!(store.create(&created).await, Err(StoreError::Backend(_))));
    assert!(names(dir.path()) == before, "the failed create left its lock file");
}
