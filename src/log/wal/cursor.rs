//! Named cursors: where a consumer (`dump --cursor NAME`) got to, kept in
//! the bucket beside the log, so that any runner resumes where the last
//! one stopped.
//!
//! A cursor is a chain of keys `<prefix>/.s3wal/cursor/<name>/<from>`,
//! each holding the offset the cursor moved on to from `<from>` (the last
//! record consumed). A consumer moves it on only after the records were
//! written out, by creating the key of the position it read, if absent:
//! of two consumers of one name that read the same position, one alone
//! creates that key, and the other is told that the records it printed
//! were consumed by another too (never both, silently). The key it
//! replaced is then deleted; should one be left (a failed delete), the
//! highest still says where the cursor is.

use super::{Wal, new_token};
use crate::error::{Error, Result};
use crate::log::fence::Fences;
use crate::store::{PutOutcome, Store};

/// Where a named cursor is: the last offset its consumers consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Its name.
    pub name: String,
    /// The last offset consumed; 0 before any.
    pub at: u64,
    /// Its keys the listing showed, to delete once it moves on.
    keys: Vec<String>,
}

/// Keys a page of a cursor's listing asks for.
const CURSOR_PAGE: usize = 1000;

/// Refuses a name that would not make one clean key segment.
fn check_name(name: &str) -> Result<()> {
    let clean = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    match clean && name != "." && name != ".." {
        true => Ok(()),
        false => Err(Error::Usage(format!(
            "cursor name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        ))),
    }
}

impl<S: Store + Sync> Wal<S> {
    /// Where cursor `name` is: one LIST, and a GET of its newest key.
    pub fn cursor(&self, name: &str) -> Result<Cursor> {
        check_name(name)?;
        let folder = format!("{}{name}/", self.prefix.cursor_folder());
        let mut keys = Vec::new();
        for key in self.store.keys(&folder, None, CURSOR_PAGE) {
            let key = key?;
            if self.prefix.cursor_of(&key).is_some() {
                keys.push(key);
            }
        }
        let at = match keys.last() {
            Some(newest) => self.cursor_position(newest)?,
            None => 0,
        };
        Ok(Cursor {
            name: name.to_owned(),
            at,
            keys,
        })
    }

    /// The offset the cursor key `key` moved on to.
    fn cursor_position(&self, key: &str) -> Result<u64> {
        let body = self.store.get(key)?.unwrap_or_default();
        std::str::from_utf8(&body)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| Error::Config(format!("cursor key {key} holds no offset")))
    }

    /// Moves `cursor` on to `to` (the last record written out), unless
    /// another consumer moved it on from the same place first: then
    /// [`Error::CursorMoved`]. Returns where it is now.
    pub fn advance_cursor(&self, cursor: &Cursor, to: u64) -> Result<Cursor> {
        let key = self.prefix.cursor_key(&cursor.name, cursor.at);
        match self
            .store
            .put_if_absent(&key, to.to_string().as_bytes(), &new_token())?
        {
            PutOutcome::Created => {}
            PutOutcome::Exists { .. } | PutOutcome::Conflict => {
                return Err(Error::CursorMoved {
                    name: cursor.name.clone(),
                    from: cursor.at,
                });
            }
        }
        // Best effort: a key left behind is lower, so never read.
        for old in &cursor.keys {
            let _ = self.store.delete_key(old, None);
        }
        Ok(Cursor {
            name: cursor.name.clone(),
            at: to,
            keys: vec![key],
        })
    }

    /// Every named cursor of the log and where it is, by name: one LIST
    /// of s3wal's own folder, and a GET for each cursor.
    pub fn cursors(&self) -> Result<Vec<Cursor>> {
        self.cursors_of(&self.read_fences(u64::MAX)?)
    }

    /// The named cursors the listing that read `fences` showed.
    pub(super) fn cursors_of(&self, fences: &Fences) -> Result<Vec<Cursor>> {
        let mut cursors: Vec<Cursor> = Vec::new();
        for key in &fences.cursors {
            let Some((name, _)) = self.prefix.cursor_of(key) else {
                continue;
            };
            match cursors.last_mut() {
                Some(cursor) if cursor.name == name => cursor.keys.push(key.clone()),
                _ => cursors.push(Cursor {
                    name: name.to_owned(),
                    at: 0,
                    keys: vec![key.clone()],
                }),
            }
        }
        for cursor in &mut cursors {
            if let Some(newest) = cursor.keys.last() {
                cursor.at = self.cursor_position(newest)?;
            }
        }
        Ok(cursors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalState;
    use crate::log::keys::Prefix;
    use crate::store::memory::MemoryStore;

    fn wal(store: &MemoryStore) -> Wal<&MemoryStore> {
        let local = LocalState::in_dir(std::path::Path::new("/nonexistent"), "m", "b", "wal");
        Wal::new(store, Prefix::new("wal").unwrap(), local)
    }

    #[test]
    fn a_new_cursor_is_at_0_and_moves_on_to_where_it_is_told() {
        let store = MemoryStore::new();
        let wal = wal(&store);
        let cursor = wal.cursor("etl").unwrap();
        assert_eq!(cursor.at, 0);
        let moved = wal.advance_cursor(&cursor, 7).unwrap();
        assert_eq!(moved.at, 7);
        assert_eq!(wal.cursor("etl").unwrap().at, 7);
        let moved = wal.advance_cursor(&moved, 9).unwrap();
        assert_eq!(wal.cursor("etl").unwrap(), moved);
        let cursor_keys = store
            .object_keys()
            .into_iter()
            .filter(|k| k.contains("/cursor/"))
            .count();
        assert_eq!(cursor_keys, 1, "the keys it replaced are gone");
    }

    #[test]
    fn two_consumers_that_read_the_same_place_cannot_both_move_it_on() {
        let store = MemoryStore::new();
        let wal = wal(&store);
        let first = wal.cursor("etl").unwrap();
        let second = wal.cursor("etl").unwrap();
        wal.advance_cursor(&first, 5).unwrap();
        let error = wal.advance_cursor(&second, 6).unwrap_err();
        assert!(
            matches!(error, Error::CursorMoved { from: 0, .. }),
            "{error}"
        );
        assert_eq!(wal.cursor("etl").unwrap().at, 5);
    }

    #[test]
    fn cursors_are_listed_by_name_with_their_places() {
        let store = MemoryStore::new();
        let wal = wal(&store);
        for (name, at) in [("b", 3), ("a", 4)] {
            let cursor = wal.cursor(name).unwrap();
            wal.advance_cursor(&cursor, at).unwrap();
        }
        let found: Vec<(String, u64)> = wal
            .cursors()
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.at))
            .collect();
        assert_eq!(found, [("a".to_owned(), 4), ("b".to_owned(), 3)]);
    }

    #[test]
    fn names_that_are_no_clean_key_segment_are_refused() {
        let store = MemoryStore::new();
        let wal = wal(&store);
        for bad in ["", "a/b", "..", "x y", &"n".repeat(65)] {
            assert!(matches!(wal.cursor(bad), Err(Error::Usage(_))), "{bad:?}");
        }
    }
}
