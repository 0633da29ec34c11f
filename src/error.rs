//! Errors with the context a user needs to act on them.
//!
//! Each error says what happened in typed fields (a transport failure's
//! [`TransportKind`], the number of attempts, the underlying error as its
//! [`source`](std::error::Error::source)), and its `Display` is one line a
//! user can act on. What an error means to a process (its exit code, its
//! `--json` code) is the command line's business, not the library's.

use std::fmt;
use std::time::Duration;

use crate::log::record::Corruption;

/// How long a refused connection is retried: enough for a store that is
/// restarting, short enough that a wrong port is reported at once.
pub(crate) const REFUSED_RETRY_TIME: Duration = Duration::from_secs(3);

/// Whether a request answered with this status may have taken effect
/// anyway: a server error or a gateway's may come after the store acted.
pub(crate) fn status_may_have_acted(status: u16) -> bool {
    matches!(status, 500 | 502 | 504)
}

/// Everything that can go wrong in s3wal.
#[derive(Debug)]
pub enum Error {
    /// Bad input from the user: an argument, an offset, a prefix.
    Usage(String),
    /// Incomplete or contradictory configuration.
    Config(String),
    /// The credential provider the chain chose could not give credentials
    /// (its endpoint failed, its answer was unreadable, its token expired).
    /// The chain never falls through to another provider, so the error
    /// names the one that failed.
    Credentials {
        /// The provider, such as `web identity` or `EC2 instance metadata`.
        provider: &'static str,
        /// What went wrong, never a secret or a token.
        message: String,
    },
    /// The request never got an HTTP answer (DNS, connect, reset, timeout),
    /// or its answer kept arriving damaged.
    Transport {
        /// What was asked, as `METHOD key`; never the signed URL.
        request: String,
        /// The store's `host:port`.
        host: String,
        /// What went wrong.
        kind: TransportKind,
        /// How many times the request was sent.
        attempts: u32,
        /// From the first attempt to the end of the last.
        elapsed: Duration,
        /// The request had a body that never reached the store whole (the
        /// upload was cut off, or never started) and no try got an answer
        /// that leaves doubt, so it had no effect: a PUT stored nothing.
        body_never_arrived: bool,
        /// The failure the last attempt ended in, as the HTTP client, the
        /// operating system or TLS reported it (never naming a signed URL).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store answered, but not in a way s3wal can read.
    Protocol {
        /// What was asked, as `METHOD key`; never the signed URL.
        request: String,
        /// The store's `host:port`, when the answer came from the wire
        /// rather than from a check of the store's behaviour.
        host: Option<String>,
        /// What was wrong with the answer.
        kind: ProtocolKind,
        /// Why the answer could not be read, when a parser said so.
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
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
        /// An earlier try of the same request may have taken effect (its
        /// answer was lost after the whole request went out), whatever
        /// this last answer says.
        may_have_acted: bool,
    },
    /// No record at this offset.
    NotFound {
        /// The offset asked for.
        offset: u64,
    },
    /// The offset asked for is below the log's first record: a trim
    /// deleted it, and a consumer that resumes there has missed records.
    Trimmed {
        /// The offset asked for.
        offset: u64,
        /// The log's first record now.
        first: u64,
    },
    /// Another consumer of the named cursor moved it on from the same
    /// place first: the records this one printed were consumed by it too.
    CursorMoved {
        /// The cursor's name.
        name: String,
        /// The place both consumers started from.
        from: u64,
    },
    /// A named cursor is past the log's last record: a truncate cut below
    /// it, and the offsets it already counts as consumed will be handed
    /// out again, to records it would skip.
    CursorAhead {
        /// The cursor's name.
        name: String,
        /// Where it is.
        at: u64,
        /// The log's last record.
        tail: u64,
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
    /// Records are missing below one that exists: `dump --follow` cannot
    /// go on past them.
    Hole {
        /// The first missing offset.
        first: u64,
        /// The last missing offset.
        last: u64,
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
    /// A truncate would have cut a trimmed log below its first record,
    /// and the next append would reuse offsets readers already consumed.
    TruncateBelowFirst {
        /// The offset the truncate was asked to keep.
        after: u64,
        /// The log's first record, where a trim left it.
        first: u64,
    },
    /// The store ignores `If-None-Match: *`, so appending is refused.
    UnsafeStore,
    /// The log already holds a record at the highest possible offset.
    LogFull,
    /// A truncate, trim or repair on another machine (a fence, see the
    /// README) kept running for longer than this command waits.
    FenceBusy {
        /// What it does, as in "truncate after 5".
        fence: String,
        /// Its number in the log's fence sequence.
        seq: u64,
        /// Who holds it, as its claim or lease names them.
        holder: Option<String>,
        /// How long this command waited, in seconds.
        waited: u64,
        /// When it may be taken over if it shows no more life, in
        /// milliseconds by the store's clock.
        takeover_at: Option<i64>,
    },
    /// Other machines kept taking the next fence first.
    FenceContended {
        /// How many claims were tried.
        attempts: u32,
    },
    /// This command's fence was taken over by another machine after its
    /// lease ran out (it was paused, or cut off from the store, for longer
    /// than the lease): the store refuses its requests, and the other
    /// machine finishes the work.
    FenceLost {
        /// What it was doing, as in "truncate after 5".
        fence: String,
        /// Its number in the log's fence sequence.
        seq: u64,
        /// The lease, in seconds.
        lease: u64,
        /// Records this command deleted under it before it lost it.
        deleted: u64,
    },
    /// A fence's holder shows no life, but taking it over is not safe: the
    /// store does not refuse requests past their presigned expiry (or the
    /// holder is an s3wal before leases), so a holder that is only paused
    /// could still delete after the takeover.
    UnsafeTakeover {
        /// What it does, as in "truncate after 5".
        fence: String,
        /// Its number in the log's fence sequence.
        seq: u64,
        /// Who holds it, if its claim says.
        holder: Option<String>,
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
            Error::Credentials { provider, message } => {
                write!(f, "credentials from {provider}: {message}")
            }
            Error::Transport {
                request,
                host,
                kind,
                attempts,
                elapsed,
                body_never_arrived,
                source,
            } => {
                write!(f, "{request}: ")?;
                if *attempts > 1 {
                    write!(f, "{attempts} tries in {:.1} s: ", elapsed.as_secs_f64())?;
                }
                describe_transport(f, *kind, host, source.as_ref())?;
                f.write_str(match body_never_arrived {
                    true => "; the request body never reached the store whole, so it had no effect",
                    false => "",
                })
            }
            Error::Protocol {
                request,
                host,
                kind,
                source,
            } => {
                write!(f, "{request}: ")?;
                describe_protocol(f, kind, host.as_deref())?;
                if let Some(source) = source {
                    write!(f, ": {source}")?;
                }
                name_the_store(f, kind, host.as_deref())
            }
            Error::S3 {
                request,
                status,
                permission,
                code,
                message,
                request_id,
                ..
            } => {
                write!(f, "{request}: HTTP {status}")?;
                describe_s3(
                    f,
                    code.as_deref(),
                    message.as_deref(),
                    request_id.as_deref(),
                )?;
                describe_permission(f, *permission, code.is_some())
            }
            Error::NotFound { offset } => write!(f, "no record at offset {offset}"),
            Error::Trimmed { offset, first } => write!(
                f,
                "offset {offset} was trimmed: the log now starts at {first}, so the records \
                 {offset}..{} are gone",
                first - 1
            ),
            Error::Empty => f.write_str("WAL is empty"),
            Error::CursorAhead { name, at, tail } => write!(
                f,
                "cursor {name:?} consumed up to offset {at}, but the log ends at {tail}: a \
                 truncate cut below it, and new records would get offsets it counts as \
                 consumed; set it back with dump --cursor {name} --from {}",
                tail.saturating_add(1)
            ),
            Error::CursorMoved { name, from } => write!(
                f,
                "cursor {name:?} was moved on from offset {from} by another consumer of that \
                 name while this one read: the records printed after {from} were consumed by \
                 both; the cursor keeps the other's place"
            ),
            Error::Corrupt { offset, problem } => {
                write!(f, "record at offset {offset} is corrupt: {problem}")
            }
            Error::Hole { first, last } => write!(
                f,
                "the log has a hole: offsets {first}..{last} are missing while {} exists \
                 (see `s3wal verify`)",
                last.saturating_add(1)
            ),
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
            Error::TruncateBelowFirst { after, first } => write!(
                f,
                "cannot truncate after offset {after}: a trim made the log start at {first}, \
                 and cutting below it would make offsets start again at {}, which readers \
                 have already seen; truncate after {first} or later",
                after.saturating_add(1)
            ),
            Error::UnsafeStore => f.write_str(
                "refusing to append: this store ignores If-None-Match (it overwrote a key \
                 it was told not to), so concurrent appenders could overwrite each other's \
                 records; see `s3wal doctor`, or pass --allow-unsafe-store to append anyway",
            ),
            Error::LogFull => write!(f, "the log is full: offset {} is taken", u64::MAX),
            Error::FenceBusy {
                fence,
                seq,
                holder,
                waited,
                takeover_at,
            } => {
                let holder = holder.as_deref().unwrap_or(BEFORE_LEASES);
                write!(
                    f,
                    "fence {seq} ({fence}) held by {holder} kept running for the {waited} s \
                     this command waits"
                )?;
                describe_life(f, *takeover_at)
            }
            Error::FenceContended { attempts } => write!(
                f,
                "other machines took the next fence first {attempts} times (truncates, trims \
                 or repairs racing); nothing was done: try again"
            ),
            Error::FenceLost {
                fence,
                seq,
                lease,
                deleted,
            } => write!(
                f,
                "lost fence {seq} ({fence}): this command was paused or cut off from the \
                 store for longer than its {lease} s lease, and another machine took the fence \
                 over and finishes its work; before that it deleted {deleted} record(s), and \
                 the store refuses anything it sends now (see README, \"Many machines, one log\")"
            ),
            Error::UnsafeTakeover { fence, seq, holder } => {
                unsafe_takeover(f, fence, *seq, holder.as_deref())
            }
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
            Error::Transport { source, .. } => Some(source.as_ref()),
            Error::Protocol { source, .. } => source.as_deref().map(|s| s as _),
            _ => None,
        }
    }
}

/// What kept a request from getting an answer s3wal could use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// The endpoint's host name does not resolve.
    Dns,
    /// Nothing moved for the time allowed (`--timeout`).
    Timeout {
        /// What the request was doing.
        during: Stage,
        /// How long nothing moved.
        after: Duration,
    },
    /// The connection was refused: nothing listens at the endpoint's port.
    Refused,
    /// The store's TLS certificate was refused.
    Certificate(CertificateProblem),
    /// The endpoint answered the TLS handshake in plain HTTP.
    NotTls,
    /// The TLS handshake failed otherwise (no common protocol, an alert).
    Handshake,
    /// The connection broke during the exchange: reset, closed early, or
    /// a TLS record that failed its check.
    Reset,
    /// The answer's body kept arriving damaged: shorter or longer than
    /// announced, or with another MD5 than its ETag.
    DamagedBody,
    /// Another failure of the HTTP exchange.
    Other,
}

/// Where in an exchange a time limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Resolving the host name.
    Resolve,
    /// Connecting (TCP and TLS).
    Connect,
    /// Sending the request: the request was cut off.
    Send,
    /// Waiting for the answer, or reading it.
    Answer,
}

/// Why the store's TLS certificate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// It is signed by a CA that is not trusted.
    UnknownIssuer,
    /// It is a CA's certificate, not one issued to the server.
    CaUsedAsEndEntity,
    /// It was issued for another name than the endpoint's.
    NotValidForName,
    /// Another problem (expired, revoked, badly encoded…).
    Other,
}

/// What was wrong with an answer the store gave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolKind {
    /// An error status whose body is not S3's XML: the endpoint is
    /// probably not an S3 API.
    NotS3 {
        /// The HTTP status.
        status: u16,
        /// What the body looks like.
        body: BodyKind,
    },
    /// The answer is not well-formed XML.
    MalformedXml,
    /// The answer is XML, but not the document the action answers with.
    WrongDocument {
        /// The document expected, such as `ListBucketResult`.
        expected: &'static str,
    },
    /// A truncated listing without a continuation token.
    NoContinuationToken,
    /// A truncated listing handing back the continuation token that asked
    /// for it, so the listing would never end.
    RepeatedContinuationToken,
    /// A listing that kept handing out truncated pages without a key.
    EndlessListing {
        /// How many such pages came in a row.
        empty_pages: u32,
    },
    /// A multi-delete answered that some keys were not deleted.
    NotDeleted {
        /// How many keys were not deleted.
        keys: usize,
        /// The first of them.
        first: Box<str>,
        /// The S3 error code the store gave for it.
        code: Box<str>,
    },
    /// A scratch key `doctor` or the If-None-Match probe had just chosen
    /// at random already existed.
    ScratchKeyExisted,
    /// A scratch key written a moment ago could not be read back.
    ScratchKeyMissing,
}

/// What a body that is not S3's XML looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A web page.
    Html,
    /// XML, but no S3 `<Error>`.
    OtherXml,
    /// Not XML at all.
    NotXml,
}

/// How an error names the holder of a fence written before leases.
const BEFORE_LEASES: &str = "an s3wal before leases";

/// What a store's error answer said: its code, its message and the
/// request id to quote to the store's operator.
fn describe_s3(
    f: &mut fmt::Formatter<'_>,
    code: Option<&str>,
    message: Option<&str>,
    request_id: Option<&str>,
) -> fmt::Result {
    if let Some(code) = code {
        write!(f, " {code}")?;
    }
    if let Some(message) = message {
        write!(f, ": {message}")?;
    }
    match request_id {
        Some(id) => write!(f, " (request id {id})"),
        None => Ok(()),
    }
}

/// The permission a refused request needs, when the refusal is one; a
/// HEAD's answer has no body to say so (`coded` is false).
fn describe_permission(
    f: &mut fmt::Formatter<'_>,
    permission: Option<&str>,
    coded: bool,
) -> fmt::Result {
    match (permission, coded) {
        (Some(permission), true) => write!(
            f,
            "; the credentials lack the {permission} permission on this \
             bucket and prefix (see README, IAM permissions)"
        ),
        (Some(permission), false) => write!(
            f,
            "; no reason given (a HEAD answer has no body): if the credentials \
             are right, they lack the {permission} permission on this bucket \
             and prefix (see README, IAM permissions)"
        ),
        (None, _) => Ok(()),
    }
}

/// Names the store a protocol error came from, unless the message did
/// (NotS3 names the endpoint in its own words).
fn name_the_store(
    f: &mut fmt::Formatter<'_>,
    kind: &ProtocolKind,
    host: Option<&str>,
) -> fmt::Result {
    match host {
        Some(host) if !matches!(kind, ProtocolKind::NotS3 { .. }) => {
            write!(f, " (the store at {host})")
        }
        _ => Ok(()),
    }
}

/// Why a busy fence is not taken over: its holder renews its lease (and
/// when it could be taken over if it stopped), or it shows life otherwise.
fn describe_life(f: &mut fmt::Formatter<'_>, takeover_at: Option<i64>) -> fmt::Result {
    match takeover_at {
        Some(at) => write!(
            f,
            "; it renews its lease, so its machine is alive (it can be taken over \
             from {} by the store's clock if it stops); try again later",
            crate::log::fence::store_time_text(at)
        ),
        None => f.write_str("; it shows life; try again later"),
    }
}

/// `Error::UnsafeTakeover`'s message: why taking over a lifeless fence is
/// not safe on this store, and what to do if its machine is dead.
fn unsafe_takeover(
    f: &mut fmt::Formatter<'_>,
    fence: &str,
    seq: u64,
    holder: Option<&str>,
) -> fmt::Result {
    let holder = holder.unwrap_or(BEFORE_LEASES);
    write!(
        f,
        "fence {seq} ({fence}) held by {holder} shows no more life, but taking it \
             over is not safe here: "
    )?;
    f.write_str(match holder {
        BEFORE_LEASES => "its holder never signed its deletes to expire",
        _ => {
            "this store does not refuse requests past their presigned expiry \
                  (see `s3wal doctor`)"
        }
    })?;
    f.write_str(
        ", so a holder that is only paused could delete records later; if that \
             machine is dead, pass --allow-unsafe-takeover",
    )
}

/// The part of a transport error's message after the request.
fn describe_transport(
    f: &mut fmt::Formatter<'_>,
    kind: TransportKind,
    host: &str,
    source: &(dyn std::error::Error + Send + Sync),
) -> fmt::Result {
    let unresolved = |f: &mut fmt::Formatter<'_>, why: &dyn fmt::Display| {
        write!(
            f,
            "cannot resolve the host name of {host} ({why}): check the endpoint (--endpoint)"
        )
    };
    match kind {
        TransportKind::Dns => unresolved(f, &source),
        TransportKind::Timeout { during, after } => {
            let secs = after.as_secs_f64();
            match during {
                Stage::Resolve => unresolved(f, &format_args!("no answer in {secs} s")),
                Stage::Connect => {
                    write!(f, "could not connect to {host} within {secs} s (--timeout)")
                }
                Stage::Send => write!(
                    f,
                    "{host} took no data for {secs} s (--timeout); the request was cut off"
                ),
                Stage::Answer => write!(f, "{host} sent nothing for {secs} s (--timeout)"),
            }
        }
        TransportKind::Refused => write!(
            f,
            "{host} refused the connection (refused connections are retried for {} s at \
             most): is the store running there? check the endpoint (--endpoint)",
            REFUSED_RETRY_TIME.as_secs()
        ),
        TransportKind::Certificate(CertificateProblem::UnknownIssuer) => write!(
            f,
            "the TLS certificate of {host} is signed by a CA that is not trusted \
             (UnknownIssuer): pass that CA's certificate with --ca-bundle (AWS_CA_BUNDLE)"
        ),
        TransportKind::Certificate(CertificateProblem::CaUsedAsEndEntity) => write!(
            f,
            "{host} presents a CA certificate as its own (CaUsedAsEndEntity): the server \
             needs a leaf certificate (basicConstraints CA:FALSE) issued by that CA, whose \
             certificate goes in --ca-bundle"
        ),
        TransportKind::Certificate(CertificateProblem::NotValidForName) => write!(
            f,
            "the TLS certificate of {host} is not valid for that name (NotValidForName): \
             use the name the certificate was issued for in the endpoint"
        ),
        TransportKind::Certificate(CertificateProblem::Other) => {
            write!(f, "the TLS certificate of {host} is refused: {source}")
        }
        TransportKind::NotTls => write!(
            f,
            "{host} does not speak TLS (InvalidContentType): it seems to speak plain HTTP; \
             use an http:// endpoint"
        ),
        TransportKind::Handshake => write!(f, "the TLS handshake with {host} failed: {source}"),
        TransportKind::Reset => write!(f, "the connection to {host} broke: {source}"),
        TransportKind::DamagedBody => {
            write!(f, "the body kept arriving damaged from {host}: {source}")
        }
        TransportKind::Other => write!(f, "{source} ({host})"),
    }
}

/// The part of a protocol error's message after the request.
fn describe_protocol(
    f: &mut fmt::Formatter<'_>,
    kind: &ProtocolKind,
    host: Option<&str>,
) -> fmt::Result {
    match kind {
        ProtocolKind::NotS3 { status, body } => {
            let body = match body {
                BodyKind::Html => "an HTML page",
                BodyKind::OtherXml => "XML without an S3 error code",
                BodyKind::NotXml => "not XML",
            };
            let at = host.map(|host| format!(" {host}")).unwrap_or_default();
            write!(
                f,
                "the endpoint{at} answered HTTP {status} with a body that is not S3's XML \
                 ({body}): is --endpoint an S3 API endpoint?"
            )
        }
        ProtocolKind::MalformedXml => f.write_str("malformed XML"),
        ProtocolKind::WrongDocument { expected } => {
            write!(f, "the answer is not a {expected}")
        }
        ProtocolKind::NoContinuationToken => {
            f.write_str("the listing is truncated but has no continuation token")
        }
        ProtocolKind::RepeatedContinuationToken => f.write_str(
            "a truncated page carries the continuation token that asked for it, so the \
             listing would never end",
        ),
        ProtocolKind::EndlessListing { empty_pages } => write!(
            f,
            "{empty_pages} truncated pages in a row without a key, so the listing would \
             never end"
        ),
        ProtocolKind::NotDeleted { keys, first, code } => {
            write!(f, "{keys} key(s) not deleted, the first {first}: {code}")
        }
        ProtocolKind::ScratchKeyExisted => f.write_str("a fresh scratch key already existed"),
        ProtocolKind::ScratchKeyMissing => {
            f.write_str("the scratch key written a moment ago is not there")
        }
    }
}

/// Shorthand for results in s3wal.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::io;

    use super::*;

    #[test]
    fn only_server_errors_may_have_acted() {
        assert!(status_may_have_acted(500) && status_may_have_acted(504));
        assert!(!status_may_have_acted(503) && !status_may_have_acted(400));
    }

    /// A PUT whose connection was reset in each of its `attempts`.
    fn reset_put(attempts: u32) -> Error {
        Error::Transport {
            request: "PutObject wal/00000000000000000004".into(),
            host: "store:9000".into(),
            kind: TransportKind::Reset,
            attempts,
            elapsed: Duration::from_millis(1500),
            body_never_arrived: false,
            source: Box::new(io::Error::from(io::ErrorKind::ConnectionReset)),
        }
    }

    #[test]
    fn a_maybe_stored_record_leads_through_the_transport_failure_to_the_io_error() {
        let error = Error::MaybeStored {
            offset: 4,
            source: Box::new(reset_put(1)),
        };
        let transport = error.source().unwrap();
        assert!(matches!(
            transport.downcast_ref::<Error>(),
            Some(Error::Transport { .. })
        ));
        let io = transport.source().unwrap().downcast_ref::<io::Error>();
        assert_eq!(
            io.map(io::Error::kind),
            Some(io::ErrorKind::ConnectionReset)
        );
    }

    #[test]
    fn an_io_error_is_its_own_source() {
        let error = Error::Io {
            context: "cannot read .env".into(),
            source: io::ErrorKind::PermissionDenied.into(),
        };
        assert!(error.source().unwrap().is::<io::Error>());
    }

    #[test]
    fn a_protocol_error_has_a_source_only_when_a_parser_gave_one() {
        let missing = Error::Protocol {
            request: "GetObject wal/k".into(),
            host: None,
            kind: ProtocolKind::ScratchKeyMissing,
            source: None,
        };
        assert!(missing.source().is_none());
        let malformed = Error::Protocol {
            request: "ListObjectsV2 wal/".into(),
            host: Some("store:9000".into()),
            kind: ProtocolKind::MalformedXml,
            source: Some("cut short".into()),
        };
        assert_eq!(malformed.source().unwrap().to_string(), "cut short");
        assert_eq!(
            malformed.to_string(),
            "ListObjectsV2 wal/: malformed XML: cut short (the store at store:9000)"
        );
    }

    #[test]
    fn a_transport_error_is_one_line_naming_the_request_the_tries_and_the_host() {
        let error = reset_put(3);
        assert_eq!(
            error.to_string(),
            format!(
                "PutObject wal/00000000000000000004: 3 tries in 1.5 s: the connection to \
                 store:9000 broke: {}",
                io::Error::from(io::ErrorKind::ConnectionReset)
            )
        );
    }

    #[test]
    fn a_maybe_stored_record_says_to_check_before_appending_again() {
        let error = Error::MaybeStored {
            offset: 4,
            source: Box::new(reset_put(1)),
        };
        assert!(
            error
                .to_string()
                .ends_with("the record may have been stored at offset 4: check with `read 4` before appending it again"),
            "{error}"
        );
    }
}
