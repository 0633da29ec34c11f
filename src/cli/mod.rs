//! The command line: parse, run one operation, print the seed's lines.
//!
//! The library never prints; this module owns stdout and stderr.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argh::{EarlyExit, FromArgs};

mod append;
mod failure;
#[cfg(test)]
mod manual;
mod output;
mod progress;
mod signals;
mod stored;

use append::Source;
use failure::{CliError, exit};
use output::Output;
use progress::Progress;
use s3wal::Error;
use s3wal::config::settings::{self, Form};
use s3wal::config::{self, Env, Flags, Origin};
use s3wal::s3::{Client, Exchange};
use stored::Stored;

use s3wal::{Record, Stat, Trimmed, Wal};

/// The command and its arguments, which argh reads; the global options
/// before it are read from the settings' table (`global`).
#[derive(FromArgs, Debug)]
/// A write-ahead log stored in S3, one object per record.
struct CommandLine {
    #[argh(subcommand)]
    command: Command,
}

/// What the command line asks for.
#[derive(Debug, Default)]
struct Args {
    /// The settings given by flags.
    flags: Flags,
    /// Print one line per S3 request, and a summary at exit.
    verbose: bool,
    /// Print the version and exit.
    version: bool,
    /// Print JSON lines, and errors as JSON.
    json: bool,
    /// Print no line for what was stored or deleted: errors only.
    quiet: bool,
    command: Option<Command>,
}

/// The command line's own switches, beside the settings' flags: their
/// spellings and help lines.
const SWITCHES: [(&str, &str); 4] = [
    (
        "-v, --verbose",
        "print one line per S3 request to stderr, and a summary at exit",
    ),
    (
        "-q, --quiet",
        "print no line for each record appended or the records a truncate or trim \
         deleted (for cron); errors still go to stderr",
    ),
    (
        "-V, --version",
        "print the version, commit and target, and exit",
    ),
    (
        "--json",
        "print one JSON object per line on stdout, and errors as JSON on stderr",
    ),
];

/// What each exit code means, for `--help`.
const EXIT_CODES: [(u8, &str); 9] = [
    (
        exit::FAILURE,
        "failure: network, S3, configuration or local file",
    ),
    (exit::USAGE, "usage: bad command line"),
    (
        exit::NOT_FOUND,
        "not found: no record at the offset, or the log is empty",
    ),
    (
        exit::INTEGRITY,
        "integrity: a stored record failed its checks",
    ),
    (
        exit::APPEND_GAVE_UP,
        "gave up, nothing done: other writers kept taking the next offset, or another \
         machine's fence kept running (or cannot be taken over safely)",
    ),
    (
        exit::STORED_THEN_FAILED,
        "append stored records (or may have), then failed: stderr names their \
         offsets; do not append them again",
    ),
    (
        exit::FENCE_LOST,
        "a truncate or trim lost its fence: paused past its lease, another machine \
         took the work over",
    ),
    (
        exit::TRIMMED,
        "trimmed: the offset asked for is below the log's first record; stderr says \
         where the log starts now",
    ),
    (
        exit::CURSOR_MOVED,
        "cursor: another consumer moved the named cursor on first (the records printed \
         were consumed by both), or a truncate cut the log below it",
    ),
];

/// What `help` and `--help` ask argh for.
const HELP: [&str; 2] = ["--help", "help"];

/// Reads the command line: global options (the settings' flags and
/// `SWITCHES`) anywhere before a `--`, before the command or after it, as
/// aws CLI takes them; the command and its own arguments, which argh reads;
/// `help` or `--help` anywhere before the command.
fn parse(args: &[&str]) -> Result<Args, EarlyExit> {
    let mut parsed = Args::default();
    let (mut help, mut options_ended) = (false, false);
    let mut rest = args.iter().copied();
    while let Some(arg) = rest.next() {
        if !options_ended && HELP.contains(&arg) {
            help = true;
        } else if !options_ended && arg == "--" {
            options_ended = true;
        } else if !options_ended && arg.starts_with('-') {
            if help {
                return Err(
                    String::from("Trailing arguments are not allowed after `help`.").into(),
                );
            }
            if !global(arg, &mut rest, &mut parsed)? {
                return Err(format!("Unrecognized argument: {arg}").into());
            }
        } else {
            if !help {
                known_command(arg)?;
            }
            let mut words: Vec<&str> = help.then_some("help").into_iter().chain([arg]).collect();
            while let Some(word) = rest.next() {
                if word == "--" {
                    words.push(word);
                    words.extend(rest.by_ref());
                } else if !(word.starts_with('-') && global(word, &mut rest, &mut parsed)?) {
                    words.push(word);
                }
            }
            let command = CommandLine::from_args(&["s3wal"], &words)?.command;
            parsed.command = Some(command);
            return Ok(parsed);
        }
    }
    match help {
        true => Err(EarlyExit {
            output: help_text(),
            status: Ok(()),
        }),
        false => Ok(parsed),
    }
}

/// Reads `arg` if it is a global option, and its value from `rest`:
/// `Ok(false)` if it is none.
fn global<'a>(
    arg: &str,
    rest: &mut impl Iterator<Item = &'a str>,
    parsed: &mut Args,
) -> Result<bool, String> {
    match arg {
        "-v" | "--verbose" => parsed.verbose = true,
        "-q" | "--quiet" => parsed.quiet = true,
        "-V" | "--version" => parsed.version = true,
        "--json" => parsed.json = true,
        _ => return parsed.flags.take(arg, rest),
    }
    Ok(true)
}

/// Refuses a word that names no command, with the command it is closest
/// to when a typo or two away (`apend`: did you mean `append`?).
fn known_command(word: &str) -> Result<(), String> {
    let names = <Command as argh::SubCommands>::COMMANDS
        .iter()
        .map(|c| c.name);
    if names.clone().any(|name| name == word) {
        return Ok(());
    }
    let closest = names
        .map(|name| (edit_distance(word, name), name))
        .filter(|&(distance, _)| distance <= 2)
        .min();
    Err(match closest {
        Some((_, name)) => format!("Unrecognized command: {word}; did you mean `{name}`?"),
        None => format!("Unrecognized command: {word}"),
    })
}

/// Levenshtein's distance between `a` and `b`, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// `s3wal --help`: the options from the settings' table, the commands
/// from argh, the variables from the table.
fn help_text() -> String {
    let mut usage = String::from("Usage: s3wal");
    let mut options = String::new();
    for (flag, line) in settings::help_lines() {
        match flag.form {
            Form::Switch => usage.push_str(&format!(" [{}]", flag.name)),
            _ => usage.push_str(&format!(" [{0} <{1}>]", flag.name, &flag.name[2..])),
        }
        describe(&mut options, flag.name, &line);
    }
    for (names, line) in SWITCHES {
        let first = names.split(", ").next().unwrap_or(names);
        usage.push_str(&format!(" [{first}]"));
        describe(&mut options, names, line);
    }
    describe(
        &mut options,
        "-h, --help, help",
        "display usage information",
    );
    let mut commands = String::new();
    for command in <Command as argh::SubCommands>::COMMANDS {
        describe(&mut commands, command.name, command.description);
    }
    let variables: Vec<&str> = settings::variables().collect();
    let codes: Vec<String> = EXIT_CODES
        .iter()
        .map(|(code, meaning)| format!("  {code} {meaning}"))
        .collect();
    format!(
        "{usage} [<command>] [<args>]\n\n\
         A write-ahead log stored in S3, one object per record.\n\n\
         Options:\n{options}\n\
         Commands:\n{commands}\n\
         Examples:\n  s3wal --bucket my-bucket --prefix wal append \"Record #1\"\n\n\
         Notes:\n  Configuration: flags beat the environment ({}), which beats ./.env.\n\n\
         Error codes:\n{}\n",
        variables.join(", "),
        codes.join("\n")
    )
}

/// One entry of a help list as argh lays it out: the name indented by
/// two, the text from column 20 (on a line of its own after a longer
/// name), wrapped before column 80.
fn describe(out: &mut String, name: &str, text: &str) {
    const COLUMN: usize = 20;
    let mut line = format!("  {name}");
    let mut fresh = true;
    if line.len() >= COLUMN {
        out.push_str(&line);
        out.push('\n');
        line.clear();
    }
    for word in text.split(' ') {
        if !fresh && line.chars().count() + 1 + word.chars().count() > 80 {
            out.push_str(&line);
            out.push('\n');
            (line, fresh) = (String::new(), true);
        }
        match fresh {
            true => line = format!("{line:<COLUMN$}{word}"),
            false => {
                line.push(' ');
                line.push_str(word);
            }
        }
        fresh = false;
    }
    out.push_str(&line);
    out.push('\n');
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Recover(RecoverArgs),
    Append(AppendArgs),
    Read(ReadArgs),
    Last(LastArgs),
    Truncate(TruncateArgs),
    Dump(DumpArgs),
    Doctor(DoctorArgs),
    Verify(VerifyArgs),
    Stat(StatArgs),
    Trim(TrimArgs),
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
/// Append one record, or one record per line of stdin, and print offsets.
#[argh(
    subcommand,
    name = "append",
    example = "s3wal --bucket b --prefix wal append \"Record #1\"",
    example = "tar c dir | s3wal --bucket b --prefix wal append -",
    example = "printf 'a\\nb\\n' | s3wal --bucket b --prefix wal append --lines"
)]
struct AppendArgs {
    /// append each line of stdin (without its newline) as one record, in
    /// order, under one lock
    #[argh(switch)]
    lines: bool,
    /// the record's data, or - to read one record from stdin
    #[argh(positional)]
    data: Option<String>,
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
    #[argh(positional, from_str_fn(offset_from_1))]
    offset: u64,
    /// print only the record's data, byte for byte, with nothing added
    #[argh(switch)]
    raw: bool,
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
    #[argh(positional, from_str_fn(offset_from_0))]
    after: u64,
    /// say which records would be deleted, and delete nothing
    #[argh(switch)]
    dry_run: bool,
}

#[derive(FromArgs, Debug)]
/// Print records in offset order, fetched in parallel.
#[argh(
    subcommand,
    name = "dump",
    example = "s3wal --bucket b --prefix wal dump --from 100 --to 200",
    example = "s3wal --bucket b --prefix wal dump --raw > records.txt",
    example = "s3wal --bucket b --prefix wal dump --follow --from 100"
)]
struct DumpArgs {
    /// first offset to print (default: the log's first)
    #[argh(option, from_str_fn(offset_from_1))]
    from: Option<u64>,
    /// last offset to print (default: the log's last)
    #[argh(option, from_str_fn(offset_from_1))]
    to: Option<u64>,
    /// print only each record's data, one per line
    #[argh(switch)]
    raw: bool,
    /// after the last record, keep waiting for new ones, like tail -f,
    /// until interrupted
    #[argh(switch)]
    follow: bool,
    /// start at the log's first record when --from was trimmed, instead
    /// of failing with exit 8
    #[argh(switch)]
    skip_trimmed: bool,
    /// start N records before the end instead of at --from (0 with
    /// --follow: only new records, like Kafka's default)
    #[argh(option)]
    last: Option<u64>,
    /// stop after printing N records
    #[argh(option)]
    max_records: Option<u64>,
    /// with --follow, stop once no record came for this many seconds
    #[argh(option)]
    idle_timeout: Option<u64>,
    /// resume after where the named cursor is (kept in the bucket), and
    /// move it on to the last record printed once they are written out
    #[argh(option)]
    cursor: Option<String>,
}

impl DumpArgs {
    /// What to do when --from was trimmed.
    fn trimmed(&self) -> Trimmed {
        match self.skip_trimmed {
            true => Trimmed::Skip,
            false => Trimmed::Refuse,
        }
    }
}

#[derive(FromArgs, Debug)]
/// Check credentials, bucket, clock skew and If-None-Match support.
#[argh(
    subcommand,
    name = "doctor",
    example = "s3wal --bucket b --prefix wal doctor"
)]
struct DoctorArgs {}

#[derive(FromArgs, Debug)]
/// Read every record and report corrupt ones, holes and foreign keys.
#[argh(
    subcommand,
    name = "verify",
    example = "s3wal --bucket b --prefix wal verify",
    example = "s3wal --bucket b --prefix wal verify --from 1000"
)]
struct VerifyArgs {
    /// first offset to check (default: the log's first)
    #[argh(option, from_str_fn(offset_from_1))]
    from: Option<u64>,
    /// last offset to check (default: the log's last)
    #[argh(option, from_str_fn(offset_from_1))]
    to: Option<u64>,
}

#[derive(FromArgs, Debug)]
/// Print the first and last offsets and the record count.
#[argh(
    subcommand,
    name = "stat",
    example = "s3wal --bucket b --prefix wal stat"
)]
struct StatArgs {}

#[derive(FromArgs, Debug)]
/// Delete every record before an offset (retention); the log then starts there.
#[argh(
    subcommand,
    name = "trim",
    example = "s3wal --bucket b --prefix wal trim 1000"
)]
struct TrimArgs {
    /// the first offset to keep; every record before it is deleted
    #[argh(positional, from_str_fn(offset_from_1))]
    before: u64,
    /// say which records would be deleted, and delete nothing
    #[argh(switch)]
    dry_run: bool,
    /// keep every record a named cursor has not consumed yet
    #[argh(switch)]
    keep_cursors: bool,
}

/// Runs the command line `args` (without the program name) and returns
/// the exit code.
pub fn main(args: Vec<OsString>) -> u8 {
    // Guessed before parsing, so that usage errors come out as JSON too.
    let mut json = args.iter().any(|arg| arg == "--json");
    let fail = |error: CliError, json: bool| {
        to_stderr(format_args!("{}", output::error_line(&error, json)));
        error.exit
    };
    let Ok(args) = args
        .into_iter()
        .map(OsString::into_string)
        .collect::<Result<Vec<_>, _>>()
    else {
        return fail(
            Error::Usage("an argument is not valid UTF-8; pass binary data with `append -`".into())
                .into(),
            json,
        );
    };
    let args = normalise_args(&args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let parsed = match parse(&args) {
        Ok(parsed) => parsed,
        Err(early) if early.status.is_ok() => return print_help(&early.output),
        Err(early) => {
            let message = one_line(&early.output);
            let message = message.trim_end_matches('.');
            return fail(
                Error::Usage(format!("{message} (see s3wal --help)")).into(),
                json,
            );
        }
    };
    json = parsed.json;
    // An append defers SIGINT, SIGTERM and SIGHUP from here until its
    // outcome is printed; a signal that came meanwhile then ends it.
    let _deferral =
        matches!(parsed.command, Some(Command::Append(_))).then(signals::Deferral::start);
    let mut out = Output::new(json, parsed.quiet);
    let mut stored = Stored::default();
    let result = match parsed.version {
        true => out.version(),
        false => run(parsed, &mut out, &mut stored),
    };
    // A signal that came after the append's last look still gets its
    // report: what was stored is named before the signal acts.
    let interrupted = || match signals::pending() {
        Some(signal) => Err(Error::Interrupted { signal }),
        None => Ok(()),
    };
    let Err(error) = result
        .and_then(|()| out.flush())
        .and_then(|()| interrupted())
    else {
        return exit::OK;
    };
    // What was printed before the error still goes out first.
    let _ = out.flush();
    if stored.is_empty() && is_closed_stdout(&error) {
        // `s3wal dump | head -1`: the reader has all it wanted.
        return exit::OK;
    }
    fail(CliError::after(error, &stored), json)
}

/// Whether `error` is a write to a stdout whose reader has gone.
fn is_closed_stdout(error: &Error) -> bool {
    matches!(error, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
}

/// Rewrites the command line into the one form argh reads:
/// `--name=value` (for every option) becomes `--name value`; the seed's
/// `-bucket`, `-prefix` and `-region` (Go's `flag` package reads one dash
/// or two, so scripts written for the seed use every form; the table marks
/// them `seed`) become `--bucket`, `--prefix` and `--region`; `-h`, which
/// argh does not know, becomes `--help` (before or after the command); and a lone `-` (stdin, as in `append -`), which argh would
/// take for an option, goes after a `--`. Nothing after a `--` is touched,
/// so data such as `--x=y` can always be given there.
fn normalise_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" || arg == "-" {
            out.push("--".to_owned());
            out.extend((arg == "-").then(|| arg.clone()));
            out.extend(rest.cloned());
            break;
        }
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) if is_option_name(name) => (name, Some(value)),
            _ => (arg.as_str(), None),
        };
        let name = if name == "-h" { "--help" } else { name };
        out.push(settings::seed_flag(name).unwrap_or(name).to_owned());
        out.extend(value.map(str::to_owned));
    }
    out
}

/// `--lock-dir` or one of the seed's flags, as written before an `=`.
fn is_option_name(name: &str) -> bool {
    let long = name.strip_prefix("--").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    long || settings::seed_flag(name).is_some()
}

/// `--help`: to stdout, exit 0.
fn print_help(help: &str) -> u8 {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(help.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => exit::OK,
        Err(_) => exit::FAILURE,
    }
}

/// Writes one line to stderr, ignoring failure: a closed stderr must not
/// turn a command that already did its work into a crash.
fn to_stderr(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Joins the lines of a message, so every error is exactly one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(args: Args, out: &mut Output, stored: &mut Stored) -> Result<(), Error> {
    let Some(command) = args.command else {
        return Err(Error::Usage("no command given (see s3wal --help)".into()));
    };
    check_arguments(&command, args.json)?;
    let config = config::resolve(&args.flags, &Env::load(Path::new(".env"))?)?;
    let counts = Arc::new(Mutex::new(BTreeMap::new()));
    let wal = match args.verbose {
        true => {
            let counts = Arc::clone(&counts);
            s3wal::open_observed(&config, move |exchange| log_exchange(exchange, &counts))
        }
        false => s3wal::open(&config),
    }?
    .on_wait(match args.json {
        true => |notice: &str| eprintln!("{{\"notice\":{}}}", output::json_string(notice)),
        false => |notice: &str| eprintln!("s3wal: {notice}"),
    })
    .on_deleting(match args.json {
        true => |_, _| {},
        false => progress::deleting,
    })
    .interrupted_by(signals::pending);
    let result = match command {
        Command::Append(AppendArgs { lines: true, .. }) => {
            append::run(&wal, Source::Lines, out, stored)
        }
        Command::Append(AppendArgs {
            data: Some(data), ..
        }) => {
            let source = match data.as_str() {
                "-" => Source::Stdin,
                _ => Source::Argument(data),
            };
            append::run(&wal, source, out, stored)
        }
        command => execute(&wal, command, &config.origins, out),
    };
    if args.verbose {
        log_summary(&counts.lock().expect("no panics while counting"));
    }
    result
}

/// A record offset from the command line: a whole number of at least
/// `min`, without sign or spaces.
fn parse_offset(raw: &str, min: u64) -> Result<u64, String> {
    let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<u64>() {
        Ok(offset) if digits && offset >= min => Ok(offset),
        _ => Err(format!(
            "offset must be a whole number from {min} to {}, not {raw:?}",
            u64::MAX
        )),
    }
}

/// An offset of a record: read, trim, dump and verify.
fn offset_from_1(raw: &str) -> Result<u64, String> {
    parse_offset(raw, 1)
}

/// An offset to truncate after, where 0 empties the log.
fn offset_from_0(raw: &str) -> Result<u64, String> {
    parse_offset(raw, 0)
}

/// The rules between a command's arguments that argh cannot express,
/// checked before any configuration is read or request made.
fn check_arguments(command: &Command, json: bool) -> Result<(), Error> {
    match command {
        Command::Read(ReadArgs { raw: true, .. }) | Command::Dump(DumpArgs { raw: true, .. })
            if json =>
        {
            Err(Error::Usage(
                "--raw and --json do not go together: --json carries any bytes \
                 (as data_base64 when they are not UTF-8)"
                    .into(),
            ))
        }
        Command::Dump(DumpArgs {
            follow: true,
            to: Some(_),
            ..
        }) => Err(Error::Usage("dump --follow takes no --to".into())),
        Command::Dump(DumpArgs {
            from: Some(from),
            to: Some(to),
            ..
        }) if from > to => Err(Error::Usage(format!(
            "dump --from {from} --to {to}: --from is past --to"
        ))),
        Command::Dump(DumpArgs {
            from: Some(_),
            last: Some(_),
            ..
        }) => Err(Error::Usage("dump takes --from or --last, not both".into())),
        Command::Dump(DumpArgs {
            follow: false,
            idle_timeout: Some(_),
            ..
        }) => Err(Error::Usage("--idle-timeout is for dump --follow".into())),
        Command::Dump(DumpArgs {
            cursor: Some(_),
            last,
            follow,
            ..
        }) if last.is_some() || *follow => Err(Error::Usage(
            "dump --cursor starts where the cursor is (or at --from): it takes no --last or \
             --follow"
                .into(),
        )),
        Command::Append(AppendArgs { lines, data }) if *lines == data.is_some() => Err(
            Error::Usage("append takes either data (or - for stdin) or --lines".into()),
        ),
        _ => Ok(()),
    }
}

fn execute(
    wal: &Wal<Client>,
    command: Command,
    origins: &[Origin],
    out: &mut Output,
) -> Result<(), Error> {
    match command {
        Command::Recover(_) => out.last_offset(wal.recover()?),
        // `run` has taken every append.
        Command::Append(_) => Ok(()),
        Command::Read(ReadArgs { offset, raw }) => {
            let Record { offset, data } = wal.read(offset)?;
            match raw {
                true => out.bytes(&data),
                false => out.read(offset, &data),
            }
        }
        Command::Last(_) => {
            let Record { offset, data } = wal.last()?;
            out.last(offset, &data)
        }
        Command::Truncate(TruncateArgs {
            after,
            dry_run: true,
        }) => out.would_delete(wal.truncate_plan(after)?),
        Command::Truncate(TruncateArgs { after, .. }) => {
            let deleted = wal.truncate(after)?;
            out.truncated(after, deleted)
        }
        Command::Trim(trim) => {
            let before = match trim.keep_cursors {
                true => unconsumed(wal, trim.before)?,
                false => trim.before,
            };
            match trim.dry_run {
                true => out.would_delete(wal.trim_plan(before)?),
                false => {
                    let deleted = wal.trim(before)?;
                    out.trimmed(before, deleted)
                }
            }
        }
        Command::Stat(_) => out.stat(&wal.status()?),
        Command::Doctor(_) => {
            let findings = s3wal::diagnose(wal, origins);
            for finding in &findings {
                out.finding(finding)?;
            }
            match findings.iter().all(|f| f.ok) {
                true => Ok(()),
                false => Err(Error::Config("doctor found a problem".into())),
            }
        }
        Command::Verify(VerifyArgs { from, to }) => verify(wal, from, to, out),
        Command::Dump(dump) if dump.follow => follow(wal, &dump, out),
        Command::Dump(dump) if dump.cursor.is_some() => dump_from_cursor(wal, &dump, out),
        Command::Dump(dump) => {
            let Some(ends) = wal.ends()? else {
                return Ok(());
            };
            let (from, trimmed) = match dump.last {
                // The last N of a log shorter than N: all of it.
                Some(n) => (Some(last_n_from(ends.last, n)), Trimmed::Skip),
                None => (dump.from, dump.trimmed()),
            };
            print_range(wal, dump_range(&ends, from, &dump, trimmed)?, dump.raw, out)
        }
    }
}

/// `trim --keep-cursors`: `before`, or lower, so that no record a named
/// cursor has not consumed goes.
fn unconsumed(wal: &Wal<Client>, before: u64) -> Result<u64, Error> {
    let cursors = wal.cursors()?;
    let lowest = cursors.iter().map(|c| c.at.saturating_add(1)).min();
    Ok(lowest.map_or(before, |lowest| before.min(lowest)))
}

/// `dump --cursor NAME`: the records after where the cursor is (or from
/// `--from`, to set it back), then the
/// cursor moved on to the last one printed, once stdout took them all: a
/// run that fails midway moves it nowhere, so the next resumes where this
/// one did (records may come twice, never go missing). A consumer that
/// fell behind a trim is told, as with `--from`.
fn dump_from_cursor(wal: &Wal<Client>, dump: &DumpArgs, out: &mut Output) -> Result<(), Error> {
    let cursor = wal.cursor(dump.cursor.as_deref().unwrap_or_default())?;
    let ends = wal.ends()?;
    let tail = ends.as_ref().map_or(0, |ends| ends.last);
    if cursor.at > tail && dump.from.is_none() {
        return Err(Error::CursorAhead {
            name: cursor.name,
            at: cursor.at,
            tail,
        });
    }
    let from = dump.from.unwrap_or(cursor.at.saturating_add(1));
    let Some(ends) = ends else {
        return Ok(());
    };
    let Some((from, to)) = dump_range(&ends, Some(from), dump, dump.trimmed())? else {
        return Ok(());
    };
    print_range(wal, Some((from, to)), dump.raw, out)?;
    out.flush()?;
    wal.advance_cursor(&cursor, to).map(|_| ())
}

/// The offsets a dump from `from` prints: within the log's `ends` (a
/// `from` below its first record as `trimmed` says), up to `--to` and
/// `--max-records`; `None` when there are none.
fn dump_range(
    ends: &Stat,
    from: Option<u64>,
    dump: &DumpArgs,
    trimmed: Trimmed,
) -> Result<Option<(u64, u64)>, Error> {
    let Some((from, to)) = ends.clamp(from, dump.to, trimmed)? else {
        return Ok(None);
    };
    Ok(match dump.max_records {
        Some(0) => None,
        Some(most) => Some((from, to.min(from.saturating_add(most - 1)))),
        None => Some((from, to)),
    })
}

/// Prints the records of `range` in order (their data alone with `raw`),
/// with progress on a terminal that is not where they go.
fn print_range(
    wal: &Wal<Client>,
    range: Option<(u64, u64)>,
    raw: bool,
    out: &mut Output,
) -> Result<(), Error> {
    let Some((from, to)) = range else {
        return Ok(());
    };
    let progress = Progress::new("dumped", out.json(), io::stdout().is_terminal());
    let total = to - from + 1;
    wal.read_range(from, to, |Record { offset, data }| {
        progress.show(offset - from + 1, total);
        match raw {
            true => out.raw(offset, &data),
            false => out.read(offset, &data),
        }
    })
}

/// Where the last `n` records of a log whose tail is `tail` start: past
/// the tail for 0, never below 1.
fn last_n_from(tail: u64, n: u64) -> u64 {
    tail.saturating_add(1).saturating_sub(n).max(1)
}

/// `dump --follow`: from `--from`, or `--last N` records before the end
/// (no earlier than the first record: a trimmed log never gets its low
/// offsets back), until `--max-records`, `--idle-timeout`, the reader of
/// stdout going away, or a signal.
fn follow(wal: &Wal<Client>, dump: &DumpArgs, out: &mut Output) -> Result<(), Error> {
    let from = match (wal.first()?, dump.last) {
        (Some(first), Some(n)) => last_n_from(wal.recover()?, n).max(first),
        (None, Some(_)) => 1,
        (Some(first), None) => dump.trimmed().start(dump.from, first)?,
        (None, None) => dump.from.unwrap_or(1),
    };
    let mut left = dump.max_records;
    if left == Some(0) {
        return Ok(());
    }
    let idle_timeout = dump.idle_timeout.map(Duration::from_secs);
    wal.follow(
        from,
        |Record { offset, data }| {
            match dump.raw {
                true => out.raw(offset, &data)?,
                false => out.read(offset, &data)?,
            }
            out.flush()?;
            left = left.map(|n| n - 1);
            Ok(match left {
                Some(0) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
        },
        |idle_for| {
            Output::reader_gone()?;
            Ok(match idle_timeout {
                Some(timeout) if idle_for >= timeout => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
        },
    )
}

/// `verify`: one line per problem and a summary on stdout; progress on
/// stderr when it is a terminal.
fn verify(
    wal: &Wal<Client>,
    from: Option<u64>,
    to: Option<u64>,
    out: &mut Output,
) -> Result<(), Error> {
    let progress = Progress::new("verified", out.json(), false);
    let summary = wal.verify(
        from,
        to,
        |problem| out.problem(problem),
        |done, total| progress.show(done, total),
    )?;
    out.verified(&summary)?;
    match summary.is_clean() {
        true => Ok(()),
        false => Err(Error::VerifyFailed {
            problems: summary.corrupt + summary.missing + summary.foreign,
        }),
    }
}

/// `--verbose`: one line per request, never the query string.
fn log_exchange(exchange: &Exchange, counts: &Mutex<BTreeMap<&'static str, u64>>) {
    let status = exchange
        .status
        .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
    to_stderr(format_args!(
        "[s3wal] {} {} {} {} {}ms",
        exchange.method,
        exchange.action,
        exchange.target,
        status,
        exchange.elapsed.as_millis()
    ));
    *counts
        .lock()
        .expect("no panics while counting")
        .entry(exchange.action)
        .or_default() += 1;
}

fn log_summary(counts: &BTreeMap<&'static str, u64>) {
    let total: u64 = counts.values().sum();
    let kinds: Vec<String> = counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
    to_stderr(format_args!(
        "[s3wal] requests: {total} ({})",
        kinds.join(" ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(args: &[&str]) -> Vec<String> {
        normalise_args(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn option_with_an_equals_sign_is_split() {
        assert_eq!(
            normalised(&["--bucket=b", "--timeout=5", "read", "1"]),
            ["--bucket", "b", "--timeout", "5", "read", "1"]
        );
    }

    #[test]
    fn value_may_hold_an_equals_sign() {
        assert_eq!(normalised(&["--prefix=a=b"]), ["--prefix", "a=b"]);
    }

    #[test]
    fn seed_single_dash_flags_read_as_double_dash() {
        assert_eq!(
            normalised(&["-bucket", "b", "-prefix=p", "-region", "r", "recover"]),
            ["--bucket", "b", "--prefix", "p", "--region", "r", "recover"]
        );
    }

    #[test]
    fn other_single_dash_words_are_left_alone() {
        assert_eq!(normalised(&["-v", "-x=y", "a=b"]), ["-v", "-x=y", "a=b"]);
    }

    #[test]
    fn nothing_after_a_double_dash_is_touched() {
        assert_eq!(
            normalised(&["append", "--", "--x=y", "-bucket"]),
            ["append", "--", "--x=y", "-bucket"]
        );
    }

    #[test]
    fn short_h_is_help_anywhere_and_short_v_capital_the_version() {
        assert_eq!(
            normalised(&["-h", "dump", "-h"]),
            ["--help", "dump", "--help"]
        );
        assert_eq!(normalised(&["append", "--", "-h"]), ["append", "--", "-h"]);
        assert!(parse(&["-V"]).unwrap().version);
    }

    #[test]
    fn lone_dash_is_stdin_and_ends_the_options() {
        assert_eq!(normalised(&["append", "-"]), ["append", "--", "-"]);
    }

    #[test]
    fn every_documented_option_parses_with_an_equals_sign() {
        let args = normalised(&[
            "--profile=p",
            "--bucket=b",
            "--prefix=w",
            "--region=us-east-1",
            "--endpoint=http://127.0.0.1:9",
            "--lock-dir=/tmp/l",
            "--retries=1",
            "--timeout=2",
            "--ca-bundle=/tmp/ca.pem",
            "--parallel=16",
            "dump",
            "--from=1",
            "--to=2",
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let parsed = parse(&args).unwrap();
        assert_eq!(parsed.flags.given(settings::BUCKET), Some("b"));
        assert_eq!(parsed.flags.given(settings::TIMEOUT), Some("2"));
        assert_eq!(parsed.flags.given(settings::PARALLEL), Some("16"));
        let Some(Command::Dump(dump)) = parsed.command else {
            panic!("not a dump")
        };
        assert_eq!((dump.from, dump.to), (Some(1), Some(2)));
    }

    #[test]
    fn global_options_are_refused_in_argh_words() {
        for (args, expected) in [
            (
                &["--retries", "x", "recover"][..],
                "Error parsing option '--retries' with value 'x': invalid digit found in string",
            ),
            (
                &["--retries", "4294967296"],
                "Error parsing option '--retries' with value '4294967296': number too large \
                 to fit in target type",
            ),
            (&["--bucket"], "No value provided for option '--bucket'."),
            (
                &["--bucket", "a", "--bucket", "b"],
                "Error parsing option '--bucket' with value 'b': duplicate values provided",
            ),
            (&["--nope", "recover"], "Unrecognized argument: --nope"),
            (
                &["--help", "--json"],
                "Trailing arguments are not allowed after `help`.",
            ),
        ] {
            let error = parse(args).unwrap_err();
            assert!(error.status.is_err(), "{args:?}");
            assert_eq!(error.output, expected, "{args:?}");
        }
    }

    #[test]
    fn help_names_every_flag_and_variable_of_the_table() {
        let help = help_text();
        let flags = settings::SETTINGS.iter().filter_map(|s| s.flag.as_ref());
        for word in flags.map(|f| f.name).chain(settings::variables()) {
            assert!(help.contains(word), "{word} missing from:\n{help}");
        }
        for args in [&["--help"][..], &["help"], &["--json", "help"]] {
            assert_eq!(parse(args).unwrap_err().output, help, "{args:?}");
        }
        let recover = parse(&["help", "recover"]).unwrap_err().output;
        assert!(recover.starts_with("Usage: s3wal recover"), "{recover}");
    }

    /// The man page and completions of `make dist` are what `--help` and
    /// each command's help say; `S3WAL_BLESS=1 cargo test --bin s3wal
    /// manual` writes them again after a change.
    #[test]
    fn manual_and_completions_say_what_help_says() {
        let help = help_text();
        let command_help = |name: &str| parse(&["help", name]).unwrap_err().output;
        let manual = manual::Manual::new(help, command_help);
        for (path, make) in manual::FILES {
            let made = make(&manual);
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
            if std::env::var_os("S3WAL_BLESS").is_some() {
                std::fs::write(&path, &made).unwrap();
            }
            let file = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                file == made,
                "{path:?} is not what --help says: S3WAL_BLESS=1"
            );
        }
        // Every option, command and exit code --help names is in the man
        // page, whatever the layout read back.
        let man = (manual::FILES[0].1)(&manual)
            .replace("\\-", "-")
            .replace("\\e", "\\");
        let flags = settings::SETTINGS.iter().filter_map(|s| s.flag.as_ref());
        let options = flags.map(|flag| (flag.name, flag.help));
        for (name, text) in options.chain(SWITCHES).chain([("-h, --help", "")]) {
            assert!(man.contains(&format!(".TP\n\\fB{name}")), "{name}");
            assert!(man.contains(text), "{text}");
        }
        for command in <Command as argh::SubCommands>::COMMANDS {
            let entry = format!(".SS {}\n{}\n", command.name, command.description);
            assert!(man.contains(&entry), "{entry}");
        }
        for (code, meaning) in EXIT_CODES {
            let entry = format!(".TP\n\\fB{code}\\fR\n{meaning}\n");
            assert!(man.contains(&entry), "{entry}");
        }
    }
    fn parsed(args: &[&str]) -> Result<Command, String> {
        match parse(args) {
            Ok(args) => Ok(args.command.unwrap()),
            Err(early) => Err(one_line(&early.output)),
        }
    }

    #[test]
    fn each_command_gets_its_offsets_typed() {
        assert!(matches!(
            parsed(&["read", "3"]),
            Ok(Command::Read(ReadArgs {
                offset: 3,
                raw: false
            }))
        ));
        assert!(matches!(
            parsed(&["truncate", "0"]),
            Ok(Command::Truncate(TruncateArgs {
                after: 0,
                dry_run: false
            }))
        ));
        assert!(matches!(
            parsed(&["trim", "7"]),
            Ok(Command::Trim(TrimArgs {
                before: 7,
                dry_run: false,
                keep_cursors: false
            }))
        ));
        assert!(matches!(
            parsed(&["verify", "--to", "9"]),
            Ok(Command::Verify(VerifyArgs {
                from: None,
                to: Some(9)
            }))
        ));
    }

    #[test]
    fn bad_offsets_are_refused_while_parsing() {
        for args in [
            &["read", "0"][..],
            &["trim", "x"],
            &["dump", "--from", "+1"],
        ] {
            let error = parsed(args).unwrap_err();
            assert!(
                error.contains("offset must be a whole number from 1"),
                "{error}"
            );
        }
        let error = parsed(&["truncate", "-0"]).unwrap_err();
        assert!(error.contains("-0"), "{error}");
        let error = parsed(&["truncate", "1.5"]).unwrap_err();
        assert!(error.contains("from 0"), "{error}");
    }
}
