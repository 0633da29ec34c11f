//! Bad input gets one `s3wal: ` line on stderr and a documented exit code.

use crate::common;

use common::{Run, Server, TestLog};

fn log(name: &str) -> TestLog {
    TestLog::new(Server::s3s(), name)
}

#[test]
fn version_prints_the_crate_version_commit_and_target() {
    let expected = format!(
        "s3wal {} (commit {}, {})\n",
        env!("CARGO_PKG_VERSION"),
        env!("S3WAL_COMMIT"),
        env!("S3WAL_TARGET")
    );
    for flag in ["--version", "-V"] {
        let run = TestLog::without_server("version").run(&[flag]);
        assert_eq!(run.ok(), expected);
    }
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let help = TestLog::without_server("help").run(&["--help"]).ok();
    for needle in [
        "recover",
        "append",
        "read",
        "last",
        "truncate",
        "Error codes:",
        "5 gave up, nothing done",
        "7 a truncate or trim lost its fence",
    ] {
        assert!(
            help.contains(needle),
            "{needle:?} missing from help:\n{help}"
        );
    }
}

#[test]
fn no_command_is_a_usage_error() {
    TestLog::without_server("no-command")
        .run(&[])
        .fails(2, "no command");
}

#[test]
fn unknown_command_is_a_usage_error() {
    TestLog::without_server("unknown")
        .run(&["frobnicate"])
        .fails(2, "frobnicate");
}

#[test]
fn missing_offset_is_a_usage_error() {
    TestLog::without_server("missing-offset")
        .run(&["read"])
        .fails(2, "offset");
}

#[test]
fn bad_offsets_are_usage_errors() {
    let log = TestLog::without_server("bad-offsets");
    for bad in ["0", "abc", "1.5", "18446744073709551616", " 1", "+1", ""] {
        log.run(&["read", bad])
            .fails(2, "offset must be a whole number");
    }
    log.run(&["read", "-1"]).fails(2, "-1");
    log.run(&["truncate", "x"]).fails(2, "from 0");
}

#[test]
fn missing_bucket_setting_is_a_config_error() {
    let mut command = TestLog::without_server("no-bucket").command();
    command.env_remove("AWS_BUCKET_NAME").arg("recover");
    Run::of(&mut command).fails(1, "no bucket");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn bucket_that_does_not_exist_is_a_failure_not_an_empty_log() {
    let log = log("no-such-bucket");
    // s3s-fs answers a GET in a missing bucket with NoSuchKey and creates a
    // bucket on PUT, so `read` and `append` of a missing bucket are tested
    // on RGW (rgw_races.rs); these only list.
    for command in [&["last"][..], &["recover"]] {
        let args = [&["--bucket", "s3wal-no-such-bucket"][..], command].concat();
        log.run(&args).fails(1, "NoSuchBucket");
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn wrong_secret_is_a_403_failure_that_never_shows_the_secret() {
    let log = log("wrong-secret");
    let output = log
        .command()
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-42")
        .args(["-v", "append", "x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    assert!(!stderr.contains("wrong-secret-value-42"), "{stderr}");
    assert!(!stderr.contains("X-Amz-Signature"), "{stderr}");
}

#[test]
fn unreachable_endpoint_is_a_failure() {
    TestLog::without_server("unreachable")
        .run(&[
            "--endpoint",
            "http://127.0.0.1:9",
            "--retries",
            "1",
            "recover",
        ])
        .fails(1, "refused the connection");
}

#[test]
fn endpoint_that_is_not_a_url_is_a_config_error() {
    TestLog::without_server("bad-endpoint")
        .run(&["--endpoint", "ftp://x", "recover"])
        .fails(1, "endpoint");
}

#[test]
fn prefix_with_dot_segments_is_refused() {
    TestLog::without_server("dot-prefix")
        .run(&["--prefix", "a/../b", "recover"])
        .fails(1, "'.' or '..'");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn flags_beat_the_environment_and_dotenv_fills_gaps() {
    let log = log("dotenv");
    std::fs::write(
        log.workdir.join(".env"),
        format!(
            "AWS_BUCKET_NAME=from-dotenv\nAWS_PREFIX={}/from-dotenv\n",
            log.prefix
        ),
    )
    .unwrap();
    let run = log
        .command()
        .env_remove("AWS_PREFIX")
        .args(["append", "x"])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The bucket came from the environment (the .env one does not exist);
    // the prefix, unset in the environment, came from .env.
    let nested = TestLog {
        prefix: format!("{}/from-dotenv", log.prefix),
        ..log.clone()
    };
    assert_eq!(nested.offsets(), [1]);
    let flagged = format!("{}/from-flag", log.prefix);
    log.run(&["--prefix", &flagged, "append", "y"]).ok();
    let flagged = TestLog {
        prefix: flagged,
        ..log.clone()
    };
    assert_eq!(flagged.offsets(), [1]);
}

#[test]
fn non_utf8_argument_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let mut command = TestLog::without_server("non-utf8").command();
    command
        .arg("append")
        .arg(std::ffi::OsStr::from_bytes(b"\xff"));
    Run::of(&mut command).fails(2, "pass binary data with `append -`");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_after_the_highest_possible_offset_reports_a_full_log() {
    let log = log("full");
    log.put_raw(
        &common::key_name(u64::MAX),
        &s3wal::record::encode(u64::MAX, b"last"),
    );
    log.run(&["append", "x"]).fails(1, "the log is full");
}
