//! Cookie crypto: HMAC sign/verify and AES-GCM seal/open at cookie sizes, and key-ring
//! verification when the cookie was made with the second fallback key.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use session_core::{Key, KeyRing};

fn crypto(c: &mut Criterion) {
    let ring = KeyRing::new(Key::generate());
    let mut g = c.benchmark_group("crypto");
    for size in [100usize, 1024, 4096] {
        let payload = vec![0x5au8; size];
        let tag = ring.sign("id", &payload);
        let sealed = ring.seal("id", &payload);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("sign", size), &payload, |b, p| b.iter(|| ring.sign("id", p)));
        g.bench_with_input(BenchmarkId::new("verify", size), &payload, |b, p| {
            b.iter(|| ring.verify("id", p, black_box(&tag)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("seal", size), &payload, |b, p| b.iter(|| ring.seal("id", p)));
        g.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| {
            b.iter(|| ring.open("id", s).unwrap())
        });
    }
    g.finish();

    // Rotation: the cookie was made two keys ago, so verification tries three keys.
    let oldest = Key::generate();
    let made = KeyRing::new(oldest.clone());
    let rotated = KeyRing::new(Key::generate()).with_fallback(Key::generate()).with_fallback(oldest);
    let payload = vec![0x5au8; 100];
    let tag = made.sign("id", &payload);
    let sealed = made.seal("id", &payload);
    let mut g = c.benchmark_group("crypto/second-fallback");
    g.bench_function("verify 100", |b| b.iter(|| assert_eq!(rotated.verify("id", &payload, &tag), Some(2))));
    g.bench_function("open 100", |b| b.iter(|| rotated.open("id", &sealed).unwrap()));
    g.finish();
}

/// Session ids: drawing a fresh one, and the store key derived from it (SHA-256).
fn ids(c: &mut Criterion) {
    let mut g = c.benchmark_group("crypto/id");
    g.bench_function("random", |b| b.iter(session_core::Id::random));
    let id = session_core::Id::random();
    g.bench_function("record_id", |b| b.iter(|| black_box(&id).record_id()));
    g.finish();
}

/// The client-side save path for a 1 KB session: encode the record, seal it, base64 it
/// (what `SessionLayer::client_side_private` does at the end of a request that changed it).
fn client_side_cookie(c: &mut Criterion) {
    use base64::Engine as _;
    let ring = KeyRing::new(Key::generate());
    let now = time::OffsetDateTime::now_utc();
    let mut record = session_core::Record::new(session_core::Id::random().record_id(), now, now);
    for i in 0..10 {
        record.entries.insert(format!("key{i}"), vec![0x5a; 90].into());
    }
    let size = record.to_bytes().len();
    println!("client-side payload: {size} B");
    let mut g = c.benchmark_group("crypto/client-side-cookie");
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function(BenchmarkId::new("encode+seal+base64", size), |b| {
        b.iter(|| {
            let payload = black_box(&record).to_bytes();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring.seal("session", &payload))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = crypto, ids, client_side_cookie
}
criterion_main!(benches);
