//! The region S3 last named for a bucket, kept on this machine beside the
//! log's lock, so that the next command signs for it at once instead of
//! being redirected again. Only a shortcut: a missing or garbled file costs
//! a redirect, never a wrong answer.

use std::fs;
use std::path::{Path, PathBuf};

use super::is_region_name;
use crate::local::write_atomically;

/// The file of one bucket's region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionMemory {
    path: PathBuf,
}

impl RegionMemory {
    /// The region kept in the file at `path` (see [`crate::LocalState::region_path`]).
    pub fn at(path: impl Into<PathBuf>) -> RegionMemory {
        RegionMemory { path: path.into() }
    }

    /// The file the region is kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The remembered region, if there is one that looks like a region.
    pub(crate) fn load(&self) -> Option<String> {
        let region = fs::read_to_string(&self.path).ok()?.trim().to_owned();
        is_region_name(&region).then_some(region)
    }

    /// Remembers `region`.
    pub(crate) fn store(&self, region: &str) {
        write_atomically(&self.path, region);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_region_loads_back_and_garbage_is_none() {
        let dir = std::env::temp_dir().join(format!("s3wal-region-{}", std::process::id()));
        let memory = RegionMemory::at(dir.join("b.region"));
        assert_eq!(memory.load(), None);
        memory.store("eu-west-1");
        assert_eq!(memory.load().as_deref(), Some("eu-west-1"));
        fs::write(&memory.path, "evil.example.com/").unwrap();
        assert_eq!(memory.load(), None);
        fs::remove_dir_all(dir).unwrap();
    }
}
