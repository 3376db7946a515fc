//! Sessions spread over every master of a real Redis Cluster.

mod common;

use std::collections::BTreeMap;

use session_core::{Id, Record, SessionStore};
use session_store_redis::redis;
use time::{Duration, OffsetDateTime};

/// The masters as the cluster itself reports them (`CLUSTER NODES`), as `host:port`.
async fn masters(any_node: &str) -> Vec<String> {
    let mut con = redis::Client::open(any_node).unwrap().get_multiplexed_async_connection().await.unwrap();
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut con).await.unwrap();
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let is_master = fields.get(2)?.split(',').any(|flag| flag == "master");
            // `ip:port@cport[,hostname]`
            is_master.then(|| fields[1].split('@').next().unwrap().to_owned())
        })
        .collect()
}

/// How many keys with `prefix` one node holds (SCAN is fine in a test, never on the hot path).
async fn count_keys(node: &str, prefix: &str) -> usize {
    let mut con = redis::Client::open(format!("redis://{node}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let (mut cursor, mut count) = (0u64, 0);
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await
            .unwrap();
        count += keys.len();
        if next == 0 {
            return count;
        }
        cursor = next;
    }
}

#[tokio::test]
async fn a_thousand_sessions_spread_over_every_master() {
    let prefix = common::unique_prefix();
    let store = common::cluster_store().await.with_prefix(prefix.as_str());
    let now = OffsetDateTime::now_utc();
    let records: Vec<Record> = (0..1000u32)
        .map(|i| {
            let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
            r.entries.insert("n", i.to_be_bytes().to_vec().into());
            r
        })
        .collect();
    for r in &records {
        store.create(r).await.unwrap();
    }
    for r in &records {
        assert_eq!(store.load(&r.id).await.unwrap().as_ref(), Some(r));
    }

    let masters = masters(&common::cluster_urls()[0]).await;
    assert!(masters.len() >= 3, "expected at least 3 masters, the cluster reports {masters:?}");
    let mut per_master = BTreeMap::new();
    for node in &masters {
        per_master.insert(node.as_str(), count_keys(node, &prefix).await);
    }
    assert_eq!(
        per_master.values().sum::<usize>(),
        1000,
        "every session on exactly one master: {per_master:?}"
    );
    assert!(per_master.values().all(|&n| n > 0), "a master holds no sessions: {per_master:?}");

    for r in &records {
        store.delete(&r.id).await.unwrap();
    }
}
