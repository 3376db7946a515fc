//! Store outages, races and failing handlers: loud errors, nothing lost, nothing resurrected.

mod common;

use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::Router;
use common::{app, fail_writes, record_id, recover_writes, Client};
use session_core::testing::{Failure, FaultStore, StoreMethod};
use session_core::{Session, SessionLayer, SessionStore, StoreError};
use session_store_memory::MemoryStore;

#[tokio::test]
async fn a_store_outage_is_a_500_not_a_panic_or_a_logout() {
    let store = FaultStore::<MemoryStore>::default();
    let mut c = Client::new(app(SessionLayer::new(store.clone())));
    c.post("/insert/a/1").await;
    let cookie = c.cookie().unwrap();

    store.fail(StoreMethod::Load, Failure::outage());
    for path in ["/get/a", "/swallow"] {
        let r = c.get(path).await;
        assert_eq!(r.status, 500, "{path}: a handler that ignores the error still fails");
        assert!(r.set_cookie().is_none(), "{path}: the cookie is not removed");
        assert!(!r.body.contains(&cookie));
    }
    assert_eq!(c.get("/untouched").await.status, 200, "routes that do not use the session still work");

    store.recover(StoreMethod::Load);
    fail_writes(&store);
    assert_eq!(c.post("/insert/b/2").await.status, 500);
    assert_eq!(c.post("/flush").await.status, 500);

    recover_writes(&store);
    assert_eq!(c.cookie().as_ref(), Some(&cookie), "still logged in after the outage");
    assert_eq!(c.get("/get/a").await.body, "\"1\"");
    assert_eq!(c.get("/get/b").await.body, "none", "the failed write did not half-happen");
}

#[tokio::test]
async fn the_error_status_is_configurable() {
    let store = FaultStore::<MemoryStore>::default();
    fail_writes(&store);
    let layer =
        SessionLayer::new(store.clone()).with_error_status(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    let mut c = Client::new(app(layer));
    assert_eq!(c.post("/insert/a/1").await.status, 503, "a failed save");
    recover_writes(&store);
    c.post("/insert/a/not-a-number").await;
    let r = c.get("/get-u32-or-fail/a").await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (500, "session error"),
        "a wrong type is the app's bug: 500"
    );
    store.fail(StoreMethod::Load, Failure::outage());
    // A handler's `?` on a failed load answers what the layer does for a failed load.
    let r = c.get("/get-u32-or-fail/a").await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (503, "session error"));
    assert_eq!(c.post("/clear").await.status, 503);
}

#[tokio::test]
async fn nothing_is_saved_when_the_handler_fails() {
    let store = FaultStore::new(MemoryStore::default());
    let mut c = Client::new(app(SessionLayer::new(store.clone())));
    let r = c.post("/fail").await;
    assert_eq!(r.status, 500);
    assert!(r.set_cookie().is_none());
    assert_eq!(store.calls(StoreMethod::Create), 0);
    c.post("/insert/a/1").await;
    c.post("/fail").await;
    assert_eq!(c.get("/get/a").await.body, "\"1\"");
    assert_eq!(store.calls(StoreMethod::Apply), 0);
}

#[tokio::test]
async fn endless_conflicts_end_in_an_error_after_bounded_retries() {
    let store = FaultStore::new(MemoryStore::default());
    let mut c = Client::new(app(SessionLayer::new(store.clone())));
    c.post("/insert/a/1").await;
    store.fail(StoreMethod::Apply, Failure::error(|| StoreError::Conflict));
    let r = c.post("/insert/a/2").await;
    assert_eq!(r.status, 500);
    let saves = store.calls(StoreMethod::Apply);
    assert!((2..=16).contains(&saves), "bounded retries, got {saves}");
}

/// A router whose `/slow` handler loads the session, waits for a signal, then writes.
fn racing_app(layer: SessionLayer, gate: Arc<tokio::sync::Barrier>) -> Router {
    common::routes()
        .route(
            "/slow/{key}",
            post(move |s: Session, axum::extract::Path(key): axum::extract::Path<String>| {
                let gate = Arc::clone(&gate);
                async move {
                    let _: Option<String> = s.get("a").await.unwrap();
                    gate.wait().await; // loaded
                    gate.wait().await; // the other request finished
                    if key == "CLEAR" {
                        s.clear().await.unwrap();
                    } else {
                        s.insert(&key, "slow").await.unwrap();
                    }
                    "slow done"
                }
            }),
        )
        .layer(layer)
}

/// A slow request that has loaded the session and waits, and a fast client on the same
/// cookie that acts meanwhile.
struct Race {
    mem: MemoryStore,
    fast: Client,
    cookie: String,
    gate: Arc<tokio::sync::Barrier>,
    slow: tokio::task::JoinHandle<common::Reply>,
}

impl Race {
    /// Creates a session holding `a`, then starts `POST slow_path` and returns once it has
    /// loaded the session.
    async fn start(slow_path: &'static str) -> Self {
        let mem = MemoryStore::default();
        let gate = Arc::new(tokio::sync::Barrier::new(2));
        let mut fast = Client::new(racing_app(SessionLayer::new(mem.clone()), Arc::clone(&gate)));
        fast.post("/insert/a/1").await;
        let cookie = fast.cookie().unwrap();
        let mut slow = Client::new(fast.app().clone());
        slow.set_cookie_value(Some(cookie.clone()));
        let slow = tokio::spawn(async move { slow.post(slow_path).await });
        gate.wait().await;
        Self { mem, fast, cookie, gate, slow }
    }

    /// Lets the slow request write; returns its response and the store.
    async fn finish(self) -> (common::Reply, MemoryStore, String) {
        self.gate.wait().await;
        (self.slow.await.unwrap(), self.mem, self.cookie)
    }
}

#[tokio::test]
async fn a_slow_request_finishing_after_logout_does_not_resurrect_the_session() {
    let mut race = Race::start("/slow/late").await;
    let r = race.fast.post("/flush").await;
    assert!(r.set_cookie().unwrap().contains("Max-Age=0"));
    let (late, mem, cookie) = race.finish().await;
    assert_eq!(late.status, 200);
    assert!(late.set_cookie().is_none(), "the late response leaves the cookie alone");
    assert!(mem.is_empty(), "no record was re-created, under any id");
    assert!(mem.load(&record_id(&cookie)).await.unwrap().is_none());
}

#[tokio::test]
async fn concurrent_requests_changing_different_keys_both_survive() {
    let mut race = Race::start("/slow/from_slow").await;
    race.fast.post("/insert/fast/1").await; // saves version 2 while the slow one holds 1
    let (slow, mem, cookie) = race.finish().await;
    assert_eq!(slow.status, 200);
    let rec = mem.load(&record_id(&cookie)).await.unwrap().unwrap();
    assert_eq!(rec.entries.keys().collect::<Vec<_>>(), ["a", "fast", "from_slow"]);
    assert_eq!(rec.version, 3);
}

#[tokio::test]
async fn a_clear_racing_a_write_of_a_new_key_keeps_the_new_key() {
    let mut race = Race::start("/slow/CLEAR").await; // the clearing request saw only `a`
    race.fast.post("/insert/new/1").await;
    let (cleared, mem, cookie) = race.finish().await;
    assert_eq!(cleared.status, 200);
    assert!(cleared.set_cookie().is_none(), "the session did not end: it still holds `new`");
    let rec = mem.load(&record_id(&cookie)).await.unwrap().unwrap();
    assert_eq!(rec.entries.keys().collect::<Vec<_>>(), ["new"], "`a` cleared, `new` kept");
}

/// Collects everything `tracing` prints.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_no_id_cookie_or_data() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = FaultStore::<MemoryStore>::default();
    let mut c = Client::new(app(SessionLayer::new(store.clone())));
    c.post("/insert/secret-key/secret-value").await;
    let cookie = c.cookie().unwrap();
    // Read with the wrong type: serde's own message would quote the value.
    assert_eq!(c.get("/get-u32-or-fail/secret-key").await.status, 500);
    store.fail(StoreMethod::Load, Failure::outage());
    assert_eq!(c.get("/get/secret-key").await.status, 500);
    store.recover(StoreMethod::Load);
    fail_writes(&store);
    assert_eq!(c.post("/insert/other/secret-value2").await.status, 500);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("session failed"), "errors are logged: {log}");
    assert!(log.contains("connection refused"), "with their cause: {log}");
    assert!(log.contains("secret-key") && log.contains("u32"), "a decode error names key and type: {log}");
    for secret in [cookie.as_str(), "secret-value", &record_id(&cookie).to_string()] {
        assert!(!log.contains(secret), "log leaks {secret}: {log}");
    }
    let _ = store.inner().load(&record_id(&cookie)).await;
}
