//! Fences with a lease, on real servers with real signals: a machine that
//! dies or stops while it holds a fence (its truncate, trim or repair)
//! holds the others back for its lease and the margin at most, and one
//! woken after another machine took its fence over changes nothing (README
//! "Many machines, one log", issue 16). Every machine is a lock folder of
//! its own, as in `fence_races.rs`, and holds its fences by a 2 s lease,
//! so that a takeover comes within seconds.
//!
//! A holder is killed (`kill -9`) or stopped (`SIGSTOP`) at an exact
//! request: a *gate*, a proxy in front of that machine alone, holds the
//! request back from the store while the test signals the process. The
//! point is then the same however busy the test machine is (watching
//! `--verbose` lines, the test would often signal the process a few
//! requests later), and a request held past a stop reaches the store late,
//! as the request of a paused machine does. Each test times the other
//! machines' waits, and audits the log at its end against the fences the
//! store showed meanwhile (a [`FenceWatch`]).

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::audit::{Ack, Audit, Cut, Cutting};
use common::proxy::{Fault, FaultProxy, Seen};
use common::{Run, Server, TestLog};
use s3wal::s3::Client;
use s3wal::{Store, Wal};

/// The lease every machine here holds its fences by, in seconds.
const LEASE_SECS: u64 = 2;
const LEASE: Duration = Duration::from_secs(LEASE_SECS);
/// How long past its lease a holder that shows no life keeps its fence:
/// the takeover margin of "Many machines, one log".
const MARGIN: Duration = Duration::from_secs(2);
/// What a wait may take beyond the lease and the margin: the store's
/// whole-second `Date` (up to 1 s), the waiter's pauses between two reads
/// of the fences (up to 0.5 s, twice for a machine that loses the
/// takeover to another), starting processes, and a 2-core test machine
/// running other tests beside these.
const SLACK: Duration = Duration::from_secs(4);

/// Records every log here starts with: a truncate has something to cut.
const RECORDS: u64 = 12;

/// The longest a machine may wait, from a holder's last request, for the
/// fence of that holder, dead.
fn dead_holder_wait() -> Duration {
    LEASE + MARGIN + SLACK
}

/// The least a machine waits for a dead holder's fence: the lease and the
/// margin, less the second that a store with whole-second `LastModified`
/// (SeaweedFS) may take off. Anything faster waited for no lease.
fn least_lease_wait() -> Duration {
    LEASE + MARGIN - Duration::from_secs(1)
}

/// `args` after `--lease`, as the holders run: every machine also has
/// `S3WAL_LEASE`, so that one that takes a fence over holds it by the
/// same lease.
fn holding(args: &[&str]) -> Vec<String> {
    let lease = LEASE_SECS.to_string();
    ["--lease", &lease]
        .iter()
        .chain(args)
        .map(|a| (*a).to_owned())
        .collect()
}

/// This machine's host name, as a fence's holder names it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

/// A random number in `low..=high`: the race needs variety, not a
/// sequence to replay (real processes would not replay it anyway).
fn between(low: u64, high: u64) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    low + RandomState::new().hash_one(0u8) % (high - low + 1)
}

/// The median of `times` (sorted here), with the least and the most.
fn spread(mut times: Vec<Duration>) -> String {
    times.sort_unstable();
    match (times.first(), times.last()) {
        (Some(min), Some(max)) => format!(
            "min {min:.2?} / median {:.2?} / max {max:.2?} over {}",
            times[times.len() / 2],
            times.len()
        ),
        _ => "none".to_owned(),
    }
}

// ---------------------------------------------------------------------
// Machines and what their commands did

/// How the test ended a command early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Kill,
    Stop,
}

/// One command a machine ran, for the assertions, the audit and the
/// timeline a failed audit prints.
#[derive(Debug, Clone)]
struct Event {
    machine: String,
    args: Vec<String>,
    pid: u32,
    start: Instant,
    end: Instant,
    /// When the test killed it, or stopped it (and later woke it).
    signal: Option<(Instant, Signal)>,
    /// Its exit code; `None` when it was killed.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Event {
    fn took(&self) -> Duration {
        self.end - self.start
    }

    /// The data of an append.
    fn appended(&self) -> Option<&str> {
        match self.args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            [.., "append", data] => Some(data),
            _ => None,
        }
    }

    /// The offset an append was acknowledged at.
    fn acked(&self) -> Option<u64> {
        let data = self.appended()?;
        let rest = self.stdout.strip_prefix("Appended record at offset: ")?;
        let (offset, said) = rest.trim_end().split_once(", data: ")?;
        (self.code == Some(0) && said == data).then(|| offset.parse().ok())?
    }

    /// What the binary did, as the shared harness checks it.
    fn run(&self) -> Run {
        Run {
            code: self.code.unwrap_or_else(|| panic!("killed: {self:?}")),
            stdout: self.stdout.clone().into_bytes(),
            stderr: self.stderr.clone(),
        }
    }

    /// Asserts exit 0 and returns stdout.
    #[track_caller]
    fn ok(&self) -> String {
        self.run().ok()
    }

    /// Asserts exit `code`, an empty stdout, and an error line on stderr
    /// that contains every one of `needles`, after nothing but the lines
    /// that say what the command waited for.
    #[track_caller]
    fn fails(&self, code: i32, needles: &[&str]) {
        let lines: Vec<&str> = self.stderr.lines().collect();
        let (last, before) = lines.split_last().unwrap_or((&"", &[]));
        assert_eq!(self.code, Some(code), "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
        assert!(last.starts_with("s3wal: "), "{self:?}");
        for needle in needles {
            assert!(last.contains(needle), "{needle:?} not in: {last}");
        }
        for line in before {
            assert!(line.starts_with("s3wal: waiting for fence"), "{self:?}");
        }
    }

    /// One line of the timeline, in ms from `zero`.
    fn line(&self, zero: Instant) -> String {
        let ms = |t: Instant| t.saturating_duration_since(zero).as_millis();
        let ended = match (self.code, self.signal) {
            (None, _) => "killed".to_owned(),
            (Some(code), Some((at, Signal::Stop))) => {
                format!("stopped at {} ms, exit {code}", ms(at))
            }
            (Some(code), _) => format!("exit {code}"),
        };
        let said = format!("{} {}", self.stdout.trim(), self.stderr.trim());
        format!(
            "{}..{} ms {} (pid {}): s3wal {}: {ended}: {}",
            ms(self.start),
            ms(self.end),
            self.machine,
            self.pid,
            self.args.join(" "),
            said.trim()
        )
    }
}

/// Every command the machines of one test ran.
type Journal = Arc<Mutex<Vec<Event>>>;

/// One machine: the log through a lock folder of its own (the machines
/// share nothing but the store), its commands holding fences by
/// [`LEASE`], each written in its scene's journal.
#[derive(Debug, Clone)]
struct Machine {
    name: String,
    log: TestLog,
    /// `FAKETIME` for its clock (`+10m`), when it is not the true one.
    clock: Option<&'static str>,
    journal: Journal,
}

impl Machine {
    /// This machine reaching the store through `endpoint` (a gate).
    fn via(&self, endpoint: &str) -> Machine {
        Machine {
            log: self.log.via(endpoint),
            ..self.clone()
        }
    }

    /// This machine with its clock `offset` away from the true time.
    fn with_clock(self, offset: &'static str) -> Machine {
        Machine {
            clock: Some(offset),
            ..self
        }
    }

    fn command(&self, args: &[String]) -> Command {
        let mut command = self.log.command();
        command
            .env("S3WAL_LEASE", LEASE_SECS.to_string())
            .args(args);
        if let Some(offset) = self.clock {
            // What the `faketime` wrapper sets, but in s3wal itself (the
            // wrapper forks, so its process id would not be s3wal's). The
            // monotonic clock stays true, as on a machine whose wall clock
            // is wrong.
            let preload = faketime_preload().expect("faketime is installed");
            command
                .env("LD_PRELOAD", preload)
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        command
    }

    /// Starts `s3wal ARGS`, its output going to files (nothing blocks on
    /// a full pipe while the test holds it stopped).
    fn spawn(&self, args: &[impl AsRef<str>]) -> Running {
        static OUTPUTS: AtomicU64 = AtomicU64::new(0);
        let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
        let n = OUTPUTS.fetch_add(1, Ordering::Relaxed);
        let out = self.log.workdir.join(format!("{}-{n}.out", self.name));
        let err = out.with_extension("err");
        let start = Instant::now();
        let child = self
            .command(&args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Running {
            machine: self.clone(),
            args,
            start,
            child,
            out,
            err,
            signal: None,
        }
    }

    /// Runs `s3wal ARGS` to its end (at most a minute).
    fn run(&self, args: &[impl AsRef<str>]) -> Event {
        self.spawn(args).wait(Duration::from_secs(60))
    }
}

/// A command that runs.
struct Running {
    machine: Machine,
    args: Vec<String>,
    start: Instant,
    child: Child,
    out: PathBuf,
    err: PathBuf,
    signal: Option<(Instant, Signal)>,
}

impl Running {
    fn send(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with the id of our own child, not yet reaped.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill({pid}, {signal})"
        );
    }

    fn still_runs(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Stops it (`SIGSTOP`): it sends nothing more until woken.
    fn stop(&mut self) {
        self.send(libc::SIGSTOP);
        self.signal = Some((Instant::now(), Signal::Stop));
    }

    /// Wakes it (`SIGCONT`).
    fn wake(&self) {
        self.send(libc::SIGCONT);
    }

    /// Kills it (`kill -9`) and reaps it.
    fn kill(mut self) -> Event {
        self.signal = Some((Instant::now(), Signal::Kill));
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        self.ended(status.code())
    }

    /// Waits for it to exit, at most `limit`.
    #[track_caller]
    fn wait(mut self, limit: Duration) -> Event {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return self.ended(status.code());
            }
            if self.start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let event = self.ended(None);
                panic!("still running after {limit:?}: {}", event.line(event.start));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn ended(&mut self, code: Option<i32>) -> Event {
        let event = Event {
            machine: self.machine.name.clone(),
            args: std::mem::take(&mut self.args),
            pid: self.child.id(),
            start: self.start,
            end: Instant::now(),
            signal: self.signal,
            code,
            stdout: std::fs::read_to_string(&self.out).unwrap(),
            stderr: std::fs::read_to_string(&self.err).unwrap(),
        };
        self.machine.journal.lock().unwrap().push(event.clone());
        event
    }
}

impl Drop for Running {
    /// No process of a failed test is left behind, stopped or running
    /// (once reaped, this sends nothing).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `LD_PRELOAD` by which the `faketime` wrapper fakes a program's
/// clock, read from the wrapper itself; `None` when faketime is not
/// installed.
fn faketime_preload() -> Option<&'static str> {
    static PRELOAD: OnceLock<Option<String>> = OnceLock::new();
    PRELOAD
        .get_or_init(|| {
            let output = Command::new("faketime")
                .args(["-f", "+0", "sh", "-c", "printf %s \"$LD_PRELOAD\""])
                .stdin(Stdio::null())
                .output()
                .ok()?;
            let preload = String::from_utf8(output.stdout).ok()?;
            (output.status.success() && preload.contains("faketime")).then_some(preload)
        })
        .as_deref()
}

// ---------------------------------------------------------------------
// The gate: a machine stopped at an exact request

/// Where a gate stops its machine: the request it holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    /// The request right after the PUT that claims a fence: the claim has
    /// landed, nothing says yet what the fence does.
    AfterClaim,
    /// The request right after the PUT that says what a fence does.
    AfterDescription,
    /// The first DELETE: signed, on the wire, not yet at the store.
    FirstDelete,
    /// The PUT of a record.
    RecordPut,
    /// Its `n`th request, from 1; never, if it makes fewer.
    Request(usize),
}

/// Picks the request to hold, from the method and path of each in turn.
type Pick = Box<dyn FnMut(&str, &str) -> bool + Send>;

impl Point {
    fn pick(self) -> Pick {
        // Whether the request before was the one to hold the next after.
        let mut after = false;
        let mut count = 0;
        Box::new(move |method, path| {
            count += 1;
            let put = method == "PUT";
            let name = path.rsplit('/').next().unwrap_or_default();
            let fence = match path.split_once(FENCE_FOLDER) {
                Some((_, name)) if put => fence_key(name).map(|(_, part)| part),
                _ => None,
            };
            let this = match self {
                Point::AfterClaim => fence == Some(Part::Claim),
                Point::AfterDescription => matches!(fence, Some(Part::Described(..))),
                _ => false,
            };
            let next = std::mem::replace(&mut after, this);
            match self {
                Point::AfterClaim | Point::AfterDescription => next,
                Point::FirstDelete => method == "DELETE",
                Point::RecordPut => {
                    let digits = name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit());
                    put && digits && !path.contains("/.s3wal/")
                }
                Point::Request(n) => count == n,
            }
        })
    }
}

/// What a gate does now.
struct GateState {
    /// The request to hold next, if any.
    pick: Option<Pick>,
    /// The request held, as `METHOD path`.
    held: Option<String>,
    /// What becomes of the requests that arrive, and of the ones held
    /// once released; `None` while it holds them.
    pass: Option<Fault>,
}

/// A proxy in front of one machine alone: it passes that machine's
/// requests to the store until it picks one, and holds that one and every
/// later one back until the test releases them. The machine stops at that
/// request as one paused or killed there does, the request on the wire.
struct Gate {
    proxy: FaultProxy,
    state: Arc<(Mutex<GateState>, Condvar)>,
}

impl Gate {
    fn new(server: &Server, point: Point) -> Gate {
        let state = Arc::new((
            Mutex::new(GateState {
                pick: Some(point.pick()),
                held: None,
                pass: Some(Fault::Forward),
            }),
            Condvar::new(),
        ));
        let shared = state.clone();
        let proxy = FaultProxy::start(&server.endpoint, move |method, path| {
            let (lock, changed) = &*shared;
            let mut gate = lock.lock().unwrap();
            if gate.pick.as_mut().is_some_and(|pick| pick(method, path)) {
                gate.pick = None;
                gate.held = Some(format!("{method} {path}"));
                gate.pass = None;
                changed.notify_all();
            }
            loop {
                match gate.pass {
                    Some(fault) => return fault,
                    None => gate = changed.wait(gate).unwrap(),
                }
            }
        });
        Gate { proxy, state }
    }

    fn endpoint(&self) -> &str {
        &self.proxy.endpoint
    }

    /// The request held now, if one is.
    fn held(&self) -> Option<String> {
        self.state.0.lock().unwrap().held.clone()
    }

    /// Waits until a request is held, and names it.
    #[track_caller]
    fn wait_held(&self) -> String {
        let (lock, changed) = &*self.state;
        let (gate, timeout) = changed
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(30), |gate| {
                gate.held.is_none()
            })
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "the gate held nothing: {:?}",
            self.seen()
        );
        gate.held.clone().unwrap()
    }

    /// Lets the held requests and every later one through (`Forward`),
    /// or drops them (`Reset`): a killed machine's never arrive.
    fn release(&self, fault: Fault) {
        let (lock, changed) = &*self.state;
        let mut gate = lock.lock().unwrap();
        gate.held = None;
        gate.pass = Some(fault);
        changed.notify_all();
    }

    /// Lets the held request through, and holds the next one.
    fn pass_and_hold_next(&self) {
        self.state.0.lock().unwrap().pick = Some(Box::new(|_, _| true));
        self.release(Fault::Forward);
    }

    fn seen(&self) -> Vec<Seen> {
        self.proxy.seen()
    }
}

impl Drop for Gate {
    /// Nothing held stays blocked once its test is done with the gate.
    fn drop(&mut self) {
        self.release(Fault::Reset);
    }
}

// ---------------------------------------------------------------------
// What the store shows of the fences

/// The folder of the fences, under a log's prefix.
const FENCE_FOLDER: &str = ".s3wal/fence/";

/// What one key of the fence folder is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// `f<20 digits>`: the claim.
    Claim,
    /// `…-lease-<n>`: a renewal, or a takeover.
    Lease(u64),
    /// `…-truncate-<n>`, `…-trim-<n>`, `…-repair-<n>`: what it does.
    Described(String, u64),
    /// `….done` (true) or `….void`.
    Marker(bool),
}

/// A fence key's sequence (its 20 digits) and what it is, read from its
/// name below the fence folder, independently of s3wal.
fn fence_key(name: &str) -> Option<(String, Part)> {
    let rest = name.strip_prefix('f')?;
    let digits = rest.get(..20)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = &rest[20..];
    let part = match (rest.strip_suffix(".done"), rest.strip_suffix(".void")) {
        (Some(_), _) => Part::Marker(true),
        (_, Some(_)) => Part::Marker(false),
        _ if rest.is_empty() => Part::Claim,
        _ => {
            let (what, n) = rest.strip_prefix('-')?.rsplit_once('-')?;
            match what {
                "lease" => Part::Lease(n.parse().ok()?),
                _ => Part::Described(what.to_owned(), n.parse().ok()?),
            }
        }
    };
    Some((digits.to_owned(), part))
}

/// What the store showed of one fence while a [`FenceWatch`] looked.
#[derive(Debug, Clone, Default)]
struct Watched {
    /// What it does, once described: `("truncate", 4)`.
    kind: Option<(String, u64)>,
    /// Leases taken after its claim: renewals, and takeovers.
    leases: u64,
    /// Done (true) or void, and when a look first saw it settled.
    settled: Option<(bool, Instant)>,
}

impl Watched {
    /// The truncate or trim it is, if it settled done: it may have acted
    /// from the test's `zero` (when it began is not watched) until a look
    /// first saw it settled.
    fn cutting(&self, zero: Instant) -> Option<Cutting<Instant>> {
        let Some((true, settled)) = self.settled else {
            return None;
        };
        let cut = match self.kind.as_ref()? {
            (kind, cut) if kind == "truncate" => Cut::Truncate(*cut),
            (kind, start) if kind == "trim" => Cut::Trim(*start),
            _ => return None,
        };
        Some(Cutting {
            cut,
            began: zero,
            settled,
            done: false,
        })
    }
}

/// Looks at a log's fence folder every 50 ms from a thread of its own, so
/// that the audit knows when each fence settled: a truncate that a killed
/// machine began and another machine finished removed records until then.
struct FenceWatch {
    log: TestLog,
    fences: Arc<Mutex<BTreeMap<String, Watched>>>,
    stop: Arc<AtomicBool>,
}

impl FenceWatch {
    fn start(log: &TestLog) -> FenceWatch {
        let watch = FenceWatch {
            log: log.clone(),
            fences: Arc::default(),
            stop: Arc::default(),
        };
        let (log, fences, stop) = (log.clone(), watch.fences.clone(), watch.stop.clone());
        thread::spawn(move || {
            let wal = log.wal();
            while !stop.load(Ordering::Relaxed) {
                look(&log, &wal, &fences);
                thread::sleep(Duration::from_millis(50));
            }
        });
        watch
    }

    /// The fences, as of a look taken now.
    fn now(&self) -> BTreeMap<String, Watched> {
        look(&self.log, &self.log.wal(), &self.fences);
        self.fences.lock().unwrap().clone()
    }

    /// The fence that runs now, if one does.
    fn running(&self) -> Option<(String, Watched)> {
        self.now().into_iter().find(|(_, f)| f.settled.is_none())
    }
}

impl Drop for FenceWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One look at `log`'s fence folder; one that fails is skipped.
fn look(log: &TestLog, wal: &Wal<Client>, fences: &Mutex<BTreeMap<String, Watched>>) {
    let folder = log.key(FENCE_FOLDER);
    let keys: Result<Vec<String>, _> = wal.store().keys(&folder, None, 1000).collect();
    let Ok(keys) = keys else { return };
    let now = Instant::now();
    let mut fences = fences.lock().unwrap();
    for key in keys {
        let Some((seq, part)) = key.strip_prefix(&folder).and_then(fence_key) else {
            continue;
        };
        let fence = fences.entry(seq).or_default();
        match part {
            Part::Claim => {}
            Part::Lease(n) => fence.leases = fence.leases.max(n),
            Part::Described(kind, n) => fence.kind = Some((kind, n)),
            Part::Marker(done) => {
                fence.settled.get_or_insert((done, now));
            }
        }
    }
}

// ---------------------------------------------------------------------
// A test's log, and its audit

/// One test's log: filled with records, its fences watched, and every
/// command of its machines journalled for the audit.
struct Scene {
    log: TestLog,
    /// The records it was filled with, acknowledged before anything ran.
    filled: Vec<Ack<Instant>>,
    journal: Journal,
    watch: FenceWatch,
}

impl Scene {
    /// A fresh log on `server` holding `records` records, `r1`, `r2`, …
    fn new(server: Server, name: &str, records: u64) -> Scene {
        let log = TestLog::new(server, name);
        let start = Instant::now();
        let lines: String = (1..=records).map(|n| format!("r{n}\n")).collect();
        log.run_with_stdin(&["append", "--lines"], lines.as_bytes())
            .ok();
        let end = Instant::now();
        let filled = (1..=records)
            .map(|n| Ack {
                data: format!("r{n}"),
                offset: n,
                began: start,
                ended: end,
            })
            .collect();
        Scene {
            watch: FenceWatch::start(&log),
            log,
            filled,
            journal: Journal::default(),
        }
    }

    fn machine(&self, name: &str) -> Machine {
        Machine {
            name: name.to_owned(),
            log: TestLog {
                lock_dir: self.log.workdir.join(format!("machine-{name}")),
                ..self.log.clone()
            },
            clock: None,
            journal: self.journal.clone(),
        }
    }

    /// The records as a reader sees them: (offset, data), in order.
    fn records(&self) -> Vec<(u64, String)> {
        let dump = self.log.run(&["--json", "dump"]);
        let lines = dump.ok();
        let parse = |line: &str| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let data = record["data"].as_str().unwrap().to_owned();
            (record["offset"].as_u64().unwrap(), data)
        };
        lines.lines().map(parse).collect()
    }

    /// The records the log was filled with up to `last`, then `appended`
    /// from `last + 1` on: what a test expects to read back.
    fn filled_up_to(&self, last: u64, appended: &[&Event]) -> Vec<(u64, String)> {
        let kept = self.filled.iter().take_while(|a| a.offset <= last);
        let kept = kept.map(|a| (a.offset, a.data.clone()));
        let next = appended
            .iter()
            .zip(last + 1..)
            .map(|(event, offset)| (offset, event.appended().unwrap().to_owned()));
        kept.chain(next).collect()
    }

    /// Asserts that the audit finds nothing wrong; prints what happened.
    /// First the fences left running by dead holders are taken over and
    /// finished, as the next admin command would: a dead trim leaves a gap
    /// among its deletes in flight until then.
    #[track_caller]
    fn audit(&self) {
        let settle = self.machine("auditor").run(&["trim", "1"]);
        assert!(
            matches!(settle.code, Some(0 | 2)),
            "{}",
            settle.line(Instant::now())
        );
        let problems = self.problems();
        let zero = self.filled.first().map_or_else(Instant::now, |a| a.began);
        let timeline = self.timeline(zero);
        println!("--- timeline\n{timeline}");
        assert!(
            problems.is_empty(),
            "{}\n--- timeline\n{timeline}\n--- keys\n{}",
            problems.join("\n"),
            self.log.keys().join("\n")
        );
    }

    /// What the audit of the log finds wrong: the log as read back, and
    /// its invariants against the acknowledged records (the fill's among
    /// them), the records of killed appends and of appends that say they
    /// may have stored, which may stand, and the truncates and trims the
    /// fence watch saw settle.
    fn problems(&self) -> Vec<String> {
        let events = self.journal.lock().unwrap().clone();
        let zero = self.filled.first().map_or_else(Instant::now, |a| a.began);
        let acked = |e: &Event| {
            Some(Ack {
                offset: e.acked()?,
                data: e.appended()?.to_owned(),
                began: e.start,
                ended: e.end,
            })
        };
        let may_stand = events
            .iter()
            .filter(|e| e.acked().is_none() && matches!(e.code, None | Some(6)))
            .filter_map(|e| Some((None, e.appended()?.to_owned())));
        let (stored, mut problems) = common::read_back(&self.log);
        let audit = Audit {
            stored,
            acks: self
                .filled
                .iter()
                .cloned()
                .chain(events.iter().filter_map(acked))
                .collect(),
            may_stand: may_stand.collect(),
            cuts: self
                .watch
                .now()
                .values()
                .filter_map(|f| f.cutting(zero))
                .collect(),
        };
        problems.extend(audit.problems());
        problems
    }

    /// Every command and every fence, in ms from `zero`.
    fn timeline(&self, zero: Instant) -> String {
        let mut events = self.journal.lock().unwrap().clone();
        events.sort_by_key(|e| e.start);
        let mut lines: Vec<String> = events.iter().map(|e| e.line(zero)).collect();
        for (seq, fence) in self.watch.now() {
            let settled = match fence.settled {
                Some((done, at)) => format!(
                    "{} seen at {} ms",
                    if done { "done" } else { "void" },
                    at.saturating_duration_since(zero).as_millis()
                ),
                None => "running".to_owned(),
            };
            lines.push(format!(
                "fence f{seq} {:?}, {} leases after its claim: {settled}",
                fence.kind, fence.leases
            ));
        }
        lines.join("\n")
    }
}

// ---------------------------------------------------------------------
// What the tests assert of the waits

/// Asserts that `event` succeeded after waiting out the lease of a holder
/// whose last request was at `since`: no sooner than the lease (the store
/// kept it for the holder), no later than lease, margin and slack.
#[track_caller]
fn assert_waited_out_a_lease(event: &Event, since: Instant) {
    event.ok();
    let waited = event.end - since;
    println!(
        "lease wait: {} `{}` waited {waited:.2?} for a dead holder",
        event.machine,
        event.args.join(" ")
    );
    assert!(
        (LEASE..=dead_holder_wait()).contains(&waited),
        "waited {waited:?}, not between the lease and lease + margin + slack ({:?}): {event:?}",
        dead_holder_wait()
    );
}

/// Asserts that `event` succeeded without waiting for a lease.
#[track_caller]
fn assert_did_not_wait(event: &Event) {
    event.ok();
    println!(
        "no wait: {} `{}` took {:.2?}",
        event.machine,
        event.args.join(" "),
        event.took()
    );
    assert!(
        event.took() < least_lease_wait(),
        "took {:?}: {event:?}",
        event.took()
    );
}

/// Asserts that `event` said, while it waited, which fence it waited for
/// (`what` it does), held by which machine and process, and for how long.
#[track_caller]
fn assert_said_it_waits_for(event: &Event, what: &str, holder: &Event) {
    let line = event
        .stderr
        .lines()
        .find(|line| line.starts_with("s3wal: waiting for fence"))
        .unwrap_or_else(|| panic!("no waiting notice: {event:?}"));
    let pid = format!("pid {}", holder.pid);
    for needle in [what, &host_name(), &pid] {
        assert!(line.contains(needle), "{needle:?} not in: {line}");
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let seconds = words
        .windows(2)
        .any(|w| w[0].parse::<u64>().is_ok() && w[1].starts_with('s'));
    assert!(seconds, "no time in: {line}");
}

// ---------------------------------------------------------------------
// Holders stopped at a point

/// Starts `truncate 4` on `holder` behind a gate that stops it at
/// `point`, kills it there (`kill -9`: what it had on the wire never
/// arrives), and returns what it did and its fence as the store shows it
/// right after.
fn kill_a_truncate_at(scene: &Scene, point: Point, holder: &Machine) -> (Event, String, Watched) {
    let gate = Gate::new(&scene.log.server, point);
    let truncate = holder
        .via(gate.endpoint())
        .spawn(&holding(&["truncate", "4"]));
    let held = gate.wait_held();
    let killed = truncate.kill();
    drop(gate);
    let (seq, fence) = scene
        .watch
        .running()
        .unwrap_or_else(|| panic!("no fence runs after a kill at {held}: {killed:?}"));
    (killed, seq, fence)
}

/// A truncate stopped (`SIGSTOP`) at `point` behind its gate, and five
/// appends on another machine meanwhile: the first waits out the
/// truncate's lease and takes its fence over, the others do not wait.
/// Woken, with what it held on the wire let through to the store late,
/// the truncate must exit 7 saying it lost its fence, and the log must
/// hold the five records at the offsets they were acknowledged at, right
/// after what the takeover left: the whole log if it voided the fence,
/// the first 4 records if it finished the truncate.
fn a_truncate_stopped_at(point: Point, server: Server) {
    let scene = Scene::new(server, "lease-stopped", RECORDS);
    let gate = Gate::new(&scene.log.server, point);
    let holder = scene.machine("holder").via(gate.endpoint());
    let mut truncate = holder.spawn(&holding(&["truncate", "4"]));
    let held = gate.wait_held();
    truncate.stop();
    let stopped = Instant::now();
    let (seq, _) = scene.watch.running().expect("its fence runs");
    let appender = scene.machine("appender");
    let appends: Vec<Event> = (1..=5)
        .map(|n| appender.run(&["append", &format!("while stopped {n}")]))
        .collect();
    assert_waited_out_a_lease(&appends[0], stopped);
    appends[1..].iter().for_each(assert_did_not_wait);
    truncate.wake();
    gate.release(Fault::Forward);
    let woken = truncate.wait(Duration::from_secs(30));
    println!("held at {held}; woken: {}", woken.stderr.trim());
    woken.run().fails(7, "lease");
    assert!(woken.stderr.contains("fence"), "{woken:?}");
    let kept = match &scene.watch.now()[&seq].settled {
        Some((true, _)) => 4,
        Some((false, _)) => RECORDS,
        None => panic!("its fence still runs: {}", scene.timeline(stopped)),
    };
    assert_eq!(
        scene.records(),
        scene.filled_up_to(kept, &appends.iter().collect::<Vec<_>>()),
        "{}",
        scene.timeline(stopped)
    );
    scene.audit();
}

/// Leaves a doomed record: an appender on a fresh machine PUTs its record
/// on the tail it found, but its PUT is held at its gate while another
/// machine truncates after `cut`; let through, it lands above a hole, and
/// the appender is killed before its fence check (the request after its
/// PUT).
fn leave_a_doomed_record(scene: &Scene, cut: u64) {
    let gate = Gate::new(&scene.log.server, Point::RecordPut);
    let append = scene
        .machine("doomed")
        .via(gate.endpoint())
        .spawn(&["append", "doomed"]);
    let put = gate.wait_held();
    let truncate = scene.machine("admin").run(&["truncate", &cut.to_string()]);
    assert_did_not_wait(&truncate);
    gate.pass_and_hold_next();
    let check = gate.wait_held();
    append.kill();
    let offsets = scene.log.offsets();
    assert!(
        offsets.contains(&(RECORDS + 1)) && !offsets.contains(&(cut + 1)),
        "no record above a hole after {put} then {check}: {offsets:?}"
    );
}

// ---------------------------------------------------------------------
// The behaviours, each on RGW and on SeaweedFS

/// A truncate killed right after its claim, before it said what it does:
/// its fence holds back every command that meets it until its lease and
/// the margin have passed with no sign of life, by the store's clock; then
/// whoever meets it takes it over, voids it (it may have done nothing at
/// all) and goes on. An append and a truncate on two other machines,
/// started together right after the kill, both succeed, neither sooner
/// than the lease (the store kept it for the holder) nor later than lease,
/// margin and slack; the waiting append says what it waits for, and for
/// whom.
fn a_truncate_killed_right_after_its_claim_holds_no_one_back_for_longer_than_its_lease(
    server: Server,
) {
    let scene = Scene::new(server, "lease-killed", RECORDS);
    let (killed, seq, fence) =
        kill_a_truncate_at(&scene, Point::AfterClaim, &scene.machine("holder"));
    assert_eq!(fence.kind, None, "described before the kill: {fence:?}");
    let (append, truncate) = thread::scope(|s| {
        let append = s.spawn(|| scene.machine("appender").run(&["append", "after the kill"]));
        let truncate = s.spawn(|| scene.machine("admin").run(&["truncate", "8"]));
        (append.join().unwrap(), truncate.join().unwrap())
    });
    assert_waited_out_a_lease(&append, killed.end);
    assert_waited_out_a_lease(&truncate, killed.end);
    assert_said_it_waits_for(&append, "truncate", &killed);
    let voided = scene.watch.now()[&seq].settled;
    assert!(matches!(voided, Some((false, _))), "not voided: {voided:?}");
    scene.audit();
}

/// [`a_truncate_stopped_at`] right after its claim: the takeover voids
/// the fence, and the truncate, woken, must not cut the log it no longer
/// holds.
fn a_truncate_stopped_right_after_its_claim_and_woken_after_a_takeover_exits_7_and_changes_nothing(
    server: Server,
) {
    a_truncate_stopped_at(Point::AfterClaim, server);
}

/// [`a_truncate_stopped_at`] with its first deletes signed and on the
/// wire: the takeover finishes the truncate, and the five appends land at
/// the very keys those deletes name. They reach the store after all that,
/// past the lease they were signed to expire with, and the store refuses
/// them.
fn a_truncate_stopped_with_its_deletes_on_the_wire_deletes_nothing_when_woken(server: Server) {
    a_truncate_stopped_at(Point::FirstDelete, server);
}

/// An appender killed between its PUT and its fence check holds no fence:
/// the record it left above a truncate's cut is doomed (never
/// acknowledged), and the next append removes it and takes its place. No
/// machine waits for a lease: an append and a truncate on two more
/// machines succeed at once.
fn an_appender_killed_between_its_put_and_its_fence_check_holds_no_one_back(server: Server) {
    let scene = Scene::new(server, "lease-appender", RECORDS);
    leave_a_doomed_record(&scene, 5);
    let append = scene.machine("next").run(&["append", "next"]);
    assert_did_not_wait(&append);
    assert_eq!(append.acked(), Some(6), "{append:?}");
    assert_did_not_wait(&scene.machine("admin-2").run(&["truncate", "3"]));
    scene.audit();
}

/// A repair killed midway (its fence described, the doomed record it was
/// deleting still there) holds the others back for its lease at most,
/// like a truncate: the next append waits it out, takes the fence over,
/// finishes the repair and takes the doomed record's place.
fn a_repair_killed_midway_holds_no_one_back_for_longer_than_its_lease(server: Server) {
    let scene = Scene::new(server, "lease-repair", RECORDS);
    leave_a_doomed_record(&scene, 5);
    let gate = Gate::new(&scene.log.server, Point::FirstDelete);
    let repairer = scene.machine("repairer").via(gate.endpoint());
    let append = repairer.spawn(&holding(&["append", "repairer"]));
    let held = gate.wait_held();
    let killed = append.kill();
    drop(gate);
    let (seq, fence) = scene.watch.running().expect("the repair's fence runs");
    let repair = fence
        .kind
        .as_ref()
        .is_some_and(|(kind, _)| kind == "repair");
    assert!(repair, "not a repair, held at {held}: {fence:?}");
    let next = scene.machine("next").run(&["append", "next"]);
    assert_waited_out_a_lease(&next, killed.end);
    assert_eq!(next.acked(), Some(6), "{next:?}");
    let done = scene.watch.now()[&seq].settled;
    assert!(
        matches!(done, Some((true, _))),
        "the repair is not done: {done:?}"
    );
    scene.audit();
}

/// A truncate that keeps deleting for longer than its lease and the
/// margin (each of its deletes, one at a time, held back 250 ms on the
/// way) renews its lease as it goes, a `…-lease-<n>` key at least once a
/// lease: no machine takes its fence over, the truncate ends well, and an
/// append started meanwhile on another machine waits for it, then lands
/// right after the cut.
fn a_truncate_that_keeps_deleting_renews_its_lease_and_keeps_its_fence(server: Server) {
    let scene = Scene::new(server, "lease-renewed", 30);
    let slow = FaultProxy::start(&scene.log.server.endpoint, |method, _| match method {
        "DELETE" => Fault::Delay(Duration::from_millis(250)),
        _ => Fault::Forward,
    });
    let holder = scene.machine("holder").via(&slow.endpoint);
    let truncate = holder.spawn(&holding(&["--parallel", "1", "truncate", "4"]));
    let deleting = Instant::now();
    while !slow.seen().iter().any(|s| s.method == "DELETE") {
        assert!(deleting.elapsed() < Duration::from_secs(20), "no delete");
        thread::sleep(Duration::from_millis(10));
    }
    let append = scene.machine("appender").run(&["append", "during"]);
    let truncate = truncate.wait(Duration::from_secs(60));
    assert!(
        truncate.ok().starts_with("Truncated WAL after offset 4\n"),
        "{truncate:?}"
    );
    assert!(
        truncate.took() > LEASE + MARGIN + Duration::from_secs(1),
        "it must outlast its lease and the margin to show anything: {truncate:?}"
    );
    append.ok();
    assert_eq!(append.acked(), Some(5), "{append:?}");
    let renewals = slow
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.path.contains("-lease-"))
        .count();
    let leases = truncate.took().as_secs_f64() / LEASE.as_secs_f64();
    println!(
        "renewals: {renewals} in {:.2?}; the append waited {:.2?}",
        truncate.took(),
        append.took()
    );
    assert!(
        renewals as f64 >= leases.floor(),
        "{renewals} renewals in {leases:.1} leases"
    );
    scene.audit();
}

/// `stat` on another machine shows a running fence: a line saying what
/// it does, which machine holds it (host name and process id), since when
/// and from when it may be taken over by the store's clock; `--json stat`
/// has it as a "fence" object.
fn stat_shows_a_running_fence_and_its_holder(server: Server) {
    let scene = Scene::new(server, "lease-stat", RECORDS);
    let gate = Gate::new(&scene.log.server, Point::AfterDescription);
    let holder = scene.machine("holder").via(gate.endpoint());
    let truncate = holder.spawn(&holding(&["truncate", "4"]));
    gate.wait_held();
    let other = scene.machine("other");
    let (text, json) = (other.run(&["stat"]), other.run(&["--json", "stat"]));
    let truncate = truncate.kill();
    let out = text.ok();
    let line = out
        .lines()
        .find(|line| line.starts_with("Running fence: "))
        .unwrap_or_else(|| panic!("no running fence in: {out}"));
    let pid = truncate.pid.to_string();
    for needle in ["truncate", &host_name(), &pid] {
        assert!(line.contains(needle), "{needle:?} not in: {line}");
    }
    let stat: serde_json::Value = serde_json::from_str(json.ok().trim()).unwrap();
    let fence = &stat["fence"];
    assert!(fence.is_object(), "no fence object: {stat}");
    for needle in ["truncate", &host_name(), &pid] {
        assert!(
            fence.to_string().contains(needle),
            "{needle:?} not in: {fence}"
        );
    }
}

/// The store's clock, not the machines', keeps the leases: a truncate
/// killed after its claim on a machine whose clock is 10 minutes fast is
/// taken over by one whose clock is 10 minutes slow no sooner than its
/// lease and no later than lease, margin and slack, and the other way
/// round; appends go on from both machines. (Stores take signatures up to
/// 15 minutes off.)
fn clocks_10_minutes_off_either_way_neither_hasten_nor_delay_a_takeover(server: Server) {
    if faketime_preload().is_none() {
        // Past the test harness's capture, so that a skip shows.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: faketime is not installed (tests/servers/install.sh installs it)"
        );
        return;
    }
    let scene = Scene::new(server, "lease-clocks", RECORDS);
    let fast = scene.machine("fast").with_clock("+10m");
    let slow = scene.machine("slow").with_clock("-10m");
    // faketime reaches s3wal (a dynamically linked binary): its doctor
    // finds its clock 10 minutes off the store's.
    for (machine, direction) in [(&fast, "ahead of"), (&slow, "behind")] {
        let doctor = machine.run(&["doctor"]);
        let clock = doctor.stdout.lines().find(|l| l.starts_with("clock: "));
        let clock = clock.unwrap_or_else(|| panic!("no clock finding: {doctor:?}"));
        let skew: Option<u64> = clock
            .split(": ")
            .nth(2)
            .and_then(|detail| detail.split(' ').next()?.parse().ok());
        assert!(
            skew.is_some_and(|s| (590..=610).contains(&s)) && clock.contains(direction),
            "the clock is not 10 minutes {direction} the store's: {clock}"
        );
    }
    for (holder, taker) in [(&fast, &slow), (&slow, &fast)] {
        let (killed, ..) = kill_a_truncate_at(&scene, Point::AfterClaim, holder);
        let taken = taker.run(&["append", &format!("{} after {}", taker.name, holder.name)]);
        assert_waited_out_a_lease(&taken, killed.end);
        holder
            .run(&["append", &format!("{} again", holder.name)])
            .ok();
    }
    scene.audit();
}

// ---------------------------------------------------------------------
// The randomized race

/// How long the admin machine keeps killing and stopping its truncates
/// and trims, on each store.
const RACE: Duration = Duration::from_secs(35);
/// Machines appending in a loop meanwhile.
const APPENDERS: usize = 3;

/// What the admin machine does to one of its truncates or trims: lets
/// it run, or kills or stops it at its `at`th request, held back at its
/// gate. A truncate or trim on a fresh machine makes 20 to 45 requests
/// (a fresh truncate's claim is its 15th, a trim's its 5th; then its
/// reads, deletes, renewals and marker), so a point drawn among the first
/// 40 lands before its claim, in its fence or after it alike, on RGW and
/// on SeaweedFS; a delay after its start would miss most of SeaweedFS's,
/// which take a fifth of a second.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Live,
    /// Killed there; the request held reaches the store after all (it
    /// was sent, its answer is lost) or never.
    Killed {
        at: usize,
        arrives: bool,
    },
    /// Stopped there for this long, then woken, the request held reaching
    /// the store as it wakes.
    Stopped {
        at: usize,
        asleep: Duration,
    },
}

impl Fate {
    /// Four in ten live; of the rest, half killed, half stopped. A stopped
    /// one sleeps from two leases to two leases, the margin and the slack:
    /// it wakes before anyone may take its fence over, or after.
    fn draw() -> Fate {
        let at = between(1, 40) as usize;
        let asleep =
            LEASE * 2 + Duration::from_millis(between(0, (MARGIN + SLACK).as_millis() as u64));
        match between(0, 9) {
            0..=3 => Fate::Live,
            4..=6 => Fate::Killed {
                at,
                arrives: between(0, 1) == 0,
            },
            _ => Fate::Stopped { at, asleep },
        }
    }

    /// Where its gate stops it.
    fn point(self) -> Point {
        match self {
            Fate::Live => Point::Request(usize::MAX),
            Fate::Killed { at, .. } | Fate::Stopped { at, .. } => Point::Request(at),
        }
    }
}

/// A truncate or trim that died (killed or stopped): when, and the fence
/// it held then, if it held one.
struct Death {
    at: Instant,
    fence: Option<String>,
}

/// The fence that a machine behind `gate` held when it was stopped there
/// (the request held is not among those seen yet):
/// the one it last claimed or took a lease of, if that fence still runs.
fn fence_held(gate: &Gate, scene: &Scene) -> Option<String> {
    let seen = gate.seen();
    let seq = seen.iter().rev().find_map(|request| {
        let (_, name) = request.path.split_once(FENCE_FOLDER)?;
        match fence_key(name)? {
            (seq, Part::Claim | Part::Lease(_)) if request.method == "PUT" => Some(seq),
            _ => None,
        }
    })?;
    let running = scene.watch.now().get(&seq)?.settled.is_none();
    running.then_some(seq)
}

/// Runs one truncate or trim on a fresh machine (a CI runner whose lock
/// folder is gone once it dies) to the fate drawn for it. A stopped one
/// sleeps on in a thread of `scope` while the admin machine goes on, as
/// other machines go on beside a paused one: the next truncate or trim
/// meets its fence.
fn admin_op<'s>(
    scope: &'s thread::Scope<'s, '_>,
    scene: &'s Scene,
    n: usize,
    deaths: &mut Vec<Death>,
) {
    let Some(stat) = scene.log.wal().stat().unwrap() else {
        return;
    };
    if stat.last <= stat.first + 1 {
        thread::sleep(Duration::from_millis(50));
        return;
    }
    let (command, arg) = match between(0, 2) {
        0 => ("trim", between(stat.first + 1, stat.last)),
        _ => ("truncate", between(stat.first, stat.last - 1)),
    };
    let fate = Fate::draw();
    let gate = Gate::new(&scene.log.server, fate.point());
    let machine = scene.machine(&format!("admin-{n}"));
    let mut op = machine
        .via(gate.endpoint())
        .spawn(&holding(&[command, &arg.to_string()]));
    while gate.held().is_none() && op.still_runs() {
        thread::sleep(Duration::from_millis(2));
    }
    if gate.held().is_some() {
        let mut died = |scene: &Scene| {
            deaths.push(Death {
                at: Instant::now(),
                fence: fence_held(&gate, scene),
            })
        };
        match fate {
            Fate::Live => unreachable!("a live one is never held"),
            Fate::Killed { arrives, .. } => {
                op.kill();
                died(scene);
                gate.release(if arrives {
                    Fault::Forward
                } else {
                    Fault::Reset
                });
                return;
            }
            Fate::Stopped { asleep, .. } => {
                op.stop();
                died(scene);
                scope.spawn(move || {
                    thread::sleep(asleep);
                    op.wake();
                    gate.release(Fault::Forward);
                    op.wait(Duration::from_secs(60));
                });
                return;
            }
        }
    }
    op.wait(Duration::from_secs(60));
}

/// Appenders on three machines append in loops while a fourth truncates
/// and trims, and has six in ten of those killed or stopped (and woken
/// two leases or more later) at random requests ([`Fate`]): every append
/// succeeds, having waited at most a lease, the margin and the slack for
/// each death during it and one before it (the slack covers the live
/// truncates and repairs it waits for too, which take seconds on a busy
/// RGW); every truncate and trim ends
/// as it may (done, refused, or, if it was stopped, lost to a takeover);
/// and the audit finds the log whole. Prints the append latencies, those
/// of the appends that met a dead fence, and how long a dead fence stood
/// after its holder's death.
fn machines_append_on_while_truncates_and_trims_die_and_wake_around_them(server: Server) {
    let scene = Scene::new(server, "lease-race", RECORDS);
    let over = AtomicBool::new(false);
    let started = Instant::now();
    let deaths = thread::scope(|s| {
        for m in 0..APPENDERS {
            let (machine, over) = (scene.machine(&format!("appender-{m}")), &over);
            s.spawn(move || {
                for n in 0.. {
                    if over.load(Ordering::Relaxed) {
                        break;
                    }
                    machine.run(&["append", &format!("m{m} n{n}")]);
                }
            });
        }
        // On until one death at least came inside a fence.
        let mut deaths: Vec<Death> = Vec::new();
        let mut n = 0;
        let inside = |deaths: &[Death]| deaths.iter().any(|d| d.fence.is_some());
        while started.elapsed() < RACE || !inside(&deaths) && started.elapsed() < RACE * 2 {
            admin_op(s, &scene, n, &mut deaths);
            n += 1;
        }
        over.store(true, Ordering::Relaxed);
        deaths
    });
    let events = scene.journal.lock().unwrap().clone();
    let fences = scene.watch.now();
    let appends: Vec<&Event> = events.iter().filter(|e| e.appended().is_some()).collect();
    let admins: Vec<&Event> = events.iter().filter(|e| e.appended().is_none()).collect();
    let mut problems = Vec::new();
    for a in &appends {
        let during = deaths
            .iter()
            .filter(|d| a.start < d.at && d.at < a.end)
            .count();
        let limit = dead_holder_wait() * (1 + during as u32);
        if a.code != Some(0) || a.took() > limit {
            problems.push(format!(
                "append over {limit:?} or failed: {}",
                a.line(started)
            ));
        }
    }
    for t in &admins {
        let may = match t.signal {
            Some((_, Signal::Kill)) => &[][..],
            Some((_, Signal::Stop)) => &[0, 2, 7][..],
            None => &[0, 2][..],
        };
        if t.code.is_some_and(|code| !may.contains(&code)) {
            problems.push(format!("unexpected exit: {}", t.line(started)));
        }
    }
    // How long each dead fence stood, and the live commands that met one.
    let windows: Vec<(Instant, Instant)> = deaths
        .iter()
        .filter_map(|d| {
            let (_, at) = fences.get(d.fence.as_ref()?)?.settled?;
            Some((d.at, at))
        })
        .collect();
    let met = |events: &[&Event]| {
        let met = events.iter().filter(|e| {
            let overlaps = |(from, to): &(Instant, Instant)| e.start < *to && *from < e.end;
            e.signal.is_none() && windows.iter().any(overlaps)
        });
        spread(met.map(|e| e.took()).collect())
    };
    println!(
        "race on {}: {} appends, latency {}; those that met a dead fence: {}; live truncates \
         and trims that met one: {}; a dead fence stood after its holder's death {}; {} \
         truncates and trims, {} killed or stopped inside a fence, {} outside",
        scene.log.server.endpoint,
        appends.len(),
        spread(appends.iter().map(|a| a.took()).collect()),
        met(&appends),
        met(&admins),
        spread(windows.iter().map(|(from, to)| *to - *from).collect()),
        admins.len(),
        windows.len(),
        deaths.len() - windows.len(),
    );
    assert!(
        problems.is_empty(),
        "{}\n--- timeline\n{}",
        problems.join("\n"),
        scene.timeline(started)
    );
    assert!(
        deaths.iter().any(|d| d.fence.is_some()),
        "no death inside a fence:\n{}",
        scene.timeline(started)
    );
    scene.audit();
}

/// Each behaviour above on Ceph RGW and on SeaweedFS, the stores whose
/// conditional PUTs are atomic and which refuse a presigned request past
/// its expiry: `lease_races::rgw::NAME` and `lease_races::seaweedfs::NAME`.
macro_rules! on_rgw_and_seaweedfs {
    ($($behaviour:ident),* $(,)?) => {
        mod rgw {
            $(
                #[test]
                #[ignore = "needs the S3 servers that `make test` starts"]
                fn $behaviour() {
                    super::$behaviour(super::Server::rgw());
                }
            )*
        }
        mod seaweedfs {
            $(
                #[test]
                #[ignore = "needs the S3 servers that `make test` starts"]
                fn $behaviour() {
                    super::$behaviour(super::Server::weed());
                }
            )*
        }
    };
}

on_rgw_and_seaweedfs! {
    a_truncate_killed_right_after_its_claim_holds_no_one_back_for_longer_than_its_lease,
    a_truncate_stopped_right_after_its_claim_and_woken_after_a_takeover_exits_7_and_changes_nothing,
    a_truncate_stopped_with_its_deletes_on_the_wire_deletes_nothing_when_woken,
    an_appender_killed_between_its_put_and_its_fence_check_holds_no_one_back,
    a_repair_killed_midway_holds_no_one_back_for_longer_than_its_lease,
    a_truncate_that_keeps_deleting_renews_its_lease_and_keeps_its_fence,
    stat_shows_a_running_fence_and_its_holder,
    clocks_10_minutes_off_either_way_neither_hasten_nor_delay_a_takeover,
    machines_append_on_while_truncates_and_trims_die_and_wake_around_them,
}

// ---------------------------------------------------------------------
// A store that ignores presigned expiry

/// Where the store carries out a request past its presigned expiry
/// (moto), taking a dead holder's fence over is not safe: a holder only
/// paused could still delete. A command that meets such a fence exits 5
/// once the lease has run out, naming `--allow-unsafe-takeover`; given
/// that flag, it takes the fence over and succeeds.
#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn where_the_store_ignores_presigned_expiry_a_takeover_needs_allow_unsafe_takeover() {
    let scene = Scene::new(Server::moto(), "lease-moto", RECORDS);
    let (killed, ..) = kill_a_truncate_at(&scene, Point::AfterClaim, &scene.machine("holder"));
    let appender = scene.machine("appender");
    let refused = appender.run(&["append", "refused"]);
    refused.fails(5, &["--allow-unsafe-takeover"]);
    let waited = refused.end - killed.end;
    assert!(
        (LEASE..=dead_holder_wait()).contains(&waited),
        "refused after {waited:?}, not once the lease ran out"
    );
    let allowed = appender.run(&["--allow-unsafe-takeover", "append", "allowed"]);
    assert_did_not_wait(&allowed);
    scene.audit();
}
