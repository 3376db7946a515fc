//! The file store's read paths on whatever its files hold: a session's record file (the
//! input, under the id of the record it decodes to, if any) and a user's index (the input
//! again, listing ids next to one live session of that user).
//!
//! A load answers a live record of that id or nothing, never an error; a listing finds the
//! live session exactly when the index names it, and finds it again from the index it
//! rewrote.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use session_core::{Record, RecordId, Stored};
use session_fuzz::{assert_record_round_trips, record_id};
use session_store_file::__fuzz::{load, sessions_of};
use time::{Duration, OffsetDateTime};

/// Folders of this process's own: record files, and a store holding one live session.
/// `scripts/fuzz` points `TMPDIR` at a memory-backed folder (the listing syncs what it
/// rewrites) that it removes afterwards.
static DIRS: LazyLock<(PathBuf, PathBuf)> = LazyLock::new(|| {
    let root = std::env::temp_dir().join(format!("session-fuzz-file-{}", std::process::id()));
    let (records, users) = (root.join("records"), root.join("users"));
    for dir in [&records, &users] {
        std::fs::create_dir_all(dir).expect("a folder for the fuzzed files");
    }
    (records, users)
});

const USER: &str = "u";

static LIVE: LazyLock<Record> = LazyLock::new(|| {
    let now = OffsetDateTime::now_utc();
    let mut record = Record::new(record_id(9), now, now + Duration::days(1));
    record.user = Some(USER.to_owned());
    record
});

fuzz_target!(|data: &[u8]| {
    let (records, users) = &*DIRS;
    let id: RecordId = match Stored::from_bytes(data) {
        Ok(Stored::Record(record)) => record.id,
        _ => record_id(7),
    };
    if let Some(record) = load(records, &id, data).expect("a load of a file that is there fails") {
        assert_eq!(record.id, id);
        assert!(!record.is_expired_at(OffsetDateTime::now_utc()), "an expired record loaded");
        assert_eq!(Record::from_bytes(data).ok().as_ref(), Some(&record));
        assert_record_round_trips(&record);
    }

    let live = &*LIVE;
    assert_eq!(load(users, &live.id, &live.to_bytes()).expect("the live record loads").as_ref(), Some(live));
    let hex = live.id.to_string();
    let named = String::from_utf8_lossy(data).lines().any(|line| line == hex);
    let found = sessions_of(users, USER, Some(data)).expect("a listing fails");
    assert_eq!(found.len(), usize::from(named), "the index names the live session: {named}");
    let again = sessions_of(users, USER, None).expect("a listing of the rewritten index fails");
    assert_eq!(again.len(), found.len(), "the rewritten index lost or gained a session");
});
