//! Faults between s3wal and a real server, injected by a proxy: lost
//! answers, throttling, resets and hangs. Afterwards the bucket must hold
//! every record exactly once, at dense offsets.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::proxy::{Fault, FaultProxy};
use common::{Server, TestLog};

/// A small deterministic random source, so a failing run can be repeated.
fn dice(seed: u64) -> impl FnMut() -> u32 + Send {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 100) as u32
    }
}

/// Appends `payloads` one process each, all through `log`; every one must
/// succeed.
fn append_all(log: &TestLog, payloads: &[String]) {
    for payload in payloads {
        let run = log.run(&["append", payload]);
        assert_eq!(run.code, 0, "{payload}: {}", run.stderr);
    }
}

/// Asserts that the log holds exactly `payloads`, once each, at 1..=n.
fn assert_each_once(log: &TestLog, payloads: &[String]) {
    let mut offsets = log.offsets();
    offsets.sort_unstable();
    let n = payloads.len() as u64;
    assert_eq!(offsets, (1..=n).collect::<Vec<_>>());
    let wal = log.wal();
    let mut seen: HashMap<Vec<u8>, u64> = HashMap::new();
    for offset in 1..=n {
        let data = wal.read(offset).unwrap().data;
        if let Some(first) = seen.insert(data.clone(), offset) {
            panic!(
                "{:?} stored at {first} and {offset}",
                String::from_utf8_lossy(&data)
            );
        }
    }
    for payload in payloads {
        assert!(seen.contains_key(payload.as_bytes()), "{payload} lost");
    }
}

fn payloads(n: usize, tag: &str) -> Vec<String> {
    (0..n).map(|i| format!("{tag} {i}")).collect()
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn lost_answers_to_one_put_in_five_still_store_each_record_once() {
    let log = TestLog::new(Server::s3s(), "lost-acks");
    let mut roll = dice(7);
    let proxy = FaultProxy::start(&log.server.endpoint, move |method, _| {
        if method == "PUT" && roll() < 20 {
            Fault::LoseAnswer
        } else {
            Fault::Forward
        }
    });
    let payloads = payloads(200, "lost-ack");
    append_all(&log.via(&proxy.endpoint), &payloads);
    let lost = proxy
        .seen()
        .iter()
        .filter(|s| s.fault == Fault::LoseAnswer)
        .count();
    assert!(lost > 20, "only {lost} answers lost");
    assert_each_once(&log, &payloads);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn throttling_and_resets_are_retried_without_loss_or_duplicates() {
    let log = TestLog::new(Server::s3s(), "throttled");
    let mut roll = dice(11);
    let proxy = FaultProxy::start(&log.server.endpoint, move |_, _| match roll() {
        0..20 => Fault::Answer(503, "SlowDown"),
        20..30 => Fault::Reset,
        _ => Fault::Forward,
    });
    let payloads = payloads(200, "throttled");
    append_all(&log.via(&proxy.endpoint), &payloads);
    assert_each_once(&log, &payloads);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn racing_writers_with_lost_answers_store_each_record_once() {
    let log = TestLog::new(Server::rgw(), "race-lost-acks");
    let roll = Arc::new(Mutex::new(dice(13)));
    let proxy = FaultProxy::start(&log.server.endpoint, move |method, _| {
        if method == "PUT" && (roll.lock().unwrap())() < 10 {
            Fault::LoseAnswer
        } else {
            Fault::Forward
        }
    });
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let log = TestLog {
                lock_dir: log.workdir.join(format!("machine-{writer}")),
                ..log.via(&proxy.endpoint)
            };
            thread::spawn(move || append_all(&log, &payloads(40, &format!("writer {writer}"))))
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let all: Vec<String> = (0..4)
        .flat_map(|w| payloads(40, &format!("writer {w}")))
        .collect();
    assert_each_once(&log, &all);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_server_that_never_answers_fails_within_the_timeout() {
    let log = TestLog::new(Server::s3s(), "hung");
    let proxy = FaultProxy::start(&log.server.endpoint, |_, _| {
        Fault::Delay(Duration::from_secs(30))
    });
    let started = std::time::Instant::now();
    let run = log.via(&proxy.endpoint).run(&["--timeout", "2", "recover"]);
    run.fails(1, "sent nothing for 2 s (--timeout)");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn client_errors_are_answers_and_not_retried() {
    let log = TestLog::new(Server::s3s(), "no-retry-403");
    let proxy = FaultProxy::start(&log.server.endpoint, |_, _| {
        Fault::Answer(403, "AccessDenied")
    });
    log.via(&proxy.endpoint)
        .run(&["recover"])
        .fails(1, "HTTP 403 AccessDenied: injected");
    // The listing of s3wal's own folder, which holds the store hint, once.
    assert_eq!(proxy.seen().len(), 1);
}
