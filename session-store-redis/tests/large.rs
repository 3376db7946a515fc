//! Sessions with thousands of keys: the scripts write them in slices, since Lua's `unpack`
//! cannot pass that many arguments to one command.

mod common;

use session_core::{Change, Id, Patch, Record, SessionStore};
use time::{Duration, OffsetDateTime};

async fn run(store: impl SessionStore) {
    let now = OffsetDateTime::now_utc();
    let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
    for i in 0..5_000u32 {
        r.entries.insert(format!("key{i}"), i.to_be_bytes().to_vec().into());
    }
    store.create(&r).await.unwrap();
    assert_eq!(store.load(&r.id).await.unwrap().as_ref(), Some(&r));

    // Remove the first 3,000 keys, rewrite the rest, add 3,000.
    let mut p = Patch::new(r.id, now + Duration::hours(2), now);
    for i in 0..8_000u32 {
        let value = (i >= 3_000).then(|| (i + 1).to_be_bytes().to_vec().into());
        p.changes.push(Change::set(format!("key{i}"), value));
    }
    let applied = store.apply(&p).await.unwrap();
    assert_eq!((applied.version, applied.ended), (2, false));
    let got = store.load(&r.id).await.unwrap().unwrap();
    assert_eq!(got.entries.len(), 5_000);
    for i in 3_000..8_000u32 {
        assert_eq!(got.entries.get(&format!("key{i}")).map(|v| &v[..]), Some(&(i + 1).to_be_bytes()[..]));
    }
    store.delete(&r.id).await.unwrap();
}

#[tokio::test]
async fn single_node_sessions_with_thousands_of_keys() {
    run(common::single_store().await).await;
}

#[tokio::test]
async fn cluster_sessions_with_thousands_of_keys() {
    run(common::cluster_store().await).await;
}
