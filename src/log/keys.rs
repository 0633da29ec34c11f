//! The names of everything a log keeps in its bucket, in one place: the
//! records (the Go seed's layout), and, under `<prefix>/.s3wal/` and
//! `<prefix>/.s3wal-probe-`, s3wal's own objects beside them. Every key
//! s3wal reads or writes is built here, so the layout can be read, and
//! checked against S3's key limit, in one file.

use std::fmt;

/// The folder, under the prefix, of the objects s3wal keeps beside a log.
const OWN_FOLDER: &str = ".s3wal/";
/// Digits of the zero-padded offset in a record key.
pub const KEY_DIGITS: usize = 20;
/// The longest key S3 accepts, in bytes of UTF-8.
const MAX_KEY_LEN: usize = 1024;
/// The folder of the fences, under the prefix.
const FENCE_FOLDER: &str = ".s3wal/fence/";
/// The folder of the named cursors of consumers, under the prefix.
const CURSOR_FOLDER: &str = ".s3wal/cursor/";
/// The folder of the store's tail hint, under the prefix.
const HINT_FOLDER: &str = ".s3wal/at/";
/// What a probe's scratch key's name starts with: a dot sorts it before
/// every record key, and the name says who left it.
const SCRATCH_NAME: &str = ".s3wal-probe-";
/// The longest name s3wal puts under a prefix, a fence's marker: `/`, the
/// fence folder, the 21-character sequence, the longest kind with its
/// dashes (10), the 20-digit argument and `.done` (`fence.rs` checks its
/// longest key against this).
pub(crate) const LONGEST_FENCE_NAME: usize = 1 + FENCE_FOLDER.len() + 21 + 10 + 20 + 5;
/// The longest prefix whose keys S3 still accepts: the longest is a fence
/// marker, longer than any record key.
const MAX_PREFIX_LEN: usize = MAX_KEY_LEN - LONGEST_FENCE_NAME;

/// The folder of a log inside a bucket, without leading or trailing `/`.
///
/// The seed trims every leading and trailing `/` (`/wal//` is `wal`), so
/// s3wal does too, to address the same objects. Segments `.` and `..` are
/// refused because URL normalisation would send the request to another key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// Trims and validates a user-given prefix.
    pub fn new(raw: &str) -> Result<Prefix, String> {
        let trimmed = raw.trim_matches('/');
        if trimmed.is_empty() {
            return Err("the prefix is empty: pass --prefix or set AWS_PREFIX".into());
        }
        if trimmed.split('/').any(|s| s == "." || s == "..") {
            return Err(format!("prefix {trimmed:?} has a '.' or '..' segment"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(format!("prefix {trimmed:?} has a control character"));
        }
        if trimmed.len() > MAX_PREFIX_LEN {
            return Err(format!(
                "the prefix is {} bytes long: the keys s3wal writes under it would \
                 pass S3's {MAX_KEY_LEN}-byte key limit; use at most {MAX_PREFIX_LEN} bytes",
                trimmed.len()
            ));
        }
        Ok(Prefix(trimmed.to_owned()))
    }

    /// The prefix as it appears in keys.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of the record at `offset`.
    pub fn key(&self, offset: u64) -> String {
        format!("{}/{:0width$}", self.0, offset, width = KEY_DIGITS)
    }

    /// The key a listing of the records after `offset` starts after. For
    /// 0 it is past s3wal's own keys, where fences pile up: `.s3wal0`
    /// sorts after `.s3wal/…` and `.s3wal-probe-…`, and before every digit.
    pub fn records_after(&self, offset: u64) -> String {
        match offset {
            0 => format!("{}/.s3wal0", self.0),
            _ => self.key(offset),
        }
    }

    /// What every key of this log starts with, used to list the log.
    pub fn list_prefix(&self) -> String {
        format!("{}/", self.0)
    }

    /// `<prefix>/.s3wal/`, the folder of every object s3wal keeps beside
    /// the log (the fences, the store's tail hint). A dot sorts it before
    /// every record key, and no name in it is a number, so the Go seed's
    /// `Recover` skips them and its `LastRecord` never picks one while a
    /// record exists.
    pub fn own_folder(&self) -> String {
        format!("{}/{OWN_FOLDER}", self.0)
    }

    /// `<prefix>/.s3wal/fence/`, the folder of the fences: listed newest
    /// first (see `fence.rs`).
    pub(crate) fn fence_folder(&self) -> String {
        format!("{}/{FENCE_FOLDER}", self.0)
    }

    /// `<prefix>/.s3wal/cursor/`, the folder of every named cursor (see
    /// `wal/cursor.rs`).
    pub(crate) fn cursor_folder(&self) -> String {
        format!("{}/{CURSOR_FOLDER}", self.0)
    }

    /// The key that moves cursor `name` on from offset `from`: created
    /// only if absent, so that one consumer alone moves it from there.
    pub(crate) fn cursor_key(&self, name: &str, from: u64) -> String {
        format!(
            "{}{name}/{from:0width$}",
            self.cursor_folder(),
            width = KEY_DIGITS
        )
    }

    /// The cursor name and the offset it moved on from, of a cursor key.
    pub(crate) fn cursor_of<'k>(&self, key: &'k str) -> Option<(&'k str, u64)> {
        let rest = key.strip_prefix(&self.cursor_folder())?;
        let (name, from) = rest.split_once('/')?;
        let from = from.parse().ok().filter(|_| from.len() == KEY_DIGITS)?;
        Some((name, from))
    }

    /// `<prefix>/.s3wal/at/`, the folder of the store's tail hint (see
    /// `store_hint.rs`).
    pub(crate) fn hint_folder(&self) -> String {
        format!("{}/{HINT_FOLDER}", self.0)
    }

    /// The scratch key of a store probe, named with the start of `token`:
    /// no longer than a record key, so that the probe never fails on S3's
    /// key length limit where records would fit.
    pub(crate) fn scratch_key(&self, token: &str) -> String {
        let random = &token[..KEY_DIGITS - SCRATCH_NAME.len()];
        format!("{}/{SCRATCH_NAME}{random}", self.0)
    }

    /// Whether `key` is one of s3wal's own objects beside the log (the
    /// tail hint, a probe's scratch key): not a record, and not foreign.
    pub fn is_own(&self, key: &str) -> bool {
        key.strip_prefix(&self.0)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|name| name.starts_with(OWN_FOLDER) || name.starts_with(SCRATCH_NAME))
    }

    /// Whether `key` sorts after every possible record key of this log.
    ///
    /// Listings come in byte order, so once a page reaches such a key (a
    /// `snapshots/` folder beside the records, say) no record follows it:
    /// a search can stop there instead of paging through foreign keys.
    pub fn sorts_after_records(&self, key: &str) -> bool {
        key > self.key(u64::MAX).as_str()
    }

    /// The offset a key names, or `None` for a foreign key.
    ///
    /// Only `<prefix>/` followed by exactly 20 digits naming an offset of at
    /// least 1 is a record key; `wal/x`, `wal/99`, `wal/sub/…` and
    /// `wal/00000000000000000001.tmp` are foreign, and every operation
    /// ignores them alike.
    pub fn offset_of(&self, key: &str) -> Option<u64> {
        let digits = key.strip_prefix(&self.0)?.strip_prefix('/')?;
        if digits.len() != KEY_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok().filter(|&offset| offset >= 1)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal() -> Prefix {
        Prefix::new("wal").unwrap()
    }

    #[test]
    fn prefix_is_trimmed_of_slashes_like_the_seed() {
        assert_eq!(Prefix::new("/wal//").unwrap().as_str(), "wal");
        assert_eq!(Prefix::new("a/b/").unwrap().as_str(), "a/b");
    }

    #[test]
    fn empty_and_dot_segment_prefixes_are_refused() {
        for bad in ["", "/", "//", ".", "a/../b", "a/./b", "a\nb"] {
            assert!(Prefix::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_is_prefix_slash_twenty_zero_padded_digits() {
        assert_eq!(wal().key(1), "wal/00000000000000000001");
        assert_eq!(wal().key(u64::MAX), "wal/18446744073709551615");
    }

    #[test]
    fn own_keys_are_neither_records_nor_foreign() {
        for key in ["wal/.s3wal/at/x", "wal/.s3wal-probe-0123456"] {
            assert!(wal().is_own(key), "{key}");
            assert_eq!(wal().offset_of(key), None);
        }
        for key in [
            "wal/x",
            "wal/.s3walx",
            "other/.s3wal/tail",
            "wal/00000000000000000001",
        ] {
            assert!(!wal().is_own(key), "{key}");
        }
        assert!(
            wal().own_folder() < wal().key(1),
            "sorts before every record"
        );
    }

    #[test]
    fn the_records_after_0_start_past_s3wals_own_keys() {
        let start = wal().records_after(0);
        for own in [
            wal().own_folder(),
            "wal/.s3wal-probe-0123".into(),
            "wal/.s3wal/fence/f1".into(),
        ] {
            assert!(own < start, "{own}");
        }
        assert!(start < wal().key(1));
        assert_eq!(wal().records_after(7), wal().key(7));
    }

    #[test]
    fn record_keys_round_trip_to_offsets() {
        for offset in [1, 42, u64::MAX] {
            assert_eq!(wal().offset_of(&wal().key(offset)), Some(offset));
        }
    }

    #[test]
    fn foreign_keys_name_no_offset() {
        for key in [
            "wal/x",
            "wal/99",
            "wal/sub/00000000000000000001",
            "wal/00000000000000000001.tmp",
            "wal/00000000000000000000",
            "wal/99999999999999999999",
            "wal/+0000000000000000001",
            "wal2/00000000000000000001",
            "other/00000000000000000001",
        ] {
            assert_eq!(wal().offset_of(key), None, "{key}");
        }
    }

    #[test]
    fn keys_past_the_highest_record_key_end_the_record_range() {
        for key in [
            "wal/snapshots/1",
            "wal/99999999999999999999",
            "wal/18446744073709551616",
        ] {
            assert!(wal().sorts_after_records(key), "{key}");
        }
        for key in [
            "wal/18446744073709551615",
            "wal/00000000000000000001",
            "wal/00000000000000000001.tmp",
            "wal/.s3wal-probe-0",
            "wal/1",
        ] {
            assert!(!wal().sorts_after_records(key), "{key}");
        }
    }
}
