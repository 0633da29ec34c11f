//! Reading a range of records in order with a bounded pool of threads.
//!
//! Records are fetched by as many workers as the log's
//! [`parallel`](Wal::parallel) setting allows, but handed out strictly in
//! offset order; workers never run more than a window of a few records per
//! worker, nor about `BYTE_BUDGET` bytes, ahead of the consumer, so memory
//! stays flat however long the range is and however big its records are.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::log::wal::{Record, Stat, Wal};
use crate::store::Store;

/// The first pause of `follow` on an idle log; it doubles up to
/// [`FOLLOW_MAX_WAIT`] and starts over when a record comes.
pub const FOLLOW_FIRST_WAIT: Duration = Duration::from_millis(100);
/// From this pause on, an idle `follow` also looks past the record it
/// waits for (one short LIST a poll), so that a hole is reported instead
/// of waited at for ever.
const HOLE_CHECK_AFTER: Duration = Duration::from_secs(1);
/// The longest pause between two polls of `follow`.
pub const FOLLOW_MAX_WAIT: Duration = Duration::from_secs(5);

/// Records fetched, or being fetched, ahead of the one being handed out,
/// per worker: room for the others to go on while one request stalls.
const WINDOW_PER_WORKER: u64 = 4;
/// Bytes of records fetched, or being fetched, ahead of the consumer. A
/// record's size is known only once it is read, so a fetch is started when
/// the budget has room for one more record as big as the biggest seen so
/// far; the record the consumer waits for is always fetched, so records
/// bigger than the budget still go through, one at a time.
const BYTE_BUDGET: u64 = 64 * 1024 * 1024;

/// What the workers and the consumer share.
struct Progress<I> {
    /// The offsets still to fetch.
    offsets: I,
    /// How many offsets have been taken for fetching.
    next_fetch: u64,
    /// Index of the next record to hand out.
    next_visit: u64,
    /// Fetched records not yet handed out, by index.
    fetched: BTreeMap<u64, (u64, Result<Record>)>,
    /// Set when `offsets` has run out.
    exhausted: bool,
    /// Set when the consumer stops early.
    stopped: bool,
    /// Data bytes of the records in `fetched`.
    buffered: u64,
    /// Fetches under way.
    in_flight: u64,
    /// The biggest record read so far, `None` before the first.
    biggest: Option<u64>,
    /// How many records may be fetched ahead of the consumer.
    window: u64,
}

impl<I> Progress<I> {
    /// Whether a worker may start fetching the next record: it is the one
    /// the consumer waits for, or the window and the byte budget have room
    /// for it.
    fn may_fetch(&self) -> bool {
        if self.next_fetch == self.next_visit {
            return true;
        }
        let Some(biggest) = self.biggest else {
            return false;
        };
        self.next_fetch < self.next_visit + self.window
            && self.buffered + (self.in_flight + 1) * biggest <= BYTE_BUDGET
    }
}

/// The records between the workers that fetch them and the consumer that
/// takes them in order, with two condition variables, so that a change
/// wakes only whoever it concerns: with one, every record fetched woke
/// every idle worker (up to 256) to find no room and sleep again.
struct Pipeline<I> {
    progress: Mutex<Progress<I>>,
    /// The record the consumer waits for has arrived, or the end.
    arrived: Condvar,
    /// A worker may fetch. Each change that can make room wakes one
    /// worker, and a worker that takes an offset and still sees room wakes
    /// the next, so room for many wakes as many, one by one.
    room: Condvar,
}

impl<I: Iterator<Item = u64>> Pipeline<I> {
    fn new(offsets: I, window: u64) -> Pipeline<I> {
        Pipeline {
            progress: Mutex::new(Progress {
                offsets,
                next_fetch: 0,
                next_visit: 0,
                fetched: BTreeMap::new(),
                exhausted: false,
                stopped: false,
                buffered: 0,
                in_flight: 0,
                biggest: None,
                window,
            }),
            arrived: Condvar::new(),
            room: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Progress<I>> {
        self.progress
            .lock()
            .expect("no panics while holding the lock")
    }

    /// The next offset for a worker to fetch, with its index, once there
    /// is room; `None` when the offsets ran out or the consumer stopped.
    fn take(&self) -> Option<(u64, u64)> {
        let mut p = self.lock();
        while !p.stopped && !p.exhausted && !p.may_fetch() {
            p = self.room.wait(p).expect("no panics while waiting");
        }
        if p.stopped || p.exhausted {
            return None;
        }
        let Some(offset) = p.offsets.next() else {
            p.exhausted = true;
            self.arrived.notify_one();
            self.room.notify_all();
            return None;
        };
        p.next_fetch += 1;
        p.in_flight += 1;
        if p.may_fetch() {
            self.room.notify_one();
        }
        Some((p.next_fetch - 1, offset))
    }

    /// Hands in the record fetched for `index`. Room this opens (a first
    /// size known, one below the biggest) is taken by the worker's next
    /// [`Pipeline::take`], and passed on from there.
    fn deliver(&self, index: u64, offset: u64, record: Result<Record>) {
        let size = record.as_ref().map_or(0, |r| r.data.len() as u64);
        let mut p = self.lock();
        p.in_flight -= 1;
        p.buffered += size;
        p.biggest = Some(p.biggest.unwrap_or(0).max(size));
        p.fetched.insert(index, (offset, record));
        if index == p.next_visit {
            self.arrived.notify_one();
        }
    }

    /// The record at `index`, once fetched; `None` past the last.
    fn handed_out(&self, index: u64) -> Option<(u64, Result<Record>)> {
        let next = {
            let mut p = self.lock();
            loop {
                if let Some(done) = p.fetched.remove(&index) {
                    p.next_visit = index + 1;
                    p.buffered -= done.1.as_ref().map_or(0, |r| r.data.len() as u64);
                    break Some(done);
                }
                if p.exhausted && index >= p.next_fetch {
                    break None;
                }
                p = self.arrived.wait(p).expect("no panics while waiting");
            }
        };
        self.room.notify_one();
        next
    }

    /// The consumer stopped: workers finish what they fetch and take no more.
    fn stop(&self) {
        self.lock().stopped = true;
        self.room.notify_all();
    }
}

/// What a read from an offset a trim deleted does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trimmed {
    /// Fails with [`Error::Trimmed`]: a consumer learns it missed records.
    Refuse,
    /// Starts at the log's first record instead.
    Skip,
}

impl Trimmed {
    /// Where a read asked to start at `from` (the log's first record when
    /// `None`) starts in a log whose first record is `first`.
    pub fn start(self, from: Option<u64>, first: u64) -> Result<u64> {
        match (from, self) {
            (Some(offset), Trimmed::Refuse) if offset < first => {
                Err(Error::Trimmed { offset, first })
            }
            (Some(from), _) => Ok(from.max(first)),
            (None, _) => Ok(first),
        }
    }
}

/// How often a follow that waits for the next record asks its caller
/// whether to go on.
const IDLE_CHECK: Duration = Duration::from_millis(100);

/// Sleeps for `wait`, asking `idle` every [`IDLE_CHECK`], with the time
/// since `last_record`, whether to stop.
fn pause(
    wait: Duration,
    last_record: Instant,
    idle: &mut impl FnMut(Duration) -> Result<ControlFlow<()>>,
) -> Result<ControlFlow<()>> {
    let mut left = wait;
    while !left.is_zero() {
        if idle(last_record.elapsed())?.is_break() {
            return Ok(ControlFlow::Break(()));
        }
        let slice = left.min(IDLE_CHECK);
        thread::sleep(slice);
        left -= slice;
    }
    Ok(ControlFlow::Continue(()))
}

impl Stat {
    /// The first and last offsets of `from..=to` that lie inside a log
    /// with these ends, or `None` when none do. Open ends default to the
    /// log's own. A `from` below the first record is [`Error::Trimmed`],
    /// unless `trimmed` says to [`Trimmed::Skip`] to the first.
    pub fn clamp(
        &self,
        from: Option<u64>,
        to: Option<u64>,
        trimmed: Trimmed,
    ) -> Result<Option<(u64, u64)>> {
        let from = trimmed.start(from, self.first)?;
        let to = to.map_or(self.last, |to| to.min(self.last));
        Ok((from <= to).then_some((from, to)))
    }
}

impl<S: Store + Sync> Wal<S> {
    /// The log's first and last records, `None` for an empty log: one LIST
    /// and the tail search, as [`Wal::stat`] without the fences.
    pub fn ends(&self) -> Result<Option<Stat>> {
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

    /// Reads records `from..=to` and calls `visit` with each, in offset
    /// order. Stops at the first missing or corrupt record, or at the first
    /// error `visit` returns.
    pub fn read_range(
        &self,
        from: u64,
        to: u64,
        mut visit: impl FnMut(Record) -> Result<()>,
    ) -> Result<()> {
        let flow = self.read_each(from..=to, |_, record| {
            visit(record?).map(|()| ControlFlow::Continue(()))
        });
        flow.map(|_| ())
    }

    /// Reads the record at each of `offsets` and calls `visit` with the
    /// offset and what reading it gave, in the order of `offsets`. Stops at
    /// the first error `visit` returns, or when it says to break: then
    /// returns [`ControlFlow::Break`].
    pub fn read_each(
        &self,
        offsets: impl Iterator<Item = u64> + Send,
        mut visit: impl FnMut(u64, Result<Record>) -> Result<ControlFlow<()>>,
    ) -> Result<ControlFlow<()>> {
        // No more workers than records: `follow` reads a few at a time.
        // At least one, which finds out that the offsets have run out.
        let workers = match offsets.size_hint() {
            (_, Some(most)) => self.parallelism().min(most).max(1),
            (_, None) => self.parallelism(),
        };
        let pipeline = Pipeline::new(offsets, WINDOW_PER_WORKER * self.parallelism() as u64);
        thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    while let Some((index, offset)) = pipeline.take() {
                        pipeline.deliver(index, offset, self.read(offset));
                    }
                });
            }
            let mut outcome = Ok(ControlFlow::Continue(()));
            for index in 0.. {
                let Some((offset, record)) = pipeline.handed_out(index) else {
                    break;
                };
                outcome = visit(offset, record);
                if !matches!(outcome, Ok(ControlFlow::Continue(()))) {
                    break;
                }
            }
            pipeline.stop();
            outcome
        })
    }

    /// Reads the records from `from` on, in order, then waits for new ones
    /// like `tail -f`: one HEAD of the next offset per poll, pausing from
    /// 0.1 s up to 5 s while the log is idle. Goes on until `visit` or
    /// `idle` says to break (or fails): `visit` with each record, `idle`
    /// every 0.1 s of a pause with how long no record came (whether
    /// whoever reads the records is still there, or an idle timeout), so a
    /// follow can end while the log is quiet, not only at its next record.
    pub fn follow(
        &self,
        from: u64,
        mut visit: impl FnMut(Record) -> Result<ControlFlow<()>>,
        mut idle: impl FnMut(Duration) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let mut last_record = Instant::now();
        let mut next = from;
        let mut wait = FOLLOW_FIRST_WAIT;
        // A later record seen while `next` is missing: a hole, once seen
        // twice in a row (a truncate's batch may delete out of order).
        let mut suspect = None;
        loop {
            if self.store().head(&self.prefix().key(next))?.is_some() {
                let tail = self.recover()?;
                if self
                    .read_each(next..=tail, |_, record| visit(record?))?
                    .is_break()
                {
                    return Ok(());
                }
                last_record = Instant::now();
                next = tail.checked_add(1).ok_or(Error::LogFull)?;
                wait = FOLLOW_FIRST_WAIT;
                suspect = None;
                continue;
            }
            if wait >= HOLE_CHECK_AFTER {
                match self.first_record_after(next)? {
                    Some(later) if suspect == Some(later) => {
                        return Err(Error::Hole {
                            first: next,
                            last: later - 1,
                        });
                    }
                    later => suspect = later,
                }
            }
            if pause(wait, last_record, &mut idle)?.is_break() {
                return Ok(());
            }
            wait = (wait * 2).min(FOLLOW_MAX_WAIT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalState;
    use crate::log::keys::Prefix;
    use crate::store::memory::MemoryStore;

    /// Progress with `ahead` records fetched or being fetched past the one
    /// the consumer waits for.
    fn progress(ahead: u64, buffered: u64, in_flight: u64, biggest: Option<u64>) -> Progress<()> {
        Progress {
            offsets: (),
            next_fetch: 10 + ahead,
            next_visit: 10,
            fetched: BTreeMap::new(),
            exhausted: false,
            stopped: false,
            buffered,
            in_flight,
            biggest,
            window: 32,
        }
    }

    #[test]
    fn the_record_the_consumer_waits_for_is_always_fetched() {
        assert!(progress(0, 0, 0, None).may_fetch());
        assert!(progress(0, 0, 0, Some(10 * BYTE_BUDGET)).may_fetch());
    }

    #[test]
    fn nothing_is_fetched_ahead_before_a_record_size_is_known() {
        assert!(!progress(1, 0, 1, None).may_fetch());
    }

    #[test]
    fn small_records_are_fetched_up_to_the_window() {
        assert!(progress(31, 100, 8, Some(10)).may_fetch());
        assert!(!progress(32, 100, 8, Some(10)).may_fetch());
    }

    #[test]
    fn big_records_are_fetched_within_the_byte_budget() {
        let big = BYTE_BUDGET / 4;
        assert!(progress(2, 2 * big, 1, Some(big)).may_fetch());
        assert!(!progress(3, 3 * big, 1, Some(big)).may_fetch());
        assert!(!progress(1, 0, 1, Some(BYTE_BUDGET)).may_fetch());
    }

    #[test]
    fn many_workers_hand_out_every_record_once_in_order() {
        let folder = std::env::temp_dir().join(format!("s3wal-range-{}", std::process::id()));
        let local = LocalState::in_dir(&folder, "memory", "bucket", "wal");
        let wal = Wal::new(MemoryStore::new(), Prefix::new("wal").unwrap(), local).parallel(256);
        let data: Vec<String> = (1..=300).map(|n| format!("r{n}")).collect();
        wal.append_batch(&data).unwrap();
        let mut seen = Vec::new();
        for (from, to) in [(1, 300), (7, 7)] {
            wal.read_range(from, to, |record| {
                seen.push(record.offset);
                Ok(())
            })
            .unwrap();
        }
        std::fs::remove_dir_all(folder).unwrap();
        assert_eq!(seen, (1..=300).chain([7]).collect::<Vec<u64>>());
    }
}
