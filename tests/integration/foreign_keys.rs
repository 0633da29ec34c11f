//! Keys under the prefix that are not `<prefix>/<20 digits>` are foreign:
//! every operation ignores them alike, and none changes the tail.

use crate::common;

use common::{Server, TestLog, key_name};

const FOREIGN: [&str; 5] = [
    "x",
    "99",
    "sub/00000000000000000009",
    "00000000000000000001.tmp",
    "zzzzzzzzzzzzzzzzzzzz",
];

/// A log with records 1 and 2 and every foreign key beside them.
fn log_with_foreign_keys(name: &str) -> TestLog {
    let log = TestLog::new(Server::s3s(), name);
    log.run(&["append", "one"]).ok();
    log.run(&["append", "two"]).ok();
    for key in FOREIGN {
        log.put_raw(key, b"not a record");
    }
    log
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn foreign_keys_do_not_change_the_tail() {
    let log = log_with_foreign_keys("foreign-recover");
    assert_eq!(log.run(&["recover"]).ok(), "Last offset: 2\n");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn last_ignores_foreign_keys() {
    let log = log_with_foreign_keys("foreign-last");
    assert_eq!(log.run(&["last"]).ok(), "Last record: offset=2, data=two\n");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_after_foreign_keys_takes_the_next_record_offset() {
    let log = log_with_foreign_keys("foreign-append");
    assert_eq!(
        log.run(&["append", "three"]).ok(),
        "Appended record at offset: 3, data: three\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn truncate_leaves_foreign_keys_alone() {
    let log = log_with_foreign_keys("foreign-truncate");
    log.run(&["truncate", "0"]).ok();
    let fences = log.key(".s3wal/fence/");
    let mut left: Vec<String> = log.keys();
    left.retain(|key| !key.starts_with(&fences));
    left.sort();
    let mut expected: Vec<String> = FOREIGN.iter().map(|k| log.key(k)).collect();
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(log.run(&["recover"]).ok(), "Last offset: 0\n");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_log_of_only_foreign_keys_is_empty() {
    let log = TestLog::new(Server::s3s(), "foreign-only");
    for key in FOREIGN {
        log.put_raw(key, b"x");
    }
    log.run(&["last"]).fails(3, "WAL is empty");
    assert_eq!(log.run(&["recover"]).ok(), "Last offset: 0\n");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_sibling_prefix_is_not_part_of_the_log() {
    let log = TestLog::new(Server::s3s(), "sibling");
    let sibling = TestLog {
        prefix: format!("{}x", log.prefix),
        ..log.clone()
    };
    sibling.put_raw(&key_name(7), &s3wal::record::encode(7, b"other log"));
    assert_eq!(log.run(&["recover"]).ok(), "Last offset: 0\n");
}
