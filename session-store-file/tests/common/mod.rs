//! Helpers shared by the test binaries.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use session_core::{Id, Record, RecordId, SessionStore, StoreError};
use session_store_file::FileStore;
use time::{Duration, OffsetDateTime};

/// A fresh record with one entry, expiring after `ttl` (negative: already expired).
pub(crate) fn record(ttl: Duration) -> Record {
    let now = OffsetDateTime::now_utc();
    let mut record = Record::new(Id::random().record_id(), now, now + ttl);
    record.entries.insert("init", vec![1].into());
    record
}

/// What a request does through the layer: load, change one key, save with the loaded
/// version, and on `Conflict` reload, re-apply its own key and retry. Returns the number
/// of conflicts it met.
pub(crate) async fn set_key(store: &FileStore, id: &RecordId, key: &str) -> usize {
    let mut conflicts = 0;
    loop {
        let mut record = store.load(id).await.expect("load").expect("session exists");
        let expected = record.version;
        record.entries.insert(key.to_owned(), key.as_bytes().to_vec().into());
        record.version = expected + 1;
        match store.save(&record, expected).await {
            Ok(()) => return conflicts,
            Err(StoreError::Conflict) => conflicts += 1,
            Err(err) => panic!("save failed: {err}"),
        }
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
