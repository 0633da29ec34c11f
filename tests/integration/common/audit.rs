//! The one audit of a log's invariants (README "Many machines, one log"):
//! what a log holds at the end of a test, held against what its writers
//! were told and the truncates and trims that may have acted. The races on
//! the real servers use it, and so do the library's explorer and fault
//! tests, which include this file by its path: it needs nothing but std.
//!
//! Times are whatever orders a test's events: `Instant`s, the steps of a
//! schedule, or the appends of one machine in a row. Only their order
//! counts, and an event at the same time as another may have seen it.

use std::collections::BTreeMap;
use std::fmt::Debug;

/// An acknowledged append: its data is stored at `offset`, told to a
/// writer whose call began at `began` and returned at `ended`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack<T> {
    pub offset: u64,
    pub data: String,
    pub began: T,
    pub ended: T,
}

/// What a truncate or trim deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Every record after this offset.
    Truncate(u64),
    /// Every record before this offset.
    Trim(u64),
}

impl Cut {
    /// Whether it deletes the record at `offset`.
    fn covers(self, offset: u64) -> bool {
        match self {
            Cut::Truncate(after) => offset > after,
            Cut::Trim(before) => offset < before,
        }
    }
}

/// A truncate or trim that may have acted on the log, from `began` until
/// `settled` (its fence settled, or the test's end if it never did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cutting<T> {
    pub cut: Cut,
    pub began: T,
    pub settled: T,
    /// Its command said it succeeded: whatever it covers that was stored
    /// before it began is gone.
    pub done: bool,
}

impl<T: Ord + Copy> Cutting<T> {
    /// Whether it may have acted at some time in `from..=to`.
    fn overlaps(&self, from: T, to: T) -> bool {
        self.settled >= from && self.began <= to
    }
}

/// A log at the end of a test and what its writers were told.
#[derive(Debug, Clone)]
pub struct Audit<T> {
    /// The records, by offset, as a reader reads them back.
    pub stored: BTreeMap<u64, String>,
    /// Every acknowledged append, those that filled the log first included.
    pub acks: Vec<Ack<T>>,
    /// The data of appends that were not acknowledged but may have stored
    /// their record (they died, timed out, or said it may be stored), at
    /// the offset they named if they did.
    pub may_stand: Vec<(Option<u64>, String)>,
    /// Every truncate and trim that may have acted.
    pub cuts: Vec<Cutting<T>>,
}

impl<T: Ord + Copy + Debug> Audit<T> {
    /// Everything that breaks an invariant; empty if the log keeps them
    /// all:
    ///
    /// 1. the records are dense from the first to the last, the first is
    ///    1 unless a trim may have acted, and a log is emptied only by a
    ///    truncate;
    /// 2. no data is stored twice;
    /// 3. every record was acknowledged at its offset, or is one that may
    ///    stand unacknowledged: a doomed record is gone;
    /// 4. every acknowledged record is still there, unless a truncate or
    ///    trim that covers it may have acted since its append began;
    /// 5. no offset is handed out again: an append acknowledged after
    ///    another (or at the same offset) got a higher offset, unless a
    ///    truncate below it may have acted in between;
    /// 6. a truncate or trim that succeeded deleted every record it
    ///    covers that was acknowledged before it began.
    pub fn problems(&self) -> Vec<String> {
        [
            self.holes(),
            self.stored_twice(),
            self.unknown(),
            self.lost(),
            self.handed_out_again(),
            self.left_by_cuts(),
        ]
        .concat()
    }

    fn holes(&self) -> Vec<String> {
        let offsets: Vec<u64> = self.stored.keys().copied().collect();
        let trimmed = self.cuts.iter().any(|c| matches!(c.cut, Cut::Trim(_)));
        let truncated = self.cuts.iter().any(|c| matches!(c.cut, Cut::Truncate(_)));
        let mut problems = Vec::new();
        if offsets.windows(2).any(|w| w[1] != w[0] + 1) {
            problems.push(format!("the record offsets are not dense: {offsets:?}"));
        }
        if !trimmed && offsets.first().is_some_and(|&first| first != 1) {
            problems.push(format!("the log starts at {offsets:?} with no trim"));
        }
        if offsets.is_empty() && !self.acks.is_empty() && !truncated {
            problems.push("the log was emptied without a truncate".to_owned());
        }
        problems
    }

    fn stored_twice(&self) -> Vec<String> {
        let mut at: BTreeMap<&str, u64> = BTreeMap::new();
        let twice = self
            .stored
            .iter()
            .filter_map(|(&offset, data)| Some((at.insert(data, offset)?, offset, data)));
        twice
            .map(|(other, offset, data)| format!("{data:?} stored twice, at {other} and {offset}"))
            .collect()
    }

    fn unknown(&self) -> Vec<String> {
        let unknown = |(&offset, data): (&u64, &String)| {
            let acked = self.acks.iter().find(|a| &a.data == data);
            let may_stand = |(at, stood): &(Option<u64>, String)| {
                stood == data && at.is_none_or(|at| at == offset)
            };
            match acked {
                Some(a) if a.offset == offset => None,
                Some(a) => Some(format!(
                    "{data:?} stored at {offset}, acknowledged at {}",
                    a.offset
                )),
                None if self.may_stand.iter().any(may_stand) => None,
                None => Some(format!("{data:?} stored at {offset}, never acknowledged")),
            }
        };
        self.stored.iter().filter_map(unknown).collect()
    }

    fn lost(&self) -> Vec<String> {
        let removed = |a: &&Ack<T>| {
            let since = |c: &Cutting<T>| c.cut.covers(a.offset) && c.settled >= a.began;
            self.stored.get(&a.offset) != Some(&a.data) && !self.cuts.iter().any(since)
        };
        let lost = self.acks.iter().filter(removed).map(|a| {
            format!(
                "{:?} acknowledged at {} is lost (found {:?} there), and no truncate or trim \
                 removed it",
                a.data,
                a.offset,
                self.stored.get(&a.offset)
            )
        });
        lost.collect()
    }

    fn handed_out_again(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, a) in self.acks.iter().enumerate() {
            for (j, b) in self.acks.iter().enumerate() {
                let again =
                    (a.ended < b.began && b.offset <= a.offset) || (i < j && a.offset == b.offset);
                let (from, to) = (a.began.min(b.began), a.ended.max(b.ended));
                let cut_below = |c: &Cutting<T>| {
                    matches!(c.cut, Cut::Truncate(after) if after < b.offset)
                        && c.overlaps(from, to)
                };
                if again && !self.cuts.iter().any(cut_below) {
                    problems.push(format!(
                        "{:?} acked at {}, then {:?} at {}, with no truncate below {} between",
                        a.data, a.offset, b.data, b.offset, b.offset
                    ));
                }
            }
        }
        problems
    }

    fn left_by_cuts(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for c in self.cuts.iter().filter(|c| c.done) {
            let before = |a: &&Ack<T>| a.ended < c.began && c.cut.covers(a.offset);
            for a in self.acks.iter().filter(before) {
                if self.stored.get(&a.offset) == Some(&a.data) {
                    problems.push(format!(
                        "{:?} succeeded and left {:?} at {}",
                        c.cut, a.data, a.offset
                    ));
                }
            }
        }
        problems
    }
}
