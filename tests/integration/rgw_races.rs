//! Racing writers on the stores whose `If-None-Match: *` is atomic: Ceph
//! RGW and SeaweedFS.
//!
//! Each writer is a thread running the real binary many times in a row, so
//! one `s3wal append` process per writer is alive at any moment. With a
//! lock folder per writer they behave like as many machines; with one
//! shared folder, like as many processes on one machine.

use crate::common;

use std::path::PathBuf;
use std::thread;
use std::time::Instant;

use common::audit::{Ack, Audit};
use common::{Server, TestLog};

/// How many writers race, and how many appends each makes in a row.
#[derive(Debug, Clone, Copy)]
struct Shape {
    writers: usize,
    appends_each: usize,
}

impl Shape {
    fn total(self) -> usize {
        self.writers * self.appends_each
    }
}

/// RGW answers a lost race at once: eight writers, 50 appends each.
const ON_RGW: Shape = Shape {
    writers: 8,
    appends_each: 50,
};

/// SeaweedFS makes a writer that loses a truly simultaneous race wait
/// about a second for its 412 (a few PUTs in a hundred), so its races are
/// shorter: eight writers, 20 appends each.
const ON_WEED: Shape = Shape {
    writers: 8,
    appends_each: 20,
};

/// What the writers' `--verbose` lines say about their PUTs, and when each
/// append process ran.
#[derive(Debug, Default)]
struct PutCounts {
    created: usize,
    taken: usize,
    /// (writer, start, end) of every append process.
    runs: Vec<(usize, Instant, Instant)>,
    /// Every append, acknowledged.
    acks: Vec<Ack<Instant>>,
}

impl PutCounts {
    /// How many pairs of append processes from different writers were
    /// alive at the same time.
    fn overlapping_pairs(&self) -> usize {
        let mut pairs = 0;
        for (i, a) in self.runs.iter().enumerate() {
            for b in &self.runs[i + 1..] {
                if a.0 != b.0 && a.1 < b.2 && b.1 < a.2 {
                    pairs += 1;
                }
            }
        }
        pairs
    }
}

/// Runs the writers, each with the lock folder `lock_dir_of(writer)`, and
/// counts their conditional PUTs by answer.
fn race(log: &TestLog, shape: Shape, lock_dir_of: impl Fn(usize) -> PathBuf) -> PutCounts {
    let handles: Vec<_> = (0..shape.writers)
        .map(|writer| {
            let log = TestLog {
                lock_dir: lock_dir_of(writer),
                ..log.clone()
            };
            thread::spawn(move || {
                let mut counts = PutCounts::default();
                for n in 0..shape.appends_each {
                    append(
                        &log,
                        writer,
                        format!("writer {writer} record {n}"),
                        &mut counts,
                    );
                }
                counts
            })
        })
        .collect();
    let mut total = PutCounts::default();
    for handle in handles {
        let counts = handle.join().unwrap();
        total.created += counts.created;
        total.taken += counts.taken;
        total.runs.extend(counts.runs);
        total.acks.extend(counts.acks);
    }
    total
}

/// One append of `payload` by `writer`, which must succeed, counted.
fn append(log: &TestLog, writer: usize, payload: String, counts: &mut PutCounts) {
    let start = Instant::now();
    let run = log.run(&["-v", "append", &payload]);
    let end = Instant::now();
    counts.runs.push((writer, start, end));
    assert_eq!(run.code, 0, "{payload}: {}", run.stderr);
    let record_puts = run
        .stderr
        .lines()
        .filter(|l| l.contains(" PutObject ") && !l.contains(".s3wal"));
    for line in record_puts {
        match line.split(' ').nth(4) {
            Some("200") => counts.created += 1,
            Some("412") => counts.taken += 1,
            other => panic!("unexpected PUT answer {other:?}: {line}"),
        }
    }
    let said = format!(", data: {payload}\n");
    let offset = run
        .out()
        .strip_prefix("Appended record at offset: ")
        .and_then(|rest| rest.strip_suffix(&said)?.parse().ok());
    counts.acks.push(Ack {
        offset: offset.unwrap_or_else(|| panic!("{payload}: {}", run.out())),
        data: payload,
        began: start,
        ended: end,
    });
}

/// Asserts that every append was acknowledged and the log keeps every
/// invariant of the audit: offsets 1..=total with no gap, each payload
/// stored once at the offset it was acknowledged at.
fn assert_every_record_once(log: &TestLog, shape: Shape, acks: Vec<Ack<Instant>>) {
    assert_eq!(acks.len(), shape.total());
    let (stored, mut problems) = common::read_back(log);
    let audit = Audit {
        stored,
        acks,
        may_stand: Vec::new(),
        cuts: Vec::new(),
    };
    problems.extend(audit.problems());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Writers with a lock folder each, as on separate machines.
fn machines_racing_keep_the_log_dense_and_every_record_once(server: Server, shape: Shape) {
    let log = TestLog::new(server, "race-machines");
    let counts = race(&log, shape, |writer| {
        log.workdir.join(format!("machine-{writer}"))
    });
    println!(
        "separate locks: {} PUTs created, {} found their offset taken",
        counts.created, counts.taken
    );
    assert_eq!(counts.created, shape.total());
    assert_every_record_once(&log, shape, counts.acks);
    // Without a shared lock the writers really did collide, and the
    // conditional PUT turned every collision into a retry, not a loss.
    assert!(counts.taken > 0, "the writers never raced");
}

/// Writers sharing one lock folder, as processes on one machine.
fn processes_sharing_a_lock_take_turns_without_collisions(server: Server, shape: Shape) {
    let log = TestLog::new(server, "race-local");
    let shared = log.workdir.join("shared-locks");
    let counts = race(&log, shape, |_| shared.clone());
    println!(
        "shared lock: {} PUTs created, {} taken, {} overlapping process pairs",
        counts.created,
        counts.taken,
        counts.overlapping_pairs()
    );
    let overlapping = counts.overlapping_pairs();
    assert_every_record_once(&log, shape, counts.acks);
    // The processes ran at the same time (many pairs overlapped), yet not
    // one PUT found its offset taken: the lock, not the conditional PUT,
    // did the serialising, and each append was exactly one PUT.
    assert!(overlapping > shape.total() / 4, "{overlapping}");
    assert_eq!(counts.taken, 0);
    assert_eq!(counts.created, shape.total());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn eight_machines_racing_keep_the_log_dense_and_every_record_once() {
    machines_racing_keep_the_log_dense_and_every_record_once(Server::rgw(), ON_RGW);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn eight_processes_sharing_a_lock_take_turns_without_collisions() {
    processes_sharing_a_lock_take_turns_without_collisions(Server::rgw(), ON_RGW);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn eight_machines_racing_on_seaweedfs_keep_the_log_dense_and_every_record_once() {
    machines_racing_keep_the_log_dense_and_every_record_once(Server::weed(), ON_WEED);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn eight_processes_sharing_a_lock_on_seaweedfs_take_turns_without_collisions() {
    processes_sharing_a_lock_take_turns_without_collisions(Server::weed(), ON_WEED);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn read_and_append_in_a_bucket_that_does_not_exist_fail() {
    let log = TestLog::new(Server::rgw(), "rgw-no-bucket");
    for command in [&["read", "1"][..], &["append", "x"]] {
        let args = [&["--bucket", "s3wal-no-such-bucket"][..], command].concat();
        log.run(&args).fails(1, "NoSuchBucket");
    }
}
