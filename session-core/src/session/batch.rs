//! Applying a batch of one session's write-backs: one patch (or id change) built from
//! the batch's jobs on the freshest base this process knows, retried after a conflict with
//! another process by reloading and running the in-place updates again.

use std::sync::Arc;

use time::OffsetDateTime;

use super::queue::{abandoned, Job, Outcome, Reply};
use super::Config;
use crate::cookie::IdCodec;
use crate::{
    Applied, Change, Error, ExpiryChange, Id, Patch, Record, RecordId, SessionEvent, SessionHandle,
    SessionStore, StoreError,
};

/// Applies of one batch before its requests get [`Error::ConflictRetriesExhausted`]: only
/// writers in other processes can cause a conflict after the first reload.
const MAX_APPLY_ATTEMPTS: u32 = 12;

/// What this process last wrote for some keys of one session (the changes of the last
/// patch it applied): a better base for the next batch's updates than what each request
/// loaded.
pub(super) type Known = Vec<Change>;

/// Applies one job that has the session to itself: its changes are the patch as they are
/// (nothing to fold, no update to redo), so none of the batch's bookkeeping is needed,
/// which saves four allocations per write-back (docs/BENCHMARKS.md, "write existing").
/// `None` on a conflict, with `job` as it was, for the general path to reload and redo.
pub(super) async fn apply_alone(config: &Config, job: &mut Job) -> Option<(Reply, Known)> {
    let crate::session::Backend::Store(store) = &config.backend else {
        return Some((Err(abandoned()), Known::new()));
    };
    // A block, so the store's answer is out of scope (and out of the future) during the
    // event's await below.
    let (reply, known, event) = {
        let result = if job.cycle {
            // Rare (a login), so boxed: the common write-back future stays small.
            let cycle = Box::pin(cycle_to_fresh_id(&**store, &config.id_codec, &job.patch));
            cycle.await.map(|(applied, id)| (applied, Some(id)))
        } else {
            store.apply(&job.patch).await.map(|applied| (applied, None))
        };
        let (rid, at) = (job.patch.id, job.patch.last_seen);
        match result {
            Err(StoreError::Conflict) => return None,
            Ok(done) => {
                let (outcome, known, event) = settled(rid, done, at, std::mem::take(&mut job.patch.changes));
                (Ok(outcome), known, event)
            }
            // Deleted meanwhile (a logout raced this request): never resurrect it.
            Err(StoreError::NotFound) => (Ok(Outcome::Gone), Known::new(), None),
            Err(err) => (Err(Error::Store(err)), Known::new(), None),
        }
    };
    if let Some(event) = event {
        // Only when the write ended or moved the session: boxed, like the cycle.
        Box::pin(config.manager.emit(event)).await;
    }
    Some((reply, known))
}

/// The outcome of an applied patch (or id change), what this process now knows the session
/// holds, and the event to send, if any.
fn settled(
    rid: RecordId,
    done: (Applied, Option<Id>),
    at: OffsetDateTime,
    changes: Vec<Change>,
) -> (Outcome, Known, Option<SessionEvent>) {
    let (applied, moved) = done;
    if applied.ended {
        let handle = SessionHandle::from_record_id(rid);
        return (
            Outcome::Applied { applied, at, moved: None },
            Known::new(),
            Some(SessionEvent::Destroyed { handle }),
        );
    }
    if let Some(id) = moved {
        // What this process wrote is under the new id now; the old id is a forward, so
        // nothing is known about it.
        let (old, new) = (SessionHandle::from_record_id(rid), SessionHandle::from_record_id(id.record_id()));
        return (
            Outcome::Applied { applied, at, moved: Some(id) },
            Known::new(),
            Some(SessionEvent::Cycled { old, new }),
        );
    }
    (Outcome::Applied { applied, at, moved: None }, changes, None)
}

/// Applies `jobs` as one patch and returns one reply per job, in order. A job that cycles
/// the id comes alone (see `drain`), and its patch moves the record.
pub(super) async fn run_batch(
    config: &Config,
    rid: RecordId,
    jobs: &mut [Job],
    known: &mut Known,
) -> Vec<Reply> {
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
        let now = config.now();
        let (patch, mut failed) = build(rid, jobs, fresh.as_ref(), known, now);
        let Some(patch) = patch else {
            // Every job failed to redo its updates.
            return failed.into_iter().map(|f| Err(f.unwrap_or_else(abandoned))).collect();
        };
        let result = if cycling {
            cycle_to_fresh_id(&**store, &config.id_codec, &patch)
                .await
                .map(|(applied, id)| (applied, Some(id)))
        } else {
            store.apply(&patch).await.map(|applied| (applied, None))
        };
        match result {
            Ok(done) => {
                let (outcome, now_known, event) = settled(rid, done, now, patch.changes);
                if let Some(event) = event {
                    config.manager.emit(event).await;
                }
                *known = now_known;
                return failed
                    .iter_mut()
                    .map(|f| f.take().map_or_else(|| Ok(outcome.clone()), Err))
                    .collect();
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

/// Moves the patched record to a fresh id, retrying on the (astronomically unlikely)
/// collision.
async fn cycle_to_fresh_id(
    store: &dyn SessionStore,
    ids: &IdCodec,
    patch: &Patch,
) -> Result<(Applied, Id), StoreError> {
    for _ in 0..super::writeback::MAX_CREATE_ATTEMPTS {
        let id = ids.generate();
        match store.cycle(patch, id.record_id()).await {
            Ok(applied) => return Ok((applied, id)),
            Err(StoreError::Collision) => {}
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::Collision)
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
        let mine = &job.patch;
        if matches!(mine.expiry, ExpiryChange::Set(_)) || matches!(p.expiry, ExpiryChange::Keep(_)) {
            p.expiry = mine.expiry;
            p.expires_at = expires_at;
        }
        if mine.user.is_some() {
            p.user.clone_from(&mine.user);
        }
        if mine.label.is_some() {
            p.label.clone_from(&mine.label);
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
    let mut staged: Vec<(Option<usize>, Change)> = Vec::with_capacity(job.patch.changes.len());
    for (i, c) in job.patch.changes.iter().enumerate() {
        let earlier = changes.iter().position(|e| e.key == c.key);
        let updates = job.redo.iter_mut().find(|(j, _)| *j == i).map(|(_, updates)| updates);
        let next = match updates {
            None => Change {
                key: Arc::clone(&c.key),
                value: c.value.clone(),
                // The value holds whatever is stored; an earlier update in this batch
                // that this overrides no longer matters either.
                expect: None,
            },
            Some(updates) => {
                // What the request loaded, which its updates ran on.
                let original = c.expect.clone().flatten();
                let (base, expect) = match earlier {
                    // An earlier request of this batch changed the key: build on its value.
                    Some(e) => (changes[e].value.clone(), changes[e].expect.clone()),
                    None => {
                        let base = match (fresh, known.iter().find(|k| k.key == c.key)) {
                            (Some(record), _) => record.entries.get(&c.key).cloned(),
                            (None, Some(k)) => k.value.clone(),
                            (None, None) => original.clone(),
                        };
                        (base.clone(), Some(base))
                    }
                };
                let value = if base == original {
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
