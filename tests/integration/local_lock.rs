//! Appends and truncates on one machine queue on the lock file.

use crate::common;

use std::fs::File;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use common::{Run, Server, TestLog};

/// Holds every lock file of the log's lock folder, as another local
/// process would while appending.
pub(crate) fn hold_locks(log: &TestLog) -> Vec<File> {
    std::fs::read_dir(&log.lock_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "lock"))
        .map(|path| {
            let file = File::open(path).unwrap();
            file.lock().unwrap();
            file
        })
        .collect()
}

/// Starts `args` while the lock is held, checks that it waits, releases
/// the lock and returns how the command ended.
fn run_behind_held_lock(log: &TestLog, args: &[&str]) -> Run {
    let held = hold_locks(log);
    assert!(!held.is_empty(), "no lock file yet");
    let mut child = log
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{args:?} did not wait for the lock"
    );
    assert_eq!(
        log.offsets(),
        [1],
        "{args:?} changed the log while the lock was held"
    );
    drop(held);
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_waits_for_the_local_lock() {
    let log = TestLog::new(Server::s3s(), "lock-append");
    log.run(&["append", "first"]).ok();
    let run = run_behind_held_lock(&log, &["append", "second"]);
    assert_eq!(run.ok(), "Appended record at offset: 2, data: second\n");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn truncate_waits_for_the_local_lock() {
    let log = TestLog::new(Server::s3s(), "lock-truncate");
    log.run(&["append", "first"]).ok();
    let run = run_behind_held_lock(&log, &["truncate", "0"]);
    assert_eq!(run.ok(), "Truncated WAL after offset 0\nDeleted 1 record\n");
    assert_eq!(log.offsets(), Vec::<u64>::new());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn one_lock_file_per_endpoint_bucket_and_prefix() {
    let log = TestLog::new(Server::s3s(), "lock-files");
    log.run(&["append", "a"]).ok();
    let other_prefix = format!("{}-other", log.prefix);
    log.run(&["--prefix", &other_prefix, "append", "b"]).ok();
    let locks = std::fs::read_dir(&log.lock_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "lock")
        })
        .count();
    assert_eq!(locks, 2);
}
