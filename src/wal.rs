//! The log: the seed's five operations, made safe for many writers.
//!
//! Invariants this module keeps:
//! - an append never overwrites: it writes with `If-None-Match: *` at one
//!   past the real tail, and on 412 finds the new tail and tries again;
//! - the log stays dense: truncate deletes from the highest offset down, so
//!   an interrupted truncate leaves a longer log, never one with a hole;
//! - keys that are not `<prefix>/<20 digits>` are foreign and never count.

use std::thread;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lock::AppendLock;
use crate::record::{self, Prefix};
use crate::s3::{MAX_KEYS_PER_DELETE, PutOutcome};
use crate::store::Store;

/// How many conditional PUTs one append tries before giving up. Each 412
/// means another writer appended, so the log advanced; only heavy, long
/// contention from other machines exhausts this.
pub const MAX_APPEND_ATTEMPTS: u32 = 100;

/// How many rounds of list-then-delete truncate makes before it reports
/// that other writers keep appending past the cut.
const MAX_TRUNCATE_ROUNDS: u32 = 3;

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its offset, from 1.
    pub offset: u64,
    /// Its data, verified against the checksum.
    pub data: Vec<u8>,
}

/// A write-ahead log under one prefix of one bucket.
#[derive(Debug)]
pub struct Wal<S> {
    store: S,
    prefix: Prefix,
    lock: AppendLock,
}

/// What to do after a conditional PUT that did not create the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// 412: the offset is taken; look for the tail past it.
    FindTailAfter(u64),
    /// 409: nothing was decided; try the same offset after a pause.
    SameOffset(u64),
}

/// The decision after a PUT at `offset`, or `None` when it created the record.
fn after_put(offset: u64, outcome: PutOutcome) -> Option<Retry> {
    match outcome {
        PutOutcome::Created => None,
        PutOutcome::Exists => Some(Retry::FindTailAfter(offset)),
        PutOutcome::Conflict => Some(Retry::SameOffset(offset)),
    }
}

/// Offsets to delete, highest first, in requests of at most 1000 keys: a
/// crash between requests leaves the log dense, merely longer.
fn deletion_batches(mut offsets: Vec<u64>) -> Vec<Vec<u64>> {
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    offsets.dedup();
    offsets
        .chunks(MAX_KEYS_PER_DELETE)
        .map(<[u64]>::to_vec)
        .collect()
}

/// The offset after `tail`; none after the highest.
fn next_offset(tail: u64) -> Result<u64> {
    tail.checked_add(1).ok_or(Error::LogFull)
}

/// A pause of up to `ceiling_ms`, random so that racing writers spread out.
fn jittered_pause(ceiling_ms: u64) {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    thread::sleep(Duration::from_millis(random % (ceiling_ms + 1)));
}

impl<S: Store> Wal<S> {
    /// A log at `prefix` in `store`; appends and truncates on this machine
    /// queue on `lock`.
    pub fn new(store: S, prefix: Prefix, lock: AppendLock) -> Wal<S> {
        Wal {
            store,
            prefix,
            lock,
        }
    }

    /// The store this log lives in.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The prefix this log lives under.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// Calls `visit` with every record offset greater than `after`, in key
    /// order, reading the listing page by page.
    fn for_each_offset_after(&self, after: u64, mut visit: impl FnMut(u64)) -> Result<()> {
        let list_prefix = self.prefix.list_prefix();
        let start_key = self.prefix.key(after);
        let start_after = (after > 0).then_some(start_key.as_str());
        let mut continuation: Option<String> = None;
        loop {
            let page = self
                .store
                .list_page(&list_prefix, start_after, continuation.as_deref())?;
            page.keys
                .iter()
                .filter_map(|key| self.prefix.offset_of(key))
                .filter(|&offset| offset > after)
                .for_each(&mut visit);
            match page.continuation {
                Some(token) => continuation = Some(token),
                None => return Ok(()),
            }
        }
    }

    /// The highest record offset above `floor`, or `floor` if there is none.
    fn tail_after(&self, floor: u64) -> Result<u64> {
        let mut tail = floor;
        self.for_each_offset_after(floor, |offset| tail = tail.max(offset))?;
        Ok(tail)
    }

    /// The offset of the last record, 0 for an empty log.
    pub fn recover(&self) -> Result<u64> {
        self.tail_after(0)
    }

    /// Appends `data` as one record and returns its offset.
    ///
    /// Holds the local lock, so appenders on this machine take turns; other
    /// machines are kept off the same offset by `If-None-Match: *`.
    pub fn append(&self, data: &[u8]) -> Result<u64> {
        let _held = self.lock.acquire()?;
        let mut offset = next_offset(self.tail_after(0)?)?;
        for attempt in 1..=MAX_APPEND_ATTEMPTS {
            let outcome = self
                .store
                .put_if_absent(&self.prefix.key(offset), record::encode(offset, data))?;
            match after_put(offset, outcome) {
                None => return Ok(offset),
                Some(Retry::FindTailAfter(taken)) => {
                    jittered_pause(u64::from(attempt.min(10)));
                    offset = next_offset(self.tail_after(taken)?)?;
                }
                Some(Retry::SameOffset(_)) => jittered_pause(10 << attempt.min(6)),
            }
        }
        Err(Error::AppendGaveUp {
            attempts: MAX_APPEND_ATTEMPTS,
            offset,
        })
    }

    /// The record at `offset`, verified.
    pub fn read(&self, offset: u64) -> Result<Record> {
        let body = self
            .store
            .get(&self.prefix.key(offset))?
            .ok_or(Error::NotFound { offset })?;
        let data =
            record::decode(offset, &body).map_err(|problem| Error::Corrupt { offset, problem })?;
        Ok(Record {
            offset,
            data: data.to_vec(),
        })
    }

    /// The last record, verified; [`Error::Empty`] for an empty log.
    pub fn last(&self) -> Result<Record> {
        match self.recover()? {
            0 => Err(Error::Empty),
            tail => self.read(tail),
        }
    }

    /// Deletes every record after offset `after` and returns how many.
    ///
    /// Deletes from the highest offset down, so an interrupted truncate
    /// leaves a dense log that is merely longer; running it again finishes
    /// the job. Lists again after deleting, to catch a record another
    /// machine appended meanwhile.
    pub fn truncate(&self, after: u64) -> Result<u64> {
        let _held = self.lock.acquire()?;
        let mut deleted = 0;
        for _ in 0..MAX_TRUNCATE_ROUNDS {
            let mut offsets = Vec::new();
            self.for_each_offset_after(after, |offset| offsets.push(offset))?;
            if offsets.is_empty() {
                return Ok(deleted);
            }
            for batch in deletion_batches(offsets) {
                let keys: Vec<String> = batch.iter().map(|&o| self.prefix.key(o)).collect();
                self.store.delete(&keys)?;
                deleted += batch.len() as u64;
            }
        }
        Err(Error::TruncateRaced { after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_record_needs_no_retry() {
        assert_eq!(after_put(5, PutOutcome::Created), None);
    }

    #[test]
    fn taken_offset_looks_for_the_tail_past_it() {
        assert_eq!(
            after_put(5, PutOutcome::Exists),
            Some(Retry::FindTailAfter(5))
        );
    }

    #[test]
    fn conflict_retries_the_same_offset() {
        assert_eq!(
            after_put(5, PutOutcome::Conflict),
            Some(Retry::SameOffset(5))
        );
    }

    #[test]
    fn no_offset_follows_the_highest() {
        assert_eq!(next_offset(0).unwrap(), 1);
        assert!(matches!(next_offset(u64::MAX), Err(Error::LogFull)));
    }

    #[test]
    fn deletion_starts_at_the_highest_offset() {
        assert_eq!(deletion_batches(vec![3, 5, 4]), vec![vec![5, 4, 3]]);
    }

    #[test]
    fn deletion_batches_hold_at_most_a_thousand_keys_in_descending_runs() {
        let batches = deletion_batches((1..=2500).collect());
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!((batches[0][0], batches[0][999]), (2500, 1501));
        assert_eq!((batches[2][0], batches[2][499]), (500, 1));
    }
}
