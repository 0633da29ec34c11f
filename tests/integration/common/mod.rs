//! Shared test harness: real S3 servers started by `make test`, one fresh
//! prefix per test, and helpers to run the real `s3wal` binary.

pub mod audit;
pub mod credential_server;
pub mod proxy;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use s3wal::Store;
use s3wal::Wal;
use s3wal::config::{self, Env, Flags};
use s3wal::s3::Client;

/// A running S3 server, as described by the environment `make test` sets.
#[derive(Debug, Clone)]
pub struct Server {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// s3s-fs only: the folder whose subfolders are its buckets.
    pub data_dir: Option<PathBuf>,
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `make test`, which starts the servers")
    })
}

impl Server {
    fn from_env(kind: &str) -> Server {
        Server {
            endpoint: required(&format!("S3WAL_TEST_{kind}_ENDPOINT")),
            bucket: required(&format!("S3WAL_TEST_{kind}_BUCKET")),
            access_key: required("S3WAL_TEST_ACCESS_KEY"),
            secret_key: required("S3WAL_TEST_SECRET_KEY"),
            data_dir: std::env::var_os(format!("S3WAL_TEST_{kind}_DATA")).map(PathBuf::from),
        }
    }

    /// s3s-fs: strict and fast, but not atomic under racing writers.
    pub fn s3s() -> Server {
        Server::from_env("S3S")
    }

    /// Ceph RGW: atomic conditional PUTs, for every test that races writers.
    pub fn rgw() -> Server {
        Server::from_env("RGW")
    }

    /// SeaweedFS (`weed mini`): an independent Go implementation with
    /// strict SigV4, Content-MD5 and atomic conditional PUTs, whose losing
    /// racers wait a second or two for their 412.
    pub fn weed() -> Server {
        Server::from_env("WEED")
    }

    /// moto's S3, started by `make test` (for its STS), on a bucket of its
    /// own: a store that carries out a presigned request past its expiry.
    pub fn moto() -> Server {
        let endpoint = std::env::var("S3WAL_TEST_MOTO_ENDPOINT").unwrap_or_else(|_| {
            panic!("S3WAL_TEST_MOTO_ENDPOINT is not set: run the tests with `make test`")
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let server = Server {
            endpoint,
            bucket: format!("lease-{}-{nanos}", std::process::id()),
            access_key: "s3wal-moto".into(),
            secret_key: "s3wal-moto".into(),
            data_dir: None,
        };
        let bucket = rusty_s3::Bucket::new(
            server.endpoint.parse().unwrap(),
            rusty_s3::UrlStyle::Path,
            server.bucket.clone(),
            "us-east-1",
        )
        .unwrap();
        let credentials = rusty_s3::Credentials::new(&server.access_key, &server.secret_key);
        let url = bucket
            .create_bucket(&credentials)
            .sign(Duration::from_secs(600));
        assert_eq!(ureq::put(url.as_str()).send_empty().unwrap().status(), 200);
        server
    }

    /// No server: for the tests whose command ends before any request
    /// (usage and configuration errors), which `cargo test` runs without
    /// `make test`. The configuration is complete, and its endpoint is the
    /// discard port, where nothing listens: a request made by mistake
    /// fails loudly, it never reaches a store.
    pub fn none() -> Server {
        Server {
            endpoint: "http://127.0.0.1:9".into(),
            bucket: "no-server".into(),
            access_key: "no-server-key".into(),
            secret_key: "no-server-secret".into(),
            data_dir: None,
        }
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// Runs `command` to the end.
    #[track_caller]
    pub fn of(command: &mut Command) -> Run {
        let json = asks_for_json(command.get_args());
        Run::from_output(command.output().unwrap(), json)
    }

    /// What the run did; with `json`, checked to be JSON lines.
    #[track_caller]
    fn from_output(output: Output, json: bool) -> Run {
        let run = Run {
            code: output.status.code().expect("s3wal exited by a signal"),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        if json {
            run.assert_json_lines();
        }
        run
    }

    /// With `--json`, every line of stdout and every error line of stderr
    /// (all but `-v`'s `[s3wal] ` lines) is a JSON object, as serde_json
    /// reads it: an oracle for the hand-written encoder on every output
    /// the tests produce. An error's `exit` is the exit code.
    #[track_caller]
    fn assert_json_lines(&self) {
        let stdout = std::str::from_utf8(&self.stdout).expect("--json output is UTF-8");
        let errors = self.stderr.lines().filter(|l| !l.starts_with("[s3wal] "));
        for line in stdout.lines().chain(errors) {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
            assert!(value.is_object(), "not a JSON object: {line}");
            if let Some(exit) = value.get("exit") {
                assert_eq!(exit, &serde_json::json!(self.code), "{line}");
            }
        }
    }

    /// Stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts exit 0 and returns stdout as text.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self.out()
    }

    /// Asserts `code`, an empty stdout and a single `s3wal: ` line on
    /// stderr that contains `needle`.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code,
            code,
            "stdout: {} stderr: {}",
            self.out(),
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.out());
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr: {}", self.stderr);
        assert!(lines[0].starts_with("s3wal: "), "stderr: {}", self.stderr);
        assert!(
            lines[0].contains(needle),
            "{needle:?} not in: {}",
            self.stderr
        );
    }
}

/// Whether `args` ask for JSON output: `--json` before any `--`, after
/// which every argument is data.
fn asks_for_json<'a>(args: impl IntoIterator<Item = &'a OsStr>) -> bool {
    args.into_iter()
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "--json")
}

/// A scratch folder under cargo's target dir, unique to this run.
pub fn scratch(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}-{nanos}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One log under a prefix no other test uses.
#[derive(Debug, Clone)]
pub struct TestLog {
    pub server: Server,
    pub prefix: String,
    /// The working directory of every run: no stray `.env` reaches it.
    pub workdir: PathBuf,
    pub lock_dir: PathBuf,
}

impl TestLog {
    /// A fresh log. On s3s-fs, whose listings walk the whole bucket
    /// folder, each log also gets a bucket of its own.
    pub fn new(mut server: Server, name: &str) -> TestLog {
        let workdir = scratch(name);
        let unique = workdir.file_name().unwrap().to_str().unwrap().to_owned();
        let prefix = format!("t/{unique}");
        if let Some(data) = &server.data_dir {
            let suffix = &unique[name.len() + 1..];
            server.bucket = format!("b-{suffix}");
            std::fs::create_dir_all(data.join(&server.bucket)).unwrap();
        }
        let lock_dir = workdir.join("locks");
        TestLog {
            server,
            prefix,
            workdir,
            lock_dir,
        }
    }

    /// A log on no server ([`Server::none`]).
    pub fn without_server(name: &str) -> TestLog {
        TestLog::new(Server::none(), name)
    }

    /// The binary, configured for this log through the environment, with
    /// no other AWS setting of the machine leaking in.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_s3wal"));
        for (name, _) in std::env::vars() {
            let proxy = name.to_ascii_uppercase().ends_with("_PROXY");
            if name.starts_with("AWS_") || name == "S3WAL_LOCK_DIR" || proxy {
                command.env_remove(name);
            }
        }
        command
            .current_dir(&self.workdir)
            // No profile of this machine's ~/.aws leaks into a test.
            .env("HOME", &self.workdir)
            .env("AWS_ENDPOINT_URL", &self.server.endpoint)
            .env("AWS_BUCKET_NAME", &self.server.bucket)
            .env("AWS_PREFIX", &self.prefix)
            .env("AWS_ACCESS_KEY_ID", &self.server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.server.secret_key)
            .env("S3WAL_LOCK_DIR", &self.lock_dir)
            // No test ever asks 169.254.169.254: a test of the metadata
            // provider names its loopback server and removes this.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        command
    }

    /// Runs `s3wal ARGS` and returns what it did.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.command().args(args))
    }

    /// Runs `s3wal ARGS` and asserts that it fails with exit 1 and an
    /// error containing `needle` within `limit`: no pointless retries.
    #[track_caller]
    pub fn fails_within(&self, limit: Duration, args: &[&str], needle: &str) {
        let started = std::time::Instant::now();
        let run = self.run(args);
        let elapsed = started.elapsed();
        run.fails(1, needle);
        assert!(elapsed < limit, "took {elapsed:?}: {}", run.stderr);
    }

    /// Runs `s3wal ARGS` with `stdin` as standard input.
    #[track_caller]
    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let json = asks_for_json(args.iter().map(OsStr::new));
        Run::from_output(child.wait_with_output().unwrap(), json)
    }

    /// The library's view of the same log.
    pub fn wal(&self) -> Wal<Client> {
        let env = Env::new(
            [
                ("AWS_ENDPOINT_URL", self.server.endpoint.as_str()),
                ("AWS_BUCKET_NAME", &self.server.bucket),
                ("AWS_PREFIX", &self.prefix),
                ("AWS_ACCESS_KEY_ID", &self.server.access_key),
                ("AWS_SECRET_ACCESS_KEY", &self.server.secret_key),
                ("S3WAL_LOCK_DIR", self.lock_dir.to_str().unwrap()),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
            Vec::new(),
        );
        s3wal::open(&config::resolve(&Flags::default(), &env).unwrap()).unwrap()
    }

    /// The full key of `name` under this log's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// A plain, unconditional PUT of `body` at `<prefix>/<name>`, signed by
    /// rusty-s3 and sent by ureq directly: not through s3wal's client.
    pub fn put_raw(&self, name: &str, body: &[u8]) {
        let bucket = Bucket::new(
            self.server.endpoint.parse().unwrap(),
            UrlStyle::Path,
            self.server.bucket.clone(),
            "us-east-1",
        )
        .unwrap();
        let credentials = Credentials::new(&self.server.access_key, &self.server.secret_key);
        let key = self.key(name);
        let url = bucket
            .put_object(Some(&credentials), &key)
            .sign(Duration::from_secs(600));
        let response = ureq::put(url.as_str()).send(body).unwrap();
        assert_eq!(response.status(), 200, "plain PUT of {key}");
    }

    /// Every key under the prefix, as the server lists them.
    pub fn keys(&self) -> Vec<String> {
        let wal = self.wal();
        let prefix = format!("{}/", self.prefix);
        wal.store()
            .keys(&prefix, None, 1000)
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The offsets of the record keys under the prefix, in listing order.
    pub fn offsets(&self) -> Vec<u64> {
        let wal = self.wal();
        self.keys()
            .iter()
            .filter_map(|key| wal.prefix().offset_of(key))
            .collect()
    }
}

/// The log as a reader reads it back, by offset, and what is wrong with
/// reading it: `verify` must pass, and `dump` read the records the
/// listing holds.
pub fn read_back(log: &TestLog) -> (std::collections::BTreeMap<u64, String>, Vec<String>) {
    let mut problems = Vec::new();
    let verify = log.run(&["verify"]);
    if verify.code != 0 {
        problems.push(format!("verify exited {}: {}", verify.code, verify.out()));
    }
    let mut offsets = log.offsets();
    offsets.sort_unstable();
    let dump = log.run(&["--json", "dump"]);
    let record = |line: &str| {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let data = record["data"].as_str().unwrap().to_owned();
        (record["offset"].as_u64().unwrap(), data)
    };
    let stored: std::collections::BTreeMap<u64, String> = dump.out().lines().map(record).collect();
    if dump.code != 0 || !stored.keys().eq(offsets.iter()) {
        problems.push(format!(
            "dump (exit {}) read {:?}, the listing holds {offsets:?}",
            dump.code,
            stored.keys().collect::<Vec<_>>()
        ));
    }
    (stored, problems)
}

/// The 20-digit key name of `offset`, written out independently of s3wal.
pub fn key_name(offset: u64) -> String {
    format!("{offset:020}")
}

/// Appends `Record #1`..`Record #count` with the binary, checking each line.
pub fn append_records(log: &TestLog, count: u64) {
    for n in 1..=count {
        let data = format!("Record #{n}");
        assert_eq!(
            log.run(&["append", &data]).ok(),
            format!("Appended record at offset: {n}, data: {data}\n")
        );
    }
}

/// The seed's demo story (`main1.go`) through the CLI, with its exact lines.
pub fn assert_demo_story(log: &TestLog) {
    assert_eq!(log.run(&["recover"]).ok(), "Last offset: 0\n");
    append_records(log, 5);
    assert_eq!(log.run(&["read", "3"]).ok(), "Offset: 3, Data: Record #3\n");
    assert_eq!(
        log.run(&["last"]).ok(),
        "Last record: offset=5, data=Record #5\n"
    );
    assert_eq!(
        log.run(&["truncate", "2"]).ok(),
        "Truncated WAL after offset 2\nDeleted 3 records\n"
    );
    assert_eq!(log.run(&["recover"]).ok(), "Last offset: 2\n");
}

impl TestLog {
    /// The same log, reached through `endpoint` (a proxy) instead.
    pub fn via(&self, endpoint: &str) -> TestLog {
        TestLog {
            server: Server {
                endpoint: endpoint.to_owned(),
                ..self.server.clone()
            },
            ..self.clone()
        }
    }
}

/// Writes records at `offsets` straight into s3s-fs's folder, which serves
/// every file under it as an object: a 100 000-record log in seconds.
pub fn fill_on_disk(log: &TestLog, offsets: impl IntoIterator<Item = u64>) {
    let data = log.server.data_dir.as_ref().expect("an s3s-fs log");
    let dir = data.join(&log.server.bucket).join(&log.prefix);
    std::fs::create_dir_all(&dir).unwrap();
    for n in offsets {
        let body = s3wal::record::encode(n, format!("r{n}").as_bytes());
        std::fs::write(dir.join(key_name(n)), body).unwrap();
    }
}

/// The request counts of a `--verbose` run, by S3 action, from its summary.
pub fn request_counts(run: &Run) -> std::collections::BTreeMap<String, u64> {
    let summary = run
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("[s3wal] requests: "))
        .unwrap_or_else(|| panic!("no request summary in: {}", run.stderr));
    let kinds = summary.split_once('(').unwrap().1.trim_end_matches(')');
    kinds
        .split_whitespace()
        .map(|kind| {
            let (action, count) = kind.split_once('=').unwrap();
            (action.to_owned(), count.parse().unwrap())
        })
        .collect()
}
