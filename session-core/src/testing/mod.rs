//! The store conformance suite (feature `testing`).
//!
//! Every store crate runs the same cases against its real engine. The quickest way is the
//! macro, which expands to one `#[tokio::test]` per case (the calling crate needs `tokio`
//! with `macros` and `rt` as a dev-dependency):
//!
//! ```ignore
//! session_core::store_conformance_tests!(async { my_store::MyStore::connect().await });
//! ```
//!
//! Each case takes a fresh store; stores that share one engine across cases are fine, since
//! every case uses its own random ids.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

/// Expands to one `#[tokio::test]` per conformance case; `$make` is an expression whose
/// value is a future resolving to a fresh store.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            create_then_load_round_trips,
            loading_a_missing_record_gives_none,
            create_never_overwrites,
            create_replaces_an_expired_record,
            expired_records_are_never_loaded,
            save_with_the_loaded_version_succeeds,
            save_with_a_stale_version_conflicts,
            save_never_resurrects_a_deleted_record,
            touch_moves_only_the_expiry,
            delete_is_idempotent,
            many_records_stay_apart,
            concurrent_requests_changing_different_keys_both_survive,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::testing::$case($make.await).await;
            }
        )*
    };
}

/// Expands to the per-user index cases (see [`SessionStore::sessions_of`]) for stores
/// that keep one.
#[macro_export]
macro_rules! user_index_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            sessions_of_lists_exactly_the_live_sessions_of_a_user,
            the_index_follows_user_changes_and_deletes,
            revoke_user_keeps_exactly_the_exception,
            a_thousand_users_with_three_sessions_each_are_listed_correctly,
            login_cycle_and_flush_keep_the_index_right,
        );
    };
}

/// Expands to the [`ExpiredDeletion`] case for stores that implement it.
#[macro_export]
macro_rules! expired_deletion_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn delete_expired_removes_only_expired_records() {
            $crate::testing::delete_expired_removes_only_expired_records($make.await).await;
        }
    };
}

mod records;
mod users;

pub use self::records::*;
pub use self::users::*;

/// A `Service` from an async closure, so the suite needs no `tower` dependency.
#[derive(Clone)]
pub(crate) struct FnService<F>(pub(crate) F);

impl<F, Fut> Service<Request<()>> for FnService<F>
where
    F: Fn(Request<()>) -> Fut,
    Fut: Future<Output = Result<Response<()>, Infallible>>,
{
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Fut {
        (self.0)(req)
    }
}
