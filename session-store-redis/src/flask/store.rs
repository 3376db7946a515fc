//! [`FlaskSessionStore`]: the `SessionStore` methods but `cycle`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{IntoConnectionInfo, RedisError, Value};
use session_core::{Applied, Change, Patch, Record, RecordId, SessionStore, StoreError};
use time::OffsetDateTime;

use super::keys::Keys;
use super::meta::{self, Raw};
use super::{scripts, wire};
use crate::hash;

const DEFAULT_PREFIX: &str = "session:";

/// How often a write is retried when Flask or another request changed the record between
/// its read and its compare-and-set; each retry re-reads and re-applies the patch.
pub(super) const MAX_ATTEMPTS: u32 = 200;

/// A [`SessionStore`] on Flask-Session 0.8's Redis records, so a Rust service and a Flask
/// app share sessions: see the [module documentation](super) for what holds.
///
/// `C` is the connection, as for [`RedisStore`](crate::RedisStore): a [`ConnectionManager`]
/// (the default) or a [`ClusterConnection`](redis::cluster_async::ClusterConnection).
/// Clones share the connection.
#[derive(Clone)]
pub struct FlaskSessionStore<C = ConnectionManager> {
    connection: C,
    prefix: Arc<str>,
}

impl<C> fmt::Debug for FlaskSessionStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection stays out: its settings may carry the password.
        f.debug_struct("FlaskSessionStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl FlaskSessionStore<ConnectionManager> {
    /// Connects to the Redis server Flask-Session uses, e.g. `redis://127.0.0.1:6379/0`
    /// (the same database number as Flask's `SESSION_REDIS` client), with the timeouts of
    /// [`RedisStore::connect`](crate::RedisStore::connect).
    ///
    /// # Errors
    ///
    /// If the URL is invalid or the server cannot be reached now.
    pub async fn connect(url: impl IntoConnectionInfo) -> Result<Self, RedisError> {
        Ok(Self::new(crate::connect::manager(url).await?))
    }
}

impl FlaskSessionStore<redis::cluster_async::ClusterConnection> {
    /// Connects to a Redis Cluster through any of its nodes.
    ///
    /// # Errors
    ///
    /// If a URL is invalid or no node can be reached now.
    pub async fn connect_cluster<I: IntoConnectionInfo>(
        nodes: impl IntoIterator<Item = I>,
    ) -> Result<Self, RedisError> {
        Ok(Self::new(crate::connect::cluster(nodes).await?))
    }
}

impl<C> FlaskSessionStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A store on a connection you configured yourself, with Flask-Session's default key
    /// prefix `session:`.
    pub fn new(connection: C) -> Self {
        Self { connection, prefix: DEFAULT_PREFIX.into() }
    }

    /// The key prefix: Flask's `SESSION_KEY_PREFIX` (default `session:`). Braces may only
    /// form a Redis Cluster hash tag (`{app}session:`), never an empty `{}`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    pub(super) fn keys(&self, id: &RecordId) -> Keys {
        Keys::new(&self.prefix, id)
    }

    pub(super) fn connection(&self) -> C {
        self.connection.clone()
    }

    /// One round trip: the record, its metadata and its expiry. `None`: no record.
    pub(super) async fn read(&self, keys: &Keys) -> Result<Option<Raw>, StoreError> {
        let reply: Value = scripts::READ
            .key(&keys.record)
            .key(&keys.meta)
            .invoke_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)?;
        let unexpected = || StoreError::backend("the read script answered something unexpected");
        let Value::Array(reply) = reply else { return Err(unexpected()) };
        match reply.as_slice() {
            [Value::Int(0)] => Ok(None),
            [Value::Int(-1)] => {
                tracing::warn!("a Flask session key holds something other than a string: no session");
                Ok(None)
            }
            [Value::Int(1), Value::BulkString(record), Value::BulkString(meta), Value::Int(t)] => {
                Ok(Some(Raw { record: record.clone().into(), meta: meta.clone().into(), expire_ms: *t }))
            }
            _ => Err(unexpected()),
        }
    }

    /// The live session under `keys`, as read and as decoded; `None` when there is none,
    /// it expired, or its record does not decode (left as it is: Flask wrote it, or it is
    /// a format this store does not read, such as JSON or pickle).
    pub(super) async fn read_live(
        &self,
        id: &RecordId,
        keys: &Keys,
        now: OffsetDateTime,
    ) -> Result<Option<(Raw, Record)>, StoreError> {
        let Some(raw) = self.read(keys).await? else { return Ok(None) };
        match raw.decode(*id, now) {
            Ok(record) if !record.is_expired_at(now) => Ok(Some((raw, record))),
            Ok(_) => Ok(None),
            Err(err) => {
                tracing::warn!(error = %err, "a Flask session record does not decode: no session (left in place)");
                Ok(None)
            }
        }
    }

    /// Compare-and-set of what `read` returned: writes `new` (or deletes the session when
    /// `None`); `false` when the keys changed meanwhile.
    pub(super) async fn swap(
        &self,
        keys: &Keys,
        old: &Raw,
        new: Option<(&[u8], &[u8], OffsetDateTime)>,
    ) -> Result<bool, StoreError> {
        let mut call = scripts::SWAP.prepare_invoke();
        call.key(&keys.record).key(&keys.meta).arg(old.record.as_ref()).arg(old.meta.as_ref());
        match new {
            Some((record, meta, expires_at)) => {
                call.arg(record).arg(meta).arg(hash::expire_at_arg(expires_at));
            }
            None => {
                call.arg("").arg("").arg(1);
            }
        }
        let done: i64 = call.invoke_async(&mut self.connection()).await.map_err(StoreError::backend)?;
        Ok(done == 1)
    }

    /// Waits a little before retrying a compare-and-set that lost a race, longer each
    /// time, with jitter, so contending writers spread out.
    pub(super) async fn back_off(attempt: u32) {
        if attempt < 3 {
            return;
        }
        let jitter = u64::from(OffsetDateTime::now_utc().nanosecond() % 1000);
        let micros = (u64::from(attempt.min(20)) * 500).saturating_add(jitter);
        tokio::time::sleep(Duration::from_micros(micros)).await;
    }
}

/// The error after [`MAX_ATTEMPTS`] lost races: the record changes faster than a write lands.
pub(super) fn contended() -> StoreError {
    StoreError::backend("a Flask session record kept changing under the write; gave up after 200 attempts")
}

/// `patch` without changes to `_permanent`, which this store keeps as Flask set it.
pub(super) fn without_permanent(patch: &Patch) -> std::borrow::Cow<'_, Patch> {
    if patch.changes.iter().all(|c| &*c.key != wire::PERMANENT) {
        return std::borrow::Cow::Borrowed(patch);
    }
    let mut owned = patch.clone();
    owned.changes.retain(|c: &Change| &*c.key != wire::PERMANENT);
    std::borrow::Cow::Owned(owned)
}

#[async_trait]
impl<C> SessionStore for FlaskSessionStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A script that writes the record (`_permanent: true` first, then the entries in key
    /// order) and its metadata, unless the id holds a record or a forward.
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let keys = self.keys(&record.id);
        let flask = wire::encode(&record.entries);
        let meta = meta::encode(record, &flask);
        let created: i64 = scripts::CREATE
            .key(&keys.record)
            .key(&keys.meta)
            .key(&keys.forward)
            .arg(flask)
            .arg(meta)
            .arg(hash::expire_at_arg(record.expires_at))
            .invoke_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)?;
        if created == 0 {
            return Err(StoreError::Collision);
        }
        Ok(())
    }

    /// One script call. A record that does not decode is no session, and stays as it is.
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let keys = self.keys(id);
        Ok(self.read_live(id, &keys, OffsetDateTime::now_utc()).await?.map(|(_, record)| record))
    }

    /// Read, apply the patch in Rust (splicing only the named keys into Flask's map), then
    /// compare-and-set; when Flask or another request wrote in between, again from the read.
    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        let patch = without_permanent(patch);
        let keys = self.keys(&patch.id);
        for attempt in 0..MAX_ATTEMPTS {
            let now = OffsetDateTime::now_utc();
            let Some((raw, mut record)) = self.read_live(&patch.id, &keys, now).await? else {
                return Err(StoreError::NotFound);
            };
            let applied = patch.apply_to(&mut record, now)?;
            let written = if applied.ended {
                self.swap(&keys, &raw, None).await?
            } else {
                let pairs = raw.pairs().map_err(|e| StoreError::Corrupt(e.into()))?;
                let flask = wire::splice(&pairs, &patch.changes);
                let meta = meta::encode(&record, &flask);
                self.swap(&keys, &raw, Some((&flask, &meta, record.expires_at))).await?
            };
            if written {
                return Ok(applied);
            }
            Self::back_off(attempt).await;
        }
        Err(contended())
    }

    /// Deletes the record, its metadata and any forward at once, then follows the forward.
    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        self.take_chain(id).await.map(|_| ())
    }

    /// A `delete`: whether a live session was among what it deleted.
    async fn revoke(&self, handle: &session_core::SessionHandle) -> Result<bool, StoreError> {
        self.take_chain(&handle.record_id()).await
    }

    /// Moves the session to `to` in three single-slot steps; see the `cycle` module.
    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        self.cycle_session(&without_permanent(patch), to).await
    }
}
