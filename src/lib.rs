//! s3wal: a write-ahead log stored in S3, one object per record.
//!
//! Byte-compatible with the Go `s3-wal` seed: a record at offset `N` lives
//! at `<prefix>/<N, 20 digits>` with body `[N u64 BE][data][SHA-256]`.
//! Unlike the seed, appends are safe across processes and machines: a local
//! file lock queues appenders on one machine and `If-None-Match: *` keeps
//! machines off each other's offsets.
//!
//! Layers, each usable without the next:
//! - [`record`]: the on-object format, pure;
//! - [`s3`]: a small S3 client (rusty-s3 signs, ureq sends);
//! - [`store`]: the narrow interface the log needs from a store;
//! - [`wal`]: the log's operations;
//! - [`config`]: flags, environment and `.env` into a [`config::Config`].
//!
//! ```
//! use s3wal::record::{self, Prefix};
//!
//! let prefix = Prefix::new("/wal/").unwrap();
//! assert_eq!(prefix.key(1), "wal/00000000000000000001");
//! let body = record::encode(1, b"Record #1");
//! assert_eq!(record::decode(1, &body).unwrap(), b"Record #1");
//! ```

pub mod base64;
pub mod config;
pub mod doctor;
pub mod error;
pub mod hint;
pub mod lock;
pub mod probe;
pub mod profile;
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
