//! Progress of long work on stderr, as `[s3wal] deleted 4000 of 9000`:
//! only when stderr is a terminal, never in a pipe or with `--json`, and
//! never over records printed on the same terminal.

use std::io::{self, IsTerminal, Write};

/// A progress line for work counted in records.
pub struct Progress {
    verb: &'static str,
    shown: bool,
}

impl Progress {
    /// Progress of `verb` (`verified`, `dumped`), shown when stderr is a
    /// terminal, unless `json` or `beside_output` (stdout is that terminal
    /// too, and the records go there).
    pub fn new(verb: &'static str, json: bool, beside_output: bool) -> Progress {
        let shown = !json && !beside_output && io::stderr().is_terminal();
        Progress { verb, shown }
    }

    /// Shows `done` of `total`, every thousand records and at the end.
    pub fn show(&self, done: u64, total: u64) {
        if !self.shown || (!done.is_multiple_of(1000) && done != total) {
            return;
        }
        let mut stderr = io::stderr().lock();
        let _ = write!(stderr, "\r[s3wal] {} {done} of {total}", self.verb);
        if done == total {
            let _ = writeln!(stderr);
        }
    }
}

/// What `Wal::on_deleting` calls for a truncate or trim in text mode.
pub fn deleting(done: u64, total: u64) {
    Progress::new("deleted", false, false).show(done, total);
}
