//! The session as a dictionary, against a model: whatever sequence of inserts, removes,
//! in-place updates and clears one request makes, it sees the keys, length and values a
//! plain map would at every step, and the next request finds exactly that map. Server-side,
//! a request's writes sit in its dirty log over the loaded entries (which it shares with the
//! store and never copies), so every read goes through that view; client-side the entries
//! are written in place. Both must agree with the model.

use std::collections::BTreeMap;

use axum::Router;
use proptest::prelude::*;
use session_core::test_client::TestClient;
use session_core::{Error, Key, KeyRing, Session, SessionLayer};
use session_store_memory::MemoryStore;

#[derive(Debug, Clone)]
enum Op {
    Insert(&'static str, u64),
    Remove(&'static str),
    /// `update` adding this much (an absent key starts at 0; 0 + 0 stays absent).
    Add(&'static str, u64),
    Clear,
}

const KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];

fn key() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&KEYS[..])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), 0..4u64).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => key().prop_map(Op::Remove),
        3 => (key(), 0..3u64).prop_map(|(k, n)| Op::Add(k, n)),
        1 => Just(Op::Clear),
    ]
}

type Model = BTreeMap<&'static str, u64>;

fn apply(model: &mut Model, op: &Op) {
    match *op {
        Op::Insert(k, v) => {
            model.insert(k, v);
        }
        Op::Remove(k) => {
            model.remove(k);
        }
        Op::Add(k, n) => {
            let v = model.get(k).copied().unwrap_or_default() + n;
            // `update` leaves an absent key at its default absent.
            if model.contains_key(k) || v != 0 {
                model.insert(k, v);
            }
        }
        Op::Clear => model.clear(),
    }
}

async fn run(s: &Session, op: &Op) -> Result<(), Error> {
    match *op {
        Op::Insert(k, v) => s.insert(k, v).await,
        Op::Remove(k) => s.remove::<u64>(k).await.map(drop),
        Op::Add(k, n) => s.update(k, move |v: &mut u64| *v += n).await,
        Op::Clear => s.clear().await,
    }
}

/// What the session shows, in the model's form; an error names the first disagreement.
async fn view(s: &Session) -> Result<Model, String> {
    let keys = s.keys().await.map_err(|e| e.to_string())?;
    let len = s.len().await.map_err(|e| e.to_string())?;
    if keys.len() != len {
        return Err(format!("keys {keys:?} but len {len}"));
    }
    if keys.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("keys out of order: {keys:?}"));
    }
    let mut shown = Model::new();
    for k in KEYS {
        let value = s.get::<u64>(k).await.map_err(|e| e.to_string())?;
        let listed = keys.iter().any(|l| l == k);
        let contains = s.contains(k).await.map_err(|e| e.to_string())?;
        if value.is_some() != listed || contains != listed {
            return Err(format!("{k}: get {value:?}, listed {listed}, contains {contains}"));
        }
        if let Some(v) = value {
            shown.insert(k, v);
        }
    }
    Ok(shown)
}

fn layer(client_side: bool) -> SessionLayer {
    if client_side {
        SessionLayer::client_side_signed(KeyRing::new(Key::generate())).with_secure(false)
    } else {
        SessionLayer::new(MemoryStore::default()).with_secure(false)
    }
}

fn check(initial: &Model, ops: &[Op], client_side: bool) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let layer = layer(client_side);
        let client = TestClient::new(Router::new().layer(layer.clone())).with_session_layer(&layer);
        let first = initial.clone();
        client
            .session(move |s| async move {
                for (k, v) in first {
                    s.insert(k, v).await?;
                }
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())?;

        // One request: each step's view against the model's.
        let steps = ops.to_vec();
        let start = initial.clone();
        let model = client
            .session(move |s| async move {
                let mut model = start;
                let mut failure = None;
                for (i, op) in steps.iter().enumerate() {
                    run(&s, op).await?;
                    apply(&mut model, op);
                    match view(&s).await {
                        Ok(shown) if shown == model => {}
                        Ok(shown) => {
                            failure = failure.or(Some(format!("after step {i} ({op:?}): {shown:?}")))
                        }
                        Err(e) => failure = failure.or(Some(format!("after step {i} ({op:?}): {e}"))),
                    }
                }
                Ok((model, failure))
            })
            .await
            .map_err(|e| e.to_string())?;
        let (model, failure) = model;
        if let Some(failure) = failure {
            return Err(format!("expected {model:?} {failure}"));
        }

        // The next request finds what the model holds.
        let stored =
            client.session(|s| async move { Ok(view(&s).await) }).await.map_err(|e| e.to_string())??;
        if stored != model {
            return Err(format!("stored {stored:?}, expected {model:?}"));
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn one_request_sees_and_stores_what_a_map_would(
        initial in proptest::collection::btree_map(key(), 0..4u64, 0..5),
        ops in proptest::collection::vec(op(), 0..12),
        client_side in any::<bool>(),
    ) {
        if let Err(e) = check(&initial, &ops, client_side) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// The cases the overlay has to get right, spelled out: a key written back to its loaded
/// value, a removed key inserted again, a clear followed by inserts, keys that sort between
/// the loaded ones.
#[test]
fn the_view_over_loaded_entries_handles_the_edge_cases() {
    let loaded: Model = [("b", 1), ("d", 2)].into_iter().collect();
    let cases: [&[Op]; 5] = [
        &[Op::Insert("b", 5), Op::Insert("b", 1)],
        &[Op::Remove("b"), Op::Insert("b", 3), Op::Remove("d")],
        &[Op::Clear, Op::Insert("c", 1), Op::Add("a", 2)],
        &[Op::Insert("a", 0), Op::Insert("c", 0), Op::Insert("e", 0), Op::Remove("d")],
        &[Op::Add("b", 1), Op::Insert("b", 7), Op::Add("b", 1), Op::Clear],
    ];
    for ops in cases {
        for client_side in [false, true] {
            check(&loaded, ops, client_side)
                .unwrap_or_else(|e| panic!("{ops:?} (client-side: {client_side}): {e}"));
        }
    }
}

/// Clones of one request's session writing at once, on several threads: in-place updates of
/// one key (each re-run on the value a clone left, through the view over the loaded
/// entries), inserts of distinct keys and removals of loaded ones all land, and the next
/// request finds exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clones_of_one_request_writing_at_once_all_land() {
    const CLONES: u64 = 16;
    let layer = layer(false);
    let client = TestClient::new(Router::new().layer(layer.clone())).with_session_layer(&layer);
    client
        .session(|s| async move {
            s.insert("n", 100u64).await?;
            for i in 0..CLONES {
                s.insert(&format!("old{i:02}"), i).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let seen = client
        .session(|s| async move {
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CLONES as usize));
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..CLONES {
                let (s, barrier) = (s.clone(), barrier.clone());
                tasks.spawn(async move {
                    barrier.wait().await;
                    s.update("n", |n: &mut u64| *n += 1).await?;
                    s.insert(&format!("new{i:02}"), i).await?;
                    s.remove::<u64>(&format!("old{i:02}")).await.map(drop)
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("a clone panicked")?;
            }
            Ok((s.get::<u64>("n").await?, s.len().await?))
        })
        .await
        .unwrap();
    assert_eq!(seen, (Some(100 + CLONES), 1 + CLONES as usize), "the request's own view");
    let stored = client
        .session(|s| async move {
            let keys = s.keys().await?;
            Ok((s.get::<u64>("n").await?, keys))
        })
        .await
        .unwrap();
    let mut expected: Vec<String> = (0..CLONES).map(|i| format!("new{i:02}")).collect();
    expected.push("n".to_owned());
    expected.sort();
    assert_eq!(stored, (Some(100 + CLONES), expected));
}
