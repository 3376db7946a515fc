//! Expiry through the layer with a test clock: idle and absolute timeouts and the refresh
//! throttle are checked by moving time, not by sleeping.

mod common;

use common::{app, record_id, Client};
use session_core::clock::ManualClock;
use session_core::testing::{FaultStore, StoreMethod};
use session_core::{Expiry, SessionLayer, SessionStore};
use session_store_memory::MemoryStore;
use time::Duration;

const IDLE: Duration = Duration::minutes(30);
const ABSOLUTE: Duration = Duration::hours(8);

fn client(clock: &ManualClock) -> (Client, FaultStore<MemoryStore>) {
    let store = FaultStore::new(MemoryStore::default());
    let layer = SessionLayer::new(store.clone())
        .with_expiry(Expiry::OnInactivity(IDLE))
        .with_max_lifetime(ABSOLUTE)
        .with_clock(clock.clone());
    (Client::new(app(layer)), store)
}

#[tokio::test]
async fn idle_sessions_live_while_used_and_end_after_a_silent_window() {
    let clock = ManualClock::starting_now();
    let (mut c, _) = client(&clock);
    c.post("/insert/a/1").await;
    for minutes in [29, 29] {
        clock.advance(Duration::minutes(minutes));
        assert_eq!(c.get("/get/a").await.body, "\"1\"", "used within the window: still there");
    }
    clock.advance(Duration::minutes(31));
    assert_eq!(c.get("/get/a").await.body, "none", "31 silent minutes end it");
}

#[tokio::test]
async fn the_absolute_lifetime_ends_a_busy_session_even_across_a_cycle_id() {
    let clock = ManualClock::starting_now();
    let (mut c, _) = client(&clock);
    c.post("/insert/a/1").await;
    let first = c.cookie();
    for minute in 1..8 * 60 {
        clock.advance(Duration::minutes(1));
        if minute == 7 * 60 {
            assert_eq!(c.post("/cycle").await.status, 200);
            assert_ne!(c.cookie(), first, "the id changed at 7 h");
        }
        // A write every minute: the session is as busy as it gets.
        assert_eq!(c.post(&format!("/insert/m/{minute}")).await.status, 200);
        assert_eq!(c.get("/get/a").await.body, "\"1\"", "alive at minute {minute}");
    }
    clock.advance(Duration::minutes(1));
    assert_eq!(c.get("/get/a").await.body, "none", "8 h after login it is over, cycle_id or not");
}

#[tokio::test]
async fn refreshes_of_a_read_only_session_stay_within_the_throttle() {
    let clock = ManualClock::starting_now();
    let (mut c, store) = client(&clock);
    c.post("/insert/a/1").await;
    let rid = record_id(c.cookie().as_deref().unwrap());
    let entries = store.inner().load(&rid).await.unwrap().unwrap().entries;
    for _ in 0..120 {
        clock.advance(Duration::minutes(1));
        assert_eq!(c.get("/get/a").await.body, "\"1\"");
    }
    // A refresh is due once more than a quarter of the window (7.5 min) has passed: over
    // 120 minutes that is at most 120 / 8 = 15 refreshes, and at least one per 30 minutes.
    let touches = store.calls(StoreMethod::Apply);
    assert!((4..=15).contains(&touches), "{touches} refreshes in 120 read-only requests");
    let now = store.inner().load(&rid).await.unwrap().unwrap().entries;
    assert_eq!(now, entries, "a refresh never writes a key");
}
