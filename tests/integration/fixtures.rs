//! Objects written in the seed's format by an independent route
//! (`fixtures/make_fixtures.py`), uploaded with a plain PUT and read back,
//! on s3s-fs and on SeaweedFS.

use crate::common;

use std::path::Path;

use common::{Server, TestLog, key_name};

#[derive(Clone)]
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

/// Every pair of a store and a fixture that `wanted` picks: each fixture
/// goes to two independent S3 implementations, s3s-fs and SeaweedFS.
fn each_store_and(wanted: impl Fn(&Fixture) -> bool) -> Vec<(Server, Fixture)> {
    let picked: Vec<Fixture> = fixtures().into_iter().filter(wanted).collect();
    [Server::s3s(), Server::weed()]
        .into_iter()
        .flat_map(|server| picked.iter().map(move |f| (server.clone(), f.clone())))
        .collect()
}

/// Uploads `fixture` alone into a fresh log on `server`.
fn uploaded(server: &Server, fixture: &Fixture) -> TestLog {
    let log = TestLog::new(server.clone(), "fixture");
    log.put_raw(&key_name(fixture.offset), &fixture.body);
    log
}

/// Uploads `fixture` alone into a fresh log on `server` and reads it with
/// the binary.
fn read_uploaded(server: &Server, fixture: &Fixture) -> common::Run {
    uploaded(server, fixture).run(&["read", &fixture.offset.to_string()])
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
    for (server, fixture) in each_store_and(|f| f.expected == "ok") {
        let run = read_uploaded(&server, &fixture);
        let on = format!("{} on {}", fixture.file, server.endpoint);
        assert_eq!(run.code, 0, "{on}: {}", run.stderr);
        // The data sits between the 8-byte offset and the 32-byte checksum.
        let data = &fixture.body[8..fixture.body.len() - 32];
        let mut expected = format!("Offset: {}, Data: ", fixture.offset).into_bytes();
        expected.extend_from_slice(data);
        expected.push(b'\n');
        assert!(run.stdout == expected, "{on}: wrong output");
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn broken_fixtures_exit_4_naming_the_offset_and_the_check() {
    for (server, fixture) in each_store_and(|f| f.expected != "ok") {
        let needle = format!(
            "record at offset {} is corrupt: {}",
            fixture.offset, fixture.expected
        );
        read_uploaded(&server, &fixture).fails(4, &needle);
    }
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn library_reads_every_fixture_like_the_binary() {
    for (server, fixture) in each_store_and(|_| true) {
        let result = uploaded(&server, &fixture).wal().read(fixture.offset);
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
