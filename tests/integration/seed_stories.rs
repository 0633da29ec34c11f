//! The seed's own stories, run through the real binary with the seed's
//! exact output lines, each on s3s-fs and on SeaweedFS: two independent
//! S3 implementations (the demo story on Ceph RGW too).

use crate::common;

use common::{Server, TestLog, append_records};

/// Runs `story` on a fresh log on s3s-fs, then on one on SeaweedFS.
fn on_each_store(name: &str, story: impl Fn(TestLog)) {
    on(&[Server::s3s(), Server::weed()], name, story);
}

/// Runs `story` on a fresh log on each of `servers`, saying which one
/// failed.
fn on(servers: &[Server], name: &str, story: impl Fn(TestLog)) {
    for server in servers {
        println!("{name} on {}", server.endpoint);
        story(TestLog::new(server.clone(), name));
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn demo_story_recovers_appends_reads_and_truncates() {
    let stores = [Server::s3s(), Server::rgw(), Server::weed()];
    on(&stores, "demo", |log| common::assert_demo_story(&log));
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn script_story_makes_truncated_records_unreadable() {
    on_each_store("script", |log| {
        assert_eq!(log.run(&["recover"]).ok(), "Last offset: 0\n");
        append_records(&log, 5);
        for n in 1..=5 {
            assert_eq!(
                log.run(&["read", &n.to_string()]).ok(),
                format!("Offset: {n}, Data: Record #{n}\n")
            );
        }
        assert_eq!(
            log.run(&["last"]).ok(),
            "Last record: offset=5, data=Record #5\n"
        );
        assert_eq!(
            log.run(&["truncate", "3"]).ok(),
            "Truncated WAL after offset 3\nDeleted 2 records\n"
        );
        assert_eq!(log.run(&["recover"]).ok(), "Last offset: 3\n");
        log.run(&["read", "4"]).fails(3, "no record at offset 4");
        log.run(&["read", "5"]).fails(3, "no record at offset 5");
    });
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn every_append_finds_the_real_tail_instead_of_overwriting() {
    on_each_store("no-overwrite", |log| {
        append_records(&log, 3);
        assert_eq!(log.offsets(), [1, 2, 3]);
        assert_eq!(log.run(&["read", "1"]).ok(), "Offset: 1, Data: Record #1\n");
    });
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn appends_continue_after_truncate_without_a_hole() {
    on_each_store("after-truncate", |log| {
        append_records(&log, 5);
        log.run(&["truncate", "2"]).ok();
        assert_eq!(
            log.run(&["append", "next"]).ok(),
            "Appended record at offset: 3, data: next\n"
        );
        assert_eq!(log.offsets(), [1, 2, 3]);
    });
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn truncate_beyond_the_tail_changes_nothing_and_leaves_no_later_hole() {
    on_each_store("truncate-beyond", |log| {
        append_records(&log, 2);
        assert_eq!(
            log.run(&["truncate", "10"]).ok(),
            "Truncated WAL after offset 10\nNothing to delete\n"
        );
        assert_eq!(log.offsets(), [1, 2]);
        assert_eq!(
            log.run(&["append", "third"]).ok(),
            "Appended record at offset: 3, data: third\n"
        );
        assert_eq!(log.offsets(), [1, 2, 3]);
    });
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn truncate_zero_empties_the_log() {
    on_each_store("truncate-zero", |log| {
        append_records(&log, 3);
        assert_eq!(
            log.run(&["truncate", "0"]).ok(),
            "Truncated WAL after offset 0\nDeleted 3 records\n"
        );
        assert_eq!(log.run(&["recover"]).ok(), "Last offset: 0\n");
        log.run(&["last"]).fails(3, "WAL is empty");
    });
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn truncate_of_more_than_one_batch_deletes_every_record() {
    let log = TestLog::new(Server::s3s(), "truncate-batches");
    common::fill_on_disk(&log, 1..=1205);
    assert_eq!(
        log.run(&["truncate", "3"]).ok(),
        "Truncated WAL after offset 3\nDeleted 1202 records\n"
    );
    assert_eq!(log.offsets(), [1, 2, 3]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn last_on_an_empty_log_exits_3() {
    on_each_store("empty-last", |log| {
        log.run(&["last"]).fails(3, "WAL is empty")
    });
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn read_of_a_missing_offset_exits_3() {
    on_each_store("missing-read", |log| {
        log.run(&["read", "1"]).fails(3, "no record at offset 1")
    });
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_dash_reads_one_binary_record_from_stdin() {
    on_each_store("stdin", |log| {
        let data = b"line one\nline two\x00\xff\xfe";
        let run = log.run_with_stdin(&["append", "-"], data);
        assert_eq!(run.ok(), "Appended record at offset: 1, bytes: 20\n");
        let mut read = b"Offset: 1, Data: ".to_vec();
        read.extend_from_slice(data);
        read.push(b'\n');
        assert_eq!(log.run(&["read", "1"]).stdout, read);
    });
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn appended_data_that_looks_like_a_flag_follows_a_double_dash() {
    on_each_store("dash-data", |log| {
        assert_eq!(
            log.run(&["append", "--", "--not-a-flag"]).ok(),
            "Appended record at offset: 1, data: --not-a-flag\n"
        );
    });
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn seed_flag_spellings_address_the_same_log() {
    on_each_store("seed-flags", |log| {
        let other = format!("{}-flags", log.prefix);
        let bucket = log.server.bucket.clone();
        let prefix_eq = format!("-prefix={other}");
        let run = log.run(&[
            "-bucket",
            &bucket,
            &prefix_eq,
            "-region",
            "us-east-1",
            "append",
            "a",
        ]);
        assert_eq!(run.ok(), "Appended record at offset: 1, data: a\n");
        let bucket_eq = format!("--bucket={bucket}");
        let run = log.run(&[&bucket_eq, "--prefix", &other, "read", "1"]);
        assert_eq!(run.ok(), "Offset: 1, Data: a\n");
        assert!(log.offsets().is_empty(), "the flags beat AWS_PREFIX");
    });
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn data_after_a_double_dash_is_never_rewritten() {
    on_each_store("dash-data", |log| {
        let run = log.run(&["append", "--", "--prefix=x"]);
        assert_eq!(run.ok(), "Appended record at offset: 1, data: --prefix=x\n");
        let run = log.run(&["append", "a=b"]);
        assert_eq!(run.ok(), "Appended record at offset: 2, data: a=b\n");
    });
}
