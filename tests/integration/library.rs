//! The library API on a real server, without the CLI.

use crate::common;

use common::{Server, TestLog};
use s3wal::{Error, Record};

fn wal(name: &str) -> (TestLog, s3wal::Wal<s3wal::s3::Client>) {
    let log = TestLog::new(Server::s3s(), name);
    let wal = log.wal();
    (log, wal)
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_returns_consecutive_offsets_from_one() {
    let (_, wal) = wal("lib-append");
    assert_eq!(wal.append(b"a").unwrap(), 1);
    assert_eq!(wal.append(b"b").unwrap(), 2);
    assert_eq!(wal.recover().unwrap(), 2);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn read_returns_the_verified_record() {
    let (_, wal) = wal("lib-read");
    wal.append(b"\x00binary\xff").unwrap();
    assert_eq!(
        wal.read(1).unwrap(),
        Record {
            offset: 1,
            data: b"\x00binary\xff".to_vec()
        }
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn last_is_the_highest_record() {
    let (_, wal) = wal("lib-last");
    wal.append(b"a").unwrap();
    wal.append(b"b").unwrap();
    assert_eq!(wal.last().unwrap().data, b"b");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn empty_log_has_no_last_record() {
    let (_, wal) = wal("lib-empty");
    assert!(matches!(wal.last(), Err(Error::Empty)));
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn truncate_returns_how_many_records_it_deleted() {
    let (log, wal) = wal("lib-truncate");
    for data in [b"a", b"b", b"c"] {
        wal.append(data).unwrap();
    }
    assert_eq!(wal.truncate(1).unwrap(), 2);
    assert_eq!(wal.truncate(1).unwrap(), 0);
    assert_eq!(log.offsets(), [1]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn records_written_by_the_library_are_seed_format_objects() {
    let (log, wal) = wal("lib-format");
    wal.append(b"Record #1").unwrap();
    let seed_bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/valid-text.record"),
    )
    .unwrap();
    let stored = wal
        .store()
        .get_object(&log.key(&common::key_name(1)))
        .unwrap();
    assert_eq!(stored, Some(seed_bytes));
}
