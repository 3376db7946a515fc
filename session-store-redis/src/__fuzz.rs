//! Entry points for the fuzz targets in `fuzz/`, only with the `fuzzing` feature.
//!
//! A record is a Redis hash whose fields anyone with access to the server can change;
//! `load` and an id change (`forward`, on the fields the move script answers) both decode
//! them with `hash::decode`, which these wrappers run as it is.

use redis::Value;
use session_core::{Record, RecordId, StoreError};

use crate::hash;

/// The record `id` from an `HGETALL` reply, as `RedisStore::load` decodes it; `None` for
/// no key or a forward.
///
/// # Errors
///
/// [`StoreError::Corrupt`] when a required field is missing or a field does not decode.
pub fn decode_hash(id: RecordId, reply: Value) -> Result<Option<Record>, StoreError> {
    hash::decode(id, reply)
}

/// The field/value pairs `create` writes for `record`.
#[must_use]
pub fn hash_fields(record: &Record) -> Vec<(Vec<u8>, Vec<u8>)> {
    let digest = record.user.as_deref().map(hash::user_digest);
    let mut out = Vec::new();
    hash::fields(record, digest.as_ref(), |f, v| out.push((f.to_vec(), v.to_vec())));
    out
}
