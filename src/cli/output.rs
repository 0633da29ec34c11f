//! What the CLI prints: the seed's text lines, or with `--json` one JSON
//! object per line, for scripts.
//!
//! Text output is exactly the seed's; data goes out as the raw bytes
//! stored. In JSON, data that is UTF-8 is `"data"`, anything else
//! `"data_base64"`, so no byte is ever lost or mangled.

use std::fmt::{self, Write as _};
use std::io::{self, BufWriter, StdoutLock, Write};
use std::ops::RangeInclusive;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use s3wal::Error;
use s3wal::Finding;
use s3wal::Status;
use s3wal::{Problem, Summary};

use super::failure::CliError;

/// Where the results go, and in which form.
pub struct Output {
    json: bool,
    /// `--quiet`: no line for what a command stored or deleted.
    quiet: bool,
    out: BufWriter<StdoutLock<'static>>,
}

/// A JSON string literal of `text`.
pub fn json_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04x}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `"data":"…"` for UTF-8 data, else `"data_base64":"…"`.
fn json_data(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => format!("\"data\":{}", json_string(text)),
        Err(_) => format!("\"data_base64\":\"{}\"", BASE64.encode(data)),
    }
}

fn stdout_error(source: io::Error) -> Error {
    Error::Io {
        context: "cannot write to stdout".into(),
        source,
    }
}

/// `N records`, `1 record`.
struct Records(u64);

impl fmt::Display for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 record"),
            n => write!(f, "{n} records"),
        }
    }
}

/// What a truncate or trim deleted: `Deleted N records`, or `Nothing to
/// delete` when the log already ended (or started) there.
struct Deleted(u64);

impl fmt::Display for Deleted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("Nothing to delete"),
            n => write!(f, "Deleted {}", Records(n)),
        }
    }
}

impl Output {
    /// Text, or JSON lines with `json`; with `quiet`, nothing for what a
    /// command stored or deleted (what was asked for is still printed).
    pub fn new(json: bool, quiet: bool) -> Output {
        Output {
            json,
            quiet,
            out: BufWriter::new(io::stdout().lock()),
        }
    }

    /// Whether lines are JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// A line that says what a command did, which `--quiet` leaves out.
    fn done(&mut self, text: String, fields: String) -> Result<(), Error> {
        match self.quiet {
            true => Ok(()),
            false => self.either(text, fields),
        }
    }

    fn line(&mut self, line: &[u8]) -> Result<(), Error> {
        self.line_of(&[line])
    }

    /// The concatenation of `parts` as one line, written part by part: a
    /// big record's data goes out from where it is, never copied into a
    /// line first.
    fn line_of(&mut self, parts: &[&[u8]]) -> Result<(), Error> {
        parts
            .iter()
            .chain([&&b"\n"[..]])
            .try_for_each(|part| self.out.write_all(part))
            .map_err(stdout_error)
    }

    /// `text` as a line, or the JSON object `{fields}`.
    fn either(&mut self, text: String, fields: String) -> Result<(), Error> {
        match self.json {
            true => self.line(format!("{{{fields}}}").as_bytes()),
            false => self.line(text.as_bytes()),
        }
    }

    /// A seed record line, `<before><offset><between><data>`, or its JSON.
    fn record(
        &mut self,
        before: &str,
        offset: u64,
        between: &str,
        data: &[u8],
    ) -> Result<(), Error> {
        if self.json {
            return self.line(format!("{{\"offset\":{offset},{}}}", json_data(data)).as_bytes());
        }
        let head = format!("{before}{offset}{between}");
        self.line_of(&[head.as_bytes(), data])
    }

    /// An error like a write's to a closed pipe once whoever read stdout
    /// is gone (`dump --follow | head -1`), found without writing: while a
    /// follow waits for the next record there is nothing to write.
    pub fn reader_gone() -> Result<(), Error> {
        let mut stdout = libc::pollfd {
            fd: libc::STDOUT_FILENO,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd, a zero timeout; poll only reads the fd's state.
        let ready = unsafe { libc::poll(&mut stdout, 1, 0) };
        match ready > 0 && stdout.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            true => Err(stdout_error(io::ErrorKind::BrokenPipe.into())),
            false => Ok(()),
        }
    }

    /// Sends what is buffered; called at the end, and while following.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.out.flush().map_err(stdout_error)
    }

    /// `s3wal <version> (commit <commit>, <target>)`: what `build.rs`
    /// found when it built this binary.
    pub fn version(&mut self) -> Result<(), Error> {
        let (version, commit, target) = (
            env!("CARGO_PKG_VERSION"),
            env!("S3WAL_COMMIT"),
            env!("S3WAL_TARGET"),
        );
        self.either(
            format!("s3wal {version} (commit {commit}, {target})"),
            format!(
                "\"version\":{},\"commit\":{},\"target\":{}",
                json_string(version),
                json_string(commit),
                json_string(target)
            ),
        )
    }

    /// `Last offset: N`
    pub fn last_offset(&mut self, offset: u64) -> Result<(), Error> {
        self.either(
            format!("Last offset: {offset}"),
            format!("\"last\":{offset}"),
        )
    }

    /// `Appended record at offset: N, data: <data>`
    pub fn appended(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        match self.quiet {
            true => Ok(()),
            false => self.record("Appended record at offset: ", offset, ", data: ", data),
        }
    }

    /// `Appended record at offset: N, bytes: <size>`, for data read from
    /// stdin, which may be anything up to 5 GiB and is not echoed back.
    pub fn appended_bytes(&mut self, offset: u64, bytes: u64) -> Result<(), Error> {
        self.done(
            format!("Appended record at offset: {offset}, bytes: {bytes}"),
            format!("\"offset\":{offset},\"bytes\":{bytes}"),
        )
    }

    /// `Offset: N, Data: <data>`, from `read` and `dump`.
    pub fn read(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.record("Offset: ", offset, ", Data: ", data)
    }

    /// Just the data and a newline, for `dump --raw` (JSON as `read`).
    pub fn raw(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        match self.json {
            true => self.read(offset, data),
            false => self.line(data),
        }
    }

    /// The data alone, byte for byte, for `read --raw`.
    pub fn bytes(&mut self, data: &[u8]) -> Result<(), Error> {
        self.out.write_all(data).map_err(stdout_error)
    }

    /// `Last record: offset=N, data=<data>`
    pub fn last(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.record("Last record: offset=", offset, ", data=", data)
    }

    /// `Truncated WAL after offset N`
    /// then `Deleted N records` (the seed's line stays as it was).
    pub fn truncated(&mut self, after: u64, deleted: u64) -> Result<(), Error> {
        self.done(
            format!("Truncated WAL after offset {after}\n{}", Deleted(deleted)),
            format!("\"truncated_after\":{after},\"deleted\":{deleted}"),
        )
    }

    /// `Trimmed WAL before offset N`
    /// then `Deleted N records` (the seed's line stays as it was).
    pub fn trimmed(&mut self, before: u64, deleted: u64) -> Result<(), Error> {
        self.done(
            format!("Trimmed WAL before offset {before}\n{}", Deleted(deleted)),
            format!("\"trimmed_before\":{before},\"deleted\":{deleted}"),
        )
    }

    /// `Would delete N records: offsets F..L`, or `Nothing to delete`: a
    /// truncate's or trim's dry run.
    pub fn would_delete(&mut self, offsets: Option<RangeInclusive<u64>>) -> Result<(), Error> {
        let Some(offsets) = offsets else {
            return self.either(
                "Nothing to delete".into(),
                "\"dry_run\":true,\"would_delete\":0".into(),
            );
        };
        let (first, last) = (*offsets.start(), *offsets.end());
        self.either(
            format!(
                "Would delete {}: offsets {first}..{last}",
                Records(last - first + 1)
            ),
            format!(
                "\"dry_run\":true,\"would_delete\":{},\"first\":{first},\"last\":{last}",
                last - first + 1
            ),
        )
    }

    /// `First offset: F, Last offset: L, Records: N` (zeros when empty),
    /// then `Running fence: …` when a truncate, trim or repair runs; in
    /// JSON one object, with a `fence` object when one runs.
    pub fn stat(&mut self, status: &Status) -> Result<(), Error> {
        let (first, last, records) = status
            .stat
            .as_ref()
            .map_or((0, 0, 0), |s| (s.first, s.last, s.records));
        let mut text = format!("First offset: {first}, Last offset: {last}, Records: {records}");
        let mut fields = format!("\"first\":{first},\"last\":{last},\"records\":{records}");
        if let Some(fence) = &status.running {
            let time = |millis: Option<i64>| millis.map_or("null".to_owned(), |m| m.to_string());
            let _ = write!(text, "\nRunning fence: {fence}");
            let _ = write!(
                fields,
                ",\"fence\":{{\"seq\":{},\"what\":{},\"holder\":{},\"since_ms\":{},\
                 \"takeover_at_ms\":{},\"description\":{}}}",
                fence.seq,
                json_string(&fence.what),
                fence
                    .holder
                    .as_deref()
                    .map_or("null".to_owned(), json_string),
                time(fence.since),
                time(fence.takeover_at),
                json_string(&fence.to_string())
            );
        }
        if !status.cursors.is_empty() {
            let cursors: Vec<String> = status
                .cursors
                .iter()
                .map(|c| format!("{{\"name\":{},\"at\":{}}}", json_string(&c.name), c.at))
                .collect();
            let _ = write!(fields, ",\"cursors\":[{}]", cursors.join(","));
        }
        for cursor in &status.cursors {
            let _ = write!(
                text,
                "\nCursor {}: consumed up to offset {}",
                cursor.name, cursor.at
            );
        }
        self.either(text, fields)
    }

    /// `<check>: ok: <detail>` or `<check>: PROBLEM: <detail>`
    pub fn finding(&mut self, finding: &Finding) -> Result<(), Error> {
        let verdict = if finding.ok { "ok" } else { "PROBLEM" };
        self.either(
            format!("{}: {verdict}: {}", finding.check, finding.detail),
            format!(
                "\"check\":{},\"ok\":{},\"detail\":{}",
                json_string(finding.check),
                finding.ok,
                json_string(&finding.detail)
            ),
        )
    }

    /// One problem `verify` found.
    pub fn problem(&mut self, problem: &Problem) -> Result<(), Error> {
        let (text, fields) = match problem {
            Problem::ForeignKey(key) => (
                format!("Foreign key: {key}"),
                format!("\"problem\":\"foreign_key\",\"key\":{}", json_string(key)),
            ),
            Problem::Hole { first, last } => (
                match first == last {
                    true => format!("Hole: offset {first} missing"),
                    false => format!("Hole: offsets {first}..{last} missing"),
                },
                format!("\"problem\":\"hole\",\"first\":{first},\"last\":{last}"),
            ),
            Problem::Corrupt { offset, problem } => (
                format!("Corrupt: offset {offset}: {problem}"),
                format!(
                    "\"problem\":\"corrupt\",\"offset\":{offset},\"detail\":{}",
                    json_string(&problem.to_string())
                ),
            ),
        };
        self.either(text, fields)
    }

    /// The summary line of `verify`.
    pub fn verified(&mut self, summary: &Summary) -> Result<(), Error> {
        let covered = match summary.range {
            Some((first, last)) => format!("records {first}..{last}"),
            None => "no records".to_owned(),
        };
        let (first, last) = summary.range.unwrap_or((0, 0));
        self.either(
            format!(
                "Verified {covered}: {} valid, {} corrupt, {} missing, {} foreign keys",
                summary.valid, summary.corrupt, summary.missing, summary.foreign
            ),
            format!(
                "\"ok\":{},\"first\":{first},\"last\":{last},\"valid\":{},\"corrupt\":{},\
                 \"missing\":{},\"foreign\":{}",
                summary.is_clean(),
                summary.valid,
                summary.corrupt,
                summary.missing,
                summary.foreign
            ),
        )
    }
}

/// The one line an error prints on stderr: `s3wal: <message>`, or with
/// `json` the object `{"code":…,"exit":…,"message":…}`; what an append
/// stored before the error is named, and adds `"stored":{"count":N,
/// "offsets":[[first,last],…]}`.
pub fn error_line(failure: &CliError, json: bool) -> String {
    let CliError {
        error,
        exit,
        stored,
    } = failure;
    let mut message = error.to_string();
    if let Some(stored) = stored {
        let _ = write!(
            message,
            "; {stored} already stored: do not append again what was stored"
        );
    }
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match json {
        true => format!(
            "{{\"code\":{},\"exit\":{exit},\"message\":{}{}}}",
            json_string(failure.code()),
            json_string(&message),
            stored.as_ref().map_or_else(String::new, |stored| format!(
                ",\"stored\":{{\"count\":{},\"offsets\":[{}]}}",
                stored.count(),
                stored
                    .runs()
                    .map(|(first, last)| format!("[{first},{last}]"))
                    .collect::<Vec<_>>()
                    .join(",")
            ))
        ),
        false => format!("s3wal: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    /// serde_json, an independent decoder, reads every string back as it
    /// was: controls, quotes, backslashes, non-ASCII, and the separators
    /// JSON allows raw but JavaScript once did not (U+2028, U+2029).
    #[test]
    fn json_strings_read_back_as_the_text_by_serde_json() {
        let every_control: String = (0..=0x9f).filter_map(char::from_u32).collect();
        let tricky = [
            "",
            "Record #1",
            "quote \" backslash \\ slash /",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}",
            "\\u0041 is not an escape here",
            "é, 日本語, 🦀",
            "\u{2028}\u{2029}\u{feff}\u{fffd}",
            &every_control,
        ];
        for text in tricky {
            let decoded: String = serde_json::from_str(&json_string(text)).unwrap();
            assert_eq!(decoded, text);
        }
    }

    #[test]
    fn utf8_data_is_a_string_and_other_bytes_are_base64() {
        assert_eq!(json_data(b"Record #1"), "\"data\":\"Record #1\"");
        assert_eq!(json_data(b"\xff\x00"), "\"data_base64\":\"/wA=\"");
    }

    #[test]
    fn errors_in_json_carry_a_code_and_the_exit_code() {
        let line = error_line(&Error::NotFound { offset: 4 }.into(), true);
        assert_eq!(
            line,
            "{\"code\":\"not_found\",\"exit\":3,\"message\":\"no record at offset 4\"}"
        );
    }
}
