//! A randomized history check: many clients, a few shared sessions, every promise of
//! "Concurrent requests of one session" (docs/DESIGN.md) checked against what they saw.
//!
//! 16 clients (by default) share 4 sessions, two clients' worth of browsers per session,
//! and each runs a seeded random sequence of operations through the layer (two
//! [`SessionLayer`](crate::SessionLayer)s over one store, so two app instances' write
//! queues meet in the store): `get`, `insert` and `remove` of a plain key (last writer
//! wins), in-place `update`s (a counter increment, a list append), `flush`, `cycle_id`, and
//! [`SessionManager::revoke`](crate::SessionManager::revoke) and
//! [`revoke_user`](crate::SessionManager::revoke_user) of the session's user. Every
//! request first reads the whole session (one load, so one snapshot), then acts. Clients
//! keep a cookie jar per session as a browser does, and now and then send one of the last
//! few cookies it held (a stale tab, or an attacker holding an old id). Each operation is
//! stamped when it is sent and when its response arrives, from one atomic counter; after
//! all clients finish, every cookie ever issued is read once more.
//!
//! # The model
//!
//! A request takes effect at two moments inside its interval: its load (the snapshot) and
//! its write-back. A *life* is one stored session from the request that created it to its
//! end, through any number of id changes; every cookie belongs to one life. The checker
//! follows the cookies to sort each request into a life, then demands, for every snapshot
//! of a live session:
//!
//! - **nothing acknowledged is lost**: a counter is at least the number of increments
//!   acknowledged before the read was sent, and at most the number sent before it was
//!   answered (and the same between any two reads one after the other); a list holds every
//!   append acknowledged before, in the order they were acknowledged, and an earlier read's
//!   list is a prefix of a later one's; a plain key holds a value no acknowledged write
//!   replaced before the read was sent;
//! - **nothing ended comes back**: no read sent after a `flush` or revoke of the life was
//!   acknowledged finds it live, under any of its ids, and no read sent after an id change
//!   was acknowledged finds the old id live; every value read was written in this life;
//! - **every update counts once**: no list entry twice, no counter above what was sent;
//! - **nothing is torn**: every plain value is whole (a body derived from its tag), and
//!   every value read was written by an operation sent before the read was answered.
//!
//! And a request that finds no session must have been preceded by an end or an id change
//! of its cookie's life: a live session is never lost.
//!
//! # Why it raises no false alarm
//!
//! The checker only uses orders that hold whatever the scheduling: an operation answered
//! before another was sent took effect before it. Where the design lets a write go
//! silently (a write-back that finds its record gone answers 200 and writes nothing), the
//! model lets it go too: a write whose cookie's id an id change sent before it was answered
//! may have moved away is *maybe applied* and counts only in upper bounds. A write racing
//! an end needs no exception: if the end came first, no later read can find the life live.
//! `insert` is last-writer-wins, so a plain key is only required not to hold a value that
//! an acknowledged write replaced. A `revoke_user` ends for sure only lives created before
//! it was sent, and a `flush` or revoke through an old id only when fewer than
//! [`MAX_FORWARDS`](crate::store::MAX_FORWARDS) id changes could lie between. Every
//! request must succeed: the layer promises no error under contention.
//!
//! # Replaying
//!
//! A failure names its seed; `HISTORY_SEED=<seed>` replays the same operations (the
//! scheduling, and so the interleaving, is the runtime's). The report names operations by
//! number, client and kind, never a cookie, an id or a stored value; `HISTORY_DUMP=1` also
//! prints every operation of the first session found wrong, with its stamps and its cookies
//! as "session, place in its chain of ids".

mod check;
mod run;

use std::fmt;

use crate::SessionStore;

pub use self::check::{Summary, Violation};

/// Expands to the history check (one `#[tokio::test]` on a multi-thread runtime); `$make`
/// is an expression whose value is a future resolving to a fresh store. The optional
/// `ops_per_client` lowers the 500 operations each of the 16 clients runs, for stores whose
/// round trips make the full size slow.
///
/// ```ignore
/// session_core::history_tests!(async { MyStore::connect().await });
/// session_core::history_tests!(async { MyStore::connect().await }, ops_per_client = 200);
/// ```
#[macro_export]
macro_rules! history_tests {
    ($make:expr) => {
        $crate::history_tests!($make, ops_per_client = $crate::testing::HistoryConfig::DEFAULT_OPS);
    };
    ($make:expr, ops_per_client = $ops:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_histories_keep_the_promises() {
            let config = $crate::testing::HistoryConfig::default().with_ops_per_client($ops);
            $crate::testing::concurrent_histories_keep_the_promises($make.await, config).await;
        }
    };
}

/// The size of one history run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    clients: usize,
    ops_per_client: usize,
    sessions: usize,
}

impl HistoryConfig {
    /// Operations per client unless a store lowers it.
    pub const DEFAULT_OPS: usize = 500;

    /// The number of concurrent clients (default 16).
    #[must_use]
    pub fn with_clients(mut self, clients: usize) -> Self {
        self.clients = clients.max(1);
        self
    }

    /// Operations each client runs (default 500).
    #[must_use]
    pub fn with_ops_per_client(mut self, ops: usize) -> Self {
        self.ops_per_client = ops;
        self
    }

    /// The number of shared sessions (default 4); two sessions share a user.
    #[must_use]
    pub fn with_sessions(mut self, sessions: usize) -> Self {
        self.sessions = sessions.max(1);
        self
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self { clients: 16, ops_per_client: Self::DEFAULT_OPS, sessions: 4 }
    }
}

/// One recorded run: every operation, what it saw and when.
pub struct History {
    seed: u64,
    events: Vec<Event>,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The events hold cookies: never printed.
        f.debug_struct("History").field("seed", &self.seed).field("events", &self.events.len()).finish()
    }
}

impl History {
    /// Runs the clients against `store` with the operations `seed` picks, then reads every
    /// cookie once more, and returns what happened.
    pub async fn record(store: impl SessionStore, config: HistoryConfig, seed: u64) -> Self {
        Self { seed, events: run::record(store, config, seed).await }
    }

    /// The seed the operations were picked with.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The number of operations recorded, the final reads included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Checks the history against the model (see the module docs).
    ///
    /// # Errors
    ///
    /// Every violation found, each naming the operations involved.
    pub fn check(&self) -> Result<Summary, Vec<Violation>> {
        check::check(&self.events)
    }
}

/// The seed to run with: `HISTORY_SEED` when set (to replay a failure), else a random one.
///
/// # Panics
///
/// When `HISTORY_SEED` is set but is not a number.
#[must_use]
pub fn history_seed() -> u64 {
    match std::env::var("HISTORY_SEED") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("HISTORY_SEED is not a number: {text:?}")),
        Err(_) => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).expect("OS randomness");
            u64::from_le_bytes(bytes)
        }
    }
}

/// Records a history on `store` and checks it; panics with the seed and the violations.
pub async fn concurrent_histories_keep_the_promises(store: impl SessionStore, config: HistoryConfig) {
    let seed = history_seed();
    let history = History::record(store, config, seed).await;
    match history.check() {
        Ok(summary) => eprintln!("history seed {seed}: {summary}"),
        Err(violations) => {
            let shown: Vec<String> = violations.iter().take(20).map(ToString::to_string).collect();
            panic!(
                "history seed {seed}: {} violations (replay with HISTORY_SEED={seed}):\n{}",
                violations.len(),
                shown.join("\n")
            );
        }
    }
}

/// What a client does in one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    /// `insert("k", value)`, the value whole-checkable from its tag.
    Insert,
    Remove,
    /// `update("n", +1)`.
    Increment,
    /// `update("list", push(tag))`.
    Append,
    Flush,
    Cycle,
    /// `SessionManager::revoke` of the cookie's handle.
    Revoke,
    /// `SessionManager::revoke_user` of the session's user.
    RevokeUser,
}

impl Op {
    /// Whether the request writes: on a session it found gone, it creates a new one.
    fn writes(self) -> bool {
        matches!(self, Op::Insert | Op::Remove | Op::Increment | Op::Append | Op::Cycle)
    }
}

/// What a request loaded, before it acted.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// A stored session was found.
    live: bool,
    /// The tag of the request that created the session.
    born: Option<u32>,
    k: Option<Value>,
    n: Option<u64>,
    list: Option<Vec<u32>>,
}

/// The plain key's value: a tag and a body derived from it, so a torn value shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Value {
    tag: u32,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

impl Value {
    fn of(tag: u32) -> Self {
        let len = 8 + (tag as usize * 7) % 120;
        Self { tag, body: (0..len).map(|i| (tag as usize).wrapping_mul(31).wrapping_add(i) as u8).collect() }
    }

    fn is_whole(&self) -> bool {
        *self == Self::of(self.tag)
    }
}

/// What the response did with the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SetCookie {
    None,
    Remove,
    /// A live cookie (`name=value`).
    Set(String),
}

/// One operation as recorded.
#[derive(Debug, Clone)]
struct Event {
    /// The client, or `None` for the final reads.
    client: Option<usize>,
    op: Op,
    /// Unique in the run; names the values this operation writes.
    tag: u32,
    /// The cookie sent (revokes: the cookie whose handle was revoked).
    cookie: Option<String>,
    /// The user whose sessions `RevokeUser` ended; the user a created session gets.
    user: usize,
    /// Stamps from one counter: sent, and answered.
    inv: u64,
    comp: u64,
    /// `Err`: the status or error, without ids or data.
    result: Result<(), String>,
    seen: Option<Seen>,
    set_cookie: SetCookie,
}

/// A small seeded generator (SplitMix64): the suite needs no `rand`.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
