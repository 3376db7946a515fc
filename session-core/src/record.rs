//! What a store keeps for one session.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;
use time::OffsetDateTime;

use crate::{Expiry, RecordId};

/// A session's data: each key maps to its value's MessagePack encoding, decoded lazily on
/// [`Session::get`](crate::Session::get), so reading one small key never decodes the rest.
///
/// Cloning is a reference count, not a copy: the map is shared until one holder changes it
/// (copy-on-write). So a store can hand out a record without copying its entries, and a
/// request that only reads never copies the map at all.
///
/// `Debug` shows the number of entries, never their keys or values.
///
/// ```
/// use bytes::Bytes;
/// use session_core::Entries;
///
/// let mut a = Entries::new();
/// a.insert("theme", Bytes::from_static(b"dark"));
/// let b = a.clone(); // shared, nothing copied
/// a.insert("lang", Bytes::from_static(b"en")); // `a` gets its own copy here
/// assert_eq!((a.len(), b.len()), (2, 1));
/// assert_eq!(b.get("theme").map(|v| &v[..]), Some(&b"dark"[..]));
/// ```
#[derive(Clone, Default, Eq)]
pub struct Entries(
    // `None` is empty: a session that never holds data never allocates a map. Keys are
    // shared too, so copying the map (on a write) copies no key text.
    Option<Arc<Map>>,
);

/// Entries sorted by key, keys unique. Sessions hold a handful of keys: up to four live
/// inside the map's own allocation, and a sorted list beats a tree at these sizes.
type Map = SmallVec<[(Arc<str>, Bytes); 4]>;

/// Where `key` is in `map`, or where it would go.
fn find(map: &Map, key: &str) -> Result<usize, usize> {
    map.binary_search_by(|(k, _)| (**k).cmp(key))
}

impl Entries {
    /// No entries.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The encoded value under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        let map = self.0.as_deref()?;
        find(map, key).ok().map(|i| &map[i].1)
    }

    /// Whether `key` has a value.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.as_deref().is_some_and(|map| find(map, key).is_ok())
    }

    /// Sets `key` to `value`, returning the previous value. Copies the map first if it is
    /// shared; an existing key is updated in place, without allocating the key again.
    pub fn insert<K: AsRef<str> + Into<Arc<str>>>(&mut self, key: K, value: Bytes) -> Option<Bytes> {
        let map = Arc::make_mut(self.0.get_or_insert_with(Arc::default));
        match find(map, key.as_ref()) {
            Ok(i) => Some(std::mem::replace(&mut map[i].1, value)),
            Err(i) => {
                map.insert(i, (key.into(), value));
                None
            }
        }
    }

    /// Removes `key`, returning its value. A missing key leaves a shared map shared.
    pub fn remove(&mut self, key: &str) -> Option<Bytes> {
        let map = self.0.as_mut()?;
        let i = find(map, key).ok()?;
        Some(Arc::make_mut(map).remove(i).1)
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// The number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.as_deref().map_or(0, SmallVec::len)
    }

    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + DoubleEndedIterator {
        self.iter().map(|(k, _)| k)
    }

    /// The map's own copy of `key`, to refer to it without allocating.
    pub(crate) fn shared_key(&self, key: &str) -> Option<Arc<str>> {
        let map = self.0.as_deref()?;
        find(map, key).ok().map(|i| Arc::clone(&map[i].0))
    }

    /// The entries, in key order.
    pub fn iter(&self) -> EntriesIter<'_> {
        EntriesIter(self.0.as_deref().map_or(&[][..], |map| &map[..]).iter())
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => self.is_empty() && other.is_empty(),
        }
    }
}

impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entries").field("len", &self.len()).finish()
    }
}

impl<K: AsRef<str> + Into<Arc<str>>> FromIterator<(K, Bytes)> for Entries {
    /// Later pairs win over earlier ones with the same key, as in a map.
    fn from_iter<I: IntoIterator<Item = (K, Bytes)>>(iter: I) -> Self {
        let mut entries = Self::new();
        for (k, v) in iter {
            entries.insert(k, v);
        }
        entries
    }
}

impl std::ops::Index<&str> for Entries {
    type Output = Bytes;

    /// The value under `key`.
    ///
    /// # Panics
    ///
    /// Panics if there is none; [`Entries::get`] returns an `Option` instead.
    fn index(&self, key: &str) -> &Bytes {
        self.get(key).unwrap_or_else(|| panic!("no entry for the key"))
    }
}

/// The entries of an [`Entries`], in key order: what [`Entries::iter`] returns.
///
/// `Debug` shows how many are left, never a key or value.
#[derive(Clone)]
pub struct EntriesIter<'a>(std::slice::Iter<'a, (Arc<str>, Bytes)>);

impl fmt::Debug for EntriesIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntriesIter").field("remaining", &self.0.len()).finish()
    }
}

impl<'a> Iterator for EntriesIter<'a> {
    type Item = (&'a str, &'a Bytes);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&**k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for EntriesIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (&**k, v))
    }
}

impl ExactSizeIterator for EntriesIter<'_> {}

impl<'a> IntoIterator for &'a Entries {
    type Item = (&'a str, &'a Bytes);
    type IntoIter = EntriesIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Reads the map as `Serialize` writes it (identical to a `BTreeMap<String, Bytes>`), each
/// key allocated once, straight into its shared form.
struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of session keys to encoded values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Entries, A::Error> {
        // Written sorted, so each key normally lands at the end; any order (and a repeated
        // key, last one winning) still reads as a map would.
        let mut entries = Entries::new();
        while let Some((SharedKey(key), value)) = access.next_entry::<SharedKey, Bytes>()? {
            entries.insert(key, value);
        }
        Ok(entries)
    }
}

struct SharedKey(Arc<str>);

impl<'de> Deserialize<'de> for SharedKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = SharedKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a session key")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<SharedKey, E> {
                Ok(SharedKey(key.into()))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// One session as a store keeps it.
///
/// Stores are keyed by [`Record::id`], the digest of the cookie's id, never by the id
/// itself. Byte-oriented stores persist a record with [`Record::to_bytes`] and read it back
/// with [`Record::from_bytes`].
///
/// `Debug` shows the number of entries, never their values, and whether a user is set, not
/// which.
///
/// ```
/// use session_core::{Id, Record};
/// use time::{Duration, OffsetDateTime};
///
/// let now = OffsetDateTime::now_utc();
/// let mut record = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
/// record.entries.insert("user", vec![42].into());
/// let back = Record::from_bytes(&record.to_bytes()).unwrap();
/// assert_eq!(back, record);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The store key: SHA-256 of the session id.
    pub id: RecordId,
    /// Encoded values by key.
    pub entries: Entries,
    /// When the session was first stored (the absolute lifetime counts from here).
    pub created_at: OffsetDateTime,
    /// When the store must stop returning the record.
    pub expires_at: OffsetDateTime,
    /// The session's own expiry, when it overrides the layer's default.
    pub expiry: Option<Expiry>,
    /// Incremented by every applied [`Patch`](crate::Patch); a cache compares it to tell
    /// whether its copy is current.
    pub version: u64,
    /// The user this session belongs to, once the app set one; stores that keep a per-user
    /// index key it by this.
    pub user: Option<String>,
    /// A label the app chose for this session, e.g. "Firefox on Linux".
    pub label: Option<String>,
    /// When the session was last used: set by every save and by the throttled expiry
    /// refresh (a [`Patch`](crate::Patch) without changes), not by every request.
    pub last_seen: OffsetDateTime,
}

impl Record {
    /// An empty record at version 1, last seen at its creation, with no user.
    #[must_use]
    pub fn new(id: RecordId, created_at: OffsetDateTime, expires_at: OffsetDateTime) -> Self {
        Self {
            id,
            entries: Entries::new(),
            created_at,
            expires_at,
            expiry: None,
            version: 1,
            user: None,
            label: None,
            last_seen: created_at,
        }
    }

    /// Whether the record has expired at `now`.
    #[must_use]
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("id", &self.id)
            .field("entries", &self.entries.len())
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("expiry", &self.expiry)
            .field("version", &self.version)
            .field("user", &self.user.is_some())
            .field("last_seen", &self.last_seen)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn sample() -> Entries {
        [("cart", &b"\x91\xa5apple"[..]), ("theme", b"\xa4dark"), ("user", b"\x2a")]
            .into_iter()
            .map(|(k, v)| (k, Bytes::copy_from_slice(v)))
            .collect()
    }

    #[test]
    fn entries_encode_exactly_like_a_plain_map() {
        // Records stored by earlier builds (a `BTreeMap<String, Bytes>`) must keep decoding.
        let plain: BTreeMap<String, Bytes> =
            sample().iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
        let bytes = rmp_serde::to_vec(&sample()).unwrap();
        assert_eq!(bytes, rmp_serde::to_vec(&plain).unwrap());
        let back: Entries = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, sample());
        assert_eq!(back.keys().collect::<Vec<_>>(), ["cart", "theme", "user"]);
    }

    #[test]
    fn a_clone_is_shared_until_written() {
        let a = sample();
        let mut b = a.clone();
        assert!(Arc::ptr_eq(a.0.as_ref().unwrap(), b.0.as_ref().unwrap()));
        assert_eq!(b.remove("missing"), None);
        assert!(Arc::ptr_eq(a.0.as_ref().unwrap(), b.0.as_ref().unwrap()), "a no-op keeps sharing");
        b.insert("theme", Bytes::from_static(b"\xa5light"));
        assert_eq!(a.get("theme").map(|v| &v[..]), Some(&b"\xa4dark"[..]), "the original is untouched");
        assert_eq!(b.get("theme").map(|v| &v[..]), Some(&b"\xa5light"[..]));
        // Keys are shared between the copies, not re-allocated.
        let (ka, kb) = (a.shared_key("cart").unwrap(), b.shared_key("cart").unwrap());
        assert!(Arc::ptr_eq(&ka, &kb));
    }

    #[test]
    fn empty_maps_are_equal_however_they_got_empty() {
        let mut a = sample();
        for k in ["cart", "theme", "user"] {
            a.remove(k);
        }
        assert_eq!(a, Entries::new());
        assert!(a.is_empty());
        assert_eq!(format!("{a:?}"), "Entries { len: 0 }");
    }
}
