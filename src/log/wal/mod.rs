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

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::thread;
use std::time::Duration;

mod cursor;
mod fencing;

pub use cursor::Cursor;
use fencing::Held;
pub use fencing::{DEFAULT_LEASE, FENCE_WAIT, RunningFence};

use crate::error::{Error, ProtocolKind, Result};
use crate::local::lock::Interruption;
use crate::local::{Conditional, LocalState};
use crate::log::append::{Answer, Append, Found, GiveUp, Limits, Step};
use crate::log::fence::{self, Fences, Kind};
use crate::log::keys::Prefix;
use crate::log::record::{self, Body};
use crate::log::store_hint::{self, StoreHint};
use crate::log::tail::TailSearch;
use crate::random::{jitter, random};
use crate::store::Store;
use crate::store::{PageRequest, PutOutcome};

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

/// Keys the listing from the store's hint asks for: a tail up to this
/// far past the hint is found by that one request.
const HINT_PAGE: usize = 1000;

/// Where the tail an append is to follow came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TailFrom {
    /// A listing just made: in a log that never had a fence it is taken
    /// as it is.
    Listing,
    /// This machine's own note of it, which may be stale.
    ThisMachine,
}

/// Whether a record follows records not yet confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Every record before it in this command is confirmed.
    Confirmed,
    /// It follows records whose fence check is still to come.
    Unconfirmed,
}

/// When the store's hint is written again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rewrite {
    /// Only when it is missing, stale or lacks the probe's verdict.
    IfStale,
    /// Now: it is due, or what it says was just cut.
    Now,
}

/// The store's hint (`store_hint.rs`) as one command has read it.
#[derive(Debug, Default)]
struct HintRead {
    /// Whether it was read: a machine with hints of its own never reads it.
    read: bool,
    /// What it says, if there is a hint of this version.
    hint: Option<StoreHint>,
    /// The keys of it the last listing showed, to delete once a newer one
    /// is written.
    keys: Vec<String>,
    /// Missing, stale or without the probe's verdict: to be written again.
    repair: bool,
    /// The listing it was read from, while no tail was looked at since:
    /// an appender may take its epoch from it.
    fences: Option<Fences>,
}

impl HintRead {
    /// Takes in what a listing of s3wal's own folder showed of the hint.
    fn saw(&mut self, prefix: &Prefix, fences: &Fences) {
        self.read = true;
        self.keys = hint_keys(prefix, fences);
        self.hint = store_hint::newest(prefix, &fences.hints);
        self.repair |= self.hint.is_none();
    }
}

/// The keys of store hints of this version that `fences`' listing showed:
/// a key of their folder that is none (a newer s3wal's, say) is left alone.
fn hint_keys(prefix: &Prefix, fences: &Fences) -> Vec<String> {
    let ours = |key: &&String| StoreHint::from_key(prefix, key).is_some();
    fences.hints.iter().filter(ours).cloned().collect()
}

/// What a command without a usable store hint reads from it: nothing.
const NO_HINT: StoreHint = StoreHint {
    tail: 0,
    conditional: None,
};

/// How many rounds of delete-then-check a truncate makes: records that
/// land past the cut later are doomed, and their appenders remove them.
const MAX_TRUNCATE_ROUNDS: u32 = 3;

/// How many times one append looks for a place again after the record it
/// was to follow turned out to be gone or doomed, or its own record was
/// doomed and removed: each time a truncate or repair ran meanwhile.
const MAX_PLACE_ROUNDS: u32 = 10;

/// Where the next record goes: after the record at `tail` (0: the log is
/// empty), stamped with `epoch`, a fence every truncate up to which had
/// settled before that record was looked at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Place {
    tail: u64,
    epoch: u64,
}

/// What one append command carries from record to record.
#[derive(Debug, Default)]
struct Appending {
    /// Where the next record goes.
    place: Place,
    /// The store hint as this command read it.
    hint_read: HintRead,
    /// Records stored and not yet confirmed: one run of offsets.
    unconfirmed: Vec<Unconfirmed>,
    /// Records to place again, first: doomed ones, in their order.
    again: VecDeque<Body>,
    /// Records acknowledged so far.
    count: u64,
    /// The last record acknowledged, when no fence up to this epoch may
    /// have deleted it: the next append here may follow it unlooked.
    standing: Option<(u64, u64)>,
}

/// Records one append stores before it reads the fences to confirm them
/// all, at most: a pipe of many lines costs about one PUT per record.
const GROUP_RECORDS: usize = 1000;

/// Bytes of data held for confirmation at most: a doomed record is placed
/// again, so its body is kept until its record stands.
const GROUP_BYTES: usize = 64 * 1024 * 1024;

/// A record stored and not yet confirmed.
#[derive(Debug)]
struct Unconfirmed {
    offset: u64,
    /// The epoch it was stamped with.
    epoch: u64,
    /// The store's time (seconds) when its PUT was answered.
    placed: Option<i64>,
    body: Body,
}

/// The error of an append that failed while `unconfirmed` records were
/// stored: the first of them may stand.
fn maybe_stored(error: Error, unconfirmed: &[Unconfirmed]) -> Error {
    match (unconfirmed.first(), error) {
        (None, error) | (_, error @ Error::MaybeStored { .. }) => error,
        (Some(first), error) => Error::MaybeStored {
            offset: first.offset,
            source: Box::new(error),
        },
    }
}

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
    /// Whether a signal asks a wait for the lock to stop.
    interrupted: Interruption,
    /// The lease this command holds its fences by.
    lease: Duration,
    /// Takes over fences even where the store would not refuse their
    /// holders' late requests.
    allow_unsafe_takeover: bool,
    /// Tells the user what a wait for another machine's fence is about.
    notice: fn(&str),
    /// Told how many records a truncate or trim deleted so far, of how many.
    deleting: fn(u64, u64),
}

/// What `stat` shows: the log's ends, the fence that runs, the cursors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The ends and the count, `None` for an empty log.
    pub stat: Option<Stat>,
    /// The truncate, trim or repair that runs now, if one does.
    pub running: Option<RunningFence>,
    /// The named cursors of consumers, by name.
    pub cursors: Vec<Cursor>,
}

/// A fresh token for one append: 128 bits from the operating system's
/// random source, which no other writer anywhere draws again.
fn new_token() -> String {
    format!("{:016x}{:016x}", random(), random())
}

/// Keys a truncate or trim hands to the fenced deletes at a time: they go
/// out `--parallel` at a time, one request each.
const DELETE_BATCH: u64 = 1000;

/// The offsets after `after` up to `tail`, highest first, in batches of at
/// most 1000 keys: a crash leaves the log dense, merely longer, but for
/// the deletes in flight at once. Offsets in a hole are deleted too, which
/// S3 counts as done.
fn deletion_batches(after: u64, tail: u64) -> impl Iterator<Item = Vec<u64>> {
    let mut next = tail;
    std::iter::from_fn(move || {
        if next <= after {
            return None;
        }
        let size = (next - after).min(DELETE_BATCH);
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
        Error::S3 {
            status,
            may_have_acted,
            ..
        } => crate::error::status_may_have_acted(*status) || *may_have_acted,
        Error::Protocol {
            kind: ProtocolKind::NotS3 { status, .. },
            ..
        } => *status >= 500,
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
            interrupted: || None,
            lease: DEFAULT_LEASE,
            allow_unsafe_takeover: false,
            notice: |_| {},
            deleting: |_, _| {},
            store,
            prefix,
        }
    }

    /// Holds fences (truncate, trim, repair) by a lease of `lease`, at
    /// least 2 s (the store's clock counts whole seconds): how long this command may stall before another
    /// machine takes its fence over, and how long a dead one's fence holds
    /// the others back. [`DEFAULT_LEASE`] unless set.
    pub fn lease(mut self, lease: Duration) -> Wal<S> {
        self.lease = lease.max(Duration::from_secs(2));
        self
    }

    /// Takes over a dead machine's fence even where the store does not
    /// refuse requests past their presigned expiry (or the fence's holder
    /// is an s3wal before leases): only safe if that machine is dead, not
    /// paused. Off by default.
    pub fn allow_unsafe_takeover(mut self, allow: bool) -> Wal<S> {
        self.allow_unsafe_takeover = allow;
        self
    }

    /// Calls `notice` with a sentence when this command waits for another
    /// machine's fence: what it waits for, and for how long.
    pub fn on_wait(mut self, notice: fn(&str)) -> Wal<S> {
        self.notice = notice;
        self
    }

    /// Tells `progress` how many records a truncate or trim has deleted,
    /// and of how many, after each batch: for a progress line.
    pub fn on_deleting(mut self, progress: fn(u64, u64)) -> Wal<S> {
        self.deleting = progress;
        self
    }

    /// Stops a wait for the local lock with [`Error::Interrupted`] when
    /// `check` names a signal: a caller that defers signals while it
    /// stores records can still be stopped while nothing is in flight.
    pub fn interrupted_by(mut self, check: Interruption) -> Wal<S> {
        self.interrupted = check;
        self
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
        self.prefix.scratch_key(&new_token())
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
    fn ensure_conditional_puts(&self, hint_read: &mut HintRead) -> Result<Conditional> {
        let result = match self.local.probe.load() {
            Some(result) => result,
            None => match self
                .hint_read(hint_read)?
                .conditional_for(&self.store.identity())
            {
                Some(result) => {
                    self.local.probe.store(result);
                    result
                }
                None => {
                    // Found now, so the store's hint is to remember it.
                    hint_read.repair = true;
                    self.probe_conditional_put()?
                }
            },
        };
        match result {
            Conditional::Ignored if !self.allow_unsafe_store => Err(Error::UnsafeStore),
            _ => Ok(result),
        }
    }

    /// What the store's hint says, read once per command when this machine
    /// has no hint of its own: from the listing of s3wal's own folder,
    /// which holds the fences too, kept for the appender to take its epoch
    /// from.
    fn hint_read<'r>(&self, hint_read: &'r mut HintRead) -> Result<&'r StoreHint> {
        if !hint_read.read {
            let fences = self.read_fences(u64::MAX)?;
            hint_read.saw(&self.prefix, &fences);
            hint_read.fences = Some(fences);
        }
        Ok(hint_read.hint.as_ref().unwrap_or(&NO_HINT))
    }

    /// The tail for a machine without a hint of its own: from the store's
    /// hint with one LIST of up to 1000 keys when the tail is that close
    /// to it, else by the search.
    fn cold_tail(&self, hint_read: &mut HintRead) -> Result<u64> {
        let hinted = match self.hint_read(hint_read)? {
            hint if hint.tail > 0 => hint.tail,
            _ => return self.search_tail(0),
        };
        let tail = self.tail_near(hinted)?;
        if hinted > tail || tail - hinted >= store_hint::EVERY {
            hint_read.repair = true;
        }
        Ok(tail)
    }

    /// The tail, found from `near`, an offset that held a record a moment
    /// ago: one LIST of up to 1000 keys from it when the tail is that
    /// close, as it is after a hint or a taken offset, else the search. One
    /// request per try is what lets a machine without a hint of its own
    /// catch up with one that appends flat out.
    fn tail_near(&self, near: u64) -> Result<u64> {
        let list_prefix = self.prefix.list_prefix();
        let before = self.prefix.key(near - 1);
        let page = self.store.list_page(&PageRequest {
            prefix: &list_prefix,
            start_after: Some(&before),
            continuation: None,
            max_keys: HINT_PAGE,
        })?;
        let last = page
            .keys
            .iter()
            .filter_map(|key| self.prefix.offset_of(key))
            .filter(|&offset| offset >= near)
            .max();
        let complete = page.continuation.is_none()
            || page
                .keys
                .iter()
                .any(|key| self.prefix.sorts_after_records(key));
        let tail = match (last, complete) {
            (Some(last), true) => last,
            (Some(last), false) => self.search_tail(last)?,
            // Nothing at or after it: the log is shorter now.
            (None, true) => self.run_search(TailSearch::below(near - 1))?,
            (None, false) => self.search_tail(0)?,
        };
        Ok(tail)
    }

    /// Writes the store's hint of `tail` when `hint_read` says it is
    /// missing or stale, or [`Rewrite::Now`], and deletes the hint keys it replaces
    /// (all of them for an empty log, which keeps nothing of s3wal's, as
    /// the seed expects); best effort, like every hint.
    fn keep_store_hint(&self, hint_read: &HintRead, tail: u64, rewrite: Rewrite) {
        if rewrite == Rewrite::IfStale && !hint_read.repair {
            return;
        }
        let replaced = match hint_read.read {
            true => hint_read.keys.clone(),
            // A truncate reads no hint: the keys it replaces are listed now.
            false => self
                .read_fences(u64::MAX)
                .map_or_else(|_| Vec::new(), |fences| hint_keys(&self.prefix, &fences)),
        };
        let written = match tail {
            0 => None,
            _ => {
                let conditional = self
                    .local
                    .probe
                    .load()
                    .map(|verdict| (verdict, store_hint::store_id(&self.store.identity())));
                let key = StoreHint { tail, conditional }.key(&self.prefix);
                self.store.overwrite(&key, b"").ok().map(|()| key)
            }
        };
        for key in replaced.iter().filter(|&key| Some(key) != written.as_ref()) {
            let _ = self.store.delete_key(key, None);
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

    /// Waits with `pause`: the interleaving explorer yields its turn.
    #[cfg(test)]
    pub(crate) fn pausing_with(mut self, pause: fn(Duration)) -> Wal<S> {
        self.pause = pause;
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
    pub(crate) fn first_record_after(&self, k: u64) -> Result<Option<u64>> {
        let list_prefix = self.prefix.list_prefix();
        let start_key = self.prefix.records_after(k);
        for key in self.store.keys(&list_prefix, Some(&start_key), PROBE_KEYS) {
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
        self.run_search(TailSearch::from(floor))
    }

    /// Runs `search` to its end.
    fn run_search(&self, mut search: TailSearch) -> Result<u64> {
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
        Ok(self.recover_listing()?.0)
    }

    /// The tail, and the listing of s3wal's own folder that read the
    /// store's hint when this machine had none to start from. Only reads
    /// the store: a stale hint is for the next append to write again, so
    /// that a read-only role can recover (and `last`, `stat`) in silence.
    fn recover_listing(&self) -> Result<(u64, Option<Fences>)> {
        let (tail, listing) = match self.confirmed_hint()? {
            0 => {
                let mut hint_read = HintRead::default();
                let tail = self.cold_tail(&mut hint_read)?;
                (tail, hint_read.fences)
            }
            hinted => (self.search_tail(hinted)?, None),
        };
        self.local.hint.store(tail);
        Ok((tail, listing))
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
        let _held = self.local.lock.acquire(self.interrupted)?;
        let mut records = records.into_iter().peekable();
        if records.peek().is_none() {
            return Ok(0);
        }
        self.finish_own_fence()?;
        let mut run = Appending::default();
        self.ensure_conditional_puts(&mut run.hint_read)?;
        run.place = self.place(&mut run.hint_read)?;
        let started = run.place.tail;
        let mut result = self.store_records(records, &mut run, &mut appended);
        if let Err(error) = result {
            result = Err(maybe_stored(error, &run.unconfirmed));
        }
        match run.standing {
            Some((tail, epoch)) if tail == run.place.tail && result.is_ok() => {
                self.local.hint.store_standing(tail, epoch);
            }
            _ => self.local.hint.store(run.place.tail),
        }
        let rewrite = match store_hint::due(started, run.place.tail) {
            true => Rewrite::Now,
            false => Rewrite::IfStale,
        };
        self.keep_store_hint(&run.hint_read, run.place.tail, rewrite);
        result.map(|()| run.count)
    }

    /// Where the next record goes: after the tail this machine appended
    /// and saw stand, without a look (the fence check after the PUT sees
    /// any fence that deleted it since); else after the hinted tail, if its
    /// record is still there (one HEAD); else after the tail found afresh.
    fn place(&self, hint_read: &mut HintRead) -> Result<Place> {
        if let Some((tail, epoch)) = self.local.hint.standing().filter(|&(tail, _)| tail > 0) {
            return Ok(Place { tail, epoch });
        }
        let hinted = self.local.hint.load().filter(|&tail| tail > 0);
        if let (Some(tail), Some(epoch)) = (hinted, self.local.fences.load().epoch)
            && let Some(place) = self.place_after(tail, epoch, TailFrom::ThisMachine)?
        {
            return Ok(place);
        }
        self.place_afresh(hint_read)
    }

    /// Where the next record goes, from the fences and the tail read now.
    fn place_afresh(&self, hint_read: &mut HintRead) -> Result<Place> {
        for _ in 0..MAX_PLACE_ROUNDS {
            let fences = match hint_read.fences.take() {
                Some(fences) if fences.running_truncate().is_none() => fences,
                _ => self.settled_fences()?,
            };
            hint_read.saw(&self.prefix, &fences);
            let epoch = fences.epoch();
            let tail = self.cold_tail(hint_read)?;
            if let Some(place) = self.place_after(tail, epoch, TailFrom::Listing)? {
                return Ok(place);
            }
        }
        Err(self.moved_too_often())
    }

    /// The place past `taken`, an offset another writer took.
    fn place_past(&self, taken: u64, epoch: u64) -> Result<Place> {
        match self.place_after(self.tail_near(taken)?, epoch, TailFrom::Listing)? {
            Some(place) => Ok(place),
            None => self.place_afresh(&mut HintRead::default()),
        }
    }

    /// The error of an append that kept finding its place moved.
    fn moved_too_often(&self) -> Error {
        Error::AppendGaveUp {
            attempts: MAX_PLACE_ROUNDS,
            offset: 0,
        }
    }

    /// Stores each record after `run.place`, acknowledging them in groups
    /// (see [`GROUP_RECORDS`]) once they stand: one run of consecutive
    /// offsets at a time.
    fn store_records<R: Into<Body>>(
        &self,
        records: impl Iterator<Item = R>,
        run: &mut Appending,
        appended: &mut impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut records = records.map(Into::into);
        let mut bytes = 0;
        let mut rounds = 0;
        // The run of records stored so far ended: a taken offset.
        let mut ended = false;
        loop {
            let full = ended || run.unconfirmed.len() >= GROUP_RECORDS || bytes >= GROUP_BYTES;
            let next = match full {
                true => None,
                false => run.again.pop_front().or_else(|| records.next()),
            };
            let Some(mut body) = next else {
                if run.unconfirmed.is_empty() {
                    return Ok(());
                }
                (bytes, ended) = (0, false);
                if self.confirm(run, appended)? {
                    rounds += 1;
                    if rounds >= MAX_PLACE_ROUNDS {
                        return Err(self.moved_too_often());
                    }
                    run.place = self.place_afresh(&mut run.hint_read)?;
                }
                continue;
            };
            let after = match run.unconfirmed.is_empty() {
                true => After::Confirmed,
                false => After::Unconfirmed,
            };
            match self.put_record(&mut run.place, &mut body, after)? {
                Some(offset) => {
                    run.place.tail = offset;
                    bytes += body.data().len();
                    run.unconfirmed.push(Unconfirmed {
                        offset,
                        epoch: run.place.epoch,
                        placed: self.store.store_time(),
                        body,
                    });
                }
                // Taken after records not yet confirmed: confirm them first.
                None => {
                    run.again.push_front(body);
                    ended = true;
                }
            }
        }
    }

    /// PUTs one record after `place` or, when that offset is taken, past
    /// the new tail (moving `place`); returns the offset it was written at.
    ///
    /// Every PUT of this record carries the same random token, so a PUT
    /// that landed but whose answer was lost is recognised as ours on the
    /// retry, instead of being written a second time at the next offset.
    ///
    /// A record placed [`After::Unconfirmed`] records: when its offset is
    /// taken it returns `None` instead, for them to be confirmed
    /// before the tail is looked for, so that the records confirmed
    /// together always lie one after the other.
    fn put_record(&self, place: &mut Place, body: &mut Body, after: After) -> Result<Option<u64>> {
        let token = new_token();
        let mut append = Append::at(next_offset(place.tail)?, APPEND_LIMITS);
        let mut step = append.start();
        // The error behind the last failed step, for a give-up to report.
        let mut failure = None;
        loop {
            let mut failed = |error: Error, may_have_landed| {
                failure = Some(error);
                Answer::Failed { may_have_landed }
            };
            let stamp = fence::stamp(&token, place.epoch);
            let answer = match step {
                Step::Put(offset) => {
                    let key = self.prefix.key(offset);
                    match self.store.put_if_absent(&key, body.at(offset), &stamp) {
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
                    Ok(head) => Answer::Token(match head {
                        Some(head) if head.token.as_deref() == Some(&stamp) => Found::Ours,
                        Some(_) => Found::Theirs,
                        None => Found::Nothing,
                    }),
                    Err(error) => failed(error, false),
                },
                Step::FindTail(_) if after == After::Unconfirmed => return Ok(None),
                Step::FindTail(taken) => {
                    *place = self.place_past(taken, place.epoch)?;
                    Answer::Tail(place.tail)
                }
                Step::Pause(up_to) => {
                    (self.pause)(up_to);
                    Answer::Resumed
                }
                Step::Stored(offset) => return Ok(Some(offset)),
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

    /// The record at `offset`, verified. A missing one is
    /// [`Error::Trimmed`] below the log's first record (one LIST more, only
    /// then), else [`Error::NotFound`].
    pub fn read(&self, offset: u64) -> Result<Record> {
        let Some(body) = self.store.get(&self.prefix.key(offset))? else {
            return Err(match self.first()? {
                Some(first) if offset < first => Error::Trimmed { offset, first },
                _ => Error::NotFound { offset },
            });
        };
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
        Ok(self.status()?.stat)
    }

    /// What [`Wal::stat`] says, the fence that runs now if one does (see
    /// [`Wal::running_fence`]) and the named cursors: from the listing that
    /// read the store's hint when one was made, else one LIST more, and a
    /// GET for each cursor.
    pub fn status(&self) -> Result<Status> {
        let first = self.first()?;
        let (stat, fences) = match first {
            None => (None, self.read_fences(u64::MAX)?),
            Some(first) => {
                let (last, listing) = self.recover_listing()?;
                let fences = match listing {
                    Some(fences) => fences,
                    None => self.read_fences(u64::MAX)?,
                };
                let stat = Stat {
                    first,
                    last,
                    records: last.saturating_sub(first) + 1,
                };
                (Some(stat), fences)
            }
        };
        Ok(Status {
            stat,
            running: self.running_fence_of(&fences)?,
            cursors: self.cursors_of(&fences)?,
        })
    }

    /// Deletes every record before offset `keep_from` (retention), so the
    /// log then starts there, and returns how many keys it deleted.
    ///
    /// Deletes from the lowest offset up, so an interrupted trim leaves a
    /// dense log that merely starts later than asked. Refuses to delete
    /// the last record: the tail is what keeps offsets going up. Runs under
    /// a fence, so that it and a truncate on another machine happen one
    /// after the other, and each decides on the log the other left.
    pub fn trim(&self, keep_from: u64) -> Result<u64> {
        let _held = self.local.lock.acquire(self.interrupted)?;
        self.finish_own_fence()?;
        let taken =
            self.take_fence(|| Ok(self.trim_plan(keep_from)?.map(|_| Kind::Trim(keep_from))))?;
        match taken {
            None => Ok(0),
            Some(mut held) => self.under_fence(&mut held, Kind::Trim(keep_from)),
        }
    }

    /// The offsets a trim keeping `keep_from` on would delete now, `None`
    /// when there are none: what `trim --dry-run` shows, and what a trim
    /// decides on before it takes its fence. Reads only.
    pub fn trim_plan(&self, keep_from: u64) -> Result<Option<RangeInclusive<u64>>> {
        let tail = self.recover()?;
        if keep_from > tail {
            return Err(Error::TrimPastTail { keep_from, tail });
        }
        let first = self.first()?;
        Ok(first
            .filter(|&first| first < keep_from)
            .map(|first| first..=keep_from - 1))
    }

    /// The work of a trim, under its fence.
    fn trim_held(&self, held: &mut Held, keep_from: u64) -> Result<u64> {
        let tail = self.standing_tail(held)?;
        if keep_from > tail {
            return Err(Error::TrimPastTail { keep_from, tail });
        }
        let Some(first) = self.first()? else {
            return Ok(0);
        };
        let mut deleted = 0;
        let mut next = first;
        while next < keep_from {
            let end = keep_from.min(next.saturating_add(DELETE_BATCH));
            let keys: Vec<String> = (next..end).map(|o| self.prefix.key(o)).collect();
            self.delete_fenced(held, &keys)?;
            deleted += end - next;
            next = end;
            (self.deleting)(deleted, keep_from - first);
        }
        Ok(deleted)
    }

    /// Deletes every record after offset `after` and returns how many keys
    /// it deleted.
    ///
    /// Runs under a fence: appenders on other machines that placed a record
    /// past the cut meanwhile find it doomed and remove it themselves.
    /// Deletes from the tail down, so an interrupted truncate leaves a
    /// dense log that is merely longer, and the next command on this
    /// machine finishes it. Never lists the whole log. A log that a trim
    /// made start at F > 1 can be cut after F or later only.
    pub fn truncate(&self, after: u64) -> Result<u64> {
        let _held = self.local.lock.acquire(self.interrupted)?;
        self.finish_own_fence()?;
        let taken =
            self.take_fence(|| Ok(self.truncate_plan(after)?.map(|_| Kind::Truncate(after))))?;
        match taken {
            None => Ok(0),
            Some(mut held) => self.under_fence(&mut held, Kind::Truncate(after)),
        }
    }

    /// The offsets a truncate after `after` would delete now, `None` when
    /// there are none: what `truncate --dry-run` shows, and what a truncate
    /// decides on before it takes its fence. Reads only.
    pub fn truncate_plan(&self, after: u64) -> Result<Option<RangeInclusive<u64>>> {
        self.refuse_below_first(after)?;
        let tail = self.search_tail(self.confirmed_hint()?)?;
        Ok((tail > after).then(|| after + 1..=tail))
    }

    /// Refuses to cut a trimmed log below its first record: it would hand
    /// out again offsets that readers have already consumed.
    pub(crate) fn refuse_below_first(&self, after: u64) -> Result<()> {
        match self.first()? {
            Some(first) if first > 1 && after < first => {
                Err(Error::TruncateBelowFirst { after, first })
            }
            _ => Ok(()),
        }
    }

    /// The work of a truncate, under its fence: deletes from the tail down
    /// and looks again, a few rounds, for records that appenders placed
    /// meanwhile (they are doomed, and their appenders remove any left).
    fn cut(&self, held: &mut Held, after: u64) -> Result<u64> {
        let mut deleted = 0;
        let mut tail = self.search_tail(self.confirmed_hint()?)?;
        for _ in 0..MAX_TRUNCATE_ROUNDS {
            if tail <= after {
                break;
            }
            let total = deleted + (tail - after);
            for batch in deletion_batches(after, tail) {
                let keys: Vec<String> = batch.iter().map(|&o| self.prefix.key(o)).collect();
                self.delete_fenced(held, &keys)?;
                deleted += batch.len() as u64;
                (self.deleting)(deleted, total);
            }
            tail = self.search_tail(after)?;
        }
        self.local.hint.store(tail);
        if deleted > 0 {
            self.keep_store_hint(&HintRead::default(), tail, Rewrite::Now);
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BodyKind;

    fn s3_error(status: u16, may_have_acted: bool) -> Error {
        Error::S3 {
            request: "PutObject wal/k".into(),
            status,
            permission: None,
            code: None,
            message: None,
            request_id: None,
            may_have_acted,
        }
    }

    #[test]
    fn a_refusal_after_a_lost_answer_may_have_stored_the_record() {
        assert!(may_have_landed(&s3_error(403, true)));
        assert!(!may_have_landed(&s3_error(403, false)));
    }

    /// S3 promises that a 503 SlowDown did nothing: a PUT that ends on one
    /// stored nothing, and says so (exit 1, not "may have been stored").
    #[test]
    fn a_final_slowdown_stored_nothing() {
        assert!(!may_have_landed(&s3_error(503, false)));
        assert!(
            may_have_landed(&s3_error(503, true)),
            "an earlier try may have"
        );
    }

    #[test]
    fn a_server_error_may_have_stored_the_record_whatever_its_body() {
        assert!(may_have_landed(&s3_error(500, false)));
        let gateway = Error::Protocol {
            request: "PutObject wal/k".into(),
            host: None,
            kind: ProtocolKind::NotS3 {
                status: 504,
                body: BodyKind::Html,
            },
            source: None,
        };
        assert!(may_have_landed(&gateway));
    }

    #[test]
    fn tokens_differ_between_appends() {
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 32);
    }

    #[test]
    fn scratch_key_is_never_longer_than_a_record_key() {
        let prefix = Prefix::new(&"p".repeat(954)).unwrap();
        let key = prefix.scratch_key(&new_token());
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
