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
//! One machine may meet a [`Fate`] at one of its requests: die there for
//! ever; stop there and wake once all the others have finished, after the
//! store's clock jumped past every lease; or be told the request timed
//! out while it lands later, whenever the schedule says (issue 16: nobody
//! waits on the dead, and the late are harmless). Every outcome counts:
//! a live machine's work must succeed, whatever befell the others.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::local::scratch::Scratch;
use crate::local::{Conditional, LocalState};
use crate::log::keys::Prefix;
use crate::log::testing::audit::{Ack, Audit, Cut, Cutting};
use crate::log::testing::fault_store::{Fault, FaultStore};
use crate::log::wal::Wal;
use crate::store::Store;
use crate::store::memory::MemoryStore;
use crate::store::{Deadline, ListPage, ObjectHead, PageRequest, PutOutcome};

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

/// Who may send the next request, and the run's record so far.
#[derive(Debug, Default)]
struct Turns {
    /// How many machines the run has.
    machines: usize,
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
    /// The machine to run at each step, as far as it says.
    schedule: Vec<usize>,
    /// The machine that ran at each step.
    trace: Vec<usize>,
    /// What each step's request was, as `DeleteObject wal/…`.
    requests: Vec<String>,
    /// What each waiting machine is about to send.
    about_to: BTreeMap<usize, String>,
    /// The machines that could run at each step.
    choices: Vec<Choice>,
    /// The fated machine met its fate.
    fate_met: bool,
    /// How far the store's clock had moved when a stopped machine first
    /// woke, in milliseconds, and the keys the store held then.
    woke: Option<(i64, Vec<String>)>,
    /// The fence markers created, with the step that created them.
    markers: Vec<(usize, String)>,
    /// A request held up on its way to the store: it lands at whichever
    /// step the schedule gives it, as if it were one more machine.
    held_up: Option<HeldUp>,
    /// The run reached [`MAX_STEPS`]: every request fails at once from
    /// then on, so that every machine ends.
    cut_off: bool,
}

/// How a request held up acts when it lands: the marker it creates, if
/// it settles a fence.
type Landing = Box<dyn FnOnce(&MemoryStore) -> Option<String> + Send>;

/// A request held up on its way to the store: what it is, and how it
/// acts when it lands.
struct HeldUp(String, Landing);

impl std::fmt::Debug for HeldUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a request held up")
    }
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

/// The scheduler, run by the machines themselves: whichever of them
/// settles the run (every machine waiting, stopped or finished) chooses
/// the next, so a machine that goes on needs no switch of threads.
#[derive(Debug)]
struct Gate {
    turns: Mutex<Turns>,
    /// One per machine: it is its turn, or it wakes.
    turn: Vec<Condvar>,
    /// Every machine has finished.
    done: Condvar,
    /// The store whose clock jumps while stopped machines sleep.
    store: Arc<MemoryStore>,
    /// The machine that wakes without the clock jumping: the command run
    /// at once on a machine that died.
    at_once: Option<usize>,
}

impl Gate {
    fn new(
        machines: usize,
        schedule: &[usize],
        store: Arc<MemoryStore>,
        at_once: Option<usize>,
    ) -> Gate {
        Gate {
            turns: Mutex::new(Turns {
                machines,
                schedule: schedule.to_vec(),
                ..Turns::default()
            }),
            turn: (0..machines).map(|_| Condvar::new()).collect(),
            done: Condvar::new(),
            store,
            at_once,
        }
    }

    fn turns(&self) -> std::sync::MutexGuard<'_, Turns> {
        // A machine that panicked leaves the turns whole: every change is
        // made under the lock in one piece.
        self.turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Once every machine is waiting, stopped or finished, decides what
    /// happens next: the machine the schedule names (or the default) sends
    /// its request, or a request held up lands (numbered as one machine
    /// more); with none waiting, the lowest stopped machine wakes after the
    /// store's clock jumped; with none stopped either, the run is over.
    fn settle(&self, turns: &mut Turns) {
        loop {
            let settled = turns.waiting.len() + turns.stopped.len() + turns.finished.len();
            if turns.running.is_some() || settled < turns.machines {
                return;
            }
            let mut waiting: Vec<usize> = turns.waiting.iter().copied().collect();
            if turns.held_up.is_some() {
                waiting.push(turns.machines);
            }
            if waiting.is_empty() {
                return self.wake_or_end(turns);
            }
            if turns.trace.len() >= MAX_STEPS {
                turns.cut_off = true;
                self.turn.iter().for_each(Condvar::notify_one);
                return;
            }
            let next = self.choose(turns, waiting);
            if let Some(machine) = self.turn.get(next) {
                let request = turns.about_to.remove(&next).unwrap_or_default();
                turns.requests.push(request);
                turns.running = Some(next);
                machine.notify_one();
                return;
            }
            self.land_held_up(turns);
        }
    }

    /// Wakes the lowest stopped machine, the store's clock first jumping
    /// unless it is the one that wakes at once; with none stopped, ends
    /// the run.
    fn wake_or_end(&self, turns: &mut Turns) {
        match turns.stopped.pop_first() {
            Some(machine) => {
                let now = self.store.now_ms() - START_MS;
                turns
                    .woke
                    .get_or_insert_with(|| (now, self.store.object_keys()));
                if self.at_once != Some(machine) {
                    self.store.advance(STOPPED_FOR_MS);
                }
                self.turn[machine].notify_one();
            }
            None => self.done.notify_all(),
        }
    }

    /// The one of `waiting` that goes next, as the schedule says or by
    /// default, noted in the trace with the choice it had.
    fn choose(&self, turns: &mut Turns, waiting: Vec<usize>) -> usize {
        let choice = Choice {
            waiting,
            yielded: turns.yielded.iter().copied().collect(),
        };
        let next = turns
            .schedule
            .get(turns.trace.len())
            .copied()
            .filter(|m| choice.waiting.contains(m))
            .unwrap_or_else(|| choice.default());
        turns.trace.push(next);
        turns.choices.push(choice);
        next
    }

    /// Lands the request held up, in this step.
    fn land_held_up(&self, turns: &mut Turns) {
        let held_up = turns.held_up.take().expect("a request held up");
        turns.requests.push(format!("{}: it lands", held_up.0));
        if let Some(marker) = (held_up.1)(&self.store) {
            let step = turns.trace.len() - 1;
            turns.markers.push((step, marker));
        }
    }

    /// Blocks `machine` until it is its turn to send `request`; false
    /// once the run is cut off.
    fn enter(&self, machine: usize, yielded: bool, request: String) -> bool {
        let mut turns = self.turns();
        if turns.cut_off {
            return false;
        }
        turns.about_to.insert(machine, request);
        turns.waiting.insert(machine);
        if yielded {
            turns.yielded.insert(machine);
        }
        self.settle(&mut turns);
        while turns.running != Some(machine) && !turns.cut_off {
            turns = self.turn[machine].wait(turns).unwrap();
        }
        turns.waiting.remove(&machine);
        turns.yielded.remove(&machine);
        !turns.cut_off
    }

    /// Ends the running request.
    fn leave(&self) {
        self.turns().running = None;
    }

    fn finish(&self, machine: usize) {
        let mut turns = self.turns();
        turns.finished.insert(machine);
        self.settle(&mut turns);
    }

    /// Blocks `machine` until every other machine has finished and it is
    /// its turn to wake (or the run is cut off).
    fn stop(&self, machine: usize) {
        let mut turns = self.turns();
        turns.stopped.insert(machine);
        self.settle(&mut turns);
        while turns.stopped.contains(&machine) && !turns.cut_off {
            turns = self.turn[machine].wait(turns).unwrap();
        }
        turns.stopped.remove(&machine);
    }

    fn meet_fate(&self) {
        self.turns().fate_met = true;
    }

    /// Holds `request` up on its way to the store, to land when the
    /// schedule says.
    fn hold_up(&self, request: HeldUp) {
        self.turns().held_up = Some(request);
    }

    /// Notes that the running request created the fence marker `key`.
    fn note_marker(&self, key: String) {
        let mut turns = self.turns();
        let step = turns.trace.len() - 1;
        turns.markers.push((step, key));
    }

    /// Waits until every machine has finished.
    fn wait_for_all(&self) -> std::sync::MutexGuard<'_, Turns> {
        let mut turns = self.turns();
        while turns.finished.len() < turns.machines {
            turns = self.done.wait(turns).unwrap();
        }
        turns
    }
}

/// What befalls a fated machine at its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Killed, for ever: it sends nothing more. The next command after it
    /// runs on another machine (its lock folder is gone with it, as a CI
    /// runner's is), or on it if the run [restarts](Setup::restart) it.
    Dies,
    /// Frozen (SIGSTOP, a VM migrated, a laptop closed) until every other
    /// machine has finished, then woken after the store's clock jumped
    /// [`STOPPED_FOR_MS`] ahead: its request, or its answer, arrives late.
    Stops,
    /// Not an ending: its request times out, and the machine goes on with
    /// that error. The request landed at once, or (not applied) it is
    /// held up on its way (a stalled connection, a busy store node) and
    /// lands at whichever step the schedule gives it, its deadline checked
    /// then.
    TimesOut,
}

/// Where one machine's work goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fate {
    pub machine: usize,
    /// Its request, counted from 0 over every request it sends, at which
    /// its fate comes.
    pub at: u32,
    /// Whether that request reaches the store first: the machine dies
    /// with its answer lost, stops before the answer comes back, or is
    /// told of a timeout. If not, it dies or stops before sending it, or
    /// the request is held up.
    pub applied: bool,
    pub ending: Ending,
}

/// What a run's store and machines are beyond their work.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Setup {
    /// The one machine that dies, stops or times out, and where.
    pub fate: Option<Fate>,
    /// The store accepts requests past their deadline, as moto does.
    pub ignores_expiry: bool,
    /// Every machine takes over fences even where that is not safe.
    pub allow_unsafe_takeover: bool,
    /// The command after a death runs on the dead machine (in its lock
    /// folder, where it noted the fence it held) as soon as the others
    /// have finished. Otherwise it runs on another machine, a minute
    /// later by the store's clock.
    pub restart: bool,
}

impl Setup {
    /// The default setup with one machine's `fate`.
    pub(crate) fn with_fate(fate: Fate) -> Setup {
        Setup {
            fate: Some(fate),
            ..Setup::default()
        }
    }
}

/// What a machine that dies unwinds with: its thread stops where it is,
/// as a killed process does. It sends nothing more, and writes nothing
/// more in its lock folder either (the hint, the fence it noted), which
/// failing its requests one by one would let it do.
struct Died;

/// What a machine whose request timed out is told.
fn timed_out() -> Error {
    Error::Transport {
        request: "a request of the explorer".into(),
        host: "memory".into(),
        kind: crate::error::TransportKind::Timeout {
            during: crate::error::Stage::Answer,
            after: Duration::from_secs(1),
        },
        attempts: 1,
        elapsed: Duration::from_secs(1),
        body_never_arrived: false,
        source: "no answer".into(),
    }
}

/// Kills the calling machine.
fn die() -> ! {
    // Not a panic: no panic message for the thousands of deaths explored.
    std::panic::resume_unwind(Box::new(Died))
}

/// One machine's view of the shared store: every request takes its turn.
struct Gated<'g> {
    /// The shared store, and what happens to this machine's next PUTs of
    /// records.
    store: FaultStore,
    gate: &'g Gate,
    machine: usize,
    /// Where this machine dies or stops, if it does.
    fate: Option<Fate>,
    /// The requests it sent or tried so far.
    requests: AtomicU32,
    /// The store's time at its latest answer, in seconds: the `Date`
    /// header a real store sends.
    date: Mutex<Option<i64>>,
}

impl Gated<'_> {
    /// Sends `request` in this machine's turn, moving the store's clock
    /// first by the time it paused; meets its fate there if this is its
    /// request (`held_up` is the request as it lands if it is held up).
    fn turn<T>(
        &self,
        what: String,
        request: impl FnOnce(&MemoryStore) -> Result<T>,
        held_up: impl FnOnce(String) -> HeldUp,
    ) -> Result<T> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        let fate = self.fate.filter(|fate| fate.at == n);
        if fate.is_some() {
            self.gate.meet_fate();
        }
        // Met before the request: it does not reach the store (yet).
        match fate.filter(|fate| !fate.applied).map(|fate| fate.ending) {
            Some(Ending::Dies) => die(),
            Some(Ending::Stops) => self.gate.stop(self.machine),
            Some(Ending::TimesOut) => {
                let what = format!("{what}, sent by {} and held up", self.machine);
                self.gate.hold_up(held_up(what));
                return Err(timed_out());
            }
            None => {}
        }
        let yielded = YIELDED.with(|y| y.replace(false));
        if !self.gate.enter(self.machine, yielded, what) {
            die();
        }
        let paused = PAUSED.with(|p| p.replace(Duration::ZERO));
        let store = &self.store.store;
        store.advance(paused.as_millis() as i64);
        let answer = request(store);
        *self.date.lock().unwrap() = store.store_time();
        self.gate.leave();
        // Met after it: its answer is lost, or comes back late.
        match fate.filter(|fate| fate.applied).map(|fate| fate.ending) {
            Some(Ending::Dies) => die(),
            Some(Ending::Stops) => {
                self.gate.stop(self.machine);
                answer
            }
            Some(Ending::TimesOut) => Err(timed_out()),
            None => answer,
        }
    }
}

/// A read held up: it changes nothing when it lands.
fn read(what: String) -> HeldUp {
    HeldUp(what, Box::new(|_| None))
}

/// `key` if it is a fence marker (they end in .done or .void): only
/// markers settle a fence.
fn marker(key: &str) -> Option<String> {
    (key.ends_with(".done") || key.ends_with(".void")).then(|| key.to_owned())
}

impl Store for Gated<'_> {
    fn put_if_absent(&self, key: &str, body: &[u8], token: &str) -> Result<PutOutcome> {
        let (fault, offset) = self.store.next_fault(key);
        let put = |store: &MemoryStore| fault.put(store, offset, (key, body, token));
        let what = format!("PutObject {key} if absent");
        let (key, body, token) = (key.to_owned(), body.to_vec(), token.to_owned());
        self.turn(what, put, move |what| {
            HeldUp(
                what,
                Box::new(move |store| {
                    let _ = store.put_if_absent(&key, &body, &token);
                    None
                }),
            )
        })
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.turn(format!("GetObject {key}"), |store| store.get(key), read)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectHead>> {
        self.turn(format!("HeadObject {key}"), |store| store.head(key), read)
    }

    fn list_page(&self, page: &PageRequest<'_>) -> Result<ListPage> {
        let after = page.continuation.or(page.start_after).unwrap_or("");
        let what = format!("ListObjectsV2 {} after {after:?}", page.prefix);
        self.turn(what, |store| store.list_page(page), read)
    }

    fn delete(&self, keys: &[String]) -> Result<()> {
        let owned = keys.to_vec();
        let delete = move |store: &MemoryStore| {
            let _ = store.delete(&owned);
            None
        };
        let what = format!("DeleteObjects {keys:?}");
        self.turn(
            what,
            |store| store.delete(keys),
            |what| HeldUp(what, Box::new(delete)),
        )
    }

    fn overwrite(&self, key: &str, body: &[u8]) -> Result<()> {
        let (owned, bytes) = (key.to_owned(), body.to_vec());
        let put = move |store: &MemoryStore| {
            let _ = store.overwrite(&owned, &bytes);
            None
        };
        let what = format!("PutObject {key}");
        self.turn(
            what,
            |store| store.overwrite(key, body),
            |what| HeldUp(what, Box::new(put)),
        )
    }

    fn delete_key(&self, key: &str, deadline: Option<Deadline>) -> Result<()> {
        let owned = key.to_owned();
        let delete = move |store: &MemoryStore| {
            let _ = store.delete_key(&owned, deadline);
            None
        };
        let until = deadline.map_or(String::new(), |d| format!(" until {}", d.end()));
        let what = format!("DeleteObject {key}{until}");
        self.turn(
            what,
            |store| store.delete_key(key, deadline),
            |what| HeldUp(what, Box::new(delete)),
        )
    }

    fn overwrite_until(&self, key: &str, body: &[u8], deadline: Deadline) -> Result<()> {
        let put = |store: &MemoryStore| {
            store.overwrite_until(key, body, deadline)?;
            if let Some(marker) = marker(key) {
                self.gate.note_marker(marker);
            }
            Ok(())
        };
        let (owned, bytes) = (key.to_owned(), body.to_vec());
        let late = move |store: &MemoryStore| {
            let landed = store.overwrite_until(&owned, &bytes, deadline);
            landed.ok().and_then(|()| marker(&owned))
        };
        let what = format!("PutObject {key} until {}", deadline.end());
        self.turn(what, put, |what| HeldUp(what, Box::new(late)))
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
    /// Appends acknowledged, between the steps before which each was
    /// called and returned.
    Appended(Vec<Ack<i64>>),
    /// A truncate or trim that succeeded.
    Done,
    /// The work failed: why, and the error's message.
    Failed(Failure, String),
    /// Its machine died: nobody was told anything.
    Died,
}

impl Outcome {
    fn failed(error: &Error) -> Outcome {
        Outcome::Failed(Failure::of(error), error.to_string())
    }
}

/// The end of one run: the log's records, and what each machine was told.
pub(crate) struct Run {
    /// The offsets of the records left, in order.
    pub offsets: Vec<u64>,
    /// Each record's data, by offset.
    pub data: BTreeMap<u64, String>,
    /// What each machine did: the work explored, then, in a run where a
    /// machine dies, one more append that starts after all the others.
    pub work: Vec<Work>,
    /// What each machine's work returned, in machine order.
    pub outcomes: Vec<Outcome>,
    /// Which machine sent each request, in order.
    pub trace: Vec<usize>,
    /// Each request, in order, as `DeleteObject wal/…`.
    pub requests: Vec<String>,
    /// The fate its machine met, if it did.
    pub fated: Option<Fate>,
    /// How far the store's clock moved, in milliseconds, before the first
    /// machine stopped or started late went on: how long the others were
    /// held back.
    pub held_back_ms: i64,
    /// The offsets of the records then, if a machine went on after the
    /// others finished.
    pub offsets_at_wake: Option<Vec<u64>>,
    /// The fence markers created, with the step that created each.
    pub markers: Vec<(usize, String)>,
    /// How far the store's clock moved in the whole run, in milliseconds.
    pub clock_ms: i64,
    /// The keys of the fence folder at the end.
    pub fence_keys: Vec<String>,
    /// The run reached [`MAX_STEPS`] and was cut off.
    pub endless: bool,
}

/// A run as a failed check shows it: what each machine did and was told,
/// the log and the fences it left, and every request, one a line.
impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "run of {:?}, {:?}", self.work, self.fated)?;
        for (machine, outcome) in self.outcomes.iter().enumerate() {
            writeln!(f, "  machine {machine}: {outcome:?}")?;
        }
        writeln!(f, "  records: {:?}", self.data)?;
        writeln!(f, "  fence keys: {:?}", self.fence_keys)?;
        writeln!(f, "  markers (step, key): {:?}", self.markers)?;
        writeln!(
            f,
            "  the store's clock moved {} ms ({} ms before a machine woke); {}",
            self.clock_ms,
            self.held_back_ms,
            match self.endless {
                true => "cut off",
                false => "every machine ended",
            }
        )?;
        for (step, (machine, request)) in self.trace.iter().zip(&self.requests).enumerate() {
            writeln!(f, "  {step:>4} machine {machine}: {request}")?;
        }
        Ok(())
    }
}

/// What a machine was in a run, which says what its work may end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Live,
    Stopped,
    Dead,
    /// Told that a request timed out.
    TimedOut,
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
                Ending::TimesOut => Role::TimedOut,
            },
            _ => Role::Live,
        }
    }

    /// The steps over which `machine`'s work may act on the log: its
    /// requests; for one that died, stopped or timed out, until its fence
    /// settled, since another machine may take it over and finish it, but
    /// nothing the late holder sends lands after that; none if it was
    /// voided (it did nothing).
    fn acting(&self, machine: usize) -> Option<(usize, usize)> {
        let (first, last) = self.span(machine)?;
        if self.role(machine) == Role::Live {
            return Some((first, last));
        }
        // Past its fence's marker nothing it sends may land (the store
        // refuses a late holder's requests): that is what is checked.
        let name = match self.work[machine] {
            Work::Truncate(after) => format!("-truncate-{after}."),
            Work::Trim(before) => format!("-trim-{before}."),
            _ => return Some((first, self.trace.len())),
        };
        let marker = self.markers.iter().find(|(_, key)| key.contains(&name));
        match marker {
            Some((_, key)) if key.ends_with(".void") => None,
            Some(&(step, _)) => Some((first, step)),
            None => Some((first, self.trace.len())),
        }
    }

    /// Whether `machine`'s truncate or trim may have acted: it succeeded,
    /// or it died, stopped or timed out (another machine may have finished
    /// it) and its fence was not voided.
    fn may_have_acted(&self, machine: usize) -> bool {
        match self.role(machine) {
            Role::Live => self.outcomes[machine] == Outcome::Done,
            _ => self.acting(machine).is_some(),
        }
    }

    /// The truncates and trims that may have acted, over the steps they
    /// may have acted.
    fn cuts(&self) -> Vec<Cutting<i64>> {
        let cutting = |machine: usize| {
            let cut = match self.work[machine] {
                Work::Truncate(after) => Cut::Truncate(after),
                Work::Trim(before) => Cut::Trim(before),
                _ => return None,
            };
            let (began, settled) = self.acting(machine)?;
            Some(Cutting {
                cut,
                began: began as i64,
                settled: settled as i64,
                done: self.outcomes[machine] == Outcome::Done,
            })
        };
        (0..self.work.len())
            .filter(|&m| self.may_have_acted(m))
            .filter_map(cutting)
            .collect()
    }

    /// The appends acknowledged, the `initial` records first, before the
    /// first step. An append began when it was called, or with its
    /// machine's first request if that came later (a machine started late).
    fn acks(&self, initial: u64) -> Vec<Ack<i64>> {
        let initial = (1..=initial).map(|offset| Ack {
            offset,
            data: format!("initial {offset}"),
            began: -1,
            ended: -1,
        });
        let appended = self
            .outcomes
            .iter()
            .enumerate()
            .flat_map(|(machine, outcome)| {
                let first = self.span(machine).map_or(0, |(first, _)| first as i64);
                let acks = match outcome {
                    Outcome::Appended(acks) => acks.as_slice(),
                    _ => &[],
                };
                let began = move |ack: &Ack<i64>| Ack {
                    began: ack.began.max(first),
                    ..ack.clone()
                };
                acks.iter().map(began)
            });
        initial.chain(appended).collect()
    }

    /// The records of the appends that were not acknowledged: any of them
    /// may stand.
    fn unacknowledged(&self, acks: &[Ack<i64>]) -> Vec<(Option<u64>, String)> {
        let appends = |(machine, work): (usize, &Work)| {
            let times = match work {
                Work::AppendTwice => 2,
                Work::Append | Work::AppendWith(_) => 1,
                Work::Truncate(_) | Work::Trim(_) => 0,
            };
            (0..times).map(move |n| record_data(machine, n))
        };
        let machines = self.work.iter().enumerate();
        let unacknowledged = |data: &String| !acks.iter().any(|a| &a.data == data);
        machines
            .flat_map(appends)
            .filter(unacknowledged)
            .map(|data| (None, data))
            .collect()
    }

    /// The log at the run's end and what its machines were told.
    fn audit(&self, initial: u64) -> Audit<i64> {
        let acks = self.acks(initial);
        Audit {
            stored: self.data.clone(),
            may_stand: self.unacknowledged(&acks),
            acks,
            cuts: self.cuts(),
        }
    }
}

/// The data of `machine`'s append number `n`.
fn record_data(machine: usize, n: usize) -> String {
    format!("machine {machine}, record {n}")
}

/// The machines of one run: their work, and their lock folders, removed
/// when the run ends, however it ends (a machine or a check that panics
/// included).
struct Machines {
    work: Vec<Work>,
    folders: Vec<Scratch>,
    /// Which of `folders` each machine's is.
    folder_of: Vec<usize>,
    /// The machine that starts once all the others have finished.
    late: Option<usize>,
}

impl Machines {
    /// One machine for each of `work`, and, after a death or a timeout,
    /// one more append that comes once the others have finished: a record
    /// left doomed by an appender that died or timed out before its check
    /// lasts until the next append reaches it (README "Many machines, one
    /// log", property 1). It runs on the dead machine if `setup` restarts
    /// it.
    fn new(work: &[Work], setup: Setup) -> Machines {
        let mut work = work.to_vec();
        let mut folder_of: Vec<usize> = (0..work.len()).collect();
        let late = match setup.fate {
            Some(fate) if fate.ending != Ending::Stops => {
                work.push(Work::Append);
                folder_of.push(match setup.restart {
                    true => fate.machine,
                    false => work.len() - 1,
                });
                Some(work.len() - 1)
            }
            _ => None,
        };
        Machines {
            folders: work.iter().map(|_| Scratch::new("schedule")).collect(),
            work,
            folder_of,
            late,
        }
    }

    fn folder(&self, machine: usize) -> &Path {
        self.folders[self.folder_of[machine]].path()
    }

    /// The log as `machine` sees it: through the gate, with its fate, its
    /// faults and its lock folder.
    fn wal<'g>(
        &self,
        machine: usize,
        gate: &'g Gate,
        prefix: &Prefix,
        setup: Setup,
    ) -> Wal<Gated<'g>> {
        let local = LocalState::in_dir(self.folder(machine), "memory", "b", "wal");
        local.probe.store(Conditional::Enforced);
        local.expiry.store(match setup.ignores_expiry {
            true => Conditional::Ignored,
            false => Conditional::Enforced,
        });
        let faults = match self.work[machine] {
            Work::AppendWith(fault) => vec![fault],
            _ => Vec::new(),
        };
        let store = Gated {
            store: FaultStore::new(Arc::clone(&gate.store), prefix, &faults),
            gate,
            machine,
            fate: setup.fate.filter(|fate| fate.machine == machine),
            requests: AtomicU32::new(0),
            date: Mutex::new(None),
        };
        Wal::new(store, prefix.clone(), local)
            .pausing_with(yield_turn)
            .lease(LEASE)
            .allow_unsafe_takeover(setup.allow_unsafe_takeover)
            // One request at a time per machine, as the gate expects.
            .parallel(1)
    }
}

/// A store at [`START_MS`] holding records `1..=initial` under `prefix`.
fn store_of(prefix: &Prefix, initial: u64, setup: Setup) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::with_clock(START_MS));
    store.ignore_expiry(setup.ignores_expiry);
    for offset in 1..=initial {
        let body = crate::log::record::encode(offset, format!("initial {offset}").as_bytes());
        store.put(&prefix.key(offset), &body);
    }
    store
}

/// Runs `work` (one entry per machine) on a log holding records
/// `1..=initial`, as `setup` says, choosing the machine of each request by
/// `schedule` and, past its end, the lowest waiting one. Returns the run
/// and, for each step, the machines that were waiting.
fn run(initial: u64, work: &[Work], setup: Setup, schedule: &[usize]) -> (Run, Vec<Choice>) {
    let prefix = Prefix::new("wal").unwrap();
    let store = store_of(&prefix, initial, setup);
    let machines = Machines::new(work, setup);
    let at_once = machines.late.filter(|_| setup.restart);
    let gate = Gate::new(machines.work.len(), schedule, store, at_once);
    let outcomes = thread::scope(|scope| {
        let handles: Vec<_> = (0..machines.work.len())
            .map(|machine| {
                let wal = machines.wal(machine, &gate, &prefix, setup);
                let (gate, job) = (&gate, machines.work[machine]);
                let late = machines.late == Some(machine);
                scope.spawn(move || {
                    // Finished even if the work panics, so that the run
                    // never waits for a machine that is gone.
                    let _finished = Finished(gate, machine);
                    if late {
                        gate.stop(machine);
                    }
                    perform(&wal, machine, job)
                })
            })
            .collect();
        drop(gate.wait_for_all());
        handles.into_iter().map(outcome).collect()
    });
    let Machines { work, .. } = machines;
    let mut turns = gate.turns();
    let choices = std::mem::take(&mut turns.choices);
    let run = Run::of(&mut turns, &gate.store, &prefix, work, outcomes, setup);
    (run, choices)
}

/// What a machine's thread returned: its outcome, or that it died.
fn outcome(handle: thread::ScopedJoinHandle<'_, Outcome>) -> Outcome {
    match handle.join() {
        Ok(outcome) => outcome,
        Err(payload) if payload.is::<Died>() => Outcome::Died,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

impl Run {
    /// The run that `turns` recorded, on `store`, of `work`.
    fn of(
        turns: &mut Turns,
        store: &MemoryStore,
        prefix: &Prefix,
        work: Vec<Work>,
        outcomes: Vec<Outcome>,
        setup: Setup,
    ) -> Run {
        let data = records(store, prefix);
        let fences = prefix.fence_folder();
        let since_start = store.now_ms() - START_MS;
        let woke = turns.woke.take();
        Run {
            offsets: data.keys().copied().collect(),
            data,
            work,
            outcomes,
            trace: std::mem::take(&mut turns.trace),
            requests: std::mem::take(&mut turns.requests),
            fated: setup.fate.filter(|_| turns.fate_met),
            held_back_ms: woke.as_ref().map_or(since_start, |(ms, _)| *ms),
            offsets_at_wake: woke.map(|(_, keys)| {
                keys.iter()
                    .filter_map(|key| prefix.offset_of(key))
                    .collect()
            }),
            markers: std::mem::take(&mut turns.markers),
            clock_ms: since_start,
            fence_keys: store
                .object_keys()
                .into_iter()
                .filter(|key| key.starts_with(&fences))
                .collect(),
            endless: turns.cut_off,
        }
    }
}

/// The records in `store` under `prefix`: their data, by offset.
fn records(store: &MemoryStore, prefix: &Prefix) -> BTreeMap<u64, String> {
    let record = |offset| {
        let body = store.get(&prefix.key(offset)).unwrap().unwrap();
        let data = crate::log::record::decode(offset, &body).unwrap();
        (offset, String::from_utf8(data.to_vec()).unwrap())
    };
    let keys = store.object_keys();
    keys.iter()
        .filter_map(|key| prefix.offset_of(key))
        .map(record)
        .collect()
}

fn perform(wal: &Wal<Gated<'_>>, machine: usize, work: Work) -> Outcome {
    match work {
        Work::Append | Work::AppendWith(_) | Work::AppendTwice => {
            let times = if work == Work::AppendTwice { 2 } else { 1 };
            let mut acks = Vec::new();
            for n in 0..times {
                let data = record_data(machine, n);
                let step = || wal.store().gate.turns().trace.len() as i64;
                let began = step();
                match wal.append(data.as_bytes()) {
                    Ok(offset) => acks.push(Ack {
                        offset,
                        data,
                        began,
                        ended: step(),
                    }),
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

/// Explores `work` once for every fate of machine `machine` that ends
/// in `ending`: at each of its requests in turn, reaching the store or
/// not, until one past its last request in every schedule. Returns how
/// many runs it made.
pub(crate) fn explore_fates(
    initial: u64,
    work: &[Work],
    machine: usize,
    ending: Ending,
    setup: Setup,
    bound: usize,
    check: impl Fn(&Run),
) -> u64 {
    let mut runs = 0;
    for at in 0.. {
        let met = Cell::new(false);
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
        if !met.get() {
            return runs;
        }
    }
    unreachable!("a machine sends fewer than u32::MAX requests")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::fence::{Fences, TAKEOVER_MARGIN_MS};

    /// No machine kept the run going for ever: every command ends.
    fn check_ended(run: &Run) {
        assert!(!run.endless, "a machine never ended: {run:?}");
    }

    /// What each machine's work ended with. A live machine's work
    /// succeeds, or is refused where a truncate or trim may be (it did
    /// nothing), once the leases it met ran out: never because another
    /// machine died or stopped; `also` names failures it may end with too.
    /// A stopped machine may besides end with its fence lost: it must find
    /// out, and say so. A machine told of a timeout may fail with it; a
    /// dead machine's ending has no one to read it.
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
                Outcome::Died => false,
            };
            assert!(
                expected || matches!(role, Role::Dead | Role::TimedOut),
                "machine {machine} ({work:?}, {role:?}) ended {outcome:?}: {run:?}"
            );
        }
    }

    /// The log keeps every invariant the audit checks.
    fn check_log(run: &Run, initial: u64) {
        let problems = run.audit(initial).problems();
        assert!(problems.is_empty(), "{problems:#?}\n{run:?}");
    }

    /// The properties every run must keep, whatever the interleaving and
    /// whichever machine dies or stops: every command ends, each as its
    /// machine's fate allows (see [`check_outcomes`]), and the records
    /// and acknowledgements keep README "Many machines, one log".
    fn check(run: &Run, initial: u64) {
        check_ended(run);
        check_outcomes(run, &[]);
        check_log(run, initial);
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

    /// What the runs of [`explore_fates_checked`] went through, so that a
    /// test can say its fates were met where they matter.
    #[derive(Debug, Default)]
    struct Tally {
        runs: u64,
        /// Runs in which a machine took a fence over.
        takeovers: u64,
        /// Runs in which the stopped machine woke to find its fence lost.
        fences_lost: u64,
        /// Runs in which the dead machine left a hole, which the append
        /// after it closed.
        holes_closed: u64,
        /// The longest the others were held back, in milliseconds.
        held_back_ms: i64,
    }

    /// Explores `work` with machine `fated` meeting `ending` at each of its
    /// requests in turn (see [`explore_fates`]) and checks every run: the
    /// properties, and that the others were held back no longer than a
    /// lease and the margin. Prints the schedules covered.
    fn explore_fates_checked(
        initial: u64,
        work: &[Work],
        fated: usize,
        ending: Ending,
        bound: usize,
    ) -> Tally {
        let bound = bound_by_hand(bound);
        let started = std::time::Instant::now();
        let tally = std::cell::RefCell::new(Tally::default());
        let runs = explore_fates(
            initial,
            work,
            fated,
            ending,
            Setup::default(),
            bound,
            |run| {
                check(run, initial);
                assert!(
                    run.held_back_ms <= HELD_BACK_MS,
                    "held back for {} ms: {run:?}",
                    run.held_back_ms
                );
                let mut tally = tally.borrow_mut();
                tally.takeovers += u64::from(taken_over(run));
                let lost = |o: &Outcome| matches!(o, Outcome::Failed(Failure::FenceLost, _));
                tally.fences_lost += u64::from(run.outcomes.iter().any(lost));
                let hole = |offsets: &Vec<u64>| offsets.windows(2).any(|w| w[1] != w[0] + 1);
                let died = run.fated.is_some_and(|fate| fate.ending == Ending::Dies);
                tally.holes_closed +=
                    u64::from(died && run.offsets_at_wake.as_ref().is_some_and(hole));
                tally.held_back_ms = tally.held_back_ms.max(run.held_back_ms);
            },
        );
        let tally = Tally {
            runs,
            ..tally.into_inner()
        };
        eprintln!(
            "{work:?} on {initial} records, machine {fated} {ending:?} at each of its requests, \
             {bound} preemption(s): {runs} schedules in {:?}; {tally:?}",
            started.elapsed()
        );
        tally
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
        let (run, _) = run(3, &work, Setup::with_fate(fate), &[]);
        assert_eq!(run.fated, Some(fate));
        assert_eq!(run.outcomes[0], Outcome::Died);
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
        let (run, _) = run(3, &work, Setup::with_fate(fate), &[]);
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

    /// A trim whose tail record is doomed removes it first, and may then
    /// find the tail below the offset it keeps from, and be refused: it
    /// must have deleted nothing but doomed records by then. The race on
    /// RGW (fence 32, `trim 13`: "the last record is 0"): the trim's own
    /// fence, running, counted as a verdict on the records below its
    /// start, so the removal under it deleted them bottom up, acknowledged
    /// ones too, until the log was empty and offsets started again at 1.
    /// Here a zombie appender (its first PUT gets a 409, so that it pauses
    /// between its look at the tail and its PUT) dies as its PUT lands
    /// above a truncate's cut, after another append placed record 2 on the
    /// cut log; the trim, which waited for the truncate, then finds record
    /// 4 as its tail, doomed, and record 2 below its start.
    #[test]
    fn a_trim_that_finds_its_tail_doomed_deletes_no_record_that_stands() {
        let work = [
            Work::AppendWith(Fault::Conflict),
            Work::Truncate(1),
            Work::Append,
            Work::Trim(3),
        ];
        // Its requests: the fences, the tail, the PUT that gets the 409,
        // then the PUT that lands.
        let fate = Fate {
            machine: 0,
            at: 7,
            applied: true,
            ending: Ending::Dies,
        };
        let zombies = Cell::new(0);
        let runs = explore(3, &work, Setup::with_fate(fate), 1, |run| {
            check(run, 3);
            // It died as its PUT at 4 landed, the truncate's cut below it.
            let (_, last) = run.span(0).unwrap();
            let zombie = run.fated.is_some()
                && run.requests[last].starts_with("PutObject wal/00000000000000000004")
                && run.markers.first().is_some_and(|&(step, _)| step < last);
            zombies.set(zombies.get() + u64::from(zombie));
        });
        eprintln!(
            "{work:?} with {fate:?}: {runs} schedules, {} zombies",
            zombies.get()
        );
        assert!(
            zombies.get() > 100,
            "{} zombies in {runs} schedules",
            zombies.get()
        );
    }

    /// Issue 17: an append after one that this machine saw stand PUTs at
    /// once, without a look at the tail, and checks the fences after; alone,
    /// that is all it sends.
    #[test]
    fn a_warm_append_is_a_put_and_a_fence_check() {
        let (run, _) = run(3, &[Work::AppendTwice], Setup::default(), &[]);
        check(&run, 3);
        let second = run
            .requests
            .iter()
            .skip_while(|r| !r.starts_with("PutObject wal/00000000000000000004"))
            .skip_while(|r| !r.starts_with("ListObjectsV2"))
            .skip(1)
            // The first append leaves the store hint.
            .filter(|r| !r.contains("/.s3wal/at/"))
            .map(|r| r.split(' ').next().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(second, ["PutObject", "ListObjectsV2"], "{run:?}");
    }

    /// Warm appenders whose tails go stale by one record or several, in any
    /// order: the PUT that finds its offset taken looks for the tail.
    #[test]
    fn warm_appenders_that_skip_the_look_never_share_an_offset() {
        let work = [Work::AppendTwice, Work::AppendTwice, Work::Append];
        let runs = explore_checked(3, &work, 2);
        assert!(runs > 1000, "only {runs} schedules");
    }

    /// A warm appender whose tail a truncate deletes between its two
    /// appends (cut right below it, or further down, or to empty): its PUT
    /// lands on the cut log, and the fence check sees the truncate.
    #[test]
    fn a_warm_appender_whose_tail_a_truncate_deleted_leaves_no_hole() {
        for after in [4, 3, 1, 0] {
            let work = [Work::AppendTwice, Work::Append, Work::Truncate(after)];
            let runs = explore_checked(3, &work, 1);
            assert!(runs > 300, "after {after}: only {runs} schedules");
        }
    }

    /// A warm appender beside a zombie that a repair removes: the other
    /// appender's first PUT gets a 409, so that it pauses between its look
    /// and its PUT while the truncate runs.
    #[test]
    fn a_warm_appender_beside_a_repair_leaves_no_hole() {
        let work = [
            Work::AppendTwice,
            Work::AppendWith(Fault::Conflict),
            Work::Truncate(1),
        ];
        let runs = explore_checked(3, &work, 1);
        assert!(runs > 1000, "only {runs} schedules");
    }

    /// The warm appender itself killed, frozen or timed out at any request
    /// of either append, beside another appender and a truncate: the fast
    /// path leaves nothing that the next command cannot mend.
    #[test]
    fn a_warm_appender_that_dies_stops_or_times_out_anywhere_leaves_no_hole() {
        let work = [Work::AppendTwice, Work::Append, Work::Truncate(1)];
        for ending in [Ending::Dies, Ending::Stops, Ending::TimesOut] {
            let tally = explore_fates_checked(3, &work, 0, ending, 0);
            assert!(tally.runs > 1500, "{ending:?}: {tally:?}");
        }
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

    /// Issue 16, nobody waits on the dead: a truncate killed at any
    /// request, carried out or not, holds an appender back for its lease
    /// and the margin at most; the appender takes its fence over, finishes
    /// or voids it, and succeeds.
    #[test]
    fn a_truncate_that_dies_anywhere_holds_an_appender_back_only_for_its_lease() {
        let work = [Work::AppendTwice, Work::Truncate(1)];
        let tally = explore_fates_checked(3, &work, 1, Ending::Dies, 0);
        assert!(tally.runs > 300 && tally.takeovers > 200, "{tally:?}");
        assert!(tally.held_back_ms > LEASE.as_millis() as i64, "{tally:?}");
    }

    /// Issue 16, the late are harmless: a truncate frozen at any request
    /// and woken after the appender took its fence over finds out, and
    /// nothing it sends lands (the appender's second record, placed after
    /// the takeover, would show it).
    #[test]
    fn a_truncate_that_stops_anywhere_finds_out_and_changes_nothing_once_taken_over() {
        let work = [Work::AppendTwice, Work::Truncate(1)];
        let tally = explore_fates_checked(3, &work, 1, Ending::Stops, 0);
        assert!(tally.runs > 300 && tally.fences_lost > 50, "{tally:?}");
    }

    /// A truncate whose request times out fails and releases its fence,
    /// which the appender takes over at once; but the request may still
    /// be on its way, signed to a deadline that has not passed. Wherever
    /// it lands, it must change nothing that matters. Fails today: a
    /// delete held up lands after the takeover, within its deadline, and
    /// deletes a record the appender placed since and was told is stored.
    #[test]
    fn a_truncate_whose_request_times_out_changes_nothing_once_taken_over() {
        let work = [Work::AppendTwice, Work::Truncate(1)];
        let tally = explore_fates_checked(3, &work, 1, Ending::TimesOut, 0);
        assert!(tally.runs > 300 && tally.takeovers > 50, "{tally:?}");
    }

    /// The same for a trim, beside a truncate that must wait for it: the
    /// truncate takes it over, finishes it, and decides on the log the
    /// trim left.
    #[test]
    fn a_trim_that_dies_anywhere_holds_a_truncate_back_only_for_its_lease() {
        let work = [Work::Truncate(2), Work::Trim(2)];
        let tally = explore_fates_checked(3, &work, 1, Ending::Dies, 0);
        assert!(tally.runs > 300 && tally.takeovers > 50, "{tally:?}");
        assert!(tally.held_back_ms > LEASE.as_millis() as i64, "{tally:?}");
    }

    #[test]
    fn a_trim_that_stops_anywhere_finds_out_and_changes_nothing_once_taken_over() {
        let work = [Work::Truncate(2), Work::Trim(2)];
        let tally = explore_fates_checked(3, &work, 1, Ending::Stops, 0);
        assert!(tally.runs > 300 && tally.fences_lost > 20, "{tally:?}");
    }

    /// An appender killed between its PUT and its fence check while a
    /// truncate cut below it leaves a doomed record above a hole until the
    /// next append reaches it and removes it (README, property 1); one
    /// killed while it removes such a record under a repair fence holds
    /// the other appender back for its lease at most. Its first PUT gets a
    /// 409, so that it pauses between its look at the tail and its PUT,
    /// and the truncate runs in between without a preemption.
    #[test]
    fn an_appender_that_dies_anywhere_beside_a_truncate_leaves_no_hole_once_the_next_comes() {
        let tally = explore_fates_checked(3, &APPENDERS_AND_A_TRUNCATE, 0, Ending::Dies, 0);
        assert!(tally.runs > 1000 && tally.holes_closed > 100, "{tally:?}");
        assert!(tally.held_back_ms > LEASE.as_millis() as i64, "{tally:?}");
    }

    /// The same appender frozen anywhere checks its record once it wakes,
    /// and places it again if it is doomed; frozen while it removes one,
    /// it finds its repair fence taken over.
    #[test]
    fn an_appender_that_stops_anywhere_beside_a_truncate_checks_its_record_when_it_wakes() {
        let tally = explore_fates_checked(3, &APPENDERS_AND_A_TRUNCATE, 0, Ending::Stops, 0);
        assert!(tally.runs > 1000 && tally.fences_lost > 20, "{tally:?}");
    }

    /// An appender whose first PUT gets a 409 (see above), another, and a
    /// truncate.
    const APPENDERS_AND_A_TRUNCATE: [Work; 3] = [
        Work::AppendWith(Fault::Conflict),
        Work::Append,
        Work::Truncate(1),
    ];

    /// The next command on a machine whose command died holding a fence
    /// (it finds the fence noted in its lock folder) waits out the dead
    /// one's lease like any other, for a request the dead one sent may
    /// still be on its way, then takes the fence over and goes on.
    #[test]
    fn the_next_command_on_a_machine_that_died_waits_out_its_lease_then_takes_over() {
        let setup = Setup {
            restart: true,
            ..Setup::default()
        };
        let lease_and_margin = LEASE.as_millis() as i64 + TAKEOVER_MARGIN_MS;
        for work in [Work::Truncate(1), Work::Trim(2)] {
            let takeovers = Cell::new(0);
            let runs = explore_fates(3, &[work], 0, Ending::Dies, setup, 0, |run| {
                check(run, 3);
                let waited = run.clock_ms - run.held_back_ms;
                assert!(waited <= HELD_BACK_MS, "waited {waited} ms: {run:?}");
                if taken_over(run) {
                    assert!(waited >= lease_and_margin, "waited {waited} ms: {run:?}");
                    takeovers.set(takeovers.get() + 1);
                }
            });
            eprintln!(
                "{work:?} on 3 records dying at each request, the next command on its machine: \
                 {runs} schedules, {} takeovers",
                takeovers.get()
            );
            assert!(takeovers.get() > 5, "{} of {runs} runs", takeovers.get());
        }
    }

    /// The fence left running in `run`, if any.
    fn running_fence(run: &Run) -> Option<crate::log::fence::Fence> {
        let prefix = Prefix::new("wal").unwrap();
        let fences = Fences::from_keys(&prefix, run.fence_keys.iter().map(String::as_str));
        fences.newest().filter(|f| !f.settled()).copied()
    }

    /// Whether a machine took a fence over (or renewed a lease) in `run`.
    fn taken_over(run: &Run) -> bool {
        run.fence_keys.iter().any(|key| key.contains("-lease-"))
    }

    /// A truncate that dies at each of its requests, beside an appender,
    /// on a store that ignores presigned expiry; checks every
    /// run with `check` and returns how many there were.
    fn explore_deaths_on_a_store_that_ignores_expiry(
        allow_unsafe_takeover: bool,
        check: impl Fn(&Run),
    ) -> u64 {
        let work = [Work::Append, Work::Truncate(1)];
        let setup = Setup {
            ignores_expiry: true,
            allow_unsafe_takeover,
            ..Setup::default()
        };
        let started = std::time::Instant::now();
        let runs = explore_fates(3, &work, 1, Ending::Dies, setup, 0, check);
        eprintln!(
            "{work:?} on 3 records, a store that ignores expiry, unsafe takeovers allowed: \
             {allow_unsafe_takeover}, machine 1 dying at each request: {runs} schedules in {:?}",
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
            check_log(run, 3);
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
