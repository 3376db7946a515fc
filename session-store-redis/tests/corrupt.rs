//! A value under a session key that does not decode is no session, and is removed.

mod common;

use session_core::{Id, SessionStore};

#[tokio::test]
async fn an_undecodable_value_is_no_session_and_is_removed() {
    let prefix = common::unique_prefix();
    let store = common::single_store().await.with_prefix(prefix.clone());
    let client = redis::Client::open(common::env("REDIS_URL")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let id = Id::random().record_id();
    let key = format!("{prefix}{id}");
    for garbage in [&b"not a record"[..], b"", &[0u8; 40][..]] {
        let () = redis::cmd("SET").arg(&key).arg(garbage).query_async(&mut conn).await.unwrap();
        assert!(store.load(&id).await.unwrap().is_none(), "{garbage:?} loaded as a session");
        let exists: bool = redis::cmd("EXISTS").arg(&key).query_async(&mut conn).await.unwrap();
        assert!(!exists, "the bad value was left behind");
    }
}
