//! Objects written in the seed's format by an independent route
//! (`fixtures/make_fixtures.py`), uploaded with a plain PUT and read back.

use crate::common;

use std::path::Path;

use common::{Server, TestLog, key_name};

struct Fixture {
    file: String,
    offset: u64,
    expected: String,
    body: Vec<u8>,
}

fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).unwrap();
    manifest
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            Fixture {
                file: fields[0].to_owned(),
                offset: fields[1].parse().unwrap(),
                expected: fields[2].to_owned(),
                body: std::fs::read(dir.join(fields[0])).unwrap(),
            }
        })
        .collect()
}

/// Uploads `fixture` alone into a fresh log and reads it with the binary.
fn read_uploaded(fixture: &Fixture) -> common::Run {
    let log = TestLog::new(Server::s3s(), "fixture");
    log.put_raw(&key_name(fixture.offset), &fixture.body);
    log.run(&["read", &fixture.offset.to_string()])
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn manifest_has_every_kind_the_format_needs() {
    let kinds: Vec<(String, String)> = fixtures()
        .into_iter()
        .map(|f| (f.file.trim_end_matches(".record").to_owned(), f.expected))
        .collect();
    let required = [
        ("valid-empty", "ok"),
        ("valid-binary", "ok"),
        ("valid-1mib", "ok"),
        ("broken-data-bit", "checksum mismatch"),
        ("broken-checksum-bit", "checksum mismatch"),
        ("broken-offset-bit", "offset mismatch"),
        ("broken-39-bytes", "too short"),
        ("broken-other-offset", "offset mismatch"),
    ];
    for (name, expected) in required {
        assert!(
            kinds.contains(&(name.to_owned(), expected.to_owned())),
            "{name}: {expected}"
        );
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn valid_fixtures_read_back_their_exact_data() {
    for fixture in fixtures().iter().filter(|f| f.expected == "ok") {
        let run = read_uploaded(fixture);
        assert_eq!(run.code, 0, "{}: {}", fixture.file, run.stderr);
        // The data sits between the 8-byte offset and the 32-byte checksum.
        let data = &fixture.body[8..fixture.body.len() - 32];
        let mut expected = format!("Offset: {}, Data: ", fixture.offset).into_bytes();
        expected.extend_from_slice(data);
        expected.push(b'\n');
        assert!(run.stdout == expected, "{}: wrong output", fixture.file);
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn broken_fixtures_exit_4_naming_the_offset_and_the_check() {
    for fixture in fixtures().iter().filter(|f| f.expected != "ok") {
        let needle = format!(
            "record at offset {} is corrupt: {}",
            fixture.offset, fixture.expected
        );
        read_uploaded(fixture).fails(4, &needle);
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn library_reads_every_fixture_like_the_binary() {
    for fixture in fixtures() {
        let log = TestLog::new(Server::s3s(), "fixture-lib");
        log.put_raw(&key_name(fixture.offset), &fixture.body);
        let result = log.wal().read(fixture.offset);
        match fixture.expected.as_str() {
            "ok" => assert_eq!(
                result.unwrap().data,
                &fixture.body[8..fixture.body.len() - 32],
                "{}",
                fixture.file
            ),
            problem => {
                let error = result.unwrap_err();
                assert!(
                    matches!(error, s3wal::Error::Corrupt { .. }),
                    "{}: {error:?}",
                    fixture.file
                );
                assert!(
                    error.to_string().contains(problem),
                    "{}: {error}",
                    fixture.file
                );
            }
        }
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn corrupt_last_record_exits_4_without_printing_data() {
    let log = TestLog::new(Server::s3s(), "corrupt-last");
    let broken = fixtures()
        .into_iter()
        .find(|f| f.file == "broken-data-bit.record")
        .unwrap();
    log.put_raw(&key_name(1), &broken.body);
    log.run(&["last"])
        .fails(4, "record at offset 1 is corrupt: checksum mismatch");
}
