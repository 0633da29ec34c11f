//! What each command costs in requests, pinned at several log sizes from
//! the `--verbose` summary (the numbers the benchmark reports in time).

use crate::common;

use std::collections::BTreeMap;

use common::{Server, TestLog, fill_on_disk, request_counts};

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// A log of `n` records, written straight to s3s-fs's folder.
fn log_of(n: u64, name: &str) -> TestLog {
    let log = TestLog::new(Server::s3s(), name);
    fill_on_disk(&log, 1..=n);
    log
}

/// Upper bound for a cold tail search: about 2·log₂(N) probes.
fn cold_budget(n: u64) -> u64 {
    2 * u64::from(64 - n.leading_zeros()) + 2
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn first_append_to_an_empty_log_also_writes_the_store_hint() {
    let log = TestLog::new(Server::s3s(), "empty-append");
    log.run(&["doctor"]).ok();
    let run = log.run(&["-v", "append", "x"]);
    run.ok();
    // s3wal's own folder (no fence, no store hint), one LIST, the record,
    // the fences again, the hint.
    assert_eq!(
        request_counts(&run),
        counts(&[("ListObjectsV2", 3), ("PutObject", 2)])
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn steady_state_append_is_a_put_and_a_fence_check_at_every_size() {
    for n in [10, 1_000, 10_000, 100_000] {
        let log = log_of(n, "steady");
        log.run(&["append", "warms the hint"]).ok();
        let run = log.run(&["-v", "append", "steady"]);
        assert_eq!(
            run.ok(),
            format!("Appended record at offset: {}, data: steady\n", n + 2)
        );
        assert_eq!(
            request_counts(&run),
            counts(&[("ListObjectsV2", 1), ("PutObject", 1)]),
            "n = {n}"
        );
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn without_any_hint_the_tail_search_is_logarithmic_and_never_lists_the_whole_log() {
    for n in [10, 1_000, 5_000] {
        // Written by another tool: no store hint, no local one.
        let log = log_of(n, "cold");
        let run = log.run(&["-v", "recover"]);
        assert_eq!(run.ok(), format!("Last offset: {n}\n"));
        let counts = request_counts(&run);
        let lists = counts["ListObjectsV2"];
        assert!(lists <= cold_budget(n), "n = {n}: {lists} LISTs");
        // The listing of s3wal's own folder finds no store hint: recover
        // only reads, and leaves writing one to the next append.
        assert_eq!(counts.len(), 1, "{counts:?}");
    }
}

/// The same log as seen from a fresh machine: no lock folder, no hint, no
/// probe verdict of its own.
fn fresh_runner(log: &TestLog) -> TestLog {
    TestLog {
        lock_dir: common::scratch("fresh-runner"),
        ..log.clone()
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_fresh_runner_finds_the_tail_from_the_store_hint_at_any_size() {
    for n in [1_000, 10_000, 100_000] {
        let log = log_of(n - 1, "fresh");
        // An append elsewhere leaves the store hint with the probe's verdict.
        log.run(&["append", "elsewhere"]).ok();
        let count = |args: &[&str]| {
            let mut all = vec!["-v"];
            all.extend(args);
            let run = fresh_runner(&log).run(&all);
            let counts = request_counts(&run);
            (run.ok(), counts.values().sum::<u64>(), counts)
        };
        let (out, total, counts) = count(&["recover"]);
        assert_eq!(out, format!("Last offset: {n}\n"));
        assert!(total <= 3, "n = {n}: recover {counts:?}");
        let (_, total, counts) = count(&["last"]);
        assert!(total <= 3, "n = {n}: last {counts:?}");
        // The listing that reads the store hint shows a running fence too.
        let (_, total, counts) = count(&["stat"]);
        assert!(total <= 3, "n = {n}: stat {counts:?}");
        let (out, total, counts) = count(&["append", "from CI"]);
        assert_eq!(
            out,
            format!("Appended record at offset: {}, data: from CI\n", n + 1)
        );
        // s3wal's own folder (the fences and the store hint), one LIST, the
        // PUT, the fences again.
        assert_eq!(total, 4, "n = {n}: append {counts:?}");
        assert!(
            !counts.contains_key("DeleteObjects"),
            "no probe: {counts:?}"
        );
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn warm_recover_is_at_most_two_requests() {
    let log = log_of(1_000, "warm");
    log.run(&["recover"]).ok();
    let run = log.run(&["-v", "recover"]);
    assert_eq!(run.ok(), "Last offset: 1000\n");
    assert_eq!(
        request_counts(&run),
        counts(&[("HeadObject", 1), ("ListObjectsV2", 1)])
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn log_that_starts_late_is_found_as_cheaply() {
    let log = TestLog::new(Server::s3s(), "late-start");
    fill_on_disk(&log, 5_001..=5_100);
    let run = log.run(&["-v", "recover"]);
    assert_eq!(run.ok(), "Last offset: 5100\n");
    assert!(request_counts(&run)["ListObjectsV2"] <= cold_budget(100));
    assert_eq!(
        log.run(&["append", "next"]).ok(),
        "Appended record at offset: 5101, data: next\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn batch_of_lines_costs_a_put_per_record_and_one_fence_check() {
    let log = log_of(1_000, "lines-cost");
    log.run(&["doctor"]).ok();
    log.run(&["append", "warms the hint and the epoch"]).ok();
    let input: String = (0..200).map(|i| format!("line {i}\n")).collect();
    let run = log.run_with_stdin(&["-v", "append", "--lines"], input.as_bytes());
    run.ok();
    // The tail passed 1 100 and 1 200: the store hint is written once, and
    // the one it replaces deleted.
    assert_eq!(
        request_counts(&run),
        counts(&[
            ("DeleteObject", 1),
            ("ListObjectsV2", 1),
            ("PutObject", 201)
        ])
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn dump_reads_each_record_once_and_finds_its_ends_cheaply() {
    let log = log_of(1_000, "dump-cost");
    let run = log.run(&["-v", "dump"]);
    assert_eq!(run.ok().lines().count(), 1_000);
    let counts = request_counts(&run);
    // 1 000 records; the store hint comes with the listing of s3wal's own
    // folder.
    assert_eq!(counts["GetObject"], 1_000);
    assert!(
        counts["ListObjectsV2"] <= cold_budget(1_000) + 1,
        "{counts:?}"
    );
}

/// Writes `count` foreign keys `<prefix>/snapshots/<n>` straight into
/// s3s-fs's folder, as a tool that keeps snapshots beside the log would.
fn add_snapshots(log: &TestLog, count: u64) {
    let data = log.server.data_dir.as_ref().expect("an s3s-fs log");
    let dir = data
        .join(&log.server.bucket)
        .join(&log.prefix)
        .join("snapshots");
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..count {
        std::fs::write(dir.join(format!("{n:06}")), b"not a record").unwrap();
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn keys_sorting_after_the_records_cost_no_extra_request() {
    let plain = log_of(1_000, "no-snapshots");
    let with_snapshots = log_of(1_000, "snapshots");
    add_snapshots(&with_snapshots, 3_000);
    let cold = |log: &TestLog| {
        let run = log.run(&["-v", "recover"]);
        assert_eq!(run.ok(), "Last offset: 1000\n");
        request_counts(&run)
    };
    let cold_counts = cold(&with_snapshots);
    assert_eq!(cold_counts, cold(&plain));
    assert!(
        cold_counts["ListObjectsV2"] <= cold_budget(1_000),
        "{cold_counts:?}"
    );
    let warm = with_snapshots.run(&["-v", "recover"]);
    assert_eq!(warm.ok(), "Last offset: 1000\n");
    assert_eq!(
        request_counts(&warm),
        counts(&[("HeadObject", 1), ("ListObjectsV2", 1)])
    );
}
