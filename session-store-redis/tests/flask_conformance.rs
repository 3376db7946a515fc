//! The shared store contract, run against `FlaskSessionStore` on a real Redis server and a
//! real 3-master Cluster. Every case of `store_conformance_tests!` and the history check
//! hold; the per-user index cases do not apply (`sessions_of` answers `Unsupported`, see the
//! module docs of `session_store_redis::flask`).

mod common;

use session_store_redis::flask::FlaskSessionStore;
use session_store_redis::redis::cluster_async::ClusterConnection;

async fn single_store() -> FlaskSessionStore {
    let url = common::env("REDIS_URL");
    let store =
        FlaskSessionStore::connect(url.as_str()).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    store.with_prefix(common::unique_prefix())
}

async fn cluster_store() -> FlaskSessionStore<ClusterConnection> {
    let urls = common::cluster_urls();
    let store = FlaskSessionStore::connect_cluster(urls.iter().map(String::as_str))
        .await
        .unwrap_or_else(|e| panic!("connect cluster {urls:?}: {e}"));
    store.with_prefix(common::unique_prefix())
}

mod single_node {
    session_core::store_conformance_tests!(super::single_store());
    session_core::history_tests!(super::single_store());
}

mod cluster {
    session_core::store_conformance_tests!(super::cluster_store());
    session_core::history_tests!(super::cluster_store(), ops_per_client = 300);
}
