//! The checker: sorts the requests into lives by the cookies they sent and received, then
//! holds every snapshot to the model in the module docs.

use std::collections::HashMap;
use std::fmt;

use super::{Event, Op, SetCookie};
use crate::store::MAX_FORWARDS;

mod reads;

/// One broken promise, naming the operations involved by number, client and kind (never a
/// cookie, an id or a stored value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a passing check covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Operations recorded, the final reads included.
    pub operations: usize,
    /// Sessions created, each from its creation to its end.
    pub lives: usize,
    /// Snapshots of a live session held to the model.
    pub live_reads: usize,
    /// Writes that raced an id change of their cookie's id, so may have been dropped.
    pub maybe_applied: usize,
    /// Sessions certain to have been ended (flush, revoke, `revoke_user`).
    pub ended: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} operations, {} sessions ({} ended), {} live reads checked, {} writes raced an id change",
            self.operations, self.lives, self.ended, self.live_reads, self.maybe_applied
        )
    }
}

/// One stored session from its creation to its end, through its id changes.
struct Life {
    creator: usize,
    user: usize,
    /// The requests that found it live, and its creator.
    members: Vec<usize>,
    ends: Vec<End>,
}

/// An operation that ends a life somewhere in `inv..comp`; `sure` when it must have.
#[derive(Clone, Copy)]
struct End {
    op: usize,
    inv: u64,
    comp: u64,
    sure: bool,
}

struct Model<'a> {
    ev: &'a [Event],
    /// Every issued cookie: its life and its place in the life's chain of ids.
    cookies: HashMap<&'a str, (usize, usize)>,
    /// The life each request found live (or created).
    life_of: Vec<Option<usize>>,
    lives: Vec<Life>,
    /// `cycle_id` requests, by the cookie they sent.
    cycles_from: HashMap<&'a str, Vec<usize>>,
    /// The id change that moved each cookie's id away.
    moved: HashMap<&'a str, usize>,
    /// Requests that found no session although their cookie names a life.
    not_found: Vec<(usize, usize, &'a str)>,
    tags: HashMap<u32, usize>,
    out: Vec<Violation>,
}

pub(super) fn check(ev: &[Event]) -> Result<Summary, Vec<Violation>> {
    let mut m = Model {
        ev,
        cookies: HashMap::new(),
        life_of: vec![None; ev.len()],
        lives: Vec::new(),
        cycles_from: HashMap::new(),
        moved: HashMap::new(),
        not_found: Vec::new(),
        tags: ev.iter().enumerate().map(|(i, e)| (e.tag, i)).collect(),
        out: Vec::new(),
    };
    // Answers in order: a cookie is issued before any request sends it.
    let mut by_comp: Vec<usize> = (0..ev.len()).collect();
    by_comp.sort_by_key(|&i| ev[i].comp);
    for i in by_comp {
        m.sort_in(i);
    }
    m.add_ends();
    m.check_not_found();
    let mut live_reads = 0;
    for life in 0..m.lives.len() {
        live_reads += m.check_life(life);
    }
    if !m.out.is_empty() {
        return Err(m.out);
    }
    let maybe_applied =
        (0..ev.len()).filter(|&i| ev[i].op.writes() && m.life_of[i].is_some() && !m.sure(i)).count();
    Ok(Summary {
        operations: ev.len(),
        lives: m.lives.len(),
        live_reads,
        maybe_applied,
        ended: m.lives.iter().filter(|l| l.ends.iter().any(|e| e.sure)).count(),
    })
}

impl<'a> Model<'a> {
    fn name(&self, i: usize) -> String {
        let e = &self.ev[i];
        match e.client {
            Some(c) => format!("op #{i} (client {c}, {:?})", e.op),
            None if e.op == Op::Get => format!("op #{i} (final read)"),
            None => format!("op #{i} ({:?})", e.op),
        }
    }

    /// With `HISTORY_DUMP` set, prints the operations around `life` (kinds, stamps, and
    /// cookies as "life, place in its chain of ids"; never a cookie or a value).
    fn dump(&self, life: usize) {
        if std::env::var_os("HISTORY_DUMP").is_none() {
            return;
        }
        let place = |c: Option<&str>| c.and_then(|c| self.cookies.get(c)).copied();
        let l = &self.lives[life];
        let mut ops: Vec<usize> = l.members.iter().copied().chain(l.ends.iter().map(|e| e.op)).collect();
        ops.extend(
            (0..self.ev.len())
                .filter(|&i| place(self.ev[i].cookie.as_deref()).is_some_and(|(x, _)| x == life)),
        );
        ops.sort_unstable();
        ops.dedup();
        eprintln!("session {life} (user {}):", l.user);
        for i in ops {
            let e = &self.ev[i];
            let set = match &e.set_cookie {
                SetCookie::Set(pair) => format!("{:?}", place(Some(pair))),
                SetCookie::Remove => "removed".to_owned(),
                SetCookie::None => "-".to_owned(),
            };
            let live = e.seen.as_ref().map(|s| s.live);
            let sure = l.ends.iter().find(|end| end.op == i).map(|end| end.sure);
            eprintln!(
                "  {} {}..{} cookie {:?} live {live:?} set {set} ok {} ends {sure:?}",
                self.name(i),
                e.inv,
                e.comp,
                place(e.cookie.as_deref()),
                e.result.is_ok()
            );
        }
    }

    fn fail(&mut self, text: String) {
        self.out.push(Violation(text));
    }

    fn issue(&mut self, i: usize, pair: &'a str, life: usize, index: usize) {
        match self.cookies.get(pair) {
            Some(&known) if known != (life, index) => {
                self.fail(format!("{}: was sent an id already issued to another session", self.name(i)));
            }
            _ => {
                self.cookies.insert(pair, (life, index));
            }
        }
    }

    /// Places request `i` in the life it found live or created, and its cookies.
    fn sort_in(&mut self, i: usize) {
        let e = &self.ev[i];
        if let Err(err) = &e.result {
            self.fail(format!("{} failed: {err}", self.name(i)));
        }
        let from = e.cookie.as_deref().and_then(|c| self.cookies.get(c).map(|&(l, x)| (c, l, x)));
        if e.op == Op::Cycle {
            if let Some(c) = e.cookie.as_deref() {
                self.cycles_from.entry(c).or_default().push(i);
            }
        }
        let Some(seen) = &e.seen else { return };
        if seen.live {
            let Some((c, life, index)) = from else {
                return self.fail(format!("{} found a session without a cookie naming one", self.name(i)));
            };
            self.life_of[i] = Some(life);
            self.lives[life].members.push(i);
            match &e.set_cookie {
                SetCookie::Set(pair) if e.op == Op::Cycle => {
                    if pair == c {
                        return self.fail(format!("{}: the id change kept the id", self.name(i)));
                    }
                    if let Some(&other) = self.moved.get(c) {
                        let text = format!(
                            "{} and {}: two id changes of one id both succeeded",
                            self.name(other),
                            self.name(i)
                        );
                        self.fail(text);
                    }
                    self.moved.insert(c, i);
                    self.issue(i, pair, life, index + 1);
                }
                SetCookie::Set(pair) if pair != c => {
                    self.fail(format!("{}: a request that kept its id was sent another one", self.name(i)));
                }
                SetCookie::Remove if e.op != Op::Flush => {
                    self.fail(format!("{}: the session ended without a flush", self.name(i)));
                }
                _ => {}
            }
            return;
        }
        if let Some((c, life, _)) = from {
            self.not_found.push((i, life, c));
        }
        match (&e.set_cookie, e.op.writes()) {
            (SetCookie::Set(pair), true) => {
                let life = self.lives.len();
                self.lives.push(Life { creator: i, user: e.user, members: vec![i], ends: Vec::new() });
                self.life_of[i] = Some(life);
                self.issue(i, pair, life, 0);
            }
            (SetCookie::Set(_), false) => {
                self.fail(format!("{}: a request that wrote nothing was sent a cookie", self.name(i)));
            }
            (_, true) if e.result.is_ok() => {
                self.fail(format!("{}: a write to a new session was sent no cookie", self.name(i)));
            }
            _ => {}
        }
    }

    /// Successful id changes of `life` from the `index`-th id on, sent before `before`.
    fn moves_after(&self, life: usize, index: usize, before: u64) -> usize {
        self.lives[life]
            .members
            .iter()
            .filter(|&&y| {
                let e = &self.ev[y];
                e.op == Op::Cycle
                    && e.inv < before
                    && matches!(e.set_cookie, SetCookie::Set(_))
                    && e.cookie.as_deref().and_then(|c| self.cookies.get(c)).is_some_and(|&(_, x)| x >= index)
            })
            .count()
    }

    fn add_ends(&mut self) {
        for i in 0..self.ev.len() {
            let e = &self.ev[i];
            match e.op {
                Op::Flush | Op::Revoke => {
                    let Some(&(life, index)) = e.cookie.as_deref().and_then(|c| self.cookies.get(c)) else {
                        continue;
                    };
                    // A delete follows at most MAX_FORWARDS forwards from the id it is given.
                    let sure = e.result.is_ok() && self.moves_after(life, index, e.comp) < MAX_FORWARDS;
                    self.lives[life].ends.push(End { op: i, inv: e.inv, comp: e.comp, sure });
                }
                Op::RevokeUser => {
                    for life in 0..self.lives.len() {
                        let created = &self.ev[self.lives[life].creator];
                        if self.lives[life].user != e.user || created.inv > e.comp {
                            continue;
                        }
                        // Certain only for sessions stored before the listing.
                        let sure = e.result.is_ok() && created.comp < e.inv;
                        self.lives[life].ends.push(End { op: i, inv: e.inv, comp: e.comp, sure });
                    }
                }
                _ => {}
            }
        }
    }

    /// A request found no session: something must have ended or moved it first.
    fn check_not_found(&mut self) {
        for (i, life, cookie) in std::mem::take(&mut self.not_found) {
            let comp = self.ev[i].comp;
            let ended = self.lives[life].ends.iter().any(|end| end.inv < comp);
            let moved = self
                .cycles_from
                .get(cookie)
                .is_some_and(|ys| ys.iter().any(|&y| y != i && self.ev[y].inv < comp));
            if !ended && !moved {
                let text = format!("{} found no session, though nothing ended or moved it", self.name(i));
                self.fail(text);
            }
        }
    }

    /// Write `i` certainly took effect: it succeeded, and no id change of its cookie's id
    /// was sent before it was answered (a write-back that finds the forward is dropped).
    fn sure(&self, i: usize) -> bool {
        let e = &self.ev[i];
        if e.result.is_err() {
            return false;
        }
        let Some(seen) = &e.seen else { return false };
        if !seen.live {
            return true; // the creator: its session exists because of it
        }
        let cookie = e.cookie.as_deref().unwrap_or_default();
        !self.cycles_from.get(cookie).is_some_and(|ys| ys.iter().any(|&y| y != i && self.ev[y].inv < e.comp))
    }

    /// Checks every live read of `life`; returns how many there were.
    fn check_life(&mut self, life: usize) -> usize {
        let members = self.lives[life].members.clone();
        let reads: Vec<usize> =
            members.iter().copied().filter(|&i| self.ev[i].seen.as_ref().is_some_and(|s| s.live)).collect();
        let of = |op: Op| members.iter().copied().filter(|&i| self.ev[i].op == op).collect::<Vec<_>>();
        let (incs, appends) = (of(Op::Increment), of(Op::Append));
        let keys: Vec<usize> =
            members.iter().copied().filter(|&i| matches!(self.ev[i].op, Op::Insert | Op::Remove)).collect();
        for &r in &reads {
            let checks = [
                self.check_identity(life, r),
                self.check_key(life, r, &keys),
                self.check_counter(r, &reads, &incs),
                self.check_list(life, r, &reads, &appends),
            ];
            for text in checks.into_iter().filter_map(Result::err) {
                if self.out.is_empty() {
                    self.dump(life);
                }
                self.fail(text);
            }
        }
        reads.len()
    }
}
