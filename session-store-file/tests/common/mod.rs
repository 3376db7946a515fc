//! Helpers shared by the test binaries.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use session_core::{Change, Id, Patch, Record, RecordId, SessionStore, StoreError};
use session_store_file::FileStore;
use time::{Duration, OffsetDateTime};

/// A fresh record with one entry, expiring after `ttl` (negative: already expired).
pub(crate) fn record(ttl: Duration) -> Record {
    let now = OffsetDateTime::now_utc();
    let mut record = Record::new(Id::random().record_id(), now, now + ttl);
    record.entries.insert("init", vec![1].into());
    record
}

/// What a request's write-back does: one patch that sets one key, whatever else is
/// stored. Returns the number of conflicts it met, which must be 0: writers of different
/// keys never conflict.
pub(crate) async fn set_key(store: &FileStore, id: &RecordId, key: &str) -> usize {
    let now = OffsetDateTime::now_utc();
    let mut patch = Patch::new(*id, now + Duration::hours(1), now);
    patch.changes.push(Change::set(key, Some(key.as_bytes().to_vec().into())));
    match store.apply(&patch).await {
        Ok(_) => 0,
        Err(StoreError::Conflict) => 1,
        Err(err) => panic!("apply failed: {err}"),
    }
}

/// The names in `dir`, sorted.
pub(crate) fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("entry").file_name().into_string().expect("utf-8 name"))
        .collect();
    names.sort();
    names
}
