//! The live-sync socket over a real connection: it closes with 1008 when its session ends,
//! by logout, by revocation from another device, or by reaching its expiry.

use std::time::Duration;

use bookmark_manager::StoreKind;
use session_core::Expiry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Browser, TestApp};

/// How long a socket may take to notice its session ended.
const WAIT: Duration = Duration::from_secs(10);

/// Serves `app` on a loopback port; returns the address.
async fn serve(app: &TestApp) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Opens `/ws` with `browser`'s cookies, by hand: the handshake, then nothing is sent.
async fn open_socket(addr: std::net::SocketAddr, browser: &Browser) -> TcpStream {
    let (head, stream) = handshake(addr, browser).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Sends the `/ws` handshake with `browser`'s cookies; the answer's head and the stream.
async fn handshake(addr: std::net::SocketAddr, browser: &Browser) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Origin: http://{addr}\r\nCookie: {}\r\n\r\n",
        browser.cookie_header()
    );
    stream.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    (String::from_utf8(head).unwrap(), stream)
}

/// Waits for the server's close frame (server frames are unmasked); its code and reason.
async fn close_frame(stream: &mut TcpStream, after: &str) -> (u16, String) {
    tokio::time::timeout(WAIT, async {
        loop {
            let opcode = stream.read_u8().await.unwrap() & 0x0f;
            let len = usize::from(stream.read_u8().await.unwrap() & 0x7f);
            assert!(len < 126, "only short frames are expected");
            let mut payload = vec![0; len];
            stream.read_exact(&mut payload).await.unwrap();
            if opcode == 0x8 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8(payload[2..].to_vec()).unwrap());
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the socket was not closed after {after}"))
}

#[tokio::test]
async fn sockets_close_with_1008_when_their_session_ends() {
    let app = TestApp::new(StoreKind::Memory).await;
    let addr = serve(&app).await;

    // Logout.
    let mut laptop = app.browser();
    laptop.register("alice", "correct horse").await;
    let mut socket = open_socket(addr, &laptop).await;
    laptop.post("/logout", &[]).await;
    assert_eq!(close_frame(&mut socket, "a logout").await.0, 1008);

    // Revoked from another device.
    let mut phone = app.browser();
    phone.login("alice", "correct horse", false).await;
    let mut socket = open_socket(addr, &phone).await;
    laptop.login("alice", "correct horse", false).await;
    let devices = laptop.get("/devices").await.body;
    let others: Vec<&str> = devices
        .split("action=\"/devices/")
        .skip(1)
        .filter_map(|s| s.split('/').next())
        .filter(|h| h.len() == 64)
        .collect();
    assert_eq!(others.len(), 1, "{devices}");
    let revoke = format!("/devices/{}/logout", others[0]);
    assert_eq!(laptop.post(&revoke, &[]).await.location(), "/devices");
    assert_eq!(close_frame(&mut socket, "a revocation").await, (1008, "session revoked".to_owned()));

    // A password change cycles this device's id: its socket follows the new id and stays.
    let socket = open_socket(addr, &laptop).await;
    let change =
        [("current", "correct horse"), ("password", "battery staple"), ("confirm", "battery staple")];
    laptop.get("/devices").await;
    assert_eq!(laptop.post("/password", &change).await.location(), "/devices");
    let mut byte = [0u8; 1];
    let quiet = tokio::time::timeout(Duration::from_millis(500), socket.peek(&mut byte)).await;
    assert!(quiet.is_err(), "the socket stayed open across the id change");

    // Expiry: the session ends at a fixed instant (set as a test, not by any page), and
    // the socket closes then without any request.
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let expire = |s: session_core::Session| async move {
        s.set_expiry(Some(Expiry::AtDateTime(at)));
        Ok(())
    };
    laptop.client.session(expire).await.unwrap();
    let mut socket = open_socket(addr, &laptop).await;
    assert_eq!(close_frame(&mut socket, "its expiry").await, (1008, "session expired".to_owned()));
    assert!(time::OffsetDateTime::now_utc() >= at);
}

/// A login holds at most six live sockets: the seventh is refused with 429 (the page
/// retries later), another login has its own allowance, and a closed socket frees its place.
#[tokio::test]
async fn a_login_holds_a_few_sockets_at_most() {
    let app = TestApp::new(StoreKind::Memory).await;
    let addr = serve(&app).await;
    let mut laptop = app.browser();
    laptop.register("alice", "correct horse").await;
    let mut open = Vec::new();
    for _ in 0..6 {
        open.push(open_socket(addr, &laptop).await);
    }
    let (head, _) = handshake(addr, &laptop).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 30"), "{head}");
    assert_eq!(app.state.open_sockets(), 6);

    let mut phone = app.browser();
    phone.login("alice", "correct horse", false).await;
    let _phone_socket = open_socket(addr, &phone).await;

    drop(open.pop());
    let freed = tokio::time::timeout(WAIT, async {
        loop {
            let (head, stream) = handshake(addr, &laptop).await;
            if head.starts_with("HTTP/1.1 101") {
                return stream;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    freed.await.expect("a closed socket freed its place");
}

/// The login's own absolute end (12 hours, 30 days remembered), which no session store
/// knows of, closes its sockets without any request, in cookie mode too; so does a logout
/// in cookie mode, where no store hears it.
#[tokio::test]
async fn sockets_close_when_the_login_ends_in_every_mode() {
    for store in [StoreKind::Cookie, StoreKind::Memory] {
        let app = TestApp::new(store).await;
        let addr = serve(&app).await;
        let mut laptop = app.browser();
        laptop.register("alice", "correct horse").await;
        let mut socket = open_socket(addr, &laptop).await;
        laptop.post("/logout", &[]).await;
        assert_eq!(close_frame(&mut socket, "a logout").await.0, 1008, "{store}");

        laptop.login("alice", "correct horse", false).await;
        let at = time::OffsetDateTime::now_utc().unix_timestamp() + 2;
        let end_soon = move |s: session_core::Session| async move {
            let mut t: serde_json::Value = s.get("login_times").await?.expect("login times");
            t["ends_at"] = at.into();
            s.insert("login_times", t).await
        };
        laptop.client.session(end_soon).await.unwrap();
        let mut socket = open_socket(addr, &laptop).await;
        assert_eq!(
            close_frame(&mut socket, "the login's end").await,
            (1008, "session expired".to_owned()),
            "{store}"
        );
        assert!(time::OffsetDateTime::now_utc().unix_timestamp() >= at - 1, "{store}");
    }
}

/// Idle expiry, through the library's binding: a socket does not keep its session alive,
/// and closes when the session has been idle too long (here 2 s), in a server-side store
/// and in cookie mode (where the cookie's own expiry is the end).
#[tokio::test]
async fn sockets_close_on_idle_expiry() {
    for store in [StoreKind::Memory, StoreKind::Cookie] {
        let app = TestApp::new(store).await;
        let addr = serve(&app).await;
        let mut laptop = app.browser();
        laptop.register("alice", "correct horse").await;
        let idle = |s: session_core::Session| async move {
            s.set_expiry(Some(Expiry::OnInactivity(time::Duration::seconds(2))));
            Ok(())
        };
        laptop.client.session(idle).await.unwrap();
        let opened = std::time::Instant::now();
        let mut socket = open_socket(addr, &laptop).await;
        assert_eq!(
            close_frame(&mut socket, "idle expiry").await,
            (1008, "session expired".to_owned()),
            "{store}"
        );
        assert!(opened.elapsed() >= Duration::from_secs(1), "{store}: closed after {:?}", opened.elapsed());
        assert_eq!(laptop.get("/bookmarks").await.location(), "/login?next=%2Fbookmarks", "{store}");
    }
}
