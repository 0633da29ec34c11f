//! The log's side of the fences (`fence.rs`): the one place where the
//! fence protocol talks to the store. Its entry points:
//!
//! - for appends, [`Wal::place_after`] (the look at the tail record before
//!   the PUT), [`Wal::confirm`] (the fence check after it) and
//!   [`Wal::settled_fences`] (the epoch of a fresh start);
//! - for truncate and trim, [`Wal::take_fence`], [`Wal::under_fence`] and
//!   [`Wal::standing_tail`];
//! - for every command that writes, [`Wal::finish_own_fence`].
//!
//! Behind them: reading the fences, waiting for a running one and taking
//! it over once its lease ran out, renewing a lease, doing a fence's work
//! with requests the store refuses once the lease is over, settling it,
//! and removing doomed records under a repair fence.

use std::time::{Duration, Instant};

use super::{Appending, Place, TailFrom, Unconfirmed, Wal, new_token};
use crate::error::{Error, Result};
use crate::local::{Conditional, FenceNotes};
use crate::log::fence::{self, Fence, Fences, Holder, Kind, State};
use crate::store::Store;
use crate::store::{Deadline, PageRequest, PutOutcome};

/// Keys one listing of the fence folder asks for: the newest fence, its
/// leases, its marker and the one before, with room to spare.
const FENCE_PAGE: usize = 32;

/// How long a command waits for a fence whose holder is alive (it keeps
/// renewing its lease) before it gives up. A dead holder's fence is taken
/// over a lease and a margin after its last sign of life, however long
/// that lease.
pub const FENCE_WAIT: Duration = Duration::from_secs(120);

/// The lease a command holds its fences by unless set with [`Wal::lease`]:
/// how long a dead machine's fence can hold the others back (plus
/// the takeover margin, 2 s), and how long a live one may go without
/// a step of progress (it renews every third of it) before it may lose its
/// fence. 30 s lets a CI job behind a killed runner lose half a minute,
/// not its whole budget, while a holder rides out a few retries of a
/// failing request (from 100 ms, doubling) between two renewals.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The shortest lease a holder may take, in milliseconds (`--lease`).
const SHORTEST_LEASE_MS: i64 = 2000;

/// How long a command waits for a fence before it says so on stderr.
const NOTICE_AFTER: Duration = Duration::from_secs(1);

/// How many times a command tries to take the next fence when other
/// machines take it first.
const FENCE_TRIES: u32 = 20;

/// How many times a fenced request refused by the store is sent again on
/// a lease taken afresh, when nobody took the fence over meanwhile (the
/// holder was paused past its lease, or its lease anchor was stale).
const LAPSED_RETRIES: u32 = 3;

/// Whether `error` refuses the operation (it did nothing): its fence is
/// void.
fn refused(error: &Error) -> bool {
    matches!(
        error,
        Error::TruncateBelowFirst { .. } | Error::TrimPastTail { .. }
    )
}

/// Whether `error` is an answer the store gave, which says the request
/// did nothing and left nothing in flight: a 4xx, or a 503 (S3's
/// SlowDown, which promises it did nothing), on the last try and every
/// try before.
fn settled_answer(error: &Error) -> bool {
    match error {
        Error::S3 {
            status,
            may_have_acted,
            ..
        } => !may_have_acted && !crate::error::status_may_have_acted(*status),
        _ => false,
    }
}

/// Whether the store refused a fenced request: its lease may have ended.
fn refused_by_store(error: &Error) -> bool {
    matches!(error, Error::S3 { status: 403, .. })
}

/// The pause before the `n`th read of a running fence.
fn fence_pause(n: u32) -> Duration {
    Duration::from_millis((10u64 << n.min(6)).min(500))
}

/// This machine's name, for the fences it holds.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    match status {
        0 if end > 0 => String::from_utf8_lossy(&buffer[..end]).into_owned(),
        _ => "unknown-host".to_owned(),
    }
}

/// Where a fence this command held stands, after the store refused one of
/// its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holding {
    /// Still ours, running: the lease ran out unclaimed.
    Held,
    /// Ours, and settled: the marker landed.
    Settled,
}

/// A fence that runs, as `stat` and `doctor` show it: times are the
/// store's, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningFence {
    /// Its number in the log's fence sequence.
    pub seq: u64,
    /// What it does, as in "truncate after 5".
    pub what: String,
    /// Its holder's host name, process id and lease; `None` for an s3wal
    /// before leases.
    pub holder: Option<String>,
    /// When it was claimed.
    pub since: Option<i64>,
    /// From when another machine may take it over if it shows no more
    /// life.
    pub takeover_at: Option<i64>,
    /// The store's time when it was read.
    pub now: Option<i64>,
}

impl std::fmt::Display for RunningFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let holder = self.holder.as_deref().unwrap_or("an s3wal before leases");
        write!(f, "fence {} ({}) held by {holder}", self.seq, self.what)?;
        if let Some(since) = self.since {
            write!(f, " since {}", fence::store_time_text(since))?;
        }
        match (self.takeover_at, self.now) {
            (Some(at), Some(now)) if at <= now => write!(
                f,
                "; it shows no life: the next command takes it over (since {})",
                fence::store_time_text(at)
            ),
            (Some(at), _) => write!(
                f,
                "; taken over from {} if it shows no more life",
                fence::store_time_text(at)
            ),
            (None, _) => Ok(()),
        }?;
        f.write_str(" (the store's clock)")
    }
}

/// A fence this command holds, and the lease it holds it by.
#[derive(Debug)]
pub(crate) struct Held {
    /// The fence's key: its description, or its claim before one.
    pub key: String,
    pub seq: u64,
    pub kind: Kind,
    /// The number of the lease it holds (0: the claim).
    lease: u64,
    /// When the lease ends, by the store's clock: every fenced request is
    /// signed to expire then.
    deadline: Deadline,
    /// When the lease was taken, by this machine's monotonic clock: only
    /// to know when to renew it, never whether it still holds.
    taken: Instant,
    /// Records deleted under it so far, for the error if it is lost.
    pub deleted: u64,
}

impl<S: Store> Wal<S> {
    /// This command's lease, in whole seconds.
    fn lease_secs(&self) -> u64 {
        self.lease.as_secs().max(1)
    }

    /// The body of a claim or lease key this command creates.
    fn holder_body(&self, released: bool) -> Vec<u8> {
        Holder {
            lease_secs: self.lease_secs(),
            host: host_name(),
            pid: std::process::id(),
            released,
        }
        .encode()
    }

    /// A lease that starts at `anchor`, a time the store gave before the
    /// key that takes it was created (so never after its `LastModified`,
    /// from which others count). A store that sends no `Date` leaves only
    /// this machine's clock; no other machine takes such a fence over
    /// unless told to (see [`Wal::may_take_over`]).
    fn deadline_from(&self, anchor: Option<i64>) -> Deadline {
        Deadline {
            signed_at: anchor.unwrap_or_else(|| jiff::Timestamp::now().as_second()),
            expires: self.lease_secs(),
        }
    }

    /// The fences newer than `since`, and always the newest one, newest
    /// first, with the store's time of the listing and the store hint's
    /// keys: one LIST of s3wal's own folder while the fences since are
    /// few (the hint sorts before them).
    pub(crate) fn read_fences(&self, since: u64) -> Result<Fences> {
        let folder = self.prefix.own_folder();
        let hint_folder = self.prefix.hint_folder();
        let mut hints = Vec::new();
        let mut cursors = Vec::new();
        let mut listing: Vec<(String, Option<i64>)> = Vec::new();
        let mut newest = None;
        let mut continuation: Option<String> = None;
        'pages: loop {
            let page = self.store.list_page(&PageRequest {
                prefix: &folder,
                start_after: None,
                continuation: continuation.as_deref(),
                max_keys: FENCE_PAGE,
            })?;
            for (key, modified) in page.keys.into_iter().zip(page.modified) {
                let Some(seq) = Fences::seq_of(&self.prefix, &key) else {
                    if key.starts_with(&hint_folder) {
                        hints.push(key);
                    } else if self.prefix.cursor_of(&key).is_some() {
                        cursors.push(key);
                    }
                    continue;
                };
                let newest = *newest.get_or_insert(seq);
                if seq != newest && seq <= since {
                    break 'pages;
                }
                listing.push((key, modified));
            }
            match page.continuation {
                Some(next) => continuation = Some(next),
                None => break,
            }
        }
        let mut fences = Fences::from_listing(
            &self.prefix,
            listing
                .iter()
                .map(|(key, modified)| (key.as_str(), *modified)),
        );
        fences.now = self.store.store_time().map(|seconds| seconds * 1000);
        fences.hints = hints;
        fences.cursors = cursors;
        Ok(fences)
    }

    /// The fence that runs now, if one does, with its holder: what `stat`
    /// and `doctor` show. One LIST, and a GET when a fence runs.
    pub fn running_fence(&self) -> Result<Option<RunningFence>> {
        self.running_fence_of(&self.read_fences(u64::MAX)?)
    }

    /// The fence that runs now among `fences`, with its holder.
    pub(super) fn running_fence_of(&self, fences: &Fences) -> Result<Option<RunningFence>> {
        let Some(fence) = fences.newest().filter(|f| !f.settled()).copied() else {
            return Ok(None);
        };
        let holder = self.holder(&fence)?;
        Ok(Some(RunningFence {
            seq: fence.seq,
            what: fence.kind.to_string(),
            takeover_at: holder.as_ref().and_then(|h| fence.takeover_at(h)),
            holder: holder.map(|h| h.to_string()),
            since: fence.claimed,
            now: fences.now,
        }))
    }

    /// Who holds `fence` now, from the body of its newest lease key; `None`
    /// for a fence of an s3wal before leases, or one whose key is gone.
    fn holder(&self, fence: &Fence) -> Result<Option<Holder>> {
        let body = self.store.get(&fence.lease_key(&self.prefix))?;
        Ok(body.as_deref().and_then(Holder::decode))
    }

    /// Reads the fences newer than `since` until `blocking` names none,
    /// pausing in between. A fence whose holder showed no life for its
    /// lease and the margin, by the store's clock, is taken over: its work
    /// finished or voided. One that stays alive for [`FENCE_WAIT`] is an
    /// error naming it.
    pub(crate) fn wait_for_fences(
        &self,
        since: u64,
        blocking: impl Fn(&Fences) -> Option<Fence>,
    ) -> Result<Fences> {
        let started = Instant::now();
        let mut polls = 0;
        // The fence lease last read, with its holder, so that a wait reads
        // each holder once and says once what it waits for.
        let mut known: Option<(u64, u64, Option<Holder>)> = None;
        let mut told = false;
        let mut first_seen = None;
        loop {
            let fences = self.read_fences(since)?;
            let Some(fence) = blocking(&fences) else {
                return Ok(fences);
            };
            if known
                .as_ref()
                .is_none_or(|(seq, lease, _)| (*seq, *lease) != (fence.seq, fence.lease))
            {
                known = Some((fence.seq, fence.lease, self.holder(&fence)?));
                told = false;
            }
            // Most fences settle within a second: only a longer wait is
            // worth a line on stderr.
            if !told && started.elapsed() >= NOTICE_AFTER {
                told = true;
                let holder = known.as_ref().and_then(|(_, _, h)| h.as_ref());
                (self.notice)(&waiting_notice(&fence, holder, &fences));
            }
            let holder = known.as_ref().and_then(|(_, _, h)| h.as_ref());
            let due = holder.and_then(|h| fence.takeover_at(h));
            let left = match (fences.now, due) {
                (Some(now), Some(due)) => Some(due - now),
                _ => None,
            };
            if left.is_some_and(|left| left <= 0) {
                self.may_take_over(&fence, holder)?;
                self.take_over(&fence)?;
                polls = 0;
                continue;
            }
            // A holder that showed no life since this wait began is dead or
            // stalled: its fence is taken over when `due` comes, whatever
            // its lease. Only a live one (or a store without times) makes
            // this command give up.
            let alive = (fence.seq, fence.alive);
            let lived = *first_seen.get_or_insert(alive) != alive;
            if started.elapsed() >= FENCE_WAIT {
                match (lived, left) {
                    (true, _) => return Err(self.fence_busy(&fence, holder, due)),
                    // Nothing says when it is due (its holder is an s3wal
                    // before leases, or the store gives no times), and it
                    // showed no life for the whole wait: only an explicit
                    // choice may take it over.
                    (false, None) if self.allow_unsafe_takeover => {
                        self.take_over(&fence)?;
                        polls = 0;
                        continue;
                    }
                    (false, None) => return Err(unsafe_takeover(&fence, holder)),
                    (false, Some(_)) => {}
                }
            }
            let pause = match left {
                Some(left) => fence_pause(polls).min(Duration::from_millis(left as u64 + 1)),
                None => fence_pause(polls),
            };
            (self.pause)(pause);
            polls += 1;
        }
    }

    /// The error for a fence that kept running while its holder lived.
    fn fence_busy(&self, fence: &Fence, holder: Option<&Holder>, due: Option<i64>) -> Error {
        Error::FenceBusy {
            fence: fence.kind.to_string(),
            seq: fence.seq,
            holder: holder.map(Holder::to_string),
            waited: FENCE_WAIT.as_secs(),
            takeover_at: due,
        }
    }

    /// Refuses to take over `fence` where the store would not refuse its
    /// holder's late requests: a store that ignores presigned expiry
    /// (probed once, then hint_read), or a holder from an s3wal before
    /// leases, unless `--allow-unsafe-takeover` says the holder is dead.
    fn may_take_over(&self, fence: &Fence, holder: Option<&Holder>) -> Result<()> {
        if self.allow_unsafe_takeover {
            return Ok(());
        }
        let enforced = holder.is_some()
            && self.store.store_time().is_some()
            && self.expiry_verdict()? == Conditional::Enforced;
        match enforced {
            true => Ok(()),
            false => Err(unsafe_takeover(fence, holder)),
        }
    }

    /// Whether the store refuses requests past their presigned expiry:
    /// hint_read, or probed now.
    pub(crate) fn expiry_verdict(&self) -> Result<Conditional> {
        match self.local.expiry.load() {
            Some(verdict) => Ok(verdict),
            None => self.probe_expiry(),
        }
    }

    /// Checks whether the store refuses a request that expired by its own
    /// clock: creates a scratch key, deletes it with a request that ended
    /// one to two seconds before the store's time (less than the takeover
    /// margin), then
    /// deletes it for good. The second delete tells a refusal for expiry
    /// from one for a missing permission (both are 403 AccessDenied):
    /// when it is refused too, that is the error, and nothing is
    /// hint_read. Remembers the answer.
    pub fn probe_expiry(&self) -> Result<Conditional> {
        let key = self.new_scratch_key();
        self.store
            .put_if_absent(&key, b"s3wal expiry probe", &new_token())?;
        let now = self.store.store_time();
        // Ended a second before the store's `Date`, which reads low: as
        // late as a request a taker could meet after the margin.
        let expired = Deadline {
            signed_at: now.unwrap_or_else(|| jiff::Timestamp::now().as_second()) - 61,
            expires: 60,
        };
        let late = self.store.delete_key(&key, Some(expired));
        self.store.delete_key(&key, None)?;
        let verdict = match late {
            // Without the store's clock, no deadline is the store's.
            Ok(()) => Conditional::Ignored,
            Err(_) if now.is_none() => Conditional::Ignored,
            Err(error) if refused_by_store(&error) => Conditional::Enforced,
            Err(error) => return Err(error),
        };
        self.local.expiry.store(verdict);
        Ok(verdict)
    }

    /// Takes `fence` over from a holder whose lease ran out (or who died on
    /// this machine): creates its next lease key, then finishes what the
    /// fence was doing, or voids it if it was never described. Does
    /// nothing when another machine, or the holder renewing, created that
    /// key first: the caller reads the fences again.
    fn take_over(&self, fence: &Fence) -> Result<()> {
        let lease = fence.lease + 1;
        let Some(deadline) = self.take_lease(fence.seq, lease)? else {
            return Ok(());
        };
        // Nothing of the old holder's can land any more: read what it left.
        let fences = self.read_fences(fence.seq.saturating_sub(1))?;
        let Some(now) = fences.get(fence.seq).filter(|f| !f.settled()) else {
            return self.note_running(None);
        };
        let mut held = Held {
            key: fence::key(&self.prefix, now.seq, now.kind),
            seq: now.seq,
            kind: now.kind,
            lease,
            deadline,
            taken: Instant::now(),
            deleted: 0,
        };
        match now.kind {
            // It died before it said what it would do: it did nothing.
            Kind::Claimed => self.settle(&mut held, State::Void),
            // A refusal is the dead command's to report, not this one's.
            kind => match self.under_fence(&mut held, kind) {
                Err(error) if !refused(&error) => Err(error),
                _ => Ok(()),
            },
        }
    }

    /// Takes over the newest fence if it runs and its holder is dead (due
    /// by the store's clock), whatever it does: a dead trim or repair holds
    /// no append back, but leaves its work half done (a gap among the
    /// deletes it had in flight) until someone finishes it, and an append
    /// that sees it is that someone. Costs a GET only for a fence that
    /// showed no life for longer than the shortest lease and the margin.
    /// Where taking over is not safe (see [`Wal::may_take_over`]) it is
    /// left to the commands that must wait for it. Says whether it did.
    fn took_over_the_dead(&self, fences: &Fences) -> Result<bool> {
        let Some(fence) = fences.newest().filter(|f| !f.settled()) else {
            return Ok(false);
        };
        let (Some(now), Some(alive)) = (fences.now, fence.alive) else {
            return Ok(false);
        };
        if now < alive + SHORTEST_LEASE_MS + fence::TAKEOVER_MARGIN_MS {
            return Ok(false);
        }
        let holder = self.holder(fence)?;
        let due = holder.as_ref().and_then(|h| fence.takeover_at(h));
        if due.is_none_or(|due| due > now) || self.may_take_over(fence, holder.as_ref()).is_err() {
            return Ok(false);
        }
        self.take_over(fence)?;
        Ok(true)
    }

    /// The fences, once no truncate runs: what an appender that is about to
    /// look for the tail takes its epoch from.
    pub(crate) fn settled_fences(&self) -> Result<Fences> {
        self.wait_for_fences(u64::MAX, |fences| fences.running_truncate().copied())
    }

    /// Takes the next fence, once every earlier one has settled, for what
    /// `decide` makes of the fences: `Ok(None)` when it finds nothing to
    /// do. Notes the fence here first, so that the next command on this
    /// machine takes it over at once if this one dies.
    pub(crate) fn take_fence(
        &self,
        decide: impl Fn() -> Result<Option<Kind>>,
    ) -> Result<Option<Held>> {
        for _ in 0..FENCE_TRIES {
            let fences = self.wait_for_fences(u64::MAX, |fences| {
                fences.newest().filter(|f| !f.settled()).copied()
            })?;
            let Some(kind) = decide()? else {
                return Ok(None);
            };
            let seq = fences.next_seq();
            if let Some(deadline) = self.take_lease(seq, 0)? {
                let mut held = Held {
                    key: fence::claim_key(&self.prefix, seq),
                    seq,
                    kind: Kind::Claimed,
                    lease: 0,
                    deadline,
                    taken: Instant::now(),
                    deleted: 0,
                };
                // Until this lands, the claim counts as a truncate after 0.
                let key = fence::key(&self.prefix, seq, kind);
                let described = self.fenced(&mut held, |deadline| {
                    self.store.overwrite_until(&key, b"", deadline)
                });
                if let Err(error) = described {
                    self.release_after(&held, &error);
                    return Err(error);
                }
                held.key = key;
                held.kind = kind;
                return Ok(Some(held));
            }
        }
        Err(Error::FenceContended {
            attempts: FENCE_TRIES,
        })
    }

    /// Renews `held`'s lease when a third of it has gone by: creates its
    /// next lease key. Another machine that created it first took the
    /// fence over: the lease is lost.
    fn renew(&self, held: &mut Held, force: bool) -> Result<()> {
        if !force && held.taken.elapsed() < self.lease / 3 {
            return Ok(());
        }
        let lease = held.lease + 1;
        let Some(deadline) = self.take_lease(held.seq, lease)? else {
            return Err(self.lost(held));
        };
        held.lease = lease;
        held.deadline = deadline;
        held.taken = Instant::now();
        Ok(())
    }

    /// Creates lease `n` of fence `seq` (for 0, the claim that takes the
    /// fence) if it is absent, naming this command as its holder, and
    /// notes it here first: its deadline if this command created it (a
    /// 412 or 409 may answer our own PUT whose answer was lost: only the
    /// token tells), `None` if another command did.
    fn take_lease(&self, seq: u64, n: u64) -> Result<Option<Deadline>> {
        let key = fence::lease_key(&self.prefix, seq, n);
        let token = new_token();
        self.note_running(Some((&key, &token)))?;
        let anchor = self.store.store_time();
        match self.create_lease_key(&key, &token, false)? {
            true => Ok(Some(self.deadline_from(anchor))),
            false => {
                self.note_running(None)?;
                Ok(None)
            }
        }
    }

    /// Creates the lease key `key` with `token` if absent: whether this
    /// command created it. A 409 decides nothing, so the same PUT goes
    /// again (our own earlier try may be in flight); a 412 may answer our
    /// own PUT whose answer was lost, which only the token tells.
    fn create_lease_key(&self, key: &str, token: &str, released: bool) -> Result<bool> {
        let body = self.holder_body(released);
        for _ in 0..super::MAX_CONFLICT_RETRIES {
            match self.store.put_if_absent(key, &body, token)? {
                PutOutcome::Created => return Ok(true),
                PutOutcome::Exists { .. } => return self.is_ours(key, token),
                PutOutcome::Conflict => (self.pause)(fence_pause(0)),
            }
        }
        self.is_ours(key, token)
    }

    /// Gives `held`'s fence up after its work failed with `error`, if
    /// every request of it was answered for sure: creates its next lease
    /// key saying so, so that the next command that meets it takes it over
    /// at once rather than after the lease. Not after a request that may
    /// still be on its way (a timeout, a reset, a 500): signed with a
    /// deadline not yet passed, it could still delete a record placed
    /// after the takeover; then the lease runs out first. Nor after a lost
    /// fence, which is not ours. Best effort: without it, the lease runs
    /// out.
    fn release_after(&self, held: &Held, error: &Error) {
        if !settled_answer(error) {
            return;
        }
        let key = fence::lease_key(&self.prefix, held.seq, held.lease + 1);
        let _ = self.create_lease_key(&key, &new_token(), true);
        let _ = self.note_running(None);
    }

    /// The error of a command whose fence another machine took over.
    fn lost(&self, held: &Held) -> Error {
        // Forgotten here: the machine that took it over finishes it.
        let _ = self.note_running(None);
        Error::FenceLost {
            fence: held.kind.to_string(),
            seq: held.seq,
            lease: self.lease_secs(),
            deleted: held.deleted,
        }
    }

    /// Sends the fenced request `request` (given the deadline to sign it
    /// with) under `held`, renewing the lease first when due. A refusal by
    /// the store means the lease may have ended: if another machine took
    /// the fence over, the lease is lost; if not, it is taken afresh and
    /// the request sent again.
    pub(crate) fn fenced(
        &self,
        held: &mut Held,
        request: impl Fn(Deadline) -> Result<()>,
    ) -> Result<()> {
        self.renew(held, false)?;
        let mut retries = 0;
        loop {
            match request(held.deadline) {
                Err(error) if refused_by_store(&error) && retries < LAPSED_RETRIES => {
                    retries += 1;
                    if self.still_held(held)? == Holding::Settled {
                        // Our own marker, whose answer was lost and whose
                        // resend came too late.
                        return Ok(());
                    }
                    self.renew(held, true)?;
                }
                other => return other,
            }
        }
    }

    /// Whether this command still holds `held`'s fence, or settled it:
    /// [`Error::FenceLost`] if another machine took it over (a newer lease
    /// key than ours), or settled it. Nobody settles a fence without its
    /// newest lease, so a settled fence whose newest lease is ours was
    /// settled by us.
    fn still_held(&self, held: &Held) -> Result<Holding> {
        let fences = self.read_fences(held.seq.saturating_sub(1))?;
        match fences.get(held.seq) {
            Some(fence) if fence.lease == held.lease && fence.settled() => Ok(Holding::Settled),
            Some(fence) if fence.lease == held.lease => Ok(Holding::Held),
            _ => Err(self.lost(held)),
        }
    }

    /// Deletes `keys` under `held`, in that order, up to `--parallel` at a
    /// time, each a request without a body that the store refuses once
    /// the lease is over; renews the lease as it goes, so that long work
    /// keeps its fence for as long as it makes progress.
    pub(crate) fn delete_fenced(&self, held: &mut Held, keys: &[String]) -> Result<()> {
        for window in keys.chunks(self.parallel.max(1)) {
            // Sent again after a refusal, only the keys not yet deleted: a
            // key deleted twice might be a record placed in between.
            let left = std::sync::Mutex::new(window.to_vec());
            self.fenced(held, |deadline| {
                let keys = std::mem::take(&mut *left.lock().unwrap_or_else(|e| e.into_inner()));
                let (refused, first) = self.delete_window(keys, deadline);
                *left.lock().unwrap_or_else(|e| e.into_inner()) = refused;
                first
            })?;
            held.deleted += window.len() as u64;
        }
        Ok(())
    }

    /// Deletes `keys` side by side, signed to end at `deadline`: the keys
    /// not deleted, and an error of one of them, one that may still be in
    /// flight if there is such.
    fn delete_window(&self, keys: Vec<String>, deadline: Deadline) -> (Vec<String>, Result<()>) {
        let results: Vec<Result<()>> = match keys.as_slice() {
            [key] => vec![self.store.delete_key(key, Some(deadline))],
            _ => std::thread::scope(|scope| {
                let deleting: Vec<_> = keys
                    .iter()
                    .map(|key| scope.spawn(move || self.store.delete_key(key, Some(deadline))))
                    .collect();
                deleting
                    .into_iter()
                    .map(|handle| handle.join().expect("a delete thread panicked"))
                    .collect()
            }),
        };
        let mut left = Vec::new();
        let mut worst = Ok(());
        for (key, result) in keys.into_iter().zip(results) {
            if let Err(error) = result {
                left.push(key);
                // A request that may still be in flight decides what may
                // follow (see `release_after`): it is the one reported.
                let settled = matches!(&worst, Err(e) if settled_answer(e));
                if worst.is_ok() || (settled && !settled_answer(&error)) {
                    worst = Err(error);
                }
            }
        }
        (left, worst)
    }

    /// Marks `held`'s fence done or void, and forgets it here.
    pub(crate) fn settle(&self, held: &mut Held, state: State) -> Result<()> {
        let marker = fence::marker(&held.key, state);
        self.fenced(held, |deadline| {
            self.store.overwrite_until(&marker, b"", deadline)
        })?;
        self.note_running(None)
    }

    /// Notes, or forgets, the fence this machine is running: a shortcut
    /// for the next command here, which takes a dead one's fence over at
    /// once instead of after its lease.
    fn note_running(&self, running: Option<(&str, &str)>) -> Result<()> {
        let notes = self.local.fences.load();
        self.local.fences.store(&FenceNotes {
            running: running.map(|(key, token)| format!("{key} {token}")),
            ..notes
        });
        Ok(())
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

    /// Meets the fence a command on this machine held and did not settle:
    /// it died (this command holds the lock it held), or failed and
    /// released it. Whatever the command about to run, it waits for that
    /// fence as for any other and takes it over once due, so that a dead
    /// trim or repair here is finished by the next command here, not only
    /// by the next truncate or trim. A newer lease than the one noted is
    /// another machine's: nothing to do here.
    pub(crate) fn finish_own_fence(&self) -> Result<()> {
        let Some(running) = self.local.fences.load().running else {
            return Ok(());
        };
        // A prefix may hold spaces; a token never does.
        let noted = running
            .rsplit_once(' ')
            .map_or(running.as_str(), |(key, _)| key);
        if let Some(seq) = Fences::seq_of(&self.prefix, noted) {
            let ours = |fences: &Fences| {
                let fence = fences.get(seq).filter(|f| !f.settled())?;
                (fence.lease_key(&self.prefix) == noted).then_some(*fence)
            };
            self.wait_for_fences(seq.saturating_sub(1), ours)?;
        }
        self.note_running(None)
    }

    /// Does what `held`'s fence says (`kind`), settling it done when the
    /// work is done and void when it is refused; any other failure leaves
    /// the fence running, for its lease to run out and another command to
    /// take it over. Returns how many records it deleted.
    pub(crate) fn under_fence(&self, held: &mut Held, kind: Kind) -> Result<u64> {
        let work = match kind {
            Kind::Truncate(after) => self
                .refuse_below_first(after)
                .and_then(|()| self.cut(held, after)),
            Kind::Trim(before) => self.trim_held(held, before),
            Kind::Repair(from) => self.remove_doomed(held, from).map(|()| 0),
            Kind::Claimed => Ok(0),
        };
        match work {
            Ok(deleted) => {
                self.settle(held, State::Done)?;
                Ok(deleted)
            }
            Err(error) if refused(&error) => {
                self.settle(held, State::Void)?;
                Err(error)
            }
            Err(error) => {
                self.release_after(held, &error);
                Err(error)
            }
        }
    }

    /// The look before the PUT: the place after the record at `tail`,
    /// known to this command under
    /// `epoch`, or `None` when that record is gone, or doomed (it is then
    /// removed): the tail is to be found again.
    ///
    /// Looks at the record (one HEAD): a record doomed by a truncate this
    /// command knows of must not be followed, or the record placed after it
    /// would be left above a hole when it goes. A log that never had a
    /// fence has no such truncate: a tail that came from a
    /// [`TailFrom::Listing`] just made is then taken as it is.
    pub(super) fn place_after(
        &self,
        tail: u64,
        epoch: u64,
        from: TailFrom,
    ) -> Result<Option<Place>> {
        if tail == 0 || (from == TailFrom::Listing && epoch == 0) {
            return Ok(Some(Place { tail, epoch }));
        }
        let Some(head) = self.store.head(&self.prefix.key(tail))? else {
            return Ok(None);
        };
        // Records of the seed or an s3wal before fences are never doomed.
        let Some(theirs) = head.token.as_deref().and_then(fence::epoch_of) else {
            return Ok(Some(Place { tail, epoch }));
        };
        if theirs < epoch {
            // Only the fences this command knows to have settled: newer
            // ones are the check after the PUT's to find.
            let mut fences = self.read_fences(theirs)?;
            fences.forget_after(epoch);
            if fences.dooms(theirs, tail) {
                let cut = fences.lowest_dooming_cut(theirs, tail);
                self.repair(cut.map_or(tail, |after| after + 2))?;
                return Ok(None);
            }
        }
        Ok(Some(Place {
            tail,
            epoch: epoch.max(theirs),
        }))
    }

    /// The check after the PUT: acknowledges `run`'s unconfirmed records,
    /// one run of consecutive offsets, that stand, calling `appended` with
    /// each: one LIST of the fences newer than their epoch. Records that a
    /// fence dooms wait for it to settle (a void one dooms nothing; a dead
    /// holder's is taken over); one a trim deleted was appended before it
    /// and stands; the others are removed and go to the front of
    /// `run.again`, to be placed again. Says whether any did.
    pub(super) fn confirm(
        &self,
        run: &mut Appending,
        appended: &mut impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<bool> {
        let Some(since) = run.unconfirmed.iter().map(|u| u.epoch).min() else {
            return Ok(false);
        };
        let doomed = |fences: &Fences, u: &Unconfirmed| fences.dooms(u.epoch, u.offset);
        let mut fences = self.read_fences(since)?;
        if self.took_over_the_dead(&fences)? {
            fences = self.read_fences(since)?;
        }
        run.hint_read.saw(&self.prefix, &fences);
        if run.unconfirmed.iter().any(|u| doomed(&fences, u)) {
            let unconfirmed = &run.unconfirmed;
            fences = self.wait_for_fences(since, |fences| {
                unconfirmed.iter().find_map(|u| {
                    let mut running = fences.dooming(u.epoch, u.offset);
                    running.find(|f| !f.settled()).copied()
                })
            })?;
        }
        let mut standing = Vec::new();
        let mut removed = Vec::new();
        for record in run.unconfirmed.drain(..) {
            let stands = !doomed(&fences, &record)
                || (fences.only_trims_doom(record.epoch, record.offset)
                    && placed_before(&fences, &record)
                    && self.store.head(&self.prefix.key(record.offset))?.is_none());
            match stands {
                true => standing.push(record),
                false => removed.push(record),
            }
        }
        run.standing = match (removed.is_empty(), standing.last()) {
            (true, Some(last)) if !fences.may_delete(last.epoch, last.offset) => {
                Some((last.offset, fences.epoch().max(last.epoch)))
            }
            _ => None,
        };
        // Every one that stands is named, even after `appended` fails.
        let mut failed = Ok(());
        for record in &standing {
            run.count += 1;
            failed = failed.and(appended(record.offset, record.body.data()));
        }
        // The next command looks at these records later than the fences
        // were read, so it may stamp their epoch; this one may not.
        self.note_epoch(fences.epoch().max(since));
        let Some(lowest) = removed.first() else {
            failed?;
            return Ok(false);
        };
        let cut = fences.lowest_dooming_cut(lowest.epoch, lowest.offset);
        let repaired = self.repair(cut.map_or(lowest.offset, |after| after + 2));
        if let Err(error) = failed.and(repaired) {
            run.unconfirmed.extend(removed);
            return Err(error);
        }
        for record in removed.into_iter().rev() {
            run.again.push_front(record.body);
        }
        Ok(true)
    }

    /// The tail, once the doomed records on top of it are removed: a trim
    /// that kept a doomed record as "the last" would empty the log when it
    /// goes, and offsets would start again. Only under a fence.
    pub(super) fn standing_tail(&self, held: &mut Held) -> Result<u64> {
        loop {
            let tail = self.recover()?;
            match tail {
                0 => return Ok(0),
                _ if self.fate(tail, &mut FencesRead::under(held))? == Fate::Doomed => {
                    self.remove_doomed(held, tail)?;
                }
                _ => return Ok(tail),
            }
        }
    }

    /// Removes the doomed records from offset `from` up, under a repair
    /// fence of their own.
    pub(crate) fn repair(&self, from: u64) -> Result<()> {
        match self.take_fence(|| Ok(Some(Kind::Repair(from))))? {
            Some(mut held) => {
                // Removing doomed records dooms nothing and can be run
                // again: the fence settles whatever happened.
                let removed = self.remove_doomed(&mut held, from);
                self.settle(&mut held, State::Done)?;
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
    /// machine holds the newest fence nobody else deletes (a late holder's
    /// deletes are refused by the store), and a key that holds a record
    /// cannot be written, so the record deleted is the one read.
    pub(crate) fn remove_doomed(&self, held: &mut Held, from: u64) -> Result<()> {
        let list_prefix = self.prefix.list_prefix();
        let start = self.prefix.records_after(from.saturating_sub(1));
        let mut above = Vec::new();
        for key in self.store.keys(&list_prefix, Some(&start), 1000) {
            // A long listing is progress too: the lease must outlive it.
            self.renew(held, false)?;
            let key = key?;
            if self.prefix.sorts_after_records(&key) {
                break;
            }
            above.extend(self.prefix.offset_of(&key));
        }
        let mut fences_read = FencesRead::under(held);
        for offset in above.into_iter().rev() {
            self.renew(held, false)?;
            match self.fate(offset, &mut fences_read)? {
                Fate::Doomed => self.delete_fenced(held, &[self.prefix.key(offset)])?,
                Fate::Stands => break,
                Fate::Missing => {}
            }
        }
        while let Some(first) = self.first()? {
            match self.fate(first, &mut fences_read)? {
                Fate::Doomed => self.delete_fenced(held, &[self.prefix.key(first)])?,
                Fate::Stands | Fate::Missing => break,
            }
        }
        Ok(())
    }

    /// Whether the record at `offset` is doomed, stands, or is missing;
    /// `read` keeps the fences read for the oldest epoch so far.
    pub(super) fn fate(&self, offset: u64, read: &mut FencesRead) -> Result<Fate> {
        let Some(head) = self.store.head(&self.prefix.key(offset))? else {
            return Ok(Fate::Missing);
        };
        // Records of the seed or an s3wal before fences are never doomed.
        let Some(epoch) = head.token.as_deref().and_then(fence::epoch_of) else {
            return Ok(Fate::Stands);
        };
        if read.since.is_none_or(|since| since > epoch) {
            read.fences = self.read_fences(epoch)?;
            read.fences.forget_after(read.held.saturating_sub(1));
            read.since = Some(epoch);
        }
        Ok(match read.fences.dooms(epoch, offset) {
            true => Fate::Doomed,
            false => Fate::Stands,
        })
    }
}

/// Whether `record` was placed before every trim that dooms it was
/// claimed, by the store's clock: only then did a trim that deleted it
/// delete a record appended before it, which stands as trimmed. One
/// placed after (a trim taken over, or sent again, deletes from its start
/// again) is placed again. The `Date` after its PUT is in whole seconds:
/// the record was created before the end of that second.
fn placed_before(fences: &Fences, record: &Unconfirmed) -> bool {
    let Some(placed) = record.placed else {
        return false;
    };
    fences.dooming(record.epoch, record.offset).all(|f| {
        f.claimed
            .is_some_and(|claimed| (placed + 1) * 1000 <= claimed)
    })
}

/// The error of a fence that shows no life but may not be taken over
/// without `--allow-unsafe-takeover`.
fn unsafe_takeover(fence: &Fence, holder: Option<&Holder>) -> Error {
    Error::UnsafeTakeover {
        fence: fence.kind.to_string(),
        seq: fence.seq,
        holder: holder.map(Holder::to_string),
    }
}

/// What a command that meets a running fence says: what it waits for, who
/// holds it, and for how long it will wait.
fn waiting_notice(fence: &Fence, holder: Option<&Holder>, fences: &Fences) -> String {
    let Some(holder) = holder else {
        return format!(
            "waiting for fence {} ({}), held by an s3wal before leases: up to {} s",
            fence.seq,
            fence.kind,
            FENCE_WAIT.as_secs()
        );
    };
    let takeover = match (fence.takeover_at(holder), fences.now) {
        (Some(due), Some(now)) => format!(
            "taken over in {} s if it shows no more life, by the store's clock",
            ((due - now).max(0) + 999) / 1000
        ),
        _ => "the store gives no time to take it over by".to_owned(),
    };
    format!(
        "waiting for fence {} ({}) held by {holder}: {takeover}; up to {} s while it shows life",
        fence.seq,
        fence.kind,
        FENCE_WAIT.as_secs()
    )
}

/// What became of a record, as a repair sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// There is no record at the offset.
    Missing,
    /// A fence newer than its epoch dooms it: it is to be removed.
    Doomed,
    /// No fence dooms it.
    Stands,
}

/// The fences read while removing doomed records, kept for the oldest
/// epoch asked about so far: one listing serves every record above it.
pub(super) struct FencesRead {
    since: Option<u64>,
    fences: Fences,
    /// The fence the removal runs under: only the fences before it judge.
    held: u64,
}

impl FencesRead {
    /// For work under `held`: the fences before it, every one settled.
    /// Its own fence gives no verdict yet: a trim's dooms the records
    /// below its start only if they are still there once it settled, and
    /// the trim is what deletes them, unless it is refused (void) and
    /// dooms nothing. Counted, it would doom every record below its start
    /// while it runs, and a trim that found its doomed tail record gone
    /// and the tail below its start would delete the log's last records
    /// as doomed before it is refused, and offsets would start again.
    pub(super) fn under(held: &Held) -> FencesRead {
        FencesRead {
            since: None,
            fences: Fences::default(),
            held: held.seq,
        }
    }
}
