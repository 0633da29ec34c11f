//! The bad-input catalogue: every case gets one `s3wal: ` line on stderr,
//! nothing on stdout, the documented exit code, and no panic.

use crate::common;

use std::time::Duration;

use common::proxy::{Fault, FaultProxy};
use common::{Run, Server, TestLog, key_name};

/// One test per case: `name: exit code, text the error line contains,
/// |log| how to produce the run`, on a log of no server (the cases that
/// end before any request, or whose answers a proxy plays) or of s3s-fs.
macro_rules! catalogue {
    (needs no server: $($name:ident: $code:expr, $needle:expr, |$log:ident| $run:expr;)*) => {$(
        #[test]
        fn $name() {
            let $log = TestLog::without_server(stringify!($name));
            check($run, $code, $needle);
        }
    )*};
    (needs s3s-fs: $($name:ident: $code:expr, $needle:expr, |$log:ident| $run:expr;)*) => {$(
        #[test]
        #[ignore = "needs the S3 servers that `make test` starts"]
        fn $name() {
            let $log = TestLog::new(Server::s3s(), stringify!($name));
            check($run, $code, $needle);
        }
    )*};
}

/// A case of the catalogue: its exit code and one error line with
/// `needle`, and no panic.
#[track_caller]
fn check(run: Run, code: i32, needle: &str) {
    run.fails(code, needle);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// Runs `args` with the environment changed by `env` (value `None` unsets).
fn with_env(log: &TestLog, env: &[(&str, Option<&str>)], args: &[&str]) -> Run {
    let mut command = log.command();
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    Run::of(command.args(args))
}

/// Runs `args` through a proxy that answers every request per `fault`.
fn through(log: &TestLog, fault: Fault, args: &[&str]) -> Run {
    let proxy = FaultProxy::start(&log.server.endpoint, move |_, _| fault);
    log.via(&proxy.endpoint).run(args)
}

/// Runs `args` through a proxy that answers GETs of records per `fault`.
fn record_gets_answered(log: &TestLog, fault: Fault, args: &[&str]) -> Run {
    let proxy = FaultProxy::start(&log.server.endpoint, move |method, path| {
        match method == "GET" && path.contains("/0000") {
            true => fault,
            false => Fault::Forward,
        }
    });
    log.via(&proxy.endpoint).run(args)
}

/// An endpoint whose host name cannot resolve, and fails to without a
/// packet sent: its 64-character label is longer than DNS allows, so the
/// system's resolver refuses it before asking any server (a plain
/// `.invalid` name would still be sent to the configured DNS server).
fn unresolvable_endpoint() -> String {
    format!("http://{}.invalid:9000", "a".repeat(64))
}

/// Uploads the fixture `name` at offset 1 and reads it.
fn read_fixture(log: &TestLog, name: &str) -> Run {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    log.put_raw(&key_name(1), &std::fs::read(path).unwrap());
    log.run(&["read", "1"])
}

catalogue! {
    needs no server:
    no_command: 2, "no command", |log| log.run(&[]);
    unknown_command: 2, "frob", |log| log.run(&["frob"]);
    unknown_flag: 2, "--frob", |log| log.run(&["--frob", "recover"]);
    read_without_offset: 2, "offset", |log| log.run(&["read"]);
    read_two_offsets: 2, "2", |log| log.run(&["read", "1", "2"]);
    offset_zero: 2, "from 1", |log| log.run(&["read", "0"]);
    negative_offset: 2, "-1", |log| log.run(&["read", "-1"]);
    offset_not_a_number: 2, "not \"abc\"", |log| log.run(&["read", "abc"]);
    offset_with_a_fraction: 2, "whole number", |log| log.run(&["read", "1.5"]);
    offset_beyond_u64: 2, "18446744073709551616", |log| log.run(&["read", "18446744073709551616"]);
    offset_with_a_plus_sign: 2, "whole number", |log| log.run(&["read", "+1"]);
    empty_offset: 2, "whole number", |log| log.run(&["read", ""]);
    truncate_offset_not_a_number: 2, "from 0", |log| log.run(&["truncate", "x"]);
    truncate_negative_offset: 2, "-5", |log| log.run(&["truncate", "-5"]);
    dump_from_zero: 2, "whole number", |log| log.run(&["dump", "--from", "0"]);
    dump_to_not_a_number: 2, "whole number", |log| log.run(&["dump", "--to", "end"]);
    verify_from_not_a_number: 2, "whole number", |log| log.run(&["verify", "--from", "x"]);
    append_without_data: 2, "either data", |log| log.run(&["append"]);
    append_data_and_lines: 2, "either data", |log| log.run(&["append", "--lines", "x"]);
    bad_arguments_are_usage_errors_before_configuration: 2, "either data", |log| {
        with_env(&log, &[("AWS_BUCKET_NAME", None)], &["append"])
    };
    zero_timeout: 2, "--timeout", |log| log.run(&["--timeout", "0", "recover"]);
    zero_parallel: 2, "--parallel must be from 1 to 256, not 0", |log| log.run(&["--parallel", "0", "dump"]);
    too_much_parallel: 2, "not 257", |log| log.run(&["--parallel", "257", "verify"]);
    parallel_not_a_number: 2, "parallel", |log| log.run(&["--parallel", "many", "dump"]);
    bad_parallel_is_a_usage_error_before_configuration: 2, "--parallel", |log| {
        with_env(&log, &[("AWS_BUCKET_NAME", None)], &["--parallel", "0", "dump"])
    };
    retries_not_a_number: 2, "retries", |log| log.run(&["--retries", "many", "recover"]);
    non_utf8_argument: 2, "append -", |log| {
        use std::os::unix::ffi::OsStrExt;
        let mut command = log.command();
        command.arg("append").arg(std::ffi::OsStr::from_bytes(b"\xff"));
        Run::of(&mut command)
    };
    no_bucket: 1, "no bucket", |log| with_env(&log, &[("AWS_BUCKET_NAME", None)], &["recover"]);
    no_prefix: 1, "prefix is empty", |log| with_env(&log, &[("AWS_PREFIX", None)], &["recover"]);
    prefix_of_slashes: 1, "prefix is empty", |log| log.run(&["--prefix", "///", "recover"]);
    prefix_with_dot_dot: 1, "'.' or '..'", |log| log.run(&["--prefix", "a/../b", "recover"]);
    no_secret_key: 1, "without its pair", |log| {
        with_env(&log, &[("AWS_SECRET_ACCESS_KEY", None)], &["recover"])
    };
    endpoint_not_http: 1, "http:// or https://", |log| log.run(&["--endpoint", "ftp://h", "recover"]);
    endpoint_not_a_url: 1, "is not a URL", |log| log.run(&["--endpoint", "not a url", "recover"]);
    endpoint_without_a_scheme: 1, "has no scheme: write http://minio.local:9000 or https://minio.local:9000", |log| {
        log.run(&["--endpoint", "minio.local:9000", "recover"])
    };
    bucket_given_as_a_location: 1, "write --bucket logs, or the whole location as --prefix s3://logs/wal", |log| {
        log.run(&["--bucket", "s3://logs/wal", "recover"])
    };
    prefix_naming_another_bucket: 1, "names bucket \"other\", but the bucket is", |log| {
        log.run(&["--prefix", "s3://other/wal", "recover"])
    };
    endpoint_with_an_international_host_name: 1, "invalid international domain name", |log| {
        log.run(&["--endpoint", "http://bücher.example", "recover"])
    };
    endpoint_with_password: 1, "user name or password", |log| {
        log.run(&["--endpoint", "http://u:p@127.0.0.1:1", "recover"])
    };
    region_not_a_region: 1, "region", |log| log.run(&["--region", "us east", "recover"]);
    unknown_endpoint_host: 1, "cannot resolve the host name of", |log| {
        log.run(&["--endpoint", &unresolvable_endpoint(), "recover"])
    };
    endpoint_refusing_connections: 1, "127.0.0.1:9 refused the connection", |log| {
        log.run(&["--endpoint", "http://127.0.0.1:9", "--retries", "0", "recover"])
    };
    no_home_and_no_lock_dir: 1, "no lock folder: HOME is not set to an absolute path; set S3WAL_LOCK_DIR", |log| {
        let unset = [("HOME", None), ("S3WAL_LOCK_DIR", None), ("XDG_STATE_HOME", None)];
        with_env(&log, &unset, &["append", "x"])
    };
    lock_folder_writable_by_others: 1, "is writable by group or others (mode 777)", |log| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&log.lock_dir).unwrap();
        std::fs::set_permissions(&log.lock_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        log.run(&["append", "x"])
    };
    unreadable_dotenv: 1, "cannot read .env", |log| {
        std::fs::create_dir(log.workdir.join(".env")).unwrap();
        log.run(&["recover"])
    };
    malformed_listing_xml: 1, "malformed XML", |log| {
        through(&log, Fault::Raw(200, b"<ListBucketResult><Contents><Key>"), &["recover"])
    };
    empty_listing_body: 1, "not a ListBucketResult", |log| {
        through(&log, Fault::Raw(200, b""), &["recover"])
    };
    html_404_is_not_an_s3_endpoint: 1, "answered HTTP 404 with a body that is not S3's XML (an HTML page): is --endpoint an S3 API endpoint?", |log| {
        through(&log, Fault::Raw(404, b"<!DOCTYPE html><html>Not Found</html>"), &["recover"])
    };
    prefix_whose_keys_pass_1024_bytes: 1, "S3's 1024-byte key limit; use at most 954 bytes", |log| {
        log.run(&["--prefix", &"p".repeat(955), "recover"])
    };
    html_error_page: 1, "HTTP 502", |log| {
        through(&log, Fault::Raw(502, b"<html>Bad Gateway</html>"), &["--retries", "0", "recover"])
    };
}

catalogue! {
    needs s3s-fs:
    missing_bucket: 1, "NoSuchBucket", |log| log.run(&["--bucket", "s3wal-missing", "last"]);
    wrong_secret: 1, "HTTP 403", |log| {
        with_env(&log, &[("AWS_SECRET_ACCESS_KEY", Some("wrong"))], &["recover"])
    };
    missing_record: 3, "no record at offset 7", |log| log.run(&["read", "7"]);
    empty_log_has_no_last: 3, "WAL is empty", |log| log.run(&["last"]);
    foreign_key_is_not_a_record: 3, "no record at offset 99", |log| {
        log.put_raw("99", b"foreign");
        log.run(&["read", "99"])
    };
    fixture_flipped_data_bit: 4, "offset 1 is corrupt: checksum mismatch", |log| {
        read_fixture(&log, "broken-data-bit.record")
    };
    fixture_flipped_checksum_bit: 4, "checksum mismatch", |log| {
        read_fixture(&log, "broken-checksum-bit.record")
    };
    fixture_flipped_offset_bit: 4, "offset mismatch", |log| {
        read_fixture(&log, "broken-offset-bit.record")
    };
    fixture_39_bytes: 4, "too short: 39 bytes", |log| read_fixture(&log, "broken-39-bytes.record");
    fixture_of_another_offset: 4, "offset 1 is corrupt: offset mismatch", |log| {
        log.put_raw(&key_name(1), &s3wal::record::encode(6, b"six"));
        log.run(&["read", "1"])
    };
    empty_record_body: 4, "too short: 0 bytes", |log| {
        log.run(&["append", "x"]).ok();
        record_gets_answered(&log, Fault::Raw(200, b""), &["read", "1"])
    };
    truncated_record_body: 1, "GetObject", |log| {
        log.run(&["append", "x"]).ok();
        record_gets_answered(&log, Fault::Truncated(200, b"\0\0\0"), &["--retries", "0", "read", "1"])
    };
}

#[test]
fn an_unknown_host_fails_at_once_naming_it() {
    let log = TestLog::without_server("unknown-host");
    let args = ["--endpoint", &unresolvable_endpoint(), "recover"];
    log.fails_within(
        Duration::from_secs(1),
        &args,
        "aaaa.invalid:9000 (failed to lookup address information: Name or service not known)",
    );
}

#[test]
fn a_refused_connection_is_retried_for_a_few_seconds_only() {
    let log = TestLog::without_server("refused");
    let args = ["--endpoint", "http://127.0.0.1:9", "recover"];
    log.fails_within(Duration::from_secs(4), &args, "retried for 3 s at most");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn huge_record_from_stdin_round_trips() {
    let log = TestLog::new(Server::s3s(), "huge-record");
    let data: Vec<u8> = (0..12 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    log.run_with_stdin(&["append", "-"], &data);
    let mut expected = b"Offset: 1, Data: ".to_vec();
    expected.extend_from_slice(&data);
    expected.push(b'\n');
    let run = log.run(&["read", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout == expected, "12 MiB record did not round-trip");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn huge_lines_input_appends_every_line_in_order() {
    let log = TestLog::new(Server::s3s(), "huge-lines");
    let input: String = (1..=3000).map(|i| format!("line {i}\n")).collect();
    let run = log.run_with_stdin(&["append", "--lines"], input.as_bytes());
    let out = run.ok();
    assert_eq!(out.lines().count(), 3000);
    assert_eq!(
        out.lines().last(),
        Some("Appended record at offset: 3000, bytes: 9")
    );
    assert_eq!(log.offsets().len(), 3000);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn endpoint_with_trailing_slashes_reaches_the_same_log() {
    let log = TestLog::new(Server::s3s(), "endpoint-slashes");
    log.run(&["append", "x"]).ok();
    let slashed = log.via(&format!("{}//", log.server.endpoint));
    assert_eq!(
        slashed.run(&["last"]).ok(),
        "Last record: offset=1, data=x\n"
    );
}

/// The test servers cannot store 1024-byte keys (s3s-fs makes file
/// names of them, RGW's object names are capped lower), so a proxy plays
/// a store whose key limit is exactly the length of a record key.
#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn scratch_key_fits_wherever_a_record_key_fits() {
    let log = TestLog::new(Server::s3s(), "key-limit");
    let limit = format!("/{}/{}", log.server.bucket, log.key(&key_name(1))).len();
    let proxy = FaultProxy::start(&log.server.endpoint, move |_, path| {
        match path.len() > limit {
            true => Fault::Answer(400, "KeyTooLongError"),
            false => Fault::Forward,
        }
    });
    let limited = log.via(&proxy.endpoint);
    let doctor = limited.run(&["doctor"]);
    assert_eq!(doctor.code, 0, "{}", doctor.out());
    limited.run(&["append", "x"]).ok();
    assert_eq!(limited.run(&["read", "1"]).ok(), "Offset: 1, Data: x\n");
}
