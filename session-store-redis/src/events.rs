//! Session events between app instances, over Redis pub/sub, signed.
//!
//! A message on `<prefix>events` is one of
//!
//! | bytes     | holds                                                         |
//! |-----------|---------------------------------------------------------------|
//! | 0         | format, 2                                                     |
//! | 1..9      | when it was sent, Unix ms, big-endian                         |
//! | 9..25     | the publishing store's random instance id (it skips its own)  |
//! | 25        | 1 `Revoked`, 2 `Destroyed`, 3 `Cycled`                        |
//! | 26..58    | the record id of the handle (`Cycled`: the old one)           |
//! | 58..90    | `Cycled` only: the new record id                              |
//! | last 32   | HMAC-SHA256 ([`KeyRing::sign`]) of the channel and the rest   |
//!
//! Anyone who can `PUBLISH` could otherwise close any session's sockets or redirect
//! `Cycled` tracking, so a message counts only if its tag verifies under the store's event
//! keys and it was sent within [`FRESH`] of now (a replay inside that window repeats an
//! event that already happened, which changes nothing). Everything else is dropped and
//! counted, in a rate-limited warning that names no id and no payload.
//!
//! The listener holds one RESP3 connection with a push channel (no `futures` stream
//! needed), checks every second whether anyone still listens, pings every 10 s so a silently
//! dead socket is noticed, and reconnects with a doubling back-off (100 ms to 5 s), moving to
//! the next configured node on each attempt.

use std::time::{Duration, Instant};

use redis::{AsyncConnectionConfig, ConnectionInfo, Msg, PushInfo, PushKind, RedisError};
use session_core::{KeyRing, RecordId, SessionEvent, SessionHandle, StoreError};
use tokio::sync::{broadcast, mpsc};

/// A store's random id, so it can skip the messages it published itself.
pub(crate) type Instance = [u8; 16];

const FORMAT: u8 = 2;
const REVOKED: u8 = 1;
const DESTROYED: u8 = 2;
const CYCLED: u8 = 3;
const PREFIX: usize = 1 + 8 + 16 + 1;
const ONE: usize = PREFIX + 32;
const TWO: usize = ONE + 32;
const TAG: usize = session_core::crypto::SIG_LEN;
/// The HMAC's context: no cookie name can contain `/`, so no cookie tag is an event tag.
const CONTEXT: &str = "session-store-redis/events";
/// How far a message's send time may be from the receiver's clock.
const FRESH: Duration = Duration::from_secs(120);
/// Least time between two warnings about dropped messages.
const DROPPED_LOG_EVERY: Duration = Duration::from_secs(10);

/// What `publish` and `listen` answer when the store has no event keys.
pub(crate) const NO_KEYS: &str = "session events between app instances are signed: give the \
     RedisStore the same key ring on every instance with `with_event_keys`";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often an idle listener checks whether its sink still has receivers.
const RECEIVER_CHECK: Duration = Duration::from_secs(1);
/// How often the subscription connection is pinged.
const HEALTH_CHECK: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A subscription that lasted this long was healthy: the next reconnect starts from the
/// shortest back-off again.
const STABLE: Duration = Duration::from_secs(10);

/// The signed message for `event`, sent at `now_ms`, or `None` for an event kind this
/// version does not carry.
pub(crate) fn encode(
    keys: &KeyRing,
    channel: &str,
    instance: &Instance,
    event: &SessionEvent,
    now_ms: i64,
) -> Option<Vec<u8>> {
    let (kind, first, second) = match *event {
        SessionEvent::Revoked { handle } => (REVOKED, handle, None),
        SessionEvent::Destroyed { handle } => (DESTROYED, handle, None),
        SessionEvent::Cycled { old, new } => (CYCLED, old, Some(new)),
        _ => return None,
    };
    let mut out = Vec::with_capacity(TWO + TAG);
    out.push(FORMAT);
    out.extend_from_slice(&now_ms.to_be_bytes());
    out.extend_from_slice(instance);
    out.push(kind);
    out.extend_from_slice(first.record_id().as_bytes());
    if let Some(second) = second {
        out.extend_from_slice(second.record_id().as_bytes());
    }
    let tag = keys.sign(CONTEXT, &signed(channel, &out));
    out.extend_from_slice(&tag);
    Some(out)
}

/// What the tag covers: the channel too, so an event cannot be replayed into another
/// prefix's channel.
fn signed(channel: &str, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(4 + channel.len() + body.len());
    msg.extend_from_slice(&u32::try_from(channel.len()).unwrap_or(u32::MAX).to_be_bytes());
    msg.extend_from_slice(channel.as_bytes());
    msg.extend_from_slice(body);
    msg
}

/// The publisher and event in a message, or `None` if it is not one this version knows,
/// its tag does not verify, or it is not fresh at `now_ms`.
pub(crate) fn decode(
    keys: &KeyRing,
    channel: &str,
    message: &[u8],
    now_ms: i64,
) -> Option<(Instance, SessionEvent)> {
    let body_len = message.len().checked_sub(TAG)?;
    let (body, tag) = message.split_at(body_len);
    if body.len() < PREFIX || body[0] != FORMAT {
        return None;
    }
    keys.verify(CONTEXT, &signed(channel, body), tag)?;
    let sent = i64::from_be_bytes(body[1..9].try_into().ok()?);
    let fresh = i64::try_from(FRESH.as_millis()).unwrap_or(i64::MAX);
    if now_ms.abs_diff(sent) > fresh.unsigned_abs() {
        return None;
    }
    let instance: Instance = body[9..25].try_into().ok()?;
    let handle = |at: usize| {
        let bytes: [u8; 32] = body[at..at + 32].try_into().ok()?;
        Some(SessionHandle::from_record_id(RecordId::from_bytes(bytes)))
    };
    let event = match (body[25], body.len()) {
        (REVOKED, ONE) => SessionEvent::Revoked { handle: handle(PREFIX)? },
        (DESTROYED, ONE) => SessionEvent::Destroyed { handle: handle(PREFIX)? },
        (CYCLED, TWO) => SessionEvent::Cycled { old: handle(PREFIX)?, new: handle(ONE)? },
        _ => return None,
    };
    Some((instance, event))
}

pub(crate) fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// Messages dropped by one listener, and when that was last said.
#[derive(Default)]
struct Dropped {
    count: u64,
    said: Option<Instant>,
}

impl Dropped {
    /// Counts one; warns at the first and then at most every [`DROPPED_LOG_EVERY`], so a
    /// flood of forgeries cannot flood the log.
    fn one(&mut self) {
        self.count += 1;
        if self.said.is_none_or(|at| at.elapsed() >= DROPPED_LOG_EVERY) {
            self.said = Some(Instant::now());
            tracing::warn!(
                dropped = self.count,
                "dropped session event messages that are not signed with this store's event keys, \
                 are stale, or come from an incompatible version; is something else publishing \
                 on the channel, or do the instances' keys differ?"
            );
        }
    }
}

/// Forwards other instances' events on `channel` into `sink` until it has no receivers,
/// reconnecting (round-robin over `nodes`) whenever the subscription fails or drops.
pub(crate) async fn listen(
    nodes: &[ConnectionInfo],
    channel: &str,
    instance: Instance,
    keys: Option<&KeyRing>,
    sink: &broadcast::Sender<SessionEvent>,
) -> Result<(), StoreError> {
    let Some(keys) = keys else {
        // `SessionManager` stops asking on `Unsupported` without a word, so say it here.
        tracing::error!("not listening for session events from other app instances: {NO_KEYS}");
        return Err(StoreError::Unsupported(NO_KEYS));
    };
    if nodes.is_empty() {
        return Err(StoreError::Unsupported(
            "this RedisStore knows no server to subscribe to: build it with `connect`, \
             `connect_cluster`, or call `with_pubsub`",
        ));
    }
    let mut backoff = MIN_BACKOFF;
    let mut dropped = Dropped::default();
    for attempt in 0usize.. {
        if sink.receiver_count() == 0 {
            break;
        }
        let node = &nodes[attempt % nodes.len()];
        match subscription(node, channel, instance, keys, &mut dropped, sink).await {
            Ok(Ended::NoReceivers) => break,
            Ok(Ended::Dropped { lasted }) => {
                tracing::warn!("the session event subscription dropped; reconnecting");
                if lasted >= STABLE {
                    backoff = MIN_BACKOFF;
                }
            }
            Err(err) => tracing::warn!(error = %err, "subscribing to session events failed; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    Ok(())
}

enum Ended {
    NoReceivers,
    Dropped { lasted: Duration },
}

/// One connection's life: `Err` if it never got subscribed.
async fn subscription(
    node: &ConnectionInfo,
    channel: &str,
    instance: Instance,
    keys: &KeyRing,
    rejected: &mut Dropped,
    sink: &broadcast::Sender<SessionEvent>,
) -> Result<Ended, RedisError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PushInfo>();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_push_sender(tx);
    let client = redis::Client::open(node.clone())?;
    let mut con = client.get_multiplexed_async_connection_with_config(&config).await?;
    con.subscribe(channel).await?;
    let since = Instant::now();
    let dropped = || Ok(Ended::Dropped { lasted: since.elapsed() });
    let mut pinged = Instant::now();
    loop {
        match tokio::time::timeout(RECEIVER_CHECK, rx.recv()).await {
            // The connection ended (its push sender is gone or it said so).
            Ok(None) => return dropped(),
            Ok(Some(push)) => match push.kind {
                PushKind::Disconnection | PushKind::Unsubscribe => return dropped(),
                PushKind::Message => {
                    let Some(msg) = Msg::from_push_info(push) else { continue };
                    match decode(keys, channel, msg.get_payload_bytes(), now_ms()) {
                        Some((from, _)) if from == instance => {}
                        Some((_, event)) => {
                            if sink.send(event).is_err() {
                                return Ok(Ended::NoReceivers);
                            }
                        }
                        None => rejected.one(),
                    }
                }
                _ => {}
            },
            Err(_idle) => {}
        }
        if sink.receiver_count() == 0 {
            return Ok(Ended::NoReceivers);
        }
        if pinged.elapsed() >= HEALTH_CHECK {
            if let Err(err) = redis::cmd("PING").query_async::<redis::Value>(&mut con).await {
                tracing::warn!(error = %err, "the session event connection stopped answering");
                return dropped();
            }
            pinged = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::{Id, Key};

    const CHANNEL: &str = "session:events";

    fn handle() -> SessionHandle {
        SessionHandle::from_record_id(Id::random().record_id())
    }

    #[test]
    fn every_event_round_trips_with_its_publisher() {
        let (keys, me, now) = (KeyRing::new(Key::generate()), [7; 16], now_ms());
        for event in [
            SessionEvent::Revoked { handle: handle() },
            SessionEvent::Destroyed { handle: handle() },
            SessionEvent::Cycled { old: handle(), new: handle() },
        ] {
            let bytes = encode(&keys, CHANNEL, &me, &event, now).unwrap();
            let body = if matches!(event, SessionEvent::Cycled { .. }) { TWO } else { ONE };
            assert_eq!(bytes.len(), body + TAG);
            assert_eq!(decode(&keys, CHANNEL, &bytes, now), Some((me, event)));
        }
    }

    #[test]
    fn a_fallback_key_still_verifies() {
        let (old, new) = (Key::generate(), Key::generate());
        let event = SessionEvent::Revoked { handle: handle() };
        let bytes = encode(&KeyRing::new(old.clone()), CHANNEL, &[1; 16], &event, now_ms()).unwrap();
        let rotated = KeyRing::new(new).with_fallback(old);
        assert_eq!(decode(&rotated, CHANNEL, &bytes, now_ms()), Some(([1; 16], event)));
    }

    #[test]
    fn forged_altered_stale_or_malformed_messages_are_dropped() {
        let keys = KeyRing::new(Key::generate());
        let now = now_ms();
        let event = SessionEvent::Cycled { old: handle(), new: handle() };
        let good = encode(&keys, CHANNEL, &[1; 16], &event, now).unwrap();
        assert!(decode(&keys, CHANNEL, &good, now).is_some());
        let other_key = encode(&KeyRing::new(Key::generate()), CHANNEL, &[1; 16], &event, now).unwrap();
        let mut flipped = good.clone();
        flipped[30] ^= 1;
        let mut bad_tag = good.clone();
        *bad_tag.last_mut().unwrap() ^= 1;
        let stale = encode(&keys, CHANNEL, &[1; 16], &event, now - 121_000).unwrap();
        let future = encode(&keys, CHANNEL, &[1; 16], &event, now + 121_000).unwrap();
        let mut unsigned = good[..TWO].to_vec();
        unsigned.extend_from_slice(&[0; TAG]);
        for bad in
            [&good[..good.len() - 1], &b""[..], &other_key, &flipped, &bad_tag, &stale, &future, &unsigned]
        {
            assert_eq!(decode(&keys, CHANNEL, bad, now), None, "{bad:?}");
        }
        // Signed for another prefix's channel.
        assert_eq!(decode(&keys, "other:events", &good, now), None);
        // Within the window either way.
        assert!(decode(
            &keys,
            CHANNEL,
            &encode(&keys, CHANNEL, &[1; 16], &event, now - 119_000).unwrap(),
            now
        )
        .is_some());
    }
}
