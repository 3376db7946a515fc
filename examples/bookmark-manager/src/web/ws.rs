//! `/ws`: the live-sync socket. The upgrade is authenticated by the session cookie (no
//! login, or a dead session: 401) and refused from other origins; the socket then gets the
//! user's change events until its session ends: flushed (logout), revoked, expired (idle or
//! absolute timeout), which `Session::ended` reports, its login ended by the app (the
//! hub's close, which also covers cookie mode), or the login's own absolute end
//! ([`LoginTimes`]) passed. Either way it closes with 1008. A login holds at most
//! [`SOCKETS_PER_LOGIN`](crate::hub::SOCKETS_PER_LOGIN) sockets; the next is refused with 429.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use session_core::{EndReason, Session, SessionManager};
use tokio::sync::mpsc;

use super::auth::current;
use super::error::AppError;
use super::page::{LoginTimes, KEY_LOGIN_TIMES};
use crate::hub::{Msg, Registration};
use crate::AppState;

/// Close code for "your session ended": 1008, policy violation (the page script reloads,
/// which shows the login page).
const SESSION_ENDED: u16 = 1008;

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    if !same_origin(&headers) {
        return Ok((StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response());
    }
    let Some(auth) = current(&session, &state).await? else {
        return Ok((StatusCode::UNAUTHORIZED, "log in first").into_response());
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let times = session.get::<LoginTimes>(KEY_LOGIN_TIMES).await?;
    let Some((registration, rx)) = state.hub.register(auth.user_id, auth.login) else {
        let msg = "too many live sockets for this login; close a tab";
        return Ok((StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "30")], msg).into_response());
    };
    // Watched from now on, so no end between this answer and the socket's start is missed.
    let ended = follow(session.ended(), state.manager.clone());
    // The login's own end, which no store knows of: the socket ends then too.
    let ended = until_login_ends(ended, times);
    Ok(upgrade.on_upgrade(move |socket| run(socket, registration, rx, ended)))
}

/// Resolves when the session that `ended` watches is over. An id change (a password
/// change cycles it) is not an end: the watch moves on to the new id.
async fn follow(ended: impl std::future::Future<Output = EndReason>, manager: SessionManager) -> EndReason {
    let mut reason = ended.await;
    while let EndReason::Cycled { new } = reason {
        reason = manager.ended(new).await;
    }
    reason
}

/// `ended`, or [`EndReason::Expired`] when the login's absolute end (if it has one)
/// comes first.
async fn until_login_ends(
    ended: impl std::future::Future<Output = EndReason>,
    times: Option<LoginTimes>,
) -> EndReason {
    let Some(times) = times else { return ended.await };
    let left = times.ends_at.saturating_sub(time::OffsetDateTime::now_utc().unix_timestamp());
    let left = std::time::Duration::from_secs(u64::try_from(left).unwrap_or(0));
    tokio::select! {
        reason = ended => reason,
        () = tokio::time::sleep(left) => EndReason::Expired,
    }
}

/// Browsers always send Origin on WebSocket handshakes; a page of another site must not
/// ride this user's cookie into the socket.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Not a browser (tests, tools): the cookie check still applies.
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    host.is_some() && origin_host == host
}

async fn run(
    mut socket: WebSocket,
    _registration: Registration,
    mut rx: mpsc::Receiver<Msg>,
    ended: impl std::future::Future<Output = EndReason>,
) {
    tokio::pin!(ended);
    loop {
        tokio::select! {
            reason = &mut ended => {
                let frame = CloseFrame { code: SESSION_ENDED, reason: format!("session {reason}").into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                break;
            }
            msg = rx.recv() => match msg {
                Some(Msg::Event(json)) => {
                    if socket.send(Message::Text(json.into())).await.is_err() {
                        break;
                    }
                }
                Some(Msg::Close) => {
                    let frame = CloseFrame { code: SESSION_ENDED, reason: "session ended".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    break;
                }
                // Dropped by the hub (queue full): the page reconnects and reloads.
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                // Pings are answered by the library; the page sends nothing else.
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h));
        h.insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
        h.insert(header::ORIGIN, "http://127.0.0.1:3000".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
