//! Appends and reads at the edges: a stdout that fails, signals during a
//! PUT, an idle input, a closed pipe, records too big for memory or for S3.
//!
//! Whatever ends an append, a record that was stored is named with its
//! offset, so that a script never stores it twice by retrying.

use crate::common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::{Fault, FaultProxy};
use common::{Server, TestLog, append_records};

/// Exit code of an append that stored records, then failed.
const STORED_THEN_FAILED: i32 = 6;

/// Starts `command` with piped output and SIGINT at its default action:
/// a test runner started from a background shell ignores SIGINT, and its
/// children would inherit that (a shell's `&` and `nohup` mean it).
fn spawn(command: &mut Command) -> Child {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec, signal() only resets a disposition.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stderr_of(child: Child) -> (std::process::ExitStatus, String, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Sends SIGINT to `child` once it has settled, and checks that it ends
/// at once, by the signal, printing only that it was interrupted.
fn ends_at_once_on_sigint(child: Child) {
    thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    send_signal(&child, "INT");
    let (status, stdout, stderr) = stderr_of(child);
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(status.signal(), Some(2), "{stderr}");
    assert_eq!(
        (stdout.as_str(), stderr.as_str()),
        ("", "s3wal: interrupted by SIGINT\n")
    );
}

/// Waits until `f` holds, for at most 10 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_to_a_full_stdout_names_the_stored_offset_and_exits_6() {
    let log = TestLog::new(Server::s3s(), "full-stdout");
    let output = log
        .command()
        .args(["append", "x"])
        .stdout(File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(STORED_THEN_FAILED), "{stderr}");
    assert!(
        stderr.contains("the record at offset 1 already stored"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(log.offsets(), [1]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn lines_to_a_full_stdout_name_every_record_stored_and_store_no_more() {
    let log = TestLog::new(Server::s3s(), "full-stdout-lines");
    let mut child = log
        .command()
        .args(["--json", "append", "--lines"])
        .stdin(Stdio::piped())
        .stdout(File::create("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The lines queued together are stored, then confirmed by one fence
    // check, then printed: the first print fails, and all three are named.
    child.stdin.take().unwrap().write_all(b"a\nb\nc\n").unwrap();
    let (status, _, stderr) = stderr_of(child);
    assert_eq!(status.code(), Some(STORED_THEN_FAILED), "{stderr}");
    let named = [
        r#""stored":{"count":1,"offsets":[[1,1]]}"#,
        r#""stored":{"count":2,"offsets":[[1,2]]}"#,
        r#""stored":{"count":3,"offsets":[[1,3]]}"#,
    ];
    let (stored, offsets) = match named.iter().position(|n| stderr.contains(n)) {
        Some(i) => (i + 1, (1..=i as u64 + 1).collect::<Vec<u64>>()),
        None => panic!("{stderr}"),
    };
    assert!(stderr.contains(r#""exit":6"#), "{stderr}");
    assert_eq!(
        log.offsets(),
        offsets,
        "{stored} named: nothing past them is stored"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn sigterm_during_a_put_finishes_it_then_names_the_offset() {
    let log = TestLog::new(Server::s3s(), "sigterm-put");
    let proxy = FaultProxy::start(&log.server.endpoint, |method, _| match method {
        "PUT" => Fault::Delay(Duration::from_millis(1500)),
        _ => Fault::Forward,
    });
    // The probe's PUTs are slow too: run it first, straight to the server.
    log.run(&["doctor"]).ok();
    let slow = log.via(&proxy.endpoint);
    let child = spawn(slow.command().args(["append", "x"]));
    eventually("the record's PUT", || {
        proxy.seen().iter().any(|seen| seen.method == "PUT")
    });
    send_signal(&child, "TERM");
    let (status, stdout, stderr) = stderr_of(child);
    assert_eq!(status.signal(), Some(15), "{stderr}");
    assert_eq!(stdout, "Appended record at offset: 1, data: x\n");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(
        stderr.contains("record at offset 1 already stored"),
        "{stderr}"
    );
    assert_eq!(log.offsets(), [1]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn sigint_while_waiting_for_input_ends_at_once_with_nothing_stored() {
    let log = TestLog::new(Server::s3s(), "sigint-idle");
    let mut child = spawn(
        log.command()
            .args(["append", "--lines"])
            .stdin(Stdio::piped()),
    );
    let _input = child.stdin.take().unwrap();
    ends_at_once_on_sigint(child);
    assert!(log.offsets().is_empty());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn record_from_stdin_is_shown_by_its_size_not_its_bytes() {
    let log = TestLog::new(Server::s3s(), "stdin-size");
    let run = log.run_with_stdin(&["append", "-"], b"\x00tarball\xff");
    assert_eq!(run.ok(), "Appended record at offset: 1, bytes: 9\n");
    let run = log.run_with_stdin(&["--json", "append", "-"], b"abc");
    assert_eq!(run.ok(), "{\"offset\":2,\"bytes\":3}\n");
    let run = log.run_with_stdin(&["append", "--lines"], b"one\ntwo\n");
    assert_eq!(
        run.ok(),
        "Appended record at offset: 3, bytes: 3\nAppended record at offset: 4, bytes: 3\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn idle_append_lines_leaves_the_lock_to_other_appends() {
    let log = TestLog::new(Server::s3s(), "idle-lines");
    let mut child = spawn(
        log.command()
            .args(["append", "--lines"])
            .stdin(Stdio::piped()),
    );
    let mut input = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    input.write_all(b"first\n").unwrap();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "Appended record at offset: 1, bytes: 5"
    );
    // The first append waits for more input; another one goes ahead.
    let started = Instant::now();
    log.run(&["append", "other"]).ok();
    assert!(started.elapsed() < Duration::from_secs(5));
    input.write_all(b"third\n").unwrap();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "Appended record at offset: 3, bytes: 5"
    );
    drop(input);
    assert!(child.wait().unwrap().success());
    assert_eq!(log.offsets(), [1, 2, 3]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn closed_stdout_ends_dump_quietly() {
    let log = TestLog::new(Server::s3s(), "dump-head");
    common::fill_on_disk(&log, 1..=3000);
    let mut child = spawn(log.command().arg("dump"));
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "Offset: 1, Data: r1\n");
    let (status, _, stderr) = stderr_of(child);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
}

/// `dump --follow` on a one-record log, read as `head -1` reads it: the
/// first line, then the reader gone.
fn follow_read_one_line_and_go(name: &str) -> (TestLog, std::process::Child) {
    let log = TestLog::new(Server::s3s(), name);
    append_records(&log, 1);
    let mut child = spawn(log.command().args(["dump", "--follow"]));
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "Offset: 1, Data: Record #1\n");
    (log, child)
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn closed_stdout_ends_dump_follow_quietly() {
    let (log, child) = follow_read_one_line_and_go("follow-head");
    // The reader is gone; the next record's line finds the pipe closed.
    log.run(&["append", "next"]).ok();
    let (status, _, stderr) = stderr_of(child);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn closed_stdout_ends_an_idle_dump_follow_quietly() {
    let (_log, child) = follow_read_one_line_and_go("follow-head-idle");
    // The reader is gone and no record comes: `dump --follow | head -1`.
    let started = Instant::now();
    let (status, _, stderr) = stderr_of(child);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn record_over_the_put_limit_is_refused_before_it_is_read() {
    let log = TestLog::new(Server::s3s(), "too-large");
    let path = log.workdir.join("huge");
    let file = File::create(&path).unwrap();
    // Sparse: 5 GiB less 39 bytes of data makes a 5 GiB + 1 object.
    file.set_len(5 * 1024 * 1024 * 1024 - 39).unwrap();
    let started = Instant::now();
    let output = log
        .command()
        .args(["append", "-"])
        .stdin(File::open(&path).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("too large"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(log.offsets().is_empty());
}

/// Waits for `child` and returns how it ended and its peak RSS in MiB,
/// polled from /proc while it runs (the high-water mark only grows).
fn wait_with_peak_rss(mut child: Child) -> (std::process::ExitStatus, f64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(kib) = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak_kib as f64 / 1024.0);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The peak RSS in MiB of `s3wal ARGS` run to success, stdout discarded.
fn peak_rss_of(log: &TestLog, args: &[&str]) -> f64 {
    let child = log
        .command()
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (status, peak) = wait_with_peak_rss(child);
    assert!(status.success(), "{args:?}");
    peak
}

const MIB: usize = 1024 * 1024;

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_of_a_big_record_from_a_pipe_holds_it_once() {
    let log = TestLog::new(Server::s3s(), "big-append");
    log.run(&["doctor"]).ok();
    let mut child = log
        .command()
        .args(["append", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = thread::spawn(move || input.write_all(&vec![7u8; 50 * MIB]).unwrap());
    let (status, peak) = wait_with_peak_rss(child);
    writer.join().unwrap();
    assert!(status.success());
    assert!(peak <= 60.0, "peak RSS {peak:.1} MiB for a 50 MiB record");
    let peak = peak_rss_of(&log, &["read", "1"]);
    assert!(
        peak <= 60.0,
        "peak RSS {peak:.1} MiB reading a 50 MiB record"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn dump_of_big_records_stays_within_the_byte_budget() {
    let log = TestLog::new(Server::s3s(), "big-dump");
    for n in 1..=5u64 {
        let data = vec![b'a' + n as u8; 40 * MIB];
        log.put_raw(&common::key_name(n), &s3wal::record::encode(n, &data));
    }
    let peak = peak_rss_of(&log, &["dump", "--raw"]);
    // Two records: one being written out, the next being read.
    assert!(
        peak <= 2.0 * 40.0 * 1.2,
        "peak RSS {peak:.1} MiB for 40 MiB records"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn sigint_while_waiting_for_the_lock_ends_at_once_with_nothing_stored() {
    let log = TestLog::new(Server::s3s(), "sigint-lock");
    log.run(&["append", "first"]).ok();
    let held = crate::local_lock::hold_locks(&log);
    let child = spawn(log.command().args(["append", "second"]));
    ends_at_once_on_sigint(child);
    drop(held);
    assert_eq!(log.offsets(), [1]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn an_ignored_sighup_does_not_stop_an_append() {
    use std::os::unix::process::CommandExt;
    let log = TestLog::new(Server::s3s(), "nohup");
    let mut command = log.command();
    // As `nohup s3wal append --lines` starts it.
    // SAFETY: between fork and exec, signal() only sets a disposition.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = spawn(command.args(["append", "--lines"]).stdin(Stdio::piped()));
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"before\n").unwrap();
    thread::sleep(Duration::from_millis(300));
    send_signal(&child, "HUP");
    input.write_all(b"after\n").unwrap();
    drop(input);
    let (status, stdout, stderr) = stderr_of(child);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert_eq!(log.offsets(), [1, 2]);
}
