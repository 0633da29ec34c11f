//! What the store answers decides what an append does: a fault-injecting
//! proxy in front of s3s-fs makes it answer 409 or 412 on demand.

use crate::common;

use common::proxy::{Fault, FaultProxy};
use common::{Server, TestLog, key_name};

/// Whether a request is part of the If-None-Match probe, not of a record.
/// s3wal's own objects: the probe's scratch keys and the store hint.
fn is_probe(path: &str) -> bool {
    path.contains(".s3wal")
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn conflict_409_retries_the_same_offset() {
    let log = TestLog::new(Server::s3s(), "conflict-409");
    let mut first_put = true;
    let proxy = FaultProxy::start(&log.server.endpoint, move |method, path| {
        if method == "PUT" && !is_probe(path) && std::mem::take(&mut first_put) {
            Fault::Answer(409, "ConditionalRequestConflict")
        } else {
            Fault::Forward
        }
    });
    let run = log.via(&proxy.endpoint).run(&["append", "once"]);
    assert_eq!(run.ok(), "Appended record at offset: 1, data: once\n");
    let puts: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT" && !is_probe(&s.path))
        .collect();
    assert_eq!(puts.len(), 2);
    // Both PUTs went to offset 1: a 409 decided nothing, so no offset was skipped.
    assert!(puts.iter().all(|p| p.path.ends_with(&key_name(1))));
    assert_eq!(log.offsets(), [1]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn endless_409s_give_up_with_exit_6_naming_the_key_the_record_may_be_at() {
    let log = TestLog::new(Server::s3s(), "endless-409");
    let proxy = FaultProxy::start(&log.server.endpoint, |method, path| {
        match method == "PUT" && !is_probe(path) {
            true => Fault::Answer(409, "ConditionalRequestConflict"),
            false => Fault::Forward,
        }
    });
    let run = log.via(&proxy.endpoint).run(&["append", "x"]);
    run.fails(
        6,
        &format!("{}: HTTP 409 in all 8 attempts", log.key(&key_name(1))),
    );
    assert!(
        run.stderr.contains("may have been stored there"),
        "{}",
        run.stderr
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_gives_up_with_exit_5_when_every_offset_is_taken() {
    let log = TestLog::new(Server::s3s(), "always-412");
    let proxy = FaultProxy::start(&log.server.endpoint, |method, path| match method {
        "PUT" if !is_probe(path) => Fault::Answer(412, "PreconditionFailed"),
        _ => Fault::Forward,
    });
    let run = log.via(&proxy.endpoint).run(&["append", "never"]);
    run.fails(5, "could not append");
    let puts = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && !is_probe(&s.path))
        .count();
    assert_eq!(puts as u32, s3wal::MAX_APPEND_ATTEMPTS);
    assert_eq!(log.offsets(), Vec::<u64>::new());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn server_error_on_put_fails_with_the_s3_code_and_writes_nothing() {
    let log = TestLog::new(Server::s3s(), "put-500");
    let proxy = FaultProxy::start(&log.server.endpoint, |method, _| match method {
        "PUT" => Fault::Answer(500, "InternalError"),
        _ => Fault::Forward,
    });
    log.via(&proxy.endpoint)
        .run(&["--retries", "0", "append", "x"])
        .fails(1, "HTTP 500 InternalError: injected");
    assert_eq!(log.offsets(), Vec::<u64>::new());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn server_error_on_a_record_put_says_the_record_may_be_stored() {
    let log = TestLog::new(Server::s3s(), "record-put-500");
    let proxy = FaultProxy::start(&log.server.endpoint, |method, path| {
        match method == "PUT" && !is_probe(path) {
            true => Fault::Answer(500, "InternalError"),
            false => Fault::Forward,
        }
    });
    // A 500 may come from a store that wrote the object and then failed.
    log.via(&proxy.endpoint)
        .run(&["--retries", "0", "append", "x"])
        .fails(6, "may have been stored at offset 1");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_refusal_after_a_lost_answer_says_the_record_may_be_stored() {
    let log = TestLog::new(Server::s3s(), "lost-then-403");
    let mut puts = 0;
    let proxy = FaultProxy::start(&log.server.endpoint, move |method, path| {
        if method != "PUT" || is_probe(path) {
            return Fault::Forward;
        }
        puts += 1;
        match puts {
            1 => Fault::LoseAnswer,
            _ => Fault::Answer(403, "AccessDenied"),
        }
    });
    log.via(&proxy.endpoint)
        .run(&["append", "x"])
        .fails(6, "may have been stored at offset 1");
    assert_eq!(log.offsets(), [1], "the first try did store it");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_failed_truncate_leaves_only_its_deletes_in_flight_and_releases_its_fence_to_the_next_command()
{
    let log = TestLog::new(Server::s3s(), "truncate-interrupted");
    common::fill_on_disk(&log, 1..=1205);
    let mut deletes = 0;
    let proxy = FaultProxy::start(&log.server.endpoint, move |method, _| {
        if method == "DELETE" {
            deletes += 1;
            if deletes == 100 {
                return Fault::Answer(503, "SlowDown");
            }
        }
        Fault::Forward
    });
    let machine = log.via(&proxy.endpoint);
    machine
        .run(&["--retries", "0", "--parallel", "64", "truncate", "3"])
        .fails(1, "HTTP 503 SlowDown: injected");
    // The deletes go 64 at a time from the top: the first 64 went, and of
    // the second 64 all but the refused one; nothing below them.
    let offsets = log.offsets();
    let (kept, refused): (Vec<u64>, Vec<u64>) = offsets.iter().partition(|&&o| o <= 1205 - 128);
    assert_eq!(kept, (1..=1205 - 128).collect::<Vec<u64>>());
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        (1205 - 127..=1205 - 64).contains(&refused[0]),
        "{refused:?}"
    );
    // The failed truncate released its fence: the next command takes it
    // over at once, not after its 30 s lease, and finishes the truncate.
    let started = std::time::Instant::now();
    assert_eq!(
        machine.run(&["append", "next"]).ok(),
        "Appended record at offset: 4, data: next\n"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(log.offsets(), [1, 2, 3, 4]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn lost_answer_then_409_then_412_is_recognised_as_our_own_record() {
    let log = TestLog::new(Server::s3s(), "lost-then-409");
    let mut record_puts = 0;
    let proxy = FaultProxy::start(&log.server.endpoint, move |method, path| {
        if method != "PUT" || is_probe(path) {
            return Fault::Forward;
        }
        record_puts += 1;
        match record_puts {
            1 => Fault::LoseAnswer,
            2 => Fault::Answer(409, "ConditionalRequestConflict"),
            _ => Fault::Forward,
        }
    });
    let run = log.via(&proxy.endpoint).run(&["append", "exactly once"]);
    assert_eq!(
        run.ok(),
        "Appended record at offset: 1, data: exactly once\n"
    );
    assert_eq!(log.offsets(), [1]);
}
