//! The Redis store's hash fields → record, as `load` and an id change decode them.
//!
//! Input: field/value pairs (see `session_fuzz::pairs`), sent as a RESP2 array and as a
//! RESP3 map, which must decode alike. A decoded record's fields, as `create` writes them,
//! decode to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_fuzz::{pairs, record_id};
use session_store_redis::__fuzz::{decode_hash, hash_fields};
use session_store_redis::redis::Value;

fn array(pairs: &[(Vec<u8>, Vec<u8>)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .flat_map(|(f, v)| [Value::BulkString(f.clone()), Value::BulkString(v.clone())])
            .collect(),
    )
}

fn map(pairs: &[(Vec<u8>, Vec<u8>)]) -> Value {
    Value::Map(
        pairs.iter().map(|(f, v)| (Value::BulkString(f.clone()), Value::BulkString(v.clone()))).collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let id = record_id(7);
    let pairs = pairs(data);
    let decoded = decode_hash(id, array(&pairs)).ok();
    assert_eq!(decode_hash(id, map(&pairs)).ok(), decoded, "RESP2 and RESP3 replies decode apart");
    assert!(decode_hash(id, Value::BulkString(data.to_vec())).is_err(), "a string read as a hash");
    let Some(Some(record)) = decoded else { return };
    assert_eq!(record.id, id);
    let written = hash_fields(&record);
    let again = decode_hash(id, array(&written)).expect("written fields decode").expect("a record");
    assert_eq!(again, record, "the written fields decode to another record");
    assert_eq!(hash_fields(&again), written, "the written fields are not stable");
});
