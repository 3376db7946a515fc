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
//!
//! [`FaultStore`] wraps any store to inject outages, chosen errors, latency and gates per
//! method, and counts calls: for tests of how an app or a layer behaves when its store fails.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use crate::SessionStore;

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
            apply_changes_only_the_named_keys,
            values_and_keys_are_kept_exactly,
            apply_with_a_failed_expectation_changes_nothing,
            apply_never_resurrects_a_deleted_record,
            apply_that_empties_the_record_deletes_it,
            a_refresh_moves_only_the_expiry,
            a_stale_refresh_never_lengthens_a_changed_expiry,
            delete_is_idempotent,
            many_records_stay_apart,
            cycle_moves_the_record_with_the_patch_applied,
            cycle_of_a_missing_or_moved_record_creates_nothing,
            cycle_refusals_change_nothing,
            deleting_the_old_id_after_a_cycle_ends_the_new_record,
            a_cycle_that_empties_the_record_deletes_it,
        );
        $crate::store_conformance_tests!(@multi $make;
            concurrent_patches_are_atomic,
            concurrent_increments_through_the_layer_are_exact,
            concurrent_increments_from_two_instances_are_exact,
            concurrent_writers_of_distinct_keys_all_land,
            concurrent_appends_keep_every_entry,
            a_logout_racing_writers_leaves_nothing,
            a_cycle_racing_a_logout_or_revoke_leaves_nothing,
        );
    };
    (@multi $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::testing::$case($make.await).await;
            }
        )*
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

/// Expands to the [`ExpiredDeletion`](crate::ExpiredDeletion) case for stores that implement it.
#[macro_export]
macro_rules! expired_deletion_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn delete_expired_removes_only_expired_records() {
            $crate::testing::delete_expired_removes_only_expired_records($make.await).await;
        }
    };
}

pub(crate) mod audit;
mod concurrency;
mod cycle;
mod fault;
mod history;
mod records;
mod users;

pub use self::concurrency::*;
pub use self::cycle::*;
pub use self::fault::{Failure, FaultStore, StoreMethod};
pub use self::history::*;
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

/// A store that carries something to drop after it: the temp folder or scratch table a
/// test made for it. It forwards every [`SessionStore`] and [`ExpiredDeletion`](crate::ExpiredDeletion) method to
/// `store` (the optional ones too, so a suite tests the store's own, not the defaults), and
/// derefs to it.
///
/// ```ignore
/// let dir = tempfile::tempdir()?;
/// let store = Guarded { store: FileStore::new(dir.path())?, guard: dir };
/// ```
#[derive(Debug, Clone)]
pub struct Guarded<S, G> {
    /// The store under test; dropped first.
    pub store: S,
    /// Dropped after the store.
    pub guard: G,
}

impl<S, G> std::ops::Deref for Guarded<S, G> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.store
    }
}

#[async_trait::async_trait]
impl<S: SessionStore, G: std::fmt::Debug + Send + Sync + 'static> SessionStore for Guarded<S, G> {
    async fn create(&self, record: &crate::Record) -> Result<(), crate::StoreError> {
        self.store.create(record).await
    }
    async fn load(&self, id: &crate::RecordId) -> Result<Option<crate::Record>, crate::StoreError> {
        self.store.load(id).await
    }
    async fn apply(&self, patch: &crate::Patch) -> Result<crate::Applied, crate::StoreError> {
        self.store.apply(patch).await
    }
    async fn cycle(
        &self,
        patch: &crate::Patch,
        to: crate::RecordId,
    ) -> Result<crate::Applied, crate::StoreError> {
        self.store.cycle(patch, to).await
    }
    async fn delete(&self, id: &crate::RecordId) -> Result<(), crate::StoreError> {
        self.store.delete(id).await
    }
    async fn sessions_of(&self, user: &str) -> Result<Vec<crate::SessionInfo>, crate::StoreError> {
        self.store.sessions_of(user).await
    }
    async fn revoke(&self, handle: &crate::SessionHandle) -> Result<bool, crate::StoreError> {
        self.store.revoke(handle).await
    }
    async fn revoke_user(
        &self,
        user: &str,
        except: Option<&crate::SessionHandle>,
    ) -> Result<Vec<crate::SessionHandle>, crate::StoreError> {
        self.store.revoke_user(user, except).await
    }
    async fn publish(&self, event: &crate::SessionEvent) -> Result<(), crate::StoreError> {
        self.store.publish(event).await
    }
    async fn listen(
        &self,
        sink: tokio::sync::broadcast::Sender<crate::SessionEvent>,
    ) -> Result<(), crate::StoreError> {
        self.store.listen(sink).await
    }
}

#[async_trait::async_trait]
impl<S: crate::ExpiredDeletion, G: std::fmt::Debug + Send + Sync + 'static> crate::ExpiredDeletion
    for Guarded<S, G>
{
    async fn delete_expired(&self) -> Result<u64, crate::StoreError> {
        self.store.delete_expired().await
    }
}
