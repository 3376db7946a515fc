//! Keys for signed and private cookies, with rotation.
//!
//! A [`Key`] is derived with HKDF-SHA256 from at least 32 bytes of secret material into two
//! independent subkeys: one for HMAC-SHA256 signatures, one for AES-256-GCM encryption, so
//! the same secret never serves two algorithms. A [`KeyRing`] holds the primary key, used
//! for every new cookie, and fallbacks that are still accepted while you rotate.
//!
//! ```
//! use session_core::{Key, KeyRing};
//!
//! let old = Key::try_from(&[7u8; 32][..]).unwrap();
//! let new = Key::generate();
//! let ring = KeyRing::new(new).with_fallback(old);
//! assert_eq!(ring.len(), 2);
//! ```

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// The shortest secret a [`Key`] accepts, in bytes.
pub const MIN_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes that sealing adds to a plaintext: nonce and GCM tag.
pub(crate) const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Length of an HMAC-SHA256 tag from [`KeyRing::sign`].
pub const SIG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why a byte string was refused as a [`Key`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is shorter than [`MIN_KEY_LEN`] bytes.
    #[error("session key too short: got {0} bytes, need at least 32 (use Key::generate() for a fresh one)")]
    TooShort(usize),
}

/// A secret key for signing and encrypting session cookies.
///
/// `Debug` prints no key material, and equality is constant time.
///
/// ```
/// use session_core::{Key, KeyError};
///
/// let key = Key::generate();
/// // Persist `key.master()` somewhere safe and rebuild the same key later:
/// let again = Key::try_from(key.master()).unwrap();
/// assert_eq!(key, again);
///
/// assert_eq!(Key::try_from(&b"too short"[..]), Err(KeyError::TooShort(9)));
/// assert_eq!(format!("{key:?}"), "Key(..)");
/// ```
#[derive(Clone)]
pub struct Key(Arc<KeyInner>);

struct KeyInner {
    master: Zeroizing<Vec<u8>>,
    signing: Zeroizing<[u8; 32]>,
    encryption: Aes256Gcm,
}

impl Key {
    /// A fresh random 64-byte key from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// Panics if the operating system has no usable random source.
    #[must_use]
    pub fn generate() -> Self {
        let mut master = Zeroizing::new(vec![0u8; 64]);
        getrandom::fill(&mut master).expect("the OS random number generator failed");
        Self::derive_from(&master).expect("64 bytes is long enough")
    }

    /// Derives a key from secret material of at least 32 bytes with HKDF-SHA256, giving
    /// separate subkeys for signing and encryption.
    ///
    /// # Errors
    ///
    /// [`KeyError::TooShort`] when `secret` has fewer than [`MIN_KEY_LEN`] bytes.
    pub fn derive_from(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort(secret.len()));
        }
        let hk = Hkdf::<Sha256>::new(Some(b"session-core key v1"), secret);
        let mut signing = Zeroizing::new([0u8; 32]);
        let mut enc = Zeroizing::new([0u8; 32]);
        hk.expand(b"signing", signing.as_mut()).expect("32 bytes is a valid HKDF length");
        hk.expand(b"encryption", enc.as_mut()).expect("32 bytes is a valid HKDF length");
        let encryption = Aes256Gcm::new_from_slice(enc.as_ref()).expect("AES-256 takes 32 bytes");
        Ok(Self(Arc::new(KeyInner { master: Zeroizing::new(secret.to_vec()), signing, encryption })))
    }

    /// The secret this key was made from: store it to rebuild the key with
    /// [`Key::try_from`] after a restart. Treat it like a password.
    #[must_use]
    pub fn master(&self) -> &[u8] {
        &self.0.master
    }

    fn mac(&self, context: &str, msg: &[u8]) -> HmacSha256 {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(self.0.signing.as_ref()).expect("HMAC takes any key length");
        // Length-prefixing the context keeps (context, msg) pairs unambiguous whatever
        // bytes either holds.
        mac.update(&(context.len() as u64).to_be_bytes());
        mac.update(context.as_bytes());
        mac.update(msg);
        mac
    }
}

impl TryFrom<&[u8]> for Key {
    type Error = KeyError;

    /// Same as [`Key::derive_from`].
    fn try_from(secret: &[u8]) -> Result<Self, KeyError> {
        Self::derive_from(secret)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.master.as_slice().ct_eq(other.0.master.as_slice()).into()
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Drop for KeyInner {
    fn drop(&mut self) {
        // `Aes256Gcm` keeps its own expanded key schedule; overwrite the one copy we own.
        self.signing.zeroize();
    }
}

/// A primary [`Key`] plus older fallback keys, for rotation without logging users out.
///
/// New cookies are always signed or sealed with the primary. A cookie made with a fallback
/// is still accepted, and the layer re-issues it under the primary on that response.
///
/// ```
/// use session_core::{Key, KeyRing};
///
/// let ring = KeyRing::new(Key::generate())
///     .with_fallback(Key::generate())
///     .with_fallback(Key::generate());
/// assert_eq!(ring.len(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Arc<[Key]>,
}

impl KeyRing {
    /// A ring with only `primary`.
    #[must_use]
    pub fn new(primary: Key) -> Self {
        Self { keys: Arc::from(vec![primary]) }
    }

    /// Adds an older key that is still accepted. Fallbacks are tried in the order added.
    #[must_use]
    pub fn with_fallback(self, key: Key) -> Self {
        let mut keys = self.keys.to_vec();
        keys.push(key);
        Self { keys: keys.into() }
    }

    /// The key new cookies are made with.
    #[must_use]
    pub fn primary(&self) -> &Key {
        &self.keys[0]
    }

    /// Number of keys, primary included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a ring has a primary key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// HMAC-SHA256 of `context` and `msg` under the primary key's signing subkey. The
    /// layer passes the cookie name as `context`, so a tag is valid for one cookie only.
    ///
    /// ```
    /// use session_core::{Key, KeyRing};
    ///
    /// let ring = KeyRing::new(Key::generate());
    /// let tag = ring.sign("cart", b"42");
    /// assert_eq!(ring.verify("cart", b"42", &tag), Some(0));
    /// assert_eq!(ring.verify("user", b"42", &tag), None);
    /// ```
    #[must_use]
    pub fn sign(&self, context: &str, msg: &[u8]) -> [u8; SIG_LEN] {
        self.primary().mac(context, msg).finalize().into_bytes().into()
    }

    /// Checks a tag made by [`KeyRing::sign`] with any key of the ring (each comparison is
    /// constant time); returns the index of the matching key (0 is the primary), or `None`.
    #[must_use]
    pub fn verify(&self, context: &str, msg: &[u8], tag: &[u8]) -> Option<usize> {
        self.keys.iter().position(|k| k.mac(context, msg).verify_slice(tag).is_ok())
    }

    /// Encrypts with AES-256-GCM under the primary key's encryption subkey, a fresh random
    /// nonce, and `context` as associated data. Output: nonce (12) || ciphertext || tag (16).
    ///
    /// ```
    /// use session_core::{Key, KeyRing};
    ///
    /// let ring = KeyRing::new(Key::generate());
    /// let sealed = ring.seal("vault", b"hunter2");
    /// assert_eq!(ring.open("vault", &sealed), Some((b"hunter2".to_vec(), 0)));
    /// assert_eq!(ring.open("other", &sealed), None);
    /// ```
    #[must_use]
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random number generator failed");
        let sealed = self
            .primary()
            .0
            .encryption
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`KeyRing::seal`] made, with any key of the ring; returns the plaintext
    /// and the index of the key that opened it (0 is the primary), or `None` when the input
    /// was not sealed by this ring for this `context` or was changed.
    #[must_use]
    pub fn open(&self, context: &str, sealed: &[u8]) -> Option<(Vec<u8>, usize)> {
        if sealed.len() < SEAL_OVERHEAD {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.keys.iter().enumerate().find_map(|(i, k)| {
            k.0.encryption
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
                .ok()
                .map(|plain| (plain, i))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(Key::try_from(&[0u8; 31][..]).unwrap_err(), KeyError::TooShort(31));
        assert!(Key::try_from(&[0u8; 32][..]).is_ok());
        assert!(KeyError::TooShort(3).to_string().contains("at least 32"));
    }

    #[test]
    fn debug_prints_no_key_material() {
        let key = Key::try_from(&[0xAB; 40][..]).unwrap();
        let debug = format!("{key:?} {:?}", KeyRing::new(key.clone()));
        assert!(!debug.to_lowercase().contains("ab, ab"));
        assert!(!debug.contains("171"));
        assert!(!debug.contains("master"));
    }

    #[test]
    fn derivation_is_deterministic_and_separates_keys() {
        let a = Key::try_from(&[1u8; 32][..]).unwrap();
        let b = Key::try_from(&[1u8; 32][..]).unwrap();
        let c = Key::try_from(&[2u8; 32][..]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a.0.signing.as_ref(), &[1u8; 32]);
    }

    #[test]
    fn signatures_bind_the_cookie_name_and_rotate() {
        let old = Key::generate();
        let new = Key::generate();
        let old_ring = KeyRing::new(old.clone());
        let ring = KeyRing::new(new).with_fallback(old);
        let tag = old_ring.sign("id", b"value");
        assert_eq!(ring.verify("id", b"value", &tag), Some(1));
        assert_eq!(ring.verify("other", b"value", &tag), None);
        assert_eq!(ring.verify("id", b"valuf", &tag), None);
        assert_eq!(ring.verify("id", b"value", &tag[..31]), None);
        let fresh = ring.sign("id", b"value");
        assert_eq!(ring.verify("id", b"value", &fresh), Some(0));
    }

    #[test]
    fn sealing_round_trips_binds_name_and_detects_tampering() {
        let ring = KeyRing::new(Key::generate());
        let sealed = ring.seal("id", b"secret");
        assert_ne!(ring.seal("id", b"secret"), sealed, "nonces must be random");
        assert_eq!(ring.open("id", &sealed), Some((b"secret".to_vec(), 0)));
        assert_eq!(ring.open("other", &sealed), None);
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(ring.open("id", &bad), None);
        assert_eq!(ring.open("id", &sealed[..10]), None);
        let other = KeyRing::new(Key::generate());
        assert_eq!(other.open("id", &sealed), None);
    }
}
