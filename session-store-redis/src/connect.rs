//! The two ready-made ways to connect: one server through a `ConnectionManager`, or a
//! Cluster.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionInfo, IntoConnectionInfo, ProtocolVersion, RedisError};

use crate::RedisStore;

/// Connection settings of [`RedisStore::connect`] and [`RedisStore::connect_cluster`]:
/// during an outage a request should fail within a few seconds, not queue behind long
/// reconnect back-offs.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_RETRIES: usize = 2;

/// The same server with RESP3, which delivers pub/sub messages as pushes.
pub(crate) fn resp3(info: ConnectionInfo) -> ConnectionInfo {
    let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    info.set_redis_settings(settings)
}

/// A [`ConnectionManager`] with the settings of [`RedisStore::connect`], and its client.
pub(crate) async fn manager_and_client(
    url: impl IntoConnectionInfo,
) -> Result<(ConnectionManager, redis::Client), RedisError> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(RECONNECT_RETRIES);
    Ok((ConnectionManager::new_with_config(client.clone(), config).await?, client))
}

/// A [`ConnectionManager`] with the settings of [`RedisStore::connect`].
#[cfg(feature = "flask")]
pub(crate) async fn manager(url: impl IntoConnectionInfo) -> Result<ConnectionManager, RedisError> {
    Ok(manager_and_client(url).await?.0)
}

/// A Cluster connection with the settings of [`RedisStore::connect_cluster`], and the nodes.
pub(crate) async fn cluster_and_nodes<I: IntoConnectionInfo>(
    nodes: impl IntoIterator<Item = I>,
) -> Result<(ClusterConnection, Vec<ConnectionInfo>), RedisError> {
    let nodes =
        nodes.into_iter().map(IntoConnectionInfo::into_connection_info).collect::<Result<Vec<_>, _>>()?;
    let client = ClusterClient::builder(nodes.clone())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .build()?;
    Ok((client.get_async_connection().await?, nodes))
}

/// A Cluster connection with the settings of [`RedisStore::connect_cluster`].
#[cfg(feature = "flask")]
pub(crate) async fn cluster<I: IntoConnectionInfo>(
    nodes: impl IntoIterator<Item = I>,
) -> Result<ClusterConnection, RedisError> {
    Ok(cluster_and_nodes(nodes).await?.0)
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
        let (manager, client) = manager_and_client(url).await?;
        Ok(Self::new(manager).with_pubsub([client]))
    }
}

impl RedisStore<ClusterConnection> {
    /// Connects to a Redis Cluster through any of its nodes, e.g.
    /// `["redis://10.0.0.1:6379/", "redis://10.0.0.2:6379/"]`.
    ///
    /// A request gives up after 2 s, redirects and retries included, and a connection
    /// attempt after 1 s. Build your own connection and use [`RedisStore::new`] for other
    /// settings. Session events are received through these nodes, one at a time.
    ///
    /// # Errors
    ///
    /// If a URL is invalid or no node can be reached now.
    pub async fn connect_cluster<I>(nodes: impl IntoIterator<Item = I>) -> Result<Self, RedisError>
    where
        I: IntoConnectionInfo,
    {
        let (connection, nodes) = cluster_and_nodes(nodes).await?;
        let mut store = Self::new(connection);
        store.pubsub = nodes.into_iter().map(resp3).collect();
        Ok(store)
    }
}
