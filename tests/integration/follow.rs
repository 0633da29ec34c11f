//! `dump --follow`: the records there are, then new ones as they come.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Server, TestLog, fill_on_disk};

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn follow_prints_existing_records_then_new_ones() {
    let log = TestLog::new(Server::s3s(), "follow");
    fill_on_disk(&log, 1..=2);
    let mut child = log
        .command()
        .args(["dump", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let next = || received.recv_timeout(Duration::from_secs(15)).unwrap();
    assert_eq!(next(), "Offset: 1, Data: r1");
    assert_eq!(next(), "Offset: 2, Data: r2");
    log.run(&["append", "third"]).ok();
    assert_eq!(next(), "Offset: 3, Data: third");
    log.run(&["append", "fourth"]).ok();
    assert_eq!(next(), "Offset: 4, Data: fourth");
    assert!(
        child.try_wait().unwrap().is_none(),
        "follow stopped by itself"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn follow_with_to_is_a_usage_error() {
    let log = TestLog::without_server("follow-to");
    log.run(&["dump", "--follow", "--to", "5"])
        .fails(2, "--follow takes no --to");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn follow_from_before_a_trimmed_start_that_skips_it_begins_at_the_first_record() {
    let log = TestLog::new(Server::s3s(), "follow-trimmed");
    fill_on_disk(&log, 5..=6);
    let mut child = log
        .command()
        .args(["dump", "--follow", "--from", "1", "--skip-trimmed"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "Offset: 5, Data: r5");
    assert_eq!(lines.next().unwrap().unwrap(), "Offset: 6, Data: r6");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn follow_reports_a_hole_instead_of_waiting_at_it() {
    let log = TestLog::new(Server::s3s(), "follow-hole");
    fill_on_disk(&log, 1..=2);
    let child = log
        .command()
        .args(["dump", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Following waits at 3; records appear past it, 3 and 4 never do.
    thread::sleep(Duration::from_millis(500));
    fill_on_disk(&log, 5..=6);
    let started = std::time::Instant::now();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Offset: 1, Data: r1\nOffset: 2, Data: r2\n"
    );
    assert_eq!(
        stderr,
        "s3wal: the log has a hole: offsets 3..4 are missing while 5 exists (see `s3wal verify`)\n"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn follow_from_the_end_prints_only_new_records_and_stops_when_asked() {
    let log = TestLog::new(Server::s3s(), "follow-end");
    fill_on_disk(&log, 1..=3);
    let child = log
        .command()
        .args(["dump", "--follow", "--last", "1", "--max-records", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    log.run(&["append", "fourth"]).ok();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Offset: 3, Data: r3\nOffset: 4, Data: fourth\n",
        "the last record, then the new one, then done"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn follow_with_an_idle_timeout_ends_quietly_when_nothing_comes() {
    let log = TestLog::new(Server::s3s(), "follow-idle");
    fill_on_disk(&log, 1..=2);
    let started = std::time::Instant::now();
    let run = log.run(&["dump", "--follow", "--last", "0", "--idle-timeout", "1"]);
    assert_eq!(run.ok(), "", "nothing new came");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn the_last_records_and_a_count_bound_a_plain_dump() {
    let log = TestLog::new(Server::s3s(), "dump-last");
    fill_on_disk(&log, 1..=5);
    assert_eq!(
        log.run(&["dump", "--last", "2"]).ok(),
        "Offset: 4, Data: r4\nOffset: 5, Data: r5\n"
    );
    assert_eq!(log.run(&["dump", "--last", "9"]).ok().lines().count(), 5);
    assert_eq!(
        log.run(&["dump", "--from", "2", "--max-records", "2"]).ok(),
        "Offset: 2, Data: r2\nOffset: 3, Data: r3\n"
    );
    log.run(&["dump", "--from", "2", "--last", "2"])
        .fails(2, "--from or --last, not both");
    log.run(&["dump", "--idle-timeout", "2"])
        .fails(2, "--idle-timeout is for dump --follow");
}
