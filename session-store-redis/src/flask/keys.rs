//! The Redis keys of one session: Flask-Session's record, and beside it this store's
//! metadata and forward, which Flask never reads.
//!
//! | key | holds |
//! |---|---|
//! | `<prefix><sid>` | Flask-Session's record: the MessagePack map (Flask reads and writes it) |
//! | `{<prefix><sid>}:rs-meta` | what Flask's format has no place for (see the `meta` module) |
//! | `{<prefix><sid>}:rs-forward` | after an id change, where the session went (see `cycle`) |
//!
//! The braces are a Redis Cluster hash tag: the two extra keys hash exactly as the record's
//! key does, so they share its slot and one script can touch all three. (A prefix that
//! carries a hash tag of its own keeps it: the extra keys then append to the record's key.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use session_core::RecordId;

/// The three keys of one session id.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) record: String,
    pub(crate) meta: String,
    pub(crate) forward: String,
}

/// The sid of a record id: its 32 bytes in base64url without padding, 43 characters, as
/// `secrets.token_urlsafe(32)` makes them.
pub(crate) fn sid(id: &RecordId) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// The record id of a sid; `None` for anything but 43 characters of canonical base64url.
pub(crate) fn record_id(sid: &[u8]) -> Option<RecordId> {
    if sid.len() != 43 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(sid).ok()?;
    Some(RecordId::from_bytes(bytes.try_into().ok()?))
}

/// Whether Redis Cluster hashes `key` by a `{...}` tag rather than by the whole key.
fn has_hash_tag(key: &str) -> bool {
    key.find('{').is_some_and(|open| key[open + 1..].find('}').is_some_and(|len| len > 0))
}

impl Keys {
    pub(crate) fn new(prefix: &str, id: &RecordId) -> Self {
        let record = format!("{prefix}{}", sid(id));
        let tagged = if has_hash_tag(&record) { record.clone() } else { format!("{{{record}}}") };
        Self { meta: format!("{tagged}:rs-meta"), forward: format!("{tagged}:rs-forward"), record }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sid_is_the_record_id_in_base64url_and_parses_back() {
        let id = RecordId::from_bytes([0xfb; 32]);
        let sid = sid(&id);
        assert_eq!(sid.len(), 43);
        assert!(sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(record_id(sid.as_bytes()), Some(id));
        assert_eq!(record_id(&sid.as_bytes()[1..]), None);
        assert_eq!(record_id(&[b'='; 43]), None);
    }

    #[test]
    fn the_extra_keys_share_the_records_cluster_slot() {
        let id = RecordId::from_bytes([1; 32]);
        let keys = Keys::new("session:", &id);
        assert_eq!(keys.record, format!("session:{}", sid(&id)));
        assert_eq!(keys.meta, format!("{{{}}}:rs-meta", keys.record));
        // A prefix with a tag of its own: the record hashes by that tag, so must the others.
        let keys = Keys::new("{app}session:", &id);
        assert!(keys.meta.starts_with(&keys.record) && keys.forward.starts_with(&keys.record));
        // An empty `{}` is no tag: the whole key is hashed, so it gets wrapped.
        assert!(!has_hash_tag("a{}b") && has_hash_tag("a{b}") && !has_hash_tag("a}{"));
    }
}
