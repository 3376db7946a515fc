//! `/session`: what the server knows about this browser's session, without its secrets.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use session_core::csrf::CsrfToken;
use session_core::flash::{Flash, FLASH_KEY};
use session_core::{Expiry, Session};

use super::auth::current;
use super::devices::when;
use super::error::AppError;
use super::page::{page, LoginTimes, Prefs, KEY_AUTH, KEY_DEMO, KEY_LOGIN_TIMES, KEY_PREFS};
use super::templates::render;
use crate::{AppState, StoreKind};

#[derive(Debug, Serialize)]
struct Entry {
    key: String,
    value: String,
}

fn describe_expiry(expiry: Option<Expiry>) -> String {
    match expiry {
        None | Some(Expiry::BrowserSession) => {
            "Browser session: the cookie has no Max-Age and ends when the browser closes; the server \
             forgets the session after 7 days without use."
                .into()
        }
        Some(Expiry::OnInactivity(d)) => {
            format!("Remembered: ends after {} days without use (\"remember me\").", d.whole_days())
        }
        Some(Expiry::AtDateTime(t)) => format!("Ends at {}.", when(t)),
    }
}

/// A Unix time as the pages show instants.
fn at(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix).map_or_else(|_| unix.to_string(), when)
}

fn describe_store(store: StoreKind) -> &'static str {
    match store {
        StoreKind::Memory => "memory: in this server process, gone on restart",
        StoreKind::File => "file: one file per session in the data dir",
        StoreKind::Sqlite => "sqlite: the sessions.db file in the data dir",
        StoreKind::Postgres => "postgres: a PostgreSQL table",
        StoreKind::Redis => "redis: keys with native expiry",
        StoreKind::Cookie => "cookie: no store, the whole session travels in the cookie",
    }
}

/// A key's value when it is safe to show; secrets are only named.
async fn shown(session: &Session, key: &str) -> Result<String, AppError> {
    Ok(match key {
        KEY_AUTH => "(the logged-in user and login id: not shown)".into(),
        KEY_LOGIN_TIMES => match session.get::<LoginTimes>(key).await? {
            Some(t) => {
                format!("login ends {}; password last given {}", at(t.ends_at), at(t.authenticated_at))
            }
            None => "(none)".into(),
        },
        // session-core's own keys for CSRF: only in cookie mode, or when a session began
        // beside the cookie of a visitor's form.
        key if key.starts_with("session_core.csrf") => "(a CSRF secret: not shown)".into(),
        KEY_PREFS => {
            let p: Prefs = session.get(key).await?.unwrap_or_default();
            format!("theme {}, {} items per page", p.theme, p.per_page)
        }
        FLASH_KEY => {
            let list: Vec<Flash> = session.get(key).await?.unwrap_or_default();
            format!("{} message(s) waiting", list.len())
        }
        KEY_DEMO => {
            let list: Vec<String> = session.get(key).await?.unwrap_or_default();
            format!("{} entries: {}", list.len(), list.join(", "))
        }
        _ => "(not shown)".into(),
    })
}

pub(crate) async fn show(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
) -> Result<Response, AppError> {
    let auth = current(&session, &state).await?;
    // Rendered first: it takes the flash messages, so the key list below shows what the
    // session holds once this page is served.
    let page = page(&session, &csrf, auth.as_ref(), false).await?;
    let mut entries = Vec::new();
    for key in session.keys().await? {
        let value = shown(&session, &key).await?;
        entries.push(Entry { key, value });
    }
    let expiry = describe_expiry(session.expiry());
    // The instant the login ends at the latest, however active: 12 hours after it, or
    // 30 days remembered (and never after the layer's cap from the session's creation).
    let ends = session.get::<LoginTimes>(KEY_LOGIN_TIMES).await?.map(|t| at(t.ends_at));
    let cookie_mode = if state.store == StoreKind::Cookie {
        "Client-side: the whole session is sealed with AES-256-GCM in the cookie; the server keeps nothing."
    } else {
        "Server-side: the cookie carries only a random id, signed with HMAC-SHA256; the data stays on the server."
    };
    // Timestamps the store keeps, listed from the user index when there is one.
    let mut times = None;
    if let (Some(auth), Some(handle)) = (&auth, session.handle()) {
        if let Ok(list) = state.manager.sessions_of(&auth.user_id.to_string()).await {
            times = list.into_iter().find(|s| s.handle == handle).map(|s| {
                minijinja::context! {
                    created => when(s.created_at), last_seen => when(s.last_seen), expires => when(s.expires_at),
                }
            });
        }
    }
    let ctx = minijinja::context! {
        page, entries, expiry, times, cookie_mode, ends,
        store => describe_store(state.store),
        cookie_name => state.cookie_name,
        secure => state.cookie_name != crate::setup::INSECURE_COOKIE_NAME,
        max_days => crate::web::MAX_SESSION_LIFETIME.whole_days(),
        // Only this user's sockets: how many others are open is none of a visitor's business.
        sockets => auth.as_ref().map(|a| {
            let (this, all) = state.hub.count_for(a.user_id, &a.login);
            minijinja::context! { this, all }
        }),
    };
    Ok(render("session.html", ctx)?.into_response())
}
