#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz;
mod apply;
mod connect;
mod events;
mod eviction;
#[cfg(feature = "flask")]
#[cfg_attr(docsrs, doc(cfg(feature = "flask")))]
pub mod flask;
mod forward;
mod hash;
mod join;
mod scripts;
mod users;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{ConnectionInfo, RedisError, Value};
use session_core::{
    Applied, Id, KeyRing, Patch, Record, RecordId, SessionEvent, SessionHandle, SessionInfo, SessionStore,
    StoreError,
};
use time::OffsetDateTime;
use tokio::sync::broadcast;

pub use crate::eviction::{EvictingPolicy, EvictionPolicyCheck};
use crate::join::{join_all, BATCH};

/// The `redis` crate this store is built on, so connections can be made with the matching
/// version.
pub use redis;

const DEFAULT_PREFIX: &str = "session:";
/// A session store on one Redis server or a Redis Cluster.
///
/// `C` is the connection: [`ConnectionManager`] (one server, reconnects by itself, the
/// default) or [`ClusterConnection`](redis::cluster_async::ClusterConnection). Any other [`redis::aio::ConnectionLike`] that is
/// cheap to clone and shares its underlying connection across clones works too.
///
/// Each record is one hash, `<prefix><record id in hex>`, with a field per session entry
/// and a native expiry, so every session operation is a single-key command or script: one
/// round trip, valid on a Cluster. A write-back runs in a Lua script on the server, so
/// writers of different keys never conflict. Sessions with a user are also listed in a per-user set (one more round trip
/// when such a session is written), and session events travel between app instances over
/// pub/sub; see the crate documentation.
///
/// Clones share the connection. Each clone counts as an app instance of its own for
/// [`SessionStore::listen`]: it skips only the events it published itself.
pub struct RedisStore<C = ConnectionManager> {
    connection: C,
    prefix: Arc<str>,
    /// Where `listen` subscribes: the server, or the Cluster's seed nodes (RESP3).
    pubsub: Arc<[ConnectionInfo]>,
    instance: events::Instance,
    /// Signs published events and verifies received ones; `None`: no events at all.
    event_keys: Option<KeyRing>,
    eviction: Arc<eviction::Guard>,
}

impl<C: Clone> Clone for RedisStore<C> {
    fn clone(&self) -> Self {
        Self {
            connection: self.connection.clone(),
            prefix: Arc::clone(&self.prefix),
            pubsub: Arc::clone(&self.pubsub),
            instance: new_instance(),
            event_keys: self.event_keys.clone(),
            eviction: Arc::clone(&self.eviction),
        }
    }
}

fn new_instance() -> events::Instance {
    let mut instance = [0; 16];
    instance.copy_from_slice(&Id::random().record_id().as_bytes()[..16]);
    instance
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A store on a connection you configured yourself, with the key prefix `session:`.
    ///
    /// Pass a [`ConnectionManager`] or a [`ClusterConnection`](redis::cluster_async::ClusterConnection) so the store survives
    /// restarts of Redis; a plain multiplexed connection stays broken once its socket dies.
    /// To receive other instances' session events, also call [`RedisStore::with_pubsub`].
    pub fn new(connection: C) -> Self {
        Self {
            connection,
            prefix: DEFAULT_PREFIX.into(),
            pubsub: Arc::new([]),
            instance: new_instance(),
            event_keys: None,
            eviction: Arc::default(),
        }
    }

    /// The keys that sign the session events this store publishes and verify those it
    /// receives; give every app instance the same ring (its primary signs; fallbacks are
    /// still accepted while you rotate). Use a key of its own, not the cookie key.
    ///
    /// Without keys, [`SessionStore::publish`] and [`SessionStore::listen`] refuse with
    /// [`StoreError::Unsupported`]: whoever can `PUBLISH` on the Redis server could
    /// otherwise close any session's sockets or redirect a cycled session's tracking.
    /// Received messages that do not verify, or were sent more than two minutes away from
    /// this instance's clock, are dropped and counted in a warning.
    #[must_use]
    pub fn with_event_keys(mut self, keys: KeyRing) -> Self {
        self.event_keys = Some(keys);
        self
    }

    /// What to do when Redis's `maxmemory-policy` can evict session keys (default:
    /// [`EvictionPolicyCheck::Refuse`]); see [`EvictionPolicyCheck`].
    #[must_use]
    pub fn with_eviction_policy_check(mut self, check: EvictionPolicyCheck) -> Self {
        self.eviction = Arc::new(eviction::Guard::new(check));
        self
    }

    /// Runs the eviction policy check now, e.g. at startup to fail fast; operations run it
    /// themselves before the first one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] with an [`EvictingPolicy`] source when the policy can evict
    /// and the check is [`EvictionPolicyCheck::Refuse`], or when Redis cannot be reached.
    pub async fn check_eviction_policy(&self) -> Result<(), StoreError> {
        self.eviction.ensure(self.connection()).await
    }

    /// Sets the key prefix (default `session:`), e.g. to run several apps on one Redis.
    /// It also names the event channel, `<prefix>events`: instances share events exactly
    /// when they share the prefix.
    ///
    /// On a Cluster the prefix must not contain a `{...}` hash tag: it would put every
    /// session into one slot, on one node.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// The servers [`SessionStore::listen`] subscribes to for other instances' session
    /// events: the Redis server, or some nodes of the Cluster (any one will do; the next is
    /// tried when one fails). The store opens its own connection from each client's
    /// settings, switched to RESP3 (Redis 6 or newer). [`RedisStore::connect`] and
    /// [`RedisStore::connect_cluster`] set this already.
    #[must_use]
    pub fn with_pubsub(mut self, nodes: impl IntoIterator<Item = redis::Client>) -> Self {
        self.pubsub = nodes.into_iter().map(|c| connect::resp3(c.get_connection_info().clone())).collect();
        self
    }

    fn key(&self, id: &RecordId) -> String {
        format!("{}{id}", self.prefix)
    }

    /// The set of a user's record ids, named by the SHA-256 of the user name.
    fn user_key(&self, digest: &[u8; 32]) -> String {
        format!("{}user:{}", self.prefix, hash::hex(digest))
    }

    fn channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// A handle for one operation. Clones of both connection types share one multiplexed
    /// socket and see its replacement after a reconnect, so nothing broken is kept here.
    fn connection(&self) -> C {
        self.connection.clone()
    }

    /// Deletes an old-format or undecodable value found under a session key: it is no
    /// session, and one bad key must not fail every request of a browser until it expires.
    async fn discard(&self, id: &RecordId) -> Result<(), StoreError> {
        tracing::warn!("removing an undecodable session record from Redis");
        redis::cmd("DEL")
            .arg(self.key(id))
            .exec_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)
    }
}

/// Whether Redis refused a command because the key holds another type: a session stored
/// by an older version of this crate, as a string.
fn is_wrong_type(err: &RedisError) -> bool {
    err.code() == Some("WRONGTYPE")
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection and the pub/sub nodes stay out: their settings may carry the password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("event_keys", &self.event_keys.is_some())
            .field("eviction_policy_check", &self.eviction.mode)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<C> SessionStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// The create script: a live record under the key is a collision; the hash and its
    /// expiry are written at once. Then, for a user's session, the index script.
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.check_eviction_policy().await?;
        let digest = record.user.as_deref().map(hash::user_digest);
        let mut call = scripts::CREATE.prepare_invoke();
        call.key(self.key(&record.id))
            .arg(hash::nanos(OffsetDateTime::now_utc()))
            .arg(hash::expire_at_arg(record.expires_at));
        hash::fields(record, digest.as_ref(), |field, value| {
            call.arg(field).arg(value);
        });
        let created: i64 = call.invoke_async(&mut self.connection()).await.map_err(StoreError::backend)?;
        if created == 0 {
            return Err(StoreError::Collision);
        }
        // The record first, then its index entry: a listing in between misses a session
        // being created, but never drops the entry of one that exists.
        if let Some(digest) = &digest {
            if let Err(err) = self.index(digest, &record.id, record.expires_at).await {
                // Unlisted, the session could not be revoked by user: take it back (the
                // caller sends no cookie for it anyway).
                let _ = redis::cmd("DEL").arg(self.key(&record.id)).exec_async(&mut self.connection()).await;
                return Err(err);
            }
        }
        Ok(())
    }

    /// One `HGETALL`. A value that is not a session hash (an old-format string, an
    /// undecodable hash) is no session: it is logged, without its key or content, and
    /// deleted.
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        self.check_eviction_policy().await?;
        let reply: Result<Value, RedisError> =
            redis::cmd("HGETALL").arg(self.key(id)).query_async(&mut self.connection()).await;
        let decoded = match reply {
            Ok(reply) => hash::decode(*id, reply),
            Err(err) if is_wrong_type(&err) => Err(hash::corrupt("not a hash")),
            Err(err) => return Err(StoreError::backend(err)),
        };
        match decoded {
            // Redis expires keys by its own clock, in whole milliseconds; the contract is
            // kept by ours.
            Ok(record) => Ok(record.filter(|r| !r.is_expired_at(OffsetDateTime::now_utc()))),
            Err(_) => self.discard(id).await.map(|()| None),
        }
    }

    /// One `EVALSHA` of the apply script, which changes the hash in place; then, when the
    /// patch set a user or moved a user's session's expiry later, the index script.
    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        self.check_eviction_policy().await?;
        let call = apply::invocation(self.key(&patch.id), patch, OffsetDateTime::now_utc());
        let reply: Value = call.invoke_async(&mut self.connection()).await.map_err(StoreError::backend)?;
        let apply::Outcome { applied, reindex } = apply::outcome(reply)?;
        // A failure here fails the write-back, though the patch is applied; the next
        // write that moves the expiry lists the session again.
        if let Some(digest) = &reindex {
            self.index(digest, &patch.id, applied.expires_at).await?;
        }
        Ok(applied)
    }

    /// MOVE, create, COMMIT: three single-key steps, safe against a racing delete; the
    /// protocol and why it is safe are in the `forward` module.
    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        self.check_eviction_policy().await?;
        self.cycle_record(patch, to).await
    }

    /// A script that reads and deletes the key at once, then the same on the record a
    /// forward leads to, at most `MAX_FORWARDS` hops. The user index keeps the ids until
    /// the next listing of that user drops them.
    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        self.check_eviction_policy().await?;
        self.take_chain(id).await.map(|_| ())
    }

    /// `SMEMBERS` of the user's set, then an `HMGET` of every member's metadata (concurrently, at most
    /// 128 in flight), following the forward of a finished cycle; members whose record is
    /// gone, expired, moved to another user or to another id are removed from the set (`SREM`).
    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.check_eviction_policy().await?;
        let user_key = self.user_key(&hash::user_digest(user));
        let members: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
            .arg(&user_key)
            .query_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)?;
        let mut found = Vec::with_capacity(members.len());
        let mut listed = std::collections::HashSet::with_capacity(members.len());
        let mut stale = Vec::new();
        for batch in members.chunks(BATCH) {
            let infos = join_all(batch.iter().map(|member| self.lookup(member, user))).await;
            for (member, info) in batch.iter().zip(infos) {
                match info? {
                    Some(info) => {
                        // Found under the id it moved to, which its cycle indexed: the old
                        // member goes, and the session is listed once.
                        if info.handle.to_string().as_bytes() != member.as_slice() {
                            stale.push(member.clone());
                        }
                        if listed.insert(info.handle) {
                            found.push(info);
                        }
                    }
                    None => stale.push(member.clone()),
                }
            }
        }
        self.unindex(&user_key, &stale).await;
        Ok(found)
    }

    /// A `delete`: whether a live session was among what it deleted.
    async fn revoke(&self, handle: &SessionHandle) -> Result<bool, StoreError> {
        self.check_eviction_policy().await?;
        self.take_chain(&handle.record_id()).await
    }

    /// Lists the user's sessions, deletes all but `except` concurrently, and drops them
    /// from the user's set.
    async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<Vec<SessionHandle>, StoreError> {
        let targets: Vec<SessionHandle> = self
            .sessions_of(user)
            .await?
            .into_iter()
            .map(|info| info.handle)
            .filter(|handle| Some(handle) != except)
            .collect();
        let mut ended = Vec::with_capacity(targets.len());
        for batch in targets.chunks(BATCH) {
            let deleted = join_all(batch.iter().map(|handle| self.revoke(handle))).await;
            for (handle, deleted) in batch.iter().zip(deleted) {
                if deleted? {
                    ended.push(*handle);
                }
            }
        }
        let members: Vec<Vec<u8>> = ended.iter().map(|h| h.to_string().into_bytes()).collect();
        self.unindex(&self.user_key(&hash::user_digest(user)), &members).await;
        Ok(ended)
    }

    /// `PUBLISH` on `<prefix>events`: the event, this store's instance id, the time, and
    /// a signature under the event keys ([`RedisStore::with_event_keys`]; without them,
    /// [`StoreError::Unsupported`]).
    async fn publish(&self, event: &SessionEvent) -> Result<(), StoreError> {
        let keys = self.event_keys.as_ref().ok_or(StoreError::Unsupported(events::NO_KEYS))?;
        let channel = self.channel();
        let Some(message) = events::encode(keys, &channel, &self.instance, event, events::now_ms()) else {
            return Ok(());
        };
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(message)
            .exec_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)
    }

    /// Subscribes to `<prefix>events` on a connection of its own and forwards other
    /// instances' events whose signature verifies until `sink` has no receivers,
    /// reconnecting after failures. Without event keys: an error log and
    /// [`StoreError::Unsupported`].
    async fn listen(&self, sink: broadcast::Sender<SessionEvent>) -> Result<(), StoreError> {
        events::listen(&self.pubsub, &self.channel(), self.instance, self.event_keys.as_ref(), &sink).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_shows_the_prefix_but_no_credentials() {
        // Lazy: no server needed, nothing is sent.
        let client = redis::Client::open("redis://:hunter2@127.0.0.1:1/").unwrap();
        let manager =
            ConnectionManager::new_lazy_with_config(client, redis::aio::ConnectionManagerConfig::new())
                .unwrap();
        let debug = format!("{:?}", RedisStore::new(manager).with_prefix("app:"));
        assert_eq!(
            debug,
            r#"RedisStore { prefix: "app:", event_keys: false, eviction_policy_check: Refuse, .. }"#
        );
    }
}
