//! The per-user index as Redis holds it: a set named by the SHA-256 of the user, alive at
//! least as long as the user's sessions, cleaned by listings.

mod common;

use session_core::{Id, Patch, Record, SessionHandle, SessionStore};
use session_store_redis::redis;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

fn owned(user: &str, ttl: Duration) -> Record {
    let now = OffsetDateTime::now_utc();
    let mut r = Record::new(Id::random().record_id(), now, now + ttl);
    r.entries.insert("k", vec![0xc0].into());
    r.user = Some(user.to_owned());
    r
}

fn user_key(prefix: &str, user: &str) -> String {
    let hex: String = Sha256::digest(user.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}user:{hex}")
}

fn ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap()
}

async fn run(store: impl SessionStore, prefix: &str, con: &mut impl redis::aio::ConnectionLike) {
    // Any bytes make a user name; the key holds only its digest.
    let user = format!("Ærøskøbing {{tag}} \u{0}\n{}", "x".repeat(2_000));
    let key = user_key(prefix, &user);
    let short = owned(&user, Duration::minutes(10));
    let long = owned(&user, Duration::hours(2));
    store.create(&short).await.unwrap();
    store.create(&long).await.unwrap();
    let mut members: Vec<String> = redis::cmd("SMEMBERS").arg(&key).query_async(con).await.unwrap();
    members.sort();
    let mut want = vec![short.id.to_string(), long.id.to_string()];
    want.sort();
    assert_eq!(members, want);
    let expires: i64 = redis::cmd("PEXPIRETIME").arg(&key).query_async(con).await.unwrap();
    assert_eq!(expires, ms(long.expires_at), "the set lives exactly as long as its longest session");

    // A refresh (a patch without changes) that outlasts every session moves the set's
    // expiry along, though the patch names no user.
    let later = OffsetDateTime::now_utc() + Duration::hours(5);
    let seen = OffsetDateTime::now_utc();
    let applied = store.apply(&Patch::new(short.id, later, seen)).await.unwrap();
    assert_eq!((applied.version, applied.expires_at, applied.ended), (2, later, false));
    let expires: i64 = redis::cmd("PEXPIRETIME").arg(&key).query_async(con).await.unwrap();
    assert_eq!(expires, ms(later));
    let record_key = format!("{prefix}{}", short.id);
    let expires: i64 = redis::cmd("PEXPIRETIME").arg(&record_key).query_async(con).await.unwrap();
    assert_eq!(expires, ms(later), "the session's own key moved too");
    // One that moves it earlier leaves the set alone: it lives as long as its longest.
    let sooner = OffsetDateTime::now_utc() + Duration::hours(1);
    store.apply(&Patch::new(short.id, sooner, seen)).await.unwrap();
    let expires: i64 = redis::cmd("PEXPIRETIME").arg(&key).query_async(con).await.unwrap();
    assert_eq!(expires, ms(later));
    store.apply(&Patch::new(short.id, later, seen)).await.unwrap();
    let listed = store.sessions_of(&user).await.unwrap();
    let refreshed = listed.iter().find(|i| i.handle == SessionHandle::from_record_id(short.id)).unwrap();
    assert_eq!((refreshed.expires_at, refreshed.last_seen), (later, seen));

    // An ended session leaves the set at the next listing.
    store.delete(&long.id).await.unwrap();
    assert_eq!(store.sessions_of(&user).await.unwrap().len(), 1);
    let members: Vec<String> = redis::cmd("SMEMBERS").arg(&key).query_async(con).await.unwrap();
    assert_eq!(members, vec![short.id.to_string()]);
    // And a set whose last session ended is gone.
    assert!(store.revoke(&SessionHandle::from_record_id(short.id)).await.unwrap());
    assert!(store.sessions_of(&user).await.unwrap().is_empty());
    let exists: bool = redis::cmd("EXISTS").arg(&key).query_async(con).await.unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn single_node_user_sets() {
    let prefix = common::unique_prefix();
    let store = common::single_store().await.with_prefix(prefix.as_str());
    let client = redis::Client::open(common::env("REDIS_URL")).unwrap();
    run(store, &prefix, &mut client.get_multiplexed_async_connection().await.unwrap()).await;
}

#[tokio::test]
async fn cluster_user_sets() {
    let prefix = common::unique_prefix();
    let store = common::cluster_store().await.with_prefix(prefix.as_str());
    let client = redis::cluster::ClusterClient::new(common::cluster_urls()).unwrap();
    run(store, &prefix, &mut client.get_async_connection().await.unwrap()).await;
}

/// A listing that read the user's set before a cycle indexed the new id, and looks the old
/// id up after the cycle committed (found by the history check,
/// `session_core::testing::history`): the set names only the old id, now a finished
/// forward. The listing follows it, so `revoke_user` ends the session.
async fn mid_cycle(store: impl SessionStore, prefix: &str, con: &mut impl redis::aio::ConnectionLike) {
    let user = format!("mid-cycle-{}", Id::random().record_id());
    let r = owned(&user, Duration::hours(1));
    store.create(&r).await.unwrap();
    let to = Id::random().record_id();
    store.cycle(&Patch::new(r.id, r.expires_at, OffsetDateTime::now_utc()), to).await.unwrap();
    let removed: i64 =
        redis::cmd("SREM").arg(user_key(prefix, &user)).arg(to.to_string()).query_async(con).await.unwrap();
    assert_eq!(removed, 1, "the cycle indexed its new id");
    let ended = store.revoke_user(&user, None).await.unwrap();
    assert_eq!(ended, vec![SessionHandle::from_record_id(to)], "the listing missed the moved session");
    assert!(store.load(&to).await.unwrap().is_none());
}

#[tokio::test]
async fn single_node_listing_follows_a_finished_cycle() {
    let prefix = common::unique_prefix();
    let store = common::single_store().await.with_prefix(prefix.as_str());
    let client = redis::Client::open(common::env("REDIS_URL")).unwrap();
    mid_cycle(store, &prefix, &mut client.get_multiplexed_async_connection().await.unwrap()).await;
}

#[tokio::test]
async fn cluster_listing_follows_a_finished_cycle() {
    let prefix = common::unique_prefix();
    let store = common::cluster_store().await.with_prefix(prefix.as_str());
    let client = redis::cluster::ClusterClient::new(common::cluster_urls()).unwrap();
    mid_cycle(store, &prefix, &mut client.get_async_connection().await.unwrap()).await;
}
