//! s3wal: a write-ahead log stored in S3, one object per record.
//!
//! Byte-compatible with the Go `s3-wal` seed: a record at offset `N` lives
//! at `<prefix>/<N, 20 digits>` with body `[N u64 BE][data][SHA-256]`.
//! Unlike the seed, appends are safe across processes and machines: a local
//! file lock queues appenders on one machine and `If-None-Match: *` keeps
//! machines off each other's offsets. The library never prints; the `s3wal`
//! binary formats what it returns.
//!
//! Layers, each usable without the next:
//! - [`record`]: the on-object format, pure;
//! - [`s3`]: a small S3 client (rusty-s3 signs, ureq sends);
//! - [`store`]: the narrow interface the log needs from a store;
//! - [`wal`]: the log's operations ([`Wal::append`], [`Wal::append_batch`],
//!   [`Wal::read`], [`Wal::last`], [`Wal::read_range`], [`Wal::truncate`],
//!   [`Wal::trim`], [`Wal::stat`], [`Wal::verify`], [`Wal::follow`]);
//! - [`config`]: flags, environment, `.env` and `~/.aws` profiles into a
//!   [`config::Config`].
//!
//! Configure and open a log; nothing below touches the network until an
//! operation is called:
//!
//! ```
//! use s3wal::config::{self, Env, Flags};
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
//! let flags = Flags { prefix: Some("/wal/".into()), ..Flags::default() };
//! let config = config::resolve(&flags, &env).unwrap();
//! assert!(config.s3.path_style, "custom endpoints are addressed path-style");
//! let wal = s3wal::open(&config).unwrap();
//! assert_eq!(wal.prefix().key(1), "wal/00000000000000000001");
//! // With a server: let offset = wal.append(b"Record #1")?;
//! //                let record = wal.read(offset)?;
//! ```
//!
//! The format on its own:
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
pub mod doctor;
pub mod error;
pub mod hint;
pub mod lock;
pub mod probe;
pub mod profile;
mod random;
pub mod range;
pub mod record;
pub mod s3;
pub mod store;
mod tail;
pub mod verify;
pub mod wal;

pub use error::{Error, Result};
pub use wal::{Record, Wal};

/// Opens the log that `config` describes.
pub fn open(config: &config::Config) -> Result<Wal<s3::Client>> {
    let client = s3::Client::new(&config.s3)?;
    Ok(Wal::new(client, config.prefix.clone(), config.lock.clone())
        .allow_unsafe_store(config.allow_unsafe_store))
}
