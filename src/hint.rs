//! The tail hint: the last offset this machine saw, kept next to the lock.
//!
//! The hint is advice, never truth. An append checks it with one HEAD (the
//! hinted record must still exist, or a truncate happened) and its
//! conditional PUT catches a hint that is too low (another writer went on).
//! A missing, unreadable or garbled hint only costs a cold search.

use std::fs;
use std::path::{Path, PathBuf};

use crate::lock::private_dir;

/// The hint file of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailHint {
    path: PathBuf,
}

impl TailHint {
    /// The hint kept at `path`.
    pub fn at(path: PathBuf) -> TailHint {
        TailHint { path }
    }

    /// The hint file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The remembered tail, if there is a readable one.
    pub fn load(&self) -> Option<u64> {
        fs::read_to_string(&self.path).ok()?.trim().parse().ok()
    }

    /// Remembers `tail`. Best effort: a hint that cannot be written costs
    /// the next command a cold search, and must not fail this one.
    pub fn store(&self, tail: u64) {
        let temporary = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        // Never written into a folder others can write: they could plant
        // a symlink where the temporary file goes.
        if self
            .path
            .parent()
            .is_some_and(|dir| private_dir(dir).is_err())
        {
            return;
        }
        let written = fs::write(&temporary, tail.to_string())
            .and_then(|()| fs::rename(&temporary, &self.path));
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(name: &str) -> TailHint {
        let dir = std::env::temp_dir().join(format!("s3wal-hint-{name}-{}", std::process::id()));
        TailHint::at(dir.join("log.tail"))
    }

    #[test]
    fn stored_tail_loads_back() {
        let hint = hint("roundtrip");
        hint.store(42);
        assert_eq!(hint.load(), Some(42));
        fs::remove_dir_all(hint.path().parent().unwrap()).unwrap();
    }

    #[test]
    fn missing_or_garbled_hint_is_none() {
        let hint = hint("garbled");
        assert_eq!(hint.load(), None);
        fs::create_dir_all(hint.path().parent().unwrap()).unwrap();
        fs::write(hint.path(), "not a number").unwrap();
        assert_eq!(hint.load(), None);
        fs::remove_dir_all(hint.path().parent().unwrap()).unwrap();
    }

    #[test]
    fn unwritable_hint_is_silently_skipped() {
        TailHint::at(PathBuf::from("/proc/s3wal-cannot-write/x.tail")).store(1);
    }
}
