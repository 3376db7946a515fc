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

/// The system's wall clock (the default).
///
/// On Linux it is read at the kernel's tick resolution (`CLOCK_REALTIME_COARSE`, a few
/// milliseconds behind at most): the layer and the memory store read the clock up to four
/// times per request, and that read costs a third of a full-resolution one
/// (docs/BENCHMARKS.md). Expiry is decided in seconds, so the lag never shows. Elsewhere it
/// is [`OffsetDateTime::now_utc`].
///
/// ```
/// use session_core::clock::{Clock, SystemClock};
/// use time::{Duration, OffsetDateTime};
///
/// let lag = OffsetDateTime::now_utc() - SystemClock.now();
/// assert!(lag < Duration::seconds(1));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> OffsetDateTime {
        system_now()
    }
}

/// The wall clock as [`SystemClock`] reads it.
#[inline]
pub(crate) fn system_now() -> OffsetDateTime {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        // Seconds, then the nanoseconds set: half the cost of `from_unix_timestamp_nanos`,
        // whose 128-bit division is a library call. Fails only on a clock set past the
        // year 9999 (or a kernel's nanoseconds out of range).
        let nanos = u32::try_from(t.tv_nsec).unwrap_or(u32::MAX);
        if let Ok(now) =
            OffsetDateTime::from_unix_timestamp(t.tv_sec).and_then(|s| s.replace_nanosecond(nanos))
        {
            return now;
        }
    }
    OffsetDateTime::now_utc()
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
    fn the_system_clock_is_the_wall_clock_within_its_tick() {
        for _ in 0..100 {
            let before = OffsetDateTime::now_utc();
            let read = SystemClock.now();
            let after = OffsetDateTime::now_utc();
            // Coarse: never ahead of a later full read, at most a tick (10 ms at 100 Hz)
            // behind an earlier one.
            assert!(read <= after, "{read} > {after}");
            assert!(before - read < Duration::milliseconds(20), "{before} - {read}");
        }
    }

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
