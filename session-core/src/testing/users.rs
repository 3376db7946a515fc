//! The per-user index cases, for stores that keep one.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response};
use time::Duration;
use tower_layer::Layer;
use tower_service::Service;

use super::records::{patch_of, record};
use super::FnService;
use crate::{Id, Record, Session, SessionHandle, SessionInfo, SessionLayer, SessionStore};

fn owned(user: &str, ttl: Duration) -> Record {
    let mut r = record(&[("k", b"v")], ttl);
    r.user = Some(user.to_owned());
    r
}

fn handles(list: &[SessionInfo]) -> Vec<SessionHandle> {
    let mut h: Vec<SessionHandle> = list.iter().map(|i| i.handle).collect();
    h.sort();
    h
}

fn handles_of(records: &[&Record]) -> Vec<SessionHandle> {
    let mut h: Vec<SessionHandle> = records.iter().map(|r| SessionHandle::from_record_id(r.id)).collect();
    h.sort();
    h
}

/// A unique user name per case, so stores shared across cases never mix them.
fn user(name: &str) -> String {
    format!("{name}-{}", &Id::random().record_id().to_string()[..12])
}

/// `sessions_of` lists a user's live sessions, with their metadata, and nothing else.
pub async fn sessions_of_lists_exactly_the_live_sessions_of_a_user(store: impl SessionStore) {
    let (alice, bob) = (user("alice"), user("bob"));
    let mut a1 = owned(&alice, Duration::hours(1));
    a1.label = Some("phone".into());
    let a2 = owned(&alice, Duration::hours(2));
    let expired = owned(&alice, -Duration::seconds(1));
    let b1 = owned(&bob, Duration::hours(1));
    let anonymous = record(&[("k", b"v")], Duration::hours(1));
    for r in [&a1, &a2, &expired, &b1, &anonymous] {
        store.create(r).await.unwrap();
    }
    let list = store.sessions_of(&alice).await.unwrap();
    assert_eq!(handles(&list), handles_of(&[&a1, &a2]));
    let info = list.iter().find(|i| i.handle == SessionHandle::from_record_id(a1.id)).unwrap();
    assert_eq!(info.user, alice);
    assert_eq!(info.label.as_deref(), Some("phone"));
    assert!((info.expires_at - a1.expires_at).abs() < Duration::milliseconds(1));
    assert!((info.created_at - a1.created_at).abs() < Duration::milliseconds(1));
    assert_eq!(handles(&store.sessions_of(&bob).await.unwrap()), handles_of(&[&b1]));
    assert!(store.sessions_of(&user("nobody")).await.unwrap().is_empty());
}

/// The index follows saves that set or change the user, and deletes.
pub async fn the_index_follows_user_changes_and_deletes(store: impl SessionStore) {
    let (alice, bob) = (user("alice"), user("bob"));
    let r = record(&[("k", b"v")], Duration::hours(1));
    store.create(&r).await.unwrap();
    assert!(store.sessions_of(&alice).await.unwrap().is_empty());
    let mut to_alice = patch_of(&r);
    to_alice.user = Some(alice.clone());
    store.apply(&to_alice).await.unwrap();
    assert_eq!(handles(&store.sessions_of(&alice).await.unwrap()), handles_of(&[&r]));
    let mut to_bob = patch_of(&r);
    to_bob.user = Some(bob.clone());
    store.apply(&to_bob).await.unwrap();
    assert!(store.sessions_of(&alice).await.unwrap().is_empty(), "moved to bob");
    assert_eq!(handles(&store.sessions_of(&bob).await.unwrap()), handles_of(&[&r]));
    store.delete(&r.id).await.unwrap();
    assert!(store.sessions_of(&bob).await.unwrap().is_empty());
}

/// `revoke_user(user, except)` ends every other session of the user and keeps exactly the
/// exception; a revoked session no longer loads.
pub async fn revoke_user_keeps_exactly_the_exception(store: impl SessionStore) {
    let (alice, bob) = (user("alice"), user("bob"));
    let mine = owned(&alice, Duration::hours(1));
    let others = [owned(&alice, Duration::hours(1)), owned(&alice, Duration::hours(1))];
    let bobs = owned(&bob, Duration::hours(1));
    for r in [&mine, &others[0], &others[1], &bobs] {
        store.create(r).await.unwrap();
    }
    let keep = SessionHandle::from_record_id(mine.id);
    let mut ended = store.revoke_user(&alice, Some(&keep)).await.unwrap();
    ended.sort();
    assert_eq!(ended, handles_of(&[&others[0], &others[1]]));
    assert_eq!(handles(&store.sessions_of(&alice).await.unwrap()), vec![keep]);
    for r in &others {
        assert!(store.load(&r.id).await.unwrap().is_none(), "a revoked session still loads");
    }
    assert!(store.load(&mine.id).await.unwrap().is_some());
    assert!(store.load(&bobs.id).await.unwrap().is_some(), "other users are untouched");
    assert!(store.revoke(&keep).await.unwrap());
    assert!(!store.revoke(&keep).await.unwrap(), "already gone");
    assert!(store.sessions_of(&alice).await.unwrap().is_empty());
}

/// 1,000 users with three sessions each are each listed with exactly their three.
pub async fn a_thousand_users_with_three_sessions_each_are_listed_correctly(store: impl SessionStore) {
    let users: Vec<String> = (0..1000).map(|i| user(&format!("u{i}"))).collect();
    let mut expected = Vec::new();
    for u in &users {
        let rs = [owned(u, Duration::hours(1)), owned(u, Duration::hours(1)), owned(u, Duration::hours(1))];
        for r in &rs {
            store.create(r).await.unwrap();
        }
        expected.push(handles_of(&[&rs[0], &rs[1], &rs[2]]));
    }
    for (u, want) in users.iter().zip(expected) {
        assert_eq!(handles(&store.sessions_of(u).await.unwrap()), want, "{u}");
    }
}

/// Through the layer: login (insert, `cycle_id`, `set_user`) puts the session in the
/// user's list, a later `cycle_id` replaces its handle, `flush` removes it.
pub async fn login_cycle_and_flush_keep_the_index_right(store: impl SessionStore) {
    let store = Arc::new(store);
    let alice = user("alice");
    let name = alice.clone();
    let layer = SessionLayer::from_arc(store.clone()).with_secure(false);
    let svc = layer.layer(FnService(move |req: Request<()>| {
        let name = name.clone();
        async move {
            let session = req.extensions().get::<Session>().cloned().expect("layer");
            match req.uri().path() {
                "/login" => {
                    session.insert("visits", 1u8).await.unwrap();
                    session.cycle_id().await.unwrap();
                    session.set_user(name);
                    session.set_label("test device");
                }
                "/cycle" => session.cycle_id().await.unwrap(),
                "/flush" => session.flush().await.unwrap(),
                _ => {}
            }
            Ok::<_, Infallible>(Response::new(()))
        }
    }));
    let cookie_of = |res: &Response<()>| {
        let set = res.headers().get(SET_COOKIE).expect("a cookie").to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    };
    let handle_of = |pair: &str| {
        let id: Id = pair.split_once('=').unwrap().1.parse().unwrap();
        SessionHandle::from_record_id(id.record_id())
    };
    let call = |path: &str, cookie: Option<&str>| {
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        svc.clone().call(req.body(()).unwrap())
    };
    let first = cookie_of(&call("/login", None).await.unwrap());
    let list = store.sessions_of(&alice).await.unwrap();
    assert_eq!(handles(&list), vec![handle_of(&first)]);
    assert_eq!(list[0].label.as_deref(), Some("test device"));
    let second = cookie_of(&call("/cycle", Some(&first)).await.unwrap());
    assert_ne!(first, second);
    assert_eq!(handles(&store.sessions_of(&alice).await.unwrap()), vec![handle_of(&second)]);
    call("/flush", Some(&second)).await.unwrap();
    assert!(store.sessions_of(&alice).await.unwrap().is_empty());
}
