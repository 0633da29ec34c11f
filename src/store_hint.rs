//! The tail hint kept in the store, for machines that have none of their
//! own (a fresh CI runner): one GET of it and one LIST from it find the
//! tail of a log of any length.
//!
//! It lives at `<prefix>/.s3wal/tail` and is a few lines of text:
//!
//! ```text
//! s3wal-hint 1
//! tail 4200
//! conditional enforced http://127.0.0.1:9000/ logs
//! ```
//!
//! It is a hint, never the truth: the listing proves the tail, so a hint
//! that is stale (another machine truncated), far ahead (the log was
//! deleted and made again by another tool), missing or garbled only costs
//! a search. The `conditional` line remembers what the `If-None-Match`
//! probe found for the store named after it: a log reached at another
//! store is probed again. Nothing here does I/O.

use crate::local::Conditional;

/// The first line of a hint this version writes and reads.
const MAGIC: &str = "s3wal-hint 1";

/// The store hint is written again when the tail passes a multiple of
/// this: about one extra PUT per this many appends, from whichever machine
/// appends the record that passes it.
pub(crate) const EVERY: u64 = 100;

/// What a store hint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreHint {
    /// A recent tail of the log.
    pub tail: u64,
    /// What the probe found, and for which store.
    pub conditional: Option<(Conditional, String)>,
}

/// What reading a store hint's body gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Read {
    /// A hint of this version.
    Hint(StoreHint),
    /// A hint from a newer s3wal: ignored, and left as it is.
    Newer,
    /// Not a hint at all.
    Garbled,
}

impl StoreHint {
    /// The body of this hint.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut text = format!("{MAGIC}\ntail {}\n", self.tail);
        if let Some((verdict, store)) = &self.conditional {
            let verdict = match verdict {
                Conditional::Enforced => "enforced",
                Conditional::Ignored => "ignored",
            };
            text.push_str(&format!("conditional {verdict} {store}\n"));
        }
        text.into_bytes()
    }

    /// Reads a hint's body.
    pub(crate) fn decode(body: &[u8]) -> Read {
        let Ok(text) = std::str::from_utf8(body) else {
            return Read::Garbled;
        };
        let mut lines = text.lines();
        match lines.next() {
            Some(MAGIC) => {}
            Some(first) if first.starts_with("s3wal-hint ") => return Read::Newer,
            _ => return Read::Garbled,
        }
        let mut hint = StoreHint {
            tail: u64::MAX,
            conditional: None,
        };
        for line in lines {
            match line.split_once(' ') {
                Some(("tail", tail)) => match tail.parse() {
                    Ok(tail) => hint.tail = tail,
                    Err(_) => return Read::Garbled,
                },
                Some(("conditional", rest)) => {
                    let (verdict, store) = rest.split_once(' ').unwrap_or((rest, ""));
                    let verdict = match verdict {
                        "enforced" => Conditional::Enforced,
                        "ignored" => Conditional::Ignored,
                        _ => return Read::Garbled,
                    };
                    hint.conditional = Some((verdict, store.to_owned()));
                }
                _ => return Read::Garbled,
            }
        }
        match hint.tail {
            u64::MAX => Read::Garbled,
            _ => Read::Hint(hint),
        }
    }

    /// The probe's verdict, if it was found for `store`.
    pub(crate) fn conditional_for(&self, store: &str) -> Option<Conditional> {
        match &self.conditional {
            Some((verdict, found_for)) if found_for == store => Some(*verdict),
            _ => None,
        }
    }
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

    fn hint(tail: u64) -> StoreHint {
        StoreHint {
            tail,
            conditional: Some((Conditional::Enforced, "http://e/ b".into())),
        }
    }

    #[test]
    fn a_hint_reads_back_as_written() {
        for written in [
            hint(4200),
            StoreHint {
                tail: 0,
                conditional: None,
            },
        ] {
            assert_eq!(StoreHint::decode(&written.encode()), Read::Hint(written));
        }
    }

    #[test]
    fn a_hint_from_a_newer_s3wal_is_not_read() {
        assert_eq!(StoreHint::decode(b"s3wal-hint 2\nwhatever\n"), Read::Newer);
    }

    #[test]
    fn anything_else_is_garbled() {
        for body in [
            &b""[..],
            b"\xff\xfe",
            b"4200",
            b"s3wal-hint 1\n",
            b"s3wal-hint 1\ntail -1\n",
            b"s3wal-hint 1\ntail 5\nconditional maybe x\n",
            b"s3wal-hint 1\ntail 5\nextra line\n",
        ] {
            assert_eq!(StoreHint::decode(body), Read::Garbled, "{body:?}");
        }
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
