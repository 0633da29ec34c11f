//! The log: the seed's five operations, made safe for many writers.
//!
//! Invariants this module keeps:
//! - an append never overwrites: it writes with `If-None-Match: *` at one
//!   past the real tail, and on 412 finds the new tail and tries again;
//! - the log stays dense: truncate deletes from the highest offset down, so
//!   an interrupted truncate leaves a longer log, never one with a hole;
//! - keys that are not `<prefix>/<20 digits>` are foreign and never count;
//! - no operation lists the whole log: the tail is found by a logarithmic
//!   search (`tail.rs`), usually from the hint this machine kept.

use std::thread;
use std::time::Duration;

use crate::append::{Answer, Append, GiveUp, Limits, Step};
use crate::error::{Error, ProtocolKind, Result};
use crate::local::{Conditional, LocalState};
use crate::random::{jitter, random};
use crate::record::{self, Body, Prefix};
use crate::s3::{MAX_KEYS_PER_DELETE, PutOutcome};
use crate::store::Store;
use crate::tail::TailSearch;

/// How many conditional PUTs one append tries before giving up. Each 412
/// means another writer appended, so the log advanced; only heavy, long
/// contention from other machines exhausts this.
pub const MAX_APPEND_ATTEMPTS: u32 = 100;

/// Keys a tail probe asks for: the first record after K, with room for a
/// few foreign keys sorted before it.
const PROBE_KEYS: usize = 16;

/// GETs in flight at most while reading a range, unless set with
/// [`Wal::parallel`]: at 20 ms a request, 64 of them read over 1000 records
/// a second, with room for the requests that stall.
pub const DEFAULT_PARALLEL: usize = 64;

/// The most requests `--parallel` may keep in flight: each is a thread and
/// a connection, and past a few hundred a store answers with `SlowDown`.
pub const MAX_PARALLEL: usize = 256;

/// How many times one append PUTs the same offset after a 409. A 409
/// decides nothing, so it is worth retrying, but not forever.
pub const MAX_CONFLICT_RETRIES: u32 = 8;

const APPEND_LIMITS: Limits = Limits {
    taken: MAX_APPEND_ATTEMPTS,
    conflicts: MAX_CONFLICT_RETRIES,
};

/// How many rounds of delete-then-check truncate makes before it reports
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

/// The ends of a log, from [`Wal::stat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// The first record's offset (above 1 after a [`Wal::trim`]).
    pub first: u64,
    /// The last record's offset.
    pub last: u64,
    /// How many records lie between them, both included: s3wal keeps its
    /// logs dense, and `verify` checks that they are.
    pub records: u64,
}

/// A write-ahead log under one prefix of one bucket.
#[derive(Debug)]
pub struct Wal<S> {
    store: S,
    local: LocalState,
    allow_unsafe_store: bool,
    prefix: Prefix,
    /// Requests in flight at most while reading a range.
    parallel: usize,
    /// How the append protocol waits; the in-memory tests do not.
    pause: fn(Duration),
}

/// What a scratch key's name starts with: a dot sorts it before every
/// record key, and the name says who left it.
const SCRATCH_NAME: &str = ".s3wal-probe-";

/// The scratch key of a store probe, named with the start of `token`: no
/// longer than a record key, so that the probe never fails on S3's key
/// length limit where records would fit.
fn scratch_key(prefix: &Prefix, token: &str) -> String {
    let random = &token[..record::KEY_DIGITS - SCRATCH_NAME.len()];
    format!("{prefix}/{SCRATCH_NAME}{random}")
}

/// A fresh token for one append: 128 bits from the operating system's
/// random source, which no other writer anywhere draws again.
fn new_token() -> String {
    format!("{:016x}{:016x}", random(), random())
}

/// The offsets after `after` up to `tail`, highest first, in requests of
/// at most 1000 keys: a crash between requests leaves the log dense, merely
/// longer. Offsets in a hole are deleted too, which S3 counts as done.
fn deletion_batches(after: u64, tail: u64) -> impl Iterator<Item = Vec<u64>> {
    let mut next = tail;
    std::iter::from_fn(move || {
        if next <= after {
            return None;
        }
        let size = (next - after).min(MAX_KEYS_PER_DELETE as u64);
        let batch: Vec<u64> = (next - size + 1..=next).rev().collect();
        next -= size;
        Some(batch)
    })
}

/// Whether a PUT that failed with `error` may still have stored the
/// record: its body went out and no answer said no. A PUT whose body never
/// reached the store whole stored nothing; a 5xx may have acted.
fn may_have_landed(error: &Error) -> bool {
    match error {
        Error::Transport {
            body_never_arrived, ..
        } => !body_never_arrived,
        Error::S3 { status, .. } => *status >= 500,
        _ => false,
    }
}

/// The offset after `tail`; none after the highest.
fn next_offset(tail: u64) -> Result<u64> {
    tail.checked_add(1).ok_or(Error::LogFull)
}

/// A pause of up to `ceiling`, random so that racing writers spread out.
fn jittered_pause(ceiling: Duration) {
    thread::sleep(jitter(ceiling));
}

impl<S: Store> Wal<S> {
    /// A log at `prefix` in `store`; appends and truncates on this machine
    /// queue on the lock of `local`, beside which the tail hint and the
    /// probe's verdict are kept.
    pub fn new(store: S, prefix: Prefix, local: LocalState) -> Wal<S> {
        Wal {
            local,
            allow_unsafe_store: false,
            parallel: DEFAULT_PARALLEL,
            pause: jittered_pause,
            store,
            prefix,
        }
    }

    /// Appends even on a store that ignores `If-None-Match: *`, where
    /// concurrent appenders can overwrite each other. Off by default.
    pub fn allow_unsafe_store(mut self, allow: bool) -> Wal<S> {
        self.allow_unsafe_store = allow;
        self
    }

    /// Reads ranges (`read_range`, `follow`, `verify`) with up to
    /// `requests` GETs in flight, at least one; [`DEFAULT_PARALLEL`] unless
    /// set.
    pub fn parallel(mut self, requests: usize) -> Wal<S> {
        self.parallel = requests.max(1);
        self
    }

    /// Requests in flight at most while reading a range.
    pub(crate) fn parallelism(&self) -> usize {
        self.parallel
    }

    /// Checks whether the store honours `If-None-Match: *`: creates a
    /// scratch key under the prefix (a foreign key to every reader), tries
    /// to create it again, and deletes it. Remembers the answer for
    /// [`append`](Self::append).
    pub fn probe_conditional_put(&self) -> Result<Conditional> {
        let key = self.new_scratch_key();
        let result = self.put_twice(&key);
        // Best effort: credentials allowed to append but not to delete
        // leave one foreign key behind, which every reader ignores.
        let _ = self.store.delete(std::slice::from_ref(&key));
        result
    }

    /// A fresh scratch key for probing the store.
    pub(crate) fn new_scratch_key(&self) -> String {
        scratch_key(&self.prefix, &new_token())
    }

    /// PUTs the fresh scratch `key` twice with `If-None-Match: *` and
    /// remembers whether the store refused the second; leaves the key for
    /// the caller to delete.
    pub(crate) fn put_twice(&self, key: &str) -> Result<Conditional> {
        let first = self.create_once(key, &new_token())?;
        let second = self.create_once(key, &new_token())?;
        let result = match (first, second) {
            (true, false) => Conditional::Enforced,
            (true, true) => Conditional::Ignored,
            (false, _) => {
                return Err(Error::Protocol {
                    request: format!("PutObject {key}"),
                    host: None,
                    kind: ProtocolKind::ScratchKeyExisted,
                    source: None,
                });
            }
        };
        self.local.probe.store(result);
        Ok(result)
    }

    /// PUTs `key` if absent: whether this PUT created it (recognising our
    /// own write behind a lost answer by its token).
    fn create_once(&self, key: &str, token: &str) -> Result<bool> {
        match self.store.put_if_absent(key, b"s3wal probe", token)? {
            PutOutcome::Created => Ok(true),
            PutOutcome::Exists { retried: true } => Ok(self.is_ours(key, token)?),
            PutOutcome::Exists { retried: false } | PutOutcome::Conflict => Ok(false),
        }
    }

    /// Whether the object at `key` was written with `token`.
    fn is_ours(&self, key: &str, token: &str) -> Result<bool> {
        let head = self.store.head(key)?;
        Ok(head.and_then(|h| h.token).as_deref() == Some(token))
    }

    /// Refuses to append on a store known to ignore `If-None-Match`,
    /// probing it first if this machine has not yet.
    fn ensure_conditional_puts(&self) -> Result<()> {
        let result = match self.local.probe.load() {
            Some(result) => result,
            None => self.probe_conditional_put()?,
        };
        match result {
            Conditional::Ignored if !self.allow_unsafe_store => Err(Error::UnsafeStore),
            _ => Ok(()),
        }
    }

    /// The store this log lives in.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Never pauses between tries: for tests on the in-memory store.
    #[cfg(test)]
    pub(crate) fn without_pauses(mut self) -> Wal<S> {
        self.pause = |_| {};
        self
    }

    /// The lock, hint and probe files this machine keeps for the log.
    #[cfg(test)]
    pub(crate) fn local(&self) -> &LocalState {
        &self.local
    }

    /// The prefix this log lives under.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// The first record offset after `k`, read from a short listing that
    /// starts after `k`'s key and skips foreign keys.
    ///
    /// Foreign keys that sort after every record key (`<prefix>/snapshots/…`)
    /// end the search at the first page that reaches them: paging through
    /// them would make every probe cost one LIST per 16 such keys.
    fn first_record_after(&self, k: u64) -> Result<Option<u64>> {
        let list_prefix = self.prefix.list_prefix();
        let start_key = self.prefix.key(k);
        let start_after = (k > 0).then_some(start_key.as_str());
        for key in self.store.keys(&list_prefix, start_after, PROBE_KEYS) {
            let key = key?;
            if self.prefix.sorts_after_records(&key) {
                return Ok(None);
            }
            if let Some(offset) = self.prefix.offset_of(&key).filter(|&o| o > k) {
                return Ok(Some(offset));
            }
        }
        Ok(None)
    }

    /// The tail, searched for from `floor` (0, or a record known to exist).
    fn search_tail(&self, floor: u64) -> Result<u64> {
        let mut search = TailSearch::from(floor);
        while let Some(k) = search.next_probe() {
            search.observe(k, self.first_record_after(k)?);
        }
        Ok(search.tail().expect("the search ended"))
    }

    /// The hinted tail if its record still exists (one HEAD), else 0: a
    /// hinted record that is gone means the log was truncated since.
    fn confirmed_hint(&self) -> Result<u64> {
        match self.local.hint.load() {
            Some(hinted) if hinted > 0 && self.store.head(&self.prefix.key(hinted))?.is_some() => {
                Ok(hinted)
            }
            _ => Ok(0),
        }
    }

    /// The offset of the last record, 0 for an empty log.
    ///
    /// With a good hint this costs a HEAD and one short LIST; without one,
    /// about 2·log₂(N) short LISTs.
    pub fn recover(&self) -> Result<u64> {
        let tail = self.search_tail(self.confirmed_hint()?)?;
        self.local.hint.store(tail);
        Ok(tail)
    }

    /// The offset of the first record, `None` for an empty log: one LIST.
    pub fn first(&self) -> Result<Option<u64>> {
        self.first_record_after(0)
    }

    /// Appends `data` as one record and returns its offset.
    ///
    /// Holds the local lock, so appenders on this machine take turns; other
    /// machines are kept off the same offset by `If-None-Match: *`. With a
    /// good hint this is one HEAD and one PUT, at any log size.
    pub fn append(&self, data: &[u8]) -> Result<u64> {
        let mut offset = 0;
        self.append_each([data], |appended, _| {
            offset = appended;
            Ok(())
        })?;
        Ok(offset)
    }

    /// Appends `records` in order and returns their offsets.
    ///
    /// Offsets are consecutive unless another machine appends in between.
    pub fn append_batch<R: AsRef<[u8]>>(&self, records: &[R]) -> Result<Vec<u64>> {
        let mut offsets = Vec::with_capacity(records.len());
        let records = records.iter().map(|r| Body::new(r.as_ref()));
        self.append_each(records, |offset, _| {
            offsets.push(offset);
            Ok(())
        })?;
        Ok(offsets)
    }

    /// Appends each record of `records` in order under one lock, calling
    /// `appended(offset, data)` after each, and returns how many it wrote.
    ///
    /// The tail is found once; every record after the first costs one PUT.
    /// An error from `appended` stops the batch. The lock is held until
    /// `records` ends, so an iterator that waits for input should end when
    /// none is at hand (and the caller call again when more comes), or
    /// every other append on this machine waits with it.
    ///
    /// A record given as a `Vec<u8>` or [`Body`] is framed in its own
    /// allocation: a big record is held in memory once.
    pub fn append_each<R: Into<Body>>(
        &self,
        records: impl IntoIterator<Item = R>,
        mut appended: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<u64> {
        let _held = self.local.lock.acquire()?;
        let mut records = records.into_iter().peekable();
        if records.peek().is_none() {
            return Ok(0);
        }
        self.ensure_conditional_puts()?;
        let mut tail = self.confirmed_hint()?;
        if tail == 0 {
            tail = self.search_tail(0)?;
        }
        let mut count = 0;
        let result = records.try_for_each(|record| {
            let mut body = record.into();
            tail = self.put_record(next_offset(tail)?, &mut body)?;
            count += 1;
            appended(tail, body.data())
        });
        self.local.hint.store(tail);
        result.map(|()| count)
    }

    /// PUTs one record at `offset` or, when that is taken, past the new
    /// tail; returns the offset it was written at.
    ///
    /// Every PUT of this record carries the same random token, so a PUT
    /// that landed but whose answer was lost is recognised as ours on the
    /// retry, instead of being written a second time at the next offset.
    fn put_record(&self, offset: u64, body: &mut Body) -> Result<u64> {
        let token = new_token();
        let mut append = Append::at(offset, APPEND_LIMITS);
        let mut step = append.start();
        // The error behind the last failed step, for a give-up to report.
        let mut failure = None;
        loop {
            let mut failed = |error: Error, may_have_landed| {
                failure = Some(error);
                Answer::Failed { may_have_landed }
            };
            let answer = match step {
                Step::Put(offset) => {
                    let key = self.prefix.key(offset);
                    match self.store.put_if_absent(&key, body.at(offset), &token) {
                        Ok(PutOutcome::Created) => Answer::Created,
                        Ok(PutOutcome::Exists { retried }) => Answer::Taken { retried },
                        Ok(PutOutcome::Conflict) => Answer::Conflict,
                        Err(error) => {
                            let landed = may_have_landed(&error);
                            failed(error, landed)
                        }
                    }
                }
                Step::CheckToken(offset) => match self.store.head(&self.prefix.key(offset)) {
                    Ok(head) => Answer::Token(head.map(|h| h.token.as_deref() == Some(&token))),
                    Err(error) => failed(error, false),
                },
                Step::FindTail(taken) => Answer::Tail(self.search_tail(taken)?),
                Step::Pause(up_to) => {
                    (self.pause)(up_to);
                    Answer::Resumed
                }
                Step::Stored(offset) => return Ok(offset),
                Step::GiveUp(why) => return Err(self.gave_up(why, failure)),
            };
            step = append.next(answer);
        }
    }

    /// The error for an append that gave up, with `failure`, the error
    /// behind its last failed step, when that is why.
    fn gave_up(&self, why: GiveUp, failure: Option<Error>) -> Error {
        match (why, failure) {
            (GiveUp::Taken { attempts, offset }, _) => Error::AppendGaveUp { attempts, offset },
            (GiveUp::Conflicted { attempts, offset }, _) => Error::Conflicted {
                key: self.prefix.key(offset),
                attempts,
            },
            (GiveUp::LogFull, _) => Error::LogFull,
            (
                GiveUp::Failed {
                    offset,
                    maybe_stored: true,
                },
                Some(error),
            ) => Error::MaybeStored {
                offset,
                source: Box::new(error),
            },
            (GiveUp::Failed { .. }, Some(error)) => error,
            (GiveUp::Failed { offset, .. }, None) => {
                unreachable!("an append gave up at {offset} on a failure it did not see")
            }
        }
    }

    /// The record at `offset`, verified.
    pub fn read(&self, offset: u64) -> Result<Record> {
        let body = self
            .store
            .get(&self.prefix.key(offset))?
            .ok_or(Error::NotFound { offset })?;
        let data = record::decode_owned(offset, body)
            .map_err(|problem| Error::Corrupt { offset, problem })?;
        Ok(Record { offset, data })
    }

    /// The last record, verified; [`Error::Empty`] for an empty log.
    pub fn last(&self) -> Result<Record> {
        match self.recover()? {
            0 => Err(Error::Empty),
            tail => self.read(tail),
        }
    }

    /// The first and last offsets and the record count, `None` for an
    /// empty log: one LIST for the first, the tail search for the last,
    /// never a listing of the whole log.
    pub fn stat(&self) -> Result<Option<Stat>> {
        let Some(first) = self.first()? else {
            return Ok(None);
        };
        let last = self.recover()?;
        Ok(Some(Stat {
            first,
            last,
            records: last.saturating_sub(first) + 1,
        }))
    }

    /// Deletes every record before offset `keep_from` (retention), so the
    /// log then starts there, and returns how many keys it deleted.
    ///
    /// Deletes from the lowest offset up, so an interrupted trim leaves a
    /// dense log that merely starts later than asked. Refuses to delete
    /// the last record: the tail is what keeps offsets going up.
    pub fn trim(&self, keep_from: u64) -> Result<u64> {
        let _held = self.local.lock.acquire()?;
        let tail = self.recover()?;
        if keep_from > tail {
            return Err(Error::TrimPastTail { keep_from, tail });
        }
        let Some(first) = self.first()? else {
            return Ok(0);
        };
        let mut deleted = 0;
        let mut next = first;
        while next < keep_from {
            let end = keep_from.min(next.saturating_add(MAX_KEYS_PER_DELETE as u64));
            let keys: Vec<String> = (next..end).map(|o| self.prefix.key(o)).collect();
            self.store.delete(&keys)?;
            deleted += end - next;
            next = end;
        }
        Ok(deleted)
    }

    /// Deletes every record after offset `after` and returns how many keys
    /// it deleted.
    ///
    /// Deletes from the tail down, so an interrupted truncate leaves a
    /// dense log that is merely longer; running it again finishes the job.
    /// Checks afterwards that no record is left past the cut, to catch one
    /// another machine appended meanwhile. Never lists the whole log.
    pub fn truncate(&self, after: u64) -> Result<u64> {
        let _held = self.local.lock.acquire()?;
        let mut deleted = 0;
        let mut tail = self.search_tail(self.confirmed_hint()?)?;
        for _ in 0..MAX_TRUNCATE_ROUNDS {
            if tail <= after {
                self.local.hint.store(tail);
                return Ok(deleted);
            }
            for batch in deletion_batches(after, tail) {
                let keys: Vec<String> = batch.iter().map(|&o| self.prefix.key(o)).collect();
                self.store.delete(&keys)?;
                deleted += batch.len() as u64;
            }
            tail = self.search_tail(after)?;
        }
        match tail <= after {
            true => {
                self.local.hint.store(tail);
                Ok(deleted)
            }
            false => Err(Error::TruncateRaced { after }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_between_appends() {
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 32);
    }

    #[test]
    fn scratch_key_is_never_longer_than_a_record_key() {
        let prefix = Prefix::new(&"p".repeat(1003)).unwrap();
        let key = scratch_key(&prefix, &new_token());
        assert_eq!(key.len(), prefix.key(1).len());
        assert!(key.starts_with(&format!("{prefix}/.s3wal-probe-")), "{key}");
        assert_eq!(prefix.offset_of(&key), None);
    }

    #[test]
    fn no_offset_follows_the_highest() {
        assert_eq!(next_offset(0).unwrap(), 1);
        assert!(matches!(next_offset(u64::MAX), Err(Error::LogFull)));
    }

    #[test]
    fn deletion_starts_at_the_highest_offset() {
        assert_eq!(
            deletion_batches(2, 5).collect::<Vec<_>>(),
            vec![vec![5, 4, 3]]
        );
    }

    #[test]
    fn nothing_to_delete_at_or_beyond_the_tail() {
        assert_eq!(deletion_batches(5, 5).count(), 0);
        assert_eq!(deletion_batches(9, 5).count(), 0);
    }

    #[test]
    fn deletion_batches_hold_at_most_a_thousand_keys_in_descending_runs() {
        let batches: Vec<Vec<u64>> = deletion_batches(0, 2500).collect();
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!((batches[0][0], batches[0][999]), (2500, 1501));
        assert_eq!((batches[2][0], batches[2][499]), (500, 1));
    }
}
