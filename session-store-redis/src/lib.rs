#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod scripts;
mod value;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{IntoConnectionInfo, RedisError, Value};
use session_core::{Record, RecordId, SessionStore, StoreError};
use time::OffsetDateTime;

/// The `redis` crate this store is built on, so connections can be made with the matching
/// version.
pub use redis;

const DEFAULT_PREFIX: &str = "session:";
/// Connection settings of [`RedisStore::connect`] and [`RedisStore::connect_cluster`]:
/// during an outage a request should fail within a few seconds, not queue behind long
/// reconnect back-offs.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_RETRIES: usize = 2;

/// A session store on one Redis server or a Redis Cluster.
///
/// `C` is the connection: [`ConnectionManager`] (one server, reconnects by itself, the
/// default) or [`ClusterConnection`]. Any other [`redis::aio::ConnectionLike`] that is
/// cheap to clone and shares its underlying connection across clones works too.
///
/// Each record is one string key, `<prefix><record id in hex>`, with a native expiry, so
/// every operation is a single-key command or script: one round trip, valid on a Cluster.
/// Clones share the connection.
#[derive(Clone)]
pub struct RedisStore<C = ConnectionManager> {
    connection: C,
    prefix: Arc<str>,
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A store on a connection you configured yourself, with the key prefix `session:`.
    ///
    /// Pass a [`ConnectionManager`] or a [`ClusterConnection`] so the store survives
    /// restarts of Redis; a plain multiplexed connection stays broken once its socket dies.
    pub fn new(connection: C) -> Self {
        Self { connection, prefix: DEFAULT_PREFIX.into() }
    }

    /// Sets the key prefix (default `session:`), e.g. to run several apps on one Redis.
    ///
    /// On a Cluster the prefix must not contain a `{...}` hash tag: it would put every
    /// session into one slot, on one node.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    fn key(&self, id: &RecordId) -> String {
        format!("{}{id}", self.prefix)
    }

    /// A handle for one operation. Clones of both connection types share one multiplexed
    /// socket and see its replacement after a reconnect, so nothing broken is kept here.
    fn connection(&self) -> C {
        self.connection.clone()
    }
}

impl RedisStore<ConnectionManager> {
    /// Connects to one Redis server, e.g. `redis://127.0.0.1:6379/`, through a
    /// [`ConnectionManager`] that reconnects in the background.
    ///
    /// A reply may take 2 s and a connection attempt 1 s, and a reconnect makes 3
    /// attempts, so during an outage requests fail within seconds rather than queue behind
    /// long back-offs. Build your own manager and use [`RedisStore::new`] for other settings.
    ///
    /// # Errors
    ///
    /// If the URL is invalid or the server cannot be reached now.
    pub async fn connect(url: impl IntoConnectionInfo) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES);
        Ok(Self::new(ConnectionManager::new_with_config(client, config).await?))
    }
}

impl RedisStore<ClusterConnection> {
    /// Connects to a Redis Cluster through any of its nodes, e.g.
    /// `["redis://10.0.0.1:6379/", "redis://10.0.0.2:6379/"]`.
    ///
    /// A request gives up after 2 s, redirects and retries included, and a connection
    /// attempt after 1 s. Build your own connection and use [`RedisStore::new`] for other
    /// settings.
    ///
    /// # Errors
    ///
    /// If a URL is invalid or no node can be reached now.
    pub async fn connect_cluster<I>(nodes: impl IntoIterator<Item = I>) -> Result<Self, RedisError>
    where
        I: IntoConnectionInfo,
    {
        let client = ClusterClient::builder(nodes)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .build()?;
        Ok(Self::new(client.get_async_connection().await?))
    }
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection stays out: its settings may carry the password.
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

#[async_trait]
impl<C> SessionStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let reply: Value = redis::cmd("SET")
            .arg(self.key(&record.id))
            .arg(value::encode(record))
            .arg("NX")
            .arg("PXAT")
            .arg(value::expire_at_arg(value::unix_ms(record.expires_at)))
            .query_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)?;
        // NX answers nil when a live key exists; Redis treats an expired one as absent.
        match reply {
            Value::Nil => Err(StoreError::Collision),
            _ => Ok(()),
        }
    }

    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let stored: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(id))
            .query_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)?;
        let Some(stored) = stored else { return Ok(None) };
        let record = match value::decode(&stored) {
            Ok(record) if record.id == *id => record,
            // Corrupt, or another session's value under this key: no session, and the value
            // goes, so one bad key cannot fail every request of a browser until it expires.
            Ok(_) | Err(_) => {
                tracing::warn!("removing an undecodable session record from Redis");
                redis::cmd("DEL")
                    .arg(self.key(id))
                    .query_async::<()>(&mut self.connection())
                    .await
                    .map_err(StoreError::backend)?;
                return Ok(None);
            }
        };
        // Redis expires keys by its own clock, in whole milliseconds; the contract is kept
        // by ours.
        Ok((!record.is_expired_at(OffsetDateTime::now_utc())).then_some(record))
    }

    async fn save(&self, record: &Record, expected: u64) -> Result<(), StoreError> {
        let outcome: i64 = scripts::SAVE
            .key(self.key(&record.id))
            .arg(&expected.to_be_bytes()[..])
            .arg(value::encode(record))
            .arg(value::expire_at_arg(value::unix_ms(record.expires_at)))
            .invoke_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)?;
        match outcome {
            1 => Ok(()),
            0 => Err(StoreError::Conflict),
            -1 => Err(StoreError::NotFound),
            other => Err(StoreError::backend(format!("save script answered {other}"))),
        }
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<bool, StoreError> {
        let ms = value::unix_ms(expires_at);
        let existed: i64 = scripts::TOUCH
            .key(self.key(id))
            .arg(value::expire_at_arg(ms))
            .arg(&ms.to_be_bytes()[..])
            .invoke_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)?;
        Ok(existed == 1)
    }

    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        redis::cmd("DEL")
            .arg(self.key(id))
            .exec_async(&mut self.connection())
            .await
            .map_err(StoreError::backend)
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
            ConnectionManager::new_lazy_with_config(client, ConnectionManagerConfig::new()).unwrap();
        let debug = format!("{:?}", RedisStore::new(manager).with_prefix("app:"));
        assert_eq!(debug, r#"RedisStore { prefix: "app:", .. }"#);
    }
}
