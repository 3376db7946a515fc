//! The Flask layer in memory, through session-core's test client: typed access, the
//! cookie size rule, permanence, and `session_transaction()`'s counterpart.

use axum::routing::{get, post};
use axum::Router;
use session_core::test_client::TestClient;
use session_core::{Error, Expiry, Session, SessionLayer};
use session_flask::{flask_cookie_layer, FlaskSerializer, FlaskValue, SecretKey};
use time::OffsetDateTime;

const KEY: &str = "layer-test-key";

async fn whoami(session: Session) -> Result<String, Error> {
    Ok(session.get::<i64>("user_id").await?.map_or_else(|| "nobody".into(), |id| id.to_string()))
}

/// 5000 characters zlib cannot shrink to fit in a cookie.
fn noise() -> String {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'0' + (x % 64) as u8)
        })
        .collect()
}

async fn big(session: Session) -> String {
    let compressible = session.insert("zeros", "0".repeat(5000)).await.is_ok();
    let before = session.keys().await.unwrap();
    let refused =
        matches!(session.insert("noise", noise()).await, Err(Error::CookieTooLarge { limit: 4096, .. }));
    let unchanged = session.keys().await.unwrap() == before;
    format!("{compressible} {refused} {unchanged}")
}

fn client(layer: &SessionLayer) -> TestClient<Router> {
    let app = Router::new().route("/whoami", get(whoami)).route("/big", post(big)).layer(layer.clone());
    TestClient::new(app).with_session_layer(layer)
}

fn flask_reads(client: &TestClient<Router>) -> FlaskValue {
    let cookie = client.jar().get("session").expect("a session cookie").to_owned();
    let s = FlaskSerializer::new(SecretKey::new(KEY).unwrap());
    s.loads(&cookie, OffsetDateTime::now_utc()).expect("a cookie Flask accepts").value
}

#[tokio::test]
async fn test_client_session_is_session_transaction() {
    let layer = flask_cookie_layer(KEY, [] as [&str; 0]).unwrap();
    let c = client(&layer);
    assert_eq!(c.get("/whoami").await.text(), "nobody");
    c.session(|s| async move { s.insert("user_id", 42).await }).await.unwrap();
    assert_eq!(c.get("/whoami").await.text(), "42");
    assert_eq!(flask_reads(&c).get("user_id"), Some(&FlaskValue::Int(42)));
}

#[tokio::test]
async fn too_large_inserts_are_refused_and_change_nothing() {
    let layer = flask_cookie_layer(KEY, [] as [&str; 0]).unwrap();
    let c = client(&layer);
    c.session(|s| async move { s.insert("user_id", 1).await }).await.unwrap();
    // Compressible data fits, as in Flask; noise of the same length does not.
    assert_eq!(c.post("/big", "").await.text(), "true true true");
    let session = flask_reads(&c);
    assert_eq!(session.get("zeros").and_then(FlaskValue::as_str).map(str::len), Some(5000));
    assert_eq!(session.get("noise"), None);
    let result = c.session(|s| async move { s.insert("noise", noise()).await }).await;
    assert!(matches!(result, Err(Error::CookieTooLarge { .. })), "{result:?}");
    assert_eq!(c.get("/whoami").await.text(), "1");
}

#[tokio::test]
async fn permanent_sessions_are_flask_permanent() {
    let layer = flask_cookie_layer(KEY, [] as [&str; 0]).unwrap();
    let c = client(&layer);
    c.session(|s| async move {
        s.set_expiry(Some(Expiry::OnInactivity(session_flask::DEFAULT_LIFETIME)));
        s.insert("user_id", 5).await
    })
    .await
    .unwrap();
    assert_eq!(flask_reads(&c).get("_permanent"), Some(&FlaskValue::Bool(true)));
    let expiry = c.session(|s| async move { s.get::<bool>("x").await.map(|_| s.expiry()) }).await.unwrap();
    assert_eq!(expiry, Some(Expiry::OnInactivity(session_flask::DEFAULT_LIFETIME)));
}
