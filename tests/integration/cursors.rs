//! Named cursors (`dump --cursor NAME`): a consumer's place kept in the
//! bucket beside the log, moved on only after the records were written
//! out, and never moved on by two consumers from the same place.

use crate::common;

use common::{Server, TestLog, fill_on_disk};
use s3wal::Error;

/// The same log from a fresh runner: no local state at all.
fn fresh(log: &TestLog) -> TestLog {
    TestLog {
        lock_dir: common::scratch("cursor-runner"),
        ..log.clone()
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_cron_consumer_resumes_where_the_last_run_stopped_on_any_runner() {
    let log = TestLog::new(Server::s3s(), "cursor-resume");
    fill_on_disk(&log, 1..=3);
    assert_eq!(
        log.run(&["dump", "--cursor", "etl"]).ok().lines().count(),
        3
    );
    assert_eq!(
        log.run(&["dump", "--cursor", "etl"]).ok(),
        "",
        "nothing new"
    );
    log.run(&["append", "four"]).ok();
    log.run(&["append", "five"]).ok();
    assert_eq!(
        fresh(&log)
            .run(&["dump", "--cursor", "etl", "--max-records", "1"])
            .ok(),
        "Offset: 4, Data: four\n"
    );
    assert_eq!(
        fresh(&log).run(&["dump", "--cursor", "etl"]).ok(),
        "Offset: 5, Data: five\n"
    );
    assert_eq!(
        log.run(&["dump", "--cursor", "other"]).ok().lines().count(),
        5,
        "each name has its own place"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_cursor_moves_on_only_once_the_records_were_written_out() {
    let log = TestLog::new(Server::s3s(), "cursor-unwritten");
    fill_on_disk(&log, 1..=3);
    let full = log
        .command()
        .args(["dump", "--cursor", "etl"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(1));
    assert_eq!(
        log.run(&["dump", "--cursor", "etl"]).ok().lines().count(),
        3,
        "the failed run moved the cursor nowhere"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn two_consumers_of_one_name_never_both_move_it_on_from_the_same_place() {
    for server in [Server::rgw(), Server::weed()] {
        let log = TestLog::new(server, "cursor-race");
        let wal = log.wal();
        let first = wal.cursor("etl").unwrap();
        let second = wal.cursor("etl").unwrap();
        wal.advance_cursor(&first, 5).unwrap();
        let error = wal.advance_cursor(&second, 7).unwrap_err();
        assert!(
            matches!(error, Error::CursorMoved { from: 0, .. }),
            "{error}"
        );
        assert_eq!(wal.cursor("etl").unwrap().at, 5, "the first one's place");
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn the_consumer_that_lost_the_race_is_told_and_stat_shows_the_winners_place() {
    let log = TestLog::new(Server::rgw(), "cursor-told");
    log.run(&["append", "one"]).ok();
    log.run(&["append", "two"]).ok();
    // Another consumer read the same place and moved the cursor on first.
    let wal = log.wal();
    let stale = wal.cursor("etl").unwrap();
    wal.advance_cursor(&stale, 1).unwrap();
    // This one read the place before that, as a concurrent run would.
    let error = wal.advance_cursor(&stale, 2).unwrap_err();
    assert!(error.to_string().contains("consumed by both"), "{error}");
    let json = log.run(&["--json", "stat"]).ok();
    assert!(
        json.contains("\"cursors\":[{\"name\":\"etl\",\"at\":1}]"),
        "{json}"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn stat_lists_the_cursors_and_trim_keeps_what_they_have_not_consumed() {
    let log = TestLog::new(Server::s3s(), "cursor-trim");
    fill_on_disk(&log, 1..=6);
    log.run(&["dump", "--cursor", "etl", "--max-records", "2"])
        .ok();
    assert_eq!(
        log.run(&["stat"]).ok(),
        "First offset: 1, Last offset: 6, Records: 6\nCursor etl: consumed up to offset 2\n"
    );
    assert_eq!(
        log.run(&["trim", "5", "--keep-cursors"]).ok(),
        "Trimmed WAL before offset 3\nDeleted 2 records\n"
    );
    assert_eq!(
        log.run(&["dump", "--cursor", "etl"]).ok().lines().next(),
        Some("Offset: 3, Data: r3")
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_cursor_behind_a_trim_is_told_unless_it_skips() {
    let log = TestLog::new(Server::s3s(), "cursor-trimmed");
    fill_on_disk(&log, 1..=6);
    log.run(&["dump", "--cursor", "etl", "--max-records", "1"])
        .ok();
    log.run(&["trim", "4"]).ok();
    log.run(&["dump", "--cursor", "etl"])
        .fails(8, "offset 2 was trimmed: the log now starts at 4");
    assert_eq!(
        log.run(&["dump", "--cursor", "etl", "--skip-trimmed"])
            .ok()
            .lines()
            .count(),
        3
    );
    assert_eq!(log.run(&["dump", "--cursor", "etl"]).ok(), "");
}

#[test]
fn a_cursor_takes_no_other_start() {
    let log = TestLog::without_server("cursor-usage");
    for extra in [&["--last", "1"][..], &["--follow"]] {
        let mut args = vec!["dump", "--cursor", "etl"];
        args.extend(extra);
        log.run(&args)
            .fails(2, "dump --cursor starts where the cursor is");
    }
    log.run(&["dump", "--cursor", "a/b"])
        .fails(2, "cursor name \"a/b\"");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_cursor_past_a_truncate_is_told_and_set_back_with_from() {
    let log = TestLog::new(Server::s3s(), "cursor-ahead");
    fill_on_disk(&log, 1..=5);
    log.run(&["dump", "--cursor", "etl"]).ok();
    log.run(&["truncate", "2"]).ok();
    log.run(&["append", "new three"]).ok();
    log.run(&["dump", "--cursor", "etl"])
        .fails(9, "consumed up to offset 5, but the log ends at 3");
    assert_eq!(
        log.run(&["dump", "--cursor", "etl", "--from", "3"]).ok(),
        "Offset: 3, Data: new three\n"
    );
    assert_eq!(log.run(&["dump", "--cursor", "etl"]).ok(), "");
}
