//! Throttles password guessing: failed password checks are counted per account name and per
//! client address, in a fixed window from the first failure. At the limit, further attempts
//! are refused until the window ends, right password or not.
//!
//! An attempt is counted when it starts ([`Throttle::begin`]) and uncounted when the
//! password was right ([`Throttle::succeeded`]), so a burst of parallel guesses cannot all
//! pass the check before any of them fails. A success undoes only its own attempt and the
//! count of its own address: it never clears another address's count, nor earlier
//! failures on the account.
//!
//! In memory, per process; the clock is a parameter, so tests need not sleep.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures allowed per window, per account and per address.
pub(crate) const LIMIT: u32 = 5;
/// Registration attempts allowed per window, per requested name and per address. Every
/// attempt counts, a successful one too: each costs a strength estimate and a hash, and an
/// address that creates accounts in bulk is not a person signing up.
pub(crate) const REGISTRATION_LIMIT: u32 = 10;
/// How long a window lasts.
pub(crate) const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many entries, expired ones are dropped on each new failure.
const PRUNE_ABOVE: usize = 10_000;
/// Longest account name kept as a key (user names are at most 32 characters).
const MAX_NAME: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

/// The counts; shared by the app state.
#[derive(Debug)]
pub(crate) struct Throttle {
    limit: u32,
    window: Duration,
    entries: Mutex<HashMap<Key, Window>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(LIMIT, WINDOW)
    }
}

impl Throttle {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, entries: Mutex::default() }
    }

    /// Starts a password check for `name` from `addr` (`None`: unknown, so per account
    /// only) at `now`: counts it as a failure, or refuses with how long to wait when the
    /// account or the address is at the limit.
    pub(crate) fn begin(&self, name: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = keys(name, addr);
        let wait = keys
            .iter()
            .filter_map(|k| entries.get(k))
            .filter(|w| w.failures >= self.limit)
            .filter_map(|w| (w.start + self.window).checked_duration_since(now))
            .filter(|d| !d.is_zero())
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        if entries.len() > PRUNE_ABOVE {
            entries.retain(|_, w| now < w.start + self.window);
        }
        for key in keys {
            let w = entries.entry(key).or_insert(Window { start: now, failures: 0 });
            if now >= w.start + self.window {
                *w = Window { start: now, failures: 0 };
            }
            w.failures = w.failures.saturating_add(1);
        }
        Ok(())
    }

    /// The check [`begin`](Self::begin) counted was a success: uncounts it for the
    /// account, and clears the count of this address (only).
    pub(crate) fn succeeded(&self, name: &str, addr: Option<IpAddr>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = entries.get_mut(&Key::Account(account(name))) {
            w.failures = w.failures.saturating_sub(1);
        }
        if let Some(addr) = addr {
            entries.remove(&Key::Address(network(addr)));
        }
    }
}

fn keys(name: &str, addr: Option<IpAddr>) -> Vec<Key> {
    let mut keys = vec![Key::Account(account(name))];
    keys.extend(addr.map(|a| Key::Address(network(a))));
    keys
}

/// The name as the key: trimmed, lower case (so case variants share a count), bounded.
fn account(name: &str) -> String {
    name.trim().chars().take(MAX_NAME).flat_map(char::to_lowercase).collect()
}

/// IPv6 clients usually hold a whole /64, so that is one address here.
fn network(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// `Retry-After`'s value for `wait`: whole seconds, rounded up.
pub(crate) fn retry_after(wait: Duration) -> String {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_account_and_address_until_the_window_passes() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(t.begin("Alice", Some(a), t0).is_ok());
        }
        let wait = t.begin("alice", Some(b), t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(retry_after(wait), "50");
        assert_eq!(retry_after(Duration::from_millis(1)), "1");
        // The address is at the limit too, for any account; another pair is not.
        assert!(t.begin("bob", Some(a), t0).is_err());
        assert!(t.begin("bob", Some(b), t0).is_ok());
        // A success elsewhere does not clear `a`.
        t.succeeded("bob", Some(b));
        assert!(t.begin("carol", Some(a), t0).is_err());
        // The window passes.
        assert!(t.begin("alice", Some(a), t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn a_success_uncounts_its_own_attempt_only() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        t.begin("alice", None, now).unwrap();
        t.begin("alice", None, now).unwrap();
        t.succeeded("alice", None);
        assert!(t.begin("alice", None, now).is_ok());
        assert!(t.begin("alice", None, now).is_err());
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(network("2001:db8::1".parse().unwrap()), network("2001:db8::ffff:1".parse().unwrap()));
        assert_ne!(network("2001:db8::1".parse().unwrap()), network("2001:db8:0:1::1".parse().unwrap()));
        assert_eq!(network("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
