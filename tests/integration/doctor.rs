//! `doctor`, and the If-None-Match probe that guards every append.

use crate::common;

use common::proxy::{Fault, FaultProxy};
use common::{Server, TestLog, request_counts};

/// A log reached through a proxy that drops `If-None-Match`, as a store
/// that silently overwrites would behave.
fn unconditional_store(name: &str) -> (TestLog, FaultProxy) {
    let log = TestLog::new(Server::s3s(), name);
    let proxy = FaultProxy::start(&log.server.endpoint, |_, _| Fault::Strip("If-None-Match"));
    (log.via(&proxy.endpoint), proxy)
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn doctor_passes_on_a_store_that_enforces_if_none_match() {
    let out = TestLog::new(Server::s3s(), "doctor-ok")
        .run(&["doctor"])
        .ok();
    let checks: Vec<&str> = out.lines().map(|l| l.split(": ").next().unwrap()).collect();
    assert_eq!(
        checks,
        [
            "configuration",
            "credentials and bucket",
            "clock",
            "list (s3:ListBucket)",
            "put (s3:PutObject)",
            "conditional PUT",
            "get (s3:GetObject)",
            "delete (s3:DeleteObject)",
            "presigned expiry",
            "fences",
        ],
        "{out}"
    );
    assert!(out.lines().all(|l| l.contains(": ok")), "{out}");
}

/// moto carries out requests past their presigned expiry: the leases of
/// fences are not enforced there, and doctor says what that means.
#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn doctor_says_when_the_store_carries_out_expired_requests() {
    let run = TestLog::new(Server::moto(), "doctor-moto").run(&["doctor"]);
    let out = run.out();
    assert_eq!(run.code, 1, "{out}");
    let problems: Vec<&str> = out
        .lines()
        .filter(|line| line.contains(": PROBLEM: "))
        .collect();
    assert_eq!(problems.len(), 1, "{out}");
    assert!(
        problems[0].starts_with("presigned expiry: PROBLEM: "),
        "{out}"
    );
    assert!(problems[0].contains("--allow-unsafe-takeover"), "{out}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn doctor_shows_each_setting_with_its_source_and_no_secret() {
    let log = TestLog::new(Server::s3s(), "doctor-config");
    let out = log.run(&["--retries", "3", "doctor"]).ok();
    let line = out.lines().next().unwrap();
    for shown in [
        format!("bucket {} (env AWS_BUCKET_NAME)", log.server.bucket),
        format!(
            "endpoint {}/ (env AWS_ENDPOINT_URL)",
            log.server.endpoint.trim_end_matches('/')
        ),
        "region us-east-1 (default)".to_owned(),
        "(env AWS_ACCESS_KEY_ID)".to_owned(),
        "retries 3 (--retries)".to_owned(),
    ] {
        assert!(line.contains(&shown), "{shown:?} not in {line}");
    }
    assert!(!line.contains(&log.server.secret_key), "{line}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn doctor_passes_on_rgw() {
    TestLog::new(Server::rgw(), "doctor-rgw")
        .run(&["doctor"])
        .ok();
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn doctor_reports_a_store_that_ignores_if_none_match() {
    let (log, _proxy) = unconditional_store("doctor-unsafe");
    let run = log.run(&["doctor"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.out()
            .contains("conditional PUT: PROBLEM: the store overwrote"),
        "{}",
        run.out()
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_refuses_a_store_that_ignores_if_none_match() {
    let (log, _proxy) = unconditional_store("append-unsafe");
    log.run(&["append", "x"]).fails(1, "refusing to append");
    assert_eq!(log.offsets(), Vec::<u64>::new());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn explicit_override_appends_on_such_a_store() {
    let (log, _proxy) = unconditional_store("append-override");
    assert_eq!(
        log.run(&["--allow-unsafe-store", "append", "x"]).ok(),
        "Appended record at offset: 1, data: x\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn doctor_reports_bad_credentials() {
    let log = TestLog::new(Server::s3s(), "doctor-403");
    let mut command = log.command();
    command.env("AWS_SECRET_ACCESS_KEY", "wrong").arg("doctor");
    let run = common::Run::of(&mut command);
    assert_eq!(run.code, 1);
    assert!(
        run.out()
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("credentials and bucket: PROBLEM:")),
        "{}",
        run.out()
    );
    assert!(run.out().contains("HTTP 403"), "{}", run.out());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn the_probe_runs_once_per_machine_and_log() {
    let log = TestLog::new(Server::s3s(), "probe-once");
    let first = log.run(&["-v", "append", "a"]);
    first.ok();
    // Two for the probe, the record, and the store hint of the new log.
    assert_eq!(request_counts(&first)["PutObject"], 4, "{}", first.stderr);
    let second = log.run(&["-v", "append", "b"]);
    second.ok();
    assert_eq!(request_counts(&second)["PutObject"], 1, "{}", second.stderr);
    // The scratch key is gone; two records and the store hint are left.
    assert_eq!(log.keys().len(), 3);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn credentials_that_cannot_delete_can_still_append() {
    let log = TestLog::new(Server::s3s(), "no-delete");
    let proxy = FaultProxy::start(&log.server.endpoint, |method, _| match method {
        "POST" => Fault::Answer(403, "AccessDenied"),
        _ => Fault::Forward,
    });
    let appender = log.via(&proxy.endpoint);
    appender.run(&["append", "a"]).ok();
    appender.run(&["append", "b"]).ok();
    // The probe ran once; its scratch key stayed, beside the store hint.
    assert_eq!(log.offsets(), [1, 2]);
    assert_eq!(log.keys().len(), 4);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn doctor_names_s3_get_object_when_reads_are_denied() {
    let log = TestLog::new(Server::s3s(), "doctor-no-get");
    let proxy = FaultProxy::start(&log.server.endpoint, |method, path| {
        match (method, path.contains(".s3wal-probe-")) {
            ("HEAD", true) => Fault::Raw(403, b""),
            ("GET", true) => Fault::Answer(403, "AccessDenied"),
            _ => Fault::Forward,
        }
    });
    let run = log.via(&proxy.endpoint).run(&["doctor"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let out = run.out();
    let problems: Vec<&str> = out.lines().filter(|l| l.contains("PROBLEM")).collect();
    assert_eq!(problems.len(), 1, "{out}");
    assert!(
        problems[0].starts_with("get (s3:GetObject): PROBLEM: HeadObject"),
        "{out}"
    );
    assert!(
        problems[0].contains("lack the s3:GetObject permission"),
        "{out}"
    );
}
