//! `kill -9` in the middle of a truncate: the log left behind reads
//! correctly, and running the truncate again completes it.

use crate::common;

use std::process::Stdio;
use std::thread;
use std::time::Duration;

use common::{Server, TestLog, fill_on_disk};

const RECORDS: u64 = 5_000;
const KEEP: u64 = 100;

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn truncate_killed_at_any_moment_leaves_a_readable_log_dense_but_for_its_deletes_in_flight() {
    let mut interrupted = 0;
    for delay_ms in [10, 40, 70, 100, 130, 160, 190, 250] {
        let log = TestLog::new(Server::s3s(), "kill-truncate");
        fill_on_disk(&log, 1..=RECORDS);
        // A warm tail hint makes the deletes start at once, so the kills
        // land among them rather than in the tail search.
        log.run(&["recover"]).ok();
        let mut child = log
            .command()
            .args(["truncate", &KEEP.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();

        let mut offsets = log.offsets();
        offsets.sort_unstable();
        let tail = *offsets.last().unwrap();
        // Deletes go --parallel (64) at a time from the top, so a kill can
        // leave gaps among the highest 64 records left, never below them.
        let dense = offsets
            .iter()
            .zip(1..)
            .take_while(|(offset, n)| *offset == n)
            .count() as u64;
        assert!(
            tail - dense < 64,
            "killed after {delay_ms} ms: dense to {dense}, tail {tail}"
        );
        assert!(tail >= KEEP);
        if KEEP < tail && tail < RECORDS {
            interrupted += 1;
        }
        assert_eq!(log.run(&["recover"]).ok(), format!("Last offset: {tail}\n"));
        assert_eq!(
            log.run(&["last"]).ok(),
            format!("Last record: offset={tail}, data=r{tail}\n")
        );
        log.run(&["truncate", &KEEP.to_string()]).ok();
        assert_eq!(
            log.offsets().len() as u64,
            KEEP,
            "rerun after {delay_ms} ms"
        );
    }
    println!("{interrupted} of 8 kills landed between the first and the last delete");
}
