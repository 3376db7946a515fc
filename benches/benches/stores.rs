//! Store operations: load, save, create and delete per store, and the memory store under
//! two threads of contention.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use session_core::{Change, Id, Patch, Record, SessionStore};
use session_store_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

fn record(entries: usize) -> Record {
    let now = OffsetDateTime::now_utc();
    let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
    for i in 0..entries {
        r.entries.insert(format!("key{i}"), vec![0x5a; 40].into());
    }
    r
}

/// A patch of `r` that sets one key, as a request's write-back sends it.
fn one_key_patch(r: &Record, n: u64) -> Patch {
    let now = OffsetDateTime::now_utc();
    let mut p = Patch::new(r.id, now + Duration::hours(1), now);
    p.changes.push(Change::set("counter", Some(n.to_be_bytes().to_vec().into())));
    p
}

/// load / apply (one key of a 20-key record) / create+delete against one store.
fn store_ops<S: SessionStore>(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: S) {
    let store = Arc::new(store);
    let existing = record(20);
    rt.block_on(store.create(&existing)).unwrap();
    let mut g = c.benchmark_group(format!("store/{name}"));
    g.bench_function("load", |b| {
        b.to_async(rt).iter(|| async { store.load(&existing.id).await.unwrap().unwrap() })
    });
    g.bench_function("apply", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for n in 0..iters {
                    store.apply(&one_key_patch(&existing, n)).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("create+delete", |b| {
        b.to_async(rt).iter(|| async {
            let r = record(20);
            store.create(&r).await.unwrap();
            store.delete(&r.id).await.unwrap();
        })
    });
    g.finish();
}

/// Two threads, each loading and saving its own sessions in one shared memory store.
fn memory_contention(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = MemoryStore::default();
    let mut g = c.benchmark_group("store/memory-2-threads");
    g.bench_function("load+apply per op", |b| {
        b.iter_custom(|iters| {
            let per_task = iters.div_ceil(2);
            rt.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..2)
                    .map(|_| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let r = record(20);
                            store.create(&r).await.unwrap();
                            for n in 0..per_task {
                                let loaded = store.load(&r.id).await.unwrap().unwrap();
                                store.apply(&one_key_patch(&loaded, n)).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                // Both threads ran `iters` operations in total; report time per operation
                // of the pair, so one thread alone would show twice the figure.
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    store_ops(c, &rt, "memory", MemoryStore::default());
    memory_contention(c);
    let dir = tempfile::tempdir().unwrap();
    store_ops(c, &rt, "file", session_store_file::FileStore::new(dir.path()).unwrap());
    let sqlite = rt.block_on(async {
        let store = session_store_sql::SqliteStore::open(dir.path().join("sessions.db")).await.unwrap();
        store.migrate().await.unwrap();
        store
    });
    store_ops(c, &rt, "sqlite", sqlite);
    // Real servers, as `scripts/services start` provides them; without one the store is
    // skipped with a note (a bench run is not a test run).
    match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let store = rt.block_on(async {
                let table = format!("bench_{}", std::process::id());
                let store = session_store_sql::PostgresStore::connect(&url)
                    .await
                    .unwrap()
                    .with_table_name(&table)
                    .unwrap();
                store.migrate().await.unwrap();
                store
            });
            store_ops(c, &rt, "postgres", store);
        }
        Err(_) => eprintln!("DATABASE_URL not set: skipping PostgreSQL (eval \"$(scripts/services start)\")"),
    }
    match std::env::var("REDIS_URL") {
        Ok(url) => {
            let store = rt.block_on(session_store_redis::RedisStore::connect(url.as_str())).unwrap();
            store_ops(c, &rt, "redis", store.with_prefix(format!("bench:{}:", std::process::id())));
        }
        Err(_) => {
            eprintln!("REDIS_URL not set: skipping the Redis store (eval \"$(scripts/services start)\")")
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(StdDuration::from_millis(500))
        .measurement_time(StdDuration::from_secs(2));
    targets = stores
}
criterion_main!(benches);
