//! The tail hint kept in the store, for machines that have none of their
//! own (a fresh CI runner): it and one LIST from it find the tail of a log
//! of any length.
//!
//! It is the name of an empty object under `<prefix>/.s3wal/at/`:
//!
//! ```text
//! <prefix>/.s3wal/at/00000000000000004200-enforced-3f2a9c0d1b7e4a55
//! ```
//!
//! the tail, what the `If-None-Match` probe found (`enforced`, `ignored`
//! or `unprobed`), and the first 16 hex digits of the SHA-256 of the store
//! it was found for: a log reached at another store is probed again. A
//! name, not a body, because `at/` sorts before `fence/`: the one listing
//! of `<prefix>/.s3wal/` that a fresh start makes for the fences shows the
//! hint too, so it costs no request of its own. A newer hint is written
//! under a new name and the names listed before it are deleted; should two
//! be left (a race, a failed delete), the highest tail is read.
//!
//! It is a hint, never the truth: the listing from it proves the tail, so
//! a hint that is stale (another machine truncated), far ahead (the log
//! was deleted and made again by another tool), missing or not of this
//! version only costs a search. Nothing here does I/O.

use sha2::{Digest, Sha256};

use crate::local::Conditional;
use crate::log::keys::Prefix;

/// What stands in a hint's name for a probe not run yet.
const UNPROBED: &str = "unprobed";

/// The store hint is written again when the tail passes a multiple of
/// this: about one extra PUT per this many appends, from whichever machine
/// appends the record that passes it.
pub(crate) const EVERY: u64 = 100;

/// What a store hint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreHint {
    /// A recent tail of the log.
    pub tail: u64,
    /// What the probe found, and for which store (its [`store_id`]).
    pub conditional: Option<(Conditional, String)>,
}

/// The short name of a store in a hint: 16 hex digits of its identity's
/// SHA-256, so that any endpoint fits in a key.
pub(crate) fn store_id(identity: &str) -> String {
    hex::encode(&Sha256::digest(identity.as_bytes())[..8])
}

impl StoreHint {
    /// The key that says this hint.
    pub(crate) fn key(&self, prefix: &Prefix) -> String {
        let (verdict, store) = match &self.conditional {
            Some((verdict, store)) => (verdict.as_str(), store.as_str()),
            None => (UNPROBED, "0000000000000000"),
        };
        format!(
            "{}{:020}-{verdict}-{store}",
            prefix.hint_folder(),
            self.tail
        )
    }

    /// The hint a key says, `None` for any other key (a newer s3wal's,
    /// say, which is left alone).
    pub(crate) fn from_key(prefix: &Prefix, key: &str) -> Option<StoreHint> {
        let name = key.strip_prefix(&prefix.hint_folder())?;
        let mut parts = name.split('-');
        let (tail, verdict, store) = (parts.next()?, parts.next()?, parts.next()?);
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if parts.next().is_some() || tail.len() != 20 || !tail.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !digits(store, 16) || store.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let conditional = match verdict {
            UNPROBED => None,
            verdict => Some((Conditional::parse(verdict)?, store.to_owned())),
        };
        Some(StoreHint {
            tail: tail.parse().ok()?,
            conditional,
        })
    }

    /// The probe's verdict, if it was found for the store named
    /// `identity`.
    pub(crate) fn conditional_for(&self, identity: &str) -> Option<Conditional> {
        match &self.conditional {
            Some((verdict, found_for)) if *found_for == store_id(identity) => Some(*verdict),
            _ => None,
        }
    }
}

/// The hint among `keys` (a listing), the one with the highest tail.
pub(crate) fn newest<'k>(
    prefix: &Prefix,
    keys: impl IntoIterator<Item = &'k String>,
) -> Option<StoreHint> {
    keys.into_iter()
        .filter_map(|key| StoreHint::from_key(prefix, key))
        .max_by_key(|hint| hint.tail)
}

/// Whether a log whose tail moved from `before` to `after` by appends
/// should write its store hint again: when the tail passes a multiple of
/// [`EVERY`].
pub(crate) fn due(before: u64, after: u64) -> bool {
    before / EVERY != after / EVERY
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix() -> Prefix {
        Prefix::new("wal").unwrap()
    }

    fn hint(tail: u64) -> StoreHint {
        StoreHint {
            tail,
            conditional: Some((Conditional::Enforced, store_id("http://e/ b"))),
        }
    }

    #[test]
    fn a_hint_reads_back_from_its_key() {
        for written in [
            hint(4200),
            StoreHint {
                tail: 0,
                conditional: None,
            },
        ] {
            let key = written.key(&prefix());
            assert_eq!(StoreHint::from_key(&prefix(), &key), Some(written), "{key}");
        }
    }

    #[test]
    fn its_key_sorts_before_the_fences_and_every_record() {
        let key = hint(u64::MAX).key(&prefix());
        assert!(key.as_str() < prefix().fence_folder().as_str(), "{key}");
        assert!(key.as_str() < prefix().records_after(0).as_str(), "{key}");
        assert!(key.len() < prefix().key(1).len() + 64);
    }

    #[test]
    fn any_other_key_is_no_hint() {
        for key in [
            "wal/.s3wal/at/",
            "wal/.s3wal/at/4200-enforced-0123456789abcdef",
            "wal/.s3wal/at/00000000000000004200-maybe-0123456789abcdef",
            "wal/.s3wal/at/00000000000000004200-enforced-0123",
            "wal/.s3wal/at/00000000000000004200-enforced-0123456789ABCDEF",
            "wal/.s3wal/at/00000000000000004200-enforced-0123456789abcdef-2",
            "wal/.s3wal/tail",
            "other/.s3wal/at/00000000000000004200-unprobed-0000000000000000",
        ] {
            assert_eq!(StoreHint::from_key(&prefix(), key), None, "{key}");
        }
    }

    #[test]
    fn of_several_hints_the_highest_tail_is_read() {
        let keys = [
            hint(300).key(&prefix()),
            hint(420).key(&prefix()),
            "wal/.s3wal/at/x".into(),
        ];
        assert_eq!(newest(&prefix(), &keys), Some(hint(420)));
        assert_eq!(newest(&prefix(), &[]), None);
    }

    #[test]
    fn the_verdict_holds_only_for_the_store_it_was_found_for() {
        assert_eq!(
            hint(1).conditional_for("http://e/ b"),
            Some(Conditional::Enforced)
        );
        assert_eq!(hint(1).conditional_for("http://other/ b"), None);
    }

    #[test]
    fn the_hint_is_due_when_the_tail_passes_a_hundred() {
        assert!(!due(101, 199));
        assert!(due(199, 200));
        assert!(due(150, 420));
        assert!(due(300, 250), "moved down past a multiple");
    }
}
