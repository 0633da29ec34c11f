//! Whether the store honours `If-None-Match: *`, probed once and
//! remembered beside the lock file.
//!
//! Some S3-compatible stores (Garage 2.x, s3rver, some gateways) accept the
//! header and overwrite anyway. On such a store two appenders could both
//! "win" an offset and one record would be lost, so s3wal checks once per
//! log and machine, and refuses to append unless told otherwise.

use std::fs;
use std::path::PathBuf;

use crate::lock::private_dir;

/// What the probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional {
    /// A second conditional PUT of the same key got 412.
    Enforced,
    /// A second conditional PUT of the same key overwrote it.
    Ignored,
}

impl Conditional {
    fn as_str(self) -> &'static str {
        match self {
            Conditional::Enforced => "enforced",
            Conditional::Ignored => "ignored",
        }
    }
}

/// The remembered probe result of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeCache {
    path: PathBuf,
}

impl ProbeCache {
    /// The cache kept at `path`.
    pub fn at(path: PathBuf) -> ProbeCache {
        ProbeCache { path }
    }

    /// The remembered result, if any.
    pub fn load(&self) -> Option<Conditional> {
        match fs::read_to_string(&self.path).ok()?.trim() {
            "enforced" => Some(Conditional::Enforced),
            "ignored" => Some(Conditional::Ignored),
            _ => None,
        }
    }

    /// Remembers `result`; best effort, like the tail hint: a cache that
    /// cannot be written only costs another probe. Never written into a
    /// folder that others can write.
    pub fn store(&self, result: Conditional) {
        if self
            .path
            .parent()
            .is_some_and(|dir| private_dir(dir).is_err())
        {
            return;
        }
        let _ = fs::write(&self.path, result.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_result_loads_back_and_garbage_is_none() {
        let dir = std::env::temp_dir().join(format!("s3wal-probe-{}", std::process::id()));
        let cache = ProbeCache::at(dir.join("log.probe"));
        assert_eq!(cache.load(), None);
        cache.store(Conditional::Ignored);
        assert_eq!(cache.load(), Some(Conditional::Ignored));
        cache.store(Conditional::Enforced);
        assert_eq!(cache.load(), Some(Conditional::Enforced));
        fs::write(dir.join("log.probe"), "maybe").unwrap();
        assert_eq!(cache.load(), None);
        fs::remove_dir_all(dir).unwrap();
    }
}
