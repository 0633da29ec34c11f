//! `verify` reads every record and reports corrupt ones, holes and foreign
//! keys, with a summary line; exit 4 if anything is wrong.

use crate::common;

use common::{Server, TestLog, fill_on_disk, key_name};

fn log_of(n: u64, name: &str) -> TestLog {
    let log = TestLog::new(Server::s3s(), name);
    fill_on_disk(&log, 1..=n);
    log
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn clean_log_verifies_with_exit_0() {
    let out = log_of(50, "verify-clean").run(&["verify"]).ok();
    assert_eq!(
        out,
        "Verified records 1..50: 50 valid, 0 corrupt, 0 missing, 0 foreign keys\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn empty_log_verifies() {
    let out = TestLog::new(Server::s3s(), "verify-empty")
        .run(&["verify"])
        .ok();
    assert_eq!(
        out,
        "Verified no records: 0 valid, 0 corrupt, 0 missing, 0 foreign keys\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn corrupt_record_is_reported_with_exit_4() {
    let log = log_of(5, "verify-corrupt");
    let mut body = s3wal::record::encode(3, b"r3");
    body[9] ^= 1;
    log.put_raw(&key_name(3), &body);
    let run = log.run(&["verify"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(
        run.out(),
        "Corrupt: offset 3: checksum mismatch\n\
         Verified records 1..5: 4 valid, 1 corrupt, 0 missing, 0 foreign keys\n"
    );
    assert!(
        run.stderr.starts_with("s3wal: verify found 1 problem"),
        "{}",
        run.stderr
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn holes_are_reported_as_ranges() {
    let log = TestLog::new(Server::s3s(), "verify-holes");
    fill_on_disk(&log, [1, 2, 5, 7]);
    let run = log.run(&["verify"]);
    assert_eq!(run.code, 4);
    assert_eq!(
        run.out(),
        "Hole: offsets 3..4 missing\nHole: offset 6 missing\n\
         Verified records 1..7: 4 valid, 0 corrupt, 3 missing, 0 foreign keys\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn foreign_keys_are_reported() {
    let log = log_of(2, "verify-foreign");
    log.put_raw("x", b"not a record");
    let run = log.run(&["verify"]);
    assert_eq!(run.code, 4);
    assert!(
        run.out()
            .starts_with(&format!("Foreign key: {}\n", log.key("x"))),
        "{}",
        run.out()
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn range_limits_what_is_read() {
    let log = log_of(20, "verify-range");
    let out = log.run(&["verify", "--from", "5", "--to", "9"]).ok();
    assert_eq!(
        out,
        "Verified records 5..9: 5 valid, 0 corrupt, 0 missing, 0 foreign keys\n"
    );
}
