//! Every interleaving, up to a bound, of the store requests of several
//! machines working on one log: a deterministic scheduler over the
//! in-memory store.
//!
//! Each machine is a thread running the real log code with a lock folder
//! of its own. Its store is a [`Gated`] view of one shared
//! [`MemoryStore`]: every request waits until the scheduler lets exactly
//! that machine go, so only one request runs at a time and the order is
//! the scheduler's. The explorer replays runs from scratch, depth first,
//! choosing at each step which waiting machine goes next, and bounds the
//! search by the number of preemptions (a switch away from a machine that
//! could have gone on), as stateless model checkers do: most bugs need
//! only one or two. A machine that waits for another (a running fence)
//! yields its turn instead of pausing, and a switch away from it is free.

use std::cell::Cell;
use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crate::error::Result;
use crate::local::{Conditional, LocalState};
use crate::memory::MemoryStore;
use crate::record::Prefix;
use crate::s3::{Deadline, ListPage, ObjectHead, PageRequest, PutOutcome};
use crate::store::Store;
use crate::wal::Wal;

/// Who may send the next request.
#[derive(Debug, Default)]
struct Turns {
    /// Machines waiting to send a request.
    waiting: BTreeSet<usize>,
    /// The machine whose request is running.
    running: Option<usize>,
    /// Machines whose work has ended.
    finished: BTreeSet<usize>,
    /// Waiting machines that paused before this request: they wait for
    /// another, so the scheduler lets others go first.
    yielded: BTreeSet<usize>,
}

/// The machines that may send the next request.
#[derive(Debug, Clone, Default)]
struct Choice {
    waiting: Vec<usize>,
    yielded: Vec<usize>,
}

impl Choice {
    /// The machine a run goes on with when the schedule does not say:
    /// the lowest that has not yielded.
    fn default(&self) -> usize {
        let ready = |m: &&usize| !self.yielded.contains(m);
        *self.waiting.iter().find(ready).unwrap_or(&self.waiting[0])
    }
}

thread_local! {
    /// Whether this machine paused since its last request.
    static YIELDED: Cell<bool> = const { Cell::new(false) };
}

/// The pause of the explorer's machines: gives up the turn.
fn yield_turn(_: std::time::Duration) {
    YIELDED.with(|y| y.set(true));
}

/// The scheduler's side of the machines' requests.
#[derive(Debug, Default)]
struct Gate {
    turns: Mutex<Turns>,
    changed: Condvar,
}

impl Gate {
    /// Blocks `machine` until the scheduler lets it send a request.
    fn enter(&self, machine: usize, yielded: bool) {
        let mut turns = self.turns.lock().unwrap();
        turns.waiting.insert(machine);
        if yielded {
            turns.yielded.insert(machine);
        }
        self.changed.notify_all();
        while turns.running != Some(machine) {
            turns = self.changed.wait(turns).unwrap();
        }
        turns.waiting.remove(&machine);
        turns.yielded.remove(&machine);
    }

    /// Ends `machine`'s request.
    fn leave(&self) {
        self.turns.lock().unwrap().running = None;
        self.changed.notify_all();
    }

    fn finish(&self, machine: usize) {
        self.turns.lock().unwrap().finished.insert(machine);
        self.changed.notify_all();
    }

    /// Waits until every machine is waiting or finished, and returns the
    /// waiting ones, in order; none when all have finished.
    fn settled(&self, machines: usize) -> Choice {
        let mut turns = self.turns.lock().unwrap();
        while turns.running.is_some() || turns.waiting.len() + turns.finished.len() < machines {
            turns = self.changed.wait(turns).unwrap();
        }
        Choice {
            waiting: turns.waiting.iter().copied().collect(),
            yielded: turns.yielded.iter().copied().collect(),
        }
    }

    fn run(&self, machine: usize) {
        self.turns.lock().unwrap().running = Some(machine);
        self.changed.notify_all();
    }
}

/// What the store does to a machine's next PUT of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// It stores the record and the answer is lost: the client sends it
    /// again and gets 412.
    LostAnswer,
    /// It answers 409 and stores nothing.
    Conflict,
    /// It stores the record, the answer is lost, and the resend gets 409.
    ConflictWhileOursLanded,
}

/// One machine's view of the shared store: every request takes its turn.
struct Gated {
    store: Arc<MemoryStore>,
    gate: Arc<Gate>,
    machine: usize,
    prefix: Prefix,
    /// What happens to this machine's next PUTs of records.
    faults: std::sync::Mutex<VecDeque<Fault>>,
}

impl Gated {
    fn turn<T>(&self, request: impl FnOnce(&MemoryStore) -> T) -> T {
        self.gate
            .enter(self.machine, YIELDED.with(|y| y.replace(false)));
        let answer = request(&self.store);
        self.gate.leave();
        answer
    }
}

impl Store for Gated {
    fn put_if_absent(&self, key: &str, body: &[u8], token: &str) -> Result<PutOutcome> {
        let fault = match self.prefix.offset_of(key) {
            Some(_) => self.faults.lock().unwrap().pop_front(),
            None => None,
        };
        self.turn(|store| {
            let outcome = match fault {
                Some(Fault::Conflict) => return Ok(PutOutcome::Conflict),
                _ => store.put_if_absent(key, body, token)?,
            };
            match fault {
                Some(Fault::LostAnswer) => Ok(PutOutcome::Exists { retried: true }),
                Some(Fault::ConflictWhileOursLanded) => Ok(PutOutcome::Conflict),
                _ => Ok(outcome),
            }
        })
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.turn(|store| store.get(key))
    }

    fn head(&self, key: &str) -> Result<Option<ObjectHead>> {
        self.turn(|store| store.head(key))
    }

    fn list_page(&self, page: &PageRequest<'_>) -> Result<ListPage> {
        self.turn(|store| store.list_page(page))
    }

    fn delete(&self, keys: &[String]) -> Result<()> {
        self.turn(|store| store.delete(keys))
    }

    fn overwrite(&self, key: &str, body: &[u8]) -> Result<()> {
        self.turn(|store| store.overwrite(key, body))
    }

    fn delete_key(&self, key: &str, deadline: Option<Deadline>) -> Result<()> {
        self.turn(|store| store.delete_key(key, deadline))
    }

    fn overwrite_until(&self, key: &str, body: &[u8], deadline: Deadline) -> Result<()> {
        self.turn(|store| store.overwrite_until(key, body, deadline))
    }

    fn store_time(&self) -> Option<i64> {
        self.store.store_time()
    }

    fn identity(&self) -> String {
        self.store.identity()
    }
}

/// Marks a machine finished when its thread ends, however it ends.
struct Finished<'a>(&'a Gate, usize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.finish(self.1);
    }
}

/// What one machine does with the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// Appends one record.
    Append,
    /// Appends one record, the store doing this to its first PUT.
    AppendWith(Fault),
    /// Appends two records, one command after the other: the second starts
    /// from the hint and epoch the first left.
    AppendTwice,
    /// Deletes every record after this offset.
    Truncate(u64),
    /// Deletes every record before this offset.
    Trim(u64),
}

/// What one machine's work returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Appends acknowledged at these offsets, with this data.
    Appended(Vec<(u64, Vec<u8>)>),
    /// A truncate or trim that succeeded.
    Done,
    /// The work failed with this message.
    Failed(String),
}

/// The end of one run: the log's records, and what each machine was told.
#[derive(Debug)]
pub(crate) struct Run {
    /// The offsets of the records left, in order.
    pub offsets: Vec<u64>,
    /// Each record's data, by offset.
    pub data: std::collections::BTreeMap<u64, Vec<u8>>,
    /// What each machine's work returned, in machine order.
    pub outcomes: Vec<Outcome>,
    /// Which machine sent each request, in order.
    pub trace: Vec<usize>,
}

impl Run {
    /// The steps of `machine`'s first and last request.
    pub(crate) fn span(&self, machine: usize) -> Option<(usize, usize)> {
        let first = self.trace.iter().position(|&m| m == machine)?;
        let last = self.trace.iter().rposition(|&m| m == machine)?;
        Some((first, last))
    }
}

/// A fresh folder for one machine's lock, hint and probe files.
fn machine_folder() -> PathBuf {
    static FOLDERS: AtomicU32 = AtomicU32::new(0);
    // Memory-backed where there is such a folder: each run writes a few
    // small files per machine.
    let shm = std::path::Path::new("/dev/shm");
    let base = match shm.is_dir() {
        true => shm.to_path_buf(),
        false => std::env::temp_dir(),
    };
    base.join(format!(
        "s3wal-schedule-{}-{}",
        std::process::id(),
        FOLDERS.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Runs `work` (one entry per machine) on a log holding records
/// `1..=initial`, choosing the machine of each request by `schedule` and,
/// past its end, the lowest waiting one. Returns the run and, for each
/// step, the machines that were waiting.
fn run(initial: u64, work: &[Work], schedule: &[usize]) -> (Run, Vec<Choice>) {
    let prefix = Prefix::new("wal").unwrap();
    let store = Arc::new(MemoryStore::new());
    for offset in 1..=initial {
        let body = crate::record::encode(offset, format!("initial {offset}").as_bytes());
        store.put(&prefix.key(offset), &body);
    }
    let gate = Arc::new(Gate::default());
    let folders: Vec<PathBuf> = work.iter().map(|_| machine_folder()).collect();
    let (trace, choices, outcomes) = thread::scope(|scope| {
        let handles: Vec<_> = work
            .iter()
            .enumerate()
            .map(|(machine, &job)| {
                let local = LocalState::in_dir(&folders[machine], "memory", "b", "wal");
                local.probe.store(Conditional::Enforced);
                let faults = match job {
                    Work::AppendWith(fault) => VecDeque::from([fault]),
                    _ => VecDeque::new(),
                };
                let wal = Wal::new(
                    Gated {
                        store: Arc::clone(&store),
                        gate: Arc::clone(&gate),
                        machine,
                        prefix: prefix.clone(),
                        faults: std::sync::Mutex::new(faults),
                    },
                    prefix.clone(),
                    local,
                )
                .pausing_with(yield_turn)
                // One request at a time per machine, as the gate expects.
                .parallel(1);
                let gate = Arc::clone(&gate);
                scope.spawn(move || {
                    // Finished even if the work panics, so that the
                    // scheduler never waits for a machine that is gone.
                    let _finished = Finished(&gate, machine);
                    perform(&wal, machine, job)
                })
            })
            .collect();
        let (mut trace, mut choices) = (Vec::new(), Vec::new());
        loop {
            let choice = gate.settled(work.len());
            if choice.waiting.is_empty() {
                break;
            }
            let next = schedule
                .get(trace.len())
                .copied()
                .filter(|m| choice.waiting.contains(m))
                .unwrap_or_else(|| choice.default());
            trace.push(next);
            choices.push(choice);
            gate.run(next);
        }
        let outcomes = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (trace, choices, outcomes)
    });
    for folder in folders {
        let _ = std::fs::remove_dir_all(folder);
    }
    let data: std::collections::BTreeMap<u64, Vec<u8>> = store
        .object_keys()
        .iter()
        .filter_map(|key| prefix.offset_of(key))
        .map(|offset| {
            let body = store.get(&prefix.key(offset)).unwrap().unwrap();
            (
                offset,
                crate::record::decode(offset, &body).unwrap().to_vec(),
            )
        })
        .collect();
    let run = Run {
        offsets: data.keys().copied().collect(),
        data,
        outcomes,
        trace,
    };
    (run, choices)
}

fn perform(wal: &Wal<Gated>, machine: usize, work: Work) -> Outcome {
    match work {
        Work::Append | Work::AppendWith(_) | Work::AppendTwice => {
            let times = if work == Work::AppendTwice { 2 } else { 1 };
            let mut acks = Vec::new();
            for n in 0..times {
                let data = format!("machine {machine}, record {n}").into_bytes();
                match wal.append(&data) {
                    Ok(offset) => acks.push((offset, data)),
                    Err(error) => return Outcome::Failed(error.to_string()),
                }
            }
            Outcome::Appended(acks)
        }
        Work::Truncate(after) => match wal.truncate(after) {
            Ok(_) => Outcome::Done,
            Err(error) => Outcome::Failed(error.to_string()),
        },
        Work::Trim(before) => match wal.trim(before) {
            Ok(_) => Outcome::Done,
            Err(error) => Outcome::Failed(error.to_string()),
        },
    }
}

/// How many times a schedule switches away from a machine that was
/// waiting to go on and had not yielded, or runs a machine that yielded
/// while another could go on: a spin that only makes runs longer.
fn preemptions(trace: &[usize], choices: &[Choice]) -> usize {
    let switches = trace
        .windows(2)
        .zip(&choices[1..])
        .filter(|(pair, choice)| {
            pair[0] != pair[1]
                && choice.waiting.contains(&pair[0])
                && !choice.yielded.contains(&pair[0])
        })
        .count();
    let spins = trace
        .iter()
        .zip(choices)
        .filter(|(m, choice)| choice.yielded.contains(m) && choice.default() != **m)
        .count();
    switches + spins
}

/// Runs every schedule of `work` with at most `bound` preemptions, calling
/// `check` on each run; returns how many runs it made.
pub(crate) fn explore(initial: u64, work: &[Work], bound: usize, check: impl Fn(&Run)) -> u64 {
    let mut pending: Vec<Vec<usize>> = vec![Vec::new()];
    let mut runs = 0;
    while let Some(prefix) = pending.pop() {
        let (run, choices) = run(initial, work, &prefix);
        runs += 1;
        check(&run);
        // Every other choice at every step past the prefix is a new
        // schedule, as long as it stays within the bound.
        for step in prefix.len()..run.trace.len() {
            let others = choices[step].waiting.iter();
            for &other in others.filter(|&&m| m != run.trace[step]) {
                let mut next = run.trace[..step].to_vec();
                next.push(other);
                if preemptions(&next, &choices[..=step]) <= bound {
                    pending.push(next);
                }
            }
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The properties every run must keep, whatever the interleaving:
    ///
    /// 1. the records left are dense from the first to the last;
    /// 2. no data is stored twice, and an acknowledged append is still
    ///    there, unless a truncate that cut below it succeeded and did not
    ///    end before the append began;
    /// 3. offsets never start again: an acknowledged offset is past the
    ///    initial tail unless a truncate cut below it, and a log is never
    ///    emptied but by a truncate.
    fn check(run: &Run, initial: u64, work: &[Work]) {
        let dense: Vec<u64> = match (run.offsets.first(), run.offsets.last()) {
            (Some(&first), Some(&last)) => (first..=last).collect(),
            _ => Vec::new(),
        };
        assert_eq!(run.offsets, dense, "a hole: {run:?}");
        let mut seen = BTreeSet::new();
        for data in run.data.values() {
            assert!(seen.insert(data), "stored twice: {run:?}");
        }
        let truncates: Vec<(u64, (usize, usize))> = work
            .iter()
            .zip(&run.outcomes)
            .enumerate()
            .filter_map(|(machine, pair)| match pair {
                (Work::Truncate(after), Outcome::Done) => Some((*after, run.span(machine)?)),
                _ => None,
            })
            .collect();
        let trimmed_below = work
            .iter()
            .zip(&run.outcomes)
            .filter_map(|pair| match pair {
                (Work::Trim(before), Outcome::Done) => Some(*before),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let mut handed_out = BTreeSet::new();
        for (machine, outcome) in run.outcomes.iter().enumerate() {
            let Outcome::Appended(acks) = outcome else {
                continue;
            };
            for (offset, data) in acks {
                let cut_below = truncates.iter().any(|&(after, _)| after < *offset);
                assert!(
                    handed_out.insert(*offset) || cut_below,
                    "offset {offset} handed out twice: {run:?}"
                );
                let began = run.span(machine).map_or(0, |(first, _)| first);
                let cut_after =
                    |&(after, (_, end)): &(u64, (usize, usize))| after < *offset && end > began;
                assert!(
                    truncates.iter().any(cut_after)
                        || *offset < trimmed_below
                        || run.data.get(offset) == Some(data),
                    "acknowledged {offset} lost: {run:?}"
                );
                let lowest_cut = truncates.iter().map(|&(after, _)| after).min();
                assert!(
                    *offset > lowest_cut.unwrap_or(initial).min(initial),
                    "offset {offset} handed out again: {run:?}"
                );
            }
        }
        if truncates.is_empty() && initial > 0 {
            assert!(
                !run.offsets.is_empty(),
                "emptied without a truncate: {run:?}"
            );
        }
    }

    /// Explores `work` on a log of `initial` records and checks every run,
    /// with `bound` preemptions, or `S3WAL_EXPLORE_BOUND` for a deeper
    /// search by hand (2 takes minutes where 1 takes seconds).
    fn explore_checked(initial: u64, work: &[Work], bound: usize) -> u64 {
        let bound = std::env::var("S3WAL_EXPLORE_BOUND")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(bound);
        let started = std::time::Instant::now();
        let runs = explore(initial, work, bound, |run| check(run, initial, work));
        eprintln!(
            "{work:?} on {initial} records, {bound} preemption(s): {runs} schedules in {:?}",
            started.elapsed()
        );
        runs
    }

    #[test]
    fn scheduler_replays_a_schedule_exactly() {
        let work = [Work::Append, Work::Append];
        let (first, _) = run(2, &work, &[1, 0, 1, 0]);
        let (again, _) = run(2, &work, &first.trace);
        assert_eq!(first.trace, again.trace);
        assert_eq!(first.outcomes, again.outcomes);
    }

    #[test]
    fn two_appenders_never_share_an_offset_in_any_schedule() {
        let work = [Work::Append, Work::Append];
        let runs = explore(3, &work, 3, |run| {
            check(run, 3, &work);
            let appended = run
                .outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Appended(..)));
            assert_eq!(appended.count(), 2, "{run:?}");
        });
        assert!(runs > 200, "only {runs} schedules");
    }

    #[test]
    fn appenders_racing_a_trim_leave_no_hole_in_any_schedule() {
        let work = [Work::Append, Work::Append, Work::Trim(3)];
        let runs = explore_checked(3, &work, 1);
        assert!(runs > 300, "only {runs} schedules");
    }

    /// An appender that looked at its hinted tail before a trim and PUT
    /// after it would place a record below the trimmed start, at an offset
    /// handed out before: trims doom such records too.
    #[test]
    fn warm_appenders_racing_a_trim_never_hand_out_an_offset_twice() {
        let work = [Work::AppendTwice, Work::AppendTwice, Work::Trim(6)];
        let runs = explore_checked(3, &work, 1);
        assert!(runs > 500, "only {runs} schedules");
    }

    /// The zombie appender of issue 10: an append that looked at the tail
    /// before a truncate and PUT after it. Fences doom its record, and it
    /// is removed and placed again.
    #[test]
    fn appenders_racing_a_truncate_leave_no_hole_in_any_schedule() {
        let work = [Work::Append, Work::Append, Work::Truncate(1)];
        let runs = explore_checked(3, &work, 1);
        assert!(runs > 1000, "only {runs} schedules");
    }

    #[test]
    fn appenders_with_lost_answers_and_409s_racing_a_truncate_leave_no_hole() {
        for fault in [
            Fault::LostAnswer,
            Fault::Conflict,
            Fault::ConflictWhileOursLanded,
        ] {
            let work = [Work::AppendWith(fault), Work::Append, Work::Truncate(1)];
            let runs = explore_checked(3, &work, 1);
            assert!(runs > 1000, "only {runs} schedules");
        }
    }

    #[test]
    fn a_truncate_that_empties_the_log_racing_appenders_leaves_no_hole() {
        let work = [Work::Append, Work::Append, Work::Truncate(0)];
        let runs = explore_checked(2, &work, 1);
        assert!(runs > 300, "only {runs} schedules");
    }

    /// Every outcome of a trim and a truncate racing must be one of running
    /// them one after the other, in either order.
    #[test]
    fn a_trim_and_a_truncate_end_as_if_run_one_after_the_other() {
        for (keep_from, after) in [(4, 2), (2, 4), (3, 3), (5, 1)] {
            let work = [Work::Trim(keep_from), Work::Truncate(after)];
            let initial = 6;
            let sequential = [
                trim_then_truncate(initial, keep_from, after),
                truncate_then_trim(initial, keep_from, after),
            ];
            let runs = explore(initial, &work, 1, |run| {
                let done: Vec<bool> = run.outcomes.iter().map(|o| *o == Outcome::Done).collect();
                let outcome = (run.offsets.clone(), done);
                assert!(
                    sequential.contains(&outcome),
                    "{outcome:?} not in {sequential:?}: {run:?}"
                );
            });
            assert!(runs > 20, "only {runs} schedules");
        }
    }

    /// The log, and whether [trim, truncate] succeeded, when the trim runs
    /// first on a log of records `1..=n`.
    fn trim_then_truncate(n: u64, keep_from: u64, after: u64) -> (Vec<u64>, Vec<bool>) {
        let first = keep_from.max(1);
        match after < first && first > 1 {
            true => ((first..=n).collect(), vec![true, false]),
            false => ((first..=after.min(n)).collect(), vec![true, true]),
        }
    }

    /// The same when the truncate runs first.
    fn truncate_then_trim(n: u64, keep_from: u64, after: u64) -> (Vec<u64>, Vec<bool>) {
        let tail = after.min(n);
        match keep_from > tail {
            true => ((1..=tail).collect(), vec![false, true]),
            false => ((keep_from..=tail).collect(), vec![true, true]),
        }
    }
}
