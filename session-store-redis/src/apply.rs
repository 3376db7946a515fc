//! A [`Patch`] as arguments of the apply script, and the script's answer as an [`Applied`].
//! The argument layout is documented on [`scripts::APPLY`](crate::scripts::APPLY).

use redis::{ScriptInvocation, Value};
use session_core::{Applied, ExpiryChange, Patch, StoreError};
use time::OffsetDateTime;

use crate::hash;
use crate::scripts;

/// What the apply script did.
pub(crate) struct Outcome {
    pub(crate) applied: Applied,
    /// The user digest, when the record must be listed in that user's index again.
    pub(crate) reindex: Option<[u8; 32]>,
}

/// The apply script's invocation for `patch` on the hash `key`, at `now`.
pub(crate) fn invocation(key: String, patch: &Patch, now: OffsetDateTime) -> ScriptInvocation<'static> {
    let mut call = scripts::APPLY.prepare_invoke();
    call.key(key);
    call.arg(hash::nanos(now))
        .arg(hash::nanos(patch.expires_at))
        .arg(hash::expire_at_arg(patch.expires_at))
        .arg(hash::nanos(patch.last_seen));
    let (mode, expiry) = match patch.expiry {
        ExpiryChange::Keep(basis) => ("k", basis),
        ExpiryChange::Set(expiry) => ("s", expiry),
    };
    call.arg(mode).arg(expiry.map(|e| e.to_bytes()).unwrap_or_default());
    let flags = match (&patch.user, &patch.label) {
        (Some(_), Some(_)) => "ul",
        (Some(_), None) => "u",
        (None, Some(_)) => "l",
        (None, None) => "",
    };
    let digest = patch.user.as_deref().map(hash::user_digest);
    call.arg(flags)
        .arg(patch.user.as_deref().unwrap_or_default())
        .arg(digest.as_ref().map_or(&[][..], |d| &d[..]))
        .arg(patch.label.as_deref().unwrap_or_default());
    let mut field = Vec::new();
    for change in &patch.changes {
        let op = match (&change.value, &change.expect) {
            (Some(_), None) => "s-",
            (Some(_), Some(None)) => "sa",
            (Some(_), Some(Some(_))) => "se",
            (None, None) => "d-",
            (None, Some(None)) => "da",
            (None, Some(Some(_))) => "de",
        };
        call.arg(hash::entry_field(&mut field, &change.key))
            .arg(op)
            .arg(change.value.as_deref().unwrap_or_default())
            .arg(change.expect.as_ref().and_then(Option::as_deref).unwrap_or_default());
    }
    call
}

/// The outcome in the apply script's `reply`.
///
/// # Errors
///
/// [`StoreError::NotFound`] and [`StoreError::Conflict`] as the script says; a reply of
/// another shape is [`StoreError::Backend`], an undecodable stored expiry
/// [`StoreError::Corrupt`].
pub(crate) fn outcome(reply: Value) -> Result<Outcome, StoreError> {
    let bad = || StoreError::backend("the apply script answered something unexpected");
    let Value::Array(reply) = reply else { return Err(bad()) };
    let int = |at: usize| match reply.get(at) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    match int(0) {
        Some(1) => {}
        Some(0) => return Err(StoreError::Conflict),
        Some(-1) => return Err(StoreError::NotFound),
        _ => return Err(bad()),
    }
    let version = int(1).and_then(|v| u64::try_from(v).ok()).ok_or_else(bad)?;
    let Some(Value::BulkString(expires)) = reply.get(2) else { return Err(bad()) };
    // The patch's instant, or the stored one it kept: exact either way.
    let expires_at = hash::instant(expires)?;
    let ended = int(3).ok_or_else(bad)? == 1;
    let reindex = match reply.get(4) {
        Some(Value::BulkString(digest)) => Some(digest.as_slice().try_into().map_err(|_| bad())?),
        _ => None,
    };
    Ok(Outcome { applied: Applied::new(version, expires_at, ended), reindex })
}
