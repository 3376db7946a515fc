//! Serialization: MessagePack versus JSON for a realistic session, and per-key lazy
//! decoding (read one small key) versus decoding the whole session.

use std::hint::black_box;

use benches::{realistic, RealisticSession};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use session_core::{Id, Record};
use time::{Duration, OffsetDateTime};

fn whole_session(c: &mut Criterion) {
    let session = realistic();
    let msgpack = rmp_serde::to_vec_named(&session).unwrap();
    let json = serde_json::to_vec(&session).unwrap();
    println!("realistic session: MessagePack {} B, JSON {} B", msgpack.len(), json.len());

    let mut g = c.benchmark_group("codec/encode");
    g.throughput(Throughput::Bytes(msgpack.len() as u64));
    g.bench_function(BenchmarkId::new("msgpack", msgpack.len()), |b| {
        b.iter(|| rmp_serde::to_vec_named(black_box(&session)).unwrap())
    });
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function(BenchmarkId::new("json", json.len()), |b| {
        b.iter(|| serde_json::to_vec(black_box(&session)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("codec/decode");
    g.throughput(Throughput::Bytes(msgpack.len() as u64));
    g.bench_function(BenchmarkId::new("msgpack", msgpack.len()), |b| {
        b.iter(|| rmp_serde::from_slice::<RealisticSession>(black_box(&msgpack)).unwrap())
    });
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function(BenchmarkId::new("json", json.len()), |b| {
        b.iter(|| serde_json::from_slice::<RealisticSession>(black_box(&json)).unwrap())
    });
    g.finish();
}

/// The session as session-core stores it: one entry per key, each encoded on its own.
fn per_key_record() -> Record {
    let s = realistic();
    let now = OffsetDateTime::now_utc();
    let mut r = Record::new(Id::random().record_id(), now, now + Duration::hours(1));
    let mut put = |k: &str, v: Vec<u8>| {
        r.entries.insert(k, v.into());
    };
    put("user_id", rmp_serde::to_vec_named(&s.user_id).unwrap());
    put("csrf", rmp_serde::to_vec_named(&s.csrf).unwrap());
    put("flash", rmp_serde::to_vec_named(&s.flash).unwrap());
    put("prefs", rmp_serde::to_vec_named(&s.prefs).unwrap());
    put("bookmarks", rmp_serde::to_vec_named(&s.bookmarks).unwrap());
    r
}

fn lazy_versus_whole(c: &mut Criterion) {
    let record = per_key_record();
    let stored = record.to_bytes();
    let whole_json = serde_json::to_vec(&realistic()).unwrap();
    println!("per-key record: {} B", stored.len());
    let mut g = c.benchmark_group("codec/read-one-small-key");
    g.throughput(Throughput::Bytes(stored.len() as u64));
    g.bench_function("per-key record, decode user_id only", |b| {
        b.iter(|| {
            let r = Record::from_bytes(black_box(&stored)).unwrap();
            rmp_serde::from_slice::<u64>(&r.entries["user_id"]).unwrap()
        })
    });
    g.bench_function("whole session, JSON", |b| {
        b.iter(|| serde_json::from_slice::<RealisticSession>(black_box(&whole_json)).unwrap().user_id)
    });
    g.finish();

    let mut g = c.benchmark_group("codec/record");
    g.throughput(Throughput::Bytes(stored.len() as u64));
    g.bench_function("to_bytes", |b| b.iter(|| black_box(&record).to_bytes()));
    g.bench_function("from_bytes", |b| b.iter(|| Record::from_bytes(black_box(&stored)).unwrap()));
    g.finish();
}

/// The layer's hand-built `Set-Cookie` (exact length, one allocation, its own integer
/// formatting) against the same header from the `cookie` crate, which the layer used to
/// need: the figure that justifies keeping the hand-written one (docs/BENCHMARKS.md).
fn set_cookie(c: &mut Criterion) {
    use cookie::{Cookie, SameSite};
    let scan = session_core::__fuzz::CookieScan::new("__Host-id").unwrap();
    let value = "AAECAwQFBgcICQoLDA0ODw"; // the length of a plain id: 22 characters
    let max_age = Duration::days(14);
    let by_crate = || {
        let cookie = Cookie::build(("__Host-id", value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(true)
            .path("/")
            .max_age(cookie::time::Duration::seconds(max_age.whole_seconds()))
            .build();
        http::HeaderValue::try_from(cookie.to_string()).unwrap()
    };
    // Same attributes, whatever their order.
    let attrs = |h: http::HeaderValue| {
        let mut v: Vec<String> = h.to_str().unwrap().split("; ").map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(attrs(scan.set_cookie(value, Some(max_age))), attrs(by_crate()));
    let mut g = c.benchmark_group("codec/set-cookie");
    g.bench_function("hand-built", |b| {
        b.iter(|| scan.set_cookie(black_box(value), black_box(Some(max_age))))
    });
    g.bench_function("cookie-crate", |b| b.iter(by_crate));
    g.finish();
}

criterion_group! {
    name = codec;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = whole_session, lazy_versus_whole, set_cookie
}
criterion_main!(codec);
