//! What s3wal keeps on this machine for one log, side by side in the lock
//! folder: the lock that queues its appenders, the tail hint that saves a
//! search, the verdict of the `If-None-Match` probe, and the bucket's
//! region once S3 named it.
//!
//! The hint, the verdict and the region are only ever shortcuts: a
//! missing, stale or garbled file costs a search, a probe or a redirect,
//! never a wrong answer. So all three are written best effort, atomically (a reader never sees half a file),
//! and never into a folder others can write.

use std::fs;
use std::path::{Path, PathBuf};

pub(crate) mod lock;
#[cfg(test)]
pub(crate) mod scratch;

use lock::{AppendLock, file_stem, private_dir};

/// The lock, hint, probe and region files of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalState {
    pub(crate) lock: AppendLock,
    pub(crate) hint: TailHint,
    pub(crate) probe: ProbeCache,
    /// Whether the store refuses requests past their presigned expiry.
    pub(crate) expiry: ProbeCache,
    pub(crate) fences: FenceMemory,
    /// The bucket's region file ([`crate::s3::RegionMemory`]).
    pub(crate) region: PathBuf,
}

impl LocalState {
    /// The files of the log at `endpoint`, `bucket`, `prefix`, in `dir`:
    /// one name per log, so two logs never share a lock.
    pub fn in_dir(dir: &Path, endpoint: &str, bucket: &str, prefix: &str) -> LocalState {
        // Not `with_extension`: a dotted bucket or prefix puts dots in the
        // stem, and the extension would replace what follows the last one.
        let stem = file_stem(endpoint, bucket, prefix);
        let file = |extension: &str| dir.join(format!("{stem}.{extension}"));
        LocalState {
            lock: AppendLock::at(file("lock")),
            hint: TailHint { path: file("tail") },
            probe: ProbeCache {
                path: file("probe"),
            },
            expiry: ProbeCache {
                path: file("expiry"),
            },
            fences: FenceMemory {
                path: file("fence"),
            },
            // A region is the bucket's, whatever the prefix: one file per
            // bucket, so that every log in it learns it from one redirect.
            region: dir
                .join(file_stem(endpoint, bucket, ""))
                .with_extension("region"),
        }
    }

    /// No files at all, where there is no per-user folder for them (no
    /// `HOME`): reading commands work without shortcuts, and taking the
    /// lock fails with `why`.
    pub fn without_folder(why: &str) -> LocalState {
        LocalState {
            lock: AppendLock::missing(why),
            hint: TailHint {
                path: PathBuf::new(),
            },
            probe: ProbeCache {
                path: PathBuf::new(),
            },
            expiry: ProbeCache {
                path: PathBuf::new(),
            },
            fences: FenceMemory {
                path: PathBuf::new(),
            },
            region: PathBuf::new(),
        }
    }

    /// The file where the bucket's region is remembered.
    pub fn region_path(&self) -> &Path {
        &self.region
    }

    /// The lock file's path.
    pub fn lock_path(&self) -> &Path {
        self.lock.path()
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so
/// that a reader sees the old contents or the new, never a mix. Best
/// effort: failing costs the next command a search or a probe.
pub(crate) fn write_atomically(path: &Path, contents: &str) {
    // Never written into a folder others can write: they could plant a
    // symlink where the temporary file goes. No path at all means no
    // folder for local files (no `HOME`).
    if path.as_os_str().is_empty() || path.parent().is_some_and(|dir| private_dir(dir).is_err()) {
        return;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let written = fs::write(&temporary, contents).and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
}

/// The last tail this machine saw, and whether it is a record this
/// machine appended and saw stand.
///
/// The file holds the tail (`4200`), or the tail and the epoch it was seen
/// standing at (`4200 stands 7`): no fence up to 7 could have deleted it,
/// so the next append here may PUT after it without looking at it, and
/// the fence check after that PUT sees any fence that deleted it since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TailHint {
    path: PathBuf,
}

impl TailHint {
    /// The remembered tail, if there is a readable one.
    pub(crate) fn load(&self) -> Option<u64> {
        self.read()?.split(' ').next()?.parse().ok()
    }

    /// The remembered tail and the epoch it stands at, if this machine
    /// appended it and saw it stand.
    pub(crate) fn standing(&self) -> Option<(u64, u64)> {
        let text = self.read()?;
        let mut words = text.split(' ');
        let tail = words.next()?.parse().ok()?;
        let epoch = match (words.next()?, words.next()?, words.next()) {
            ("stands", epoch, None) => epoch.parse().ok()?,
            _ => return None,
        };
        Some((tail, epoch))
    }

    fn read(&self) -> Option<String> {
        Some(fs::read_to_string(&self.path).ok()?.trim().to_owned())
    }

    /// Remembers `tail`.
    pub(crate) fn store(&self, tail: u64) {
        write_atomically(&self.path, &tail.to_string());
    }

    /// Remembers `tail`, a record this machine appended and saw stand at
    /// `epoch`.
    pub(crate) fn store_standing(&self, tail: u64, epoch: u64) {
        write_atomically(&self.path, &format!("{tail} stands {epoch}"));
    }
}

/// What the `If-None-Match` probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional {
    /// A second conditional PUT of the same key got 412.
    Enforced,
    /// A second conditional PUT of the same key overwrote it.
    Ignored,
}

impl Conditional {
    /// How a verdict is written down.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Conditional::Enforced => "enforced",
            Conditional::Ignored => "ignored",
        }
    }

    /// The verdict written down as `text`, if it is one.
    pub(crate) fn parse(text: &str) -> Option<Conditional> {
        match text {
            "enforced" => Some(Conditional::Enforced),
            "ignored" => Some(Conditional::Ignored),
            _ => None,
        }
    }
}

/// The probe's verdict for one log, remembered so that it runs once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeCache {
    path: PathBuf,
}

impl ProbeCache {
    /// The remembered verdict, if any.
    pub(crate) fn load(&self) -> Option<Conditional> {
        Conditional::parse(fs::read_to_string(&self.path).ok()?.trim())
    }

    /// Remembers `result`.
    pub(crate) fn store(&self, result: Conditional) {
        write_atomically(&self.path, result.as_str());
    }
}

/// What this machine knows of the log's fences (`fence.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FenceNotes {
    /// The epoch its next append may stamp without reading the fences.
    pub epoch: Option<u64>,
    /// The newest lease key (the claim, or `…-lease-<n>`) of a fence a
    /// command here holds, and its token: if it is still there when the
    /// next command here starts, that command died (whoever reads this
    /// holds the lock it held), and it is taken over at once, without
    /// waiting for its lease.
    pub running: Option<String>,
}

/// The file of [`FenceNotes`]: shortcuts too. Losing the running fence
/// only makes the others wait for its lease before they take it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FenceMemory {
    path: PathBuf,
}

impl FenceMemory {
    /// The notes, empty when there are none.
    pub(crate) fn load(&self) -> FenceNotes {
        let mut notes = FenceNotes::default();
        for line in fs::read_to_string(&self.path).unwrap_or_default().lines() {
            match line.split_once(' ') {
                Some(("epoch", n)) => notes.epoch = n.parse().ok(),
                Some(("running", key)) => notes.running = Some(key.to_owned()),
                _ => {}
            }
        }
        notes
    }

    /// Writes `notes`.
    pub(crate) fn store(&self, notes: &FenceNotes) {
        let mut text = String::new();
        if let Some(epoch) = notes.epoch {
            text.push_str(&format!("epoch {epoch}\n"));
        }
        if let Some(key) = &notes.running {
            text.push_str(&format!("running {key}\n"));
        }
        write_atomically(&self.path, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use scratch::Scratch;

    /// The files of a log in a fresh folder, removed when the guard drops.
    fn local(name: &str) -> (LocalState, Scratch) {
        let dir = Scratch::new(name);
        (LocalState::in_dir(dir.path(), "http://e", "b", "p"), dir)
    }

    #[test]
    fn the_files_of_one_log_share_a_name() {
        let (local, dir) = local("names");
        let lock = local.lock_path();
        assert_eq!(lock.parent(), Some(dir.path()));
        assert_eq!(local.hint.path, lock.with_extension("tail"));
        assert_eq!(local.probe.path, lock.with_extension("probe"));
        assert_eq!(local.fences.path, lock.with_extension("fence"));
        assert_eq!(local.region.extension().unwrap(), "region");
    }

    #[test]
    fn the_logs_of_one_bucket_share_its_region() {
        let dir = Path::new("/locks");
        let wal = LocalState::in_dir(dir, "https://s3.us-east-1.amazonaws.com/", "b", "wal");
        let other = LocalState::in_dir(dir, "https://s3.us-east-1.amazonaws.com/", "b", "o");
        let elsewhere = LocalState::in_dir(dir, "https://s3.us-east-1.amazonaws.com/", "c", "o");
        assert_eq!(wal.region, other.region);
        assert_ne!(wal.region, elsewhere.region);
    }

    #[test]
    fn dotted_buckets_and_prefixes_keep_their_files_apart() {
        let dir = Path::new("/locks");
        let a = LocalState::in_dir(dir, "http://e", "logs.example", "a.b");
        let b = LocalState::in_dir(dir, "http://e", "logs.example", "c.d");
        assert_ne!(a.lock_path(), b.lock_path());
        assert_ne!(a.probe.path, b.probe.path);
        let name = a.lock_path().file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("logs.example-a.b-"), "{name}");
        assert!(name.ends_with(".lock"), "{name}");
    }

    #[test]
    fn stored_tail_loads_back() {
        let (local, _dir) = local("tail");
        local.hint.store(42);
        assert_eq!(local.hint.load(), Some(42));
        assert_eq!(local.hint.standing(), None, "seen, not appended here");
    }

    #[test]
    fn a_standing_tail_loads_back_with_its_epoch() {
        let (local, _dir) = local("standing");
        local.hint.store_standing(42, 7);
        assert_eq!(local.hint.load(), Some(42));
        assert_eq!(local.hint.standing(), Some((42, 7)));
        for garbled in ["42 stands", "42 stands x", "42 stands 7 8", "42 falls 7"] {
            fs::write(&local.hint.path, garbled).unwrap();
            assert_eq!(local.hint.standing(), None, "{garbled}");
        }
    }

    #[test]
    fn missing_or_garbled_files_are_none() {
        let (local, dir) = local("garbled");
        assert_eq!(local.hint.load(), None);
        assert_eq!(local.probe.load(), None);
        fs::create_dir_all(dir.path()).unwrap();
        fs::write(&local.hint.path, "not a number").unwrap();
        fs::write(&local.probe.path, "maybe").unwrap();
        assert_eq!(local.hint.load(), None);
        assert_eq!(local.probe.load(), None);
    }

    #[test]
    fn stored_verdict_loads_back() {
        let (local, _dir) = local("probe");
        local.probe.store(Conditional::Ignored);
        assert_eq!(local.probe.load(), Some(Conditional::Ignored));
        local.probe.store(Conditional::Enforced);
        assert_eq!(local.probe.load(), Some(Conditional::Enforced));
    }

    /// A file that cannot be written (a folder stands at its name, or its
    /// folder cannot be made) is left as it was, with no temporary file
    /// beside it, and nothing is said.
    #[test]
    fn unwritable_files_are_silently_skipped() {
        let (local, dir) = local("unwritable");
        fs::create_dir_all(&local.hint.path).unwrap();
        local.hint.store(42);
        assert!(local.hint.path.is_dir());
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        let nowhere = Path::new("/proc/s3wal-cannot-write/x.tail");
        write_atomically(nowhere, "1");
        assert!(!nowhere.exists() && !nowhere.parent().unwrap().exists());
    }
}
