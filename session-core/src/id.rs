//! Session ids: random, opaque, strictly parsed.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Number of random bytes in an [`Id`] (128 bits).
const ID_BYTES: usize = 16;
/// Length of an [`Id`] in its base64url text form.
pub(crate) const ID_TEXT_LEN: usize = 22;
/// Number of bytes of a raw id ([`Id::from_raw`]).
const RAW_BYTES: usize = 32;
/// Length of a raw id's base64url text form.
const RAW_TEXT_LEN: usize = 43;

/// Ids fetched from the OS at once, per thread.
const POOL_IDS: usize = 64;

thread_local! {
    static POOL: std::cell::RefCell<Pool> = const {
        std::cell::RefCell::new(Pool { bytes: [0; POOL_IDS * ID_BYTES], next: POOL_IDS * ID_BYTES })
    };
}

/// OS randomness not handed out yet: `bytes[next..]`; everything before `next` is zeroed.
struct Pool {
    bytes: [u8; POOL_IDS * ID_BYTES],
    next: usize,
}

impl Pool {
    fn take(&mut self) -> Id {
        if self.next == self.bytes.len() {
            getrandom::fill(&mut self.bytes).expect("the OS random number generator failed");
            self.next = 0;
        }
        let taken = &mut self.bytes[self.next..self.next + ID_BYTES];
        let mut id = [0u8; ID_BYTES];
        id.copy_from_slice(taken);
        taken.fill(0);
        self.next += ID_BYTES;
        Id(Repr::Random(id))
    }
}

/// A session id: 128 bits from the operating system's CSPRNG.
///
/// The text form (what the cookie carries) is base64url without padding, exactly 22
/// characters. Parsing is strict: any other length, alphabet or a non-canonical final
/// character is rejected, so a garbage cookie never reaches a store.
///
/// An `Id` is a bearer secret: its `Debug` output is redacted, comparison is constant time,
/// and stores never see it (they are keyed by its [`RecordId`] digest).
///
/// ```
/// use session_core::Id;
///
/// let id = Id::random();
/// let text = id.to_string();
/// assert_eq!(text.len(), 22);
/// assert_eq!(text.parse::<Id>().unwrap(), id);
/// assert!("not-an-id".parse::<Id>().is_err());
/// assert_eq!(format!("{id:?}"), "Id(..)");
/// ```
///
/// A layer with an [`IdFormat`](crate::IdFormat) of its own may use other ids, such as the
/// raw ids of a store it shares with another framework ([`Id::from_raw`]).
#[derive(Clone, Copy)]
pub struct Id(Repr);

#[derive(Clone, Copy)]
enum Repr {
    /// 128 random bits; stores see their SHA-256.
    Random([u8; ID_BYTES]),
    /// 32 bytes that are their own record id.
    Raw([u8; RAW_BYTES]),
}

impl Id {
    /// A fresh id from the operating system's CSPRNG.
    ///
    /// The bytes are the OS generator's output as is, fetched for 64 ids at a time per
    /// thread (one `getrandom` call costs about as much as a whole request otherwise), each
    /// handed out once and wiped from the buffer as it is taken. Like any user-space
    /// randomness buffer, it is not fork-aware: a process that forks after drawing ids must
    /// not draw more in the child from a thread that existed before the fork.
    ///
    /// # Panics
    ///
    /// Panics if the operating system has no usable random source; a session library must
    /// not fall back to predictable ids.
    #[must_use]
    pub fn random() -> Self {
        POOL.with_borrow_mut(Pool::take)
    }

    /// An id of 32 bytes that is its own record id, with no digest: for a store shared with
    /// another framework that keys records by the id the cookie carries (Flask-Session
    /// does). Stores then hold usable cookie values, so a leaked store dump or key listing
    /// hands out sessions: use it only for that interoperability, through an
    /// [`IdFormat`](crate::IdFormat). The text form is 43 base64url characters.
    ///
    /// ```
    /// use session_core::Id;
    ///
    /// let id = Id::from_raw([7; 32]);
    /// assert_eq!(id.record_id().as_bytes(), &[7; 32]);
    /// assert_eq!(id.raw(), Some(&[7; 32]));
    /// assert_eq!(id.to_string().len(), 43);
    /// assert_eq!(Id::random().raw(), None);
    /// ```
    #[must_use]
    pub fn from_raw(bytes: [u8; RAW_BYTES]) -> Self {
        Self(Repr::Raw(bytes))
    }

    /// The bytes of an id made by [`Id::from_raw`]; `None` for a random id.
    #[must_use]
    pub fn raw(&self) -> Option<&[u8; RAW_BYTES]> {
        match &self.0 {
            Repr::Raw(bytes) => Some(bytes),
            Repr::Random(_) => None,
        }
    }

    /// The digest stores are keyed by: SHA-256 of a random id's bytes, a raw id's own bytes.
    #[must_use]
    pub fn record_id(&self) -> RecordId {
        match &self.0 {
            Repr::Random(bytes) => RecordId(Sha256::digest(bytes).into()),
            Repr::Raw(bytes) => RecordId(*bytes),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Random(bytes) => bytes,
            Repr::Raw(bytes) => bytes,
        }
    }

    /// A random id from its 16 bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(|b| Self(Repr::Random(b)))
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Random(a), Repr::Random(b)) => a.ct_eq(b).into(),
            (Repr::Raw(a), Repr::Raw(b)) => a.ct_eq(b).into(),
            _ => false,
        }
    }
}

impl Eq for Id {}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Id(..)")
    }
}

impl fmt::Display for Id {
    /// The base64url text form. This is the secret a cookie carries: never log it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// The base64url alphabet (RFC 4648, section 5).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The value of each base64url character; 0xff for every other byte.
const DIGITS: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

impl Id {
    /// The 22-character text form. Written out for this one length: every request that
    /// sets a cookie encodes an id, and the general-purpose engine costs several times more.
    pub(crate) fn encode(&self) -> IdText {
        let bytes = match &self.0 {
            Repr::Random(bytes) => bytes,
            Repr::Raw(bytes) => {
                let mut out = [0u8; RAW_TEXT_LEN];
                let n = URL_SAFE_NO_PAD.encode_slice(bytes, &mut out).unwrap_or_default();
                debug_assert_eq!(n, RAW_TEXT_LEN);
                return IdText::Raw(out);
            }
        };
        let mut out = [0u8; ID_TEXT_LEN];
        let char_of = |n: u32| ALPHABET[(n & 63) as usize];
        // Five groups of three bytes make 20 characters; the last byte makes two more.
        for (group, bytes) in bytes.chunks_exact(3).enumerate() {
            let n = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
            let at = group * 4;
            out[at..at + 4].copy_from_slice(&[
                char_of(n >> 18),
                char_of(n >> 12),
                char_of(n >> 6),
                char_of(n),
            ]);
        }
        let last = u32::from(bytes[ID_BYTES - 1]);
        out[20] = char_of(last >> 2);
        out[21] = char_of(last << 4);
        IdText::Random(out)
    }

    /// Appends the text form to `out`, a character at a time: the cookie is written this
    /// way, and building the text first and pushing it as a `&str` cost a UTF-8 check
    /// (about 190 instructions for 22 bytes) on every `Set-Cookie`.
    pub(crate) fn push_text(&self, out: &mut String) {
        let Repr::Random(bytes) = &self.0 else {
            out.push_str(&self.encode());
            return;
        };
        let char_of = |n: u32| char::from(ALPHABET[(n & 63) as usize]);
        for group in bytes.chunks_exact(3) {
            let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
            for shift in [18, 12, 6, 0] {
                out.push(char_of(n >> shift));
            }
        }
        let last = u32::from(bytes[ID_BYTES - 1]);
        out.push(char_of(last >> 2));
        out.push(char_of(last << 4));
    }

    /// The inverse of `encode`, strict: exactly 22 characters of the alphabet, and the
    /// last one canonical (its low 4 bits, which carry no data, are zero), so each id has
    /// exactly one text form.
    pub(crate) fn from_text(text: &[u8]) -> Option<Self> {
        let text: &[u8; ID_TEXT_LEN] = text.try_into().ok()?;
        let digits = text.map(|c| DIGITS[usize::from(c)]);
        // Valid digits are below 64; any 0xff sets the top bit of the union.
        if digits.iter().fold(0, |all, d| all | d) & 0x80 != 0 || digits[21] & 0x0f != 0 {
            return None;
        }
        let mut bytes = [0u8; ID_BYTES];
        for (group, d) in digits[..20].chunks_exact(4).enumerate() {
            let n = u32::from(d[0]) << 18 | u32::from(d[1]) << 12 | u32::from(d[2]) << 6 | u32::from(d[3]);
            bytes[group * 3..group * 3 + 3].copy_from_slice(&n.to_be_bytes()[1..]);
        }
        bytes[ID_BYTES - 1] = digits[20] << 2 | digits[21] >> 4;
        Some(Self(Repr::Random(bytes)))
    }
}

/// An id's text form, on the stack.
pub(crate) enum IdText {
    Random([u8; ID_TEXT_LEN]),
    Raw([u8; RAW_TEXT_LEN]),
}

impl std::ops::Deref for IdText {
    type Target = str;

    fn deref(&self) -> &str {
        let bytes: &[u8] = match self {
            Self::Random(text) => text,
            Self::Raw(text) => text,
        };
        // The alphabet is ASCII.
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

/// The error from parsing an [`Id`]: the text is not a well-formed session id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a session id: expected 22 base64url characters")]
pub struct ParseIdError(());

impl std::str::FromStr for Id {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_text(s.as_bytes()).ok_or(ParseIdError(()))
    }
}

/// What a store is keyed by: the SHA-256 digest of an [`Id`].
///
/// A leaked store dump or a timing probe on store lookups yields digests, and a digest is
/// not a usable cookie. `Display` gives 64 lowercase hex characters, safe in file names,
/// SQL and Redis keys.
///
/// ```
/// use session_core::Id;
///
/// let id = Id::random();
/// let key = id.record_id();
/// assert_eq!(key.to_string().len(), 64);
/// assert_eq!(key.to_string().parse(), Ok(key));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId([u8; 32]);

impl RecordId {
    /// The 32 digest bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a record id from its 32 bytes (as a store may keep them).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

/// Hashes a [`RecordId`] by eight of its bytes for in-process tables: the digest is
/// uniform and no client can choose it (that would take a SHA-256 preimage), so a keyed hash
/// buys nothing there. Bytes 8..16, since tables sharded by a leading byte would otherwise
/// see equal low bits within a shard.
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        match bytes.get(8..16) {
            Some(part) => word.copy_from_slice(part),
            None => {
                let n = bytes.len().min(8);
                word[..n].copy_from_slice(&bytes[..n]);
            }
        }
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, _length_prefix: usize) {}
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not a secret, but a short prefix is all a log ever needs.
        write!(f, "RecordId({:02x}{:02x}{:02x}{:02x}..)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for RecordId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return Err(ParseIdError(()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or(ParseIdError(()))?;
            let lo = hex_val(pair[1]).ok_or(ParseIdError(()))?;
            out[i] = hi << 4 | lo;
        }
        Ok(Self(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        let a = Id::random();
        let b = Id::random();
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<Id>().unwrap(), a);
        assert_ne!(a.record_id(), b.record_id());
    }

    #[test]
    fn pooled_ids_are_distinct_across_refills_and_threads() {
        let per_thread = POOL_IDS * 40 + 3; // many refills, ending mid-pool
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread)
                        .map(|_| <[u8; ID_BYTES]>::try_from(Id::random().as_bytes()).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for t in threads {
            for id in t.join().unwrap() {
                assert_ne!(id, [0; ID_BYTES], "an id was drawn from a wiped slot");
                assert!(all.insert(id), "an id was handed out twice");
            }
        }
        assert_eq!(all.len(), 4 * per_thread);
    }

    #[test]
    fn the_pool_hands_out_its_bytes_once_and_wipes_them() {
        let mut pool = Pool { bytes: [0; POOL_IDS * ID_BYTES], next: POOL_IDS * ID_BYTES };
        let first = pool.take(); // refills
        let unread = pool.bytes[ID_BYTES..2 * ID_BYTES].to_vec();
        assert_eq!(pool.bytes[..ID_BYTES], [0; ID_BYTES], "taken bytes are wiped");
        let second = pool.take();
        assert_eq!(second.as_bytes()[..], unread[..], "ids are the OS bytes as they came");
        assert_ne!(first, second);
        assert_eq!(pool.next, 2 * ID_BYTES);
    }

    #[test]
    fn record_ids_are_the_sha256_of_the_id() {
        // `printf '\x00%.0s' $(seq 16) | sha256sum`
        let id = Id(Repr::Random([0; ID_BYTES]));
        assert_eq!(
            id.record_id().to_string(),
            "374708fff7719dd5979ec875d56cd2286f6d3cf7ec317a3b25632aab28ec37bb"
        );
    }

    #[test]
    fn the_text_form_is_standard_base64url() {
        for _ in 0..1000 {
            let id = Id::random();
            let text = id.to_string();
            assert_eq!(text, URL_SAFE_NO_PAD.encode(id.as_bytes()));
            assert_eq!(text.parse::<Id>().unwrap(), id);
        }
        for bytes in [[0u8; ID_BYTES], [0xff; ID_BYTES]] {
            assert_eq!(Id(Repr::Random(bytes)).to_string(), URL_SAFE_NO_PAD.encode(bytes));
        }
    }

    #[test]
    fn pushed_text_is_the_text_form() {
        let raw = Id::from_raw([7; 32]);
        let ids = (0..1000).map(|_| Id::random()).chain([Id(Repr::Random([0xff; ID_BYTES])), raw]);
        for id in ids {
            let mut out = String::from("id=");
            id.push_text(&mut out);
            assert_eq!(out, format!("id={id}"));
        }
    }

    #[test]
    fn parsing_accepts_exactly_what_the_base64_crate_accepts() {
        let base = Id::random().to_string();
        // Every character in every position: the hand-written decoder and the base64
        // crate's strict one agree on validity and on the bytes.
        for pos in 0..ID_TEXT_LEN {
            for c in 0..=255u8 {
                let mut text = base.clone().into_bytes();
                text[pos] = c;
                let ours = Id::from_text(&text);
                let mut bytes = [0u8; ID_BYTES];
                let theirs = match URL_SAFE_NO_PAD.decode_slice(&text, &mut bytes) {
                    Ok(ID_BYTES) => Some(bytes),
                    _ => None,
                };
                assert_eq!(
                    ours.map(|id| <[u8; ID_BYTES]>::try_from(id.as_bytes()).unwrap()),
                    theirs,
                    "position {pos}, byte {c:#04x}"
                );
            }
        }
    }

    #[test]
    fn parsing_is_strict() {
        let good = Id::random().to_string();
        for bad in [
            "",
            "short",
            &good[..21],
            &format!("{good}A"),
            "!!!!!!!!!!!!!!!!!!!!!!",
            "++++++++++++++++++++++",
            "AAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert!(bad.parse::<Id>().is_err(), "{bad:?} parsed");
        }
        // 22 chars carry 132 bits; the last 4 must be zero, so only one spelling is valid.
        let mut non_canonical = good.clone().into_bytes();
        non_canonical[21] = if non_canonical[21] == b'B' { b'C' } else { b'B' };
        let text = String::from_utf8(non_canonical).unwrap();
        if let Ok(parsed) = text.parse::<Id>() {
            assert_eq!(parsed.to_string(), text, "two spellings of one id");
        }
    }

    #[test]
    fn debug_prints_no_secret() {
        let id = Id::random();
        let debug = format!("{id:?}");
        assert!(!debug.contains(&id.to_string()));
        let rec = format!("{:?}", id.record_id());
        assert!(!rec.contains(&id.record_id().to_string()));
    }

    #[test]
    fn record_id_round_trips_and_rejects_garbage() {
        let r = Id::random().record_id();
        assert_eq!(r.to_string().parse::<RecordId>().unwrap(), r);
        assert!("zz".repeat(32).parse::<RecordId>().is_err());
        assert!(
            r.to_string().to_uppercase().parse::<RecordId>().is_err()
                || r.to_string() == r.to_string().to_uppercase()
        );
        assert_eq!(RecordId::from_bytes(*r.as_bytes()), r);
    }
}
