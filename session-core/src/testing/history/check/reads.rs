//! The checks of one live read: identity, the plain key, the counter, the list.

use std::collections::HashSet;

use super::Model;
use crate::testing::history::Op;

impl Model<'_> {
    /// The read found this life, under an id that was still its id, before it ended.
    pub(super) fn check_identity(&self, life: usize, r: usize) -> Result<(), String> {
        let e = &self.ev[r];
        let creator = self.lives[life].creator;
        if e.seen.as_ref().and_then(|s| s.born) != Some(self.ev[creator].tag) {
            return Err(format!("{} found a session other than the one its cookie names", self.name(r)));
        }
        let cookie = e.cookie.as_deref().unwrap_or_default();
        if let Some(&y) = self.moved.get(cookie) {
            if self.ev[y].comp < e.inv {
                let text = format!(
                    "{} found the session under an old id {} had changed",
                    self.name(r),
                    self.name(y)
                );
                return Err(text);
            }
        }
        if let Some(end) = self.lives[life].ends.iter().find(|end| end.sure && end.comp < e.inv) {
            let text =
                format!("{} found a session {} ended before it was sent", self.name(r), self.name(end.op));
            return Err(text);
        }
        Ok(())
    }

    /// The plain key: a whole value, written in this life, not replaced before the read.
    pub(super) fn check_key(&self, life: usize, r: usize, keys: &[usize]) -> Result<(), String> {
        let ev = self.ev;
        let e = &ev[r];
        // Some sure write sent after `comp` and answered before the read was sent.
        let replaced = |comp: u64, only_inserts: bool| {
            keys.iter().copied().find(|&z| {
                (!only_inserts || ev[z].op == Op::Insert)
                    && self.sure(z)
                    && comp < ev[z].inv
                    && ev[z].comp < e.inv
            })
        };
        match e.seen.as_ref().and_then(|s| s.k.as_ref()) {
            Some(value) => {
                if !value.is_whole() {
                    return Err(format!("{} read a torn value", self.name(r)));
                }
                let Some(&x) = self.tags.get(&value.tag).filter(|&&x| ev[x].op == Op::Insert) else {
                    return Err(format!("{} read a value no insert wrote", self.name(r)));
                };
                if self.life_of[x] != Some(life) {
                    let text =
                        format!("{} read a value {} wrote in another session", self.name(r), self.name(x));
                    return Err(text);
                }
                if ev[x].inv > e.comp {
                    return Err(format!("{} read a value {} wrote later", self.name(r), self.name(x)));
                }
                if let Some(z) = replaced(ev[x].comp, false) {
                    let text = format!(
                        "{} read {}'s value, which {} replaced first",
                        self.name(r),
                        self.name(x),
                        self.name(z)
                    );
                    return Err(text);
                }
            }
            None => {
                // Absent: as created, or as some remove left it, and no sure insert since.
                let creator = self.lives[life].creator;
                let mut origins: Vec<usize> =
                    keys.iter().copied().filter(|&w| ev[w].op == Op::Remove && ev[w].inv < e.comp).collect();
                if ev[creator].op != Op::Insert {
                    origins.push(creator);
                }
                if let Some(z) =
                    origins.iter().map(|&o| replaced(ev[o].comp, true)).collect::<Option<Vec<_>>>()
                {
                    let z = z.into_iter().max().unwrap_or(creator);
                    let text = format!(
                        "{} found the key absent, though {} inserted it first",
                        self.name(r),
                        self.name(z)
                    );
                    return Err(text);
                }
            }
        }
        Ok(())
    }

    /// The counter: exactly the increments applied, between what was surely applied and
    /// what was sent, alone and against every earlier read.
    pub(super) fn check_counter(&self, r: usize, reads: &[usize], incs: &[usize]) -> Result<(), String> {
        let ev = self.ev;
        let n = |i: usize| ev[i].seen.as_ref().and_then(|s| s.n).unwrap_or(0) as usize;
        let v = n(r);
        let count = |f: &dyn Fn(usize) -> bool| incs.iter().copied().filter(|&w| f(w)).count();
        let low = count(&|w| self.sure(w) && ev[w].comp < ev[r].inv);
        let high = count(&|w| ev[w].inv < ev[r].comp);
        if v < low {
            return Err(format!(
                "{} counted {v} increments, {low} were acknowledged before it",
                self.name(r)
            ));
        }
        if v > high {
            return Err(format!("{} counted {v} increments, only {high} were sent before it", self.name(r)));
        }
        for &p in reads.iter().filter(|&&p| ev[p].comp < ev[r].inv) {
            let low = n(p) + count(&|w| self.sure(w) && ev[w].inv > ev[p].comp && ev[w].comp < ev[r].inv);
            let high = n(p) + count(&|w| ev[w].comp > ev[p].inv && ev[w].inv < ev[r].comp);
            if v < low || v > high {
                let text = format!(
                    "{} counted {v} increments, {} before it counted {}: expected {low}..={high}",
                    self.name(r),
                    self.name(p),
                    n(p)
                );
                return Err(text);
            }
        }
        Ok(())
    }

    /// The list: this life's appends, each once, every acknowledged one, in order, and
    /// an earlier read's list a prefix of a later one's.
    pub(super) fn check_list(
        &self,
        life: usize,
        r: usize,
        reads: &[usize],
        appends: &[usize],
    ) -> Result<(), String> {
        let ev = self.ev;
        let list = |i: usize| ev[i].seen.as_ref().and_then(|s| s.list.clone()).unwrap_or_default();
        let l = list(r);
        let mut writers = Vec::with_capacity(l.len());
        let mut once = HashSet::new();
        for tag in &l {
            let Some(&a) = self.tags.get(tag).filter(|&&a| ev[a].op == Op::Append) else {
                return Err(format!("{} read a list entry no append wrote", self.name(r)));
            };
            if self.life_of[a] != Some(life) {
                return Err(format!(
                    "{} read {}'s entry, written in another session",
                    self.name(r),
                    self.name(a)
                ));
            }
            if ev[a].inv > ev[r].comp {
                return Err(format!(
                    "{} read {}'s entry, sent after it was answered",
                    self.name(r),
                    self.name(a)
                ));
            }
            if !once.insert(a) {
                return Err(format!("{} read {}'s entry twice", self.name(r), self.name(a)));
            }
            writers.push(a);
        }
        if let Some(&a) =
            appends.iter().find(|&&a| self.sure(a) && ev[a].comp < ev[r].inv && !once.contains(&a))
        {
            return Err(format!(
                "{} lacks the entry {} appended before it was sent",
                self.name(r),
                self.name(a)
            ));
        }
        for (p, &a) in writers.iter().enumerate() {
            if let Some(&b) = writers[p + 1..].iter().find(|&&b| ev[b].comp < ev[a].inv) {
                let text = format!(
                    "{} lists {}'s entry before {}'s, appended first",
                    self.name(r),
                    self.name(a),
                    self.name(b)
                );
                return Err(text);
            }
        }
        for &p in reads.iter().filter(|&&p| ev[p].comp < ev[r].inv) {
            let before = list(p);
            if !l.starts_with(&before) {
                return Err(format!(
                    "{}'s list does not extend the list {} read first",
                    self.name(r),
                    self.name(p)
                ));
            }
            if let Some(&a) = writers[before.len()..].iter().find(|&&a| ev[a].comp < ev[p].inv) {
                let text = format!(
                    "{} lists {}'s entry, missing from {} sent after it was answered",
                    self.name(r),
                    self.name(a),
                    self.name(p)
                );
                return Err(text);
            }
        }
        Ok(())
    }
}
