//! When a session dies: browser close, inactivity, a fixed instant, and an absolute cap.
//!
//! The layer's default comes from [`SessionLayer::with_expiry`](crate::SessionLayer::with_expiry);
//! a session can override it for itself with [`Session::set_expiry`](crate::Session::set_expiry)
//! ("remember me"). [`SessionLayer::with_max_lifetime`](crate::SessionLayer::with_max_lifetime)
//! caps every session at an absolute age, whatever its expiry says.
//!
//! ```
//! use session_core::Expiry;
//! use time::Duration;
//!
//! let remember_me = Expiry::OnInactivity(Duration::days(30));
//! let browser = Expiry::BrowserSession;
//! assert_ne!(remember_me, browser);
//! ```

use time::{Duration, OffsetDateTime};

/// How long a session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// The cookie has no `Max-Age` and dies when the browser closes. On the server the record
    /// lives while it is used: it expires after [`BROWSER_SESSION_IDLE`] without a request
    /// that touches it. The default.
    #[default]
    BrowserSession,
    /// Rolling expiry: the session ends after this long without a request that touches it.
    /// The store's expiry is refreshed at most once per quarter of the window, not on every
    /// request.
    OnInactivity(Duration),
    /// The session ends at this instant.
    AtDateTime(OffsetDateTime),
}

/// Server-side idle lifetime of a [`Expiry::BrowserSession`] record. The browser forgets the
/// cookie when it closes, but the server cannot see that, so the record needs an end too.
pub const BROWSER_SESSION_IDLE: Duration = Duration::days(7);

/// The effective expiry rules of one session: its expiry and the layer's absolute cap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) expiry: Expiry,
    pub(crate) max_lifetime: Option<Duration>,
}

impl Policy {
    /// When a record written now should expire.
    pub(crate) fn expires_at(&self, now: OffsetDateTime, created_at: OffsetDateTime) -> OffsetDateTime {
        let natural = match self.expiry {
            // Saturating: `OnInactivity(Duration::MAX)` means "never", not a panic.
            Expiry::BrowserSession => now.saturating_add(BROWSER_SESSION_IDLE),
            Expiry::OnInactivity(window) => now.saturating_add(window),
            Expiry::AtDateTime(at) => at,
        };
        match self.max_lifetime {
            Some(max) => natural.min(created_at.saturating_add(max)),
            None => natural,
        }
    }

    /// Whether a session created at `created_at` and expiring at `expires_at` is over.
    pub(crate) fn is_expired(
        &self,
        now: OffsetDateTime,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> bool {
        expires_at <= now || self.max_lifetime.is_some_and(|max| created_at.saturating_add(max) <= now)
    }

    /// The cookie's `Max-Age` for a record expiring at `expires_at`; `None` for a
    /// browser-session cookie.
    pub(crate) fn max_age(&self, now: OffsetDateTime, expires_at: OffsetDateTime) -> Option<Duration> {
        match self.expiry {
            Expiry::BrowserSession => None,
            _ => Some((expires_at - now).max(Duration::ZERO)),
        }
    }

    /// For a rolling expiry, the new expiry instant when more than a quarter of the window
    /// has passed since the last refresh; `None` when no refresh is due.
    pub(crate) fn refresh_due(
        &self,
        now: OffsetDateTime,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let window = match self.expiry {
            Expiry::BrowserSession => BROWSER_SESSION_IDLE,
            Expiry::OnInactivity(window) => window,
            Expiry::AtDateTime(_) => return None,
        };
        // Most requests land well inside the throttle: decide that in plain integers and
        // skip the calendar arithmetic. A lifetime cap only makes the fresh expiry earlier,
        // so an uncapped "not due" is final.
        let window_ns = window.whole_nanoseconds();
        let moved = now.unix_timestamp_nanos() + window_ns - expires_at.unix_timestamp_nanos();
        if moved <= window_ns / 4 {
            return None;
        }
        let fresh = self.expires_at(now, created_at);
        (fresh - expires_at > window / 4).then_some(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn rolling_refresh_is_throttled_to_a_quarter_window() {
        let p = Policy { expiry: Expiry::OnInactivity(Duration::hours(4)), max_lifetime: None };
        let exp = p.expires_at(t0(), t0());
        assert_eq!(exp, t0() + Duration::hours(4));
        assert_eq!(p.refresh_due(t0() + Duration::minutes(59), t0(), exp), None);
        assert_eq!(
            p.refresh_due(t0() + Duration::minutes(61), t0(), exp),
            Some(t0() + Duration::minutes(61) + Duration::hours(4))
        );
    }

    #[test]
    fn max_lifetime_caps_everything() {
        let p = Policy {
            expiry: Expiry::OnInactivity(Duration::days(30)),
            max_lifetime: Some(Duration::days(1)),
        };
        assert_eq!(p.expires_at(t0(), t0()), t0() + Duration::days(1));
        assert!(p.is_expired(t0() + Duration::days(1), t0(), t0() + Duration::days(60)));
        assert!(!p.is_expired(t0() + Duration::hours(23), t0(), t0() + Duration::days(1)));
        // Refreshing cannot push past the cap.
        let later = t0() + Duration::hours(20);
        assert_eq!(p.refresh_due(later, t0(), t0() + Duration::days(1)), None);
    }

    #[test]
    fn extreme_durations_and_instants_saturate_instead_of_panicking() {
        let far = OffsetDateTime::new_utc(
            time::Date::from_calendar_date(9999, time::Month::December, 31).unwrap(),
            time::Time::from_hms(23, 0, 0).unwrap(),
        );
        for expiry in [
            Expiry::OnInactivity(Duration::MAX),
            Expiry::OnInactivity(Duration::MIN),
            Expiry::AtDateTime(far),
            Expiry::BrowserSession,
        ] {
            for max_lifetime in [None, Some(Duration::MAX), Some(Duration::MIN)] {
                let p = Policy { expiry, max_lifetime };
                for (now, created) in [(t0(), t0()), (far, far), (far, t0()), (t0(), far)] {
                    let exp = p.expires_at(now, created);
                    let _ = p.is_expired(now, created, exp);
                    let _ = p.max_age(now, exp);
                    let _ = p.refresh_due(now, created, exp);
                    let _ = p.refresh_due(now, created, far);
                }
            }
        }
        let never = Policy { expiry: Expiry::OnInactivity(Duration::MAX), max_lifetime: None };
        assert!(!never.is_expired(t0(), t0(), never.expires_at(t0(), t0())));
    }

    #[test]
    fn fixed_instants_and_browser_sessions() {
        let at = t0() + Duration::hours(2);
        let p = Policy { expiry: Expiry::AtDateTime(at), max_lifetime: None };
        assert_eq!(p.expires_at(t0(), t0()), at);
        assert_eq!(p.max_age(t0(), at), Some(Duration::hours(2)));
        assert_eq!(p.refresh_due(t0() + Duration::hours(1), t0(), at), None);
        let b = Policy { expiry: Expiry::BrowserSession, max_lifetime: None };
        assert_eq!(b.max_age(t0(), at), None);
        assert!(b.is_expired(at, t0(), at));
    }
}
