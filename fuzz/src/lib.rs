//! What the fuzz targets share: fixed keys (so seeds made once stay valid), the byte
//! format that turns one input into Redis field/value pairs, and the round-trip checks.

use std::sync::LazyLock;

use session_core::{Key, KeyRing, Record, RecordId};

/// The cookie name the targets bind values to.
pub const NAME: &str = "id";
/// Another cookie name: nothing made for [`NAME`] may open under it.
pub const OTHER_NAME: &str = "id2";

fn key(byte: u8) -> Key {
    Key::derive_from(&[byte; 32]).expect("32 bytes is long enough")
}

/// The keys the seeds were made with.
pub static KEYS: LazyLock<KeyRing> = LazyLock::new(|| KeyRing::new(key(1)));
/// Another key alone: nothing made under [`KEYS`] may open under it.
pub static OTHER_KEYS: LazyLock<KeyRing> = LazyLock::new(|| KeyRing::new(key(2)));
/// A rotation: a new primary, the seeds' key as the fallback.
pub static ROTATED_KEYS: LazyLock<KeyRing> = LazyLock::new(|| KeyRing::new(key(2)).with_fallback(key(1)));

/// A record id of 32 equal bytes.
#[must_use]
pub fn record_id(byte: u8) -> RecordId {
    RecordId::from_bytes([byte; 32])
}

/// Splits an input into field/value pairs: each item is a length byte and that many bytes
/// (fewer at the end of the input); items pair up in order, a lone last field gets an
/// empty value.
#[must_use]
pub fn pairs(mut data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut items = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let (item, rest) = rest.split_at(usize::from(len).min(rest.len()));
        items.push(item.to_vec());
        data = rest;
    }
    let mut items = items.into_iter();
    let mut out = Vec::new();
    while let Some(field) = items.next() {
        out.push((field, items.next().unwrap_or_default()));
    }
    out
}

/// The input [`pairs`] splits into `pairs` (each item at most 255 bytes).
#[must_use]
pub fn join_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (field, value) in pairs {
        for item in [field, value] {
            out.push(u8::try_from(item.len()).expect("an item of at most 255 bytes"));
            out.extend_from_slice(item);
        }
    }
    out
}

/// A decoded record's canonical bytes decode to the same record and encode to themselves.
pub fn assert_record_round_trips(record: &Record) {
    let canonical = record.to_bytes();
    let again = Record::from_bytes(&canonical).expect("a record's own bytes decode");
    assert_eq!(&again, record, "the canonical bytes decode to another record");
    assert_eq!(again.to_bytes(), canonical, "the canonical bytes are not stable");
}
