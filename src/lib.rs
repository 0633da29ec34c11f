//! s3wal: a write-ahead log stored in S3, one object per record.
//!
//! Byte-compatible with the Go `s3-wal` seed: a record at offset `N` lives
//! at `<prefix>/<N, 20 digits>` with body `[N u64 BE][data][SHA-256]`.
//! Unlike the seed, appends are safe across processes and machines: a local
//! file lock queues appenders on one machine and `If-None-Match: *` keeps
//! machines off each other's offsets. The library never prints; the `s3wal`
//! binary formats what it returns.
//!
//! A [`Wal`] is a log over a [`Store`]: an S3 bucket through
//! [`s3::Client`], or a [`MemoryStore`] for tests and for trying it out.
//! The log's operations are [`Wal::append`], [`Wal::append_each`],
//! [`Wal::read`], [`Wal::last`], [`Wal::recover`], [`Wal::read_range`],
//! [`Wal::follow`], [`Wal::truncate`], [`Wal::trim`], [`Wal::stat`] and
//! [`Wal::verify`]. What the log keeps on this machine (its lock, its tail
//! hint, the store probe's verdict) is a [`LocalState`].
//!
//! A log in memory, with everything a log on S3 does:
//!
//! ```
//! use s3wal::{LocalState, MemoryStore, Prefix, Wal};
//!
//! let folder = std::env::temp_dir().join(format!("s3wal-doc-{}", std::process::id()));
//! let local = LocalState::in_dir(&folder, "memory", "bucket", "wal");
//! let wal = Wal::new(MemoryStore::new(), Prefix::new("wal")?, local);
//!
//! assert_eq!(wal.append(b"Record #1")?, 1);
//! assert_eq!(wal.append_batch(&["Record #2", "Record #3"])?, [2, 3]);
//! assert_eq!(wal.read(2)?.data, b"Record #2");
//! assert_eq!(wal.last()?.offset, 3);
//! wal.truncate(1)?;
//! assert_eq!(wal.recover()?, 1);
//! # std::fs::remove_dir_all(folder)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A log in S3, configured as the `s3wal` command is (flags, environment,
//! `.env`, `~/.aws` profiles); nothing touches the network until an
//! operation is called:
//!
//! ```
//! use s3wal::config::{self, Env, Flags, settings::PREFIX};
//!
//! let env = Env::new(
//!     [
//!         ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
//!         ("AWS_BUCKET_NAME", "logs"),
//!         ("AWS_ACCESS_KEY_ID", "AKID"),
//!         ("AWS_SECRET_ACCESS_KEY", "secret"),
//!         ("S3WAL_LOCK_DIR", "/tmp/s3wal-locks"),
//!     ]
//!     .map(|(k, v)| (k.to_owned(), v.to_owned())),
//!     Vec::new(),
//! );
//! let flags = Flags::default().with(PREFIX, "/wal/");
//! let config = config::resolve(&flags, &env)?;
//! assert!(config.s3.path_style, "custom endpoints are addressed path-style");
//! let wal = s3wal::open(&config)?;
//! assert_eq!(wal.prefix().key(1), "wal/00000000000000000001");
//! // With a server: let offset = wal.append(b"Record #1")?;
//! # Ok::<(), s3wal::Error>(())
//! ```
//!
//! The format on its own, in [`record`]:
//!
//! ```
//! use s3wal::record;
//!
//! let body = record::encode(1, b"Record #1");
//! assert_eq!(body.len(), 8 + 9 + 32);
//! assert_eq!(record::decode(1, &body).unwrap(), b"Record #1");
//! assert!(record::decode(2, &body).is_err(), "the body names offset 1");
//! ```

#![warn(missing_docs)]

pub mod config;
mod doctor;
pub mod error;
mod http;
mod local;
mod log;
mod random;
pub mod s3;
pub mod store;

pub use log::keys::Prefix;
pub use log::record;

pub use doctor::{Finding, diagnose};
pub use error::{Error, Result};
pub use local::{Conditional, LocalState};
pub use log::range::Trimmed;
pub use log::verify::{Problem, Summary};
pub use log::wal::{
    Cursor, DEFAULT_LEASE, DEFAULT_PARALLEL, FENCE_WAIT, MAX_APPEND_ATTEMPTS, MAX_CONFLICT_RETRIES,
    MAX_PARALLEL, Record, RunningFence, Stat, Status, Wal,
};
pub use store::memory::MemoryStore;
pub use store::{Keys, Store};

/// Opens the log that `config` describes: the one place a [`Wal`] is
/// made from every setting, for the `s3wal` command as for a library.
pub fn open(config: &config::Config) -> Result<Wal<s3::Client>> {
    Ok(log_on(s3::Client::new(&config.s3)?, config))
}

/// Opens the log that `config` describes, telling `observer` of every
/// exchange with S3 (as `s3wal --verbose` prints them).
pub fn open_observed(
    config: &config::Config,
    observer: impl Fn(&s3::Exchange) + Send + Sync + 'static,
) -> Result<Wal<s3::Client>> {
    Ok(log_on(
        s3::Client::new(&config.s3)?.with_observer(observer),
        config,
    ))
}

/// The log `config` describes, through `client`.
fn log_on(client: s3::Client, config: &config::Config) -> Wal<s3::Client> {
    Wal::new(client, config.prefix.clone(), config.local.clone())
        .allow_unsafe_store(config.allow_unsafe_store)
        .lease(config.lease)
        .allow_unsafe_takeover(config.allow_unsafe_takeover)
        .parallel(config.s3.parallel)
}
