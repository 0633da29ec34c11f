//! What one command stored, to be named whatever ends it.

use std::fmt;

/// The offsets one command stored, kept as runs so that a `--lines` run of
/// millions of records stays small.
#[derive(Debug, Default, Clone)]
pub struct Stored {
    runs: Vec<(u64, u64)>,
    count: u64,
}

impl Stored {
    pub(super) fn push(&mut self, offset: u64) {
        self.count += 1;
        match self.runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(offset) => *last = offset,
            _ => self.runs.push((offset, offset)),
        }
    }

    /// Whether nothing was stored.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many records were stored.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The offsets stored, as runs `(first, last)`, in the order stored.
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs.iter().copied()
    }
}

impl fmt::Display for Stored {
    /// `the record at offset 7`, `3 records, at offsets 1..2, 7`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs: Vec<String> = self
            .runs
            .iter()
            .map(|&(first, last)| match first == last {
                true => first.to_string(),
                false => format!("{first}..{last}"),
            })
            .collect();
        match self.count {
            1 => write!(f, "the record at offset {}", runs[0]),
            n => write!(f, "{n} records, at offsets {}", runs.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(offsets: &[u64]) -> Stored {
        let mut stored = Stored::default();
        offsets.iter().for_each(|&offset| stored.push(offset));
        stored
    }

    #[test]
    fn stored_offsets_are_named_in_runs() {
        assert_eq!(
            stored(&[1, 2, 3, 7, 9, 10]).to_string(),
            "6 records, at offsets 1..3, 7, 9..10"
        );
    }

    #[test]
    fn one_stored_record_is_named_alone() {
        assert_eq!(stored(&[42]).to_string(), "the record at offset 42");
        assert!(Stored::default().is_empty());
    }
}
