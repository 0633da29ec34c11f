//! Scratch folders for the tests: a lock folder of a machine that exists
//! only for one test, removed when its guard drops, a failing test
//! included. Their names start with `s3wal-test-<pid>-`, so that the folders a
//! killed test process left behind (a timeout, ^C) are swept by the next.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

/// What every scratch folder is named with, before the process id.
const NAME: &str = "s3wal-test-";

/// A folder removed, with all it holds, when this drops.
#[derive(Debug)]
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// A fresh path for a folder named after `what` (created by whoever
    /// writes into it first): in `TMPDIR` when set, else memory-backed
    /// where there is such a folder, since the explorer writes a few small
    /// files per machine in each of its thousands of runs.
    pub(crate) fn new(what: &str) -> Scratch {
        static FOLDERS: AtomicU32 = AtomicU32::new(0);
        static SWEPT: Once = Once::new();
        let shm = Path::new("/dev/shm");
        let base = match std::env::var_os("TMPDIR").is_none() && shm.is_dir() {
            true => shm.to_path_buf(),
            false => std::env::temp_dir(),
        };
        SWEPT.call_once(|| sweep_folders_of_killed_runs(&base));
        let n = FOLDERS.fetch_add(1, Ordering::Relaxed);
        Scratch(base.join(format!("{NAME}{}-{n}-{what}", std::process::id())))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes the scratch folders in `base` of test processes that are gone.
fn sweep_folders_of_killed_runs(base: &Path) {
    let proc = Path::new("/proc");
    let (true, Ok(entries)) = (proc.join("self").exists(), std::fs::read_dir(base)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|name| name.strip_prefix(NAME))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !proc.join(pid.to_string()).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_folder_is_removed_when_its_test_panics() {
        let path = std::panic::catch_unwind(|| {
            let scratch = Scratch::new("panics");
            std::fs::create_dir_all(scratch.path().join("inside")).unwrap();
            assert!(scratch.path().is_dir());
            std::panic::panic_any(scratch.path().to_path_buf())
        })
        .unwrap_err();
        let path = path.downcast::<PathBuf>().unwrap();
        assert!(!path.exists(), "{} is left", path.display());
    }
}
