//! Finding the tail in about 2·log₂(N) small requests instead of listing
//! all N keys.
//!
//! The search asks one question of the store: "which is the first record
//! after offset K?" (a LIST with `start-after`). "Is there any record after
//! K?" is false exactly for K ≥ tail, holes or not, so the tail is the
//! smallest K for which the answer is no. The search doubles its step from
//! a known record until the answer is no, then halves the gap. The first
//! record after K is a witness that lets it jump: a log that starts at
//! 1 000 000 after a trim costs no more than one that starts at 1.
//!
//! This module only decides which K to ask about next; the asking is
//! `wal/mod.rs`'s, so the search is testable without a store.

/// The state of one search for the tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TailSearch {
    /// The tail is at least this: a record known to exist, or the floor.
    low: u64,
    /// The tail is at most this: no record is after it. `None` until found.
    high: Option<u64>,
    /// The next distance to probe past `low` while `high` is unknown.
    step: u64,
}

impl TailSearch {
    /// A search for a tail of at least `floor` (0, or a record known to exist).
    pub(crate) fn from(floor: u64) -> TailSearch {
        TailSearch {
            low: floor,
            high: None,
            step: 0,
        }
    }

    /// A search for a tail known to be at most `ceiling`: no record lies
    /// after it (a listing from a stale hint found none).
    pub(crate) fn below(ceiling: u64) -> TailSearch {
        TailSearch {
            low: 0,
            high: Some(ceiling),
            step: 0,
        }
    }

    /// The offset K to ask "which is the first record after K?" about, or
    /// `None` when the tail is known.
    pub(crate) fn next_probe(&self) -> Option<u64> {
        match self.high {
            Some(high) if high == self.low => None,
            Some(high) => Some(self.low + (high - self.low) / 2),
            None => Some(self.low.saturating_add(self.step)),
        }
    }

    /// Takes the answer for probe `k`: the first record after it, if any.
    pub(crate) fn observe(&mut self, k: u64, first_after: Option<u64>) {
        match first_after {
            Some(record) => {
                self.low = self.low.max(record);
                self.step = self.step.saturating_mul(2).max(1);
                // A record past the bound means the log grew during the
                // search (a truncate and an append raced it): search on up.
                if self.high.is_some_and(|high| record > high) {
                    self.high = None;
                }
            }
            None => self.high = Some(self.high.map_or(k, |high| high.min(k))),
        }
    }

    /// The tail, once [`next_probe`](Self::next_probe) is `None`.
    pub(crate) fn tail(&self) -> Option<u64> {
        self.next_probe().is_none().then_some(self.low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_below_a_ceiling_finds_the_tail_under_it() {
        let records = [1, 2, 3, 4, 5, 6, 7];
        let mut search = TailSearch::below(1000);
        let mut probes = 0;
        while let Some(k) = search.next_probe() {
            probes += 1;
            search.observe(k, records.iter().copied().find(|&r| r > k));
        }
        assert_eq!(search.tail(), Some(7));
        assert!(probes <= 11, "{probes} probes");
        assert_eq!(TailSearch::below(0).tail(), Some(0));
    }

    /// Runs a search against a set of record offsets; returns the tail and
    /// the number of probes.
    fn search(records: &[u64], floor: u64) -> (u64, usize) {
        let mut search = TailSearch::from(floor);
        let mut probes = 0;
        while let Some(k) = search.next_probe() {
            probes += 1;
            let first_after = records.iter().copied().filter(|&r| r > k).min();
            search.observe(k, first_after);
            assert!(probes < 200, "the search does not end");
        }
        (search.tail().unwrap(), probes)
    }

    #[test]
    fn empty_log_takes_one_probe() {
        assert_eq!(search(&[], 0), (0, 1));
    }

    #[test]
    fn finds_the_tail_of_dense_logs_of_every_small_size() {
        for n in 1..=300 {
            let records: Vec<u64> = (1..=n).collect();
            assert_eq!(search(&records, 0).0, n, "n = {n}");
        }
    }

    #[test]
    fn dense_log_of_100_000_takes_at_most_40_probes() {
        let records: Vec<u64> = (1..=100_000).collect();
        let (tail, probes) = search(&records, 0);
        assert_eq!(tail, 100_000);
        assert!(probes <= 40, "{probes} probes");
    }

    #[test]
    fn log_that_starts_late_costs_no_more_than_one_from_one() {
        let from_one: Vec<u64> = (1..=1000).collect();
        let trimmed: Vec<u64> = (1_000_001..=1_001_000).collect();
        let (tail, late_probes) = search(&trimmed, 0);
        assert_eq!(tail, 1_001_000);
        assert!(late_probes <= search(&from_one, 0).1 + 1);
    }

    #[test]
    fn holes_do_not_hide_the_tail() {
        assert_eq!(search(&[1, 2, 3, 9, 40, 41], 0).0, 41);
    }

    #[test]
    fn known_record_as_floor_confirms_an_unchanged_tail_in_one_probe() {
        let records: Vec<u64> = (1..=5000).collect();
        assert_eq!(search(&records, 5000), (5000, 1));
    }

    #[test]
    fn known_record_as_floor_finds_a_tail_that_moved_on() {
        let records: Vec<u64> = (1..=5017).collect();
        assert_eq!(search(&records, 5000).0, 5017);
    }

    #[test]
    fn record_past_a_known_bound_reopens_the_search() {
        let mut search = TailSearch::from(0);
        search.observe(10, None);
        search.observe(2, Some(50));
        assert_eq!(search.high, None);
        assert_eq!(search.low, 50);
        assert!(search.next_probe().unwrap() >= 50);
    }

    #[test]
    fn highest_possible_offset_is_found() {
        assert_eq!(search(&[1, u64::MAX], 0).0, u64::MAX);
    }
}
