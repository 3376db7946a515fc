//! Command-line flags.

use std::fmt;
use std::net::SocketAddr;
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

/// The server's settings.
#[derive(Debug, Clone)]
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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            addr: ([127, 0, 0, 1], 3000).into(),
            data_dir: PathBuf::from("./bookmark-manager-data"),
            store: StoreKind::Sqlite,
            postgres_url: None,
            redis_url: None,
        }
    }
}

/// The usage text printed for `--help` and after a bad flag.
pub const USAGE: &str = "usage: bookmark-manager [--addr HOST:PORT] [--data-dir DIR]
       [--session-store memory|file|sqlite|postgres|redis|cookie]
       [--postgres-url URL] [--redis-url URL]";

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
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--addr" => opts.addr = value.parse().map_err(|e| format!("--addr {value}: {e}"))?,
                "--data-dir" => opts.data_dir = PathBuf::from(value),
                "--session-store" => opts.store = value.parse()?,
                "--postgres-url" => opts.postgres_url = Some(value),
                "--redis-url" => opts.redis_url = Some(value),
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(Some(opts))
    }
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
        assert!(parse(&["--session-store", "mongo"]).unwrap_err().contains("unknown session store"));
        assert!(parse(&["--addr"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--bogus", "1"]).unwrap_err().contains("unknown flag"));
    }
}
