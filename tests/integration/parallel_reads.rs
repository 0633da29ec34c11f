//! `dump` and `verify` keep many GETs in flight, as many as `--parallel`
//! allows, and still print in offset order and stop at the first problem.
//! A proxy that holds every record GET back models a network where S3 is
//! far away.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common;

use common::proxy::{Fault, FaultProxy};
use common::{Server, TestLog, fill_on_disk, key_name};

/// How long the proxy holds each record GET back.
const DELAY: Duration = Duration::from_millis(100);

/// A log of records `r1`..`r{count}` on s3s-fs.
fn log_of(count: u64, name: &str) -> TestLog {
    let log = TestLog::new(Server::s3s(), name);
    fill_on_disk(&log, 1..=count);
    log
}

/// A proxy to `log`'s server that delays every record GET by [`DELAY`] and
/// notes when each arrived.
fn slow_network(log: &TestLog) -> (FaultProxy, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let noted = Arc::clone(&arrivals);
    let records = format!("/{}/{}/", log.server.bucket, log.prefix);
    let proxy = FaultProxy::start(&log.server.endpoint, move |method, path| {
        match method == "GET" && path.starts_with(&records) {
            true => {
                noted.lock().unwrap().push(Instant::now());
                Fault::Delay(DELAY)
            }
            false => Fault::Forward,
        }
    });
    (proxy, arrivals)
}

/// The most GETs that arrived within one [`DELAY`]: a worker sends its
/// next GET only after the last one was answered, at least `DELAY` later,
/// so this is how many were in flight at once.
fn most_in_flight(arrivals: &[Instant]) -> usize {
    let mut sorted = arrivals.to_vec();
    sorted.sort();
    (0..sorted.len())
        .map(|i| sorted[i..].partition_point(|t| *t < sorted[i] + DELAY))
        .max()
        .unwrap_or(0)
}

/// `dump`'s lines for records `from..=to`.
fn dumped(from: u64, to: u64) -> String {
    (from..=to)
        .map(|n| format!("Offset: {n}, Data: r{n}\n"))
        .collect()
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn dump_keeps_dozens_of_requests_in_flight_by_default() {
    let log = log_of(200, "parallel-default");
    let (proxy, arrivals) = slow_network(&log);
    let started = Instant::now();
    let out = log.via(&proxy.endpoint).run(&["dump"]).ok();
    let elapsed = started.elapsed();
    assert_eq!(out, dumped(1, 200));
    let in_flight = most_in_flight(&arrivals.lock().unwrap());
    assert!(
        (32..=s3wal::DEFAULT_PARALLEL).contains(&in_flight),
        "{in_flight} GETs in flight"
    );
    // One at a time would take 20 s; the old 8 workers 2.5 s.
    assert!(elapsed < DELAY * 200 / 8, "took {elapsed:?}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn parallel_caps_the_requests_in_flight() {
    let log = log_of(40, "parallel-cap");
    let (proxy, arrivals) = slow_network(&log);
    let out = log
        .via(&proxy.endpoint)
        .run(&["--parallel", "4", "dump"])
        .ok();
    assert_eq!(out, dumped(1, 40));
    let in_flight = most_in_flight(&arrivals.lock().unwrap());
    assert!((2..=4).contains(&in_flight), "{in_flight} GETs in flight");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn many_workers_still_print_in_order_and_stop_at_a_corrupt_record() {
    let log = log_of(600, "parallel-corrupt");
    let mut body = s3wal::record::encode(300, b"r300");
    body[9] ^= 0xff;
    log.put_raw(&key_name(300), &body);
    let run = log.run(&["--parallel", "256", "dump"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("offset 300 is corrupt"),
        "{}",
        run.stderr
    );
    assert_eq!(run.out(), dumped(1, 299));
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn verify_reads_in_parallel_too() {
    let log = log_of(200, "parallel-verify");
    let (proxy, arrivals) = slow_network(&log);
    let out = log.via(&proxy.endpoint).run(&["verify"]).ok();
    assert_eq!(
        out,
        "Verified records 1..200: 200 valid, 0 corrupt, 0 missing, 0 foreign keys\n"
    );
    let in_flight = most_in_flight(&arrivals.lock().unwrap());
    assert!(in_flight >= 32, "{in_flight} GETs in flight");
}
