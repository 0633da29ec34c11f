//! `verify`: read every record of a range and report what is wrong.
//!
//! A whole-log scan, so it is the one operation that lists the prefix:
//! the listing shows the holes (offsets with no key) and the foreign keys,
//! and every listed record in the range is then read and checked, as many
//! at a time as the log's `parallel` setting allows.

use std::ops::ControlFlow;

use crate::error::{Error, Result};
use crate::log::record::Corruption;
use crate::log::wal::Wal;
use crate::store::Store;

/// One thing wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The record at this offset failed a check.
    Corrupt {
        /// Its offset.
        offset: u64,
        /// Which check.
        problem: Corruption,
    },
    /// No record at `first..=last`, between records that exist.
    Hole {
        /// The first missing offset.
        first: u64,
        /// The last missing offset.
        last: u64,
    },
    /// A key under the prefix that is not a record key.
    ForeignKey(String),
}

/// What a verification covered and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The range checked, `None` when it held no record.
    pub range: Option<(u64, u64)>,
    /// Records read and found valid.
    pub valid: u64,
    /// Records that failed a check.
    pub corrupt: u64,
    /// Offsets missing inside the range.
    pub missing: u64,
    /// Keys under the prefix that are not records.
    pub foreign: u64,
}

impl Summary {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.corrupt == 0 && self.missing == 0 && self.foreign == 0
    }
}

/// The holes between sorted, distinct `offsets`.
pub fn holes(offsets: &[u64]) -> Vec<(u64, u64)> {
    offsets
        .windows(2)
        .filter(|pair| pair[1] > pair[0] + 1)
        .map(|pair| (pair[0] + 1, pair[1] - 1))
        .collect()
}

impl<S: Store + Sync> Wal<S> {
    /// Every record offset in `from..=to` and every foreign key, from one
    /// pass over the listing.
    fn inventory(&self, from: u64, to: u64) -> Result<(Vec<u64>, Vec<String>)> {
        let list_prefix = self.prefix().list_prefix();
        let (mut offsets, mut foreign) = (Vec::new(), Vec::new());
        for key in self.store().keys(&list_prefix, None, 1000) {
            let key = key?;
            match self.prefix().offset_of(&key) {
                Some(offset) if (from..=to).contains(&offset) => offsets.push(offset),
                Some(_) => {}
                // s3wal's own objects beside the log are not foreign.
                None if self.prefix().is_own(&key) => {}
                None => foreign.push(key),
            }
        }
        offsets.sort_unstable();
        offsets.dedup();
        Ok((offsets, foreign))
    }

    /// Checks every record in `from..=to` (default: the whole log), calling
    /// `report` with each problem and `progress(done, total)` as records
    /// are read. Errors only when the store cannot be read at all.
    pub fn verify(
        &self,
        from: Option<u64>,
        to: Option<u64>,
        mut report: impl FnMut(&Problem) -> Result<()>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Summary> {
        let (offsets, foreign) = self.inventory(from.unwrap_or(1), to.unwrap_or(u64::MAX))?;
        let mut summary = Summary {
            range: offsets.first().zip(offsets.last()).map(|(a, b)| (*a, *b)),
            foreign: foreign.len() as u64,
            ..Summary::default()
        };
        for key in foreign {
            report(&Problem::ForeignKey(key))?;
        }
        // A hole seen in the listing, or a record listed and then gone,
        // may be a truncate that ran meanwhile: each is looked at again
        // once the scan is over, and reported only if it is still there.
        let mut missing: Vec<(u64, u64)> = holes(&offsets);
        let total = offsets.len() as u64;
        let mut done = 0;
        let _all = self.read_each(offsets.into_iter(), |offset, record| {
            done += 1;
            progress(done, total);
            match record {
                Ok(_) => summary.valid += 1,
                Err(Error::Corrupt { problem, .. }) => {
                    summary.corrupt += 1;
                    report(&Problem::Corrupt { offset, problem })?;
                }
                Err(Error::NotFound { .. }) => missing.push((offset, offset)),
                Err(other) => return Err(other),
            }
            Ok(ControlFlow::Continue(()))
        })?;
        missing.sort_unstable();
        if let Some(&(lowest, _)) = missing.first() {
            // From the record below the lowest: a hole is bounded by two.
            let below = lowest.saturating_sub(1).max(1);
            let (now, _) = self.inventory(below, to.unwrap_or(u64::MAX))?;
            let holes_now = holes(&now);
            for (first, last) in missing {
                for (a, b) in holes_now.iter().filter(|(a, b)| *a <= last && first <= *b) {
                    let (first, last) = (first.max(*a), last.min(*b));
                    summary.missing += last - first + 1;
                    report(&Problem::Hole { first, last })?;
                }
            }
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_offsets_have_no_holes() {
        assert_eq!(holes(&[1, 2, 3]), []);
        assert_eq!(holes(&[]), []);
    }

    #[test]
    fn gaps_become_inclusive_holes() {
        assert_eq!(holes(&[1, 3, 4, 9]), [(2, 2), (5, 8)]);
    }

    #[test]
    fn summary_with_any_problem_is_not_clean() {
        assert!(Summary::default().is_clean());
        let foreign = Summary {
            foreign: 1,
            ..Summary::default()
        };
        assert!(!foreign.is_clean());
    }
}
