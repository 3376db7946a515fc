//! Properties over generated input (proptest): every encoding round-trips, every altered
//! signed or sealed cookie is refused, disjoint patches commute, and concurrent in-place
//! updates through the layer are exact whatever their number and interleaving.
//!
//! Case counts keep the whole file to a few seconds in a debug build.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path};
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use session_core::testing::{FaultStore, StoreMethod};
use session_core::{
    Change, Entries, Expiry, ExpiryChange, Forward, Key, KeyRing, Patch, Record, RecordId, Session,
    SessionLayer, SessionStore, Stored,
};
use session_store_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

fn runtime() -> tokio::runtime::Runtime {
    // Paused time: back-off sleeps and injected latency take no wall-clock time.
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime")
}

// ---- generators ----

/// Any instant `time` can represent (years -9999 to 9999), to the nanosecond.
fn instant() -> impl Strategy<Value = OffsetDateTime> {
    let (min, max) = (-377_705_116_800_i64, 253_402_300_799_i64);
    (min..=max, 0..1_000_000_000u32).prop_map(|(s, n)| {
        OffsetDateTime::from_unix_timestamp(s).expect("in range").replace_nanosecond(n).expect("valid")
    })
}

fn expiry() -> impl Strategy<Value = Expiry> {
    prop_oneof![
        Just(Expiry::BrowserSession),
        (any::<i64>(), -999_999_999..=999_999_999i32)
            .prop_map(|(s, n)| Expiry::OnInactivity(Duration::new(s, n))),
        instant().prop_map(Expiry::AtDateTime),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-z_]{1,6}", 1 => "\\PC{0,10}"]
}

fn entries() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    proptest::collection::vec((key(), proptest::collection::vec(any::<u8>(), 0..24)), 0..8)
}

prop_compose! {
    fn record()(
        id in any::<[u8; 32]>(),
        entries in entries(),
        (created_at, expires_at, last_seen) in (instant(), instant(), instant()),
        expiry in proptest::option::of(expiry()),
        version in any::<u64>(),
        user in proptest::option::of("\\PC{0,12}"),
        label in proptest::option::of("\\PC{0,12}"),
    ) -> Record {
        let mut r = Record::new(RecordId::from_bytes(id), created_at, expires_at);
        r.entries = entries.into_iter().map(|(k, v)| (k, Bytes::from(v))).collect::<Entries>();
        r.expiry = expiry;
        r.version = version;
        r.user = user;
        r.label = label;
        r.last_seen = last_seen;
        r
    }
}

/// A session value of the kinds apps keep: text, numbers, flags, lists, nested options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Value {
    Text(String),
    Int(i64),
    Flag(bool),
    List(Vec<String>),
    Maybe(Option<Box<Value>>),
    Pair(u64, Vec<u8>),
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        "\\PC{0,16}".prop_map(Value::Text),
        any::<i64>().prop_map(Value::Int),
        any::<bool>().prop_map(Value::Flag),
        proptest::collection::vec("[ -~]{0,6}", 0..4).prop_map(Value::List),
        (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(a, b)| Value::Pair(a, b)),
    ];
    leaf.prop_recursive(3, 8, 1, |inner| {
        proptest::option::of(inner.prop_map(Box::new)).prop_map(Value::Maybe)
    })
}

/// What a client-side session is made of through the public API: keys and values, and
/// perhaps its own expiry.
fn session_data() -> impl Strategy<Value = Contents> {
    let own_expiry = proptest::option::of(prop_oneof![
        (1i64..10_000_000).prop_map(|s| Expiry::OnInactivity(Duration::seconds(s))),
        (60i64..10_000_000).prop_map(|s| Expiry::AtDateTime(
            // Whole seconds: an instant is kept to the nanosecond, but this keeps the
            // failure output readable.
            OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp() + s)
                .expect("in range")
        )),
    ]);
    (proptest::collection::vec((key(), value()), 0..6), own_expiry)
}

// ---- the app the layer properties drive ----

/// Keys and values, and the session's own expiry.
type Contents = (Vec<(String, Value)>, Option<Expiry>);

/// What a request writes (a request extension).
#[derive(Clone)]
struct Data(Arc<Contents>);

/// A snapshot of a session as a handler sees it.
#[derive(Debug, PartialEq)]
struct Seen {
    entries: Vec<(String, Value)>,
    expiry: Option<Expiry>,
}

/// Per request of the increment property: how many times to yield before the load and
/// before the update.
#[derive(Clone, Copy, Debug)]
struct Pace(u8, u8);

fn routes() -> Router {
    Router::new()
        .route(
            "/write",
            post(|s: Session, Extension(Data(data)): Extension<Data>| async move {
                for (k, v) in &data.0 {
                    s.insert(k, v).await?;
                }
                s.set_expiry(data.1);
                Ok::<_, session_core::Error>("written")
            }),
        )
        .route(
            "/read",
            get(|s: Session| async move {
                let mut entries = Vec::new();
                for k in s.keys().await? {
                    let v = s.get::<Value>(&k).await?.expect("listed");
                    entries.push((k, v));
                }
                let seen = Seen { entries, expiry: s.expiry() };
                Ok::<_, session_core::Error>(format!("{seen:?}"))
            }),
        )
        .route(
            "/increment",
            post(|s: Session, Extension(Pace(before_load, before_update)): Extension<Pace>| async move {
                for _ in 0..before_load {
                    tokio::task::yield_now().await;
                }
                let _: Option<u64> = s.get("n").await?;
                for _ in 0..before_update {
                    tokio::task::yield_now().await;
                }
                s.update("n", |n: &mut u64| *n += 1).await.map(|()| "incremented")
            }),
        )
        .route(
            "/fill/{expiry_last}",
            post(
                |s: Session, Extension(Data(data)): Extension<Data>, Path(expiry_last): Path<bool>| async move {
                    fill(&s, &data.0, data.1, expiry_last).await
                },
            ),
        )
        .route("/n", get(|s: Session| async move { s.get::<u64>("n").await.map(|n| format!("{n:?}")) }))
}

/// Inserts `values` in order until one no longer fits; sets `expiry` before them or after
/// them. Answers how many fit.
async fn fill(
    s: &Session,
    values: &[(String, Value)],
    expiry: Option<Expiry>,
    expiry_last: bool,
) -> Result<String, session_core::Error> {
    if !expiry_last {
        s.set_expiry(expiry);
    }
    let mut kept = 0;
    for (k, v) in values {
        match s.insert(k, v).await {
            Ok(()) => kept += 1,
            Err(session_core::Error::CookieTooLarge { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    if expiry_last {
        s.set_expiry(expiry);
    }
    Ok(kept.to_string())
}

/// Sends one request with the cookie value `cookie` (raw bytes) and `ext` as an extension.
async fn send<E: Clone + Send + Sync + 'static>(
    app: &Router,
    method: &str,
    path: &str,
    cookie: Option<&[u8]>,
    ext: Option<E>,
) -> common::Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(value) = cookie {
        let mut header = b"id=".to_vec();
        header.extend_from_slice(value);
        req = req.header(header::COOKIE, HeaderValue::from_bytes(&header).expect("a valid header value"));
    }
    let mut req = req.body(Body::empty()).expect("request");
    if let Some(ext) = ext {
        req.extensions_mut().insert(ext);
    }
    common::send(app, req).await
}

/// The session cookie value a reply sets.
fn cookie_of(reply: &common::Reply) -> Option<String> {
    let set = reply.set_cookie()?;
    let value = set.split(';').next()?.strip_prefix("id=")?;
    (!set.contains("Max-Age=0")).then(|| value.to_owned())
}

/// The last value of each key, in key order, as a map keeps them.
fn as_map(data: &[(String, Value)]) -> Vec<(String, Value)> {
    let map: std::collections::BTreeMap<_, _> = data.iter().cloned().collect();
    map.into_iter().collect()
}

/// The four cookie forms whose value is protected by a key.
#[derive(Debug, Clone, Copy)]
enum Form {
    ClientSealed,
    ClientSigned,
    ServerSealedId,
    ServerSignedId,
}

fn layer(form: Form, ring: KeyRing, store: FaultStore<MemoryStore>) -> SessionLayer {
    match form {
        Form::ClientSealed => SessionLayer::client_side_private(ring),
        Form::ClientSigned => SessionLayer::client_side_signed(ring),
        Form::ServerSealedId => SessionLayer::new(store).with_private(ring),
        Form::ServerSignedId => SessionLayer::new(store).with_signed(ring),
    }
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        Just(Form::ClientSealed),
        Just(Form::ClientSigned),
        Just(Form::ServerSealedId),
        Just(Form::ServerSignedId)
    ]
}

/// One alteration of a cookie value.
#[derive(Debug, Clone)]
enum Alteration {
    /// The byte at this index (from the end when negative, modulo the length) becomes this
    /// one.
    Replace(isize, u8),
    /// Only the first bytes stay (this many, modulo the length).
    Truncate(usize),
    /// These bytes are appended.
    Extend(Vec<u8>),
}

/// A byte a header value may hold (no control characters but tab), most often one of the
/// base64url alphabet, whose near-misses (the same bits but the last) are the sly ones.
fn header_byte() -> impl Strategy<Value = u8> {
    let base64 = proptest::sample::select(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec(),
    );
    prop_oneof![4 => base64, 1 => Just(b'\t'), 1 => 0x20u8..=0x7e, 1 => 0x80u8..=0xff]
}

fn alteration() -> impl Strategy<Value = Alteration> {
    // The ends of a value are where parsers are lenient (padding, trailing bits,
    // whitespace), so they are picked as often as everything in between.
    let index = prop_oneof![-3isize..0, 0isize..3, 0isize..4096];
    // An extension by whitespace or by `;` is no extension of the value: the cookie
    // syntax trims the first and ends the value at the second.
    let extra = (0x21u8..=0x7e).prop_filter("ends a cookie", |b| *b != b';');
    prop_oneof![
        2 => (index, header_byte()).prop_map(|(i, b)| Alteration::Replace(i, b)),
        1 => prop_oneof![any::<usize>(), Just(usize::MAX)].prop_map(Alteration::Truncate),
        1 => proptest::collection::vec(extra, 1..6).prop_map(Alteration::Extend),
    ]
}

fn alter(value: &[u8], how: &Alteration) -> Vec<u8> {
    let mut v = value.to_vec();
    let len = value.len();
    match how {
        Alteration::Replace(i, b) => v[i.rem_euclid(len as isize) as usize] = *b,
        // `usize::MAX`: one byte cut off the end.
        Alteration::Truncate(n) => v.truncate(if *n == usize::MAX { len - 1 } else { n % len }),
        Alteration::Extend(extra) => v.extend_from_slice(extra),
    }
    v
}

// ---- the properties ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn records_and_forwards_round_trip_through_their_bytes(record in record(), to in any::<[u8; 32]>(), now in instant()) {
        let bytes = record.to_bytes();
        let back = Record::from_bytes(&bytes).expect("decodes");
        prop_assert_eq!(&back, &record);
        prop_assert_eq!(back.to_bytes(), bytes.clone(), "one record, one encoding");
        prop_assert_eq!(Stored::from_bytes(&bytes).expect("decodes"), Stored::Record(record.clone()));

        let forward = Forward::new(RecordId::from_bytes(to), record.expires_at, now);
        prop_assert_eq!(Stored::from_bytes(&forward.to_bytes()).expect("decodes"), Stored::Forward(forward));
        if let Some(expiry) = record.expiry {
            prop_assert_eq!(Expiry::from_bytes(&expiry.to_bytes()).expect("decodes"), expiry);
        }
    }

    #[test]
    fn truncated_records_are_corrupt_never_a_panic(record in record(), cut in any::<usize>()) {
        let bytes = record.to_bytes();
        let cut = cut % bytes.len();
        prop_assert!(Record::from_bytes(&bytes[..cut]).is_err());
        prop_assert!(Stored::from_bytes(&bytes[..cut]).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever a handler puts in a client-side session comes back in the next request,
    /// sealed or signed.
    #[test]
    fn client_side_sessions_round_trip_through_the_cookie(
        sealed in any::<bool>(),
        (entries, own_expiry) in session_data(),
    ) {
        let ring = KeyRing::new(Key::generate());
        let layer = if sealed {
            SessionLayer::client_side_private(ring)
        } else {
            SessionLayer::client_side_signed(ring)
        };
        let app = routes().layer(layer);
        let seen = runtime().block_on(async {
            let data = Data(Arc::new((entries.clone(), own_expiry)));
            let w = send(&app, "POST", "/write", None, Some(data)).await;
            assert_eq!(w.status, StatusCode::OK, "{}", w.body);
            let cookie = cookie_of(&w);
            send::<()>(&app, "GET", "/read", cookie.as_deref().map(str::as_bytes), None).await
        });
        prop_assert_eq!(seen.status, StatusCode::OK);
        let expect = Seen { entries: as_map(&entries), expiry: own_expiry.filter(|_| !entries.is_empty()) };
        prop_assert_eq!(seen.body, format!("{expect:?}"));
    }
}

/// A session in `form` holding `k = text`: its app, store and cookie value.
async fn protected_session(form: Form, text: &str) -> (Router, FaultStore<MemoryStore>, String) {
    let store = FaultStore::new(MemoryStore::default());
    let app = routes().layer(layer(form, KeyRing::new(Key::generate()), store.clone()));
    let data = Data(Arc::new((vec![("k".to_owned(), Value::Text(text.to_owned()))], None)));
    let w = send(&app, "POST", "/write", None, Some(data)).await;
    let cookie = cookie_of(&w).expect("a cookie");
    let good = send::<()>(&app, "GET", "/read", Some(cookie.as_bytes()), None).await;
    assert!(good.body.contains(&format!("Text({text:?})")), "the cookie as sent works: {}", good.body);
    (app, store, cookie)
}

/// Sends `altered` as the cookie value: `Err` says how it was not refused.
async fn refused(app: &Router, store: &FaultStore<MemoryStore>, altered: &[u8]) -> Result<(), String> {
    let loads = store.calls(StoreMethod::Load);
    let r = send::<()>(app, "GET", "/read", Some(altered), None).await;
    let none = format!("{:?}", Seen { entries: vec![], expiry: None });
    if r.status != StatusCode::OK || r.body != none {
        return Err(format!("{} {}", r.status, r.body));
    }
    if store.calls(StoreMethod::Load) != loads {
        return Err("an altered id reached the store".to_owned());
    }
    Ok(())
}

fn own_expiry() -> impl Strategy<Value = Option<Expiry>> {
    let far = 253_402_300_799 - OffsetDateTime::now_utc().unix_timestamp();
    proptest::option::of(prop_oneof![
        Just(Expiry::BrowserSession),
        (1i64..=far).prop_map(|s| Expiry::OnInactivity(Duration::seconds(s))),
        Just(Expiry::OnInactivity(Duration::MAX)),
        (60i64..=far, 0..1_000_000_000u32).prop_map(|(s, n)| Expiry::AtDateTime(
            OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp() + s)
                .expect("in range")
                .replace_nanosecond(n)
                .expect("valid")
        )),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A client-side session filled up to the cookie limit: the insert that would overflow
    /// is refused (`CookieTooLarge`), everything before it is saved in a cookie within
    /// the limit, whatever the session's expiry (its instant is inside the payload) and
    /// whether it is set before or after the inserts.
    #[test]
    fn a_full_client_side_session_is_refused_at_the_insert_never_at_the_save(
        sealed in any::<bool>(),
        expiry_last in any::<bool>(),
        // A large value, then small ones that approach the limit in small steps.
        sizes in (1usize..2900, proptest::collection::vec(1usize..4, 0..400))
            .prop_map(|(big, small)| std::iter::once(big).chain(small).collect::<Vec<_>>()),
        own_expiry in own_expiry(),
    ) {
        let ring = KeyRing::new(Key::generate());
        let layer = if sealed { SessionLayer::client_side_private(ring) } else { SessionLayer::client_side_signed(ring) };
        let app = routes().layer(layer);
        let values: Vec<(String, Value)> =
            sizes.iter().enumerate().map(|(i, &n)| (format!("k{i}"), Value::Text("x".repeat(n)))).collect();
        let (fill, read) = runtime().block_on(async {
            let data = Data(Arc::new((values.clone(), own_expiry)));
            let fill = send(&app, "POST", &format!("/fill/{expiry_last}"), None, Some(data)).await;
            let cookie = cookie_of(&fill);
            let read = send::<()>(&app, "GET", "/read", cookie.as_deref().map(str::as_bytes), None).await;
            (fill, read)
        });
        prop_assert_eq!(fill.status, StatusCode::OK, "the save failed: {}", fill.body);
        let kept: usize = fill.body.parse().expect("a count");
        prop_assert!(kept >= 1, "the first value always fits");
        if kept < values.len() {
            prop_assert!(kept == 0 || fill.set_cookie().is_some());
        }
        if let Some(set) = fill.set_cookie() {
            let pair = set.split(';').next().expect("name=value");
            prop_assert!(pair.len() <= 4096, "a cookie of {} bytes", pair.len());
        }
        let expect = Seen { entries: as_map(&values[..kept]), expiry: own_expiry.filter(|_| kept > 0) };
        prop_assert_eq!(read.body, format!("{expect:?}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// One replaced byte, a truncation or an extension of a sealed or signed cookie (a
    /// client-side session, or a server-side id) is no session, and an altered id never
    /// reaches the store.
    #[test]
    fn altered_protected_cookies_are_refused(form in form(), text in "[a-z]{0,8}", how in alteration()) {
        let outcome = runtime().block_on(async {
            let (app, store, cookie) = protected_session(form, &text).await;
            let altered = alter(cookie.as_bytes(), &how);
            if altered == cookie.as_bytes() {
                return Ok(());
            }
            refused(&app, &store, &altered).await
        });
        prop_assert!(outcome.is_ok(), "{:?}", outcome);
    }
}

/// The ends of a cookie value, exhaustively: every byte a header can carry in the first
/// two and last two places, every truncation, every one-character extension. The ends are
/// where decoders are lenient (base64 padding and trailing bits, whitespace); client-side
/// values are tried at three payload lengths, so the base64 text ends in each of its three
/// ways.
#[test]
fn every_alteration_at_the_ends_of_a_protected_cookie_is_refused() {
    let bytes: Vec<u8> = std::iter::once(b'\t').chain(0x20..=0x7e).chain(0x80..=0xff).collect();
    runtime().block_on(async {
        for form in [Form::ClientSealed, Form::ClientSigned, Form::ServerSealedId, Form::ServerSignedId] {
            let texts: &[&str] = match form {
                Form::ClientSealed | Form::ClientSigned => &["", "a", "ab"],
                // An id cookie's length does not depend on the data.
                Form::ServerSealedId | Form::ServerSignedId => &[""],
            };
            for text in texts {
                let (app, store, cookie) = protected_session(form, text).await;
                let value = cookie.as_bytes();
                let len = value.len();
                // Each alteration with what it did, for the failure message: a cookie value
                // is never printed, even a test's.
                let mut altered: Vec<(String, Vec<u8>)> = Vec::new();
                for i in [0, 1, len - 2, len - 1] {
                    for &b in bytes.iter().filter(|&&b| b != value[i]) {
                        let mut v = value.to_vec();
                        v[i] = b;
                        altered.push((format!("byte {i} of {len} replaced by {b:#04x}"), v));
                    }
                }
                altered.extend((0..len).map(|n| (format!("cut to {n} of {len} bytes"), value[..n].to_vec())));
                for b in (0x21..=0x7e).filter(|&b| b != b';') {
                    altered.push((format!("{b:#04x} appended to {len} bytes"), [value, &[b]].concat()));
                }
                for (what, v) in altered {
                    if let Err(why) = refused(&app, &store, &v).await {
                        panic!("{form:?} with {text:?}: {what}: accepted ({why})");
                    }
                }
            }
        }
    });
}

/// A change of one key, seen from the record it is applied to.
fn change_of(key: &str, base: &Record, kind: u8, value: Option<Vec<u8>>) -> Change {
    let value = value.map(Bytes::from);
    match kind % 2 {
        0 => Change::set(key, value),
        _ => Change::update(key, base.entries.get(key).cloned(), value),
    }
}

prop_compose! {
    /// A record and two patches of it that change disjoint keys, both made from the same
    /// record (as two concurrent requests would), with the same expiry and time.
    fn disjoint_patches()(
        record in record(),
        keys in proptest::collection::btree_map(key(), (any::<bool>(), any::<u8>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8))), 1..10),
        extra in proptest::collection::vec(any::<usize>(), 0..4),
    ) -> (Record, Patch, Patch) {
        let mut record = record;
        // Some changed keys exist in the record already, so updates expect real values.
        let names: Vec<_> = keys.keys().cloned().collect();
        for i in extra {
            record.entries.insert(names[i % names.len()].clone(), Bytes::from_static(b"\xa3old"));
        }
        let now = record.last_seen;
        let (mut a, mut b) = (Patch::new(record.id, record.expires_at, now), Patch::new(record.id, record.expires_at, now));
        a.expiry = ExpiryChange::Keep(record.expiry);
        b.expiry = ExpiryChange::Keep(record.expiry);
        for (key, (to_a, kind, value)) in keys {
            let change = change_of(&key, &record, kind, value);
            if to_a { a.changes.push(change) } else { b.changes.push(change) }
        }
        (record, a, b)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn patches_of_disjoint_keys_commute((record, a, b) in disjoint_patches()) {
        let now = record.last_seen;
        let (mut ab, mut ba) = (record.clone(), record.clone());
        a.apply_to(&mut ab, now).expect("a holds");
        let ended_ab = b.apply_to(&mut ab, now).expect("b holds after a").ended;
        b.apply_to(&mut ba, now).expect("b holds");
        let ended_ba = a.apply_to(&mut ba, now).expect("a holds after b").ended;
        prop_assert_eq!(&ab, &ba);
        prop_assert_eq!(ab.to_bytes(), ba.to_bytes());
        prop_assert_eq!(ended_ab, ended_ba);
        prop_assert_eq!(ab.version, record.version.wrapping_add(2));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// `n` concurrent `update` increments through the layer on one memory store end at
    /// exactly `n`, whatever the interleaving: where each request yields, which of up to
    /// three app instances (each with its own write queue, so conflicts between them are
    /// real) serves it, and how slow the store's writes are.
    #[test]
    fn concurrent_increments_through_the_layer_are_exact(
        paces in proptest::collection::vec((0u8..3, 0u8..4, 0usize..3), 1..=32),
        instances in 1usize..=3,
        apply_latency_ms in 0u64..3,
    ) {
        let n = paces.len();
        let (statuses, counter) = runtime().block_on(async {
            let store = FaultStore::new(MemoryStore::default())
                .with_latency(StoreMethod::Apply, std::time::Duration::from_millis(apply_latency_ms));
            let apps: Vec<Router> =
                (0..instances).map(|_| routes().layer(SessionLayer::new(store.clone()))).collect();
            let seed = Data(Arc::new((vec![("seed".to_owned(), Value::Flag(true))], None)));
            let w = send(&apps[0], "POST", "/write", None, Some(seed)).await;
            let cookie = cookie_of(&w).expect("a cookie");
            let mut tasks = tokio::task::JoinSet::new();
            for (before_load, before_update, instance) in paces {
                let app = apps[instance % instances].clone();
                let cookie = cookie.clone();
                tasks.spawn(async move {
                    let pace = Pace(before_load, before_update);
                    let r = send(&app, "POST", "/increment", Some(cookie.as_bytes()), Some(pace)).await;
                    (r.status, r.body)
                });
            }
            let statuses = tasks.join_all().await;
            let counter = send::<()>(&apps[0], "GET", "/n", Some(cookie.as_bytes()), None).await.body;
            (statuses, counter)
        });
        for (status, body) in &statuses {
            prop_assert_eq!(*status, StatusCode::OK, "{}", body);
        }
        prop_assert_eq!(counter, format!("Some({n})"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The store-level form of the commutation property: two disjoint patches applied by a
    /// store, in either order, leave the same record (or none), as long as neither empties
    /// the session alone (an emptied session ends, and a patch after the end finds nothing).
    #[test]
    fn disjoint_patches_commute_in_a_store((record, a, b) in disjoint_patches()) {
        let (mut record, mut a, mut b) = (record, a, b);
        let now = OffsetDateTime::now_utc();
        record.expires_at = now + Duration::hours(1);
        for p in [&mut a, &mut b] {
            p.expires_at = record.expires_at;
            p.last_seen = now;
        }
        let empties = |p: &Patch| p.apply_to(&mut record.clone(), now).map_or(true, |x| x.ended);
        prop_assume!(!empties(&a) && !empties(&b));
        let results = runtime().block_on(async {
            let mut results = Vec::new();
            for order in [[&a, &b], [&b, &a]] {
                let store = MemoryStore::default();
                store.create(&record).await.expect("create");
                for p in order {
                    store.apply(p).await.expect("apply");
                }
                results.push(store.load(&record.id).await.expect("load"));
            }
            results
        });
        // `None` in both orders when the two together empty the session.
        prop_assert_eq!(&results[0], &results[1]);
    }
}
