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

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::batch::{apply_alone, run_batch, Known};
use super::state::Updater;
use super::Config;
use crate::expiry::Policy;
use crate::{Applied, Error, Id, Patch, RecordId, StoreError};

/// One shard per value of an id digest's second byte (the memory store shards by the
/// first).
const SHARDS: usize = 256;

/// One request's write-back: its patch and how to redo it.
pub(crate) struct Job {
    /// The patch as this request computed it (the values it shows its own handler), at the
    /// instant its `last_seen` says: a key set outright holds whatever is stored (`expect:
    /// None`); a key changed only in place expects the value the request loaded. Alone and
    /// uncontended, it is applied as it is.
    pub(crate) patch: Patch,
    /// The in-place updates behind `patch.changes[i]`, in order, to run again on a fresher
    /// value.
    pub(crate) redo: Vec<(usize, Vec<Updater>)>,
    /// The policy of the session's expiry after this request, to compute the new instant.
    pub(crate) policy: Policy,
    pub(crate) created_at: OffsetDateTime,
    /// `cycle_id` was called: move the session to a new id. Such a job is always applied
    /// alone, so no other request's write-back learns the new id or writes under it.
    pub(crate) cycle: bool,
}

/// What became of a job.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Applied at `at` (the instant its expiry was computed from); `moved` is the new id
    /// when the job cycled it.
    Applied { applied: Applied, at: OffsetDateTime, moved: Option<Id> },
    /// The record was gone (flushed, revoked or expired): nothing was written.
    Gone,
}

pub(super) type Reply = Result<Outcome, Error>;

struct Waiter {
    job: Job,
    tx: oneshot::Sender<Reply>,
}

/// A session whose write-back is in flight; later ones wait here. Present in its shard
/// exactly while some write-back of the session is in flight.
struct Slot {
    rid: RecordId,
    waiting: Vec<Waiter>,
}

/// The slots of one shard's sessions. A list, not a map: a shard holds a slot per session
/// of its 256th of the id space with a write-back in flight at this instant (about 4 with
/// a thousand write-backs in flight at once), and a scan of a few ids beats hashing, and
/// keeps its allocation (docs/BENCHMARKS.md).
#[derive(Default)]
struct Shard(Vec<Slot>);

impl Shard {
    fn get_mut(&mut self, rid: &RecordId) -> Option<&mut Slot> {
        self.0.iter_mut().find(|s| s.rid == *rid)
    }
}

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

/// Takes the slot of the session of `job` for this request when no write-back of the
/// session is in flight in this process, and the job stays where it is, for [`lead`];
/// otherwise moves the job to the slot's queue and returns where its answer will come (see
/// [`wait`]).
///
/// Split from the awaits, and taking the job only to queue it, so the write-back future
/// holds the job once and in place: no allocation for it, and the future stays small
/// enough for glibc's per-thread cache (docs/BENCHMARKS.md).
pub(crate) fn enter(
    queue: &WriteQueue,
    rid: RecordId,
    take: impl FnOnce() -> Option<Job>,
) -> Option<oneshot::Receiver<Reply>> {
    let mut shard = queue.shard(&rid);
    match shard.get_mut(&rid) {
        Some(slot) => {
            let (tx, rx) = oneshot::channel();
            slot.waiting.push(Waiter { job: take()?, tx });
            Some(rx)
        }
        None => {
            shard.0.push(Slot { rid, waiting: Vec::new() });
            None
        }
    }
}

/// The answer to a job [`enter`] queued.
pub(crate) async fn wait(rx: oneshot::Receiver<Reply>) -> Reply {
    rx.await.unwrap_or_else(|_| Err(abandoned()))
}

/// Applies a job whose session's slot [`enter`] gave this request: now, in this request's
/// own future; then hands the slot to the requests that queued meanwhile.
pub(crate) async fn lead(config: &Arc<Config>, job: &mut Job) -> Reply {
    let mut lead = Lead { config, rid: job.patch.id, known: None };
    let reply = match apply_alone(config, job).await {
        Some((reply, known)) => {
            lead.known = Some(known);
            reply
        }
        None => {
            // A conflict with another process: reload and redo. Rare, so boxed, which
            // keeps the common write-back future small.
            let mut known = Known::new();
            let batch = Box::pin(run_batch(config, lead.rid, std::slice::from_mut(job), &mut known));
            let reply = batch.await.pop().unwrap_or_else(|| Err(abandoned()));
            lead.known = Some(known);
            reply
        }
    };
    drop(lead);
    reply
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
    let i = shard.0.iter().position(|s| s.rid == *rid)?;
    if shard.0[i].waiting.is_empty() {
        shard.0.swap_remove(i);
        None
    } else {
        Some(std::mem::take(&mut shard.0[i].waiting))
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

pub(super) fn abandoned() -> Error {
    Error::Store(StoreError::backend("the session write-back was abandoned"))
}
