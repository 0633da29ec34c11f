//! `trim` (retention) and `stat`, and every command on a log that no
//! longer starts at 1.

use crate::common;

use common::{Server, TestLog, fill_on_disk};

fn trimmed_log(name: &str) -> TestLog {
    let log = TestLog::new(Server::s3s(), name);
    fill_on_disk(&log, 1..=30);
    assert_eq!(
        log.run(&["trim", "11"]).ok(),
        "Trimmed WAL before offset 11\nDeleted 10 records\n"
    );
    log
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn trim_deletes_every_record_before_the_offset() {
    let log = trimmed_log("trim");
    let mut offsets = log.offsets();
    offsets.sort_unstable();
    assert_eq!(offsets, (11..=30).collect::<Vec<_>>());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn stat_reports_both_ends_and_the_count() {
    let log = trimmed_log("stat");
    assert_eq!(
        log.run(&["stat"]).ok(),
        "First offset: 11, Last offset: 30, Records: 20\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn stat_of_an_empty_log_is_zeros() {
    let log = TestLog::new(Server::s3s(), "stat-empty");
    assert_eq!(
        log.run(&["stat"]).ok(),
        "First offset: 0, Last offset: 0, Records: 0\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn trim_never_deletes_the_last_record() {
    let log = trimmed_log("trim-past-tail");
    log.run(&["trim", "31"]).fails(2, "the last record is 30");
    assert_eq!(log.offsets().len(), 20);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn trimmed_log_keeps_working_for_every_command() {
    let log = trimmed_log("trimmed-commands");
    let fresh = TestLog {
        lock_dir: log.workdir.join("cold-locks"),
        ..log.clone()
    };
    assert_eq!(fresh.run(&["recover"]).ok(), "Last offset: 30\n");
    assert_eq!(
        fresh.run(&["last"]).ok(),
        "Last record: offset=30, data=r30\n"
    );
    assert_eq!(
        fresh.run(&["append", "next"]).ok(),
        "Appended record at offset: 31, data: next\n"
    );
    let dump = fresh.run(&["dump"]).ok();
    assert_eq!(dump.lines().next(), Some("Offset: 11, Data: r11"));
    assert_eq!(dump.lines().count(), 21);
    assert_eq!(
        fresh.run(&["verify"]).ok(),
        "Verified records 11..31: 21 valid, 0 corrupt, 0 missing, 0 foreign keys\n"
    );
    fresh
        .run(&["read", "10"])
        .fails(8, "offset 10 was trimmed: the log now starts at 11");
    fresh
        .run(&["read", "40"])
        .fails(3, "no record at offset 40");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_consumer_behind_a_trim_is_told_where_the_log_starts() {
    let log = trimmed_log("trimmed-consumer");
    log.run(&["dump", "--from", "5"]).fails(
        8,
        "offset 5 was trimmed: the log now starts at 11, so the records 5..10 are gone",
    );
    log.run(&["dump", "--follow", "--from", "5"])
        .fails(8, "offset 5 was trimmed");
    let json = log.run(&["--json", "dump", "--from", "5"]);
    assert_eq!(json.code, 8);
    assert!(
        json.stderr.starts_with("{\"code\":\"trimmed\",\"exit\":8,"),
        "{}",
        json.stderr
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_consumer_that_asks_to_skip_the_trimmed_records_starts_at_the_first() {
    let log = trimmed_log("trimmed-skip");
    let dump = log.run(&["dump", "--from", "5", "--skip-trimmed"]).ok();
    assert_eq!(dump.lines().next(), Some("Offset: 11, Data: r11"));
    assert_eq!(dump.lines().count(), 20);
    let from_first = log.run(&["dump", "--from", "11"]).ok();
    assert_eq!(
        from_first, dump,
        "a --from at the first record needs no flag"
    );
}

#[test]
fn dump_from_past_its_to_is_a_usage_error() {
    let log = TestLog::without_server("dump-backwards");
    log.run(&["dump", "--from", "5", "--to", "2"])
        .fails(2, "--from is past --to");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_trimmed_log_is_never_truncated_below_its_first_record() {
    let log = trimmed_log("truncate-below-first");
    for after in ["0", "10"] {
        log.run(&["truncate", after])
            .fails(2, "a trim made the log start at 11");
    }
    assert_eq!(log.offsets().len(), 20, "nothing was deleted");
    assert_eq!(
        log.run(&["truncate", "11"]).ok(),
        "Truncated WAL after offset 11\nDeleted 19 records\n"
    );
    assert_eq!(
        log.run(&["append", "next"]).ok(),
        "Appended record at offset: 12, data: next\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_dry_run_says_what_a_truncate_or_trim_would_delete_and_deletes_nothing() {
    let log = trimmed_log("dry-run");
    assert_eq!(
        log.run(&["truncate", "27", "--dry-run"]).ok(),
        "Would delete 3 records: offsets 28..30\n"
    );
    assert_eq!(
        log.run(&["trim", "15", "--dry-run"]).ok(),
        "Would delete 4 records: offsets 11..14\n"
    );
    assert_eq!(
        log.run(&["--json", "trim", "12", "--dry-run"]).ok(),
        "{\"dry_run\":true,\"would_delete\":1,\"first\":11,\"last\":11}\n"
    );
    assert_eq!(
        log.run(&["truncate", "30", "--dry-run"]).ok(),
        "Nothing to delete\n"
    );
    assert_eq!(
        log.run(&["trim", "11", "--dry-run"]).ok(),
        "Nothing to delete\n"
    );
    log.run(&["trim", "31", "--dry-run"])
        .fails(2, "the last record is 30");
    log.run(&["truncate", "5", "--dry-run"])
        .fails(2, "a trim made the log start at 11");
    assert_eq!(log.offsets().len(), 20, "nothing was deleted");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_trim_with_nothing_before_its_offset_says_so() {
    let log = trimmed_log("trim-nothing");
    assert_eq!(
        log.run(&["trim", "11"]).ok(),
        "Trimmed WAL before offset 11\nNothing to delete\n"
    );
}
