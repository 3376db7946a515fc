//! Flask-Session's record value: one MessagePack map of the session dict, as msgspec writes
//! it, read and rewritten without decoding the values.
//!
//! A session entry in `session-core` is its value's MessagePack encoding, so an entry *is*
//! the slice of the map that holds its value: reading slices the map, writing splices it.
//! Keys a patch does not name keep their exact bytes and their place; new keys go at the
//! end, as Python's dict would put them.
//!
//! An entry whose bytes are not exactly one MessagePack value (only possible through the raw
//! store API: the layer always writes MessagePack) is stored as an extension value of type
//! [`WRAP`], which msgspec reads as `msgspec.msgpack.Ext` and writes back unchanged.

use bytes::Bytes;
use session_core::{Change, Entries};

/// The key Flask keeps `session.permanent` under: part of the record, not an entry.
pub(crate) const PERMANENT: &str = "_permanent";

/// The extension type of an entry that is not one MessagePack value of its own.
pub(crate) const WRAP: i8 = 82;

/// `_permanent: true`, as msgspec writes it.
const PERMANENT_TRUE: &[u8] = b"\xaa_permanent\xc3";

/// Why a stored value is not a Flask-Session record this store can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// Not one whole MessagePack map (JSON, pickle, truncated, trailing bytes).
    #[error("the record is not one MessagePack map (a JSON or pickle record, or damaged)")]
    NotAMap,
    /// A key of the map is not a UTF-8 string.
    #[error("a key of the record's map is not a UTF-8 string")]
    KeyNotText,
}

/// One MessagePack item's header: bytes of header, bytes of payload, items that follow.
fn header(buf: &[u8]) -> Option<(usize, usize, u64)> {
    let &first = buf.first()?;
    let be = |n: usize| -> Option<u64> {
        let bytes = buf.get(1..1 + n)?;
        Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    let len = |n: usize| -> Option<usize> { usize::try_from(be(n)?).ok() };
    Some(match first {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, 0, 0),
        0x80..=0x8f => (1, 0, 2 * u64::from(first & 0x0f)),
        0x90..=0x9f => (1, 0, u64::from(first & 0x0f)),
        0xa0..=0xbf => (1, usize::from(first & 0x1f), 0),
        0xc1 => return None,
        0xc4 | 0xd9 => (2, len(1)?, 0),
        0xc5 | 0xda => (3, len(2)?, 0),
        0xc6 | 0xdb => (5, len(4)?, 0),
        0xc7 => (3, len(1)?, 0),
        0xc8 => (4, len(2)?, 0),
        0xc9 => (6, len(4)?, 0),
        0xca => (1, 4, 0),
        0xcb => (1, 8, 0),
        0xcc | 0xd0 => (1, 1, 0),
        0xcd | 0xd1 => (1, 2, 0),
        0xce | 0xd2 => (1, 4, 0),
        0xcf | 0xd3 => (1, 8, 0),
        0xd4..=0xd8 => (2, 1 << (first - 0xd4), 0),
        0xdc => (3, 0, be(2)?),
        0xdd => (5, 0, be(4)?),
        0xde => (3, 0, 2 * be(2)?),
        0xdf => (5, 0, 2 * be(4)?),
    })
}

/// The length of the one MessagePack value at the start of `buf`, nested ones included;
/// `None` when `buf` does not start with a whole value. Iterative: deep nesting costs no
/// stack, and a count no input could fill is refused at once.
pub(crate) fn value_len(buf: &[u8]) -> Option<usize> {
    let (mut pos, mut pending) = (0usize, 1u64);
    while pending > 0 {
        pending -= 1;
        let (head, payload, items) = header(buf.get(pos..)?)?;
        pos = pos.checked_add(head)?.checked_add(payload)?;
        if pos > buf.len() {
            return None;
        }
        pending = pending.checked_add(items)?;
        // Every item takes at least one byte.
        if pending > (buf.len() - pos) as u64 {
            return None;
        }
    }
    Some(pos)
}

/// The extension type and payload when `value` is exactly one extension value.
fn as_ext(value: &[u8]) -> Option<(i8, &[u8])> {
    let (head, payload, _) = header(value)?;
    if !matches!(value.first()?, 0xc7..=0xc9 | 0xd4..=0xd8) || head + payload != value.len() {
        return None;
    }
    Some((i8::from_be_bytes([value[head - 1]]), &value[head..]))
}

/// One pair of the stored map: the key, and the raw bytes of key and value.
#[derive(Debug, Clone)]
pub(crate) struct Pair<'a> {
    pub(crate) key: &'a str,
    pub(crate) raw_key: &'a [u8],
    pub(crate) raw_value: &'a [u8],
}

/// The pairs of a stored record, in their stored order.
pub(crate) fn pairs(record: &[u8]) -> Result<Vec<Pair<'_>>, WireError> {
    let (head, _, items) = header(record).ok_or(WireError::NotAMap)?;
    if !matches!(record[0], 0x80..=0x8f | 0xde | 0xdf) || value_len(record) != Some(record.len()) {
        return Err(WireError::NotAMap);
    }
    // `value_len` walked the whole map, so every slice below is in bounds and whole.
    let mut out = Vec::with_capacity(usize::try_from(items / 2).unwrap_or(0));
    let mut pos = head;
    for _ in 0..items / 2 {
        let key_len = value_len(&record[pos..]).ok_or(WireError::NotAMap)?;
        let raw_key = &record[pos..pos + key_len];
        pos += key_len;
        let value_len = value_len(&record[pos..]).ok_or(WireError::NotAMap)?;
        let raw_value = &record[pos..pos + value_len];
        pos += value_len;
        let (key_head, _, _) = header(raw_key).ok_or(WireError::NotAMap)?;
        if !matches!(raw_key[0], 0xa0..=0xbf | 0xd9..=0xdb) {
            return Err(WireError::KeyNotText);
        }
        let key = std::str::from_utf8(&raw_key[key_head..]).map_err(|_| WireError::KeyNotText)?;
        out.push(Pair { key, raw_key, raw_value });
    }
    Ok(out)
}

/// The entries of a stored record: every pair but `_permanent`, wrapped values unwrapped.
/// A key stored twice (no Python dict writes that) keeps its last value.
pub(crate) fn entries(record: &Bytes, pairs: &[Pair<'_>]) -> Entries {
    pairs
        .iter()
        .filter(|p| p.key != PERMANENT)
        .map(|p| {
            let value = match as_ext(p.raw_value) {
                Some((WRAP, payload)) => payload,
                _ => p.raw_value,
            };
            (p.key, record.slice_ref(value))
        })
        .collect()
}

/// Writes `value` as the map value of an entry: as is when it is one MessagePack value of
/// its own, else wrapped in a [`WRAP`] extension.
fn push_value(out: &mut Vec<u8>, value: &[u8]) {
    let plain = value_len(value) == Some(value.len()) && !matches!(as_ext(value), Some((WRAP, _)));
    if plain {
        out.extend_from_slice(value);
        return;
    }
    let len = value.len();
    match len {
        1 => out.extend_from_slice(&[0xd4, WRAP as u8]),
        2 => out.extend_from_slice(&[0xd5, WRAP as u8]),
        4 => out.extend_from_slice(&[0xd6, WRAP as u8]),
        8 => out.extend_from_slice(&[0xd7, WRAP as u8]),
        16 => out.extend_from_slice(&[0xd8, WRAP as u8]),
        _ if len <= 0xff => out.extend_from_slice(&[0xc7, len as u8, WRAP as u8]),
        _ if len <= 0xffff => {
            out.push(0xc8);
            out.extend_from_slice(&(len as u16).to_be_bytes());
            out.push(WRAP as u8);
        }
        _ => {
            out.push(0xc9);
            // Session values beyond 4 GiB cannot reach Redis (512 MB strings) anyway.
            out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
            out.push(WRAP as u8);
        }
    }
    out.extend_from_slice(value);
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn map_header(count: usize) -> Vec<u8> {
    if count < 16 {
        vec![0x80 | count as u8]
    } else if count <= 0xffff {
        let mut h = vec![0xde];
        h.extend_from_slice(&(count as u16).to_be_bytes());
        h
    } else {
        let mut h = vec![0xdf];
        h.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_be_bytes());
        h
    }
}

/// A new record holding `entries`: `_permanent: true` first, as Flask-Session writes it.
pub(crate) fn encode(entries: &Entries) -> Vec<u8> {
    let mut body = PERMANENT_TRUE.to_vec();
    let mut count = 1;
    for (key, value) in entries {
        if key == PERMANENT {
            continue;
        }
        push_str(&mut body, key);
        push_value(&mut body, value);
        count += 1;
    }
    let mut out = map_header(count);
    out.extend_from_slice(&body);
    out
}

/// The stored record `pairs` with `changes` spliced in: named keys replaced in place or
/// dropped, new keys appended in the order given, every other pair (and `_permanent`, which
/// this store never changes) byte for byte as it was.
pub(crate) fn splice(pairs: &[Pair<'_>], changes: &[Change]) -> Vec<u8> {
    let change_of = |key: &str| changes.iter().find(|c| &*c.key == key && key != PERMANENT);
    let mut body = Vec::new();
    let mut count = 0;
    for pair in pairs {
        match change_of(pair.key) {
            None => {
                body.extend_from_slice(pair.raw_key);
                body.extend_from_slice(pair.raw_value);
            }
            Some(Change { value: Some(value), .. }) => {
                body.extend_from_slice(pair.raw_key);
                push_value(&mut body, value);
            }
            Some(_) => continue,
        }
        count += 1;
    }
    for change in changes {
        let Some(value) = &change.value else { continue };
        if &*change.key == PERMANENT || pairs.iter().any(|p| p.key == &*change.key) {
            continue;
        }
        push_str(&mut body, &change.key);
        push_value(&mut body, value);
        count += 1;
    }
    let mut out = map_header(count);
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[u8]) -> Bytes {
        Bytes::copy_from_slice(v)
    }

    #[test]
    fn value_len_walks_nested_values_and_refuses_partial_ones() {
        // {"a": [1, "xy", {"k": nil}], "b": bin(2)}
        let v = b"\x82\xa1a\x93\x01\xa2xy\x81\xa1k\xc0\xa1b\xc4\x02\x00\x01";
        assert_eq!(value_len(v), Some(v.len()));
        for cut in 0..v.len() {
            assert_eq!(value_len(&v[..cut]), None, "cut at {cut}");
        }
        // A map32 claiming four billion pairs in five bytes, and the reserved 0xc1.
        assert_eq!(value_len(b"\xdf\xff\xff\xff\xff"), None);
        assert_eq!(value_len(b"\xc1"), None);
        // Deep nesting costs no stack.
        let deep = [&vec![0x91u8; 1_000_000][..], &[0xc0]].concat();
        assert_eq!(value_len(&deep), Some(deep.len()));
    }

    #[test]
    fn entries_are_slices_of_the_map_and_permanent_is_hidden() {
        // msgspec's encoding of {"_permanent": True, "user_id": 42, "name": "ann"}.
        let record = b(b"\x83\xaa_permanent\xc3\xa7user_id\x2a\xa4name\xa3ann");
        let pairs = pairs(&record).unwrap();
        let entries = entries(&record, &pairs);
        assert_eq!(entries.keys().collect::<Vec<_>>(), ["name", "user_id"]);
        assert_eq!(rmp_serde::from_slice::<i64>(&entries["user_id"]).unwrap(), 42);
        assert_eq!(rmp_serde::from_slice::<String>(&entries["name"]).unwrap(), "ann");
    }

    #[test]
    fn splicing_keeps_untouched_pairs_exactly_and_in_place() {
        let record = b(b"\x84\xaa_permanent\xc3\xa1a\xcd\x01\x00\xa1b\x01\xa1c\x02");
        let pairs = pairs(&record).unwrap();
        let changes = [
            Change::set("b", Some(b(b"\xa2hi"))),
            Change::set("c", None),
            Change::set("new", Some(b(b"\x07"))),
            Change::set(PERMANENT, Some(b(b"\xc2"))),
            Change::set("missing", None),
        ];
        let out = splice(&pairs, &changes);
        assert_eq!(out, b"\x84\xaa_permanent\xc3\xa1a\xcd\x01\x00\xa1b\xa2hi\xa3new\x07");
    }

    #[test]
    fn values_that_are_not_one_messagepack_value_round_trip_wrapped() {
        let mut entries = Entries::new();
        let odd: [&[u8]; 6] = [b"", b"\x01\x02", b"\xc1", b"\xd4\x52\x00", &[0xab; 300], &[0x01; 70_000]];
        for (i, v) in odd.iter().enumerate() {
            entries.insert(format!("k{i}"), b(v));
        }
        entries.insert("plain", b(b"\x93\x01\x02\x03"));
        let record = Bytes::from(encode(&entries));
        let pairs = pairs(&record).unwrap();
        assert_eq!(super::entries(&record, &pairs), entries);
        // A plain value is stored as itself, so Flask reads it as the value it is.
        assert!(pairs.iter().any(|p| p.key == "plain" && p.raw_value == b"\x93\x01\x02\x03"));
    }

    #[test]
    fn garbage_is_not_a_map() {
        let cases: [&[u8]; 6] =
            [b"", b"{\"a\": 1}", b"\x80\x00", b"\x91\x01", b"\x81\x01\x02", b"\x81\xa2\xff\xfe\x01"];
        for case in cases {
            assert!(pairs(case).is_err(), "{case:?}");
        }
        assert_eq!(pairs(b"\x81\x01\x02").unwrap_err(), WireError::KeyNotText);
    }
}
