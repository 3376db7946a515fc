//! Session events are signed: whoever can `PUBLISH` on Redis cannot forge one.

mod common;

use std::fmt::{Debug, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{env, event_keys, unique_prefix, wait_for_subscribers};
use session_core::{Id, Key, KeyRing, SessionEvent, SessionHandle, SessionStore};
use session_store_redis::{redis, RedisStore};
use tokio::sync::broadcast;
use tokio::time::timeout;
use tracing::field::{Field, Visit};
use tracing::{span, Event, Level, Metadata, Subscriber};

/// Every warning logged in this test binary, as `field=value` text.
fn warnings() -> &'static Mutex<Vec<String>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::set_global_default(Capture(Arc::clone(&logs))).unwrap();
        logs
    })
}

struct Capture(Arc<Mutex<Vec<String>>>);

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

fn revoked() -> SessionEvent {
    SessionEvent::Revoked { handle: SessionHandle::from_record_id(Id::random().record_id()) }
}

#[tokio::test]
async fn only_events_signed_with_the_shared_keys_are_delivered() {
    let logs = warnings();
    let (url, prefix) = (env("REDIS_URL"), unique_prefix());
    let channel = format!("{prefix}events");
    let store = |keys: KeyRing| {
        let (url, prefix) = (url.clone(), prefix.clone());
        async move { RedisStore::connect(url.as_str()).await.unwrap().with_prefix(prefix).with_event_keys(keys) }
    };
    let listening = store(event_keys()).await;
    let same_keys = store(event_keys()).await;
    let other_keys = store(KeyRing::new(Key::generate())).await;
    let (tx, mut rx) = broadcast::channel(16);
    let listener = tokio::spawn(async move { listening.listen(tx).await });
    wait_for_subscribers(std::slice::from_ref(&url), &channel, 1).await;

    // Forgeries straight onto the channel: the old unsigned format, and the new format with
    // a tag of zeroes.
    let victim = Id::random().record_id();
    let mut old_format = vec![1u8];
    old_format.extend_from_slice(&[9; 16]);
    old_format.push(1);
    old_format.extend_from_slice(victim.as_bytes());
    let mut zero_tag = vec![2u8];
    zero_tag.extend_from_slice(
        &time::OffsetDateTime::now_utc().unix_timestamp().saturating_mul(1000).to_be_bytes(),
    );
    zero_tag.extend_from_slice(&[9; 16]);
    zero_tag.push(1);
    zero_tag.extend_from_slice(victim.as_bytes());
    zero_tag.extend_from_slice(&[0; 32]);
    let mut raw =
        redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    for forged in [&old_format, &zero_tag] {
        let heard: i64 =
            redis::cmd("PUBLISH").arg(&channel).arg(forged.as_slice()).query_async(&mut raw).await.unwrap();
        assert_eq!(heard, 1, "the listener is subscribed");
    }
    // Signed, but with another key.
    other_keys.publish(&revoked()).await.unwrap();
    // Events arrive in order, so the first delivered is the genuine one: nothing before it
    // got through.
    let genuine = revoked();
    same_keys.publish(&genuine).await.unwrap();
    let first = timeout(Duration::from_secs(2), rx.recv()).await.expect("the genuine event within 2 s");
    assert_eq!(first, Ok(genuine));
    assert!(rx.try_recv().is_err(), "a forged event was delivered");

    let logged = logs.lock().unwrap().clone();
    let dropped: Vec<&String> = logged.iter().filter(|l| l.contains("dropped=")).collect();
    assert!(dropped.iter().any(|l| l.contains("dropped=1 ")), "the count was not logged: {logged:?}");
    let hex = victim.to_string();
    for line in &logged {
        assert!(!line.contains(&hex) && !line.contains(&hex[..16]), "a log line names the forged id: {line}");
    }
    drop(rx);
    let _ = timeout(Duration::from_secs(3), listener).await;
}
