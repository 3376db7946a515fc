//! A Redis that may evict session keys is refused (or reported), on servers of the tests'
//! own: the shared server's configuration is never changed.

mod common;

use common::own_redis::OwnRedis;
use session_core::{Id, SessionStore, StoreError};
use session_store_redis::{redis, EvictingPolicy, EvictionPolicyCheck, RedisStore};

async fn set_policy(server: &OwnRedis, policy: &str) {
    let mut con =
        redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg(policy).exec_async(&mut con).await.unwrap();
}

fn refused_policy(err: &StoreError) -> Option<String> {
    let StoreError::Backend(source) = err else { return None };
    source.downcast_ref::<EvictingPolicy>().map(|e| e.policy().to_owned())
}

#[tokio::test]
async fn an_evicting_policy_is_refused_until_it_is_fixed() {
    let server = OwnRedis::start().await;
    let id = Id::random().record_id();
    for policy in ["allkeys-lru", "volatile-ttl"] {
        set_policy(&server, policy).await;
        let store = RedisStore::connect(server.url()).await.unwrap();
        let err = store.load(&id).await.expect_err("an evicting policy was accepted");
        assert_eq!(refused_policy(&err).as_deref(), Some(policy), "{err:?}");
        assert!(std::error::Error::source(&err).unwrap().to_string().contains("noeviction"));
        assert_eq!(
            refused_policy(&store.check_eviction_policy().await.unwrap_err()).as_deref(),
            Some(policy)
        );
        // Fixed without a restart: the refusal is not remembered.
        set_policy(&server, "noeviction").await;
        assert_eq!(store.load(&id).await.unwrap(), None);
        // Once passed, the check is not repeated on every operation.
        set_policy(&server, policy).await;
        assert_eq!(store.load(&id).await.unwrap(), None);
    }
}

#[tokio::test]
async fn warn_and_off_go_on() {
    let server = OwnRedis::start().await;
    set_policy(&server, "allkeys-lfu").await;
    for check in [EvictionPolicyCheck::Warn, EvictionPolicyCheck::Off] {
        let store = RedisStore::connect(server.url()).await.unwrap().with_eviction_policy_check(check);
        assert_eq!(store.load(&Id::random().record_id()).await.unwrap(), None, "{check:?}");
    }
}

#[tokio::test]
async fn a_server_refusing_config_is_used_with_a_warning() {
    let server = OwnRedis::start_with(&["--rename-command", "CONFIG", ""]).await;
    let store = RedisStore::connect(server.url()).await.unwrap();
    assert_eq!(store.load(&Id::random().record_id()).await.unwrap(), None);
}

#[tokio::test]
async fn the_shared_servers_pass() {
    let single = common::single_store().await;
    single.check_eviction_policy().await.unwrap();
    common::cluster_store().await.check_eviction_policy().await.unwrap();
}
