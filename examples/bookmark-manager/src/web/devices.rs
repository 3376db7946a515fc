//! The devices page: the user's live sessions, "log out this device", "log out all other
//! devices", and the change-password form.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use session_core::flash::Level;
use session_core::{Session, SessionHandle, StoreError};
use time::OffsetDateTime;

use super::auth::CurrentUser;
use super::error::AppError;
use super::page::{page, Auth, KEY_AUTH};
use super::templates::render;
use crate::AppState;

#[derive(Debug, Serialize)]
struct Device {
    handle: String,
    label: String,
    /// A few characters of the handle (which is not a secret), so two "Chrome on Linux"
    /// rows can be told apart and matched with the same row on another device.
    tag: String,
    /// Exact instants, for the tooltip.
    created: String,
    last_seen: String,
    expires: String,
    /// The same, relative: "3 minutes ago", "in 6 days".
    created_ago: String,
    last_seen_ago: String,
    expires_in: String,
    current: bool,
    /// For sorting: the current device first, then the most recently seen.
    #[serde(skip)]
    seen: OffsetDateTime,
}

/// Whether the manager refused because this mode keeps no session list (cookie mode).
pub(crate) fn unsupported(err: &session_core::Error) -> bool {
    matches!(err, session_core::Error::Store(StoreError::Unsupported(_)))
}

/// `t` relative to `now`: "just now", "3 minutes ago", "in 6 days".
pub(crate) fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (t - now).whole_seconds();
    let n = secs.unsigned_abs();
    if n < 60 {
        return "just now".into();
    }
    // Rounded to the nearest unit: a week less a few seconds is "in 7 days".
    let (count, unit) = match n {
        ..3600 => ((n + 30) / 60, "minute"),
        3600..86_400 => ((n + 1800) / 3600, "hour"),
        _ => ((n + 43_200) / 86_400, "day"),
    };
    let unit = if count == 1 { unit.to_owned() } else { format!("{unit}s") };
    if secs < 0 {
        format!("{count} {unit} ago")
    } else {
        format!("in {count} {unit}")
    }
}

/// `2025-01-31 17:05 UTC`.
pub(crate) fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    CurrentUser { auth, session, csrf, live }: CurrentUser,
) -> Result<Response, AppError> {
    let current = session.handle();
    let (devices, note) = match state.manager.sessions_of(&auth.user_id.to_string()).await {
        Ok(list) => {
            let now = OffsetDateTime::now_utc();
            let mut devices: Vec<Device> = list
                .into_iter()
                .map(|s| {
                    let handle = s.handle.to_string();
                    Device {
                        tag: handle.chars().take(4).collect(),
                        handle,
                        label: s.label.unwrap_or_else(|| "Unnamed device".into()),
                        created: when(s.created_at),
                        last_seen: when(s.last_seen),
                        expires: when(s.expires_at),
                        created_ago: relative(s.created_at, now),
                        last_seen_ago: relative(s.last_seen, now),
                        expires_in: relative(s.expires_at, now),
                        current: Some(s.handle) == current,
                        seen: s.last_seen,
                    }
                })
                .collect();
            devices.sort_by(|a, b| b.current.cmp(&a.current).then(b.seen.cmp(&a.seen)));
            (devices, None)
        }
        Err(err) if unsupported(&err) => (
            Vec::new(),
            Some(
                "In cookie mode each session lives only in its browser's cookie, so the server cannot \
                 list them. \"Log out all other devices\" still works: it ends every login made before it.",
            ),
        ),
        Err(err) => return Err(err.into()),
    };
    let page = page(&session, &csrf, Some(&auth), live).await?;
    let store = state.store.name();
    Ok(render("devices.html", minijinja::context! { page, devices, note, store })?.into_response())
}

/// Logs out one of the user's devices (possibly this one).
pub(crate) async fn revoke(
    State(state): State<AppState>,
    CurrentUser { auth, session, .. }: CurrentUser,
    Path(handle): Path<String>,
) -> Result<Response, AppError> {
    let handle: SessionHandle = handle.parse().map_err(|_| AppError::NotFound)?;
    let mine = match state.manager.sessions_of(&auth.user_id.to_string()).await {
        Ok(list) => list.iter().any(|s| s.handle == handle),
        Err(err) if unsupported(&err) => false,
        Err(err) => return Err(err.into()),
    };
    // Another user's handle, or one that ended meanwhile: the same answer.
    if !mine {
        return Err(AppError::NotFound);
    }
    state.manager.revoke(&handle).await?;
    if session.handle() == Some(handle) {
        // This device: its record is gone, so end the request's session the same way.
        state.hub.close_login(&auth.login);
        session.flush().await?;
        return Ok(Redirect::to("/login").into_response());
    }
    session.flash(Level::Success, "That device is logged out.").await?;
    Ok(Redirect::to("/devices").into_response())
}

/// Logs out every other device of the user, in every session mode.
pub(crate) async fn revoke_others(
    State(state): State<AppState>,
    CurrentUser { auth, session, .. }: CurrentUser,
) -> Result<Response, AppError> {
    let epoch = state.db.bump_epoch(auth.user_id, &auth.login).await?;
    session.insert(KEY_AUTH, &Auth { epoch, ..auth.clone() }).await?;
    let ended = end_other_sessions(&state, &session, &auth).await?;
    let text = match ended {
        Some(1) => "1 other device is logged out.".to_owned(),
        Some(n) => format!("{n} other devices are logged out."),
        None => "Every other login is over.".to_owned(),
    };
    session.flash(Level::Success, text).await?;
    Ok(Redirect::to("/devices").into_response())
}

/// Ends the user's sessions other than `session` once the epoch has moved on: closes their
/// sockets and, with a server-side store, deletes their records (so they vanish from the
/// list at once). Returns how many records were revoked, `None` in cookie mode.
pub(crate) async fn end_other_sessions(
    state: &AppState,
    session: &Session,
    auth: &Auth,
) -> Result<Option<usize>, AppError> {
    state.hub.close_user_except(auth.user_id, &auth.login);
    match state.manager.revoke_user(&auth.user_id.to_string(), session.handle().as_ref()).await {
        Ok(ended) => Ok(Some(ended.len())),
        Err(err) if unsupported(&err) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let at = |secs: i64| relative(now + time::Duration::seconds(secs), now);
        assert_eq!(at(-20), "just now");
        assert_eq!(at(-60), "1 minute ago");
        assert_eq!(at(-3 * 60 - 5), "3 minutes ago");
        assert_eq!(at(-2 * 3600), "2 hours ago");
        assert_eq!(at(-86_400), "1 day ago");
        assert_eq!(at(6 * 86_400 + 10), "in 6 days");
        assert_eq!(at(7 * 86_400 - 5), "in 7 days");
        assert_eq!(at(3600), "in 1 hour");
    }
}
