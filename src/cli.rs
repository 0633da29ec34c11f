//! The command line: parse, run one operation, print the seed's lines.
//!
//! The library never prints; this module owns stdout and stderr.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use argh::FromArgs;

use s3wal::config::{self, Env, Flags};
use s3wal::error::{Error, exit};
use s3wal::s3::{Client, Exchange};
use s3wal::{Record, Wal};

#[derive(FromArgs, Debug)]
/// A write-ahead log stored in S3, one object per record.
#[argh(
    note = "Configuration: flags beat the environment (AWS_BUCKET_NAME, AWS_PREFIX, \
            AWS_REGION or AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, \
            AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, S3WAL_LOCK_DIR), \
            which beats ./.env.",
    example = "s3wal --bucket my-bucket --prefix wal append \"Record #1\"",
    error_code(1, "failure: network, S3, configuration or local file"),
    error_code(2, "usage: bad command line"),
    error_code(3, "not found: no record at the offset, or the log is empty"),
    error_code(4, "integrity: a stored record failed its checks"),
    error_code(5, "append gave up: other writers kept taking the next offset")
)]
struct Args {
    /// bucket holding the log (env AWS_BUCKET_NAME)
    #[argh(option)]
    bucket: Option<String>,
    /// folder of the log in the bucket (env AWS_PREFIX)
    #[argh(option)]
    prefix: Option<String>,
    /// signing region (env AWS_REGION, AWS_DEFAULT_REGION; default us-east-1)
    #[argh(option)]
    region: Option<String>,
    /// S3 endpoint URL for MinIO, Ceph and the like (env AWS_ENDPOINT_URL)
    #[argh(option)]
    endpoint: Option<String>,
    /// address buckets as endpoint/bucket (the default for non-AWS endpoints)
    #[argh(switch)]
    path_style: bool,
    /// folder of the local append locks (env S3WAL_LOCK_DIR; default
    /// ~/.local/state/s3wal/locks)
    #[argh(option)]
    lock_dir: Option<PathBuf>,
    /// print one line per S3 request to stderr, and a summary at exit
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// print the version and exit
    #[argh(switch)]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Recover(RecoverArgs),
    Append(AppendArgs),
    Read(ReadArgs),
    Last(LastArgs),
    Truncate(TruncateArgs),
}

#[derive(FromArgs, Debug)]
/// Print the offset of the last record (0 for an empty log).
#[argh(
    subcommand,
    name = "recover",
    example = "s3wal --bucket b --prefix wal recover"
)]
struct RecoverArgs {}

#[derive(FromArgs, Debug)]
/// Append one record and print its offset.
#[argh(
    subcommand,
    name = "append",
    example = "s3wal --bucket b --prefix wal append \"Record #1\"",
    example = "tar c dir | s3wal --bucket b --prefix wal append -"
)]
struct AppendArgs {
    /// the record's data, or - to read one record from stdin
    #[argh(positional)]
    data: String,
}

#[derive(FromArgs, Debug)]
/// Print the record at an offset, after checking it.
#[argh(
    subcommand,
    name = "read",
    example = "s3wal --bucket b --prefix wal read 3"
)]
struct ReadArgs {
    /// offset of the record, from 1
    #[argh(positional)]
    offset: String,
}

#[derive(FromArgs, Debug)]
/// Print the last record, after checking it.
#[argh(
    subcommand,
    name = "last",
    example = "s3wal --bucket b --prefix wal last"
)]
struct LastArgs {}

#[derive(FromArgs, Debug)]
/// Delete every record after an offset (0 empties the log).
#[argh(
    subcommand,
    name = "truncate",
    example = "s3wal --bucket b --prefix wal truncate 2"
)]
struct TruncateArgs {
    /// the offset to keep; every record after it is deleted
    #[argh(positional)]
    offset: String,
}

/// Runs the command line `args` (without the program name) and returns
/// the exit code.
pub fn main(args: Vec<OsString>) -> u8 {
    let Ok(args) = args
        .into_iter()
        .map(OsString::into_string)
        .collect::<Result<Vec<_>, _>>()
    else {
        eprintln!("s3wal: an argument is not valid UTF-8; pass binary data with `append -`");
        return exit::USAGE;
    };
    let args = stdin_marker_as_positional(&args);
    let parsed = match Args::from_args(&["s3wal"], &args) {
        Ok(parsed) => parsed,
        Err(early) => return early_exit(&early),
    };
    if parsed.version {
        println!("s3wal {}", env!("CARGO_PKG_VERSION"));
        return exit::OK;
    }
    match run(parsed) {
        Ok(()) => exit::OK,
        Err(error) => {
            eprintln!("s3wal: {}", one_line(&error.to_string()));
            error.exit_code()
        }
    }
}

/// argh takes every argument that starts with `-` for an option; a lone
/// `-` (stdin, as in `append -`) is a value, so it goes after a `--`.
fn stdin_marker_as_positional(args: &[String]) -> Vec<&str> {
    let mut out = Vec::with_capacity(args.len() + 1);
    for arg in args {
        if arg == "-" && out.last() != Some(&"--") {
            out.push("--");
        }
        out.push(arg.as_str());
    }
    out
}

/// Help goes to stdout with exit 0; a usage error becomes one line on
/// stderr with exit 2.
fn early_exit(early: &argh::EarlyExit) -> u8 {
    if early.status.is_ok() {
        print!("{}", early.output);
        return exit::OK;
    }
    eprintln!(
        "s3wal: {} (see s3wal --help)",
        one_line(&early.output).trim_end_matches('.')
    );
    exit::USAGE
}

/// Joins the lines of a message, so every error is exactly one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(args: Args) -> Result<(), Error> {
    let Some(command) = args.command else {
        return Err(Error::Usage("no command given (see s3wal --help)".into()));
    };
    let offset = match &command {
        Command::Read(read) => Some(parse_offset(&read.offset, 1)?),
        Command::Truncate(truncate) => Some(parse_offset(&truncate.offset, 0)?),
        _ => None,
    };
    let flags = Flags {
        bucket: args.bucket,
        prefix: args.prefix,
        region: args.region,
        endpoint: args.endpoint,
        path_style: args.path_style,
        lock_dir: args.lock_dir,
    };
    let config = config::resolve(&flags, &Env::load(Path::new(".env"))?)?;
    let mut client = Client::new(&config.s3)?;
    let counts = Arc::new(Mutex::new(BTreeMap::new()));
    if args.verbose {
        let counts = Arc::clone(&counts);
        client = client.with_observer(move |exchange| log_exchange(exchange, &counts));
    }
    let wal = Wal::new(client, config.prefix, config.lock);
    let result = execute(&wal, command, offset);
    if args.verbose {
        log_summary(&counts.lock().expect("no panics while counting"));
    }
    result
}

/// A record offset from the command line: a whole number of at least `min`.
fn parse_offset(raw: &str, min: u64) -> Result<u64, Error> {
    match raw.parse::<u64>() {
        Ok(offset) if offset >= min => Ok(offset),
        _ => Err(Error::Usage(format!(
            "offset must be a whole number from {min} to {}, not {raw:?}",
            u64::MAX
        ))),
    }
}

fn execute(wal: &Wal<Client>, command: Command, offset: Option<u64>) -> Result<(), Error> {
    let offset = offset.unwrap_or_default();
    match command {
        Command::Recover(_) => print_line(format!("Last offset: {}", wal.recover()?).as_bytes()),
        Command::Append(append) => {
            let data = if append.data == "-" {
                let mut data = Vec::new();
                io::stdin().read_to_end(&mut data).map_err(|e| Error::Io {
                    context: "cannot read the record from stdin".into(),
                    source: e,
                })?;
                data
            } else {
                append.data.into_bytes()
            };
            let offset = wal.append(&data)?;
            print_record_line("Appended record at offset: ", offset, ", data: ", &data)
        }
        Command::Read(_) => {
            let Record { offset, data } = wal.read(offset)?;
            print_record_line("Offset: ", offset, ", Data: ", &data)
        }
        Command::Last(_) => {
            let Record { offset, data } = wal.last()?;
            print_record_line("Last record: offset=", offset, ", data=", &data)
        }
        Command::Truncate(_) => {
            wal.truncate(offset)?;
            print_line(format!("Truncated WAL after offset {offset}").as_bytes())
        }
    }
}

/// `<before><offset><between><data>`: the seed's record lines, with the
/// data written as raw bytes, exactly as stored.
fn print_record_line(before: &str, offset: u64, between: &str, data: &[u8]) -> Result<(), Error> {
    let mut line = format!("{before}{offset}{between}").into_bytes();
    line.extend_from_slice(data);
    print_line(&line)
}

fn print_line(line: &[u8]) -> Result<(), Error> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(line)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::Io {
            context: "cannot write to stdout".into(),
            source: e,
        })
}

/// `--verbose`: one line per request, never the query string.
fn log_exchange(exchange: &Exchange, counts: &Mutex<BTreeMap<&'static str, u64>>) {
    let status = exchange
        .status
        .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
    eprintln!(
        "[s3wal] {} {} {} {} {}ms",
        exchange.method,
        exchange.action,
        exchange.target,
        status,
        exchange.elapsed.as_millis()
    );
    *counts
        .lock()
        .expect("no panics while counting")
        .entry(exchange.action)
        .or_default() += 1;
}

fn log_summary(counts: &BTreeMap<&'static str, u64>) {
    let total: u64 = counts.values().sum();
    let kinds: Vec<String> = counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
    eprintln!("[s3wal] requests: {total} ({})", kinds.join(" "));
}
