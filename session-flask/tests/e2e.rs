//! A real Flask app and an axum app on loopback ports, one browser (cookie jar) between
//! them, one `session` cookie: what one writes, the other reads.

mod common;

use std::collections::BTreeMap;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{dict, from_description, Helper};
use serde::{Deserialize, Serialize};
use session_core::{Session, SessionLayer};
use session_flask::{flask_cookie_layer, FlaskValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "e2e-secret";
const OLD_KEY: &str = "e2e-old-secret";

/// A Flask app (flask_helper.py serve) on a free loopback port; stopped on drop.
struct Flask {
    _process: Helper,
    port: u16,
}

impl Flask {
    fn start(secret: &str, fallbacks: &[&str]) -> Self {
        let mut args = vec!["serve", secret];
        args.extend_from_slice(fallbacks);
        let mut process = Helper::spawn(&args);
        let port = process.line().parse().expect("the Flask app prints its port");
        Self { _process: process, port }
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Prefs {
    theme: String,
    langs: Vec<String>,
}

#[derive(Deserialize)]
struct Login {
    id: i64,
    user: String,
}

type Result<T> = std::result::Result<T, session_core::Error>;

async fn whoami(session: Session) -> Result<(StatusCode, String)> {
    let (Some(id), Some(name)) =
        (session.get::<i64>("user_id").await?, session.get::<String>("username").await?)
    else {
        return Ok((StatusCode::UNAUTHORIZED, "not logged in".into()));
    };
    Ok((StatusCode::OK, format!("{id} {name}")))
}

async fn login(session: Session, Query(q): Query<Login>) -> Result<&'static str> {
    session.insert("user_id", q.id).await?;
    session.insert("username", q.user).await?;
    session.set_expiry(Some(session_core::Expiry::OnInactivity(session_flask::DEFAULT_LIFETIME)));
    Ok("ok")
}

async fn set_prefs(session: Session) -> Result<&'static str> {
    let prefs = Prefs { theme: "dark".into(), langs: vec!["en".into(), "fr".into()] };
    session.insert("prefs", prefs).await?;
    session.update::<i64, _>("visits", |n| *n += 1).await?;
    Ok("ok")
}

async fn everything(session: Session) -> Result<Json<BTreeMap<String, String>>> {
    let mut out = BTreeMap::new();
    for key in session.keys().await? {
        let value = session.get::<FlaskValue>(&key).await?.unwrap_or(FlaskValue::Null);
        out.insert(key, value.to_string());
    }
    Ok(Json(out))
}

async fn take_flashes(session: Session) -> Result<Json<Vec<(String, String)>>> {
    Ok(Json(session_flask::take_flashes(&session).await?))
}

async fn add_flash(session: Session) -> Result<&'static str> {
    session_flask::flash(&session, "info", "from Rust").await?;
    Ok("ok")
}

async fn logout(session: Session) -> Result<&'static str> {
    session.clear().await?;
    Ok("ok")
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/login", post(login))
        .route("/prefs", post(set_prefs))
        .route("/everything", get(everything))
        .route("/flashes", get(take_flashes))
        .route("/flash", post(add_flash))
        .route("/logout", post(logout))
        .layer(layer)
}

/// The axum app on a free loopback port.
async fn serve(layer: SessionLayer) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app(layer)).await });
    port
}

struct Response {
    status: u16,
    set_cookie: Vec<String>,
    body: String,
}

/// One browser: a jar holding the `session` cookie, and plain HTTP/1.1 requests.
#[derive(Default)]
struct Browser {
    cookie: Option<String>,
}

impl Browser {
    async fn send(&mut self, method: &str, port: u16, path: &str) -> Response {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let cookie = self.cookie.as_ref().map(|c| format!("Cookie: session={c}\r\n")).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let mut set_cookie = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').unwrap();
            assert!(!name.eq_ignore_ascii_case("transfer-encoding"), "chunked bodies are not parsed here");
            if name.eq_ignore_ascii_case("set-cookie") {
                let value = value.trim().to_owned();
                let (pair, attrs) = value.split_once(';').unwrap_or((&value, ""));
                let (name, v) = pair.split_once('=').unwrap();
                assert_eq!(name, "session");
                let removed = v.is_empty() || attrs.contains("Max-Age=0") || attrs.contains("1970");
                self.cookie = (!removed).then(|| v.to_owned());
                set_cookie.push(value);
            }
        }
        Response { status, set_cookie, body: body.to_owned() }
    }

    async fn get(&mut self, port: u16, path: &str) -> Response {
        self.send("GET", port, path).await
    }

    async fn post(&mut self, port: u16, path: &str) -> Response {
        self.send("POST", port, path).await
    }
}

fn json(r: &Response) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn flask_and_rust_share_one_session() {
    let flask_app = Flask::start(KEY, &[]);
    let flask = flask_app.port;
    let rust = serve(flask_cookie_layer(KEY, [OLD_KEY]).unwrap()).await;
    let mut browser = Browser::default();

    // Nobody is logged in anywhere.
    assert_eq!(browser.get(rust, "/whoami").await.status, 401);
    assert_eq!(browser.get(flask, "/whoami").await.status, 401);

    // Log in on Flask, read the user in Rust, typed.
    assert_eq!(browser.post(flask, "/login?id=42&user=alice").await.status, 200);
    let r = browser.get(rust, "/whoami").await;
    assert_eq!((r.status, r.body.as_str()), (200, "42 alice"));
    assert!(r.set_cookie.is_empty(), "a read re-sends nothing");

    // Flask's flash, shown by Rust and so gone from Flask.
    let r = browser.get(rust, "/flashes").await;
    assert_eq!(r.body, r#"[["success","Logged in"]]"#);
    let [set] = &r.set_cookie[..] else { panic!("taking a flash changes the session") };
    assert!(set.starts_with("session=") && set.contains("HttpOnly") && set.contains("Path=/"));
    assert!(!set.contains("SameSite") && !set.contains("Secure"), "Flask's defaults");
    assert_eq!(json(&browser.get(flask, "/flashes").await)["flashes"], serde_json::json!([]));

    // Values written in Rust, read by Flask with Python types.
    browser.post(rust, "/prefs").await;
    browser.post(rust, "/prefs").await;
    browser.post(rust, "/flash").await;
    let read = json(&browser.get(flask, "/session").await);
    let session = from_description(&read["session"]);
    assert_eq!(session.get("user_id"), Some(&FlaskValue::Int(42)));
    assert_eq!(session.get("visits"), Some(&FlaskValue::Int(2)));
    assert_eq!(
        session.get("prefs"),
        Some(&dict(vec![("theme", "dark".into()), ("langs", FlaskValue::from(vec!["en", "fr"]))]))
    );
    assert_eq!(read["permanent"], false);
    assert_eq!(
        json(&browser.get(flask, "/flashes").await)["flashes"],
        serde_json::json!([["info", "from Rust"]])
    );

    // Flask writes again; Rust still reads everything, including Flask's values.
    browser.post(flask, "/set?key=cart&value=%5B1%2C%202%5D").await;
    let all = json(&browser.get(rust, "/everything").await);
    assert_eq!(all["cart"], "[1, 2]");
    assert_eq!(all["prefs"], r#"{"langs": ["en", "fr"], "theme": "dark"}"#);

    // Log out on Flask: refused in Rust.
    browser.post(flask, "/logout").await;
    assert_eq!(browser.cookie, None, "Flask removed the cookie");
    assert_eq!(browser.get(rust, "/whoami").await.status, 401);

    // Log in on Rust (permanent), read by Flask; log out on Rust, refused by Flask.
    let r = browser.post(rust, "/login?id=7&user=bob").await;
    assert!(r.set_cookie[0].contains("Max-Age="), "a permanent session's cookie outlives the browser");
    assert_eq!(
        json(&browser.get(flask, "/whoami").await),
        serde_json::json!({"user_id": 7, "username": "bob"})
    );
    assert_eq!(json(&browser.get(flask, "/session").await)["permanent"], true);
    browser.post(rust, "/logout").await;
    assert_eq!(browser.cookie, None, "Rust removed the cookie");
    assert_eq!(browser.get(flask, "/whoami").await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn fallback_key_cookies_are_accepted_and_resigned() {
    // Before the rotation Flask signs with the old key; after it, SECRET_KEY is new.
    let (old_app, new_only_app) = (Flask::start(OLD_KEY, &[]), Flask::start(KEY, &[]));
    let (old_flask, new_only_flask) = (old_app.port, new_only_app.port);
    let rust = serve(flask_cookie_layer(KEY, [OLD_KEY]).unwrap()).await;
    let rust_without_fallback = serve(flask_cookie_layer(KEY, [] as [&str; 0]).unwrap()).await;

    let mut browser = Browser::default();
    browser.post(old_flask, "/login?id=42&user=alice").await;
    let old_cookie = browser.cookie.clone().unwrap();
    assert_eq!(browser.get(new_only_flask, "/whoami").await.status, 401, "the old key alone no longer works");
    assert_eq!(browser.get(rust_without_fallback, "/whoami").await.status, 401);

    // Accepted with the fallback, and re-issued on a plain read.
    browser.cookie = Some(old_cookie.clone());
    let r = browser.get(rust, "/whoami").await;
    assert_eq!((r.status, r.body.as_str()), (200, "42 alice"));
    assert_eq!(r.set_cookie.len(), 1, "a fallback-signed cookie is re-signed");
    let new_cookie = browser.cookie.clone().unwrap();
    assert_ne!(new_cookie, old_cookie);

    // The new cookie is signed with the new key: Flask without fallbacks takes it.
    assert_eq!(json(&browser.get(new_only_flask, "/whoami").await)["user_id"], 42);
    assert_eq!(browser.get(rust_without_fallback, "/whoami").await.status, 200);
    let r = browser.get(rust, "/whoami").await;
    assert!(r.set_cookie.is_empty(), "signed with SECRET_KEY now: nothing to re-issue");
}
