//! A real Flask app with Flask-Session 0.8 (tests/flask/app.py) and an axum app with
//! `FlaskSessionStore` on loopback ports, one Redis, one browser (cookie jar) between them,
//! one `session` cookie: what one writes, the other reads, with the same types; a logout on
//! either ends the session for both. Plain and signed (`SESSION_USE_SIGNER`) ids.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_bytes::ByteBuf;
use session_core::Session;
use session_store_redis::flask::{flask_session_layer, FlaskDateTime, FlaskSessionIds, FlaskSessionStore};
use session_store_redis::redis;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET_KEY: &str = "interop-test-key";

/// The venv's Python; scripts/test makes the venv. Missing fails the test, never skips it.
fn flask_python() -> String {
    std::env::var("FLASK_PYTHON").unwrap_or_else(|_| {
        panic!(
            "FLASK_PYTHON not set: run scripts/test, which makes the Flask venv from \
             session-store-redis/tests/flask/requirements.txt and exports FLASK_PYTHON"
        )
    })
}

/// tests/flask/app.py on a free loopback port; killed by its PID on drop.
struct Flask {
    child: Child,
    port: u16,
}

impl Flask {
    fn start(prefix: &str, signed: bool) -> Self {
        let app = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/flask/app.py");
        let mut command = Command::new(flask_python());
        command.arg(app).arg(common::env("REDIS_URL")).arg(prefix);
        if signed {
            command.arg(SECRET_KEY);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the Flask app with FLASK_PYTHON failed: {e}"));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line).expect("reading the Flask app's port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the Flask app did not print its port (see its stderr above)")
        });
        Self { child, port }
    }
}

impl Drop for Flask {
    fn drop(&mut self) {
        // `Child::kill` signals exactly this PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Result<T> = std::result::Result<T, session_core::Error>;

async fn whoami(session: Session) -> Result<(StatusCode, String)> {
    Ok(match session.get::<i64>("user_id").await? {
        Some(id) => (StatusCode::OK, id.to_string()),
        None => (StatusCode::UNAUTHORIZED, "none".into()),
    })
}

/// One value of each kind Rust apps store, for Flask to read.
async fn write(session: Session) -> Result<&'static str> {
    session.insert("count", 7i64).await?;
    session.insert("greeting", "h\u{e9}llo").await?;
    session.insert("ids", vec![1i64, 2, 3]).await?;
    session.insert("raw", ByteBuf::from(vec![0u8, 1, 255])).await?;
    let nested = BTreeMap::from([("a", BTreeMap::from([("b", vec![1i64, 2])]))]);
    session.insert("nested", nested).await?;
    session.insert("at", FlaskDateTime(datetime!(2024-05-17 12:30:45.5 UTC))).await?;
    Ok("ok")
}

/// Reads what Flask's `/typed` stored, each as its Rust type.
async fn typed(session: Session) -> Result<String> {
    let list: Option<(i64, String, Option<i64>, bool)> = session.get("list").await?;
    let map: Option<BTreeMap<String, BTreeMap<String, Vec<i64>>>> = session.get("map").await?;
    Ok(format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        session.get::<i64>("int").await?,
        session.get::<i64>("big").await?,
        session.get::<i64>("neg").await?,
        session.get::<f64>("float").await?,
        session.get::<String>("str").await?,
        session.get::<ByteBuf>("bytes").await?.map(ByteBuf::into_vec),
        list,
        session.get::<Vec<i64>>("tuple").await?,
        map,
        session.get::<FlaskDateTime>("when").await?.map(|t| t.0),
    ))
}

async fn set_one(session: Session) -> Result<&'static str> {
    session.insert("from_rust", 1i64).await?;
    Ok("ok")
}

/// Logs in as an app would: the id changes at login (session fixation).
async fn login(session: Session) -> Result<&'static str> {
    session.insert("user_id", 99i64).await?;
    session.cycle_id().await?;
    Ok("ok")
}

async fn logout(session: Session) -> Result<&'static str> {
    session.flush().await?;
    Ok("ok")
}

/// The axum app, sharing the Flask app's Redis prefix and ids, on a free loopback port.
async fn serve_rust(prefix: &str, signed: bool) -> u16 {
    let store =
        FlaskSessionStore::connect(common::env("REDIS_URL").as_str()).await.unwrap().with_prefix(prefix);
    let ids = if signed { FlaskSessionIds::signed(SECRET_KEY).unwrap() } else { FlaskSessionIds::plain() };
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/write", post(write))
        .route("/typed", get(typed))
        .route("/set_one", post(set_one))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(flask_session_layer(store, ids, time::Duration::hours(1)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

struct Response {
    status: u16,
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
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            assert!(!name.eq_ignore_ascii_case("transfer-encoding"), "chunked bodies are not parsed here");
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let value = value.trim();
            let (pair, attrs) = value.split_once(';').unwrap_or((value, ""));
            let Some(v) = pair.strip_prefix("session=") else { continue };
            let removed = v.is_empty() || attrs.to_ascii_lowercase().contains("max-age=0");
            self.cookie = (!removed).then(|| v.to_owned());
        }
        Response { status, body: body.to_owned() }
    }
}

async fn redis_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(common::env("REDIS_URL").as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The raw record of the browser's session.
async fn record_bytes(prefix: &str, browser: &Browser, signed: bool) -> Option<Vec<u8>> {
    let cookie = browser.cookie.as_deref().expect("a session cookie");
    let sid = if signed { cookie.split('.').next().unwrap() } else { cookie };
    redis::cmd("GET").arg(format!("{prefix}{sid}")).query_async(&mut redis_connection().await).await.unwrap()
}

struct Pair {
    prefix: String,
    flask: Flask,
    rust: u16,
    signed: bool,
}

async fn pair(signed: bool) -> Pair {
    let prefix = common::unique_prefix();
    let flask = Flask::start(&prefix, signed);
    let rust = serve_rust(&prefix, signed).await;
    Pair { prefix, flask, rust, signed }
}

async fn login_on_flask_is_seen_by_rust_typed(signed: bool) {
    let p = pair(signed).await;
    let mut browser = Browser::default();
    assert_eq!(browser.send("GET", p.rust, "/whoami").await.status, 401);
    assert_eq!(browser.send("POST", p.flask.port, "/login/42").await.body, "ok");
    let cookie = browser.cookie.clone().expect("Flask set the session cookie");
    assert_eq!(cookie.len(), if signed { 71 } else { 43 });
    let me = browser.send("GET", p.rust, "/whoami").await;
    assert_eq!((me.status, me.body.as_str()), (200, "42"));
    assert_eq!(browser.cookie.as_ref(), Some(&cookie), "Rust kept Flask's cookie");

    assert_eq!(browser.send("POST", p.flask.port, "/typed").await.body, "ok");
    let typed = browser.send("GET", p.rust, "/typed").await.body;
    assert_eq!(
        typed,
        "Some(42) Some(1099511627776) Some(-7) Some(1.5) Some(\"h\u{e9}\") Some([0, 255]) \
         Some((1, \"two\", None, true)) Some([1, 2]) Some({\"a\": {\"b\": [1, 2]}}) \
         Some(2024-05-17 12:30:45.123456 +00:00:00)"
    );
}

#[tokio::test]
async fn login_on_flask_is_seen_by_rust_typed_plain() {
    login_on_flask_is_seen_by_rust_typed(false).await;
}

#[tokio::test]
async fn login_on_flask_is_seen_by_rust_typed_signed() {
    login_on_flask_is_seen_by_rust_typed(true).await;
}

async fn rust_writes_flask_reads_the_same_python_values(signed: bool) {
    let p = pair(signed).await;
    let mut browser = Browser::default();
    browser.send("POST", p.flask.port, "/login/42").await;
    assert_eq!(browser.send("POST", p.rust, "/write").await.body, "ok");
    let expect = [
        ("user_id", "42"),
        ("name", "'ann'"),
        ("count", "7"),
        ("greeting", "'h\u{e9}llo'"),
        ("ids", "[1, 2, 3]"),
        ("raw", "b'\\x00\\x01\\xff'"),
        ("nested", "{'a': {'b': [1, 2]}}"),
        ("at", "datetime.datetime(2024, 5, 17, 12, 30, 45, 500000, tzinfo=datetime.timezone.utc)"),
    ];
    for (key, repr) in expect {
        assert_eq!(browser.send("GET", p.flask.port, &format!("/get/{key}")).await.body, repr, "{key}");
    }
    // The record's TTL is the lifetime, as Flask-Session sets it (`SET ... EX 3600`).
    let sid = browser.cookie.as_deref().unwrap().split('.').next().unwrap().to_owned();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{}{sid}", p.prefix))
        .query_async(&mut redis_connection().await)
        .await
        .unwrap();
    assert!((3_590_000..=3_600_000).contains(&ttl), "PTTL {ttl}");
    // A session Rust starts (no cookie yet) gets a sid Flask accepts, signed if so set.
    let mut fresh = Browser::default();
    fresh.send("POST", p.rust, "/write").await;
    let cookie = fresh.cookie.clone().expect("Rust set a session cookie");
    assert_eq!(cookie.len(), if p.signed { 71 } else { 43 });
    assert_eq!(fresh.send("GET", p.flask.port, "/get/count").await.body, "7");
    assert_eq!(fresh.cookie, Some(cookie), "Flask kept Rust's session");
}

#[tokio::test]
async fn rust_writes_flask_reads_the_same_python_values_plain() {
    rust_writes_flask_reads_the_same_python_values(false).await;
}

#[tokio::test]
async fn rust_writes_flask_reads_the_same_python_values_signed() {
    rust_writes_flask_reads_the_same_python_values(true).await;
}

async fn logout_on_one_side_is_refused_on_the_other(signed: bool) {
    let p = pair(signed).await;
    // Logout on Flask: the cookie the browser held no longer works on Rust.
    let mut browser = Browser::default();
    browser.send("POST", p.flask.port, "/login/42").await;
    let stolen = browser.cookie.clone();
    assert_eq!(browser.send("GET", p.rust, "/whoami").await.status, 200);
    browser.send("POST", p.flask.port, "/logout").await;
    assert_eq!(browser.cookie, None, "Flask removed the cookie");
    let mut replay = Browser { cookie: stolen };
    assert_eq!(replay.send("GET", p.rust, "/whoami").await.status, 401);

    // Logout on Rust: refused on Flask, even with the old cookie replayed.
    let mut browser = Browser::default();
    browser.send("POST", p.flask.port, "/login/43").await;
    let stolen = browser.cookie.clone();
    assert_eq!(browser.send("POST", p.rust, "/logout").await.body, "ok");
    assert_eq!(browser.cookie, None, "Rust removed the cookie");
    let mut replay = Browser { cookie: stolen };
    assert_eq!(replay.send("GET", p.flask.port, "/get/user_id").await.body, "none");
    assert_eq!(replay.send("GET", p.rust, "/whoami").await.status, 401);
}

#[tokio::test]
async fn logout_on_one_side_is_refused_on_the_other_plain() {
    logout_on_one_side_is_refused_on_the_other(false).await;
}

#[tokio::test]
async fn logout_on_one_side_is_refused_on_the_other_signed() {
    logout_on_one_side_is_refused_on_the_other(true).await;
}

#[tokio::test]
async fn flask_keys_rust_does_not_touch_keep_their_bytes() {
    let p = pair(false).await;
    let mut browser = Browser::default();
    browser.send("POST", p.flask.port, "/login/42").await;
    browser.send("POST", p.flask.port, "/typed").await;
    let before = record_bytes(&p.prefix, &browser, false).await.unwrap();
    browser.send("POST", p.rust, "/set_one").await;
    let after = record_bytes(&p.prefix, &browser, false).await.unwrap();
    // One more pair in the map header (a fixmap below 16), everything Flask wrote byte for
    // byte in its place, then the new key.
    assert_eq!(after[0], before[0] + 1);
    assert_eq!(&after[1..before.len()], &before[1..]);
    assert_eq!(&after[before.len()..], b"\xa9from_rust\x01");
    assert_eq!(browser.send("GET", p.flask.port, "/keys").await.body,
        "['big', 'bytes', 'float', 'from_rust', 'int', 'list', 'map', 'name', 'neg', 'str', 'tuple', 'user_id', 'when']");
}

#[tokio::test]
async fn garbage_and_unknown_sids_are_no_session() {
    let p = pair(true).await;
    let mut browser = Browser::default();
    browser.send("POST", p.flask.port, "/login/42").await;
    let good = browser.cookie.clone().unwrap();
    let (sid, signature) = good.split_once('.').unwrap();
    let unknown = FlaskSessionIds::signed(SECRET_KEY).unwrap();
    let unknown =
        session_core::IdFormat::encode(&unknown, "session", &session_core::IdFormat::generate(&unknown));
    let wrong_key = FlaskSessionIds::signed("another-key").unwrap();
    let forged = session_core::IdFormat::encode(
        &wrong_key,
        "session",
        &session_core::IdFormat::decode(&FlaskSessionIds::plain(), "session", sid).unwrap().0,
    );
    let flipped = format!("{sid}.{}{}", if signature.starts_with('A') { 'B' } else { 'A' }, &signature[1..]);
    for cookie in ["garbage", sid, &unknown, &forged, &flipped, &format!("{good}x"), "\u{1f36a}"] {
        let mut b = Browser { cookie: Some(cookie.to_owned()) };
        let r = b.send("GET", p.rust, "/whoami").await;
        assert_eq!((r.status, r.body.as_str()), (401, "none"));
    }
    // The real one still works.
    assert_eq!(Browser { cookie: Some(good) }.send("GET", p.rust, "/whoami").await.body, "42");
}

#[tokio::test]
async fn a_record_rust_cannot_decode_is_left_alone() {
    let p = pair(false).await;
    let mut browser = Browser::default();
    browser.send("POST", p.flask.port, "/login/42").await;
    let sid = browser.cookie.clone().unwrap();
    let key = format!("{}{sid}", p.prefix);
    let mut con = redis_connection().await;
    // A JSON record (SESSION_SERIALIZATION_FORMAT = "json"), and bytes no one can read.
    for foreign in [&b"{\"user_id\": 42, \"_permanent\": true}"[..], b"\x81\xa7user_id"] {
        let () =
            redis::cmd("SET").arg(&key).arg(foreign).arg("EX").arg(3600).query_async(&mut con).await.unwrap();
        let r = browser.send("GET", p.rust, "/whoami").await;
        assert_eq!(r.status, 401);
        // A write on that request starts a new session under a new id: the old key stays.
        browser.cookie = Some(sid.clone());
        browser.send("POST", p.rust, "/set_one").await;
        assert_ne!(browser.cookie.as_deref(), Some(sid.as_str()));
        let kept: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut con).await.unwrap();
        assert_eq!(kept, foreign);
        browser.cookie = Some(sid.clone());
    }
}

#[tokio::test]
async fn an_id_change_in_rust_leaves_nothing_flask_can_read_at_the_old_sid() {
    let p = pair(true).await;
    let mut browser = Browser::default();
    browser.send("POST", p.flask.port, "/set/theme/dark").await;
    let old = browser.cookie.clone().unwrap();
    let old_record = record_bytes(&p.prefix, &browser, true).await;
    assert!(old_record.is_some());
    assert_eq!(browser.send("POST", p.rust, "/login").await.body, "ok");
    let new = browser.cookie.clone().unwrap();
    assert_ne!(new, old, "the id changed at login");
    assert_eq!(record_bytes(&p.prefix, &Browser { cookie: Some(old.clone()) }, true).await, None);
    assert_eq!(browser.send("GET", p.flask.port, "/get/user_id").await.body, "99");
    assert_eq!(browser.send("GET", p.flask.port, "/get/theme").await.body, "'dark'");
    let mut replay = Browser { cookie: Some(old) };
    assert_eq!(replay.send("GET", p.flask.port, "/get/theme").await.body, "none");
    assert_eq!(replay.send("GET", p.rust, "/whoami").await.status, 401);
}
