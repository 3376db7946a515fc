//! `cycle` (the id change at login) and the `delete` that follows forwards, as
//! [`RedisStore`](crate::RedisStore) does them (its `forward` module has the full
//! argument), with single-slot scripts: the old and the new session live in different
//! Cluster slots.
//!
//! A forward is the key `{<prefix><old sid>}:rs-forward`, holding `p` (pending) or `c`
//! (committed) and the new sid. Flask never reads it, and the old `<prefix><old sid>` is
//! deleted in the same step that writes it, so no Flask-readable data stays at the old id.
//!
//! `cycle(patch, to)`: read the old session and apply the patch in Rust, then
//! 1. MOVE: if record and metadata still hold what was read, delete both and write a
//!    pending forward (else re-read and retry: Flask or another request wrote meanwhile);
//! 2. CREATE the patched session under `to` (`Collision`: roll back);
//! 3. COMMIT: make the forward final if it is still there; if a delete took it, delete
//!    `to` and answer `NotFound`.
//!
//! `delete(id)` is TAKE (read and delete the record, metadata and forward at once), then
//! TAKE on the forward's target, at most `MAX_FORWARDS` hops.

use redis::aio::ConnectionLike;
use redis::Value;
use session_core::store::MAX_FORWARDS;
use session_core::{Applied, Forward, Patch, RecordId, StoreError};
use time::{Duration, OffsetDateTime};

use super::keys::{self, Keys};
use super::meta::{self, Raw};
use super::store::{contended, FlaskSessionStore};
use super::{scripts, wire};
use crate::hash;

/// How long a pending forward lives at least, so one whose old record was about to expire
/// does not vanish between MOVE and COMMIT.
const PENDING_GRACE: Duration = Duration::minutes(1);

fn forward(state: u8, to: &RecordId) -> Vec<u8> {
    let mut out = vec![state];
    out.extend_from_slice(keys::sid(to).as_bytes());
    out
}

impl<C> FlaskSessionStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    pub(super) async fn cycle_session(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        let (old, new) = (self.keys(&patch.id), self.keys(&to));
        let (pending, committed) = (forward(b'p', &to), forward(b'c', &to));
        for attempt in 0..super::store::MAX_ATTEMPTS {
            let now = OffsetDateTime::now_utc();
            let Some((raw, mut record)) = self.read_live(&patch.id, &old, now).await? else {
                return Err(StoreError::NotFound);
            };
            let old_expires_at = record.expires_at;
            let applied = patch.apply_to(&mut record, now)?;
            if applied.ended {
                // The session ends instead of moving.
                if self.swap(&old, &raw, None).await? {
                    return Ok(applied);
                }
                Self::back_off(attempt).await;
                continue;
            }
            record.id = to;
            let pairs = raw.pairs().map_err(|e| StoreError::Corrupt(e.into()))?;
            let flask = wire::splice(&pairs, &patch.changes);
            let meta = meta::encode(&record, &flask);
            let fwd = Forward::new(to, old_expires_at, now);
            let pending_until = fwd.expires_at.max(now.checked_add(PENDING_GRACE).unwrap_or(now));

            let moved: i64 = scripts::MOVE
                .key(&old.record)
                .key(&old.meta)
                .key(&old.forward)
                .arg(raw.record.as_ref())
                .arg(raw.meta.as_ref())
                .arg(&pending)
                .arg(hash::expire_at_arg(pending_until))
                .invoke_async(&mut self.connection())
                .await
                .map_err(StoreError::backend)?;
            if moved == 0 {
                Self::back_off(attempt).await;
                continue;
            }

            let created = scripts::CREATE
                .key(&new.record)
                .key(&new.meta)
                .key(&new.forward)
                .arg(flask)
                .arg(meta)
                .arg(hash::expire_at_arg(record.expires_at))
                .invoke_async::<i64>(&mut self.connection())
                .await;
            match created {
                Ok(1) => {}
                Ok(_) => {
                    self.roll_back(&old, &pending, &raw).await;
                    return Err(StoreError::Collision);
                }
                Err(err) => {
                    // Whether `to` was written is unknown: remove it before restoring the
                    // old session, so the session is never live twice.
                    let _ = self.take(&new).await;
                    self.roll_back(&old, &pending, &raw).await;
                    return Err(StoreError::backend(err));
                }
            }

            let done = scripts::COMMIT
                .key(&old.forward)
                .arg(&pending)
                .arg(&committed)
                .arg(hash::expire_at_arg(fwd.expires_at))
                .invoke_async::<i64>(&mut self.connection())
                .await;
            return match done {
                Ok(1) => Ok(applied),
                Ok(_) => {
                    // A delete took the forward meanwhile; it may have missed `to`.
                    self.take(&new).await?;
                    Err(StoreError::NotFound)
                }
                Err(err) => {
                    let _ = self.take(&new).await;
                    self.roll_back(&old, &pending, &raw).await;
                    Err(StoreError::backend(err))
                }
            };
        }
        Err(contended())
    }

    /// Restores the old session if its pending forward is still there; best effort, for a
    /// cycle that failed after MOVE.
    async fn roll_back(&self, old: &Keys, pending: &[u8], raw: &Raw) {
        let restored = scripts::ROLLBACK
            .key(&old.record)
            .key(&old.meta)
            .key(&old.forward)
            .arg(pending)
            .arg(raw.record.as_ref())
            .arg(raw.meta.as_ref())
            .arg(raw.expire_ms)
            .invoke_async::<i64>(&mut self.connection())
            .await;
        if let Err(err) = restored {
            tracing::warn!(error = %err, "restoring a Flask session after a failed id change failed");
        }
    }

    /// Reads and deletes one id's keys: whether a live session was there, and where its
    /// forward leads.
    async fn take(&self, keys: &Keys) -> Result<(bool, Option<RecordId>), StoreError> {
        let reply: Value = scripts::TAKE
            .key(&keys.record)
            .key(&keys.meta)
            .key(&keys.forward)
            .invoke_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)?;
        let Value::Array(reply) = reply else {
            return Err(StoreError::backend("the take script answered something unexpected"));
        };
        Ok(match reply.as_slice() {
            [Value::Int(live), Value::BulkString(f)] => match f.split_first() {
                // A pending forward is a session being moved: live too.
                Some((&state, to)) => (*live == 1 || state == b'p', keys::record_id(to)),
                None => (*live == 1, None),
            },
            _ => return Err(StoreError::backend("the take script answered something unexpected")),
        })
    }

    /// Deletes `id` and the sessions its forwards lead to; whether a live session was among
    /// them.
    pub(super) async fn take_chain(&self, id: &RecordId) -> Result<bool, StoreError> {
        let (mut next, mut live) = (Some(*id), false);
        for _ in 0..=MAX_FORWARDS {
            let Some(id) = next.take() else { break };
            let (was_live, to) = self.take(&self.keys(&id)).await?;
            live |= was_live;
            next = to;
        }
        Ok(live)
    }
}
