//! Fences against real servers: truncates and trims on one machine while
//! others append, a trim racing a truncate, and an append from a machine
//! without a hint beside one that appends flat out. Every "machine" is a
//! lock folder of its own, as in `rgw_races.rs`: the machines share
//! nothing but the store.

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::audit::{Ack, Audit, Cut, Cutting};
use common::{Run, Server, TestLog};
use s3wal::Store;

/// The same log as seen from machine `name`: a lock folder of its own, so
/// no lock, tail hint or fence note is shared with any other machine.
fn machine(log: &TestLog, name: &str) -> TestLog {
    TestLog {
        lock_dir: log.workdir.join(format!("machine-{name}")),
        ..log.clone()
    }
}

/// A small xorshift generator: the races need variety, not quality. The
/// seed is printed, so a failing schedule's choices can be read back.
struct Rng(u64);

impl Rng {
    fn from_clock() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let seed = nanos | 1;
        println!("rng seed {seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// The one JSON object a `--json` command printed.
fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(run.out().trim()).unwrap_or_else(|e| panic!("{e}: {}", run.out()))
}

/// How many appenders, how many appends each (at least; they go on while
/// the admin machine works, up to four times as many), and how many
/// truncates and trims the admin machine makes meanwhile.
#[derive(Debug, Clone, Copy)]
struct Shape {
    appenders: usize,
    appends_each: usize,
    admin_ops: usize,
}

/// RGW answers a lost race at once.
const ON_RGW: Shape = Shape {
    appenders: 4,
    appends_each: 25,
    admin_ops: 8,
};

/// SeaweedFS makes the loser of a truly simultaneous PUT wait a second or
/// two for its 412: fewer, shorter rounds.
const ON_WEED: Shape = Shape {
    appenders: 3,
    appends_each: 10,
    admin_ops: 6,
};

/// One append process: what it was asked to store, and what it said.
#[derive(Debug, Clone)]
struct Append {
    payload: String,
    start: Instant,
    end: Instant,
    code: i32,
    /// The acknowledged offset (exit 0).
    offset: Option<u64>,
    /// Whether it found a record doomed by a truncate and removed it under
    /// a repair fence (`-v` shows the fence's PUT).
    repaired: bool,
    /// Its error lines, without `-v`'s request lines.
    stderr: String,
}

/// One truncate or trim process of the admin machine.
#[derive(Debug, Clone)]
struct Admin {
    cut: Cut,
    start: Instant,
    end: Instant,
    code: i32,
    stderr: String,
}

impl Admin {
    fn is_truncate(&self) -> bool {
        matches!(self.cut, Cut::Truncate(_))
    }
}

/// Everything that happened, in start order, in ms from `zero`: the
/// evidence a failed audit prints.
fn timeline(zero: Instant, appends: &[Append], admins: &[Admin]) -> String {
    let ms = |t: Instant| t.duration_since(zero).as_millis();
    let mut lines: Vec<(Instant, String)> = Vec::new();
    for a in appends {
        let what = match a.offset {
            Some(offset) if a.repaired => format!("acked at {offset} after a repair"),
            Some(offset) => format!("acked at {offset}"),
            None => format!("exit {}: {}", a.code, a.stderr.trim()),
        };
        let line = format!(
            "{}..{} ms append {:?}: {what}",
            ms(a.start),
            ms(a.end),
            a.payload
        );
        lines.push((a.start, line));
    }
    for t in admins {
        let line = format!(
            "{}..{} ms {:?}: exit {} {}",
            ms(t.start),
            ms(t.end),
            t.cut,
            t.code,
            t.stderr.trim()
        );
        lines.push((t.start, line));
    }
    lines.sort_by_key(|(start, _)| *start);
    let lines: Vec<String> = lines.into_iter().map(|(_, line)| line).collect();
    lines.join("\n")
}

/// Runs the appenders and the admin machine together on `log`.
fn race(log: &TestLog, shape: Shape) -> (Vec<Append>, Vec<Admin>) {
    let admin_busy = Arc::new(AtomicBool::new(true));
    let appenders: Vec<_> = (0..shape.appenders)
        .map(|m| {
            let log = machine(log, &format!("appender-{m}"));
            let admin_busy = admin_busy.clone();
            thread::spawn(move || appender(&log, m, shape, &admin_busy))
        })
        .collect();
    let admin = {
        let log = machine(log, "admin");
        thread::spawn(move || admin(&log, shape))
    };
    let admins = admin.join();
    admin_busy.store(false, Ordering::Relaxed);
    let mut appends = Vec::new();
    for appender in appenders {
        appends.extend(appender.join().unwrap());
    }
    (appends, admins.unwrap())
}

/// Appender `m`'s appends: as many as the shape says, and more while the
/// admin machine is busy (up to four times as many).
fn appender(log: &TestLog, m: usize, shape: Shape, admin_busy: &AtomicBool) -> Vec<Append> {
    let mut appends = Vec::new();
    for n in 0..shape.appends_each * 4 {
        if n >= shape.appends_each && !admin_busy.load(Ordering::Relaxed) {
            break;
        }
        appends.push(append(log, format!("m{m} n{n}")));
    }
    appends
}

/// One append of `payload`, and what it said.
fn append(log: &TestLog, payload: String) -> Append {
    let start = Instant::now();
    let run = log.run(&["-v", "--json", "append", &payload]);
    let end = Instant::now();
    let offset = (run.code == 0).then(|| {
        let line = json(&run);
        assert_eq!(line["data"], payload.as_str(), "{line}");
        line["offset"].as_u64().unwrap()
    });
    let (requests, errors): (Vec<&str>, Vec<&str>) =
        run.stderr.lines().partition(|l| l.starts_with("[s3wal] "));
    let repaired = requests
        .iter()
        .any(|l| l.contains(" PutObject ") && l.contains("-repair-"));
    Append {
        payload,
        start,
        end,
        code: run.code,
        offset,
        repaired,
        stderr: errors.join("\n"),
    }
}

/// The admin machine's truncates and trims, mostly truncates and every
/// third a trim, each after a look at the log (a look at a log with
/// nothing to cut makes none).
fn admin(log: &TestLog, shape: Shape) -> Vec<Admin> {
    let mut rng = Rng::from_clock();
    let mut admins = Vec::new();
    for _ in 0..shape.admin_ops * 4 {
        if admins.len() == shape.admin_ops {
            break;
        }
        thread::sleep(Duration::from_millis(rng.between(10, 100)));
        let stat = json(&log.run(&["--json", "stat"]));
        let (first, last) = (
            stat["first"].as_u64().unwrap(),
            stat["last"].as_u64().unwrap(),
        );
        if last <= first {
            println!("admin: stat {first}..{last}, nothing to cut");
            continue;
        }
        let (command, cut) = match admins.len() % 3 {
            2 => ("trim", Cut::Trim(rng.between(first + 1, last))),
            _ => ("truncate", Cut::Truncate(rng.between(first, last - 1))),
        };
        let (Cut::Trim(arg) | Cut::Truncate(arg)) = cut;
        let start = Instant::now();
        let run = log.run(&[command, &arg.to_string()]);
        admins.push(Admin {
            cut,
            start,
            end: Instant::now(),
            code: run.code,
            stderr: run.stderr,
        });
    }
    admins
}

/// What the audit of a race found wrong, if anything: exits other than
/// success, refusal or "may be stored", the log as read back, and the
/// log's invariants against the acknowledged appends and the truncates
/// and trims that succeeded.
fn audit(log: &TestLog, appends: &[Append], admins: &[Admin]) -> Vec<String> {
    let mut problems = Vec::new();
    for a in appends.iter().filter(|a| a.code != 0 && a.code != 5) {
        problems.push(format!("append {:?} exited {}", a.payload, a.code));
    }
    for t in admins.iter().filter(|t| ![0, 2, 5].contains(&t.code)) {
        problems.push(format!("{:?} exited {}", t.cut, t.code));
    }
    let (stored, read) = common::read_back(log);
    problems.extend(read);
    let ack = |a: &Append| {
        Some(Ack {
            offset: a.offset?,
            data: a.payload.clone(),
            began: a.start,
            ended: a.end,
        })
    };
    let cutting = |t: &Admin| Cutting {
        cut: t.cut,
        began: t.start,
        settled: t.end,
        done: true,
    };
    let audit = Audit {
        stored,
        acks: appends.iter().filter_map(ack).collect(),
        may_stand: Vec::new(),
        cuts: admins.iter().filter(|t| t.code == 0).map(cutting).collect(),
    };
    problems.extend(audit.problems());
    problems
}

/// Appenders on several machines while another truncates and trims: the
/// fences must keep the log dense, never hand out an offset twice but
/// after a truncate below it, and never lose or duplicate an acknowledged
/// record (doomed records are removed by their appenders, unacknowledged).
fn appending_while_another_truncates_and_trims(server: Server, shape: Shape) {
    let log = TestLog::new(server, "fence-race");
    let before = Instant::now();
    common::append_records(&log, 5);
    let zero = Instant::now();
    // The records the log starts with count as acknowledged before the race.
    let mut appends: Vec<Append> = (1..=5)
        .map(|n| Append {
            payload: format!("Record #{n}"),
            start: before,
            end: zero,
            code: 0,
            offset: Some(n),
            repaired: false,
            stderr: String::new(),
        })
        .collect();
    let (raced, admins) = race(&log, shape);
    appends.extend(raced);
    let elapsed = zero.elapsed();
    let count = |ops: &mut dyn Iterator<Item = i32>| {
        let mut by_code = BTreeMap::new();
        for code in ops {
            *by_code.entry(code).or_insert(0) += 1;
        }
        by_code
    };
    println!(
        "{elapsed:?}: appends by exit code {:?}, {} of them removed a doomed record; \
         truncates by exit code {:?}; trims {:?}",
        count(&mut appends.iter().skip(5).map(|a| a.code)),
        appends.iter().filter(|a| a.repaired).count(),
        count(&mut admins.iter().filter(|t| t.is_truncate()).map(|t| t.code)),
        count(&mut admins.iter().filter(|t| !t.is_truncate()).map(|t| t.code)),
    );
    let problems = audit(&log, &appends, &admins);
    assert!(
        problems.is_empty(),
        "{}\n--- timeline\n{}\n--- keys\n{}",
        problems.join("\n"),
        timeline(zero, &appends, &admins),
        log.keys().join("\n")
    );
    // The race did happen: truncates cut the log while appends ran.
    let overlapping = admins
        .iter()
        .filter(|t| t.is_truncate() && t.code == 0)
        .filter(|t| appends.iter().any(|a| a.start < t.end && t.start < a.end))
        .count();
    assert!(
        overlapping >= 2,
        "{overlapping} truncates ran beside an append\n{}",
        timeline(zero, &appends, &admins)
    );
}

/// On RGW, whose lost races answer at once: four appenders, eight
/// truncates and trims.
#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn machines_appending_while_another_truncates_and_trims_leave_a_dense_log_and_every_ack() {
    appending_while_another_truncates_and_trims(Server::rgw(), ON_RGW);
}

/// On SeaweedFS, an independent implementation whose conditional PUTs
/// are atomic too: three appenders, six truncates and trims.
#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn machines_appending_on_seaweedfs_while_another_truncates_and_trims_leave_a_dense_log_and_every_ack()
 {
    appending_while_another_truncates_and_trims(Server::weed(), ON_WEED);
}

/// A trim and a truncate started together on two machines take fences one
/// after the other, so the second decides on the log the first left and
/// is refused: never both done, which would leave a log whose offsets
/// start again at 1. The trim starts up to 0.7 s later from round to
/// round: it decides faster than the truncate (the store's hint against a
/// tail search), so both orders come up, and in some rounds the second
/// waits for the first's running fence.
#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_trim_and_a_truncate_on_two_machines_end_as_if_run_one_after_the_other() {
    let mut orders = Vec::new();
    for round in 0..5 {
        let log = TestLog::new(Server::rgw(), "trim-truncate");
        let lines: String = (1..=30).map(|n| format!("r{n}\n")).collect();
        log.run_with_stdin(&["append", "--lines"], lines.as_bytes())
            .ok();
        let together = Arc::new(Barrier::new(2));
        let trim_delay = Duration::from_millis(175 * round);
        let [trim, truncate] = [
            (["trim", "28"], trim_delay),
            (["truncate", "20"], Duration::ZERO),
        ]
        .map(|(args, delay)| {
            let log = machine(&log, args[0]);
            let together = together.clone();
            thread::spawn(move || {
                together.wait();
                thread::sleep(delay);
                log.run(&args)
            })
        });
        let (trim, truncate) = (trim.join().unwrap(), truncate.join().unwrap());
        let (order, kept, next) = match (trim.code, truncate.code) {
            (0, 2) => {
                truncate.fails(2, "a trim made the log start at 28");
                ("trim first", (28..=30).collect::<Vec<u64>>(), 31)
            }
            (2, 0) => {
                trim.fails(2, "the last record is 20");
                ("truncate first", (1..=20).collect(), 21)
            }
            codes => panic!(
                "exits {codes:?}: trim {} truncate {}; keys {:?}",
                trim.stderr,
                truncate.stderr,
                log.keys()
            ),
        };
        orders.push((trim_delay, order));
        assert_eq!(log.offsets(), kept, "{order}");
        // The next appends, from a fresh machine and from both racers,
        // continue the log: offsets never start again.
        for (n, name) in ["fresh", "trim", "truncate"].into_iter().enumerate() {
            let run = machine(&log, name).run(&["append", name]);
            let offset = next + n as u64;
            assert_eq!(
                run.ok(),
                format!("Appended record at offset: {offset}, data: {name}\n"),
                "{order}"
            );
        }
        log.run(&["verify"]).ok();
    }
    println!("orders by the trim's delay: {orders:?}");
}

/// A machine without a hint (a fresh lock folder) finds the tail while
/// another machine appends flat out: the fences add one LIST to each
/// append and may hold it back only while a truncate runs, so it must not
/// starve. Three times, each from a fresh machine.
#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn an_append_from_a_machine_without_a_hint_succeeds_within_3_s_while_another_appends_flat_out() {
    let log = TestLog::new(Server::rgw(), "cold-append");
    let busy = Arc::new(AtomicBool::new(true));
    let flat_out = {
        let log = machine(&log, "flat-out");
        let busy = busy.clone();
        thread::spawn(move || {
            let mut count = 0;
            while busy.load(Ordering::Relaxed) {
                log.run(&["append", &format!("flat out {count}")]).ok();
                count += 1;
            }
            count
        })
    };
    thread::sleep(Duration::from_secs(2));
    let mut times = Vec::new();
    for n in 0..3 {
        let cold = machine(&log, &format!("cold-{n}"));
        let started = Instant::now();
        let run = cold.run(&["-v", "append", &format!("cold {n}")]);
        let took = started.elapsed();
        run.ok();
        let lost = run.stderr.lines().filter(|l| l.contains(" 412 ")).count();
        times.push((took, lost));
        thread::sleep(Duration::from_secs(1));
    }
    thread::sleep(Duration::from_secs(1));
    busy.store(false, Ordering::Relaxed);
    let count = flat_out.join().unwrap();
    println!("the cold appends took (time, PUTs lost) {times:?} beside {count} flat-out appends");
    for (took, _) in &times {
        assert!(
            *took < Duration::from_secs(3),
            "(time, PUTs lost) {times:?}"
        );
    }
    assert!(count > 10, "the other machine barely appended: {count}");
    log.run(&["verify"]).ok();
}

/// The last path segment of `key` as the Go seed's `getOffsetFromKey`
/// reads it (`strconv.ParseUint(s, 10, 64)`: ASCII digits only, no sign).
fn seed_offset(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?;
    let digits = !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| name.parse().ok()).flatten()
}

/// The seed reads only keys: fences (and their markers) are named so that
/// its `Recover` skips them (no number is their last segment) and its
/// `LastRecord` never picks one while a record exists (they sort before
/// every record key). The seed's view of the listing must match s3wal's,
/// and the last record read as the seed reads it (offset, data, SHA-256).
#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn the_seed_reads_a_log_with_fences_as_before() {
    use sha2::{Digest, Sha256};
    for server in [Server::s3s(), Server::weed()] {
        println!("on {}", server.endpoint);
        let log = TestLog::new(server, "seed-fences");
        common::append_records(&log, 6);
        log.run(&["truncate", "4"]).ok();
        log.run(&["trim", "2"]).ok();
        let run = machine(&log, "other").run(&["append", "after"]);
        assert_eq!(run.ok(), "Appended record at offset: 5, data: after\n");
        let keys = log.keys();
        let fence_folder = log.key(".s3wal/fence/");
        let fences: Vec<&String> = keys
            .iter()
            .filter(|k| k.starts_with(&fence_folder))
            .collect();
        assert!(fences.len() >= 4, "two fences and their markers: {keys:?}");
        let first_record = log.key(&common::key_name(2));
        for fence in &fences {
            assert_eq!(seed_offset(fence), None, "{fence}");
            assert!(fence.as_str() < first_record.as_str(), "{fence}");
        }
        // Recover: the highest number among the last segments.
        let recovered = keys.iter().filter_map(|k| seed_offset(k)).max();
        assert_eq!(recovered, Some(5), "{keys:?}");
        assert_eq!(log.run(&["recover"]).ok(), "Last offset: 5\n");
        // LastRecord: the last key listed, parsed, then read.
        let last = keys.last().unwrap();
        assert_eq!(seed_offset(last), Some(5), "{keys:?}");
        let body = log.wal().store().get(last).unwrap().unwrap();
        let (framed, checksum) = body.split_at(body.len() - 32);
        assert_eq!(&framed[..8], &5u64.to_be_bytes());
        assert_eq!(&framed[8..], b"after");
        assert_eq!(checksum, &Sha256::digest(framed)[..]);
        // Read of a record below the fences' keys, as the seed reads it.
        let body = log.wal().store().get(&first_record).unwrap().unwrap();
        assert_eq!(&body[8..body.len() - 32], b"Record #2");
    }
}
