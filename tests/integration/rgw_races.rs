//! Racing writers on Ceph RGW, whose `If-None-Match: *` is atomic.
//!
//! Each writer is a thread running the real binary 50 times in a row, so
//! eight `s3wal append` processes are alive at any moment. With a lock
//! folder per writer they behave like eight machines; with one shared
//! folder, like eight processes on one machine.

use crate::common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread;
use std::time::Instant;

use common::{Server, TestLog};

const WRITERS: usize = 8;
const APPENDS_EACH: usize = 50;

/// What the writers' `--verbose` lines say about their PUTs, and when each
/// append process ran.
#[derive(Debug, Default)]
struct PutCounts {
    created: usize,
    taken: usize,
    /// (writer, start, end) of every append process.
    runs: Vec<(usize, Instant, Instant)>,
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
fn race(log: &TestLog, lock_dir_of: impl Fn(usize) -> PathBuf) -> PutCounts {
    let handles: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let log = TestLog {
                lock_dir: lock_dir_of(writer),
                ..log.clone()
            };
            thread::spawn(move || {
                let mut counts = PutCounts::default();
                for n in 0..APPENDS_EACH {
                    let payload = format!("writer {writer} record {n}");
                    let start = Instant::now();
                    let run = log.run(&["-v", "append", &payload]);
                    counts.runs.push((writer, start, Instant::now()));
                    assert_eq!(run.code, 0, "{payload}: {}", run.stderr);
                    let record_puts = run
                        .stderr
                        .lines()
                        .filter(|l| l.contains(" PutObject ") && !l.contains(".s3wal-probe-"));
                    for line in record_puts {
                        match line.split(' ').nth(4) {
                            Some("200") => counts.created += 1,
                            Some("412") => counts.taken += 1,
                            other => panic!("unexpected PUT answer {other:?}: {line}"),
                        }
                    }
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
    }
    total
}

/// Asserts offsets 1..=400 with no gap, and every payload exactly once.
fn assert_dense_and_each_payload_once(log: &TestLog) {
    let total = (WRITERS * APPENDS_EACH) as u64;
    let mut offsets = log.offsets();
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=total).collect::<Vec<_>>());
    let wal = log.wal();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for offset in 1..=total {
        let data = String::from_utf8(wal.read(offset).unwrap().data).unwrap();
        if let Some(first) = seen.insert(data.clone(), offset) {
            panic!("{data:?} stored twice, at {first} and {offset}");
        }
    }
    for writer in 0..WRITERS {
        for n in 0..APPENDS_EACH {
            assert!(seen.contains_key(&format!("writer {writer} record {n}")));
        }
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn eight_machines_racing_keep_the_log_dense_and_every_record_once() {
    let log = TestLog::new(Server::rgw(), "race-machines");
    let counts = race(&log, |writer| log.workdir.join(format!("machine-{writer}")));
    println!(
        "separate locks: {} PUTs created, {} found their offset taken",
        counts.created, counts.taken
    );
    assert_dense_and_each_payload_once(&log);
    assert_eq!(counts.created, WRITERS * APPENDS_EACH);
    // Without a shared lock the writers really did collide, and the
    // conditional PUT turned every collision into a retry, not a loss.
    assert!(counts.taken > 0, "the writers never raced");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn eight_processes_sharing_a_lock_take_turns_without_collisions() {
    let log = TestLog::new(Server::rgw(), "race-local");
    let shared = log.workdir.join("shared-locks");
    let counts = race(&log, |_| shared.clone());
    println!(
        "shared lock: {} PUTs created, {} taken, {} overlapping process pairs",
        counts.created,
        counts.taken,
        counts.overlapping_pairs()
    );
    assert_dense_and_each_payload_once(&log);
    // The processes ran at the same time (many pairs overlapped), yet not
    // one PUT found its offset taken: the lock, not the conditional PUT,
    // did the serialising, and each append was exactly one PUT.
    assert!(
        counts.overlapping_pairs() > 100,
        "{}",
        counts.overlapping_pairs()
    );
    assert_eq!(counts.taken, 0);
    assert_eq!(counts.created, WRITERS * APPENDS_EACH);
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

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn seed_demo_story_runs_on_rgw() {
    common::assert_demo_story(&TestLog::new(Server::rgw(), "rgw-demo"));
}
