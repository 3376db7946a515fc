//! The time the layer decides expiry by: the system's, or one a test moves.
//!
//! Every expiry decision of the layer (idle and absolute timeouts, the refresh throttle, the
//! instant a new record expires) reads the layer's [`Clock`]. Tests give it a
//! [`ManualClock`] and advance time instead of sleeping:
//!
//! ```
//! use session_core::clock::ManualClock;
//! use session_core::{Expiry, SessionLayer};
//! use session_store_memory::MemoryStore;
//! use time::Duration;
//!
//! let clock = ManualClock::starting_now();
//! let layer = SessionLayer::new(MemoryStore::default())
//!     .with_expiry(Expiry::OnInactivity(Duration::minutes(30)))
//!     .with_clock(clock.clone());
//! // ... send a request, then:
//! clock.advance(Duration::minutes(31));
//! // ... the next request finds no session.
//! # let _ = layer;
//! ```
//!
//! Stores keep reading the system clock; since the layer checks a loaded record's expiry
//! itself, a test clock that runs ahead of the system's still ends sessions on time.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved: for tests. Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    /// A clock standing at `start`.
    #[must_use]
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// A clock standing at the system's current time.
    #[must_use]
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }

    /// Moves the clock by `by` (backwards when negative); saturates at the ends of time.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.saturating_add(by);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let clock = ManualClock::new(start);
        let other = clock.clone();
        assert_eq!(clock.now(), start);
        other.advance(Duration::minutes(29));
        assert_eq!(clock.now(), start + Duration::minutes(29));
        clock.advance(Duration::MAX);
        assert!(clock.now() > start + Duration::days(365 * 1000), "saturates, never panics");
    }
}
