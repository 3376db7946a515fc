//! The tokens: what a secret is, and how a rendered token hides it.
//!
//! A rendered token is `base64url(mask || mask XOR secret)` with a fresh random mask, so
//! no two renders are alike and a compressed response (BREACH) never repeats the secret.
//! The secret is one of:
//!
//! - **session** (32 bytes): server-side, HMAC of the record digest (nothing stored, and a
//!   new id means a new secret); client-side, a random value kept in the session;
//! - **anonymous** (40 bytes): the issue time (8 bytes, big-endian Unix seconds) and an
//!   HMAC of the anonymous cookie's nonce and that time, so it is short-lived and only
//!   valid beside that cookie.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::crypto::SIG_LEN;
use crate::{KeyRing, RecordId};

/// Length of the anonymous cookie's random nonce.
pub(crate) const NONCE_LEN: usize = 32;
const SESSION_LEN: usize = SIG_LEN;
const ANON_LEN: usize = 8 + SIG_LEN;
/// The longest token text worth decoding: an anonymous token.
const MAX_TEXT: usize = (2 * ANON_LEN * 4).div_ceil(3);
/// How far in the future an issue time may be (clocks of several instances disagree).
const SKEW: Duration = Duration::minutes(1);

const SESSION_CONTEXT: &str = "session-core csrf session";
const ANON_CONTEXT: &str = "session-core csrf anonymous";

/// An unmasked token.
pub(crate) enum Secret {
    Session([u8; SESSION_LEN]),
    Anonymous { issued: i64, tag: [u8; SIG_LEN] },
}

/// Why a sent token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Invalid,
    Expired,
}

pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the OS random number generator failed");
    out
}

/// `secret` masked afresh, as text for a form or a header.
pub(crate) fn mask(secret: &[u8]) -> String {
    let mut out = vec![0u8; 2 * secret.len()];
    getrandom::fill(&mut out[..secret.len()]).expect("the OS random number generator failed");
    let (m, x) = out.split_at_mut(secret.len());
    for ((x, m), s) in x.iter_mut().zip(m.iter()).zip(secret) {
        *x = m ^ s;
    }
    URL_SAFE_NO_PAD.encode(out)
}

/// The secret a token text hides, or `None` if it is no token of ours.
pub(crate) fn unmask(text: &str) -> Option<Secret> {
    if text.len() > MAX_TEXT {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
    if raw.len() % 2 != 0 {
        return None;
    }
    let (m, x) = raw.split_at(raw.len() / 2);
    let secret: Vec<u8> = m.iter().zip(x).map(|(m, x)| m ^ x).collect();
    match secret.len() {
        SESSION_LEN => secret.try_into().ok().map(Secret::Session),
        ANON_LEN => {
            let (issued, tag) = secret.split_at(8);
            let issued = i64::from_be_bytes(issued.try_into().ok()?);
            Some(Secret::Anonymous { issued, tag: tag.try_into().ok()? })
        }
        _ => None,
    }
}

/// The session secret of a server-side record: derived, never stored.
pub(crate) fn record_secret(keys: &KeyRing, rid: &RecordId) -> [u8; SESSION_LEN] {
    keys.sign(SESSION_CONTEXT, rid.as_bytes())
}

/// Whether `sent` is the session secret of `rid` under any key of the ring.
pub(crate) fn check_record(keys: &KeyRing, rid: &RecordId, sent: &[u8; SESSION_LEN]) -> bool {
    keys.verify(SESSION_CONTEXT, rid.as_bytes(), sent).is_some()
}

/// Whether `sent` is the stored client-side secret (constant time).
pub(crate) fn check_stored(stored: &[u8], sent: &[u8; SESSION_LEN]) -> bool {
    stored.ct_eq(sent).into()
}

/// An anonymous secret for `nonce`, issued now.
pub(crate) fn anonymous_secret(keys: &KeyRing, nonce: &[u8], now: OffsetDateTime) -> Vec<u8> {
    let issued = now.unix_timestamp().to_be_bytes();
    let mut out = issued.to_vec();
    out.extend_from_slice(&keys.sign(ANON_CONTEXT, &anon_msg(nonce, &issued)));
    out
}

/// Checks an anonymous secret against the nonce it must be bound to.
pub(crate) fn check_anonymous(
    keys: &KeyRing,
    nonce: &[u8],
    issued: i64,
    tag: &[u8; SIG_LEN],
    lifetime: Duration,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    if keys.verify(ANON_CONTEXT, &anon_msg(nonce, &issued.to_be_bytes()), tag).is_none() {
        return Err(Refusal::Invalid);
    }
    let age = Duration::seconds(now.unix_timestamp().saturating_sub(issued));
    if age > lifetime || age < -SKEW {
        return Err(Refusal::Expired);
    }
    Ok(())
}

fn anon_msg(nonce: &[u8], issued: &[u8; 8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(nonce.len() + 8);
    msg.extend_from_slice(issued);
    msg.extend_from_slice(nonce);
    msg
}

/// The nonce an anonymous cookie value holds, if it is one.
pub(crate) fn parse_nonce(text: &str) -> Option<[u8; NONCE_LEN]> {
    let mut out = [0u8; NONCE_LEN];
    (URL_SAFE_NO_PAD.decode_slice(text, &mut out).ok()? == NONCE_LEN).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    #[test]
    fn renders_differ_and_unmask_to_the_same_secret() {
        let keys = KeyRing::new(Key::generate());
        let rid = RecordId::from_bytes([7; 32]);
        let secret = record_secret(&keys, &rid);
        let (a, b) = (mask(&secret), mask(&secret));
        assert_ne!(a, b);
        for t in [a, b] {
            let Some(Secret::Session(s)) = unmask(&t) else { panic!("not a session token") };
            assert!(check_record(&keys, &rid, &s));
            assert!(!check_record(&keys, &RecordId::from_bytes([8; 32]), &s));
        }
    }

    #[test]
    fn anonymous_tokens_are_bound_to_the_nonce_and_expire() {
        let keys = KeyRing::new(Key::generate());
        let nonce = random::<NONCE_LEN>();
        let now = OffsetDateTime::now_utc();
        let Some(Secret::Anonymous { issued, tag }) = unmask(&mask(&anonymous_secret(&keys, &nonce, now)))
        else {
            panic!("not an anonymous token")
        };
        let life = Duration::hours(2);
        assert_eq!(check_anonymous(&keys, &nonce, issued, &tag, life, now), Ok(()));
        let other = random::<NONCE_LEN>();
        assert_eq!(check_anonymous(&keys, &other, issued, &tag, life, now), Err(Refusal::Invalid));
        assert_eq!(check_anonymous(&keys, &nonce, issued + 1, &tag, life, now), Err(Refusal::Invalid));
        let later = now + Duration::hours(3);
        assert_eq!(check_anonymous(&keys, &nonce, issued, &tag, life, later), Err(Refusal::Expired));
    }

    #[test]
    fn garbage_is_no_token() {
        for t in ["", "abc", "!!!!", &"A".repeat(500), &URL_SAFE_NO_PAD.encode([0u8; 63])] {
            assert!(unmask(t).is_none(), "{t:?}");
        }
        assert!(parse_nonce(&URL_SAFE_NO_PAD.encode([1u8; NONCE_LEN])).is_some());
        assert!(parse_nonce(&URL_SAFE_NO_PAD.encode([1u8; 31])).is_none());
    }
}
