//! What a script or cron job relies on: global options wherever they are
//! written, aws CLI's spelling of the endpoint, a quiet mode, and a
//! suggestion for a mistyped command.

use crate::common;

use common::{Server, TestLog, fill_on_disk, request_counts};

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn global_options_work_after_the_command_too() {
    let log = TestLog::new(Server::s3s(), "options-anywhere");
    fill_on_disk(&log, 1..=3);
    assert_eq!(log.run(&["recover", "--json"]).ok(), "{\"last\":3}\n");
    let read = log.run(&["read", "1", "-v"]);
    assert_eq!(read.ok(), "Offset: 1, Data: r1\n");
    assert_eq!(request_counts(&read)["GetObject"], 1);
    assert_eq!(
        log.run(&["dump", "--from", "2", "--json", "--to", "2"])
            .ok(),
        "{\"offset\":2,\"data\":\"r2\"}\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn data_after_a_double_dash_is_data_even_when_it_looks_like_an_option() {
    let log = TestLog::new(Server::s3s(), "options-after-dashes");
    assert_eq!(
        log.run(&["append", "--", "--json"]).ok(),
        "Appended record at offset: 1, data: --json\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn endpoint_url_is_the_aws_cli_spelling_of_endpoint() {
    let log = TestLog::new(Server::s3s(), "endpoint-url");
    fill_on_disk(&log, 1..=2);
    let run = log
        .command()
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .args(["--endpoint-url", &log.server.endpoint, "recover"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "Last offset: 2\n");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn quiet_prints_nothing_for_what_was_stored_or_deleted_and_still_every_error() {
    let log = TestLog::new(Server::s3s(), "quiet");
    assert_eq!(log.run(&["-q", "append", "a"]).ok(), "");
    assert_eq!(log.run(&["append", "b", "--quiet"]).ok(), "");
    assert_eq!(log.run(&["-q", "truncate", "1"]).ok(), "");
    assert_eq!(log.offsets(), [1]);
    assert_eq!(
        log.run(&["-q", "read", "1"]).ok(),
        "Offset: 1, Data: a\n",
        "what was asked for is printed"
    );
    log.run(&["-q", "read", "9"])
        .fails(3, "no record at offset 9");
}

#[test]
fn a_mistyped_command_gets_the_command_it_is_closest_to() {
    let log = TestLog::without_server("typo");
    log.run(&["apend", "x"])
        .fails(2, "Unrecognized command: apend; did you mean `append`?");
    log.run(&["stats"]).fails(2, "did you mean `stat`?");
    log.run(&["frobnicate"])
        .fails(2, "Unrecognized command: frobnicate (see s3wal --help)");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_binary_record_reads_back_byte_for_byte_with_raw_and_dumps_safely_as_json() {
    let log = TestLog::new(Server::s3s(), "binary");
    let data: Vec<u8> = (0..=255).chain([b'\n', 0, b'\n']).collect();
    log.run_with_stdin(&["append", "-"], &data).ok();
    let read = log.command().args(["read", "1", "--raw"]).output().unwrap();
    assert_eq!(read.status.code(), Some(0));
    assert_eq!(read.stdout, data, "nothing added, nothing lost");
    let dump = log.run(&["dump", "--json"]).ok();
    let line: serde_json::Value = serde_json::from_str(dump.trim_end()).unwrap();
    let encoded = line["data_base64"].as_str().unwrap();
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(decoded, data);
}

#[test]
fn raw_with_json_is_a_usage_error() {
    let log = TestLog::without_server("raw-json");
    for args in [
        &["--json", "dump", "--raw"][..],
        &["read", "1", "--raw", "--json"],
    ] {
        let run = log.run(args);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(
            run.stderr.contains("--raw and --json do not go together"),
            "{}",
            run.stderr
        );
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn an_s3_url_names_the_bucket_and_the_prefix() {
    let log = TestLog::new(Server::s3s(), "s3-url");
    fill_on_disk(&log, 1..=4);
    let location = format!("s3://{}/{}", log.server.bucket, log.prefix);
    let run = |extra: &[&str]| {
        let mut command = log.command();
        command
            .env_remove("AWS_BUCKET_NAME")
            .env_remove("AWS_PREFIX");
        common::Run::of(command.args(extra))
    };
    assert_eq!(
        run(&["--prefix", &location, "recover"]).ok(),
        "Last offset: 4\n"
    );
    assert_eq!(
        run(&[
            "--bucket",
            &log.server.bucket,
            "--prefix",
            &location,
            "read",
            "2"
        ])
        .ok(),
        "Offset: 2, Data: r2\n",
        "the same bucket twice is no conflict"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn reading_needs_no_home_and_no_lock_folder() {
    let log = TestLog::new(Server::s3s(), "no-home");
    fill_on_disk(&log, 1..=3);
    let homeless = |args: &[&str]| {
        let mut command = log.command();
        for name in ["HOME", "S3WAL_LOCK_DIR", "XDG_STATE_HOME"] {
            command.env_remove(name);
        }
        common::Run::of(command.args(args))
    };
    assert_eq!(homeless(&["recover"]).ok(), "Last offset: 3\n");
    assert_eq!(homeless(&["last"]).ok(), "Last record: offset=3, data=r3\n");
    assert_eq!(homeless(&["dump"]).ok().lines().count(), 3);
    assert!(homeless(&["verify"]).ok().contains("3 valid"));
    homeless(&["append", "x"]).fails(1, "no lock folder: HOME is not set");
    assert!(!log.workdir.join(".tmp").exists());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_wrong_secret_key_and_a_missing_bucket_say_what_to_fix() {
    for server in [Server::s3s(), Server::rgw()] {
        let log = TestLog::new(server, "wrong-keys");
        let endpoint = log.server.endpoint.clone();
        let run = |env: (&str, &str)| {
            let mut command = log.command();
            common::Run::of(
                command
                    .env(env.0, env.1)
                    .args(["--retries", "0", "recover"]),
            )
        };
        run(("AWS_SECRET_ACCESS_KEY", "not-the-secret"))
            .fails(1, "the secret access key is wrong for this access key ID");
        run(("AWS_BUCKET_NAME", "no-such-bucket-here")).fails(
            1,
            &format!("there is no bucket no-such-bucket-here at {endpoint}"),
        );
    }
}

/// Runs `s3wal ARGS > OUT` with a terminal as stderr (util-linux's
/// `script`), and returns what the terminal showed.
fn on_a_terminal(log: &TestLog, args: &[&str], out: &std::path::Path) -> String {
    let binary = env!("CARGO_BIN_EXE_s3wal");
    let line = format!("{binary} {} > {}", args.join(" "), out.display());
    let mut command = log.command();
    command.args(["-qec", &line, "/dev/null"]);
    let run = std::process::Command::new("script")
        .args(command.get_args())
        .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(&log.workdir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&run.stdout).into_owned()
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn long_work_shows_progress_on_a_terminal_and_never_in_a_pipe() {
    let log = TestLog::new(Server::s3s(), "progress");
    fill_on_disk(&log, 1..=1500);
    let out = log.workdir.join("dumped");
    let shown = on_a_terminal(&log, &["dump"], &out);
    assert!(shown.contains("[s3wal] dumped 1500 of 1500"), "{shown:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 1500);
    let shown = on_a_terminal(&log, &["truncate", "100"], &out);
    assert!(shown.contains("[s3wal] deleted 1400 of 1400"), "{shown:?}");
    let piped = log.run(&["trim", "50"]);
    assert_eq!(
        piped.ok(),
        "Trimmed WAL before offset 50\nDeleted 49 records\n"
    );
    assert_eq!(piped.stderr, "", "no progress in a pipe");
}
