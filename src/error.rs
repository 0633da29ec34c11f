//! Errors with the context a user needs to act on them, and the exit code
//! each one maps to.

use std::fmt;

use crate::record::Corruption;

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
}

/// Everything that can go wrong in s3wal.
#[derive(Debug)]
pub enum Error {
    /// Bad input from the user: an argument, an offset, a prefix.
    Usage(String),
    /// Incomplete or contradictory configuration.
    Config(String),
    /// The request never got an HTTP answer (DNS, connect, reset, timeout),
    /// or its answer kept arriving damaged.
    Transport {
        /// What was asked, as `METHOD key`; never the signed URL.
        request: String,
        /// What went wrong.
        message: String,
        /// The request had a body that never reached the store whole (the
        /// upload was cut off, or never started) and no try got an answer
        /// that leaves doubt, so it had no effect: a PUT stored nothing.
        body_never_arrived: bool,
    },
    /// The store answered, but not in a way s3wal can read.
    Protocol {
        /// What was asked, as `METHOD key`; never the signed URL.
        request: String,
        /// What was wrong with the answer.
        message: String,
    },
    /// The store answered with an error status.
    S3 {
        /// What was asked, as `METHOD key`; never the signed URL.
        request: String,
        /// The HTTP status.
        status: u16,
        /// For a 403 that refuses access (not a bad signature), the IAM
        /// permission the request needed, such as `s3:GetObject`.
        permission: Option<&'static str>,
        /// The S3 error code, such as `AccessDenied`, when the body had one.
        code: Option<String>,
        /// The S3 error message, when the body had a non-empty one.
        message: Option<String>,
        /// The request id, for the store's operators.
        request_id: Option<String>,
    },
    /// No record at this offset.
    NotFound {
        /// The offset asked for.
        offset: u64,
    },
    /// The log has no record.
    Empty,
    /// The object at this offset is not a valid record.
    Corrupt {
        /// The offset read.
        offset: u64,
        /// Which check failed.
        problem: Corruption,
    },
    /// `verify` found corrupt records, holes or foreign keys.
    VerifyFailed {
        /// How many problems it reported.
        problems: u64,
    },
    /// Every attempt to append found its offset taken.
    AppendGaveUp {
        /// How many conditional PUTs were tried.
        attempts: u32,
        /// The last offset tried.
        offset: u64,
    },
    /// The store kept answering 409 (a conflicting operation in flight).
    Conflicted {
        /// The key every attempt went to.
        key: String,
        /// How many PUTs were tried.
        attempts: u32,
    },
    /// A trim would have deleted the last record.
    TrimPastTail {
        /// The first offset the trim was asked to keep.
        keep_from: u64,
        /// The log's last offset.
        tail: u64,
    },
    /// The store ignores `If-None-Match: *`, so appending is refused.
    UnsafeStore,
    /// The log already holds a record at the highest possible offset.
    LogFull,
    /// Truncate kept finding new records past the cut: another machine is
    /// still appending.
    TruncateRaced {
        /// The offset truncate keeps.
        after: u64,
    },
    /// A PUT got no answer, so the record may or may not be stored.
    MaybeStored {
        /// Where the record may be.
        offset: u64,
        /// Why no answer came.
        source: Box<Error>,
    },
    /// A signal asked s3wal to stop.
    Interrupted {
        /// `SIGINT`, `SIGTERM` or `SIGHUP`.
        signal: &'static str,
    },
    /// A record's data is longer than one S3 PUT can carry.
    RecordTooLarge {
        /// The most data a record can hold, in bytes.
        max: u64,
    },
    /// A local file (lock, `.env`, stdin) could not be used.
    Io {
        /// What was being done, with the path.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::TrimPastTail { .. } | Error::RecordTooLarge { .. } => {
                exit::USAGE
            }
            Error::NotFound { .. } | Error::Empty => exit::NOT_FOUND,
            Error::Corrupt { .. } | Error::VerifyFailed { .. } => exit::INTEGRITY,
            Error::AppendGaveUp { .. } => exit::APPEND_GAVE_UP,
            Error::Config(_)
            | Error::Transport { .. }
            | Error::Protocol { .. }
            | Error::S3 { .. }
            | Error::LogFull
            | Error::UnsafeStore
            | Error::Conflicted { .. }
            | Error::MaybeStored { .. }
            | Error::Interrupted { .. }
            | Error::TruncateRaced { .. }
            | Error::Io { .. } => exit::FAILURE,
        }
    }

    /// A stable name for the kind of error, for `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::Config(_) => "config",
            Error::Transport { .. } => "transport",
            Error::Protocol { .. } => "protocol",
            Error::S3 { .. } => "s3",
            Error::NotFound { .. } => "not_found",
            Error::Empty => "empty",
            Error::Corrupt { .. } => "corrupt",
            Error::VerifyFailed { .. } => "verify_failed",
            Error::AppendGaveUp { .. } => "append_gave_up",
            Error::Conflicted { .. } => "conflicted",
            Error::TrimPastTail { .. } => "trim_past_tail",
            Error::UnsafeStore => "unsafe_store",
            Error::LogFull => "log_full",
            Error::TruncateRaced { .. } => "truncate_raced",
            Error::MaybeStored { .. } => "maybe_stored",
            Error::RecordTooLarge { .. } => "record_too_large",
            Error::Interrupted { .. } => "interrupted",
            Error::Io { .. } => "io",
        }
    }

    /// The S3 error code of an error answer, such as `AccessDenied`.
    pub fn s3_code(&self) -> Option<&str> {
        match self {
            Error::S3 { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) | Error::Config(message) => f.write_str(message),
            Error::Transport {
                request, message, ..
            }
            | Error::Protocol { request, message } => write!(f, "{request}: {message}"),
            Error::S3 {
                request,
                status,
                permission,
                code,
                message,
                request_id,
            } => {
                write!(f, "{request}: HTTP {status}")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                if let Some(message) = message {
                    write!(f, ": {message}")?;
                }
                if let Some(id) = request_id {
                    write!(f, " (request id {id})")?;
                }
                match (permission, code) {
                    (Some(permission), Some(_)) => write!(
                        f,
                        "; the credentials lack the {permission} permission on this \
                         bucket and prefix (see README, IAM permissions)"
                    ),
                    (Some(permission), None) => write!(
                        f,
                        "; no reason given (a HEAD answer has no body): if the credentials \
                         are right, they lack the {permission} permission on this bucket \
                         and prefix (see README, IAM permissions)"
                    ),
                    (None, _) => Ok(()),
                }
            }
            Error::NotFound { offset } => write!(f, "no record at offset {offset}"),
            Error::Empty => f.write_str("WAL is empty"),
            Error::Corrupt { offset, problem } => {
                write!(f, "record at offset {offset} is corrupt: {problem}")
            }
            Error::VerifyFailed { problems } => {
                write!(f, "verify found {problems} problem(s) in the log")
            }
            Error::AppendGaveUp { attempts, offset } => write!(
                f,
                "could not append: offsets up to {offset} were taken by other writers \
                 in {attempts} attempts; nothing was written, try again"
            ),
            Error::Conflicted { key, attempts } => write!(
                f,
                "PutObject {key}: HTTP 409 in all {attempts} attempts (a conflicting \
                 operation kept running); the record may have been stored there: check \
                 with `read` before appending it again"
            ),
            Error::TrimPastTail { keep_from, tail } => write!(
                f,
                "cannot trim before offset {keep_from}: the last record is {tail}, and trim \
                 keeps it so that offsets keep going up (truncate empties a log)"
            ),
            Error::UnsafeStore => f.write_str(
                "refusing to append: this store ignores If-None-Match (it overwrote a key \
                 it was told not to), so concurrent appenders could overwrite each other's \
                 records; see `s3wal doctor`, or pass --allow-unsafe-store to append anyway",
            ),
            Error::LogFull => write!(f, "the log is full: offset {} is taken", u64::MAX),
            Error::TruncateRaced { after } => write!(
                f,
                "truncate after offset {after}: other writers kept appending past it; \
                 stop them and run truncate again"
            ),
            Error::MaybeStored { offset, source } => write!(
                f,
                "{source}; the record may have been stored at offset {offset}: check with \
                 `read {offset}` before appending it again"
            ),
            Error::Interrupted { signal } => write!(f, "interrupted by {signal}"),
            Error::RecordTooLarge { max } => write!(
                f,
                "the record is too large: one S3 PUT carries at most 5 GiB, so a record's \
                 data is at most {max} bytes"
            ),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::MaybeStored { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// Shorthand for results in s3wal.
pub type Result<T, E = Error> = std::result::Result<T, E>;
