//! Session events between app instances, over Redis pub/sub.
//!
//! A message on `<prefix>events` is one of
//!
//! | bytes   | holds                                                           |
//! |---------|-----------------------------------------------------------------|
//! | 0       | format, 1                                                       |
//! | 1..17   | the publishing store's random instance id (it skips its own)    |
//! | 17      | 1 `Revoked`, 2 `Destroyed`, 3 `Cycled`                          |
//! | 18..50  | the record id of the handle (`Cycled`: the old one)             |
//! | 50..82  | `Cycled` only: the new record id                                |
//!
//! Anything else (another format, a longer or shorter message) is ignored, so a newer
//! instance can add kinds without older ones misreading them.
//!
//! The listener holds one RESP3 connection with a push channel (no `futures` stream
//! needed), checks every second whether anyone still listens, pings every 10 s so a silently
//! dead socket is noticed, and reconnects with a doubling back-off (100 ms to 5 s), moving to
//! the next configured node on each attempt.

use std::time::{Duration, Instant};

use redis::{AsyncConnectionConfig, ConnectionInfo, Msg, PushInfo, PushKind, RedisError};
use session_core::{RecordId, SessionEvent, SessionHandle, StoreError};
use tokio::sync::{broadcast, mpsc};

/// A store's random id, so it can skip the messages it published itself.
pub(crate) type Instance = [u8; 16];

const FORMAT: u8 = 1;
const REVOKED: u8 = 1;
const DESTROYED: u8 = 2;
const CYCLED: u8 = 3;
const PREFIX: usize = 1 + 16 + 1;
const ONE: usize = PREFIX + 32;
const TWO: usize = ONE + 32;

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

/// The message for `event`, or `None` for an event kind this version does not carry.
pub(crate) fn encode(instance: &Instance, event: &SessionEvent) -> Option<Vec<u8>> {
    let (tag, first, second) = match *event {
        SessionEvent::Revoked { handle } => (REVOKED, handle, None),
        SessionEvent::Destroyed { handle } => (DESTROYED, handle, None),
        SessionEvent::Cycled { old, new } => (CYCLED, old, Some(new)),
        _ => return None,
    };
    let mut out = Vec::with_capacity(TWO);
    out.push(FORMAT);
    out.extend_from_slice(instance);
    out.push(tag);
    out.extend_from_slice(first.record_id().as_bytes());
    if let Some(second) = second {
        out.extend_from_slice(second.record_id().as_bytes());
    }
    Some(out)
}

/// The publisher and event in a message, or `None` if it is not one this version knows.
pub(crate) fn decode(message: &[u8]) -> Option<(Instance, SessionEvent)> {
    if message.len() < PREFIX || message[0] != FORMAT {
        return None;
    }
    let instance: Instance = message[1..17].try_into().ok()?;
    let handle = |at: usize| {
        let bytes: [u8; 32] = message[at..at + 32].try_into().ok()?;
        Some(SessionHandle::from_record_id(RecordId::from_bytes(bytes)))
    };
    let event = match (message[17], message.len()) {
        (REVOKED, ONE) => SessionEvent::Revoked { handle: handle(PREFIX)? },
        (DESTROYED, ONE) => SessionEvent::Destroyed { handle: handle(PREFIX)? },
        (CYCLED, TWO) => SessionEvent::Cycled { old: handle(PREFIX)?, new: handle(ONE)? },
        _ => return None,
    };
    Some((instance, event))
}

/// Forwards other instances' events on `channel` into `sink` until it has no receivers,
/// reconnecting (round-robin over `nodes`) whenever the subscription fails or drops.
pub(crate) async fn listen(
    nodes: &[ConnectionInfo],
    channel: &str,
    instance: Instance,
    sink: &broadcast::Sender<SessionEvent>,
) -> Result<(), StoreError> {
    if nodes.is_empty() {
        return Err(StoreError::Unsupported(
            "this RedisStore knows no server to subscribe to: build it with `connect`, \
             `connect_cluster`, or call `with_pubsub`",
        ));
    }
    let mut backoff = MIN_BACKOFF;
    for attempt in 0usize.. {
        if sink.receiver_count() == 0 {
            break;
        }
        let node = &nodes[attempt % nodes.len()];
        match subscription(node, channel, instance, sink).await {
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
                    match decode(msg.get_payload_bytes()) {
                        Some((from, _)) if from == instance => {}
                        Some((_, event)) => {
                            if sink.send(event).is_err() {
                                return Ok(Ended::NoReceivers);
                            }
                        }
                        None => tracing::debug!("ignoring an unknown session event message"),
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
    use session_core::Id;

    fn handle() -> SessionHandle {
        SessionHandle::from_record_id(Id::random().record_id())
    }

    #[test]
    fn every_event_round_trips_with_its_publisher() {
        let me = [7; 16];
        for event in [
            SessionEvent::Revoked { handle: handle() },
            SessionEvent::Destroyed { handle: handle() },
            SessionEvent::Cycled { old: handle(), new: handle() },
        ] {
            let bytes = encode(&me, &event).unwrap();
            assert_eq!(bytes.len(), if matches!(event, SessionEvent::Cycled { .. }) { TWO } else { ONE });
            assert_eq!(decode(&bytes), Some((me, event)));
        }
    }

    #[test]
    fn unknown_or_malformed_messages_are_ignored() {
        let good = encode(&[1; 16], &SessionEvent::Revoked { handle: handle() }).unwrap();
        let mut other_format = good.clone();
        other_format[0] = 2;
        let mut other_kind = good.clone();
        other_kind[17] = 9;
        let mut cycled_too_short = good.clone();
        cycled_too_short[17] = CYCLED;
        let mut too_long = good.clone();
        too_long.push(0);
        for bad in
            [&b""[..], b"\x01", &good[..ONE - 1], &other_format, &other_kind, &cycled_too_short, &too_long]
        {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
