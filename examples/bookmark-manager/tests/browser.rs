//! End to end in a real headless Chromium, driven over WebDriver (chromedriver): register,
//! log in, add a bookmark and watch it appear live in a second browser of the same user,
//! log out, and check that "back" and the old cookie show nothing private. Screenshots of
//! the main pages go to `$SCREENSHOT_DIR` (default: the workspace's `target/screenshots`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bookmark_manager::{app, setup, AppState, Options, PasswordCost, StoreKind};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// chromedriver, killed by its PID when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the browser tests need {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver \
             (scripts/test installs them)"
        );
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    /// A new browser with its own fresh profile (its own cookie jar).
    async fn browser(&self) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": CHROMIUM, "args": args }));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session starts");
        Browser { client, _profile: profile }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Browser {
    client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn goto(&self, base: &str, path: &str) {
        self.client.goto(&format!("{base}{path}")).await.unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        let el = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Waits until the page's HTML contains (or, with `present == false`, lacks) `text`.
    async fn wait_for(&self, text: &str, present: bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let html = self.source().await;
            if html.contains(text) == present {
                return;
            }
            assert!(Instant::now() < deadline, "waited for {text:?} (present: {present}) in:\n{html}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_socket(&self) {
        let deadline = Instant::now() + WAIT;
        while self.client.find(Locator::Css("body[data-ws=\"open\"]")).await.is_err() {
            assert!(Instant::now() < deadline, "the live-sync socket did not open");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn log_in(&self, base: &str, name: &str, password: &str) {
        self.goto(base, "/login").await;
        self.fill("input[name=name]", name).await;
        self.fill("input[name=password]", password).await;
        self.click("form.stack button").await;
        self.wait_for(&format!("Hello, {name}"), true).await;
    }

    async fn shot(&self, name: &str) {
        let dir = std::env::var_os("SCREENSHOT_DIR").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
            PathBuf::from,
        );
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), self.client.screenshot().await.unwrap()).unwrap();
    }

    /// A marker that survives only as long as the page is not reloaded.
    async fn mark_page(&self) {
        self.client.execute("window.__notReloaded = true;", vec![]).await.unwrap();
    }

    async fn assert_not_reloaded(&self) {
        let v = self.client.execute("return window.__notReloaded === true;", vec![]).await.unwrap();
        assert_eq!(v, serde_json::Value::Bool(true), "the page was reloaded");
    }
}

async fn serve() -> (String, AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The address the CSRF layer derives its allowed origins from, as `--addr` gives it.
    let opts =
        Options { addr, data_dir: dir.path().join("data"), store: StoreKind::Sqlite, ..Options::default() };
    let state = setup::open(&opts, PasswordCost::Minimal).await.unwrap();
    let base = format!("http://{addr}");
    let router = app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, state, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_stay_in_sync_and_logout_leaves_nothing_behind() {
    let (base, state, _dir) = serve().await;
    let driver = Driver::start().await;
    let laptop = driver.browser().await;
    let phone = driver.browser().await;

    // Register, log out, log in.
    laptop.goto(&base, "/").await;
    laptop.wait_for("Your bookmarks, notes and passwords", true).await;
    laptop.shot("welcome").await;
    laptop.goto(&base, "/register").await;
    laptop.fill("input[name=name]", "alice").await;
    laptop.fill("input[name=password]", "correct horse").await;
    laptop.fill("input[name=confirm]", "correct horse").await;
    laptop.shot("register").await;
    laptop.click("form.stack button").await;
    laptop.wait_for("Your account is ready.", true).await;
    laptop.click("form.logout button").await;
    laptop.wait_for("You are logged out.", true).await;
    laptop.log_in(&base, "alice", "correct horse").await;
    laptop.shot("login-done").await;

    // The same user on a second browser, watching the bookmarks page.
    phone.log_in(&base, "alice", "correct horse").await;
    phone.goto(&base, "/bookmarks").await;
    phone.wait_for_socket().await;
    phone.mark_page().await;

    // Added on the laptop: appears on the phone without a reload.
    laptop.goto(&base, "/bookmarks").await;
    laptop.fill("#add-bookmark input[name=title]", "Tokio tutorial").await;
    laptop.fill("#add-bookmark input[name=url]", "https://tokio.rs/tokio/tutorial").await;
    laptop.fill("#add-bookmark input[name=tags]", "rust async").await;
    laptop.click("#add-bookmark button").await;
    laptop.wait_for("Bookmark added.", true).await;
    laptop.shot("bookmarks").await;
    phone.wait_for("Tokio tutorial", true).await;
    phone.assert_not_reloaded().await;

    // Edited, then deleted, on the laptop: the phone follows.
    laptop.click(".item-actions a.button").await;
    laptop.fill("input[name=title]", "Tokio guide").await;
    laptop.click("form.stack button").await;
    laptop.wait_for("Bookmark saved.", true).await;
    phone.wait_for("Tokio guide", true).await;
    laptop.click(".item-actions form button.danger").await;
    laptop.wait_for("Bookmark deleted.", true).await;
    phone.wait_for("Tokio guide", false).await;
    phone.assert_not_reloaded().await;

    more_pages(&base, &laptop).await;

    // Logout: the back button and the old cookie show nothing private.
    laptop.goto(&base, "/vault").await;
    laptop.wait_for("bank.example", true).await;
    // Chromium keeps the Secure, `__Host-` session cookie on plain http://127.0.0.1.
    let held = laptop.client.get_named_cookie("__Host-bm_session").await.unwrap();
    assert_eq!(held.secure(), Some(true), "{held}");
    let old = held.value().to_owned();
    laptop.click("form.logout button").await;
    laptop.wait_for("You are logged out.", true).await;
    laptop.client.back().await.unwrap();
    laptop.wait_for("Log in", true).await;
    let html = laptop.source().await;
    assert!(!html.contains("bank.example") && !html.contains("class=\"who\""), "back showed:\n{html}");
    laptop.client.delete_all_cookies().await.unwrap();
    // Put back as the app set it: `__Host-` means Secure, Path=/ and no Domain. Through
    // the page, since chromedriver's add-cookie names a Domain, which the prefix forbids
    // (the page's script may set it: the HttpOnly original is gone).
    let script = "document.cookie = '__Host-bm_session=' + arguments[0] + '; Path=/; Secure; SameSite=Lax'";
    laptop.client.execute(script, vec![old.into()]).await.unwrap();
    let replayed = laptop.client.get_named_cookie("__Host-bm_session").await.unwrap();
    assert_eq!(replayed.secure(), Some(true), "{replayed}");
    laptop.goto(&base, "/vault").await;
    let html = laptop.source().await;
    assert!(html.contains("<h1>Log in</h1>") && !html.contains("bank.example"), "old cookie showed:\n{html}");

    // The phone is still logged in; logging out the other devices from a third login
    // closes the phone's socket, and its page notices.
    phone.wait_for("Tokio", false).await;
    let sockets = state.open_sockets();
    assert!(sockets >= 1, "the phone's socket is open");
    laptop.log_in(&base, "alice", "correct horse").await;
    laptop.goto(&base, "/devices").await;
    laptop.shot("devices").await;
    laptop.click("form[action=\"/devices/others/logout\"] button").await;
    laptop.wait_for("other device", true).await;
    phone.wait_for("class=\"who\"", false).await;
    assert!(
        !phone.source().await.contains("Your bookmarks"),
        "the phone shows private data after its logout"
    );

    laptop.client.clone().close().await.unwrap();
    phone.client.clone().close().await.unwrap();
}

/// The other pages, with screenshots (desktop and phone width).
async fn more_pages(base: &str, b: &Browser) {
    b.goto(base, "/notes").await;
    b.fill("input[name=title]", "Reading list").await;
    b.fill("textarea[name=body]", "The Rust Book\nZero To Production").await;
    b.click("form.stack button").await;
    b.wait_for("Note added.", true).await;
    b.shot("notes").await;

    b.goto(base, "/vault").await;
    b.fill("input[name=site]", "bank.example").await;
    b.fill("input[name=login]", "alice").await;
    b.fill("input[name=secret]", "s3cret-pin").await;
    b.click("form.stack button").await;
    b.wait_for("Vault item added.", true).await;
    assert!(!b.source().await.contains("s3cret-pin"), "secrets are hidden until revealed");
    b.click(".item-actions form button").await;
    b.wait_for("s3cret-pin", true).await;
    b.shot("vault-revealed").await;

    // Live search on the dashboard.
    b.goto(base, "/").await;
    b.fill("#search", "rust bo").await;
    b.wait_for("search-hits", true).await;
    b.wait_for(">Reading list</a>", true).await;
    b.shot("dashboard-search").await;

    for (path, name) in
        [("/session", "session"), ("/demo/global", "demo-global"), ("/demo/session", "demo-session")]
    {
        b.goto(base, path).await;
        b.shot(name).await;
    }
    b.client.set_window_size(390, 844).await.unwrap();
    for (path, name) in [("/", "phone-dashboard"), ("/vault", "phone-vault"), ("/notes", "phone-notes")] {
        b.goto(base, path).await;
        b.shot(name).await;
    }
    // Dark theme, chosen in this session.
    b.client.set_window_size(1280, 900).await.unwrap();
    b.goto(base, "/").await;
    b.click("select[name=theme] option[value=dark]").await;
    b.click("form[action=\"/prefs\"] button").await;
    b.wait_for("data-theme=\"dark\"", true).await;
    b.goto(base, "/notes").await;
    b.shot("notes-dark").await;
}
