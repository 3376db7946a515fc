//! One session's write-backs in this process, coalesced into as few store calls as there
//! are moments the store is busy.
//!
//! The first write-back of a session applies its patch at once. Write-backs of the same
//! session that arrive while it is in flight wait in the session's slot; when it returns,
//! all of them are combined into one patch and applied by a task, and so on until the slot
//! is empty. Inside a batch the in-place updates run in arrival order on the value the
//! previous one left, and on what the previous batch stored (which this process knows),
//! so n concurrent increments of one counter give n without a single conflict. A conflict
//! still happens when another process changed an updated key: the batch reloads, runs its
//! updates again on the fresh values and retries, with jittered back-off after the first
//! retry.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::state::Updater;
use super::Config;
use crate::expiry::Policy;
use crate::id::DigestHasher;
use crate::store::now;
use crate::{
    Applied, Change, Error, ExpiryChange, Id, Patch, Record, RecordId, SessionEvent, SessionHandle, SessionStore,
    StoreError,
};

const SHARDS: usize = 64;
/// Applies of one batch before its requests get [`Error::ConflictRetriesExhausted`]: only
/// writers in other processes can cause a conflict after the first reload.
const MAX_APPLY_ATTEMPTS: u32 = 12;

/// One request's write-back: its changes and how to redo them.
pub(crate) struct Job {
    pub(crate) changes: Vec<JobChange>,
    pub(crate) expiry: ExpiryChange,
    /// The policy of the session's expiry after this request, to compute the new instant.
    pub(crate) policy: Policy,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) user: Option<String>,
    pub(crate) label: Option<String>,
    /// `cycle_id` was called: move the session to a new id. Such a job is always applied
    /// alone, so no other request's write-back learns the new id or writes under it.
    pub(crate) cycle: bool,
}

/// One key this request changed.
pub(crate) struct JobChange {
    pub(crate) key: Arc<str>,
    /// The final value this request computed (what it shows its own handler).
    pub(crate) value: Option<Bytes>,
    /// What the request loaded for the key.
    pub(crate) original: Option<Bytes>,
    /// `Some` when the value came from in-place updates of the loaded one: they run again
    /// on the stored value at write time.
    pub(crate) redo: Option<Vec<Updater>>,
}

/// What became of a job.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Applied(Applied),
    /// Applied, and the session moved to this new id (the job cycled it).
    Moved(Applied, Id),
    /// The record was gone (flushed, revoked or expired): nothing was written.
    Gone,
}

type Reply = Result<Outcome, Error>;

struct Waiter {
    job: Job,
    tx: oneshot::Sender<Reply>,
}

/// A session whose write-back is in flight; later ones wait here. Present in the map
/// exactly while some write-back of the session is in flight.
#[derive(Default)]
struct Slot {
    waiting: Vec<Waiter>,
}

type Shard = HashMap<RecordId, Slot, BuildHasherDefault<DigestHasher>>;

/// What this process last wrote for some keys of one session: a better base for the next
/// batch's updates than what each request loaded.
type Known = Vec<(Arc<str>, Option<Bytes>)>;

/// The slots of every session with a write-back in flight.
pub(crate) struct WriteQueue {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for WriteQueue {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }
}

impl std::fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteQueue").finish_non_exhaustive()
    }
}

impl WriteQueue {
    fn shard(&self, rid: &RecordId) -> MutexGuard<'_, Shard> {
        // Each critical section is one map operation: a panic cannot leave it half done.
        self.shards[usize::from(rid.as_bytes()[1]) % SHARDS].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies `job` to the session `rid`, alone or coalesced with the session's other
/// write-backs in this process.
pub(crate) async fn submit(config: &Arc<Config>, rid: RecordId, job: Job) -> Reply {
    let queue = &config.queue;
    let waiting = {
        let mut shard = queue.shard(&rid);
        match shard.get_mut(&rid) {
            Some(slot) => {
                let (tx, rx) = oneshot::channel();
                slot.waiting.push(Waiter { job, tx });
                Err(rx)
            }
            None => {
                shard.insert(rid, Slot::default());
                Ok(job)
            }
        }
    };
    match waiting {
        Err(rx) => rx.await.unwrap_or_else(|_| Err(abandoned())),
        Ok(job) => {
            // Nothing in flight: apply now, in this request's own future.
            let mut lead = Lead { config, rid, known: Some(Known::new()) };
            let mut jobs = [job];
            let mut known = Known::new();
            let reply =
                run_batch(config, rid, &mut jobs, &mut known).await.pop().unwrap_or_else(|| Err(abandoned()));
            lead.known = Some(known);
            drop(lead);
            reply
        }
    }
}

/// The slot's leadership: when this request's own apply ends (or its future is dropped
/// halfway), the requests that queued meanwhile go to a task, or the slot goes.
struct Lead<'a> {
    config: &'a Arc<Config>,
    rid: RecordId,
    /// What the finished batch wrote; `None` when it did not finish.
    known: Option<Known>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let known = self.known.take().unwrap_or_default();
        if let Some(next) = take_or_release(&self.config.queue, &self.rid) {
            drain(Arc::clone(self.config), self.rid, next, known);
        }
    }
}

/// The requests waiting on `rid`, or `None` after removing its slot when there are none.
fn take_or_release(queue: &WriteQueue, rid: &RecordId) -> Option<Vec<Waiter>> {
    let mut shard = queue.shard(rid);
    let slot = shard.get_mut(rid)?;
    if slot.waiting.is_empty() {
        shard.remove(rid);
        None
    } else {
        Some(std::mem::take(&mut slot.waiting))
    }
}

/// Applies waiting batches in a task of their own (so no request's cancellation can cut
/// one short) until the slot is empty.
fn drain(config: Arc<Config>, rid: RecordId, first: Vec<Waiter>, known: Known) {
    let work = async move {
        let mut batch = first;
        let mut known = known;
        loop {
            while !batch.is_empty() {
                // A job that cycles the id goes alone; those before it go first, as one.
                let n = match batch.iter().position(|w| w.job.cycle) {
                    Some(0) => 1,
                    Some(i) => i,
                    None => batch.len(),
                };
                let rest = batch.split_off(n);
                let (mut jobs, txs): (Vec<Job>, Vec<_>) = batch.into_iter().map(|w| (w.job, w.tx)).unzip();
                let replies = run_batch(&config, rid, &mut jobs, &mut known).await;
                for (tx, reply) in txs.into_iter().zip(replies) {
                    // A request that went away still had its changes applied.
                    let _ = tx.send(reply);
                }
                batch = rest;
            }
            match take_or_release(&config.queue, &rid) {
                Some(next) => batch = next,
                None => return,
            }
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(work)),
        // The layer runs inside a tokio runtime; without one nobody could await the replies.
        Err(_) => tracing::error!("no tokio runtime to apply queued session write-backs"),
    }
}

fn abandoned() -> Error {
    Error::Store(StoreError::backend("the session write-back was abandoned"))
}

/// Applies `jobs` as one patch and returns one reply per job, in order. A job that cycles
/// the id comes alone (see `drain`), and its patch moves the record.
async fn run_batch(config: &Config, rid: RecordId, jobs: &mut [Job], known: &mut Known) -> Vec<Reply> {
    let crate::session::Backend::Store(store) = &config.backend else {
        return jobs.iter().map(|_| Err(abandoned())).collect();
    };
    let cycling = matches!(jobs, [job] if job.cycle);
    let mut fresh: Option<Record> = None;
    for attempt in 0..MAX_APPLY_ATTEMPTS {
        if attempt > 0 {
            if attempt > 1 {
                backoff(attempt).await;
            }
            fresh = match store.load(&rid).await {
                Ok(Some(record)) => Some(record),
                Ok(None) => return jobs.iter().map(|_| Ok(Outcome::Gone)).collect(),
                Err(err) => return fail_all(jobs.len(), err),
            };
        }
        let now = now();
        let (patch, mut failed) = build(rid, jobs, fresh.as_ref(), known, now);
        let Some(patch) = patch else {
            // Every job failed to redo its updates.
            return failed.into_iter().map(|f| Err(f.unwrap_or_else(abandoned))).collect();
        };
        let result = if cycling {
            cycle_to_fresh_id(&**store, &patch).await.map(|(applied, id)| (applied, Some(id)))
        } else {
            store.apply(&patch).await.map(|applied| (applied, None))
        };
        match result {
            Ok((applied, moved)) => {
                known.clear();
                let outcome = if applied.ended {
                    let handle = SessionHandle::from_record_id(rid);
                    config.manager.emit(SessionEvent::Destroyed { handle }).await;
                    Outcome::Applied(applied)
                } else if let Some(id) = moved {
                    // What this process wrote is under the new id now; the old id is a
                    // forward, so nothing is known about it.
                    let (old, new) = (SessionHandle::from_record_id(rid), SessionHandle::from_record_id(id.record_id()));
                    config.manager.emit(SessionEvent::Cycled { old, new }).await;
                    Outcome::Moved(applied, id)
                } else {
                    known.extend(patch.changes.into_iter().map(|c| (c.key, c.value)));
                    Outcome::Applied(applied)
                };
                return failed.iter_mut().map(|f| f.take().map_or_else(|| Ok(outcome.clone()), Err)).collect();
            }
            Err(StoreError::Conflict) => known.clear(),
            // Deleted meanwhile (a logout raced this request): never resurrect it.
            Err(StoreError::NotFound) => return jobs.iter().map(|_| Ok(Outcome::Gone)).collect(),
            Err(err) => {
                known.clear();
                return fail_all(jobs.len(), err);
            }
        }
    }
    jobs.iter().map(|_| Err(Error::ConflictRetriesExhausted)).collect()
}

/// Moves the patched record to a fresh random id, retrying on the (astronomically unlikely)
/// collision.
async fn cycle_to_fresh_id(store: &dyn SessionStore, patch: &Patch) -> Result<(Applied, Id), StoreError> {
    let mut last = StoreError::Collision;
    for _ in 0..super::writeback::MAX_CREATE_ATTEMPTS {
        let id = Id::random();
        match store.cycle(patch, id.record_id()).await {
            Ok(applied) => return Ok((applied, id)),
            Err(StoreError::Collision) => last = StoreError::Collision,
            Err(err) => return Err(err),
        }
    }
    Err(last)
}

/// One store error for every job of a batch: the first keeps it, the others say so.
fn fail_all(n: usize, err: StoreError) -> Vec<Reply> {
    let mut replies = vec![Err(Error::Store(err))];
    replies.extend((1..n).map(|_| {
        Err(Error::Store(StoreError::backend(
            "the session store failed for a write-back this one was combined with",
        )))
    }));
    replies
}

/// Sleeps a random time up to 2^attempt milliseconds (at most 256 ms), so instances that
/// conflict on one session stop meeting.
async fn backoff(attempt: u32) {
    let cap = 1u64 << attempt.min(8);
    let mut bytes = [0u8; 8];
    // Jitter needs no secrecy; without OS randomness it is simply the full cap.
    let random = getrandom::fill(&mut bytes).map_or(u64::MAX, |()| u64::from_le_bytes(bytes));
    tokio::time::sleep(std::time::Duration::from_micros(random % (cap * 1000))).await;
}

/// Combines the jobs into one patch on what is stored: `fresh` when the batch reloaded,
/// else what this process last wrote (`known`), else what each request loaded. Returns the
/// patch (`None` when every job failed) and, per job, the error that kept it out.
fn build(
    rid: RecordId,
    jobs: &mut [Job],
    fresh: Option<&Record>,
    known: &Known,
    now: OffsetDateTime,
) -> (Option<Patch>, Vec<Option<Error>>) {
    let mut changes: Vec<Change> = Vec::new();
    let mut failed: Vec<Option<Error>> = Vec::with_capacity(jobs.len());
    let mut patch: Option<Patch> = None;
    for job in jobs.iter_mut() {
        match fold(&mut changes, job, fresh, known) {
            Ok(()) => failed.push(None),
            Err(err) => {
                failed.push(Some(err));
                continue;
            }
        }
        let expires_at = job.policy.expires_at(now, job.created_at);
        let p = patch.get_or_insert_with(|| Patch::new(rid, expires_at, now));
        // Later requests win the expiry decision, except that a request which changed the
        // session's expiry beats one that kept it.
        if matches!(job.expiry, ExpiryChange::Set(_)) || matches!(p.expiry, ExpiryChange::Keep(_)) {
            p.expiry = job.expiry;
            p.expires_at = expires_at;
        }
        if job.user.is_some() {
            p.user.clone_from(&job.user);
        }
        if job.label.is_some() {
            p.label.clone_from(&job.label);
        }
    }
    if let Some(p) = &mut patch {
        p.changes = changes;
    }
    (patch, failed)
}

/// Adds one job's changes to the batch's, all or nothing.
fn fold(
    changes: &mut Vec<Change>,
    job: &mut Job,
    fresh: Option<&Record>,
    known: &Known,
) -> Result<(), Error> {
    let mut staged: Vec<(Option<usize>, Change)> = Vec::with_capacity(job.changes.len());
    for c in &mut job.changes {
        let earlier = changes.iter().position(|e| e.key == c.key);
        let next = match &mut c.redo {
            None => Change {
                key: Arc::clone(&c.key),
                value: c.value.clone(),
                // The value holds whatever is stored; an earlier update in this batch
                // that this overrides no longer matters either.
                expect: None,
            },
            Some(updates) => {
                let (base, expect) = match earlier {
                    // An earlier request of this batch changed the key: build on its value.
                    Some(i) => (changes[i].value.clone(), changes[i].expect.clone()),
                    None => {
                        let base = match (fresh, known.iter().find(|(k, _)| *k == c.key)) {
                            (Some(record), _) => record.entries.get(&c.key).cloned(),
                            (None, Some((_, value))) => value.clone(),
                            (None, None) => c.original.clone(),
                        };
                        (base.clone(), Some(base))
                    }
                };
                let value = if base == c.original {
                    // The updates already ran on exactly this value.
                    c.value.clone()
                } else {
                    let mut value = base;
                    for update in updates.iter_mut() {
                        value = update(&c.key, value.as_ref())?;
                    }
                    value
                };
                Change { key: Arc::clone(&c.key), value, expect }
            }
        };
        staged.push((earlier, next));
    }
    for (earlier, change) in staged {
        match earlier {
            Some(i) => changes[i] = change,
            None => changes.push(change),
        }
    }
    Ok(())
}
