//! The tail hint kept in the store (the name of a key under
//! `<prefix>/.s3wal/at/`): a fresh machine starts near the tail from it,
//! and whatever it says (stale, far ahead, missing, garbled, from a newer
//! s3wal) every command stays exact.

use crate::common;

use common::{Server, TestLog, fill_on_disk, key_name, request_counts};
use s3wal::Store;

/// The folder of the hint's key, under the prefix.
const HINTS: &str = ".s3wal/at/";

/// The name of a hint of `tail`, without the probe's verdict.
fn hint(tail: u64) -> String {
    format!("{HINTS}{tail:020}-unprobed-0000000000000000")
}

/// The same log from a fresh machine: no lock folder, no local hint.
fn fresh(log: &TestLog) -> TestLog {
    TestLog {
        lock_dir: common::scratch("fresh"),
        ..log.clone()
    }
}

/// The tails the hint keys left in the store say, and the other keys of
/// their folder.
fn hints(log: &TestLog) -> (Vec<u64>, Vec<String>) {
    let folder = log.key(HINTS);
    let names = log.keys().into_iter().filter_map(|key| {
        let name = key.strip_prefix(&folder)?;
        Some(name.to_owned())
    });
    let (tails, others): (Vec<_>, Vec<_>) =
        names.partition(|name| name.split('-').count() == 3 && name.find('-') == Some(20));
    let tails = tails
        .iter()
        .map(|name| name[..20].parse().unwrap())
        .collect();
    (tails, others)
}

fn recover_fresh(log: &TestLog) -> (String, std::collections::BTreeMap<String, u64>) {
    let run = fresh(log).run(&["-v", "recover"]);
    (run.ok(), request_counts(&run))
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_hint_a_little_behind_the_tail_costs_one_list_for_it_and_one_from_it() {
    let log = TestLog::new(Server::s3s(), "hint-behind");
    fill_on_disk(&log, 1..=500);
    log.put_raw(&hint(450), b"");
    let (out, counts) = recover_fresh(&log);
    assert_eq!(out, "Last offset: 500\n");
    assert_eq!(counts.values().sum::<u64>(), 2, "{counts:?}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_hint_far_ahead_of_a_log_made_again_is_corrected() {
    let log = TestLog::new(Server::s3s(), "hint-ahead");
    fill_on_disk(&log, 1..=30);
    log.put_raw(&hint(5000), b"");
    assert_eq!(recover_fresh(&log).0, "Last offset: 30\n");
    assert_eq!(hints(&log).0, [5000], "recover only reads");
    assert_eq!(
        fresh(&log).run(&["append", "next"]).ok(),
        "Appended record at offset: 31, data: next\n"
    );
    assert_eq!(hints(&log).0, [31], "the one it replaced is gone");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_missing_or_garbled_hint_falls_back_to_the_search_and_the_next_append_writes_it() {
    let log = TestLog::new(Server::s3s(), "hint-garbled");
    fill_on_disk(&log, 1..=70);
    assert_eq!(recover_fresh(&log).0, "Last offset: 70\n");
    assert_eq!(hints(&log).0, [0u64; 0], "recover only reads");
    fresh(&log).run(&["append", "71"]).ok();
    assert_eq!(hints(&log).0, [71]);
    for key in log.keys() {
        if key.starts_with(&log.key(HINTS)) {
            log.wal().store().delete_key(&key, None).unwrap();
        }
    }
    log.put_raw(&format!("{HINTS}not-a-hint"), b"");
    assert_eq!(recover_fresh(&log).0, "Last offset: 71\n");
    fresh(&log).run(&["append", "72"]).ok();
    assert_eq!(hints(&log).0, [72]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_hint_from_a_newer_s3wal_is_read_as_none_and_left_alone() {
    let log = TestLog::new(Server::s3s(), "hint-newer");
    fill_on_disk(&log, 1..=40);
    let newer = "00000000000000000040-v2-something-new";
    log.put_raw(&format!("{HINTS}{newer}"), b"");
    assert_eq!(recover_fresh(&log).0, "Last offset: 40\n");
    assert_eq!(hints(&log).1, [newer]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_log_cut_back_by_another_tool_is_found_below_the_hint() {
    let log = TestLog::new(Server::s3s(), "hint-cut");
    fill_on_disk(&log, 1..=300);
    log.put_raw(&hint(300), b"");
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
    assert_eq!(hints(&log).0, [120]);
    let (out, counts) = recover_fresh(&log);
    assert_eq!(out, "Last offset: 120\n");
    assert_eq!(counts.values().sum::<u64>(), 2, "{counts:?}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_log_trimmed_past_the_hint_is_found_and_verifies_clean() {
    let log = TestLog::new(Server::s3s(), "hint-trim");
    fill_on_disk(&log, 1..=400);
    log.put_raw(&hint(150), b"");
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
    assert!(
        keys[0].starts_with(&log.key(HINTS)),
        "sorts before every record"
    );
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
    assert_eq!(hints(&log).0, [1]);
    log.run(&["truncate", "0"]).ok();
    let fences = log.key(".s3wal/fence/");
    let keys = log.keys();
    assert_eq!(keys.len(), 3, "claim, what it does, done: {keys:?}");
    assert!(keys.iter().all(|key| key.starts_with(&fences)), "{keys:?}");
    assert_eq!(log.run(&["recover"]).ok(), "Last offset: 0\n");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn reading_commands_never_write_to_the_store() {
    let log = TestLog::new(Server::s3s(), "hint-read-only");
    let empty = fresh(&log);
    for args in [&["-v", "recover"][..], &["-v", "last"], &["-v", "stat"]] {
        let counts = request_counts(&empty.run(args));
        assert_eq!(
            counts.keys().collect::<Vec<_>>(),
            ["ListObjectsV2"],
            "{args:?} on an empty prefix: {counts:?}"
        );
    }
    fill_on_disk(&log, 1..=30);
    log.put_raw(&hint(5000), b"");
    for args in [
        &["-v", "recover"][..],
        &["-v", "last"],
        &["-v", "stat"],
        &["-v", "read", "3"],
        &["-v", "dump"],
        &["-v", "verify"],
    ] {
        let counts = request_counts(&fresh(&log).run(args));
        let writes: Vec<_> = counts
            .keys()
            .filter(|action| {
                !matches!(
                    action.as_str(),
                    "ListObjectsV2" | "GetObject" | "HeadObject"
                )
            })
            .collect();
        assert!(writes.is_empty(), "{args:?} with a stale hint: {counts:?}");
    }
    assert_eq!(hints(&log).0, [5000], "left for the next append");
}
