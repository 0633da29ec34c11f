//! Secrets, session tokens and signatures never reach stdout or stderr,
//! whatever the command does, verbose or not, failing or not.

use crate::common;

use common::proxy::{Fault, FaultProxy};
use common::{Run, Server, TestLog};

const SECRET: &str = "s3wal-secret-that-must-not-leak";
const TOKEN: &str = "s3wal-session-token-that-must-not-leak";

/// Runs `args` with the secret and token set, checks both streams, and
/// returns the exit code.
fn assert_nothing_leaks(log: &TestLog, secret: &str, args: &[&str]) -> i32 {
    let mut command = log.command();
    command
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .args(args);
    let run = Run::of(&mut command);
    let both = format!("{}\n{}", run.out(), run.stderr);
    for needle in [
        SECRET,
        TOKEN,
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
    ] {
        assert!(!both.contains(needle), "{args:?} printed {needle}:\n{both}");
    }
    run.code
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn failing_and_verbose_commands_print_no_secret() {
    let log = TestLog::new(Server::s3s(), "secrets");
    let proxy = FaultProxy::start(&log.server.endpoint, |_, _| Fault::Reset);
    let reset = log.via(&proxy.endpoint);
    let cases: [(&TestLog, &str, &[&str]); 9] = [
        (&log, SECRET, &["-v", "append", "x"]),
        (&log, SECRET, &["-v", "doctor"]),
        (&log, SECRET, &["-v", "read", "1"]),
        (&log, SECRET, &["-v", "dump"]),
        (&log, SECRET, &["-v", "--bucket", "s3wal-missing", "last"]),
        (
            &log,
            SECRET,
            &[
                "-v",
                "--endpoint",
                "http://127.0.0.1:9",
                "--retries",
                "0",
                "recover",
            ],
        ),
        (
            &log,
            SECRET,
            &["-v", "--endpoint", "http://u:p@h", "recover"],
        ),
        (&reset, SECRET, &["-v", "--retries", "1", "append", "y"]),
        (&log, "not-the-real-secret", &["-v", "truncate", "0"]),
    ];
    for (log, secret, args) in cases {
        assert_nothing_leaks(log, secret, args);
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn successful_verbose_commands_print_no_secret() {
    let log = TestLog::new(Server::s3s(), "secrets-ok");
    let secret = log.server.secret_key.clone();
    for args in [
        &["-v", "append", "x"][..],
        &["-v", "read", "1"],
        &["-v", "dump"],
    ] {
        let run = log.run(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr.contains("[s3wal] "),
            "not verbose: {}",
            run.stderr
        );
        let both = format!("{}\n{}", run.out(), run.stderr);
        for needle in [secret.as_str(), "X-Amz-Signature", "X-Amz-Credential"] {
            assert!(!both.contains(needle), "{args:?} printed {needle}:\n{both}");
        }
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_wrong_secret_is_not_echoed_either() {
    let log = TestLog::new(Server::s3s(), "secrets-wrong");
    let code = assert_nothing_leaks(&log, SECRET, &["-v", "--retries", "0", "append", "x"]);
    assert_eq!(code, 1);
}
