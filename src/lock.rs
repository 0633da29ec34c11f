//! The local append lock: one file per endpoint, bucket and prefix.
//!
//! Conditional PUTs already keep writers on different machines from sharing
//! an offset; the lock makes writers on one machine queue instead of racing
//! for the same offset and paying for 412s.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::hint::TailHint;
use crate::probe::ProbeCache;

/// Longest readable part of a lock file name; a hash keeps names unique.
const MAX_READABLE_NAME: usize = 60;

/// The lock file of one log, not yet held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendLock {
    path: PathBuf,
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

impl AppendLock {
    /// The lock in `dir` for the log at `endpoint`, `bucket`, `prefix`.
    ///
    /// The name is readable (`bucket-prefix-…`) and made unique by a hash of
    /// all three parts, so two endpoints with the same bucket never share it.
    pub fn new(dir: &Path, endpoint: &str, bucket: &str, prefix: &str) -> AppendLock {
        let identity = format!("{endpoint}\n{bucket}\n{prefix}");
        let hash = hex::encode(&Sha256::digest(identity.as_bytes())[..8]);
        let readable: String = format!("{bucket}-{prefix}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_READABLE_NAME)
            .collect();
        AppendLock {
            path: dir.join(format!("{readable}-{hash}.lock")),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tail hint of the same log, kept beside the lock file.
    pub fn tail_hint(&self) -> TailHint {
        TailHint::at(self.path.with_extension("tail"))
    }

    /// The remembered store probe of the same log, beside the lock file.
    pub fn probe_cache(&self) -> ProbeCache {
        ProbeCache::at(self.path.with_extension("probe"))
    }

    /// Blocks until this process holds the lock.
    pub fn acquire(&self) -> Result<LockGuard> {
        let context = |what: &str| format!("{what} lock file {}", self.path.display());
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| Error::io(context("cannot create the folder of"), e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(|e| Error::io(context("cannot open"), e))?;
        file.lock()
            .map_err(|e| Error::io(context("cannot lock"), e))?;
        Ok(LockGuard { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_name_is_readable_and_unique_per_endpoint() {
        let dir = Path::new("/locks");
        let a = AppendLock::new(dir, "http://a:9000", "logs", "wal/x");
        let b = AppendLock::new(dir, "http://b:9000", "logs", "wal/x");
        let name = a.path().file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("logs-wal_x-"), "{name}");
        assert!(name.ends_with(".lock"), "{name}");
        assert_ne!(a, b);
    }

    #[test]
    fn lock_is_exclusive_between_open_files() {
        let dir = std::env::temp_dir().join(format!("s3wal-lock-test-{}", std::process::id()));
        let lock = AppendLock::new(&dir, "e", "b", "p");
        let held = lock.acquire().unwrap();
        let other = File::open(lock.path()).unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
        fs::remove_dir_all(dir).unwrap();
    }
}
