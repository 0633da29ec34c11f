//! `--json`: one JSON object per line on stdout for every command, errors
//! as one JSON object on stderr, exit codes unchanged.

use crate::common;

use common::{Server, TestLog, fill_on_disk};

fn log(name: &str) -> TestLog {
    TestLog::new(Server::s3s(), name)
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_read_last_recover_print_json_objects() {
    let log = log("json-basic");
    assert_eq!(
        log.run(&["--json", "append", "Record #1"]).ok(),
        "{\"offset\":1,\"data\":\"Record #1\"}\n"
    );
    assert_eq!(
        log.run(&["--json", "read", "1"]).ok(),
        "{\"offset\":1,\"data\":\"Record #1\"}\n"
    );
    assert_eq!(
        log.run(&["--json", "last"]).ok(),
        "{\"offset\":1,\"data\":\"Record #1\"}\n"
    );
    assert_eq!(log.run(&["--json", "recover"]).ok(), "{\"last\":1}\n");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn data_that_is_not_utf8_goes_in_data_base64() {
    let log = log("json-binary");
    log.run_with_stdin(&["append", "-"], b"\xff\x00\xfe").ok();
    assert_eq!(
        log.run(&["--json", "read", "1"]).ok(),
        "{\"offset\":1,\"data_base64\":\"/wD+\"}\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn text_with_quotes_and_newlines_is_escaped() {
    let log = log("json-escape");
    log.run(&["append", "say \"hi\"\n\ttab"]).ok();
    assert_eq!(
        log.run(&["--json", "read", "1"]).ok(),
        "{\"offset\":1,\"data\":\"say \\\"hi\\\"\\n\\ttab\"}\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn dump_prints_one_object_per_record() {
    let log = log("json-dump");
    fill_on_disk(&log, 1..=3);
    assert_eq!(
        log.run(&["--json", "dump"]).ok(),
        "{\"offset\":1,\"data\":\"r1\"}\n{\"offset\":2,\"data\":\"r2\"}\n{\"offset\":3,\"data\":\"r3\"}\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn truncate_trim_and_stat_print_json() {
    let log = log("json-retention");
    fill_on_disk(&log, 1..=5);
    assert_eq!(
        log.run(&["--json", "trim", "2"]).ok(),
        "{\"trimmed_before\":2,\"deleted\":1}\n"
    );
    assert_eq!(
        log.run(&["--json", "truncate", "4"]).ok(),
        "{\"truncated_after\":4,\"deleted\":1}\n"
    );
    assert_eq!(
        log.run(&["--json", "stat"]).ok(),
        "{\"first\":2,\"last\":4,\"records\":3}\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn verify_and_doctor_print_json() {
    let log = log("json-verify");
    fill_on_disk(&log, [1, 3]);
    let run = log.run(&["--json", "verify"]);
    assert_eq!(run.code, 4);
    assert_eq!(
        run.out(),
        "{\"problem\":\"hole\",\"first\":2,\"last\":2}\n\
         {\"ok\":false,\"first\":1,\"last\":3,\"valid\":2,\"corrupt\":0,\"missing\":1,\"foreign\":0}\n"
    );
    let doctor = log.run(&["--json", "doctor"]).ok();
    assert_eq!(doctor.lines().count(), 10, "{doctor}");
    assert!(
        doctor.starts_with("{\"check\":\"configuration\",\"ok\":true,"),
        "{doctor}"
    );
    assert!(
        doctor.contains("\n{\"check\":\"credentials and bucket\",\"ok\":true,"),
        "{doctor}"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn errors_are_one_json_object_on_stderr_with_the_same_exit_code() {
    let log = log("json-errors");
    let run = log.run(&["--json", "read", "9"]);
    assert_eq!(run.code, 3);
    assert!(run.stdout.is_empty());
    assert_eq!(
        run.stderr,
        "{\"code\":\"not_found\",\"exit\":3,\"message\":\"no record at offset 9\"}\n"
    );
    let usage = log.run(&["--json", "read", "x"]);
    assert_eq!(usage.code, 2);
    assert!(
        usage.stderr.starts_with("{\"code\":\"usage\",\"exit\":2,"),
        "{}",
        usage.stderr
    );
}

/// The version, and the commit and target `build.rs` named (a 7-digit
/// hash from git or the source tarball's `COMMIT`, else `unknown`).
#[test]
fn version_prints_json() {
    let run = TestLog::without_server("json-version").run(&["--json", "--version"]);
    let version: serde_json::Value = serde_json::from_str(&run.ok()).unwrap();
    let commit = env!("S3WAL_COMMIT");
    assert!(
        commit == "unknown" || commit.len() == 7 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "{commit}"
    );
    assert_eq!(
        version,
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "commit": commit,
            "target": env!("S3WAL_TARGET"),
        })
    );
}

/// The rows of docs/json.md: a command line (`N` an offset, `DATA` a
/// record) and the keys each of its lines carries.
fn documented_shapes() -> Vec<(Vec<String>, Vec<String>)> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md")).unwrap();
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    doc.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let command = ticked(cells[0])[0]
                .split(' ')
                .map(|word| match word {
                    "N" => "2".to_owned(),
                    "DATA" => "x".to_owned(),
                    word => word.to_owned(),
                })
                .collect();
            (command, ticked(cells[1]))
        })
        .collect()
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn every_command_prints_the_shape_docs_json_md_documents() {
    let shapes = documented_shapes();
    assert!(shapes.len() >= 13, "{shapes:?}");
    for (i, (command, keys)) in shapes.iter().enumerate() {
        let log = log(&format!("json-shape-{i}"));
        fill_on_disk(&log, 1..=5);
        let mut args = vec!["--json"];
        args.extend(command.iter().map(String::as_str));
        let run = match command[..] {
            [ref append, ref dash] if append == "append" && dash == "-" => {
                log.run_with_stdin(&args, b"bytes")
            }
            _ => log.run(&args),
        };
        let out = run.ok();
        assert!(!out.is_empty(), "{command:?} printed nothing");
        for line in out.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let found: Vec<&String> = value.as_object().unwrap().keys().collect();
            let mut found: Vec<&str> = found.into_iter().map(String::as_str).collect();
            let mut documented: Vec<&str> = keys.iter().map(String::as_str).collect();
            found.sort_unstable();
            documented.sort_unstable();
            assert_eq!(found, documented, "{command:?}: {line}");
        }
    }
}
