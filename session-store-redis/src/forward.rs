//! `cycle` and the `delete` that follows forwards, with single-key scripts only: on a
//! Cluster the old and the new record live in different slots, so no script can touch both.
//!
//! A forward is a hash at the old key with `f` (the new record id, hex) and `e` (its expiry,
//! Unix ns), and no `v`: the apply script and `load` see no session there, and `create`
//! sees a taken id while it lives. While a cycle is under way the forward is *pending*: it
//! also holds `p` and copies of the old record's `u`, `d`, `l`, `c`, `s`, so a user listing
//! names the old id until the new record is listed.
//!
//! `cycle(patch, to)`:
//!
//! 1. MOVE on the old key: a live record that meets the patch's expectations becomes a
//!    pending forward to `to`; the script answers the record's fields (else `NotFound` or
//!    `Conflict`, the key untouched). The patch is applied here, in Rust, by
//!    `Patch::apply_to`, to exactly what was taken.
//! 2. `create(to)`: the create script (refuses a live id: `Collision`), then the user index.
//! 3. COMMIT on the old key: if the forward to `to` is still there, drop its pending copies
//!    and give it the forward's expiry; if it is gone, delete `to` and answer `NotFound`.
//!
//! `delete(id)` is TAKE on `id` (atomically read and delete; answer the target if it was a
//! forward), then TAKE on the target, at most `MAX_FORWARDS` hops.
//!
//! Why a delete racing a cycle leaves nothing live. Let T1 be the delete's TAKE of the old
//! key and T2 its TAKE of `to` (run only if T1 took a forward).
//! - T1 before MOVE: MOVE finds no record, `NotFound`, nothing is created.
//! - T1 after MOVE, before COMMIT: T1 takes the forward, so COMMIT finds it gone and
//!   deletes `to` itself, whether T2 ran before `to` was created (nothing to take) or after
//!   (takes it first). The cycle answers `NotFound`.
//! - T1 after COMMIT: T1 takes the forward and T2 deletes `to` (or, if `to` cycled on
//!   meanwhile, the same argument applies one hop further).
//!
//! COMMIT is the only step that lets `to` outlive the cycle, and it does so only while the
//! forward is in place, i.e. before any T1; every later T1 is followed by a T2 on `to`.
//!
//! Why `revoke_user` racing a cycle misses nothing: a listing reads the user's set, then
//! each member's key. Under the old id it finds a record or a pending forward (until
//! COMMIT), listed as the session, or a finished forward (after COMMIT), which it follows
//! to `to`; a set read after step 2 also names `to`. Revoking a pending forward is a
//! delete, so the argument above applies. (Without following, a set read before step 2 and
//! a lookup after COMMIT missed the session: found by the history check.)
//!
//! Failures: on `Collision` the forward is turned back into the old record (ROLLBACK, only
//! if the forward is still there). On a connection error after MOVE, `to` is deleted and
//! then the old record restored, both best effort, so at worst the session is lost (logged
//! out), never duplicated. A pending forward left by a failed rollback is no session and
//! expires within `Forward::LIFETIME` (or a minute), or with the old record.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Script, Value};
use session_core::store::MAX_FORWARDS;
use session_core::{Applied, Forward, Patch, Record, RecordId, SessionStore, StoreError};
use time::{Duration, OffsetDateTime};

use crate::scripts::HSET_ALL;
use crate::{hash, RedisStore};

/// How long a pending forward lives at least, so one whose old record was about to expire
/// does not vanish between MOVE and COMMIT (which would fail the cycle as `NotFound`).
const PENDING_GRACE: Duration = Duration::minutes(1);

/// Step 1. `KEYS[1]` the old record. `ARGV`: 1 now (Unix ns); 2 now + `Forward::LIFETIME`
/// (Unix ns); 3 the new record id (hex); 4 the least expiry of the pending forward (Unix
/// ms); 5 on, three per expectation: field, `a` (absent) or `e` (equal to the third).
/// Returns `{-1}` not a live record, `{0}` an expectation failed, else
/// `{1, PEXPIRETIME, {field, value, ...}}`.
static MOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local key = KEYS[1]
        local now = tonumber(ARGV[1])
        local ok, meta = pcall(redis.call, 'HMGET', key, 'v', 'e', 'f')
        if not ok or meta[3] or not tonumber(meta[1]) then return {-1} end
        local old_e = tonumber(meta[2])
        if not old_e or old_e <= now then return {-1} end
        for i = 5, #ARGV, 3 do
            local current = redis.call('HGET', key, ARGV[i])
            if ARGV[i + 1] == 'a' then
                if current then return {0} end
            elseif current ~= ARGV[i + 2] then
                return {0}
            end
        end
        local fields = redis.call('HGETALL', key)
        local expire_ms = redis.call('PEXPIRETIME', key)
        local forward_e = meta[2]
        if tonumber(ARGV[2]) < old_e then forward_e = ARGV[2] end
        local forward = {'f', ARGV[3], 'e', forward_e, 'p', '1'}
        for i = 1, #fields, 2 do
            local f = fields[i]
            if f == 'u' or f == 'd' or f == 'l' or f == 'c' or f == 's' then
                forward[#forward + 1] = f
                forward[#forward + 1] = fields[i + 1]
            end
        end
        redis.call('DEL', key)
        redis.call('HSET', key, unpack(forward))
        local ms = math.max(math.floor(tonumber(forward_e) / 1000000), tonumber(ARGV[4]))
        redis.call('PEXPIREAT', key, string.format('%.0f', ms))
        return {1, expire_ms, fields}
        ",
    )
});

/// Step 3. `KEYS[1]` the old key; `ARGV[1]` the new record id (hex). Returns 1 committed,
/// 0 the forward is gone. A forward whose expiry has passed is deleted by `PEXPIREAT`.
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local ok, meta = pcall(redis.call, 'HMGET', KEYS[1], 'f', 'e')
        if not ok or meta[1] ~= ARGV[1] then return 0 end
        redis.call('HDEL', KEYS[1], 'p', 'u', 'd', 'l', 'c', 's')
        local ms = math.max(1, math.floor(tonumber(meta[2]) / 1000000))
        redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', ms))
        return 1
        ",
    )
});

/// Undoes step 1 if the forward to `ARGV[1]` is still there: `ARGV[2]` the old key's
/// `PEXPIRETIME`, `ARGV[3..]` its fields as MOVE answered them. Returns 1 restored, 0 not.
static ROLLBACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            HSET_ALL,
            r"
        local ok, f = pcall(redis.call, 'HGET', KEYS[1], 'f')
        if not ok or f ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        hset_all(KEYS[1], ARGV, 3)
        if tonumber(ARGV[2]) > 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
        return 1
        ",
        ]
        .concat(),
    )
});

/// Reads and deletes a key at once. `ARGV[1]` now (Unix ns). Returns `{1}` it held a live
/// record, `{2, target, pending (0/1)}` a live forward, `{0}` anything else.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local key = KEYS[1]
        local ok, meta = pcall(redis.call, 'HMGET', key, 'v', 'e', 'f', 'p')
        redis.call('DEL', key)
        if not ok then return {0} end
        local e = tonumber(meta[2])
        if not e or e <= tonumber(ARGV[1]) then return {0} end
        if meta[3] then return {2, meta[3], meta[4] and 1 or 0} end
        if tonumber(meta[1]) then return {1} end
        return {0}
        ",
    )
});

/// What MOVE took from the old key.
struct Taken {
    expire_ms: i64,
    fields: Vec<Value>,
}

fn bad(what: &'static str) -> StoreError {
    StoreError::backend(what)
}

fn taken(reply: Value) -> Result<Taken, StoreError> {
    let unexpected = || bad("the move script answered something unexpected");
    let Value::Array(mut reply) = reply else { return Err(unexpected()) };
    match reply.first() {
        Some(Value::Int(1)) => {}
        Some(Value::Int(0)) => return Err(StoreError::Conflict),
        Some(Value::Int(-1)) => return Err(StoreError::NotFound),
        _ => return Err(unexpected()),
    }
    let fields = match reply.pop() {
        Some(Value::Array(fields)) => fields,
        _ => return Err(unexpected()),
    };
    let Some(Value::Int(expire_ms)) = reply.get(1) else { return Err(unexpected()) };
    Ok(Taken { expire_ms: *expire_ms, fields })
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    pub(crate) async fn cycle_record(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        let now = OffsetDateTime::now_utc();
        let target = to.to_string();
        let mut call = MOVE.prepare_invoke();
        call.key(self.key(&patch.id))
            .arg(hash::nanos(now))
            .arg(hash::nanos(now.checked_add(Forward::LIFETIME).unwrap_or(now)))
            .arg(&target)
            .arg(hash::unix_ms(now.checked_add(PENDING_GRACE).unwrap_or(now)));
        let mut field = Vec::new();
        for change in &patch.changes {
            match &change.expect {
                None => continue,
                Some(None) => call.arg(hash::entry_field(&mut field, &change.key)).arg("a").arg(""),
                Some(Some(v)) => {
                    call.arg(hash::entry_field(&mut field, &change.key)).arg("e").arg(v.as_ref())
                }
            };
        }
        let reply: Value = call.invoke_async(&mut self.connection()).await.map_err(StoreError::backend)?;
        let taken = taken(reply)?;

        let decoded = hash::decode(patch.id, Value::Array(taken.fields.clone()));
        let Ok(Some(before)) = decoded else {
            // Not a record after all (load would have discarded it): no session to move.
            self.discard(&patch.id).await?;
            return Err(StoreError::NotFound);
        };
        let mut record = before.clone();
        let applied = match patch.apply_to(&mut record, now) {
            Ok(applied) => applied,
            Err(err) => {
                self.roll_back(&before, &taken, &target).await;
                return Err(err);
            }
        };
        if applied.ended {
            // The session ends instead of moving: nothing was created, and the pending
            // forward leads nowhere.
            self.del(&patch.id).await?;
            return Ok(applied);
        }

        record.id = to;
        match self.create(&record).await {
            Ok(()) => {}
            Err(StoreError::Collision) => {
                self.roll_back(&before, &taken, &target).await;
                return Err(StoreError::Collision);
            }
            Err(err) => {
                // Whether `to` was written is unknown: remove it before restoring the old
                // record, so the session is never live twice.
                let _ = self.del(&to).await;
                self.roll_back(&before, &taken, &target).await;
                return Err(err);
            }
        }

        let committed =
            COMMIT.key(self.key(&patch.id)).arg(&target).invoke_async::<i64>(&mut self.connection()).await;
        match committed {
            Ok(1) => Ok(applied),
            Ok(_) => {
                // A delete took the forward meanwhile; it may have missed `to`.
                self.del(&to).await?;
                Err(StoreError::NotFound)
            }
            Err(err) => {
                let _ = self.del(&to).await;
                self.roll_back(&before, &taken, &target).await;
                Err(StoreError::backend(err))
            }
        }
    }

    /// Restores the old record if the forward to `target` still holds its key, and lists
    /// it again; best effort, for a cycle that failed after MOVE.
    async fn roll_back(&self, before: &Record, taken: &Taken, target: &str) {
        let mut call = ROLLBACK.prepare_invoke();
        call.key(self.key(&before.id)).arg(target).arg(taken.expire_ms);
        for value in &taken.fields {
            if let Value::BulkString(bytes) = value {
                call.arg(bytes.as_slice());
            }
        }
        match call.invoke_async::<i64>(&mut self.connection()).await {
            Ok(1) => {
                if let Some(user) = &before.user {
                    let digest = hash::user_digest(user);
                    if let Err(err) = self.index(&digest, &before.id, before.expires_at).await {
                        tracing::warn!(error = %err, "listing a session again after a failed id change failed");
                    }
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "restoring a session after a failed id change failed"),
        }
    }

    /// Deletes `id` and the records its forwards lead to; returns whether a live session
    /// (a record, or a cycle under way) was among them.
    pub(crate) async fn take_chain(&self, id: &RecordId) -> Result<bool, StoreError> {
        let now = hash::nanos(OffsetDateTime::now_utc());
        let (mut next, mut live) = (Some(*id), false);
        for _ in 0..=MAX_FORWARDS {
            let Some(id) = next.take() else { break };
            let reply: Value = TAKE
                .key(self.key(&id))
                .arg(&now)
                .invoke_async(&mut self.connection())
                .await
                .map_err(StoreError::backend)?;
            let Value::Array(reply) = reply else {
                return Err(bad("the take script answered something unexpected"));
            };
            match reply.as_slice() {
                [Value::Int(1)] => live = true,
                [Value::Int(2), Value::BulkString(to), Value::Int(pending)] => {
                    live |= *pending == 1;
                    // A target that does not parse ends the chain: it names nothing.
                    next = std::str::from_utf8(to).ok().and_then(|s| s.parse().ok());
                }
                _ => {}
            }
        }
        Ok(live)
    }

    async fn del(&self, id: &RecordId) -> Result<(), StoreError> {
        redis::cmd("DEL")
            .arg(self.key(id))
            .exec_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)
    }
}
