//! The history check can fail: each deliberately broken store below breaks one promise,
//! and the checker names it. And it is quiet on an honest store whatever the seed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use session_core::testing::{History, HistoryConfig, Violation};
use session_core::{Applied, Patch, Record, RecordId, SessionInfo, SessionStore, StoreError};
use session_store_memory::MemoryStore;
use time::OffsetDateTime;

/// The one thing a [`Broken`] store does wrong.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `apply` and `cycle` drop every `Change::expect`: in-place updates become blind writes.
    IgnoresExpectations,
    /// `delete` ends only a live record under the id it is given, not what a forward leads to.
    DeleteIgnoresForwards,
    /// `apply` of a missing record creates it instead of answering `NotFound`.
    ApplyResurrects,
    /// `cycle` copies the record to the new id and leaves the old one live.
    CycleCopies,
    /// Every second `load` of an id returns what the one before it returned (a lagging replica).
    StaleLoads,
}

/// Per id: the last record `load` returned and how many loads there were.
type Loads = Arc<Mutex<HashMap<RecordId, (Option<Record>, u64)>>>;

#[derive(Debug, Clone)]
struct Broken {
    inner: MemoryStore,
    fault: Fault,
    /// `StaleLoads`' memory.
    loads: Loads,
}

impl Broken {
    fn new(fault: Fault) -> Self {
        Self { inner: MemoryStore::default(), fault, loads: Arc::default() }
    }
}

fn blind(patch: &Patch) -> Patch {
    let mut patch = patch.clone();
    for change in &mut patch.changes {
        change.expect = None;
    }
    patch
}

#[async_trait]
impl SessionStore for Broken {
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.inner.create(record).await
    }

    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let fresh = self.inner.load(id).await?;
        let Fault::StaleLoads = self.fault else { return Ok(fresh) };
        let mut loads = self.loads.lock().unwrap();
        let (last, n) = loads.entry(*id).or_insert((None, 0));
        *n += 1;
        let stale = std::mem::replace(last, fresh.clone());
        Ok(if *n % 2 == 0 { stale } else { fresh })
    }

    async fn apply(&self, patch: &Patch) -> Result<Applied, StoreError> {
        match self.fault {
            Fault::IgnoresExpectations => self.inner.apply(&blind(patch)).await,
            Fault::ApplyResurrects => match self.inner.apply(patch).await {
                Err(StoreError::NotFound) => {
                    let now = OffsetDateTime::now_utc();
                    let mut record = Record::new(patch.id, now, patch.expires_at);
                    let applied = blind(patch).apply_to(&mut record, now)?;
                    self.inner.create(&record).await?;
                    Ok(applied)
                }
                other => other,
            },
            _ => self.inner.apply(patch).await,
        }
    }

    async fn cycle(&self, patch: &Patch, to: RecordId) -> Result<Applied, StoreError> {
        match self.fault {
            Fault::IgnoresExpectations => self.inner.cycle(&blind(patch), to).await,
            Fault::CycleCopies => {
                let now = OffsetDateTime::now_utc();
                let mut record = self.inner.load(&patch.id).await?.ok_or(StoreError::NotFound)?;
                let applied = patch.apply_to(&mut record, now)?;
                record.id = to;
                self.inner.create(&record).await?;
                Ok(applied)
            }
            _ => self.inner.cycle(patch, to).await,
        }
    }

    async fn delete(&self, id: &RecordId) -> Result<(), StoreError> {
        match self.fault {
            Fault::DeleteIgnoresForwards if self.inner.load(id).await?.is_none() => Ok(()),
            _ => self.inner.delete(id).await,
        }
    }

    async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.inner.sessions_of(user).await
    }
}

/// The violations the checker finds in a history of the broken store: a few runs, since
/// which races happen is the scheduler's choice (one run has always been enough here).
async fn violations(fault: Fault) -> Vec<Violation> {
    for seed in 1..=4 {
        let config = HistoryConfig::default().with_ops_per_client(200);
        let history = History::record(Broken::new(fault), config, seed).await;
        if let Err(found) = history.check() {
            let shown: Vec<String> = found.iter().take(3).map(ToString::to_string).collect();
            eprintln!("{fault:?}, seed {seed}: {} violations, first:\n{}", found.len(), shown.join("\n"));
            return found;
        }
    }
    panic!("{fault:?}: four histories passed the check");
}

fn names(found: &[Violation], fragments: &[&str]) -> bool {
    found.iter().any(|v| fragments.iter().any(|f| v.to_string().contains(f)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ignored_expectations_lose_in_place_updates() {
    let found = violations(Fault::IgnoresExpectations).await;
    assert!(names(&found, &["increments", "lacks the entry"]), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_that_ignores_forwards_lets_an_ended_session_live() {
    let found = violations(Fault::DeleteIgnoresForwards).await;
    assert!(names(&found, &["ended before it was sent"]), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_apply_that_resurrects_brings_an_ended_session_back() {
    let found = violations(Fault::ApplyResurrects).await;
    assert!(names(&found, &["ended before it was sent", "other than the one its cookie names"]), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cycle_that_copies_leaves_the_old_id_working() {
    let found = violations(Fault::CycleCopies).await;
    assert!(names(&found, &["under an old id"]), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_loads_show_as_lost_or_returning_data() {
    let found = violations(Fault::StaleLoads).await;
    assert!(!found.is_empty());
}

/// The same seeds on the honest store: no violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_honest_store_passes_the_same_seeds() {
    for seed in 1..=4 {
        let config = HistoryConfig::default().with_ops_per_client(200);
        let history = History::record(MemoryStore::default(), config, seed).await;
        if let Err(found) = history.check() {
            panic!("seed {seed}: {found:?}");
        }
    }
}
