//! Sessions per user through the layer: listing, revocation, and events.

mod common;

use std::time::Duration;

use axum::routing::post;
use axum::Router;
use common::Client;
use session_core::testing::{FaultStore, StoreMethod};
use session_core::{
    Error, Key, KeyRing, Session, SessionEvent, SessionHandle, SessionLayer, SessionManager, StoreError,
};
use session_store_memory::MemoryStore;
use tokio::sync::broadcast::Receiver;

fn app(layer: SessionLayer) -> Router {
    common::routes()
        .route(
            "/login/{user}",
            post(|s: Session, axum::extract::Path(user): axum::extract::Path<String>| async move {
                s.insert("theme", "dark").await?;
                s.cycle_id().await?;
                s.set_user(user);
                s.set_label("test browser");
                Ok::<_, Error>("in")
            }),
        )
        .route(
            "/whoami",
            axum::routing::get(|s: Session| async move {
                let user = s.user().await?;
                Ok::<_, Error>(format!("{user:?} {}", s.handle().map(|h| h.to_string()).unwrap_or_default()))
            }),
        )
        .layer(layer)
}

async fn next(rx: &mut Receiver<SessionEvent>) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(1), rx.recv()).await.expect("an event within 1 s").unwrap()
}

fn handle_of(c: &Client) -> SessionHandle {
    let id: session_core::Id = c.cookie().as_deref().unwrap().parse().unwrap();
    SessionHandle::from_record_id(id.record_id())
}

#[tokio::test]
async fn logins_are_listed_and_revocation_ends_them_everywhere() {
    let layer = SessionLayer::new(MemoryStore::default());
    let manager: SessionManager = layer.manager();
    let app = app(layer);
    let mut events = manager.subscribe();
    let (mut laptop, mut phone) = (Client::new(app.clone()), Client::new(app.clone()));
    laptop.post("/login/alice").await;
    phone.post("/login/alice").await;
    // A stored session that cycles its id announces the move.
    let before = handle_of(&phone);
    phone.post("/cycle").await;
    assert_eq!(next(&mut events).await, SessionEvent::Cycled { old: before, new: handle_of(&phone) });

    let list = manager.sessions_of("alice").await.unwrap();
    let mut listed: Vec<_> = list.iter().map(|i| i.handle).collect();
    listed.sort();
    let mut want = vec![handle_of(&laptop), handle_of(&phone)];
    want.sort();
    assert_eq!(listed, want);
    assert!(list.iter().all(|i| i.user == "alice" && i.label.as_deref() == Some("test browser")));
    assert!(laptop.get("/whoami").await.body.starts_with("Some(\"alice\")"));

    // "Log out all other devices" from the laptop.
    let ended = manager.revoke_user("alice", Some(&handle_of(&laptop))).await.unwrap();
    assert_eq!(ended, vec![handle_of(&phone)]);
    assert_eq!(next(&mut events).await, SessionEvent::Revoked { handle: handle_of(&phone) });
    assert_eq!(phone.get("/get/theme").await.body, "none", "the revoked cookie is no session");
    assert_eq!(laptop.get("/get/theme").await.body, "\"dark\"");

    let laptop_handle = handle_of(&laptop);
    laptop.post("/flush").await;
    assert_eq!(next(&mut events).await, SessionEvent::Destroyed { handle: laptop_handle });
    assert!(manager.sessions_of("alice").await.unwrap().is_empty());
}

#[tokio::test]
async fn revoking_one_device_by_handle() {
    let layer = SessionLayer::new(MemoryStore::default());
    let manager = layer.manager();
    let mut c = Client::new(app(layer));
    c.post("/login/bob").await;
    let handle = handle_of(&c);
    let shown = c.get("/whoami").await.body;
    assert!(shown.ends_with(&handle.to_string()), "the handle is what the page can show: {shown}");
    assert!(!shown.contains(c.cookie().as_deref().unwrap()), "never the cookie");
    assert!(manager.revoke(&handle).await.unwrap());
    assert!(!manager.revoke(&handle).await.unwrap());
    assert_eq!(c.get("/get/theme").await.body, "none");
}

#[tokio::test]
async fn stores_without_an_index_and_client_side_sessions_say_so() {
    // A store that implements only the required methods keeps no index.
    let layer = SessionLayer::new(RequiredOnly::default());
    let err = layer.manager().sessions_of("alice").await.unwrap_err();
    assert!(matches!(err, Error::Store(StoreError::Unsupported(_))), "{err:?}");
    let client = SessionLayer::client_side_private(KeyRing::new(Key::generate()));
    let err = client.manager().revoke_user("alice", None).await.unwrap_err();
    assert!(matches!(err, Error::Store(StoreError::Unsupported(_))));
    assert!(err.to_string().contains("store"));
}

/// Forwards the required methods to a memory store; the optional ones keep their defaults.
#[derive(Debug, Default)]
struct RequiredOnly(MemoryStore);

#[async_trait::async_trait]
impl session_core::SessionStore for RequiredOnly {
    async fn create(&self, r: &session_core::Record) -> Result<(), StoreError> {
        self.0.create(r).await
    }
    async fn load(&self, id: &session_core::RecordId) -> Result<Option<session_core::Record>, StoreError> {
        self.0.load(id).await
    }
    async fn apply(&self, patch: &session_core::Patch) -> Result<session_core::Applied, StoreError> {
        self.0.apply(patch).await
    }
    async fn cycle(
        &self,
        patch: &session_core::Patch,
        to: session_core::RecordId,
    ) -> Result<session_core::Applied, StoreError> {
        self.0.cycle(patch, to).await
    }
    async fn delete(&self, id: &session_core::RecordId) -> Result<(), StoreError> {
        self.0.delete(id).await
    }
}

#[tokio::test]
async fn an_in_process_store_is_asked_to_listen_once_and_local_events_still_flow() {
    let store = std::sync::Arc::new(FaultStore::<RequiredOnly>::default());
    let layer = SessionLayer::from_arc(store.clone());
    let manager = layer.manager();
    let mut c = Client::new(app(layer));
    let mut events = manager.subscribe();
    c.post("/login/carol").await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    let _more = (manager.subscribe(), manager.subscribe());
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(store.calls(StoreMethod::Listen), 1, "no listener loop");
    let handle = handle_of(&c);
    c.post("/flush").await;
    assert_eq!(next(&mut events).await, SessionEvent::Destroyed { handle });
}
