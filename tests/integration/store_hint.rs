//! The tail hint kept in the store (`<prefix>/.s3wal/tail`): a fresh
//! machine starts near the tail from it, and whatever it says (stale, far
//! ahead, missing, garbled, from a newer s3wal) every command stays exact.

use crate::common;

use common::{Server, TestLog, fill_on_disk, key_name, request_counts};
use s3wal::Store;

const HINT: &str = ".s3wal/tail";

/// The same log from a fresh machine: no lock folder, no local hint.
fn fresh(log: &TestLog) -> TestLog {
    TestLog {
        lock_dir: common::scratch("fresh"),
        ..log.clone()
    }
}

fn hint_body(log: &TestLog) -> Option<String> {
    let body = log.wal().store().get(&log.key(HINT)).unwrap()?;
    Some(String::from_utf8(body).unwrap())
}

fn recover_fresh(log: &TestLog) -> (String, std::collections::BTreeMap<String, u64>) {
    let run = fresh(log).run(&["-v", "recover"]);
    (run.ok(), request_counts(&run))
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_hint_a_little_behind_the_tail_costs_one_get_and_one_list() {
    let log = TestLog::new(Server::s3s(), "hint-behind");
    fill_on_disk(&log, 1..=500);
    log.put_raw(HINT, b"s3wal-hint 1\ntail 450\n");
    let (out, counts) = recover_fresh(&log);
    assert_eq!(out, "Last offset: 500\n");
    assert_eq!(counts.values().sum::<u64>(), 2, "{counts:?}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_hint_far_ahead_of_a_log_made_again_is_corrected() {
    let log = TestLog::new(Server::s3s(), "hint-ahead");
    fill_on_disk(&log, 1..=30);
    log.put_raw(HINT, b"s3wal-hint 1\ntail 5000\n");
    assert_eq!(recover_fresh(&log).0, "Last offset: 30\n");
    assert!(hint_body(&log).unwrap().contains("tail 30\n"));
    assert_eq!(
        fresh(&log).run(&["append", "next"]).ok(),
        "Appended record at offset: 31, data: next\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_missing_or_garbled_hint_falls_back_to_the_search_and_is_written_again() {
    let log = TestLog::new(Server::s3s(), "hint-garbled");
    fill_on_disk(&log, 1..=70);
    assert_eq!(recover_fresh(&log).0, "Last offset: 70\n");
    assert!(
        hint_body(&log)
            .unwrap()
            .starts_with("s3wal-hint 1\ntail 70\n")
    );
    log.put_raw(HINT, b"\xffnot a hint");
    assert_eq!(recover_fresh(&log).0, "Last offset: 70\n");
    assert!(
        hint_body(&log)
            .unwrap()
            .starts_with("s3wal-hint 1\ntail 70\n")
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_hint_from_a_newer_s3wal_is_read_as_none_and_left_alone() {
    let log = TestLog::new(Server::s3s(), "hint-newer");
    fill_on_disk(&log, 1..=40);
    let newer = "s3wal-hint 2\nsomething new\n";
    log.put_raw(HINT, newer.as_bytes());
    assert_eq!(recover_fresh(&log).0, "Last offset: 40\n");
    assert_eq!(hint_body(&log).as_deref(), Some(newer));
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_log_cut_back_by_another_tool_is_found_below_the_hint() {
    let log = TestLog::new(Server::s3s(), "hint-cut");
    fill_on_disk(&log, 1..=300);
    log.put_raw(HINT, b"s3wal-hint 1\ntail 300\n");
    // Another tool deletes 121..=300 and leaves the hint as it was.
    let folder = log.server.data_dir.as_ref().unwrap();
    let folder = folder.join(&log.server.bucket).join(&log.prefix);
    for n in 121..=300 {
        std::fs::remove_file(folder.join(key_name(n))).unwrap();
    }
    assert_eq!(recover_fresh(&log).0, "Last offset: 120\n");
    assert_eq!(
        fresh(&log).run(&["append", "next"]).ok(),
        "Appended record at offset: 121, data: next\n"
    );
    assert!(
        log.run(&["verify"])
            .ok()
            .contains("121 valid, 0 corrupt, 0 missing, 0 foreign")
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_truncate_on_another_machine_moves_the_hint_down() {
    let log = TestLog::new(Server::s3s(), "hint-truncate");
    let input: String = (1..=250).map(|n| format!("r{n}\n")).collect();
    log.run_with_stdin(&["append", "--lines"], input.as_bytes())
        .ok();
    fresh(&log).run(&["truncate", "120"]).ok();
    assert!(hint_body(&log).unwrap().contains("tail 120\n"));
    let (out, counts) = recover_fresh(&log);
    assert_eq!(out, "Last offset: 120\n");
    assert_eq!(counts.values().sum::<u64>(), 2, "{counts:?}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_log_trimmed_past_the_hint_is_found_and_verifies_clean() {
    let log = TestLog::new(Server::s3s(), "hint-trim");
    fill_on_disk(&log, 1..=400);
    log.put_raw(HINT, b"s3wal-hint 1\ntail 150\n");
    fresh(&log).run(&["trim", "300"]).ok();
    assert_eq!(recover_fresh(&log).0, "Last offset: 400\n");
    assert_eq!(
        fresh(&log).run(&["stat"]).ok(),
        "First offset: 300, Last offset: 400, Records: 101\n"
    );
    fresh(&log).run(&["append", "next"]).ok();
    assert!(
        log.run(&["verify"])
            .ok()
            .contains("102 valid, 0 corrupt, 0 missing, 0 foreign")
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn the_seed_sees_the_records_and_one_hint_it_skips() {
    let log = TestLog::new(Server::s3s(), "hint-seed");
    let input: String = (1..=150).map(|n| format!("r{n}\n")).collect();
    log.run_with_stdin(&["append", "--lines"], input.as_bytes())
        .ok();
    let keys = log.keys();
    assert_eq!(keys.len(), 151, "{keys:?}");
    assert_eq!(keys[0], log.key(HINT), "sorts before every record");
    assert!(
        keys[1..]
            .iter()
            .all(|k| log.wal().prefix().offset_of(k).is_some())
    );
    // Left by a probe whose delete was refused: not foreign either.
    log.put_raw(".s3wal-probe-0123456", b"s3wal probe");
    let out = log.run(&["verify"]).ok();
    assert!(out.contains("0 foreign keys"), "{out}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn truncating_to_zero_leaves_only_the_fences() {
    let log = TestLog::new(Server::s3s(), "hint-empty");
    log.run(&["append", "a"]).ok();
    assert!(hint_body(&log).is_some());
    log.run(&["truncate", "0"]).ok();
    let fences = log.key(".s3wal/fence/");
    let keys = log.keys();
    assert_eq!(keys.len(), 3, "claim, what it does, done: {keys:?}");
    assert!(keys.iter().all(|key| key.starts_with(&fences)), "{keys:?}");
    assert_eq!(log.run(&["recover"]).ok(), "Last offset: 0\n");
}
