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
//!
//! The store has a clock of its own, which moves only when a machine
//! pauses (by the length of the pause) or wakes from a stop: leases run
//! out exactly when the machines' waits say they do, in every replay.
//! One machine may meet a [`Fate`]: die for ever at one of its requests,
//! or stop there and wake once all the others have finished, after the
//! store's clock jumped past every lease (issue 16: nobody waits on the
//! dead, and the late are harmless).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crate::error::{Error, Result, TransportKind};
use crate::local::{Conditional, LocalState};
use crate::memory::MemoryStore;
use crate::record::Prefix;
use crate::s3::{Deadline, ListPage, ObjectHead, PageRequest, PutOutcome};
use crate::store::Store;
use crate::wal::Wal;

/// The store's clock when a run starts, in milliseconds since the Unix
/// epoch (2027-01-15): any time will do, as long as it is the store's.
const START_MS: i64 = 1_800_000_000_000;

/// The lease every machine holds its fences by: short, so that a waiting
/// machine takes a dead one's fence over after a dozen reads of the
/// fences (its pauses grow to 0.5 s; the lease and the 2 s margin are 4 s).
const LEASE: Duration = Duration::from_secs(2);

/// How far the store's clock jumps while a stopped machine sleeps: far
/// past its lease, as for a machine frozen for a minute.
const STOPPED_FOR_MS: i64 = 60_000;

/// The most requests one run makes: a run that reaches it has a machine
/// that never ends (it waits for a fence nobody will settle, or spins).
const MAX_STEPS: usize = 5_000;

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
    /// Machines stopped until every other one has finished.
    stopped: BTreeSet<usize>,
    /// The fated machine met its fate.
    fate_met: bool,
    /// The run went on too long: every request fails at once, so that
    /// every machine ends.
    cut_off: bool,
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
    /// How long this machine paused since its last request: the store's
    /// clock moves by it when that machine sends its next request.
    static PAUSED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// The pause of the explorer's machines: gives up the turn, and lets the
/// store's clock move by `pause` before this machine's next request. Not
/// at once: another machine's request may be running, and what time it
/// saw would then depend on the threads, not on the schedule.
fn yield_turn(pause: Duration) {
    YIELDED.with(|y| y.set(true));
    PAUSED.with(|p| p.set(p.get() + pause));
}

/// The scheduler's side of the machines' requests.
#[derive(Debug, Default)]
struct Gate {
    turns: Mutex<Turns>,
    changed: Condvar,
}

impl Gate {
    fn turns(&self) -> std::sync::MutexGuard<'_, Turns> {
        // A machine that panicked leaves the turns whole: every change is
        // made under the lock in one piece.
        self.turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Blocks `machine` until the scheduler lets it send a request; false
    /// once the run is cut off.
    fn enter(&self, machine: usize, yielded: bool) -> bool {
        let mut turns = self.turns();
        if turns.cut_off {
            return false;
        }
        turns.waiting.insert(machine);
        if yielded {
            turns.yielded.insert(machine);
        }
        self.changed.notify_all();
        while turns.running != Some(machine) && !turns.cut_off {
            turns = self.changed.wait(turns).unwrap();
        }
        turns.waiting.remove(&machine);
        turns.yielded.remove(&machine);
        !turns.cut_off
    }

    /// Ends `machine`'s request.
    fn leave(&self) {
        self.turns().running = None;
        self.changed.notify_all();
    }

    fn finish(&self, machine: usize) {
        self.turns().finished.insert(machine);
        self.changed.notify_all();
    }

    /// Blocks `machine` until the scheduler wakes it, once every other
    /// machine has finished (or the run is cut off).
    fn stop(&self, machine: usize) {
        let mut turns = self.turns();
        turns.stopped.insert(machine);
        self.changed.notify_all();
        while turns.stopped.contains(&machine) && !turns.cut_off {
            turns = self.changed.wait(turns).unwrap();
        }
        turns.stopped.remove(&machine);
    }

    /// Wakes the lowest stopped machine; false when none is stopped.
    fn wake(&self) -> bool {
        let woken = self.turns().stopped.pop_first().is_some();
        self.changed.notify_all();
        woken
    }

    fn meet_fate(&self) {
        self.turns().fate_met = true;
    }

    /// Makes every request from now on fail at once.
    fn cut_off(&self) {
        self.turns().cut_off = true;
        self.changed.notify_all();
    }

    /// Waits until every machine is waiting, stopped or finished, and
    /// returns the waiting ones, in order; none when all have finished
    /// or stopped.
    fn settled(&self, machines: usize) -> Choice {
        let mut turns = self.turns();
        let settled = |t: &Turns| t.waiting.len() + t.stopped.len() + t.finished.len();
        while turns.running.is_some() || settled(&turns) < machines {
            turns = self.changed.wait(turns).unwrap();
        }
        Choice {
            waiting: turns.waiting.iter().copied().collect(),
            yielded: turns.yielded.iter().copied().collect(),
        }
    }

    fn run(&self, machine: usize) {
        self.turns().running = Some(machine);
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

/// How a fated machine's work ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Killed, for ever: it sends nothing more (its requests fail at once
    /// and take no turn), and its lock folder is gone with it.
    Dies,
    /// Frozen (SIGSTOP, a VM migrated, a laptop closed) until every other
    /// machine has finished, then woken after the store's clock jumped
    /// [`STOPPED_FOR_MS`] ahead: its request arrives late.
    Stops,
}

/// Where one machine's work ends unexpectedly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fate {
    pub machine: usize,
    /// Its request, counted from 0 over every request it sends, at which
    /// it dies or stops.
    pub at: u32,
    /// Whether that request reaches the store first: the machine dies
    /// with its answer lost, or stops before the answer comes back.
    pub applied: bool,
    pub ending: Ending,
}

/// What a run's store and machines are beyond their work.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Setup {
    /// The one machine that dies or stops, and where.
    pub fate: Option<Fate>,
    /// The store accepts requests past their deadline, as moto does.
    pub ignores_expiry: bool,
    /// Every machine takes over fences even where that is not safe.
    pub allow_unsafe_takeover: bool,
}

/// The error of every request of a machine that died: whatever it tries,
/// nothing reaches the store.
fn dead(request: &str) -> Error {
    Error::Transport {
        request: request.to_owned(),
        host: "memory".into(),
        kind: TransportKind::Reset,
        attempts: 1,
        elapsed: Duration::ZERO,
        body_never_arrived: false,
        source: "the machine died".into(),
    }
}

/// One machine's view of the shared store: every request takes its turn.
struct Gated {
    store: Arc<MemoryStore>,
    gate: Arc<Gate>,
    machine: usize,
    prefix: Prefix,
    /// What happens to this machine's next PUTs of records.
    faults: Mutex<VecDeque<Fault>>,
    /// Where this machine dies or stops, if it does.
    fate: Option<Fate>,
    /// Starts only once every other machine has finished: the next
    /// command after a death, which must find the log whole.
    late: bool,
    /// The requests it sent or tried so far.
    requests: AtomicU32,
    /// It died: its requests fail at once.
    died: AtomicBool,
    /// The store's time at its latest answer, in seconds: the `Date`
    /// header a real store sends.
    date: Mutex<Option<i64>>,
}

impl Gated {
    /// Sends `request` (named `what`) in this machine's turn, moving the
    /// store's clock first by the time it paused; meets its fate there if
    /// this is its request.
    fn turn<T>(&self, what: &str, request: impl FnOnce(&MemoryStore) -> Result<T>) -> Result<T> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        if self.died.load(Ordering::SeqCst) {
            return Err(dead(what));
        }
        let fate = self.fate.filter(|fate| fate.at == n);
        if fate.is_some() {
            self.gate.meet_fate();
        }
        if self.late && n == 0 {
            self.gate.stop(self.machine);
        }
        match fate.map(|fate| (fate.ending, fate.applied)) {
            Some((Ending::Dies, false)) => return Err(self.die(what)),
            Some((Ending::Stops, false)) => self.gate.stop(self.machine),
            _ => {}
        }
        if !self
            .gate
            .enter(self.machine, YIELDED.with(|y| y.replace(false)))
        {
            return Err(self.die(what));
        }
        let paused = PAUSED.with(|p| p.replace(Duration::ZERO));
        self.store.advance(paused.as_millis() as i64);
        let answer = request(&self.store);
        *self.date.lock().unwrap() = self.store.store_time();
        self.gate.leave();
        match fate.map(|fate| fate.ending) {
            Some(Ending::Dies) => Err(self.die(what)),
            Some(Ending::Stops) if fate.is_some_and(|f| f.applied) => {
                self.gate.stop(self.machine);
                answer
            }
            _ => answer,
        }
    }

    fn die(&self, what: &str) -> Error {
        self.died.store(true, Ordering::SeqCst);
        dead(what)
    }
}

impl Store for Gated {
    fn put_if_absent(&self, key: &str, body: &[u8], token: &str) -> Result<PutOutcome> {
        let fault = match self.prefix.offset_of(key) {
            Some(_) => self.faults.lock().unwrap().pop_front(),
            None => None,
        };
        self.turn("PutObject", |store| {
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
        self.turn("GetObject", |store| store.get(key))
    }

    fn head(&self, key: &str) -> Result<Option<ObjectHead>> {
        self.turn("HeadObject", |store| store.head(key))
    }

    fn list_page(&self, page: &PageRequest<'_>) -> Result<ListPage> {
        self.turn("ListObjectsV2", |store| store.list_page(page))
    }

    fn delete(&self, keys: &[String]) -> Result<()> {
        self.turn("DeleteObjects", |store| store.delete(keys))
    }

    fn overwrite(&self, key: &str, body: &[u8]) -> Result<()> {
        self.turn("PutObject", |store| store.overwrite(key, body))
    }

    fn delete_key(&self, key: &str, deadline: Option<Deadline>) -> Result<()> {
        self.turn("DeleteObject", |store| store.delete_key(key, deadline))
    }

    fn overwrite_until(&self, key: &str, body: &[u8], deadline: Deadline) -> Result<()> {
        self.turn("PutObject", |store| {
            store.overwrite_until(key, body, deadline)
        })
    }

    /// The time of this machine's latest answer, as a real client knows
    /// it: never the clock as another machine's request moves it.
    fn store_time(&self) -> Option<i64> {
        *self.date.lock().unwrap()
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

/// Why a machine's work failed, read from its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A trim past the tail, or a truncate below a trimmed log's first
    /// record: refused, it did nothing.
    Refused,
    /// Its fence was taken over while it was stopped.
    FenceLost,
    /// A fence showed no life, on a store where taking it over is unsafe.
    UnsafeTakeover,
    /// Anything else.
    Other,
}

impl Failure {
    /// What `error` says, behind a "may have been stored" too.
    fn of(error: &Error) -> Failure {
        match error {
            Error::TrimPastTail { .. } | Error::TruncateBelowFirst { .. } => Failure::Refused,
            Error::FenceLost { .. } => Failure::FenceLost,
            Error::UnsafeTakeover { .. } => Failure::UnsafeTakeover,
            Error::MaybeStored { source, .. } => Failure::of(source),
            _ => Failure::Other,
        }
    }
}

/// What one machine's work returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Appends acknowledged at these offsets, with this data.
    Appended(Vec<(u64, Vec<u8>)>),
    /// A truncate or trim that succeeded.
    Done,
    /// The work failed: why, and the error's message.
    Failed(Failure, String),
}

impl Outcome {
    fn failed(error: &Error) -> Outcome {
        Outcome::Failed(Failure::of(error), error.to_string())
    }
}

/// The end of one run: the log's records, and what each machine was told.
#[derive(Debug)]
pub(crate) struct Run {
    /// The offsets of the records left, in order.
    pub offsets: Vec<u64>,
    /// Each record's data, by offset.
    pub data: BTreeMap<u64, Vec<u8>>,
    /// What each machine did: the work explored, then, in a run where a
    /// machine dies, one more append that starts after all the others.
    pub work: Vec<Work>,
    /// What each machine's work returned, in machine order.
    pub outcomes: Vec<Outcome>,
    /// Which machine sent each request, in order.
    pub trace: Vec<usize>,
    /// The fate its machine met, if it did.
    pub fated: Option<Fate>,
    /// How far the store's clock moved, in milliseconds, before the first
    /// machine stopped or started late went on: how long the others were
    /// held back.
    pub held_back_ms: i64,
    /// The keys of the fence folder at the end.
    pub fence_keys: Vec<String>,
    /// The run reached [`MAX_STEPS`] and was cut off.
    pub endless: bool,
}

/// What a machine was in a run, which says what its work may end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Live,
    Stopped,
    Dead,
}

impl Run {
    /// The steps of `machine`'s first and last request.
    pub(crate) fn span(&self, machine: usize) -> Option<(usize, usize)> {
        let first = self.trace.iter().position(|&m| m == machine)?;
        let last = self.trace.iter().rposition(|&m| m == machine)?;
        Some((first, last))
    }

    fn role(&self, machine: usize) -> Role {
        match self.fated {
            Some(fate) if fate.machine == machine => match fate.ending {
                Ending::Dies => Role::Dead,
                Ending::Stops => Role::Stopped,
            },
            _ => Role::Live,
        }
    }

    /// The steps over which `machine`'s work may act on the log: its
    /// requests, and for one that died or stopped, to the end of the run,
    /// since another machine may take its fence over and finish it.
    fn acting(&self, machine: usize) -> Option<(usize, usize)> {
        let (first, last) = self.span(machine)?;
        match self.role(machine) {
            Role::Live => Some((first, last)),
            _ => Some((first, self.trace.len())),
        }
    }

    /// Whether `machine`'s truncate or trim may have acted: it succeeded,
    /// or it died or stopped (another machine may have finished it).
    fn may_have_acted(&self, machine: usize) -> bool {
        self.outcomes[machine] == Outcome::Done || self.role(machine) != Role::Live
    }

    /// The truncates that may have cut the log: their cut, and the steps
    /// over which they may have acted.
    fn truncates(&self) -> Vec<(u64, (usize, usize))> {
        (0..self.work.len())
            .filter(|&m| self.may_have_acted(m))
            .filter_map(|m| match self.work[m] {
                Work::Truncate(after) => Some((after, self.acting(m)?)),
                _ => None,
            })
            .collect()
    }

    /// The highest start a trim may have given the log.
    fn trimmed_below(&self) -> u64 {
        (0..self.work.len())
            .filter(|&m| self.may_have_acted(m) && self.span(m).is_some())
            .filter_map(|m| match self.work[m] {
                Work::Trim(before) => Some(before),
                _ => None,
            })
            .max()
            .unwrap_or(0)
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

/// The machines' folders of one run, removed when it ends, however it
/// ends (a machine or a check that panics included).
struct Folders(Vec<PathBuf>);

impl Drop for Folders {
    fn drop(&mut self) {
        for folder in &self.0 {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}

/// Runs `work` (one entry per machine) on a log holding records
/// `1..=initial`, as `setup` says, choosing the machine of each request by
/// `schedule` and, past its end, the lowest waiting one. Returns the run
/// and, for each step, the machines that were waiting.
fn run(initial: u64, work: &[Work], setup: Setup, schedule: &[usize]) -> (Run, Vec<Choice>) {
    let prefix = Prefix::new("wal").unwrap();
    let store = Arc::new(MemoryStore::with_clock(START_MS));
    store.ignore_expiry(setup.ignores_expiry);
    for offset in 1..=initial {
        let body = crate::record::encode(offset, format!("initial {offset}").as_bytes());
        store.put(&prefix.key(offset), &body);
    }
    // After a death, one more append comes once the others have finished:
    // a record the dead machine left doomed lasts until the next append
    // reaches it (README "Many machines, one log", property 1).
    let mut work = work.to_vec();
    let late = match setup.fate {
        Some(fate) if fate.ending == Ending::Dies => {
            work.push(Work::Append);
            Some(work.len() - 1)
        }
        _ => None,
    };
    let gate = Arc::new(Gate::default());
    let folders = Folders(work.iter().map(|_| machine_folder()).collect());
    let mut held_back_ms = None;
    let mut endless = false;
    let (trace, choices, outcomes) = thread::scope(|scope| {
        let handles: Vec<_> = work
            .iter()
            .enumerate()
            .map(|(machine, &job)| {
                let local = LocalState::in_dir(&folders.0[machine], "memory", "b", "wal");
                local.probe.store(Conditional::Enforced);
                local.expiry.store(match setup.ignores_expiry {
                    true => Conditional::Ignored,
                    false => Conditional::Enforced,
                });
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
                        faults: Mutex::new(faults),
                        fate: setup.fate.filter(|fate| fate.machine == machine),
                        late: late == Some(machine),
                        requests: AtomicU32::new(0),
                        died: AtomicBool::new(false),
                        date: Mutex::new(None),
                    },
                    prefix.clone(),
                    local,
                )
                .pausing_with(yield_turn)
                .lease(LEASE)
                .allow_unsafe_takeover(setup.allow_unsafe_takeover)
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
                // Every machine but the stopped ones has finished: the
                // store's clock jumps, and the lowest stopped one wakes.
                held_back_ms.get_or_insert(store.now_ms() - START_MS);
                if !gate.wake() {
                    break;
                }
                store.advance(STOPPED_FOR_MS);
                continue;
            }
            if trace.len() >= MAX_STEPS {
                endless = true;
                gate.cut_off();
                continue;
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
    drop(folders);
    let data: BTreeMap<u64, Vec<u8>> = store
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
    let fences = crate::fence::folder(&prefix);
    let run = Run {
        offsets: data.keys().copied().collect(),
        data,
        work,
        outcomes,
        trace,
        fated: setup.fate.filter(|_| gate.turns().fate_met),
        held_back_ms: held_back_ms.unwrap_or_default(),
        fence_keys: store
            .object_keys()
            .into_iter()
            .filter(|key| key.starts_with(&fences))
            .collect(),
        endless,
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
                    Err(error) => return Outcome::failed(&error),
                }
            }
            Outcome::Appended(acks)
        }
        Work::Truncate(after) => match wal.truncate(after) {
            Ok(_) => Outcome::Done,
            Err(error) => Outcome::failed(&error),
        },
        Work::Trim(before) => match wal.trim(before) {
            Ok(_) => Outcome::Done,
            Err(error) => Outcome::failed(&error),
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

/// Runs every schedule of `work` set up as `setup` with at most `bound`
/// preemptions, calling `check` on each run; returns how many runs it
/// made.
pub(crate) fn explore(
    initial: u64,
    work: &[Work],
    setup: Setup,
    bound: usize,
    check: impl Fn(&Run),
) -> u64 {
    let mut pending: Vec<Vec<usize>> = vec![Vec::new()];
    let mut runs = 0;
    while let Some(prefix) = pending.pop() {
        let (run, choices) = run(initial, work, setup, &prefix);
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

/// Explores `work` once for every fate of machine `machine` with one of
/// `endings`: at each of its requests in turn, reaching the store or not,
/// until one past its last request in every schedule. Returns how many
/// runs it made.
pub(crate) fn explore_fates(
    initial: u64,
    work: &[Work],
    machine: usize,
    endings: &[Ending],
    setup: Setup,
    bound: usize,
    check: impl Fn(&Run),
) -> u64 {
    let mut runs = 0;
    for at in 0.. {
        let met = Cell::new(false);
        for &ending in endings {
            for applied in [false, true] {
                let fate = Fate {
                    machine,
                    at,
                    applied,
                    ending,
                };
                let setup = Setup {
                    fate: Some(fate),
                    ..setup
                };
                runs += explore(initial, work, setup, bound, |run| {
                    met.set(met.get() || run.fated.is_some());
                    check(run);
                });
            }
        }
        if !met.get() {
            return runs;
        }
    }
    unreachable!("a machine sends fewer than u32::MAX requests")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fence::{Fences, TAKEOVER_MARGIN_MS};

    /// No machine kept the run going for ever: every command ends.
    fn check_ended(run: &Run) {
        assert!(!run.endless, "a machine never ended: {run:?}");
    }

    /// What each machine's work ended with. A live machine's work
    /// succeeds, or is refused where a truncate or trim may be (it did
    /// nothing); `also` names failures a live machine may end with too. A
    /// stopped machine may also end with its fence lost, never with
    /// anything else: it must find out. A dead machine's ending is no
    /// one's to read.
    fn check_outcomes(run: &Run, also: &[Failure]) {
        for (machine, outcome) in run.outcomes.iter().enumerate() {
            let role = run.role(machine);
            let work = run.work[machine];
            let expected = match outcome {
                Outcome::Appended(_) | Outcome::Done => true,
                Outcome::Failed(Failure::Refused, _) => {
                    matches!(work, Work::Truncate(_) | Work::Trim(_))
                }
                Outcome::Failed(Failure::FenceLost, _) if role == Role::Stopped => true,
                Outcome::Failed(failure, _) => also.contains(failure),
            };
            assert!(
                expected || role == Role::Dead,
                "machine {machine} ({work:?}, {role:?}) ended {outcome:?}: {run:?}"
            );
        }
    }

    /// The records left:
    ///
    /// 1. dense from the first to the last;
    /// 2. no data stored twice;
    /// 3. a truncate or trim that said it succeeded did its work, whoever
    ///    finished it: none of the initial records it was to delete is
    ///    left;
    /// 4. a log is never emptied but by a truncate.
    fn check_records(run: &Run, initial: u64) {
        let dense: Vec<u64> = match (run.offsets.first(), run.offsets.last()) {
            (Some(&first), Some(&last)) => (first..=last).collect(),
            _ => Vec::new(),
        };
        assert_eq!(run.offsets, dense, "a hole: {run:?}");
        let mut seen = BTreeSet::new();
        for data in run.data.values() {
            assert!(seen.insert(data), "stored twice: {run:?}");
        }
        for (machine, work) in run.work.iter().enumerate() {
            if run.outcomes[machine] != Outcome::Done {
                continue;
            }
            let deleted = |offset: u64| match *work {
                Work::Truncate(after) => offset > after,
                Work::Trim(before) => offset < before,
                _ => false,
            };
            for offset in (1..=initial).filter(|&o| deleted(o)) {
                let initial = format!("initial {offset}").into_bytes();
                assert!(
                    !run.data.values().any(|data| *data == initial),
                    "machine {machine}'s {work:?} succeeded and left record {offset}: {run:?}"
                );
            }
        }
        if run.truncates().is_empty() && initial > 0 {
            assert!(
                !run.offsets.is_empty(),
                "emptied without a truncate: {run:?}"
            );
        }
    }

    /// The acknowledged appends:
    ///
    /// 1. each is still there, unless a truncate that cut below it may
    ///    have acted after the append began (a truncate that died or
    ///    stopped may act until the run ends: another machine finishes
    ///    it), or a trim started the log above it;
    /// 2. no offset is handed out twice, but after a truncate below it;
    /// 3. offsets never start again: an acknowledged offset is past the
    ///    initial tail unless a truncate cut below it.
    fn check_acks(run: &Run, initial: u64) {
        let truncates = run.truncates();
        let trimmed_below = run.trimmed_below();
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
    }

    /// The properties every run must keep, whatever the interleaving and
    /// whichever machine dies or stops: every command ends, each as its
    /// machine's fate allows (see [`check_outcomes`]), and the records
    /// and acknowledgements keep README "Many machines, one log".
    fn check(run: &Run, initial: u64) {
        check_ended(run);
        check_outcomes(run, &[]);
        check_records(run, initial);
        check_acks(run, initial);
    }

    /// Explores `work` on a log of `initial` records and checks every run,
    /// with `bound` preemptions, or `S3WAL_EXPLORE_BOUND` for a deeper
    /// search by hand (2 takes minutes where 1 takes seconds).
    fn explore_checked(initial: u64, work: &[Work], bound: usize) -> u64 {
        let bound = bound_by_hand(bound);
        let started = std::time::Instant::now();
        let runs = explore(initial, work, Setup::default(), bound, |run| {
            check(run, initial)
        });
        eprintln!(
            "{work:?} on {initial} records, {bound} preemption(s): {runs} schedules in {:?}",
            started.elapsed()
        );
        runs
    }

    /// `bound`, or `S3WAL_EXPLORE_BOUND` when set.
    fn bound_by_hand(bound: usize) -> usize {
        std::env::var("S3WAL_EXPLORE_BOUND")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(bound)
    }

    /// The longest the store's clock may move while a dead or stopped
    /// machine holds the others back: its lease and the margin after its
    /// last sign of life, the whole second of the store's `Date` the
    /// waiters read it by, and their last pause (0.5 s at most), twice
    /// over for room (appends' pauses on a taken offset, a spin).
    const HELD_BACK_MS: i64 = LEASE.as_millis() as i64 + TAKEOVER_MARGIN_MS + 2 * 1_500;

    /// Explores `work` with machine `fated` dying and stopping at each of
    /// its requests in turn (see [`explore_fates`]) and checks every run:
    /// the properties, and that the others were held back no longer than
    /// a lease and the margin. Prints the schedules covered.
    fn explore_fates_checked(initial: u64, work: &[Work], fated: usize, bound: usize) -> u64 {
        let bound = bound_by_hand(bound);
        let started = std::time::Instant::now();
        let longest = Cell::new(0);
        let endings = [Ending::Dies, Ending::Stops];
        let runs = explore_fates(
            initial,
            work,
            fated,
            &endings,
            Setup::default(),
            bound,
            |run| {
                check(run, initial);
                longest.set(longest.get().max(run.held_back_ms));
                assert!(
                    run.held_back_ms <= HELD_BACK_MS,
                    "held back for {} ms: {run:?}",
                    run.held_back_ms
                );
            },
        );
        eprintln!(
            "{work:?} on {initial} records, machine {fated} dying or stopping at each request, \
             {bound} preemption(s): {runs} schedules in {:?}; held back up to {} ms",
            started.elapsed(),
            longest.get()
        );
        runs
    }

    #[test]
    fn scheduler_replays_a_schedule_exactly() {
        let work = [Work::Append, Work::Append];
        let (first, _) = run(2, &work, Setup::default(), &[1, 0, 1, 0]);
        let (again, _) = run(2, &work, Setup::default(), &first.trace);
        assert_eq!(first.trace, again.trace);
        assert_eq!(first.outcomes, again.outcomes);
    }

    #[test]
    fn a_machine_that_dies_sends_nothing_more_and_the_next_command_comes_after_it() {
        let work = [Work::Truncate(1), Work::Append];
        let fate = Fate {
            machine: 0,
            at: 1,
            applied: true,
            ending: Ending::Dies,
        };
        let setup = Setup {
            fate: Some(fate),
            ..Setup::default()
        };
        let (run, _) = run(3, &work, setup, &[]);
        assert_eq!(run.fated, Some(fate));
        assert_eq!(run.work.len(), 3, "{run:?}");
        assert_eq!(run.trace.iter().filter(|&&m| m == 0).count(), 2, "{run:?}");
        let late = run.span(2).unwrap().0;
        assert!(run.trace[late..].iter().all(|&m| m == 2), "{run:?}");
        check(&run, 3);
    }

    #[test]
    fn a_stopped_machine_wakes_after_the_others_with_the_clock_past_its_lease() {
        let work = [Work::Truncate(1), Work::Append];
        let fate = Fate {
            machine: 0,
            at: 0,
            applied: false,
            ending: Ending::Stops,
        };
        let setup = Setup {
            fate: Some(fate),
            ..Setup::default()
        };
        let (run, _) = run(3, &work, setup, &[]);
        let (first, _) = run.span(0).unwrap();
        assert!(run.trace[..first].iter().all(|&m| m == 1), "{run:?}");
        assert_eq!(run.held_back_ms, 0, "nobody waited: {run:?}");
        check(&run, 3);
    }

    #[test]
    fn two_appenders_never_share_an_offset_in_any_schedule() {
        let work = [Work::Append, Work::Append];
        let runs = explore(3, &work, Setup::default(), 3, |run| {
            check(run, 3);
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

    /// Issue 16: a truncate killed or frozen at any point, its last
    /// request carried out or not, holds the appenders back for its lease
    /// and the margin at most; they take its fence over, finish or void
    /// it, and succeed; woken late, it changes nothing that matters.
    #[test]
    fn a_truncate_that_dies_or_stops_anywhere_holds_appenders_back_only_for_its_lease() {
        let work = [Work::Append, Work::Append, Work::Truncate(1)];
        let runs = explore_fates_checked(3, &work, 2, 0);
        assert!(runs > 100, "only {runs} schedules");
    }

    /// The same for a trim: one taken over is finished with its own
    /// lease, and appenders never land below the start it gave the log.
    #[test]
    fn a_trim_that_dies_or_stops_anywhere_holds_appenders_back_only_for_its_lease() {
        let work = [Work::Append, Work::Append, Work::Trim(3)];
        let runs = explore_fates_checked(3, &work, 2, 0);
        assert!(runs > 100, "only {runs} schedules");
    }

    /// An appender killed between its PUT and its fence check while a
    /// truncate cut below it leaves a doomed record above a hole, until
    /// the next append reaches it and removes it (README, property 1); one
    /// frozen there checks once it wakes, and places its record again.
    #[test]
    fn an_appender_that_dies_or_stops_anywhere_beside_a_truncate_leaves_the_log_whole() {
        let work = [Work::Append, Work::Append, Work::Truncate(1)];
        let runs = explore_fates_checked(3, &work, 0, 0);
        assert!(runs > 100, "only {runs} schedules");
    }

    /// The fence left running in `run`, if any.
    fn running_fence(run: &Run) -> Option<crate::fence::Fence> {
        let prefix = Prefix::new("wal").unwrap();
        let fences = Fences::from_keys(&prefix, run.fence_keys.iter().map(String::as_str));
        fences.newest().filter(|f| !f.settled()).copied()
    }

    /// Whether a machine took a fence over (or renewed a lease) in `run`.
    fn taken_over(run: &Run) -> bool {
        run.fence_keys.iter().any(|key| key.contains("-lease-"))
    }

    /// A truncate that dies at each of its requests, beside two
    /// appenders, on a store that ignores presigned expiry; checks every
    /// run with `check` and returns how many there were.
    fn explore_deaths_on_a_store_that_ignores_expiry(
        allow_unsafe_takeover: bool,
        check: impl Fn(&Run),
    ) -> u64 {
        let work = [Work::Append, Work::Append, Work::Truncate(1)];
        let setup = Setup {
            ignores_expiry: true,
            allow_unsafe_takeover,
            ..Setup::default()
        };
        let started = std::time::Instant::now();
        let runs = explore_fates(3, &work, 2, &[Ending::Dies], setup, 0, check);
        eprintln!(
            "{work:?} on 3 records, a store that ignores expiry, unsafe takeovers allowed: \
             {allow_unsafe_takeover}, machine 2 dying at each request: {runs} schedules in {:?}",
            started.elapsed()
        );
        runs
    }

    /// Issue 16, point 4: where the store would carry out a paused
    /// holder's late deletes, a fence that shows no life is not taken
    /// over silently: whoever meets it fails, saying so.
    #[test]
    fn a_dead_holders_fence_on_a_store_that_ignores_expiry_is_refused_not_taken_over() {
        let refused = Cell::new(0);
        let runs = explore_deaths_on_a_store_that_ignores_expiry(false, |run| {
            check_ended(run);
            check_outcomes(run, &[Failure::UnsafeTakeover]);
            check_acks(run, 3);
            assert!(!taken_over(run), "taken over: {run:?}");
            let late = run.outcomes.last().unwrap();
            if running_fence(run).is_some() {
                assert!(
                    matches!(late, Outcome::Failed(Failure::UnsafeTakeover, _)),
                    "the next command past a dead holder's fence ended {late:?}: {run:?}"
                );
            }
            let unsafe_takeover =
                |o: &Outcome| matches!(o, Outcome::Failed(Failure::UnsafeTakeover, _));
            if run.outcomes.iter().any(unsafe_takeover) {
                refused.set(refused.get() + 1);
            }
        });
        assert!(
            refused.get() > 10,
            "refused in {} of {runs} runs",
            refused.get()
        );
    }

    /// With `--allow-unsafe-takeover` (the user says the holder is dead),
    /// the same fences are taken over and every command succeeds.
    #[test]
    fn a_dead_holders_fence_on_a_store_that_ignores_expiry_is_taken_over_when_allowed() {
        let takeovers = Cell::new(0);
        let runs = explore_deaths_on_a_store_that_ignores_expiry(true, |run| {
            check(run, 3);
            if taken_over(run) {
                takeovers.set(takeovers.get() + 1);
            }
        });
        assert!(
            takeovers.get() > 10,
            "taken over in {} of {runs} runs",
            takeovers.get()
        );
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
            let runs = explore(initial, &work, Setup::default(), 1, |run| {
                check(run, initial);
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
