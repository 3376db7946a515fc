//! Refusing a Redis that may evict session keys.
//!
//! Under memory pressure an evicting `maxmemory-policy` drops keys silently: sessions end
//! early, and a user's index set can vanish while the sessions stay, so "log out everywhere"
//! would miss them. Session keys all carry an expiry, so `volatile-*` policies evict them
//! as surely as `allkeys-*`. Only `noeviction` (writes fail with an error instead) is safe.

use std::error::Error;
use std::fmt;

use redis::aio::ConnectionLike;
use redis::{RedisError, Value};
use session_core::StoreError;
use tokio::sync::OnceCell;

/// What [`RedisStore`](crate::RedisStore) does when Redis's `maxmemory-policy` can evict
/// session keys. It reads the policy (`CONFIG GET maxmemory-policy`) before its first
/// operation, and again before each later one until the check has passed.
///
/// If the server refuses `CONFIG` (some managed services rename or forbid it), the store
/// logs a warning that it cannot tell and goes on: check the policy yourself there, and set
/// [`Off`](EvictionPolicyCheck::Off) to silence the warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EvictionPolicyCheck {
    /// Every operation fails with [`StoreError::Backend`] whose source is an
    /// [`EvictingPolicy`] until the policy is `noeviction` (no restart needed).
    #[default]
    Refuse,
    /// Log a warning once and go on.
    Warn,
    /// Do not look.
    Off,
}

/// Redis's `maxmemory-policy` can evict session keys: the source of the
/// [`StoreError::Backend`] a store with [`EvictionPolicyCheck::Refuse`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictingPolicy {
    policy: String,
}

impl EvictingPolicy {
    /// The policy Redis reported, e.g. `allkeys-lru`.
    #[must_use]
    pub fn policy(&self) -> &str {
        &self.policy
    }
}

impl fmt::Display for EvictingPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Redis maxmemory-policy is `{}`, which can evict sessions and user indexes under memory \
             pressure; set it to `noeviction`, or choose another `EvictionPolicyCheck`",
            self.policy
        )
    }
}

impl Error for EvictingPolicy {}

/// The check's setting and, once it passed, the fact.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    pub(crate) mode: EvictionPolicyCheck,
    passed: OnceCell<()>,
}

impl Guard {
    pub(crate) fn new(mode: EvictionPolicyCheck) -> Self {
        Self { mode, passed: OnceCell::new() }
    }

    /// `Ok` once the policy was found safe, or reported as the mode says. A refusal or a
    /// failed read is not remembered: the next operation asks again.
    pub(crate) async fn ensure<C: ConnectionLike>(&self, mut con: C) -> Result<(), StoreError> {
        if self.mode == EvictionPolicyCheck::Off {
            return Ok(());
        }
        self.passed.get_or_try_init(|| check(self.mode, &mut con)).await.map(|&()| ())
    }
}

async fn check<C: ConnectionLike>(mode: EvictionPolicyCheck, con: &mut C) -> Result<(), StoreError> {
    let reply: Result<Value, RedisError> =
        redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async(con).await;
    let policy = match reply {
        Ok(reply) => policy_in(reply),
        Err(err) if is_transient(&err) => return Err(StoreError::backend(err)),
        Err(err) => {
            tracing::warn!(
                error = %err,
                "cannot read Redis's maxmemory-policy (CONFIG refused); make sure it is \
                 `noeviction`, or sessions may vanish under memory pressure"
            );
            return Ok(());
        }
    };
    let Some(policy) = policy else {
        tracing::warn!("Redis did not report its maxmemory-policy; make sure it is `noeviction`");
        return Ok(());
    };
    if !evicts(&policy) {
        return Ok(());
    }
    let refused = EvictingPolicy { policy };
    match mode {
        EvictionPolicyCheck::Refuse => Err(StoreError::backend(refused)),
        _ => {
            tracing::warn!("{refused}");
            Ok(())
        }
    }
}

/// Anything but `noeviction` may evict keys with an expiry, which every session key has.
fn evicts(policy: &str) -> bool {
    !policy.eq_ignore_ascii_case("noeviction")
}

/// A failure to reach the server, as opposed to the server refusing the command.
fn is_transient(err: &RedisError) -> bool {
    err.is_io_error() || err.is_timeout() || err.is_connection_dropped() || err.is_connection_refusal()
}

/// The value in a `CONFIG GET` reply: `[name, value]` (RESP2) or `{name: value}` (RESP3).
fn policy_in(reply: Value) -> Option<String> {
    let text = |v: Value| match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    };
    match reply {
        Value::Array(items) => items.into_iter().nth(1).and_then(text),
        Value::Map(pairs) => pairs.into_iter().next().and_then(|(_, v)| text(v)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noeviction_is_safe() {
        for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-ttl", "new"]
        {
            assert!(evicts(policy), "{policy}");
        }
        assert!(!evicts("noeviction"));
    }

    #[test]
    fn both_reply_shapes_give_the_policy() {
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![b("maxmemory-policy"), b("allkeys-lru")]);
        let resp3 = Value::Map(vec![(b("maxmemory-policy"), b("noeviction"))]);
        assert_eq!(policy_in(resp2).as_deref(), Some("allkeys-lru"));
        assert_eq!(policy_in(resp3).as_deref(), Some("noeviction"));
        assert_eq!(policy_in(Value::Array(Vec::new())), None);
    }
}
