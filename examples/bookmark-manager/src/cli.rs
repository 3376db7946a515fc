//! Command-line flags.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// Where sessions are kept (`--session-store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process; lost on restart.
    Memory,
    /// One file per session under the data dir.
    File,
    /// An SQLite database under the data dir (the default).
    Sqlite,
    /// PostgreSQL at `--postgres-url`.
    Postgres,
    /// Redis at `--redis-url`.
    Redis,
    /// No store: the whole session sealed (AES-256-GCM) in the cookie.
    Cookie,
}

impl StoreKind {
    /// Every kind, in the order the usage text lists them.
    pub const ALL: [StoreKind; 6] = [
        StoreKind::Memory,
        StoreKind::File,
        StoreKind::Sqlite,
        StoreKind::Postgres,
        StoreKind::Redis,
        StoreKind::Cookie,
    ];

    /// The flag value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::File => "file",
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
            StoreKind::Redis => "redis",
            StoreKind::Cookie => "cookie",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            format!("unknown session store `{s}` (expected memory, file, sqlite, postgres, redis or cookie)")
        })
    }
}

/// The server's settings. `Debug` hides the passwords of the database URLs.
#[derive(Clone)]
pub struct Options {
    /// Where to listen (`--addr`, default 127.0.0.1:3000).
    pub addr: SocketAddr,
    /// Where the app keeps its database and keys (`--data-dir`).
    pub data_dir: PathBuf,
    /// Where sessions live (`--session-store`).
    pub store: StoreKind,
    /// For `--session-store postgres`.
    pub postgres_url: Option<String>,
    /// For `--session-store redis`.
    pub redis_url: Option<String>,
    /// Public origins the app is also served from (`--origin`, repeatable), e.g. behind a
    /// proxy: `https://bookmarks.example`. Normalized to `scheme://host[:port]`.
    pub origins: Vec<String>,
    /// `--insecure-cookies`: cookies without Secure (and so without the `__Host-` prefix),
    /// for plain HTTP on an address other than localhost or 127.0.0.1. Anyone on the
    /// network path can then read and replay the session cookie.
    pub insecure_cookies: bool,
    /// Take the client address (for login throttling) from the last `X-Forwarded-For`
    /// entry (`--trust-proxy`): only behind a proxy that sets that header.
    pub trust_proxy: bool,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("store", &self.store)
            .field("postgres_url", &self.postgres_url.as_deref().map(without_password))
            .field("redis_url", &self.redis_url.as_deref().map(without_password))
            .field("origins", &self.origins)
            .field("insecure_cookies", &self.insecure_cookies)
            .field("trust_proxy", &self.trust_proxy)
            .finish()
    }
}

/// `url` with its password (if any) replaced; a URL that does not parse is not shown at
/// all, as it might hold one anywhere.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("redacted")).is_err() {
                return "<redacted>".to_owned();
            }
            parsed.to_string()
        }
        Err(_) => "<redacted>".to_owned(),
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            addr: ([127, 0, 0, 1], 3000).into(),
            data_dir: PathBuf::from("./bookmark-manager-data"),
            store: StoreKind::Sqlite,
            postgres_url: None,
            redis_url: None,
            origins: Vec::new(),
            insecure_cookies: false,
            trust_proxy: false,
        }
    }
}

/// The usage text printed for `--help` and after a bad flag.
pub const USAGE: &str = "usage: bookmark-manager [--addr HOST:PORT] [--data-dir DIR]
       [--session-store memory|file|sqlite|postgres|redis|cookie]
       [--postgres-url URL] [--redis-url URL] [--origin URL]... [--insecure-cookies]
       [--trust-proxy]

Forms are accepted from http://HOST:PORT of --addr (and http://localhost:PORT when HOST is
a loopback or unspecified address); add each other origin the app is reached at, such as
a proxy's https://bookmarks.example, with --origin. Behind a proxy that sets
X-Forwarded-For, --trust-proxy counts failed logins per address from that header (by
default the address is the connection's).

Cookies are Secure and named __Host-bm_session and __Host-bm_csrf by default. Browsers
accept them over https:// and over plain http:// on localhost and 127.0.0.1, so the
defaults are right both locally and behind a TLS proxy. --insecure-cookies drops Secure
(names bm_session and bm_csrf) for plain http:// on any other address: anyone on the
network path can then read and replay the session cookie. Never use it on the internet.";

impl Options {
    /// Parses flags (without the program name). `Ok(None)` means `--help` was asked for.
    ///
    /// # Errors
    ///
    /// A message naming the bad flag or value.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Self>, String> {
        let mut opts = Options::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Ok(None);
            }
            if flag == "--insecure-cookies" {
                opts.insecure_cookies = true;
                continue;
            }
            if flag == "--trust-proxy" {
                opts.trust_proxy = true;
                continue;
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--addr" => opts.addr = value.parse().map_err(|e| format!("--addr {value}: {e}"))?,
                "--data-dir" => opts.data_dir = PathBuf::from(value),
                "--session-store" => opts.store = value.parse()?,
                "--postgres-url" => opts.postgres_url = Some(value),
                "--redis-url" => opts.redis_url = Some(value),
                "--origin" => opts.origins.push(origin(&value)?),
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(Some(opts))
    }

    /// The origins browsers send when they show the app's pages: the one of `--addr`
    /// (with `localhost` and the loopback address for a loopback or unspecified address,
    /// where a browser on this machine may use either), then the `--origin`s.
    #[must_use]
    pub fn allowed_origins(&self) -> Vec<String> {
        let ip = self.addr.ip();
        let mut hosts = Vec::new();
        if ip.is_loopback() || ip.is_unspecified() {
            hosts.push("localhost".to_owned());
        }
        match ip {
            IpAddr::V4(v4) if v4.is_unspecified() => hosts.push(Ipv4Addr::LOCALHOST.to_string()),
            IpAddr::V6(v6) if v6.is_unspecified() => {
                hosts.push(Ipv4Addr::LOCALHOST.to_string());
                hosts.push(format!("[{}]", Ipv6Addr::LOCALHOST));
            }
            IpAddr::V4(v4) => hosts.push(v4.to_string()),
            IpAddr::V6(v6) => hosts.push(format!("[{v6}]")),
        }
        // Browsers leave the default port out of `Origin`.
        let port = match self.addr.port() {
            80 => String::new(),
            port => format!(":{port}"),
        };
        let mut origins: Vec<String> = hosts.iter().map(|host| format!("http://{host}{port}")).collect();
        for extra in &self.origins {
            if !origins.contains(extra) {
                origins.push(extra.clone());
            }
        }
        origins
    }
}

/// `--origin`'s value as browsers send it in `Origin`: `scheme://host[:port]`, lower case,
/// without a default port.
fn origin(value: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!("--origin {value}: {why} (expected scheme://host[:port], e.g. https://bookmarks.example)")
    };
    let url = url::Url::parse(value).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("not http or https"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("an origin has no path, query or user"));
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        Options::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults_and_flags() {
        let d = parse(&[]).unwrap().unwrap();
        assert_eq!(d.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(d.store, StoreKind::Sqlite);
        let o = parse(&["--session-store", "redis", "--redis-url", "redis://x", "--addr", "0.0.0.0:1"])
            .unwrap()
            .unwrap();
        assert_eq!(o.store, StoreKind::Redis);
        assert_eq!(o.redis_url.as_deref(), Some("redis://x"));
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(!d.insecure_cookies);
        let i = parse(&["--insecure-cookies", "--addr", "192.168.1.5:3000"]).unwrap().unwrap();
        assert!(i.insecure_cookies);
        assert_eq!(i.addr.to_string(), "192.168.1.5:3000");
        assert!(!d.trust_proxy);
        assert!(parse(&["--trust-proxy", "--addr", "0.0.0.0:1"]).unwrap().unwrap().trust_proxy);
        assert!(parse(&["--session-store", "mongo"]).unwrap_err().contains("unknown session store"));
        assert!(parse(&["--addr"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--bogus", "1"]).unwrap_err().contains("unknown flag"));
    }

    #[test]
    fn allowed_origins_follow_the_address_and_flags() {
        let origins = |args: &[&str]| parse(args).unwrap().unwrap().allowed_origins();
        assert_eq!(origins(&[]), ["http://localhost:3000", "http://127.0.0.1:3000"]);
        assert_eq!(origins(&["--addr", "[::1]:8080"]), ["http://localhost:8080", "http://[::1]:8080"]);
        assert_eq!(
            origins(&["--addr", "0.0.0.0:80"]),
            ["http://localhost", "http://127.0.0.1"],
            "no default port"
        );
        assert_eq!(
            origins(&["--addr", "192.168.1.5:3000", "--origin", "HTTPS://Bookmarks.example:443/"]),
            ["http://192.168.1.5:3000", "https://bookmarks.example"]
        );
        assert_eq!(origins(&["--origin", "http://localhost:3000"]).len(), 2, "no duplicates");
        for bad in ["bookmarks.example", "ftp://x.example", "https://x.example/app", "https://x.example/?a"] {
            assert!(parse(&["--origin", bad]).unwrap_err().contains("--origin"), "{bad}");
        }
    }
}
