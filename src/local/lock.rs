//! The local append lock: one file per endpoint, bucket and prefix.
//!
//! Conditional PUTs already keep writers on different machines from sharing
//! an offset; the lock makes writers on one machine queue instead of racing
//! for the same offset and paying for 412s.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How often a process waiting for the lock tries it again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Says, while a lock is awaited, whether a signal asked to stop, and
/// which: the command line defers SIGINT and SIGTERM while it appends.
pub type Interruption = fn() -> Option<&'static str>;

/// Longest readable part of a lock file name; a hash keeps names unique.
const MAX_READABLE_NAME: usize = 60;

/// Why a lock folder owned by `owner` with permission bits `mode` must not
/// be used by the user `me`, if it must not.
///
/// Whoever else can write the folder can hold the lock to block appends,
/// replace the remembered probe answer with "enforced" on a store that
/// ignores `If-None-Match`, or plant a symlink where the tail hint is
/// written. So the folder must be the user's own and closed to others.
pub fn judge_lock_dir(owner: u32, mode: u32, me: u32) -> Result<(), String> {
    if owner != me {
        return Err(format!(
            "belongs to user id {owner}, not to this user ({me})"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "is writable by group or others (mode {:o})",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// The effective user id of this process.
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `dir` (mode 0700, with any missing parents) if it is missing,
/// and checks that only this user can write it.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            Error::io(
                format!("cannot create the lock folder {}", dir.display()),
                e,
            )
        })?;
    let meta = fs::metadata(dir)
        .map_err(|e| Error::io(format!("cannot read the lock folder {}", dir.display()), e))?;
    judge_lock_dir(meta.uid(), meta.mode(), effective_uid()).map_err(|why| {
        Error::Config(format!(
            "refusing the lock folder {}: it {why}; other users could block or spoof \
             appends there. Use a folder of your own (--lock-dir or S3WAL_LOCK_DIR), \
             or chmod go-w it",
            dir.display()
        ))
    })
}

/// The name, without extension, of the files one log keeps on this
/// machine: readable (bucket and prefix), and unique per endpoint, bucket
/// and prefix by a hash.
pub(crate) fn file_stem(endpoint: &str, bucket: &str, prefix: &str) -> String {
    let identity = format!("{endpoint}\n{bucket}\n{prefix}");
    let hash = hex::encode(&Sha256::digest(identity.as_bytes())[..8]);
    let readable: String = format!("{bucket}-{prefix}")
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                true => c,
                false => '_',
            },
        )
        .take(MAX_READABLE_NAME)
        .collect();
    format!("{readable}-{hash}")
}

/// The lock file of one log, not yet held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendLock {
    path: PathBuf,
    /// Why there is no lock file to take: no per-user folder for it.
    missing: Option<String>,
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

impl AppendLock {
    /// The lock file at `path`.
    pub(crate) fn at(path: PathBuf) -> AppendLock {
        AppendLock {
            path,
            missing: None,
        }
    }

    /// No lock file, for `why`: taking it fails, saying so.
    pub(crate) fn missing(why: &str) -> AppendLock {
        AppendLock {
            path: PathBuf::new(),
            missing: Some(why.to_owned()),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Blocks until this process holds the lock.
    pub fn acquire(&self, interrupted: Interruption) -> Result<LockGuard> {
        if let Some(why) = &self.missing {
            return Err(Error::Config(why.clone()));
        }
        let context = |what: &str| format!("{what} lock file {}", self.path.display());
        if let Some(dir) = self.path.parent() {
            private_dir(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(|e| Error::io(context("cannot open"), e))?;
        // Polled rather than blocking: a process waiting here holds no
        // request in flight, so a signal may stop it at once.
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(LockGuard { _file: file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(Error::io(context("cannot lock"), e)),
            }
            if let Some(signal) = interrupted() {
                return Err(Error::Interrupted { signal });
            }
            std::thread::sleep(LOCK_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_readable_and_unique_per_endpoint() {
        let a = file_stem("http://a:9000", "logs", "wal/x");
        let b = file_stem("http://b:9000", "logs", "wal/x");
        assert!(a.starts_with("logs-wal_x-"), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn own_lock_folder_closed_to_others_is_accepted() {
        assert_eq!(judge_lock_dir(1000, 0o40700, 1000), Ok(()));
        assert_eq!(judge_lock_dir(1000, 0o40755, 1000), Ok(()));
    }

    #[test]
    fn lock_folder_of_another_user_is_refused() {
        let why = judge_lock_dir(0, 0o40700, 1000).unwrap_err();
        assert!(why.contains("user id 0"), "{why}");
    }

    #[test]
    fn lock_folder_writable_by_group_or_others_is_refused() {
        for mode in [0o40770, 0o40702, 0o41777] {
            let why = judge_lock_dir(1000, mode, 1000).unwrap_err();
            assert!(why.contains("writable by group or others"), "{why}");
        }
    }

    #[test]
    fn created_lock_folder_is_private() {
        let dir = std::env::temp_dir().join(format!("s3wal-private-{}", std::process::id()));
        private_dir(&dir.join("a/b")).unwrap();
        assert_eq!(fs::metadata(dir.join("a/b")).unwrap().mode() & 0o777, 0o700);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_signal_stops_the_wait_for_a_held_lock() {
        let dir = std::env::temp_dir().join(format!("s3wal-lock-wait-{}", std::process::id()));
        let lock = AppendLock::at(dir.join("p.lock"));
        let _held = lock.acquire(|| None).unwrap();
        let error = lock.acquire(|| Some("SIGINT")).unwrap_err();
        assert!(
            matches!(error, Error::Interrupted { signal: "SIGINT" }),
            "{error}"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lock_is_exclusive_between_open_files() {
        let dir = std::env::temp_dir().join(format!("s3wal-lock-test-{}", std::process::id()));
        let lock = AppendLock::at(dir.join("p.lock"));
        let held = lock.acquire(|| None).unwrap();
        let other = File::open(lock.path()).unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
        fs::remove_dir_all(dir).unwrap();
    }
}
