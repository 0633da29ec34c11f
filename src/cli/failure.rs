//! What a failed command tells the shell: its exit code and, for
//! `--json`, a stable code naming the kind of error.
//!
//! The library says what went wrong; this is the policy a script sees,
//! documented in README.md ("Exit codes") and `s3wal --help`, so it lives
//! with the command line (as cargo's `CliError` does).

use s3wal::Error;

use super::stored::Stored;

/// Exit codes, documented in README.md and `s3wal --help`.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Network, S3, configuration or local I/O failure.
    pub const FAILURE: u8 = 1;
    /// Bad command line.
    pub const USAGE: u8 = 2;
    /// The record does not exist, or the log is empty.
    pub const NOT_FOUND: u8 = 3;
    /// A stored record failed a check.
    pub const INTEGRITY: u8 = 4;
    /// An append lost the race for a free offset more often than allowed.
    pub const APPEND_GAVE_UP: u8 = 5;
    /// An append stored records (or may have) and then failed: stderr
    /// names their offsets, so they must not be appended again blindly.
    pub const STORED_THEN_FAILED: u8 = 6;
    /// A truncate, trim or repair was paused or cut off past its fence's
    /// lease, and another machine took the fence over.
    pub const FENCE_LOST: u8 = 7;
    /// The offset asked for was trimmed: the log now starts later, and a
    /// consumer resuming there has missed records.
    pub const TRIMMED: u8 = 8;
    /// A named cursor cannot go on: another consumer of the same name
    /// moved it on first (the records printed were consumed by both), or
    /// a truncate cut the log below it.
    pub const CURSOR_MOVED: u8 = 9;
}

/// A command that failed: the error, and what it means to the process.
#[derive(Debug)]
pub struct CliError {
    /// What went wrong.
    pub error: Error,
    /// The process exit code.
    pub exit: u8,
    /// What an append stored before the error, as `the record at offset 7`.
    pub stored: Option<Stored>,
}

impl CliError {
    /// The failure of a command that stored `stored` before `error`: any
    /// record stored, or one that may have been, makes it
    /// [`exit::STORED_THEN_FAILED`], whatever the error, so that a script
    /// never appends those records again blindly.
    pub fn after(error: Error, stored: &Stored) -> CliError {
        let exit = match stored.is_empty() {
            true => exit_code(&error),
            false => exit::STORED_THEN_FAILED,
        };
        CliError {
            stored: (!stored.is_empty()).then(|| stored.clone()),
            error,
            exit,
        }
    }

    /// The stable name of the kind of error, for `--json` output.
    pub fn code(&self) -> &'static str {
        json_code(&self.error)
    }
}

impl From<Error> for CliError {
    /// The failure of a command that stored nothing.
    fn from(error: Error) -> CliError {
        CliError::after(error, &Stored::default())
    }
}

/// The exit code of `error` when nothing was stored.
fn exit_code(error: &Error) -> u8 {
    match error {
        Error::Usage(_)
        | Error::TrimPastTail { .. }
        | Error::TruncateBelowFirst { .. }
        | Error::RecordTooLarge { .. } => exit::USAGE,
        Error::NotFound { .. } | Error::Empty => exit::NOT_FOUND,
        Error::Corrupt { .. } | Error::Hole { .. } | Error::VerifyFailed { .. } => exit::INTEGRITY,
        Error::AppendGaveUp { .. }
        | Error::FenceBusy { .. }
        | Error::FenceContended { .. }
        | Error::UnsafeTakeover { .. } => exit::APPEND_GAVE_UP,
        Error::FenceLost { .. } => exit::FENCE_LOST,
        Error::Trimmed { .. } => exit::TRIMMED,
        Error::CursorMoved { .. } | Error::CursorAhead { .. } => exit::CURSOR_MOVED,
        // Both say the record may be stored, at an offset they name.
        Error::MaybeStored { .. } | Error::Conflicted { .. } => exit::STORED_THEN_FAILED,
        Error::Config(_)
        | Error::Credentials { .. }
        | Error::Transport { .. }
        | Error::Protocol { .. }
        | Error::S3 { .. }
        | Error::LogFull
        | Error::UnsafeStore
        | Error::Interrupted { .. }
        | Error::Io { .. } => exit::FAILURE,
    }
}

/// The `--json` code of `error`.
fn json_code(error: &Error) -> &'static str {
    match error {
        Error::Usage(_) => "usage",
        Error::Config(_) => "config",
        Error::Credentials { .. } => "credentials",
        Error::Transport { .. } => "transport",
        Error::Protocol { .. } => "protocol",
        Error::S3 { .. } => "s3",
        Error::NotFound { .. } => "not_found",
        Error::Empty => "empty",
        Error::Trimmed { .. } => "trimmed",
        Error::CursorMoved { .. } => "cursor_moved",
        Error::CursorAhead { .. } => "cursor_ahead",
        Error::Corrupt { .. } => "corrupt",
        Error::Hole { .. } => "hole",
        Error::VerifyFailed { .. } => "verify_failed",
        Error::AppendGaveUp { .. } => "append_gave_up",
        Error::Conflicted { .. } => "conflicted",
        Error::TrimPastTail { .. } => "trim_past_tail",
        Error::TruncateBelowFirst { .. } => "truncate_below_first",
        Error::UnsafeStore => "unsafe_store",
        Error::LogFull => "log_full",
        Error::FenceBusy { .. } => "fence_busy",
        Error::FenceContended { .. } => "fence_contended",
        Error::FenceLost { .. } => "fence_lost",
        Error::UnsafeTakeover { .. } => "unsafe_takeover",
        Error::MaybeStored { .. } => "maybe_stored",
        Error::RecordTooLarge { .. } => "record_too_large",
        Error::Interrupted { .. } => "interrupted",
        Error::Io { .. } => "io",
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::Duration;

    use s3wal::error::{ProtocolKind, TransportKind};
    use s3wal::record::Corruption;

    use super::*;

    fn transport() -> Error {
        Error::Transport {
            request: "PutObject wal/k".into(),
            host: "h:1".into(),
            kind: TransportKind::Reset,
            attempts: 1,
            elapsed: Duration::ZERO,
            body_never_arrived: false,
            source: Box::new(io::Error::from(io::ErrorKind::ConnectionReset)),
        }
    }

    /// One error of every kind, with the exit code and the `--json` code
    /// README.md and `--help` document for it.
    fn every_error() -> Vec<(Error, u8, &'static str)> {
        vec![
            (Error::Usage("u".into()), 2, "usage"),
            (Error::Config("c".into()), 1, "config"),
            (transport(), 1, "transport"),
            (
                Error::Protocol {
                    request: "GetObject wal/k".into(),
                    host: None,
                    kind: ProtocolKind::ScratchKeyMissing,
                    source: None,
                },
                1,
                "protocol",
            ),
            (
                Error::S3 {
                    request: "GetObject wal/k".into(),
                    status: 403,
                    permission: None,
                    code: None,
                    message: None,
                    request_id: None,
                    may_have_acted: false,
                },
                1,
                "s3",
            ),
            (Error::NotFound { offset: 4 }, 3, "not_found"),
            (Error::Empty, 3, "empty"),
            (
                Error::Trimmed {
                    offset: 4,
                    first: 9,
                },
                8,
                "trimmed",
            ),
            (
                Error::CursorMoved {
                    name: "etl".into(),
                    from: 4,
                },
                9,
                "cursor_moved",
            ),
            (
                Error::CursorAhead {
                    name: "etl".into(),
                    at: 9,
                    tail: 4,
                },
                9,
                "cursor_ahead",
            ),
            (
                Error::Corrupt {
                    offset: 4,
                    problem: Corruption::ChecksumMismatch,
                },
                4,
                "corrupt",
            ),
            (Error::VerifyFailed { problems: 2 }, 4, "verify_failed"),
            (
                Error::AppendGaveUp {
                    attempts: 3,
                    offset: 9,
                },
                5,
                "append_gave_up",
            ),
            (
                Error::Conflicted {
                    key: "wal/k".into(),
                    attempts: 3,
                },
                6,
                "conflicted",
            ),
            (
                Error::TrimPastTail {
                    keep_from: 9,
                    tail: 4,
                },
                2,
                "trim_past_tail",
            ),
            (
                Error::TruncateBelowFirst {
                    after: 3,
                    first: 10,
                },
                2,
                "truncate_below_first",
            ),
            (Error::Hole { first: 4, last: 6 }, 4, "hole"),
            (Error::UnsafeStore, 1, "unsafe_store"),
            (Error::LogFull, 1, "log_full"),
            (
                Error::FenceBusy {
                    fence: "truncate after 4".into(),
                    seq: 2,
                    holder: None,
                    waited: 120,
                    takeover_at: None,
                },
                5,
                "fence_busy",
            ),
            (Error::FenceContended { attempts: 20 }, 5, "fence_contended"),
            (
                Error::UnsafeTakeover {
                    fence: "trim before 4".into(),
                    seq: 3,
                    holder: None,
                },
                5,
                "unsafe_takeover",
            ),
            (
                Error::FenceLost {
                    fence: "truncate after 4".into(),
                    seq: 2,
                    lease: 30,
                    deleted: 3,
                },
                7,
                "fence_lost",
            ),
            (
                Error::MaybeStored {
                    offset: 4,
                    source: Box::new(transport()),
                },
                6,
                "maybe_stored",
            ),
            (Error::Interrupted { signal: "SIGINT" }, 1, "interrupted"),
            (Error::RecordTooLarge { max: 1 }, 2, "record_too_large"),
            (
                Error::Io {
                    context: "cannot read .env".into(),
                    source: io::ErrorKind::NotFound.into(),
                },
                1,
                "io",
            ),
        ]
    }

    #[test]
    fn every_error_has_its_documented_exit_code_and_json_code() {
        for (error, exit, code) in every_error() {
            let described = format!("{error:?}");
            let failure = CliError::from(error);
            assert_eq!((failure.exit, failure.code()), (exit, code), "{described}");
            assert!(failure.stored.is_none());
        }
    }

    #[test]
    fn any_error_after_a_stored_record_is_stored_then_failed_and_names_it() {
        let mut stored = Stored::default();
        stored.push(7);
        for (error, _, code) in every_error() {
            let failure = CliError::after(error, &stored);
            assert_eq!(failure.exit, exit::STORED_THEN_FAILED);
            assert_eq!(failure.code(), code);
            assert_eq!(
                failure.stored.map(|s| s.to_string()).as_deref(),
                Some("the record at offset 7")
            );
        }
    }
}
