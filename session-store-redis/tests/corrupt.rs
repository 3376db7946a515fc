//! A value under a session key that is not a session hash (a string of the format before
//! sessions became hashes, garbage, a hash missing fields) is no session, and is removed.

mod common;

use session_core::{Change, Id, Patch, Record, SessionStore, StoreError};
use session_store_redis::redis;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

type Connection = redis::aio::MultiplexedConnection;

/// A session as this crate stored it before sessions became hashes: a 56-byte header
/// (version, expiry and last-seen time in Unix ms, user digest), then the MessagePack record.
fn old_format(record: &Record) -> Vec<u8> {
    let ms = |at: OffsetDateTime| i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap();
    let mut value = Vec::new();
    value.extend_from_slice(&record.version.to_be_bytes());
    value.extend_from_slice(&ms(record.expires_at).to_be_bytes());
    value.extend_from_slice(&ms(record.last_seen).to_be_bytes());
    value.extend_from_slice(&Sha256::digest(record.user.as_deref().unwrap_or_default().as_bytes()));
    value.extend_from_slice(&record.to_bytes());
    value
}

async fn connection() -> Connection {
    let client = redis::Client::open(common::env("REDIS_URL")).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

async fn exists(conn: &mut Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query_async(conn).await.unwrap()
}

#[tokio::test]
async fn an_old_format_string_is_no_session_and_is_removed() {
    let prefix = common::unique_prefix();
    let store = common::single_store().await.with_prefix(prefix.clone());
    let mut conn = connection().await;
    let now = OffsetDateTime::now_utc();
    let user = format!("old-{}", &Id::random().record_id().to_string()[..12]);
    let mut old = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
    old.entries.insert("k", vec![0xc3].into());
    old.user = Some(user.clone());
    let key = format!("{prefix}{}", old.id);
    let set = |value: Vec<u8>| redis::cmd("SET").arg(&key).arg(value).arg("PX").arg(60_000).clone();
    set(old_format(&old)).exec_async(&mut conn).await.unwrap();
    // Listed in its user's set, as the old version did.
    let digest: String = Sha256::digest(user.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let user_key = format!("{prefix}user:{digest}");
    redis::cmd("SADD").arg(&user_key).arg(old.id.to_string()).exec_async(&mut conn).await.unwrap();

    // A listing skips it (and drops it from the set); a write-back finds no session and
    // creates none.
    assert!(store.sessions_of(&user).await.unwrap().is_empty());
    assert!(!exists(&mut conn, &user_key).await, "the stale member stayed listed");
    let mut patch = Patch::new(old.id, now + Duration::hours(1), now);
    patch.changes.push(Change::set("k", Some(vec![0xc2].into())));
    assert!(matches!(store.apply(&patch).await, Err(StoreError::NotFound)));

    assert!(store.load(&old.id).await.unwrap().is_none(), "an old-format value loaded as a session");
    assert!(!exists(&mut conn, &key).await, "the old-format value was left behind");

    // Nor does one block a new session with its id.
    set(old_format(&old)).exec_async(&mut conn).await.unwrap();
    store.create(&old).await.unwrap();
    assert_eq!(store.load(&old.id).await.unwrap(), Some(old));
}

#[tokio::test]
async fn an_undecodable_value_is_no_session_and_is_removed() {
    let prefix = common::unique_prefix();
    let store = common::single_store().await.with_prefix(prefix.clone());
    let mut conn = connection().await;
    let id = Id::random().record_id();
    let key = format!("{prefix}{id}");
    for garbage in [&b"not a record"[..], b"", &[0u8; 40][..]] {
        redis::cmd("SET").arg(&key).arg(garbage).exec_async(&mut conn).await.unwrap();
        assert!(store.load(&id).await.unwrap().is_none(), "{garbage:?} loaded as a session");
        assert!(!exists(&mut conn, &key).await, "the bad value was left behind");
    }

    // Hashes: a valid one but for one field.
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos().to_string();
    let later = (OffsetDateTime::now_utc() + Duration::hours(1)).unix_timestamp_nanos().to_string();
    let valid: [(&[u8], &[u8]); 5] = [
        (b"v", b"1"),
        (b"c", now.as_bytes()),
        (b"e", later.as_bytes()),
        (b"s", now.as_bytes()),
        (b"kk", b"1"),
    ];
    let broken: [(&str, &[u8], &[u8]); 5] = [
        ("no version", b"v", b""),
        ("no expiry", b"e", b""),
        ("an instant that is not a number", b"c", b"noon"),
        ("an expiry override that does not decode", b"x", b"\xc1"),
        ("a key that is not UTF-8", b"k\xff", b"1"),
    ];
    for (what, field, value) in broken {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&key);
        for (f, v) in valid.iter().filter(|(f, _)| *f != field) {
            cmd.arg(*f).arg(*v);
        }
        if !value.is_empty() {
            cmd.arg(field).arg(value);
        }
        cmd.exec_async(&mut conn).await.unwrap();
        assert!(store.load(&id).await.unwrap().is_none(), "a hash with {what} loaded as a session");
        assert!(!exists(&mut conn, &key).await, "a hash with {what} was left behind");
    }
    // The valid hash itself loads: the cases above fail for their one field.
    let mut cmd = redis::cmd("HSET");
    cmd.arg(&key);
    for (f, v) in valid {
        cmd.arg(f).arg(v);
    }
    cmd.exec_async(&mut conn).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_some());
    redis::cmd("DEL").arg(&key).exec_async(&mut conn).await.unwrap();
}
