//! End to end in a real headless Chromium, driven over WebDriver (chromedriver): register,
//! log in, add a bookmark and watch it appear live in a second browser of the same user,
//! the vault's reveal (post/redirect/get, in view, wrapping at phone width), hide, generate
//! and confirm-delete, every main page at desktop and phone width without sideways
//! scrolling, a session ended under a half-typed form (kept and restored after the login),
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

    /// Runs `script` and returns its value.
    async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// The page is no wider than the viewport (no sideways scrolling on a phone).
    async fn assert_no_overflow(&self, what: &str) {
        let v = self.js("return [document.documentElement.scrollWidth, window.innerWidth];").await;
        let (wide, view) = (v[0].as_u64().unwrap(), v[1].as_u64().unwrap());
        assert!(wide <= view, "{what}: the page is {wide} px wide in a {view} px viewport");
    }

    /// Waits until `script` returns true.
    async fn wait_until(&self, script: &str) {
        let deadline = Instant::now() + WAIT;
        while self.js(script).await != serde_json::Value::Bool(true) {
            assert!(Instant::now() < deadline, "waited for: {script}\n{}", self.source().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

    // A secret revealed on the phone stays in place when its vault page updates live:
    // no reload (which would re-send a form, were the page a form's answer), no re-fetch of
    // the secret.
    phone.goto(&base, "/vault").await;
    phone.click(".item-actions form button").await;
    phone.wait_for("s3cret-pin", true).await;
    phone.wait_for_socket().await;
    phone.mark_page().await;
    laptop.goto(&base, "/vault").await;
    laptop.fill("#add-vault input[name=site]", "aaa-live.example").await;
    laptop.fill("#add-vault input[name=secret]", "zz").await;
    laptop.click("#add-vault > button").await;
    laptop.wait_for("Vault item added.", true).await;
    phone.wait_for("aaa-live.example", true).await;
    phone.assert_not_reloaded().await;
    assert!(phone.source().await.contains("s3cret-pin"), "the shown secret stayed");

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

    // The phone is still logged in, half-way through a note; logging out the other devices
    // from a third login closes the phone's socket (1008). Its page says the session ended,
    // keeps what was typed, and goes to the login, which explains and leads back.
    phone.goto(&base, "/notes").await;
    phone.wait_for_socket().await;
    phone.fill("#add-note input[name=title]", "Half-written").await;
    phone.fill("#add-note textarea[name=body]", "typed before the end").await;
    let sockets = state.open_sockets();
    assert!(sockets >= 1, "the phone's socket is open");
    laptop.log_in(&base, "alice", "correct horse").await;
    laptop.goto(&base, "/devices").await;
    laptop.shot("devices").await;
    laptop.click("form[action=\"/devices/others/logout\"] button").await;
    laptop.wait_for("other device", true).await;
    phone.wait_for("Your session has ended", true).await;
    phone.wait_for("<h1>Log in</h1>", true).await;
    let html = phone.source().await;
    assert!(!html.contains("class=\"who\"") && !html.contains("Your notes"), "the phone shows private data");
    assert!(phone.client.current_url().await.unwrap().as_str().ends_with("/login?next=%2Fnotes"));
    phone.wait_until("return !document.querySelector('[data-if-kept]').hidden;").await;
    phone.shot("session-ended-login").await;
    phone.fill("input[name=name]", "alice").await;
    phone.fill("input[name=password]", "correct horse").await;
    phone.click("form.stack button").await;
    phone.wait_for("Welcome back, alice.", true).await;
    assert_eq!(phone.client.current_url().await.unwrap().path(), "/notes");
    phone
        .wait_until("return document.querySelector('#add-note textarea').value === 'typed before the end';")
        .await;
    let title = phone.js("return document.querySelector('#add-note input[name=title]').value;").await;
    assert_eq!(title, "Half-written");

    // A form sent after its session ended (the cookie is gone): refused with an
    // explanation instead of "not sent by this site", and the input survives the login.
    phone.fill("#add-note input[name=title]", "Sent too late").await;
    phone.client.delete_all_cookies().await.unwrap();
    phone.click("#add-note button").await;
    phone.wait_for("Your session ended before this form was sent", true).await;
    phone.wait_until("return !document.querySelector('[data-if-kept]').hidden;").await;
    phone.shot("form-refused").await;
    phone.click("#form-refused a.button").await;
    phone.fill("input[name=name]", "alice").await;
    phone.fill("input[name=password]", "correct horse").await;
    phone.click("form.stack button").await;
    phone.wait_for("Welcome back, alice.", true).await;
    phone
        .wait_until("return document.querySelector('#add-note input[name=title]').value === 'Sent too late';")
        .await;

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
    b.click("#add-vault > button").await;
    b.wait_for("Vault item added.", true).await;
    assert!(!b.source().await.contains("s3cret-pin"), "secrets are hidden until revealed");
    b.click(".item-actions form button").await;
    b.wait_for("s3cret-pin", true).await;
    b.shot("vault-revealed").await;
    // Post/redirect/get: the secret's page is a GET, so "back" never re-sends the form.
    let url = b.client.current_url().await.unwrap();
    assert_eq!((url.path(), url.fragment().is_some()), ("/vault", true), "{url}");
    b.client.back().await.unwrap();
    b.wait_for("Password vault", true).await;
    assert!(!b.source().await.contains("s3cret-pin"), "back shows the secret masked");

    // The generator fills the secret field (and shows it); the field is never kept.
    b.click("[data-generate=new-secret]").await;
    let generated = b.js("return document.getElementById('new-secret').value;").await;
    assert_eq!(generated.as_str().map(str::len), Some(20), "{generated}");

    // More items, one with a long secret, sent from the page (quicker than typing them).
    let add = "const t = document.querySelector('meta[name=csrf-token]').content; \
        for (let i = 0; i < 7; i++) { await fetch('/vault', { method: 'POST', body: new URLSearchParams(\
        { csrf_token: t, site: 'site-' + i + '.example', login: 'me', secret: i == 6 ? 'x'.repeat(600) : 'p' + i }) }); } \
        return true;";
    b.client.execute(&format!("return (async () => {{ {add} }})();"), vec![]).await.unwrap();

    // At phone width: revealing the last item keeps it in view, and the long secret wraps.
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(base, "/vault").await;
    b.wait_for("site-6.example", true).await;
    b.click("#live li.item:last-child .item-actions form button").await;
    b.wait_for("xxxxxxxxxx", true).await;
    b.wait_until(
        "const r = document.getElementById('revealed').getBoundingClientRect(); \
        return window.scrollY > 0 && r.top >= 0 && r.bottom <= window.innerHeight;",
    )
    .await;
    b.assert_no_overflow("phone vault with a 600-character secret").await;
    b.shot("phone-vault-long-secret").await;
    // Hide takes the secret off the page.
    b.click("[data-hide=revealed]").await;
    b.wait_for("xxxxxxxxxx", false).await;
    // Delete asks first, in place.
    b.click("#live li.item:last-child form[data-confirm] button").await;
    b.wait_for("Its secret cannot be recovered", true).await;
    assert!(b.source().await.contains("site-6.example"), "not deleted before the confirmation");
    b.shot("phone-vault-confirm-delete").await;
    b.click("#live li.item:last-child form[data-confirm] button").await;
    b.wait_for("Vault item deleted.", true).await;
    assert!(!b.source().await.contains("site-6.example"));
    b.client.set_window_size(1280, 900).await.unwrap();

    // Live search on the dashboard.
    b.goto(base, "/").await;
    b.fill("#search", "rust bo").await;
    b.wait_for("search-hits", true).await;
    b.wait_for(">Reading list</a>", true).await;
    b.shot("dashboard-search").await;

    // Every main page at desktop and phone width: no sideways scrolling.
    let pages = [
        ("/", "dashboard"),
        ("/bookmarks", "bookmarks"),
        ("/notes", "notes"),
        ("/vault", "vault"),
        ("/devices", "devices"),
        ("/session", "session"),
        ("/demo/global", "demo-global"),
        ("/demo/session", "demo-session"),
        ("/bookmarks/abc/edit", "error-400"),
        ("/logout", "logout"),
    ];
    for (width, height, prefix) in [(1280, 900, ""), (390, 844, "phone-")] {
        b.client.set_window_size(width, height).await.unwrap();
        for (path, name) in pages {
            b.goto(base, path).await;
            b.wait_for("</footer>", true).await;
            b.assert_no_overflow(&format!("{path} at {width} px")).await;
            if prefix.is_empty() || matches!(name, "dashboard" | "vault" | "notes" | "devices" | "error-400")
            {
                b.shot(&format!("{prefix}{name}")).await;
            }
        }
    }
    // Dark theme, chosen in this session.
    b.client.set_window_size(1280, 900).await.unwrap();
    b.goto(base, "/").await;
    b.click("select[name=theme] option[value=dark]").await;
    b.click("form[action=\"/prefs\"] button").await;
    b.wait_for("data-theme=\"dark\"", true).await;
    b.goto(base, "/notes").await;
    b.shot("notes-dark").await;
    // Error pages too: the user's theme and menu.
    b.goto(base, "/nope").await;
    let html = b.source().await;
    assert!(html.contains("data-theme=\"dark\"") && html.contains("class=\"who\""), "{html}");
    b.shot("error-404-dark").await;
}
