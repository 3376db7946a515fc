//! Creating sessions in a full bounded store, where every create evicts one: what a flood
//! of cookieless requests costs per request.
//!
//! The benches crate holds the cross-store benches; this one lives here so that it builds
//! with this crate alone.

#![allow(missing_docs)]

use std::time::Duration as StdDuration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use session_core::{Id, Record, SessionStore};
use session_store_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

fn anonymous() -> Record {
    let now = OffsetDateTime::now_utc();
    let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
    r.entries.insert("csrf", vec![0x5a; 32].into());
    r
}

fn create_at_capacity(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut g = c.benchmark_group("memory/create-at-capacity");
    for capacity in [10_000, 100_000] {
        let store = MemoryStore::default().with_capacity(capacity);
        // Twice the capacity fills every shard, so each create below evicts.
        rt.block_on(async {
            for _ in 0..2 * capacity {
                store.create(&anonymous()).await.unwrap();
            }
        });
        // A logged-in user among them, as in a real flood.
        let mut user = anonymous();
        user.user = Some("alice".into());
        rt.block_on(store.create(&user)).unwrap();
        g.bench_function(capacity.to_string(), |b| {
            // The id (a random draw and a digest) is made outside the timed part.
            b.iter_batched_ref(anonymous, |r| rt.block_on(store.create(r)).unwrap(), BatchSize::SmallInput)
        });
    }
    // The same work without the search for a victim: a create and a delete in a store
    // with room left.
    let store = MemoryStore::default().with_capacity(10_000);
    rt.block_on(async {
        for _ in 0..5_000 {
            store.create(&anonymous()).await.unwrap();
        }
    });
    g.bench_function("room-left: create+delete", |b| {
        b.iter_batched_ref(
            anonymous,
            |r| {
                rt.block_on(async {
                    store.create(r).await.unwrap();
                    store.delete(&r.id).await.unwrap();
                })
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(StdDuration::from_millis(300))
        .measurement_time(StdDuration::from_secs(2));
    targets = create_at_capacity
}
criterion_main!(benches);
