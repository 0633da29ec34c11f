//! The log's side of the fences (`fence.rs`): reading them, waiting for a
//! running one, taking the next, settling it, finishing one this machine
//! left running, and removing doomed records under a repair fence.

use std::time::Duration;

use super::{Wal, new_token};
use crate::error::{Error, Result};
use crate::fence::{self, Fence, Fences, Kind, State};
use crate::local::FenceNotes;
use crate::s3::PutOutcome;
use crate::store::Store;

/// Keys one listing of the fence folder asks for: the newest fence, its
/// marker and the one before, with room to spare.
const FENCE_PAGE: usize = 8;

/// How many times a command reads the fences while one of them runs on
/// another machine, before it gives up: about 45 s, the pauses growing
/// from 10 ms to half a second.
const FENCE_POLLS: u32 = 100;

/// How many times a command tries to take the next fence when other
/// machines take it first.
const FENCE_TRIES: u32 = 20;

/// What a fence object holds: nothing is read from it, its name says all;
/// the text tells a person who lists the bucket what it is.
const FENCE_BODY: &[u8] = b"s3wal fence: see README, Many machines, one log\n";

/// Whether `error` refuses the operation (it did nothing): its fence is
/// void.
fn refused(error: &Error) -> bool {
    matches!(
        error,
        Error::TruncateBelowFirst { .. } | Error::TrimPastTail { .. }
    )
}

/// The pause before the `n`th read of a running fence.
fn fence_pause(n: u32) -> Duration {
    Duration::from_millis((10u64 << n.min(6)).min(500))
}

impl<S: Store> Wal<S> {
    /// The fences newer than `since`, and always the newest one, newest
    /// first: one LIST while the fences since are few.
    pub(crate) fn read_fences(&self, since: u64) -> Result<Fences> {
        let folder = fence::folder(&self.prefix);
        let mut keys = Vec::new();
        let mut newest = None;
        for key in self.store.keys(&folder, None, FENCE_PAGE) {
            let key = key?;
            let Some(seq) = Fences::seq_of(&self.prefix, &key) else {
                continue;
            };
            let newest = *newest.get_or_insert(seq);
            if seq != newest && seq <= since {
                break;
            }
            keys.push(key);
        }
        Ok(Fences::from_keys(
            &self.prefix,
            keys.iter().map(String::as_str),
        ))
    }

    /// Reads the fences newer than `since` until `blocking` names none,
    /// pausing in between; a fence that stays running is an error naming
    /// it.
    pub(crate) fn wait_for_fences(
        &self,
        since: u64,
        blocking: impl Fn(&Fences) -> Option<Fence>,
    ) -> Result<Fences> {
        let mut polls = 0;
        loop {
            let fences = self.read_fences(since)?;
            match blocking(&fences) {
                None => return Ok(fences),
                Some(fence) if polls >= FENCE_POLLS => {
                    return Err(Error::FenceBusy {
                        fence: fence.kind.to_string(),
                        seq: fence.seq,
                    });
                }
                Some(_) => {
                    (self.pause)(fence_pause(polls));
                    polls += 1;
                }
            }
        }
    }

    /// The fences, once no truncate runs: what an appender that is about to
    /// look for the tail takes its epoch from.
    pub(crate) fn settled_fences(&self) -> Result<Fences> {
        self.wait_for_fences(u64::MAX, |fences| fences.running_truncate().copied())
    }

    /// Takes the next fence, once every earlier one has settled, for what
    /// `decide` makes of the fences: `Ok(None)` when it finds nothing to
    /// do. Notes the fence here first, so that the next command on this
    /// machine finishes it if this one dies.
    pub(crate) fn take_fence(
        &self,
        decide: impl Fn() -> Result<Option<Kind>>,
    ) -> Result<Option<String>> {
        for _ in 0..FENCE_TRIES {
            let fences = self.wait_for_fences(u64::MAX, |fences| {
                fences.newest().filter(|f| !f.settled()).copied()
            })?;
            let Some(kind) = decide()? else {
                return Ok(None);
            };
            let seq = fences.next_seq();
            let claim = fence::claim_key(&self.prefix, seq);
            let token = new_token();
            self.note_running(Some((&claim, &token)));
            // A 412 or 409 may answer our own claim that landed unseen:
            // only its token tells, and a claim of ours left unnoted would
            // hold every machine back for good.
            let ours = match self.store.put_if_absent(&claim, FENCE_BODY, &token)? {
                PutOutcome::Created => true,
                PutOutcome::Exists { .. } | PutOutcome::Conflict => self.is_ours(&claim, &token)?,
            };
            if ours {
                // Until this lands, the claim counts as a truncate after 0.
                let key = fence::key(&self.prefix, seq, kind);
                self.store.overwrite(&key, FENCE_BODY)?;
                return Ok(Some(key));
            }
            self.note_running(None);
        }
        Err(Error::AppendGaveUp {
            attempts: FENCE_TRIES,
            offset: 0,
        })
    }

    /// Marks fence `key` done or void, and forgets it here.
    pub(crate) fn settle(&self, key: &str, state: State) -> Result<()> {
        self.store.overwrite(&fence::marker(key, state), b"")?;
        self.note_running(None);
        Ok(())
    }

    /// Notes, or forgets, the fence this machine is running.
    fn note_running(&self, running: Option<(&str, &str)>) {
        let notes = self.local.fences.load();
        self.local.fences.store(&FenceNotes {
            running: running.map(|(key, token)| format!("{key} {token}")),
            ..notes
        });
    }

    /// Notes `epoch` as the one the next append here may stamp.
    pub(crate) fn note_epoch(&self, epoch: u64) {
        let notes = self.local.fences.load();
        // Most appends find it as it was: no file written.
        if notes.epoch != Some(epoch) {
            self.local.fences.store(&FenceNotes {
                epoch: Some(epoch),
                ..notes
            });
        }
    }

    /// Finishes the fence a command on this machine took and did not
    /// settle. It died: this command holds the lock it held. Nobody else
    /// may finish it, for it may yet have deleted anything at all.
    pub(crate) fn finish_own_fence(&self) -> Result<()> {
        let Some(running) = self.local.fences.load().running else {
            return Ok(());
        };
        // A prefix may hold spaces; a token never does.
        let Some((key, token)) = running.rsplit_once(' ') else {
            self.note_running(None);
            return Ok(());
        };
        let seq = Fences::seq_of(&self.prefix, key);
        let fences = self.read_fences(seq.unwrap_or(1).saturating_sub(1))?;
        let running = seq.and_then(|seq| fences.get(seq)).filter(|f| !f.settled());
        let ours = match running {
            Some(_) => self.is_ours(key, token)?,
            None => false,
        };
        let Some(&fence) = running.filter(|_| ours) else {
            self.note_running(None);
            return Ok(());
        };
        let key = fence::key(&self.prefix, fence.seq, fence.kind);
        match fence.kind {
            // It died before it said what it would do: it did nothing.
            Kind::Claimed => self.settle(&key, State::Void),
            // A refusal is the dead command's to report, not this one's.
            kind => match self.under_fence(&key, kind) {
                Err(error) if !refused(&error) => Err(error),
                _ => Ok(()),
            },
        }
    }

    /// Does what fence `key` says (`kind`), settling it done when the work
    /// is done and void when it is refused; any other failure leaves the
    /// fence running, for the next command here to finish. Returns how
    /// many records it deleted.
    pub(crate) fn under_fence(&self, key: &str, kind: Kind) -> Result<u64> {
        let work = match kind {
            Kind::Truncate(after) => self
                .refuse_below_first(after)
                .and_then(|()| self.cut(after)),
            Kind::Trim(before) => self.trim_held(before),
            Kind::Repair(from) => self.remove_doomed(from).map(|()| 0),
            Kind::Claimed => Ok(0),
        };
        match work {
            Ok(deleted) => {
                self.settle(key, State::Done)?;
                Ok(deleted)
            }
            Err(error) if refused(&error) => {
                self.settle(key, State::Void)?;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Removes the doomed records from offset `from` up, under a repair
    /// fence of their own.
    pub(crate) fn repair(&self, from: u64) -> Result<()> {
        match self.take_fence(|| Ok(Some(Kind::Repair(from))))? {
            Some(key) => {
                // Removing doomed records dooms nothing and can be run
                // again: the fence settles whatever happened.
                let removed = self.remove_doomed(from);
                self.settle(&key, State::Done)?;
                removed
            }
            None => Ok(()),
        }
    }

    /// Deletes the doomed records: from the top down, each at `from` or
    /// above, stopping at the first that stands (a record doomed by a
    /// truncate has only doomed ones above it, so no hole opens); then
    /// from the bottom up, each below the first that stands (one doomed by
    /// a trim lies below the log's start). Each is read first: while this
    /// machine holds the newest fence nobody else deletes, and a key that
    /// holds a record cannot be written, so the record deleted is the one
    /// read.
    pub(crate) fn remove_doomed(&self, from: u64) -> Result<()> {
        let list_prefix = self.prefix.list_prefix();
        let start = self.prefix.records_after(from.saturating_sub(1));
        let mut above = Vec::new();
        for key in self.store.keys(&list_prefix, Some(&start), 1000) {
            let key = key?;
            if self.prefix.sorts_after_records(&key) {
                break;
            }
            above.extend(self.prefix.offset_of(&key));
        }
        let mut doomed = Doomed::default();
        for offset in above.into_iter().rev() {
            match self.doomed(offset, &mut doomed)? {
                Some(true) => self.store.delete(&[self.prefix.key(offset)])?,
                Some(false) => break,
                None => {}
            }
        }
        while let Some(first) = self.first()? {
            match self.doomed(first, &mut doomed)? {
                Some(true) => self.store.delete(&[self.prefix.key(first)])?,
                _ => break,
            }
        }
        Ok(())
    }

    /// Whether the record at `offset` is doomed, `None` if there is none;
    /// `read` keeps the fences read for the oldest epoch so far.
    pub(super) fn doomed(&self, offset: u64, read: &mut Doomed) -> Result<Option<bool>> {
        let Some(head) = self.store.head(&self.prefix.key(offset))? else {
            return Ok(None);
        };
        // Records of the seed or an s3wal before fences are never doomed.
        let Some(epoch) = head.token.as_deref().and_then(fence::epoch_of) else {
            return Ok(Some(false));
        };
        if read.since.is_none_or(|since| since > epoch) {
            read.fences = self.read_fences(epoch)?;
            read.since = Some(epoch);
        }
        Ok(Some(read.fences.dooms(epoch, offset)))
    }
}

/// The fences read while removing doomed records.
#[derive(Default)]
pub(super) struct Doomed {
    since: Option<u64>,
    fences: Fences,
}
